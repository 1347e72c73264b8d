"""Stylising images with a trained fast network (`nstbench apply`): nstbench checkpoints and
pytorch/examples fast_neural_style state dicts alike, and exporting a network to ONNX."""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path

import torch

from ..config.errors import NstbenchError
from ..config.specs import Resize
from ..nets.assets import resolve_image
from ..nets.data import IMAGE_EXTENSIONS
from ..nets.device import resolve_device
from ..nets.images import MIN_SIDE, image_format, load_image, probe_image, save_image, save_truncated_255
from ..nets.records import atomic_write, ensure_writable_dir
from ..nets.transformer import check_input_size, load_transformer


def _output_paths(contents: list[str], out: Path, overwrite: bool = False) -> list[Path]:
    """out is one image file when it has a suffix (any format Pillow writes), else a folder.

    Nothing a user owns is replaced by surprise: an output that is one of the inputs is refused
    always (even with overwrite), as is a folder that holds an input or another command's run;
    an existing output is replaced only with overwrite."""
    if out.suffix:
        image_format(out)  # a suffix Pillow cannot write is an error, not a folder name
        if len(contents) > 1:
            raise NstbenchError(f"--out {out} is one file but {len(contents)} content images were given; pass a folder")
        if out.is_dir():
            raise NstbenchError(f"--out {out} is a folder; give a file name or a folder without a suffix")
        paths = [out]
    else:
        _check_not_a_run_folder(out)
        names = [Path(str(c)).stem for c in contents]
        dup = {n for n in names if names.count(n) > 1}
        paths = [out / (f"{n}_{i}.png" if n in dup else f"{n}.png") for i, n in enumerate(names)]
    inputs = {_real(resolve_image(c)): str(c) for c in contents}
    for path in paths:
        if _real(path) in inputs:
            raise NstbenchError(
                f"--out {out} would overwrite the input image {inputs[_real(path)]}; choose another --out "
                "(an input is never replaced, not even with --overwrite)"
            )
    if not out.suffix and _real(out) in {_real(Path(i).parent) for i in inputs}:
        raise NstbenchError(f"--out {out} is the folder of the content images; choose another --out")
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise NstbenchError(
            f"{existing[0]}{more} already exists; pass --overwrite to replace it or choose another --out"
        )
    return paths


def _real(path) -> Path:
    return Path(path).expanduser().resolve()


def _check_not_a_run_folder(out: Path) -> None:
    """A `stylize` or `train` run folder belongs to its run (records.prepare_run_dir's rule)."""
    try:
        other = json.loads((out / "run.json").read_text()).get("command")
    except (OSError, ValueError, AttributeError):
        return
    if other:
        raise NstbenchError(f"--out {out} holds a `{other}` run (run.json); choose another --out for `apply`")


def run_network(net, x: torch.Tensor, examples: bool = False, crop: bool = False) -> torch.Tensor:
    """The network's output for unit images x: unit RGB, or for a pytorch/examples network (examples)
    its raw 0..255 output of ToTensor() * 255, as that project's stylize computes it. Sides that are
    not multiples of 4 come out rounded up (two stride-2 convs, two x2 upsamplings; pytorch/examples
    saves a 452-column image for a 451-column input); `crop` drops the extra bottom/right rows."""
    y = net(x * 255.0) if examples else net.stylize_unit(x)
    return y[..., : x.shape[-2], : x.shape[-1]] if crop else y


