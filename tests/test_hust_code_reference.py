"""The `hust-code` preset against a plain re-implementation of the HUST Gatys notebook
(khanhnn20042002/cv20222@265a671, style_transfer.ipynb), written for this test.

The reference follows the notebook's cells: preprocess() on the uint8 targets (Keras
preprocess_input: RGB -> BGR, plus the ImageNet mean cast to uint8, then / 255), the optimised image
fed to VGG19 as it is (RGB in [0, 1]), Gram = einsum('bhwi,bhwj->bij') / H / W on channels-last
features, content and style reduce_mean losses divided by their layer counts, total = 1 * content +
1e4 * style, Keras 2.11+ Adam (m += (g - m)(1 - b1), v += (g^2 - v)(1 - b2), x -= alpha m / (sqrt(v) +
eps)) and clip_by_value(0, 1) after every update. Both sides load the same random weights, a Keras
HDF5 file the test writes; the images are the same uint8 pixels. Loss trajectories agree to 1e-4.
"""

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import needs_assets

from nstbench.config.errors import NstbenchError
from nstbench.config.sources import HUST_CODE
from nstbench.methods.gatys import RunOptions, make_gatys_loss
from nstbench.methods.gatys_run import load_pair, override, run_preset
from nstbench.nets.weights import load_backbone

SIZE = 64  # long side; the notebook uses 512, the loop is the same at any size (hust_cat: 64x48)
STEPS = 30
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # keras imagenet_utils, mode "caffe"
CONTENT_LAYERS = ["block4_conv2"]
STYLE_LAYERS = ["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"]


def write_keras_vgg19(path, seed, first_scale=10.0):
    """A Keras-layout VGG19 weights file (HWIO kernels) from seeded random torch weights; returns the
    arrays as {layer: (kernel HWIO, bias)}. The first conv is scaled by first_scale: random features of
    [0, 1] pixels are small, and against Keras' epsilon 0.1 Adam would move the pixels by ~1e-5 in
    30 steps; x10 scales every feature by 10 (ReLU and pooling are positively homogeneous) and the
    pixels move by about lr per step, as with ImageNet weights."""
    feats = load_backbone("vgg19", "random", seed=seed).extractor.state_dict()
    convs = [f"block{b}_conv{i}" for b, n in enumerate((2, 2, 4, 4, 4), start=1) for i in range(1, n + 1)]
    keys = sorted({int(k.split(".")[1]) for k in feats})
    arrays = {}
    with h5py.File(path, "w") as f:
        for name, i in zip(convs, keys):
            scale = first_scale if name == "block1_conv1" else 1.0
            k = (feats[f"layers.{i}.weight"] * scale).permute(2, 3, 1, 0).numpy().copy()  # OIHW -> HWIO
            b = (feats[f"layers.{i}.bias"] * scale).numpy().copy()
            g = f.create_group(name)
            g.attrs["weight_names"] = [f"{name}/kernel:0".encode(), f"{name}/bias:0".encode()]
            g.create_dataset(f"{name}/kernel:0", data=k)
            g.create_dataset(f"{name}/bias:0", data=b)
            arrays[name] = (k, b)
        f.attrs["layer_names"] = [n.encode() for n in convs]
        f.attrs["keras_version"] = b"2.12.0"
    return arrays


def vgg19_outputs(arrays, x_nhwc, names):
    """Keras VGG19 (include_top=False) by hand: 3x3 'same' convolutions with built-in ReLU, 2x2 max
    pooling between blocks; returns the named layers' outputs channels-last, as Keras gives them."""
    y, block, out = x_nhwc.permute(0, 3, 1, 2), 1, {}
    for name, (k, b) in arrays.items():
        if int(name[5]) != block:
            y, block = F.max_pool2d(y, 2, 2), int(name[5])
        y = F.relu(F.conv2d(y, torch.from_numpy(k).permute(3, 2, 0, 1), torch.from_numpy(b), padding=1))
        if name in names:
            out[name] = y.permute(0, 2, 3, 1)
        if len(out) == len(names):
            return [out[n] for n in names]
    raise AssertionError(names)


def preprocess(image_u8, device="gpu"):
    """The notebook's preprocess(): vgg19.preprocess_input on a uint8 tensor, then / 255. Keras casts
    the mean to the input's dtype: tf.cast(-103.939, uint8) is 0 on a GPU (CUDA saturates) and wraps
    on a CPU (-103 -> 153); bias_add then adds in uint8 (wrapping)."""
    bgr = image_u8.flip(-1)
    mean = torch.tensor([-m for m in CAFFE_MEAN_BGR])
    wrapped = mean.trunc().to(torch.int64).remainder(256).to(torch.uint8)  # -103.939 -> -103 -> 153
    cast = torch.zeros(3, dtype=torch.uint8) if device == "gpu" else wrapped
    return (bgr + cast).to(torch.float32) / 255  # uint8 + uint8 wraps, as tf.nn.bias_add does


def gram_matrix(x):
    result = torch.einsum("bhwi,bhwj->bij", x, x)
    return result / x.shape[1] / x.shape[2]


