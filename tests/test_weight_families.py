"""Weight families (weights.py): Keras HDF5 (two weight-naming styles, old ResNet layer names),
Caffe and Gatys' vgg_conv.pth files the tests write themselves with random values; features against
plain re-implementations written here (Keras ResNet50 v1 block arithmetic by hand), strict loading
errors, each family's input convention, caches with hash checks, and the CLI with a Keras file."""

import hashlib
import json

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from localserver import serve

from nstbench.config.errors import NstbenchError
from nstbench.config.presets import FAST_PRESETS, PRESETS
from nstbench.interfaces.cli import main
from nstbench.nets import weights as W
from nstbench.nets.backbones import layer_names

pytestmark = pytest.mark.usefixtures("one_thread")
RNG = np.random.default_rng(2024)
X = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))  # unit RGB
VGG16_CONVS = [(b, i) for b, n in enumerate((2, 2, 3, 3, 3), start=1) for i in range(1, n + 1)]
VGG_CH = (64, 128, 256, 512, 512)


def _conv_shapes(convs):
    out, cin = [], 3
    for b, i in convs:
        out.append(((3, 3, cin, VGG_CH[b - 1]), (VGG_CH[b - 1],)))
        cin = VGG_CH[b - 1]
    return out


def _write_keras(path, layers, write=lambda name: True, top=()):
    """A legacy Keras weights file: root attr layer_names, each group attr weight_names; arrays of
    layers where write(name) is False are left unallocated (read back as zeros; keeps files small)."""
    with h5py.File(path, "w") as f:
        names = []
        for name, arrays in list(layers) + list(top):
            g = f.create_group(name)
            g.attrs["weight_names"] = [w.encode() for w, _ in arrays]
            for w, a in arrays:
                if isinstance(a, tuple) or not write(name):
                    g.create_dataset(w, shape=a if isinstance(a, tuple) else a.shape, dtype="f4")
                else:
                    g.create_dataset(w, data=a)
            names.append(name)
        f.attrs["layer_names"] = [n.encode() for n in names]
        f.attrs["keras_version"] = b"2.2.4"


def _vgg16_keras_layers(style):
    """Keras VGG16 conv layers with random kernels (HWIO) and biases, in forward order.
    style "tf1": block1_conv1/kernel:0 (TF1 Keras); "k3": block1_conv1/kernel (Keras 3's legacy writer)."""
    layers = []
    for (b, i), (ks, bs) in zip(VGG16_CONVS, _conv_shapes(VGG16_CONVS)):
        name = f"block{b}_conv{i}"
        suffix = ":0" if style == "tf1" else ""
        k = (RNG.standard_normal(ks) * np.sqrt(2.0 / (9 * ks[2]))).astype(np.float32)
        layers.append(
            (
                name,
                [
                    (f"{name}/kernel{suffix}", k),
                    (f"{name}/bias{suffix}", RNG.standard_normal(bs).astype(np.float32) * 0.1),
                ],
            )
        )
    return layers


def _caffe_input(x):
    """Keras preprocess_input(mode="caffe") by hand: RGB [0,1] -> BGR 0..255 minus the BGR mean."""
    bgr = x[:, [2, 1, 0]] * 255.0
    return bgr - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)


def _vgg_keras_reference(layers, x_net, upto):
    """relu{b}_{i} of a Keras VGG by hand: HWIO kernels as OIHW via numpy transpose, 'same' 3x3."""
    y, prev_b = x_net, 1
    for name, arrays in layers:
        b = int(name[5])
        if b != prev_b:
            y, prev_b = F.max_pool2d(y, 2, 2), b
        k = torch.from_numpy(np.transpose(arrays[0][1], (3, 2, 0, 1)).copy())
        y = F.relu(F.conv2d(y, k, torch.from_numpy(arrays[1][1]), padding=1))
        if name == upto:
            return y
    raise AssertionError(upto)


@pytest.fixture(scope="module")
def vgg16_keras_file(tmp_path_factory):
    layers = _vgg16_keras_layers("tf1")
    path = tmp_path_factory.mktemp("keras") / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    _write_keras(path, layers)
    return path, layers


