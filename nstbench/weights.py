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

`--weights` takes:
  auto       the preset's family's ImageNet weights when they can be had (cache, else a download),
             otherwise seeded random weights, with a warning printed once and recorded in every output;
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
import os
import re
import socket
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from .backbones import ARCHS, VGG_BLOCKS, Backbone, Pooling, build_model, make_extractor, vgg_layer_names
from .checkpoints import check_state, read_torch_file
from .errors import NstbenchError, unknown

FAMILIES = ("torchvision", "keras", "caffe", "gatys")
KEYWORDS = ("auto", "imagenet", "random") + FAMILIES  # what --weights takes besides a file
INPUT_SPACE = {"torchvision": "imagenet", "keras": "caffe", "caffe": "caffe", "gatys": "gatys"}
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


def read_weights_file(path: Path) -> tuple[str, object]:
    """(layout, content): "keras" -> read_keras_h5's list; "gatys" / "torchvision" -> a state dict."""
    if path.is_dir():
        raise NstbenchError(f"--weights {path} is a folder; give a weights file or one of {', '.join(KEYWORDS)}")
    if not path.is_file():
        if os.sep not in str(path) and not path.suffix:  # a mistyped keyword, not a file name
            raise unknown("weights", str(path), KEYWORDS + ("PATH (a state-dict file)",))
        raise NstbenchError(f"weights file not found: {path}")
    with open(path, "rb") as f:
        if f.read(8) == _HDF5_MAGIC:
            return "keras", read_keras_h5(path)
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
    if layout == "keras":
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


def _warn_once(key: tuple, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        print(f"nstbench: warning: {message}", file=sys.stderr)


def _load_family(model, arch: str, weights: str, family: str, seed: int) -> dict:
    use = family if weights in ("imagenet", "auto") else weights
    try:
        offline = os.environ.get("NSTBENCH_OFFLINE") == "1"  # no download attempt, whatever was asked
        path, wf = fetch(use, arch, allow_download=not offline)
        layout, content = read_weights_file(path)
        unused = apply_weights(model, arch, layout, content, str(path))
        record = _file_record(path, arch, layout, use, wf)
        if unused:
            record["unused"] = f"{len(unused)} classification-head entries ({unused[0]}, ...)"
    except NstbenchError as e:
        if weights != "auto":
            raise
        _warn_once(
            ("random", arch, use),
            f"{use} ImageNet weights for {arch} unavailable; using seeded random "
            f"weights (seed {seed}). Numbers are NOT comparable with ImageNet results.",
        )
        return {"kind": "random", "imagenet": False, "family": "random", "seed": seed, "fallback_reason": str(e)}
    if use != family:
        record["substituted_for"] = family
        _warn_once(
            ("substitute", arch, use, family),
            f"{use} weights for {arch} instead of the source's "
            f"{family} weights: the numbers are not the source's setting",
        )
    return record


def load_backbone(
    arch: str, weights: str = "auto", seed: int = 0, pooling: Pooling = "max", family: str | None = None
) -> Backbone:
    """A frozen extractor for `arch` with the requested weights (see the module docstring).

    family: the weight family `imagenet` and `auto` mean (the preset's `weights`); default
    torchvision (keras for keras_resnet50).
    """
    if arch not in ARCHS:
        raise unknown("backbone", arch, ARCHS)
    family = family or default_family(arch)
    if family not in FAMILIES:
        raise unknown("weight family", family, FAMILIES)
    with torch.random.fork_rng(devices=[]):  # seeded init that leaves the caller's RNG alone
        torch.manual_seed(seed)
        model = build_model(arch)
    if weights == "random":
        record = {"kind": "random", "imagenet": False, "family": "random", "seed": seed}
    elif weights in ("imagenet", "auto") or weights in FAMILIES:
        record = _load_family(model, arch, weights, family, seed)
    else:
        record = _load_path(model, arch, Path(weights).expanduser(), family)
    record["arch"] = arch
    record["input_space"] = INPUT_SPACE.get(record["family"], "imagenet")  # random: torchvision's convention
    return Backbone(
        arch=arch, extractor=make_extractor(model, arch, pooling), weights=record, input_space=record["input_space"]
    )


def weights_label(record: dict) -> str:
    """One short line for a weights record: 'random (seed 0)' or 'keras vgg19_..._notop.h5 sha256 1a2b3c4d'."""
    if record.get("kind") == "random":
        return f"random (seed {record.get('seed', 0)})"
    sub = f", instead of {record['substituted_for']}" if record.get("substituted_for") else ""
    name = record.get("file_name") or os.path.basename(str(record.get("file", "?")))  # older records: no file_name
    digest = record.get("sha256") or record.get("sha256_prefix") or "?"
    return f"{record.get('family', record.get('kind'))} {name} sha256 {digest[:12]}{sub}"


# what each --weights keyword means, for help texts; a keyword missing here is still listed (by name)
_KEYWORD_HELP = {
    "auto": "the preset's ImageNet weights if they can be had, else random, warned",
    "imagenet": "the preset's own ImageNet weights, else an error",
    "random": "seeded random weights",
}


def weights_help() -> str:
    """--weights' choices for every command's help (nstbench stylize/train, the experiment scripts),
    read from KEYWORDS and FAMILIES so that the lists cannot drift apart or fall behind."""
    own = [f"{k} ({_KEYWORD_HELP[k]})" if k in _KEYWORD_HELP else k for k in KEYWORDS if k not in FAMILIES]
    families = " | ".join(k for k in KEYWORDS if k in FAMILIES) + " (that family's ImageNet weights instead)"
    return " | ".join([*own, families, "PATH (a weights file)"]) + " (default auto)"
