"""Backbone weights: ImageNet (torchvision, hash-checked), a local file, or seeded random.

`--weights` takes:
  auto      ImageNet weights when they can be had (TORCH_HOME cache, else a download), otherwise
            seeded random weights, with a warning printed once and recorded in every output;
  imagenet  the torchvision ImageNet weights, or a clear error saying how to supply them;
  random    seeded random weights (torchvision's own init under `torch.manual_seed(seed)`);
  PATH      a state-dict file in torchvision's key layout: the full model (`features.0.weight`,
            `layer1.0.conv1.weight`, ...) or, for VGG, the `features` part alone (`0.weight`).
A file whose sha256 matches torchvision's published hash is recorded as ImageNet weights.
Numbers from random weights are never ImageNet results: every output says which weights ran.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import socket
import sys
from functools import lru_cache
from pathlib import Path

import torch

from .assets import sha256_of
from .backbones import ARCHS, Backbone, Pooling, build_torchvision, make_extractor
from .errors import NstbenchError, unknown

# torchvision weight enums (IMAGENET1K_V1 for all three: the VGG weights the sources used).
_ENUMS = {"vgg16": "VGG16_Weights", "vgg19": "VGG19_Weights", "resnet50": "ResNet50_Weights"}
_HASH_IN_NAME = re.compile(r"-([a-f0-9]+)\.")  # torch.hub convention: <name>-<sha256 prefix>.pth
_warned: set[str] = set()


def imagenet_url(arch: str) -> str:
    import torchvision

    if arch not in _ENUMS:
        raise unknown("backbone", arch, ARCHS)
    return getattr(torchvision.models, _ENUMS[arch]).IMAGENET1K_V1.url


def hub_checkpoint_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"  # $TORCH_HOME/hub/checkpoints


def _hash_prefix(url_or_name: str) -> str:
    m = _HASH_IN_NAME.search(os.path.basename(url_or_name))
    return m.group(1) if m else ""


@lru_cache(maxsize=None)
def _verified(path: str, prefix: str) -> bool:
    return sha256_of(Path(path)).startswith(prefix)


def imagenet_state_dict(arch: str, allow_download: bool = True, url: str | None = None) -> tuple[dict, dict]:
    """Load torchvision's ImageNet state dict from the TORCH_HOME cache or by download.

    Both the cached file and a fresh download are checked against the sha256 prefix in the file
    name (torch.hub only checks downloads). Returns (state_dict, record).
    """
    url = url or imagenet_url(arch)
    fname = os.path.basename(url)
    cached = hub_checkpoint_dir() / fname
    prefix = _hash_prefix(fname)
    how = f"place {fname} (from {url}) in {cached.parent} or pass --weights PATH"
    if not cached.is_file():
        if not allow_download:
            raise NstbenchError(f"ImageNet weights for {arch} are not in the torch cache (NSTBENCH_OFFLINE=1: "
                                f"no download attempted); {how}")
        old = socket.getdefaulttimeout()
        socket.setdefaulttimeout(30)
        try:  # torch.hub prints "Downloading: ..." on stdout before it tries: offline, that is one per call
            with contextlib.redirect_stdout(io.StringIO()):
                torch.hub.load_state_dict_from_url(url, check_hash=True, map_location="cpu", progress=sys.stderr.isatty())
            print(f"nstbench: downloaded {fname} (sha256 prefix checked) into {cached.parent}", file=sys.stderr)
        except Exception as e:  # URLError, timeouts, hash mismatch (torch.hub deletes the temp file)
            raise NstbenchError(f"cannot get ImageNet weights for {arch}: {e}; {how}") from None
        finally:
            socket.setdefaulttimeout(old)
    if prefix and not _verified(str(cached), prefix):
        raise NstbenchError(f"{cached} does not match the sha256 prefix {prefix} in its name; delete it and retry")
    state = torch.load(cached, map_location="cpu", weights_only=True)
    return state, {"kind": "imagenet", "imagenet": True, "source": f"torchvision {_ENUMS[arch]}.IMAGENET1K_V1",
                   "file": str(cached), "sha256_prefix": prefix}


KEYWORDS = ("auto", "imagenet", "random")


def _load_file(arch: str, path: Path) -> tuple[dict, dict]:
    if path.is_dir():
        raise NstbenchError(f"--weights {path} is a folder; give a weights file or one of {', '.join(KEYWORDS)}")
    if not path.is_file():
        if os.sep not in str(path) and not path.suffix:  # a mistyped keyword, not a file name
            raise unknown("weights", str(path), KEYWORDS + ("PATH (a state-dict file)",))
        raise NstbenchError(f"weights file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch.load's messages run to several lines: keep the one that says why
        raise NstbenchError(f"cannot read weights file {path}: {torch_load_reason(e)}") from None
    if isinstance(state, torch.nn.Module):
        state = state.state_dict()
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise NstbenchError(f"weights file {path} is not a state dict of tensors")
    digest = sha256_of(path)
    prefix = _hash_prefix(imagenet_url(arch))
    is_imagenet = bool(prefix) and digest.startswith(prefix)
    return state, {"kind": "imagenet" if is_imagenet else "file", "imagenet": is_imagenet,
                   "file": str(path), "sha256": digest}


def torch_load_reason(e: Exception) -> str:
    """One line saying why torch.load refused a file (its own messages run to several lines, and
    a file that is no torch file at all fails with bare unpickler errors such as "...: 101")."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()] or [type(e).__name__]
    msg = next((ln for ln in lines if ln.startswith("WeightsUnpickler error")), lines[0])
    if msg.startswith("WeightsUnpickler error") or "zip archive" in msg or "central directory" in msg:
        return msg[:200]
    return f"not a file saved by torch.save ({type(e).__name__}: {msg[:120]})"