def test_keras_vgg16_file_features_and_input_convention(vgg16_keras_file):
    path, layers = vgg16_keras_file
    b = W.load_backbone("vgg16", str(path), family="torchvision")
    assert b.weights["family"] == "keras" and b.input_space == "caffe" and b.weights["kind"] == "file"
    assert len(b.weights["md5"]) == 32 and len(b.weights["sha256"]) == 64 and b.weights["file_name"] == path.name
    assert torch.allclose(b.preprocess(X), _caffe_input(X), atol=1e-4)
    got = b.extract(b.preprocess(X), ["block3_conv3", "relu5_3"])
    ref = _vgg_keras_reference(layers, _caffe_input(X), "block3_conv3")
    assert torch.allclose(got["block3_conv3"], ref, rtol=1e-5, atol=1e-5 * float(ref.abs().max()))
    ref5 = _vgg_keras_reference(layers, _caffe_input(X), "block5_conv3")
    assert torch.allclose(got["relu5_3"], ref5, rtol=1e-5, atol=1e-5 * float(ref5.abs().max()))


def test_keras3_naming_and_a_full_model_file_with_its_top(tmp_path):
    """Keras 3's legacy writer names arrays `block1_conv1/kernel`; a full-model save nests the layers
    under model_weights and carries fc1/fc2/predictions, which go unused (and are recorded)."""
    layers = _vgg16_keras_layers("k3")
    top = [(n, [(f"{n}/kernel", (4, 4)), (f"{n}/bias", (4,))]) for n in ("fc1", "fc2", "predictions")]
    path = tmp_path / "full.h5"
    _write_keras(path, [(n, a) for n, a in layers], write=lambda n: n.startswith("block1"), top=top)
    with h5py.File(path, "a") as f:  # move everything under model_weights, as model.save() lays it out
        g = f.create_group("model_weights")
        for n in [k for k in f if k != "model_weights"]:
            f.move(n, f"model_weights/{n}")
        for k, v in list(f.attrs.items()):
            g.attrs[k] = v
            del f.attrs[k]
    b = W.load_backbone("vgg16", str(path))
    assert b.weights["family"] == "keras" and "3 classification-head" in b.weights["unused"]
    got = b.extract(b.preprocess(X), ["relu1_2"])["relu1_2"]
    assert torch.allclose(got, _vgg_keras_reference(layers, _caffe_input(X), "block1_conv2"), atol=1e-4)


# ---- Keras ResNet50 v1 ----------------------------------------------------------------------

BLOCKS = (3, 4, 6, 3)


def _old_name(keras_name):
    """tf.keras names -> the old keras_applications names the ImageNet file carries."""
    if keras_name == "conv1_conv":
        return "conv1"
    if keras_name == "conv1_bn":
        return "bn_conv1"
    stage, blk, k, kind = keras_name.split("_")  # "conv2", "block1", "1", "conv"
    s = stage[4:]
    letter = "abcdef"[int(blk[5:]) - 1]
    branch = "branch1" if k == "0" else "branch2" + "abc"[int(k) - 1]
    return f"{'res' if kind == 'conv' else 'bn'}{s}{letter}_{branch}"


def _resnet_file_order():
    """Weighted layers in the order tf.keras' ResNet50 lists them (its model.summary(): in a
    stage's first block the shortcut conv comes after 2_relu, then 3_conv, 0_bn, 3_bn)."""
    names = ["conv1_conv", "conv1_bn"]
    for s, n in enumerate(BLOCKS, start=2):
        for b in range(1, n + 1):
            p = f"conv{s}_block{b}"
            names += [f"{p}_1_conv", f"{p}_1_bn", f"{p}_2_conv", f"{p}_2_bn"]
            names += (
                [f"{p}_0_conv", f"{p}_3_conv", f"{p}_0_bn", f"{p}_3_bn"] if b == 1 else [f"{p}_3_conv", f"{p}_3_bn"]
            )
    return names