def loss_function(image_content, image_style, content, style, alpha, beta):
    content_loss = sum(torch.mean(torch.square(f - p)) for f, p in zip(image_content, content)) / len(content)
    style_loss = sum(torch.mean(torch.square(g - a)) for g, a in zip(image_style, style)) / len(style)
    return alpha * content_loss + beta * style_loss


def reference_notebook(arrays, content_u8, style_u8, steps, device="gpu"):
    """The notebook's cells 10-32 and its last cell, on NHWC uint8 images [1, H, W, 3]."""
    content = vgg19_outputs(arrays, preprocess(content_u8, device), CONTENT_LAYERS)
    style = [gram_matrix(x) for x in vgg19_outputs(arrays, preprocess(style_u8, device), STYLE_LAYERS)]
    image = content_u8.to(torch.float32) / 255
    lr, beta_1, beta_2, epsilon = 0.01, 0.90, 0.999, 1e-1
    m, v = torch.zeros_like(image), torch.zeros_like(image)
    losses = []
    for step in range(steps):
        image.requires_grad_(True)
        image_content = vgg19_outputs(arrays, image, CONTENT_LAYERS)
        image_style = [gram_matrix(x) for x in vgg19_outputs(arrays, image, STYLE_LAYERS)]
        loss = loss_function(image_content, image_style, content, style, 1, 10**4)
        (grad,) = torch.autograd.grad(loss, image)
        losses.append(loss.item())
        with torch.no_grad():
            t = step + 1
            alpha = lr * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)
            m += (grad - m) * (1 - beta_1)
            v += (torch.square(grad) - v) * (1 - beta_2)
            image = torch.clamp(image - (m * alpha) / (torch.sqrt(v) + epsilon), 0.0, 1.0)
    return losses, image


def to_uint8_nhwc(x):
    """A loaded unit image (k / 255 exactly: the tf resize truncates to uint8) back to its uint8 pixels."""
    return (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("hust_code") / "vgg19_random.h5"
    return path, write_keras_vgg19(path, seed=2025)  # a seed no other test uses


@needs_assets
def test_hust_code_preset_matches_the_notebook_loop(keras_file):
    path, arrays = keras_file
    preset = override(HUST_CODE, dict(steps=STEPS, size=SIZE))
    content, style = load_pair(preset, "hust_cat", "hust_picasso")
    assert content.shape[-2:] == (48, 64) and max(style.shape[-2:]) == SIZE  # the style keeps its own shape
    ref_losses, ref_image = reference_notebook(arrays, to_uint8_nhwc(content), to_uint8_nhwc(style), STEPS)

    backbone = load_backbone("vgg19", str(path))
    assert backbone.weights["family"] == "keras" and backbone.input_space == "caffe"  # fed raw all the same
    result = run_preset(preset, content, style, backbone, run=RunOptions(progress_every=0))
    ours = [h["total"] for h in result.history]
    assert ours == pytest.approx(ref_losses, rel=1e-4)
    assert ref_losses[-1] < 0.5 * ref_losses[0]  # it is optimising, not standing still
    assert float((ref_image.permute(0, 3, 1, 2) - content).abs().mean()) > 0.05  # the pixels move
    # pixels whose gradient hovers near 0 can take an Adam step either way on a rounding difference:
    # compare the image on average (measured 4e-5; the pixels move by 0.14 on average)
    assert float((result.last - ref_image.permute(0, 3, 1, 2)).abs().mean()) < 1e-3


@needs_assets
def test_the_feed_quirk_is_what_makes_the_match(keras_file):
    """Fed as every other preset is (converted to the Keras weights' caffe input), or with the CPU's
    wrapping uint8 cast in the targets, the first loss is another one."""
    path, arrays = keras_file
    preset = override(HUST_CODE, dict(steps=1, size=SIZE))
    content, style = load_pair(preset, "hust_cat", "hust_picasso")
    backbone = load_backbone("vgg19", str(path))
    gpu, _ = reference_notebook(arrays, to_uint8_nhwc(content), to_uint8_nhwc(style), 1, device="gpu")
    cpu, _ = reference_notebook(arrays, to_uint8_nhwc(content), to_uint8_nhwc(style), 1, device="cpu")
    quirk = make_gatys_loss(backbone, content, style, preset.loss, "unit", feed="hust_code")(content)["total"].item()
    plain = make_gatys_loss(backbone, content, style, preset.loss, "unit")(content)["total"].item()
    assert quirk == pytest.approx(gpu[0], rel=1e-4)
    assert plain != pytest.approx(gpu[0], rel=1e-2) and cpu[0] != pytest.approx(gpu[0], rel=1e-2)
    # the targets go in as BGR: the content term is not zero at the content image itself
    terms = make_gatys_loss(backbone, content, style, preset.loss, "unit", feed="hust_code")(content)
    assert terms["content"].item() > 0 and plain != quirk


def test_hust_code_feed_is_defined_for_unit_space_only(vgg19_random):
    c = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with pytest.raises(NstbenchError, match="unit-space pixels"):
        make_gatys_loss(vgg19_random, c, c, HUST_CODE.loss, "caffe", feed="hust_code")
    with pytest.raises(NstbenchError, match="unknown feed 'raw'; valid: network, hust_code"):
        make_gatys_loss(vgg19_random, c, c, HUST_CODE.loss, "unit", feed="raw")