def _expand_folders(contents: list) -> list[str]:
    """A folder among the contents stands for its image files (sorted; not recursive)."""
    out: list[str] = []
    for c in contents:
        p = Path(str(c)).expanduser()
        if p.is_dir():
            found = sorted(str(f) for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                raise NstbenchError(f"content folder {p} holds no .jpg/.jpeg/.png images")
            out += found
        else:
            out.append(str(c))
    return out


def _content_resize(content: str, size: int | None, scale: float | None) -> Resize:
    """The resize of one content image, checked from its header (probe_image) before any work."""
    if scale is None:
        resize = Resize("long", size) if size is not None else Resize()
    else:
        w, h = probe_image(content, Resize(), min_side=1)
        resize = Resize("exact", (int(h / scale), int(w / scale)))
    probe_image(content, resize)
    return resize


@torch.inference_mode()
def stylize_images(
    checkpoint: str | os.PathLike,
    contents: list[str],
    out: str | os.PathLike,
    *,
    size: int | None = None,
    scale: float | None = None,
    device: str = "cpu",
    crop: bool = False,
    overwrite: bool = False,
) -> list[dict]:
    """Apply a trained network to each content image (name, path, or a folder of images).

    out: an image path (one content) or a folder (out/<content stem>.png). size: long side of the
    content in pixels (default: as loaded); scale: divide both sides by it instead (pytorch/examples'
    --content-scale: int(w / scale) x int(h / scale)). The output has the network's size (see
    run_network; `crop` cuts it to the content's). Saving clamps to [0, 255]; a pytorch/examples
    checkpoint is quantised as that project's save_image does (numpy astype("uint8") of the 0..255
    output: truncation), nstbench's own round. An existing output is replaced only with overwrite;
    an input, a folder of inputs or another command's run folder never (_output_paths). Returns one record per image: content, output,
    size_hw, seconds.
    """
    dev = resolve_device(device)
    if size is not None and size < MIN_SIDE:
        raise NstbenchError(f"--size must be at least {MIN_SIDE} px, got {size}")
    if size is not None and scale is not None:
        raise NstbenchError("give --size or --content-scale, not both")
    if str(out).strip() == "":
        raise NstbenchError("--out is empty; give an output image file or folder")
    contents = _expand_folders(contents)
    resizes = [_content_resize(c, size, scale) for c in contents]  # every input checked before any output
    paths = _output_paths([str(c) for c in contents], Path(out), overwrite)
    net, info = load_transformer(checkpoint)
    for c, resize in zip(contents, resizes):
        check_input_size(net.cfg, probe_image(c, resize), f"content {c}")
    ensure_writable_dir(Path(out).parent if Path(out).suffix else Path(out))
    net.to(dev)
    recs = []
    for c, path, resize in zip(contents, paths, resizes):
        x = load_image(c, resize).to(dev)
        t = time.perf_counter()
        examples = info["format"] == "pytorch-examples"
        # pytorch/examples' own size unless --crop; nstbench's networks are cut to the content's size
        y = run_network(net, x, examples=examples, crop=crop or not examples)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        seconds = time.perf_counter() - t
        if examples:
            save_truncated_255(y, path)
        else:
            save_image(y.cpu(), path)
        recs.append(
            {
                "content": str(c),
                "output": str(path),
                "size_hw": list(y.shape[-2:]),
                "seconds": seconds,
                "network": info.get("network", {}).get("name"),
                "format": info["format"],
                # what it was trained with (nstbench checkpoints; None for pytorch/examples files)
                "loss_weights": info.get("weights"),
                "steps_trained": info.get("step"),
            }
        )
    return recs


class _UnitNetwork(torch.nn.Module):
    """What `apply` computes, as one module: unit RGB in, unit RGB out (clamped)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.stylize_unit(x).clamp(0, 1)


def export_onnx(checkpoint: str | os.PathLike, path: str | os.PathLike, size: int = 256) -> Path:
    """The network as an ONNX graph: input "image" [N, 3, H, W] unit RGB, output "stylized" the same
    (H, W multiples of 4; other sides come out rounded up, as from the network itself). Needs the
    `onnx` package (pip install 'nstbench[onnx]'); traced at size x size, batch and sides dynamic."""
    path = Path(path)
    if path.suffix.lower() != ".onnx":
        raise NstbenchError(f"--export-onnx {path}: the file name must end in .onnx")
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it)
    except ImportError:
        raise NstbenchError("--export-onnx needs the onnx package: pip install 'nstbench[onnx]'") from None
    net, _ = load_transformer(checkpoint)
    ensure_writable_dir(path.parent)
    model = _UnitNetwork(net).eval()
    axes = {0: "batch", 2: "height", 3: "width"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on constant shapes and legacy export: not the user's
        atomic_write(
            path,
            lambda tmp: torch.onnx.export(
                model,
                (torch.rand(1, 3, size, size),),
                str(tmp),
                dynamo=False,
                input_names=["image"],
                output_names=["stylized"],
                dynamic_axes={"image": axes, "stylized": axes},
            ),
        )
    return path