def _resnet_params():
    """Random Keras-layout arrays for every weighted layer: {name: [arrays in Keras order]}."""
    shapes, cin = {"conv1_conv": (7, 7, 3, 64)}, 64
    for s, n in enumerate(BLOCKS, start=2):
        f = 64 * 2 ** (s - 2)
        for b in range(1, n + 1):
            p = f"conv{s}_block{b}"
            if b == 1:
                shapes[f"{p}_0_conv"] = (1, 1, cin, 4 * f)
            shapes.update({f"{p}_1_conv": (1, 1, cin, f), f"{p}_2_conv": (3, 3, f, f), f"{p}_3_conv": (1, 1, f, 4 * f)})
            cin = 4 * f
    params = {}
    for name, (kh, kw, ci, co) in shapes.items():
        k = (RNG.standard_normal((kh, kw, ci, co)) * np.sqrt(1.0 / (kh * kw * ci))).astype(np.float32)
        params[name] = [k, (RNG.standard_normal(co) * 0.1).astype(np.float32)]
        vec = lambda scale: (RNG.standard_normal(co) * scale).astype(np.float32)  # noqa: E731
        # gamma, beta, moving_mean, moving_variance (Keras' order)
        params[name[:-4] + "bn"] = [
            RNG.uniform(0.5, 1.0, co).astype(np.float32),
            vec(0.1),
            vec(0.1),
            RNG.uniform(0.5, 1.5, co).astype(np.float32),
        ]
    params["conv1_bn"][3][:4] = 1e-5  # near-zero variances make Keras' epsilon 1.001e-5 (not 1e-5) visible
    return params


def _resnet_reference(params, x):
    """Keras ResNet50 v1 by hand on BGR-0..255 input: {keras name: output} of every tapped layer."""

    def conv(name, y, stride=1, same=False):
        k, b = params[name]
        w = torch.from_numpy(np.transpose(k, (3, 2, 0, 1)).copy())
        if same:  # padding="SAME" for the 3x3, stride 1: one pixel each side
            y = F.pad(y, (1, 1, 1, 1))
        return F.conv2d(y, w, torch.from_numpy(b), stride=stride)

    def bn(name, y):
        g, beta, mean, var = (torch.from_numpy(a).view(1, -1, 1, 1) for a in params[name])
        return g * (y - mean) / torch.sqrt(var + 1.001e-5) + beta

    out = {}
    y = out["conv1_conv"] = conv("conv1_conv", F.pad(x, (3, 3, 3, 3)), stride=2)
    y = F.relu(bn("conv1_bn", y))
    y = out["pool1_pool"] = F.max_pool2d(F.pad(y, (1, 1, 1, 1)), 3, 2)
    for s, n in enumerate(BLOCKS, start=2):
        for b in range(1, n + 1):
            p, stride = f"conv{s}_block{b}", (2 if s > 2 and b == 1 else 1)
            short = y
            if b == 1:
                out[f"{p}_0_conv"] = conv(f"{p}_0_conv", y, stride)
                short = out[f"{p}_0_bn"] = bn(f"{p}_0_bn", out[f"{p}_0_conv"])
            h = F.relu(bn(f"{p}_1_bn", conv(f"{p}_1_conv", y, stride)))
            h = out[f"{p}_2_bn"] = bn(f"{p}_2_bn", conv(f"{p}_2_conv", h, same=True))
            h = out[f"{p}_3_bn"] = bn(f"{p}_3_bn", conv(f"{p}_3_conv", F.relu(h)))
            y = out[f"{p}_out"] = F.relu(short + h)
    return out


@pytest.fixture(scope="module")
def resnet_keras_file(tmp_path_factory):
    """A Keras ResNet50 weights file with old layer names and weight names, layers without weights
    interleaved (as in a real file), and random values in every layer."""
    params = _resnet_params()
    layers = [("input_1", [])]
    for i, name in enumerate(_resnet_file_order()):
        old = _old_name(name)
        keys = ("W", "b") if name.endswith("conv") else ("gamma", "beta", "running_mean", "running_std")
        layers.append((old, [(f"{old}_{k}:0", a) for k, a in zip(keys, params[name])]))
        if i % 7 == 0:
            layers.append((f"activation_{i}", []))
    path = tmp_path_factory.mktemp("keras_resnet") / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    _write_keras(path, layers)
    return path, params


