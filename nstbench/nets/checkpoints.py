"""Reading tensor files and checking that a state dict fits a network, with one-line errors.

Shared by the backbone weights (weights.py) and the transformer checkpoints (transformer.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch

from ..config.errors import NstbenchError


def read_torch_file(path: Path, what: str):
    """torch.load(weights_only=True) of an existing file; a failure is one line naming the file.

    `what` names the file in the error ("weights file", "checkpoint").
    """
    if not path.exists():
        raise NstbenchError(f"{what} not found: {path}")
    if path.is_dir():
        raise NstbenchError(f"expected a {what}, got a folder: {path}")
    found = sniff(path)
    if found:  # torch.load would fail with a cut-off unpickler message that names none of this
        raise NstbenchError(f"not a {what.removesuffix(' file')} file: {path} (it is {found})")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling errors, truncated files, non-torch files
        raise NstbenchError(f"cannot read {what} {path}: {torch_load_reason(e)}") from None


# Formats people pass by mistake (a run's run.json, an exported .onnx, an image for --weights),
# told apart by their first bytes. torch.save writes a zip archive (PK) or a pickle (0x80).
_MAGIC = (
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"GIF8", "a GIF image"),
    (b"BM", "a BMP image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (Keras weights are --weights files, not checkpoints)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\xfd7zXZ", "an xz archive"),
    (b"%PDF", "a PDF document"),
)


def sniff(path: Path) -> str | None:
    """What a file that torch.load cannot read is, from its first bytes ("JSON", "a JPEG image",
    "an ONNX model", ...), or None when it may be a torch file (or is nothing recognised)."""
    with open(path, "rb") as f:
        head = f.read(64)
    if not head:
        return "an empty file"
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "a WebP image"
    if head.lstrip()[:1] in (b"{", b"["):
        return "JSON"
    # ONNX is a protobuf ModelProto: field 1 (ir_version, varint) first, then strings such as the producer name
    if head[:1] == b"\x08" and b"\x12" in head[2:4] and (path.suffix.lower() == ".onnx" or b"pytorch" in head):
        return "an ONNX model"
    return None


def torch_load_reason(e: Exception) -> str:
    """One line saying why torch.load refused a file: its own messages run to several lines, and a
    file that is no torch file at all fails with bare unpickler errors ("pop from empty list", "101")."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()] or [type(e).__name__]
    # weights_only refusals put the reason on a "WeightsUnpickler error" line, not the first
    msg = next((ln for ln in lines if ln.startswith("WeightsUnpickler error")), lines[0])
    if msg.startswith("WeightsUnpickler error") or "zip archive" in msg or "central directory" in msg:
        return msg[:200]
    return f"not a file saved by torch.save ({type(e).__name__}: {msg[:120]})"


def check_state(expected: Mapping[str, torch.Size | tuple], state: Mapping[str, torch.Tensor], what: str) -> None:
    """Strict fit: every expected key present, no other key, every shape equal.

    The first bad entry is named: `what` is the start of the message, e.g.
    "weights f.pth do not fit vgg19" -> "... do not fit vgg19: missing 3 keys (first: 0.weight)".
    """
    missing = [k for k in expected if k not in state]
    if missing:
        raise NstbenchError(f"{what}: missing {len(missing)} keys (first: {missing[0]})")
    extra = [k for k in state if k not in expected]
    if extra:
        raise NstbenchError(f"{what}: unexpected {len(extra)} keys (first: {extra[0]})")
    for k, shape in expected.items():
        if tuple(state[k].shape) != tuple(shape):
            raise NstbenchError(f"{what}: wrong shapes ({k} {tuple(state[k].shape)} != {tuple(shape)})")