def _apply_state(model: torch.nn.Module, arch: str, state: dict, origin: str) -> None:
    """Load into the torchvision model; VGG files may hold `features` only. Clear errors on mismatch."""
    target = model  # for VGG, `model` holds only `features` (backbones.build_torchvision)
    if arch.startswith("vgg") and not any(k.startswith("features.") for k in state):
        target = model.features  # a features-only file: keys "0.weight", "2.bias", ...
    expected = target.state_dict()
    relevant = {k: v for k, v in state.items() if k in expected}  # a VGG classifier is ignored
    missing = sorted(set(expected) - set(relevant))
    if missing:
        extra = sorted(set(state) - set(target.state_dict()))
        raise NstbenchError(
            f"weights {origin} do not fit {arch}: missing {len(missing)} keys (e.g. {', '.join(missing[:3])})"
            + (f"; unexpected keys (e.g. {', '.join(extra[:3])})" if extra else "")
        )
    bad = [f"{k} {tuple(relevant[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
           if relevant[k].shape != v.shape]
    if bad:
        raise NstbenchError(f"weights {origin} do not fit {arch}: wrong shapes ({'; '.join(bad[:3])})")
    target.load_state_dict(relevant, strict=False)


def load_backbone(arch: str, weights: str = "auto", seed: int = 0, pooling: Pooling = "max") -> Backbone:
    """Build a frozen extractor for `arch` with the requested weights (see module docstring)."""
    if arch not in ARCHS:
        raise unknown("backbone", arch, ARCHS)
    with torch.random.fork_rng(devices=[]):  # seeded init that leaves the caller's RNG alone
        torch.manual_seed(seed)
        model = build_torchvision(arch)
    record: dict
    if weights == "random":
        record = {"kind": "random", "imagenet": False, "seed": seed}
    elif weights in ("imagenet", "auto"):
        try:
            offline = os.environ.get("NSTBENCH_OFFLINE") == "1"  # no download attempt, for imagenet too
            state, record = imagenet_state_dict(arch, allow_download=not offline)
            _apply_state(model, arch, state, record["file"])
        except NstbenchError as e:
            if weights == "imagenet":
                raise
            record = {"kind": "random", "imagenet": False, "seed": seed, "fallback_reason": str(e)}
            if arch not in _warned:
                _warned.add(arch)
                print(f"nstbench: warning: ImageNet weights for {arch} unavailable; using seeded random "
                      f"weights (seed {seed}). Numbers are NOT comparable with ImageNet results.", file=sys.stderr)
    else:
        path = Path(weights).expanduser()
        state, record = _load_file(arch, path)
        _apply_state(model, arch, state, str(path))
    record["arch"] = arch
    return Backbone(arch=arch, extractor=make_extractor(model, arch, pooling), weights=record)