def test_keras_resnet50_v1_matches_a_hand_written_forward(resnet_keras_file):
    path, params = resnet_keras_file
    b = W.load_backbone("keras_resnet50", str(path))
    assert b.weights["family"] == "keras" and b.input_space == "caffe"
    x = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(5))
    taps = [
        "conv1_conv",
        "pool1_pool",
        "conv2_block1_0_bn",
        "conv2_block2_2_bn",
        "conv3_block1_0_conv",
        "conv3_block1_0_bn",
        "conv4_block1_3_bn",
        "conv4_block6_out",
        "conv5_block1_3_bn",
        "conv5_block3_out",
    ]
    got = b.extract(b.preprocess(x), taps)
    ref = _resnet_reference(params, _caffe_input(x))
    for name in taps:
        scale = float(ref[name].abs().max())
        assert got[name].shape == ref[name].shape, name
        assert (got[name] - ref[name]).abs().max() <= 1e-5 * scale, name


def test_keras_resnet50_shapes_strides_and_feature_info():
    b = W.load_backbone("keras_resnet50", "random", seed=0)
    assert b.weights["family"] == "random" and b.input_space == "imagenet"
    info = b.feature_info
    assert list(info) == layer_names("keras_resnet50")
    # v1: the stride sits in the first 1x1 conv; torchvision's v1.5 puts it in the 3x3
    assert info["conv3_block1_1_conv"].stride == 2 and info["conv3_block1_1_conv"].reduction == 8
    tv = W.load_backbone("resnet50", "random", seed=0).feature_info
    assert tv["conv3_block1_1_conv"].reduction == 4 and tv["conv3_block1_2_conv"].stride == 2
    out = b.extract(torch.randn(1, 3, 64, 64), ["conv3_block1_1_relu", "conv5_block3_3_bn"])
    for name, t in out.items():
        assert t.shape[1] == info[name].channels and t.shape[-1] == 64 // info[name].reduction, name
    convs = [m for m in b.extractor.modules() if isinstance(m, torch.nn.Conv2d)]
    bns = [m for m in b.extractor.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(convs) == 53 and all(c.bias is not None for c in convs) and all(m.eps == 1.001e-5 for m in bns)
    c = W.load_backbone("keras_resnet50", "random", seed=0).extract(torch.ones(1, 3, 32, 32), ["conv2_block1_out"])
    d = W.load_backbone("keras_resnet50", "random", seed=1).extract(torch.ones(1, 3, 32, 32), ["conv2_block1_out"])
    assert not torch.equal(c["conv2_block1_out"], d["conv2_block1_out"])  # seeded


def test_vgg_feature_info_matches_the_features():
    b = W.load_backbone("vgg19", "random", seed=0)
    out = b.extract(torch.randn(1, 3, 48, 48), ["conv3_4", "pool4", "relu5_1"])
    for name, t in out.items():
        fi = b.feature_info[name]
        assert t.shape[1] == fi.channels and t.shape[-1] == 48 // fi.reduction, name
    assert b.feature_info["conv3_1"].in_channels == 128 and b.feature_info["pool4"].kind == "pool"


# ---- strict loading ----------------------------------------------------------------------------


def _small_vgg16(path, edit=None):
    """A VGG16 Keras file with unallocated (zero) arrays; `edit` changes the layer list first."""
    layers = [(n, [(w, a.shape) for w, a in arrays]) for n, arrays in _vgg16_keras_layers("tf1")]
    if edit:
        layers = edit(layers)
    _write_keras(path, layers)
    return path


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda L: L[:-1], "the file has 12 layers with weights, vgg16 has 13 (first missing: conv5_3)"),
        (lambda L: L + [("block6_conv1", [("k", (3, 3, 512, 512)), ("b", (512,))])], "unexpected layer 'block6_conv1'"),
        (
            lambda L: [L[0][:1] + ([L[0][1][0], L[0][1][1], ("block1_conv1/extra:0", (64,))],)] + L[1:],
            "layer #0 'block1_conv1' (for conv1_1) holds 3 arrays",
        ),
        (
            lambda L: L[:1] + [(L[1][0], [("k", (3, 3, 64, 32)), ("b", (64,))])] + L[2:],
            "layer #1 'block1_conv2' array 'k' has shape (3, 3, 64, 32), conv1_2 needs (3, 3, 64, 64)",
        ),
        (lambda L: [(L[0][0], [(L[0][1][0][0], (64, 3, 3, 3)), L[0][1][1]])] + L[1:], "needs (3, 3, 3, 64)"),
    ],
)
def test_keras_strict_errors(tmp_path, edit, message):
    path = _small_vgg16(tmp_path / "bad.h5", edit)
    with pytest.raises(NstbenchError, match=f"weights {path} do not fit vgg16: ") as e:
        W.load_backbone("vgg16", str(path))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_keras_file_errors_truncated_missing_array_and_wrong_arch(tmp_path):
    path = _small_vgg16(tmp_path / "ok.h5")
    (tmp_path / "cut.h5").write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(NstbenchError, match=f"cannot read weights file {tmp_path / 'cut.h5'}"):
        W.load_backbone("vgg16", str(tmp_path / "cut.h5"))
    with h5py.File(tmp_path / "renamed.h5", "w") as f:  # weight_names points at an array the file lacks
        f.attrs["layer_names"] = [b"block1_conv1"]
        g = f.create_group("block1_conv1")
        g.attrs["weight_names"] = [b"block1_conv1/kernel:0"]
        g.create_dataset("block1_conv1/kernel_renamed:0", shape=(3, 3, 3, 64), dtype="f4")
    with pytest.raises(NstbenchError, match="cannot read weights file .*renamed.h5"):
        W.load_backbone("vgg16", str(tmp_path / "renamed.h5"))
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(NstbenchError, match="not a Keras weights file"):
        W.load_backbone("vgg16", str(tmp_path / "plain.h5"))
    with pytest.raises(NstbenchError, match="do not fit vgg19: the file has 13 layers with weights, vgg19 has 16"):
        W.load_backbone("vgg19", str(path))
    with pytest.raises(
        NstbenchError, match="ok.h5 are a Keras file; Keras files fit vgg16, vgg19 and keras_resnet50, not resnet50"
    ):
        W.load_backbone("resnet50", str(path))


