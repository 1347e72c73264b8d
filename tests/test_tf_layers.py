"""The HUST network's TensorFlow layer semantics, on small cases computed by hand.

The HUST notebook (khanhnn20042002/cv20222 fast-style-transfer.ipynb) builds its network in Keras:
Conv2D / Conv2DTranspose(strides=2, padding="same") pad the TensorFlow way, and its train_step calls
the model without training=True, so BatchNormalization runs in inference mode while it trains.
"""

import dataclasses

import torch

from nstbench.config.variants import HUST_NET
from nstbench.nets.transformer import ConvLayer, UpsampleLayer, build_transformer, tf_same_pads

X44 = torch.arange(16.0).view(1, 1, 4, 4)  # rows [0 1 2 3], [4 5 6 7], [8 9 10 11], [12 13 14 15]


def test_tf_same_pads():
    assert tf_same_pads(4, 3, 2) == (0, 1)  # even side: the one extra row at the bottom only
    assert tf_same_pads(5, 3, 2) == (1, 1)
    assert tf_same_pads(256, 3, 2) == (0, 1)
    assert tf_same_pads(7, 9, 1) == (4, 4)  # stride 1, odd kernel: symmetric, as k // 2


def _ones_conv(cfg):
    layer = ConvLayer(cfg, 1, 1, 3, stride=2)
    with torch.no_grad():
        layer.conv2d.weight.fill_(1.0)
    return layer


def test_stride2_conv_pads_bottom_right_like_tensorflow():
    with torch.no_grad():
        got = _ones_conv(HUST_NET)(X44)[0, 0]
        # output (0, 0) sums rows 0-2 x cols 0-2; (0, 1) rows 0-2 x cols 2-3 (+ the zero column); ...
        assert got.tolist() == [[45.0, 39.0], [66.0, 50.0]]
        # one row and column of zeros on every side instead: (0, 0) sees rows/cols -1..1
        sym = _ones_conv(dataclasses.replace(HUST_NET, stride2_padding="symmetric"))(X44)[0, 0]
        assert sym.tolist() == [[10.0, 24.0], [51.0, 90.0]]


def _transpose(cfg):
    layer = UpsampleLayer(cfg, 1, 1)
    with torch.no_grad():
        layer.conv2d.weight.copy_(torch.arange(1.0, 10.0).view(1, 1, 3, 3))  # w = [1 2 3], [4 5 6], [7 8 9]
    return layer


def test_transposed_conv_keeps_tensorflows_first_2h_rows():
    x = torch.tensor([[[[1.0, 0.0], [0.0, 10.0]]]])
    with torch.no_grad():
        got = _transpose(HUST_NET)(x)[0, 0]
        # y[2o + k] += w[k] x[o]: the impulse at (0, 0) writes w at rows/cols 0-2, the one at (1, 1)
        # writes 10 w at rows/cols 2-4, of which rows/cols 2-3 are kept
        assert got.tolist() == [[1, 2, 3, 0], [4, 5, 6, 0], [7, 8, 19, 20], [0, 0, 40, 50]]
        sym = _transpose(dataclasses.replace(HUST_NET, stride2_padding="symmetric"))(x)[0, 0]
        assert sym.tolist() == [[5, 6, 0, 0], [8, 19, 20, 30], [0, 40, 50, 60], [0, 70, 80, 90]]


def test_hust_batch_norm_stays_in_inference_mode_while_training():
    net = build_transformer(HUST_NET).train()
    assert net.training and not net.in1.training and not net.in6.training
    with torch.no_grad():
        net.in1.weight.fill_(2.0)
        net.in1.bias.fill_(0.5)
    x = torch.randn(2, 32, 5, 5, generator=torch.Generator().manual_seed(0)) * 3 + 1
    y = net.in1(x)
    # moving mean 0 and variance 1 (never updated), Keras epsilon 1e-3: 2 x / sqrt(1.001) + 0.5
    torch.testing.assert_close(y, 2.0 * x / (1.0 + 1e-3) ** 0.5 + 0.5)
    assert float(net.in1.running_mean.abs().max()) == 0.0 and float((net.in1.running_var - 1).abs().max()) == 0.0
    y.sum().backward()
    assert net.in1.weight.grad is not None  # gamma and beta still learn
    # the normal mode normalises by the batch statistics instead
    plain = build_transformer(dataclasses.replace(HUST_NET, bn_inference=False)).train()
    assert plain.in1.training
    z = plain.in1(x)
    assert abs(float(z.detach().mean())) < 1e-5
