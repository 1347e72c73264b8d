"""Each normalisation mode against numbers computed by hand on tiny tensors."""

import pytest
import torch

from nstbench.nets.losses import content_loss, gram, style_layer_loss, style_loss, tv_loss

# One image, C=2 channels, H=1, W=2: F = [[1, 2], [3, 4]] (rows are channels, columns positions).
F = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])
# G = F F^T = [[1+4, 3+8], [3+8, 9+16]] = [[5, 11], [11, 25]]
G_RAW = torch.tensor([[[5.0, 11.0], [11.0, 25.0]]])


def test_gram_modes():
    assert torch.equal(gram(F, "none"), G_RAW)
    assert torch.allclose(gram(F, "hw"), G_RAW / 2)  # H*W = 2
    assert torch.allclose(gram(F, "chw"), G_RAW / 4)  # C*H*W = 4


def test_content_modes():
    P = torch.zeros_like(F)  # diff^2 = 1, 4, 9, 16: sum 30
    assert content_loss(F, P, "sum").item() == 30.0
    assert content_loss(F, P, "half_sum").item() == 15.0
    assert content_loss(F, P, "mean").item() == 7.5


def test_style_layer_modes():
    A = torch.zeros(1, 2, 2)  # (G - A)^2 = 25, 121, 121, 625: sum 892, mean 223
    shape = (2, 1, 2)  # C=2, H=1, W=2: N=2, M=2
    assert style_layer_loss(G_RAW, A, shape, "frobenius").item() == 892.0
    assert style_layer_loss(G_RAW, A, shape, "mean").item() == 223.0
    assert style_layer_loss(G_RAW, A, shape, "gatys").item() == pytest.approx(892.0 / (4 * 4 * 4))  # 4 N^2 M^2 = 64
    assert style_layer_loss(G_RAW, A, shape, "upes").item() == pytest.approx(223.0 / 4)  # / (d h w)


def test_style_loss_weights_and_reduction():
    feats = {"a": F, "b": 2 * F}
    targets = {"a": torch.zeros(1, 2, 2), "b": torch.zeros(1, 2, 2)}
    # layer b: Gram scales by 4, squared difference by 16: frobenius 892 * 16
    s = style_loss(feats, targets, {"a": 1.0, "b": 0.5}, "none", "frobenius", "sum")
    assert s.item() == pytest.approx(892 + 0.5 * 892 * 16)
    m = style_loss(feats, targets, {"a": 1.0, "b": 0.5}, "none", "frobenius", "mean")
    assert m.item() == pytest.approx((892 + 0.5 * 892 * 16) / 2)


def test_tv_modes():
    # one channel image [[0, 1], [3, 7]]: vertical diffs 3, 6; horizontal 1, 4
    y = torch.tensor([[[[0.0, 1.0], [3.0, 7.0]]]])
    assert tv_loss(y, "l1_sum").item() == 14.0
    assert tv_loss(y, "l1_mean").item() == 14.0 / 4
    assert tv_loss(y, "squared_sum").item() == 9 + 36 + 1 + 16


def test_losses_are_per_image():
    x = torch.stack([F[0], 2 * F[0]])  # batch of two images
    P = torch.zeros_like(x)
    assert content_loss(x, P, "sum").tolist() == [30.0, 120.0]
    assert gram(x, "none").shape == (2, 2, 2)
    assert tv_loss(torch.zeros(3, 3, 4, 4)).shape == (3,)


@pytest.mark.parametrize("fn,args", [(gram, (F, "bogus")), (content_loss, (F, F, "bogus")), (tv_loss, (F, "bogus"))])
def test_unknown_mode_is_an_error(fn, args):
    with pytest.raises(ValueError, match="valid"):
        fn(*args)


def test_gram_backward_matches_autograd():
    # the one-matmul backward, (dG + dG^T) F, against autograd through bmm(F, F^T), exact in float64
    torch.manual_seed(0)
    f = torch.randn(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 3, 3, dtype=torch.float64)  # not symmetric: dG = w exercises both halves
    (gram(f, "chw") * w).sum().backward()
    ours = f.grad.clone()
    f.grad = None
    flat = f.reshape(2, 3, 20)
    ((torch.bmm(flat, flat.transpose(1, 2)) / 60) * w).sum().backward()
    assert torch.allclose(ours, f.grad, rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(lambda x: gram(x, "hw"), (f.detach().requires_grad_(),))


def test_gram_without_grad_is_plain_product():
    x = torch.randn(1, 2, 3, 3)
    assert not gram(x).requires_grad and torch.equal(
        gram(x), torch.bmm(x.reshape(1, 2, 9), x.reshape(1, 2, 9).transpose(1, 2))
    )