def test_torch_formats_strict_errors(tmp_path, vgg16_random):
    feats = {k.replace("layers.", "features."): v for k, v in vgg16_random.extractor.state_dict().items()}
    renamed = dict(feats)
    renamed["features.0.w"] = renamed.pop("features.0.weight")
    extra = dict(feats, **{"features.0.bias_extra": torch.zeros(64)})
    for state, message in [
        (renamed, "missing 1 keys (first: features.0.weight)"),
        (extra, "unexpected 1 keys (first: features.0.bias_extra)"),
    ]:
        torch.save(state, tmp_path / "w.pth")
        with pytest.raises(NstbenchError, match="do not fit vgg16: ") as e:
            W.load_backbone("vgg16", str(tmp_path / "w.pth"))
        assert message in str(e.value)
    torch.save(feats, tmp_path / "ok.pth")
    (tmp_path / "cut.pth").write_bytes((tmp_path / "ok.pth").read_bytes()[:100_000])
    with pytest.raises(NstbenchError, match="cannot read weights file .*cut.pth"):
        W.load_backbone("vgg16", str(tmp_path / "cut.pth"))
    with pytest.raises(NstbenchError, match="do not fit keras_resnet50: missing"):
        W.load_backbone("keras_resnet50", str(tmp_path / "ok.pth"))


# ---- Gatys' vgg_conv.pth and the Caffe conversions ---------------------------------------------


def _gatys_state(vgg19_random, deep_zero=True):
    """vgg_conv.pth layout (conv1_1.weight ...): random conv1_*, the rest stride-0 zeros (tiny file)."""
    names = layer_names("vgg19")
    out = {}
    for k, v in vgg19_random.extractor.state_dict().items():
        i, param = k.split(".")[1:]
        name = names[int(i)]
        keep = name.startswith("conv1_") or not deep_zero
        out[f"{name}.{param}"] = v.clone() if keep else torch.zeros(1).expand(v.shape)
    return out


def test_gatys_file_layout_and_input_convention(tmp_path, vgg19_random):
    state = _gatys_state(vgg19_random)
    torch.save(state, tmp_path / "vgg_conv.pth")
    b = W.load_backbone("vgg19", str(tmp_path / "vgg_conv.pth"))
    assert b.weights["family"] == "gatys" and b.input_space == "gatys" and b.weights["kind"] == "file"
    mean = torch.tensor([0.40760392, 0.45795686, 0.48501961]).view(1, 3, 1, 1)
    net_in = (X[:, [2, 1, 0]] - mean) * 255.0  # Gatys' prep: to BGR, Normalize(mean, std 1), times 255
    assert torch.allclose(b.preprocess(X), net_in, atol=1e-4)
    ref = F.relu(
        F.conv2d(
            F.relu(F.conv2d(net_in, state["conv1_1.weight"], state["conv1_1.bias"], padding=1)),
            state["conv1_2.weight"],
            state["conv1_2.bias"],
            padding=1,
        )
    )
    assert torch.allclose(b.extract(b.preprocess(X), ["relu1_2"])["relu1_2"], ref, rtol=1e-5, atol=1e-4)
    del state["conv5_4.bias"]
    torch.save(state, tmp_path / "cut.pth")
    with pytest.raises(NstbenchError, match="missing 1 keys"):
        W.load_backbone("vgg19", str(tmp_path / "cut.pth"))
    with pytest.raises(NstbenchError, match="do not fit vgg16: unexpected 6 keys"):
        W.load_backbone("vgg16", str(tmp_path / "vgg_conv.pth"))


@pytest.fixture
def caches(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(W, "_warned", set())
    W.file_digest.cache_clear()
    return tmp_path


def test_caffe_family_download_is_hash_checked_and_uses_bgr_input(caches, monkeypatch, vgg16_random, capsys):
    """A torchvision-layout file named like jcjohnson's (sha256 prefix in the name), served locally."""
    www = caches / "www"
    www.mkdir()
    feats = {k.replace("layers.", "features."): v for k, v in vgg16_random.extractor.state_dict().items()}
    torch.save(dict(feats, **{"classifier.6.bias": torch.zeros(1000)}), www / "tmp.pth")
    name = f"vgg16-{hashlib.sha256((www / 'tmp.pth').read_bytes()).hexdigest()[:8]}.pth"
    (www / "tmp.pth").rename(www / name)
    monkeypatch.delenv("NSTBENCH_OFFLINE", raising=False)  # the download path itself, from 127.0.0.1
    with serve(www) as url:
        monkeypatch.setitem(W._CAFFE_URLS, "vgg16", f"{url}/{name}")
        b = W.load_backbone("vgg16", "imagenet", family="caffe")
    assert b.weights["kind"] == "imagenet" and b.weights["family"] == "caffe" and b.input_space == "caffe"
    assert (W.hub_checkpoint_dir() / name).is_file() and "substituted_for" not in b.weights
    assert "1 classification-head" in b.weights["unused"]
    # the same cached file asked for as a substitute by a torchvision preset: warned once, recorded
    s1 = W.load_backbone("vgg16", "caffe", family="torchvision")
    W.load_backbone("vgg16", "caffe", family="torchvision")
    assert s1.weights["substituted_for"] == "torchvision" and s1.input_space == "caffe"
    assert capsys.readouterr().err.count("caffe weights for vgg16 instead of the source's torchvision") == 1
    # given as PATH, the published hash makes it the caffe family whatever the preset's
    p = W.load_backbone("vgg16", str(W.hub_checkpoint_dir() / name), family="torchvision")
    assert (
        p.weights["family"] == "caffe"
        and p.weights["kind"] == "imagenet"
        and p.weights["family_from"] == "published hash"
    )
    ref = vgg16_random.extract(_caffe_input(X), ["relu2_2"])["relu2_2"]
    assert torch.equal(b.extract(b.preprocess(X), ["relu2_2"])["relu2_2"], ref)


def test_keras_cache_md5_check_and_offline_message(caches, monkeypatch):
    path = _small_vgg16(caches / "v.h5")
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    monkeypatch.setitem(W._KERAS_FILES, "vgg16", [("vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", md5)])
    monkeypatch.setattr(W, "_KERAS", "http://127.0.0.1:9/")  # nothing listens: no download
    with pytest.raises(NstbenchError) as e:
        W.load_backbone("vgg16", "imagenet", family="keras")
    msg = str(e.value)
    assert "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in msg and str(caches / "keras" / "models") in msg
    assert f"md5:{md5}" in msg and "--weights PATH" in msg
    cached = caches / "keras" / "models" / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    assert not cached.exists()  # the failed download left nothing behind
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(path.read_bytes())
    b = W.load_backbone("vgg16", "auto", family="keras")
    assert b.weights["kind"] == "imagenet" and b.weights["md5"] == md5 and b.input_space == "caffe"
    cached.write_bytes(path.read_bytes()[:-8] + b"\0" * 8)
    W.file_digest.cache_clear()
    with pytest.raises(NstbenchError, match="does not match the md5"):
        W.load_backbone("vgg16", "imagenet", family="keras")


def test_family_requests_that_have_no_file_are_clear(caches):
    with pytest.raises(NstbenchError, match="no gatys ImageNet weights for vgg16 .*torchvision, keras, caffe"):
        W.load_backbone("vgg16", "gatys")
    with pytest.raises(NstbenchError, match="no torchvision ImageNet weights for keras_resnet50"):
        W.load_backbone("keras_resnet50", "imagenet", family="torchvision")
    with pytest.raises(NstbenchError, match="unknown weight family 'tf'"):
        W.load_backbone("vgg16", "imagenet", family="tf")


def test_every_preset_names_its_sources_weight_family():
    fams = {name: p.weights for name, p in {**PRESETS, **FAST_PRESETS}.items()}
    assert fams == {
        "hust": "keras",
        "iitb-vgg19": "keras",
        "iitb-resnet50": "keras",
        "nyu": "torchvision",
        "upes": "torchvision",
        "johnson2016": "caffe",
        "pytorch-examples": "torchvision",
        "gatys2016": "gatys",
        "gatys2016-code": "gatys",
        "johnson2016-code": "caffe",
        "hust-code": "keras",
    }
    assert PRESETS["iitb-resnet50"].backbone == "keras_resnet50"
    for p in {**PRESETS, **FAST_PRESETS}.values():  # each family has its file for each preset's backbone
        assert W.weight_files(p.weights, p.backbone), p.name


def test_offline_message_says_which_file_goes_where_for_a_preset(caches, monkeypatch, capsys):
    monkeypatch.setattr(W, "_KERAS", "http://127.0.0.1:9/")
    rc = main(
        [
            "stylize",
            "--preset",
            "iitb-resnet50",
            "--content",
            "chelsea",
            "--style",
            "starry_night",
            "--weights",
            "imagenet",
            "--steps",
            "1",
            "--size",
            "48",
            "--out",
            str(caches / "o"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5" in err and str(caches / "keras" / "models") in err


def test_cli_stylize_iitb_resnet50_with_a_keras_file(resnet_keras_file, tmp_path, capsys):
    path, _ = resnet_keras_file
    rc = main(
        [
            "stylize",
            "--preset",
            "iitb-resnet50",
            "--content",
            "chelsea",
            "--style",
            "starry_night",
            "--weights",
            str(path),
            "--steps",
            "2",
            "--size",
            "48",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    w = json.loads((tmp_path / "o" / "run.json").read_text())["weights"]
    assert w["family"] == "keras" and w["arch"] == "keras_resnet50" and w["input_space"] == "caffe"
    assert w["file_name"] == path.name and w["md5"] == hashlib.md5(path.read_bytes()).hexdigest()
    assert w["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest() and w["sha256"][:12] in out


def test_gatys_family_from_its_cache_folder(caches, vgg19_random):
    """vgg_conv.pth has no published hash: in its cache folder it counts as the family's file, and
    the record says no hash could be checked."""
    W.hub_checkpoint_dir().mkdir(parents=True)
    torch.save(_gatys_state(vgg19_random), W.hub_checkpoint_dir() / "vgg_conv.pth")
    b = W.load_backbone("vgg19", "imagenet", family="gatys")
    assert b.weights["kind"] == "imagenet" and b.weights["family"] == "gatys" and b.input_space == "gatys"
    assert b.weights["published_hash"] == "none published" and len(b.weights["sha256"]) == 64
    assert W.weights_label(b.weights).startswith("gatys vgg_conv.pth sha256 ")
