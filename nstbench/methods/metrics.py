"""Image-quality and stylisation metrics for the experiments' tables.

Conventions (every function):
- Inputs are unit-space RGB tensors [B, 3, H, W] in [0, 1] (what `images.load_image` returns, or a
  batch of outputs). A reference (`y`, `content`, `style`) may have batch 1 and is then compared with
  every image of `x`; otherwise its batch must match.
- Per-image metrics return a float64 tensor of shape [B] on the input's device. They are computed
  in float64 without gradients: they are measurements written to CSVs, never losses to optimise,
  and float64 keeps exact identities (ssim(x, x) = 1, Lab of white = (100, 0, 0)) exact.
- Spectral metrics work on the luma Y = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601, applied to the
  gamma-encoded values, as PIL's convert("L") and most FFT figures do). Frequencies are in
  cycles/pixel from `torch.fft.fftfreq`, so Nyquist is 0.5 and the radius of a frequency
  (fy, fx) is sqrt(fy^2 + fx^2) (up to 0.707 in the corners).
- No metric downloads anything. LPIPS runs only when its AlexNet weights are already in the torch
  cache (`lpips_status()` says why not, otherwise).
"""

from __future__ import annotations

import math
import os
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable

import torch
import torch.nn.functional as F

from ..nets.backbones import Backbone
from ..nets.losses import gram, tv_loss
from ..nets.weights import hash_prefix, hub_checkpoint_dir, verified

LUMA_BT601 = (0.299, 0.587, 0.114)

# Wang, Bovik, Sheikh, Simoncelli 2004 ("Image quality assessment: from error visibility to
# structural similarity"), section III-C: 11x11 circular-symmetric Gaussian, sigma 1.5,
# K1 = 0.01, K2 = 0.03, dynamic range L = 1 for unit images.
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _f64(x: torch.Tensor) -> torch.Tensor:
    if x.dim() != 4:
        raise ValueError(f"expected an image batch [B, C, H, W], got shape {tuple(x.shape)}")
    return x.detach().to(torch.float64)


def _pair(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """float64 copies of x and y with y broadcast to x's batch (a batch-1 reference is shared)."""
    x, y = _f64(x), _f64(y).to(x.device)
    if x.shape[1:] != y.shape[1:]:
        raise ValueError(f"images differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}; resize first")
    if y.shape[0] == 1 and x.shape[0] > 1:
        y = y.expand_as(x)
    elif y.shape[0] != x.shape[0]:
        raise ValueError(f"batch sizes differ: {x.shape[0]} vs {y.shape[0]} (a reference may have batch 1)")
    return x, y


def _gaussian_1d(sigma: float, radius: int, like: torch.Tensor) -> torch.Tensor:
    k = torch.arange(-radius, radius + 1, dtype=like.dtype, device=like.device)
    g = torch.exp(-(k**2) / (2.0 * sigma**2))
    return g / g.sum()


def _separable_filter(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Depthwise convolution of every channel with the separable kernel g (x) g; no padding."""
    c = x.shape[1]
    x = F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)


def luma(x: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] -> [B, H, W], BT.601 luma on the gamma-encoded values (float64)."""
    x = _f64(x)
    w = torch.tensor(LUMA_BT601, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1)


def _radius_grid(h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    """Radial frequency (cycles/pixel) of every FFT bin, in torch.fft's unshifted order."""
    fy = torch.fft.fftfreq(h, dtype=like.dtype, device=like.device)
    fx = torch.fft.fftfreq(w, dtype=like.dtype, device=like.device)
    return torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)


def _power(x: torch.Tensor) -> torch.Tensor:
    """|FFT(luma)|^2 / (H W)^2 -> [B, H, W] (unshifted). By Parseval it sums to mean(Y^2)."""
    y = luma(x)
    h, w = y.shape[-2:]
    return torch.fft.fft2(y).abs().pow(2) / float(h * w) ** 2


# ---------------------------------------------------------------------------------------------
# fidelity
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean SSIM (Wang et al. 2004) per image -> [B], averaged over the three RGB channels.

    Each channel is compared separately (as scikit-image with channel_axis and pytorch-msssim do)
    and the SSIM maps are averaged over channels and over the *valid* window positions (no padding,
    as Wang's reference MATLAB code does with filter2 'valid'). Local statistics use the population
    (1/N) weighting of the Gaussian window. Data range 1. Needs H, W >= 11.
    """
    x, y = _pair(x, y)
    if min(x.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, got {tuple(x.shape[-2:])}")
    g = _gaussian_1d(SSIM_SIGMA, SSIM_WINDOW // 2, x)
    c1, c2 = (SSIM_K1 * 1.0) ** 2, (SSIM_K2 * 1.0) ** 2
    mx, my = _separable_filter(x, g), _separable_filter(y, g)
    sxx = _separable_filter(x * x, g) - mx * mx
    syy = _separable_filter(y * y, g) - my * my
    sxy = _separable_filter(x * y, g) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(1)


@torch.no_grad()
def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """10 log10(1 / MSE) per image -> [B], MSE over all channels and pixels, data range 1.

    Identical images give +inf (MSE 0), as scikit-image does.
    """
    x, y = _pair(x, y)
    mse = (x - y).pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10(1.0 / mse)


# ---------------------------------------------------------------------------------------------
# spectra (E1)
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def fft_log_amplitude(x: torch.Tensor) -> torch.Tensor:
    """Centred log(1 + |FFT|) of the luma -> [B, H, W], DC at (H // 2, W // 2).

    Unnormalised FFT (numpy's default, so the DC term is H*W*mean(Y)) and no window, as the
    report's `np.fft.fft2` + `fftshift` figures; the image edges' discontinuity shows as the usual
    horizontal and vertical cross through the centre.
    """
    a = torch.fft.fft2(luma(x)).abs()
    return torch.log1p(torch.fft.fftshift(a, dim=(-2, -1)))


@torch.no_grad()
def radial_spectrum(x: torch.Tensor, nbins: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Azimuthally averaged POWER spectrum of the luma: (freqs [nbins], power [B, nbins]).

    Power is |FFT|^2 / (H W)^2 (so the whole spectrum sums to mean(Y^2), independent of size).
    Bin k is centred on frequency k * d with d = 0.5 / (nbins - 1) cycles/pixel, so the first bin
    is DC alone (for the default) and the last is Nyquist (0.5); each frequency goes to the nearest
    centre, and the corners beyond 0.5 are left out. Default nbins = min(H, W) // 2 + 1, i.e. one
    bin per frequency step of the shorter side. A bin with no frequency in it is NaN.
    """
    p = _power(x)
    h, w = p.shape[-2:]
    nbins = nbins or min(h, w) // 2 + 1
    if nbins < 2:
        raise ValueError("radial_spectrum needs nbins >= 2")
    d = 0.5 / (nbins - 1)
    idx = torch.round(_radius_grid(h, w, p) / d).long().flatten()
    keep = idx < nbins
    idx = idx[keep]
    flat = p.flatten(1)[:, keep]
    sums = torch.zeros(p.shape[0], nbins, dtype=p.dtype, device=p.device).index_add_(1, idx, flat)
    counts = torch.bincount(idx, minlength=nbins).to(p.dtype)
    freqs = torch.arange(nbins, dtype=p.dtype, device=p.device) * d
    return freqs, sums / counts  # 0/0 -> NaN for empty bins


@torch.no_grad()
def high_frequency_fraction(x: torch.Tensor, radius: float = 0.25) -> torch.Tensor:
    """Fraction of the non-DC spectral energy (|FFT(luma)|^2) at radial frequency > `radius` -> [B].

    `radius` is in cycles/pixel (Nyquist 0.5). The default 0.25 is half the Nyquist frequency: the
    top octave of the frequency axis, periods of 2 to 4 pixels, which is where pixel noise, Adam's
    checkerboard speckle and fine brush texture live and what TV regularisation removes, while a
    natural photo's ~1/f^2 spectrum keeps most of its energy below it. It is independent of the
    image size, so profiles with different sizes stay comparable. DC (the mean brightness) is
    excluded so a global brightness change does not move the fraction. An image with no non-DC
    energy (a constant image) gives 0.
    """
    p = _power(x)
    r = _radius_grid(*p.shape[-2:], p)
    ac = p.masked_fill(r == 0, 0.0).flatten(1).sum(1)
    high = p.masked_fill(~(r > radius), 0.0).flatten(1).sum(1)
    # a relative floor, not == 0: a "constant" float image still has rounding-level AC energy
    floor = 1e-24 * p.flatten(1).sum(1).clamp_min(1e-300)
    return torch.where(ac > floor, high / ac.clamp_min(1e-300), torch.zeros_like(ac))


@torch.no_grad()
def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Anisotropic L1 total variation per pixel -> [B]: `losses.tv_loss(x, "l1_mean")`.

    That is sum over channels and positions of |y[i+1,j]-y[i,j]| + |y[i,j+1]-y[i,j]|, divided by
    H*W (the E1 formula normalised per pixel, so different image sizes compare).
    """
    return tv_loss(_f64(x), "l1_mean")


# ---------------------------------------------------------------------------------------------
# colour (E3 / C4)
# ---------------------------------------------------------------------------------------------

# IEC 61966-2-1 (sRGB) linear RGB -> CIE XYZ, D65 white, as tabulated by B. Lindbloom. The white
# point is taken as its row sums (0.95047, 1.0000001, 1.08883: D65 to the table's 7 digits), so
# sRGB white maps to L*a*b* = (100, 0, 0) exactly rather than to a* ~ -2e-5.
SRGB_TO_XYZ_D65 = (
    (0.4124564, 0.3575761, 0.1804375),
    (0.2126729, 0.7151522, 0.0721750),
    (0.0193339, 0.1191920, 0.9503041),
)
WHITE_D65 = tuple(sum(row) for row in SRGB_TO_XYZ_D65)  # (Xn, Yn, Zn) = M @ (1, 1, 1)


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """sRGB transfer function inverse (IEC 61966-2-1), elementwise on [0, 1] values."""
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055).clamp_min(0.0) ** 2.4)


@torch.no_grad()
def srgb_to_lab(x: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] sRGB in [0, 1] -> CIE L*a*b* (D65) [B, 3, H, W], float64.

    sRGB -> linear -> XYZ (D65) -> Lab with the exact CIE constants: f(t) = t^(1/3) above
    (6/29)^3, else t / (3 (6/29)^2) + 4/29; L = 116 f(Y/Yn) - 16, a = 500 (f(X/Xn) - f(Y/Yn)),
    b = 200 (f(Y/Yn) - f(Z/Zn)). Inputs are clipped to [0, 1] first (an output image is).
    """
    lin = srgb_to_linear(_f64(x).clamp(0.0, 1.0))
    m = torch.tensor(SRGB_TO_XYZ_D65, dtype=lin.dtype, device=lin.device)
    xyz = torch.einsum("ij,bjhw->bihw", m, lin)
    xyz = xyz / torch.tensor(WHITE_D65, dtype=lin.dtype, device=lin.device).view(1, 3, 1, 1)
    delta = 6.0 / 29.0
    f = torch.where(xyz > delta**3, xyz.clamp_min(0.0) ** (1.0 / 3.0), xyz / (3 * delta**2) + 4.0 / 29.0)
    fx, fy, fz = f[:, 0], f[:, 1], f[:, 2]
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=1)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian low-pass of every channel, radius ceil(3 sigma), edges replicated (same size out)."""
    if sigma <= 0:
        return x
    r = int(math.ceil(3.0 * sigma))
    g = _gaussian_1d(sigma, r, x)
    return _separable_filter(F.pad(x, (r, r, r, r), mode="replicate"), g)


@torch.no_grad()
def colour_artifact_index(x: torch.Tensor, content: torch.Tensor, sigma: float = 4.0) -> torch.Tensor:
    """Mean low-pass chroma distance to the content in CIE Lab -> [B] (Delta a*b* units).

    Both images go to L*a*b*; a* and b* are Gaussian low-passed with `sigma` pixels; the result is
    the mean over pixels of sqrt(da^2 + db^2). Low-passing first keeps what the eye reads as
    "colour lumps" (regions whose overall hue drifted from the content's, E3 / C4) and discards the
    fine chroma texture that stylisation is supposed to add. sigma = 4 px has its half-power
    point at a period of about 5.3 sigma = 21 px, i.e. it keeps chroma structure larger than about
    a twelfth of a 256 px image. Lightness is ignored: contrast and texture are not colour lumps.
    """
    x, content = _pair(x, content)
    ab_x = gaussian_blur(srgb_to_lab(x)[:, 1:], sigma)
    ab_c = gaussian_blur(srgb_to_lab(content)[:, 1:], sigma)
    return (ab_x - ab_c).pow(2).sum(1).sqrt().flatten(1).mean(1)


# ---------------------------------------------------------------------------------------------
# style (C3, C9)
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def style_distance_fn(
    style: torch.Tensor, backbone: Backbone, layers: Iterable[str]
) -> Callable[[torch.Tensor], torch.Tensor]:
    """x -> mean over `layers` of ||G(x) - G(s)||_F / ||G(s)||_F, Grams normalised by C*H*W -> [B].

    The style's Grams are computed once here, so a sweep measures every output against the same
    targets without a forward pass of the style image per output (see style_distance).
    Meant to be measured in a network that no compared run optimised (e.g. VGG16 or ResNet50 when
    the runs used VGG19), so it is an independent judge; the caller picks and passes that backbone
    (and its weights record belongs in the output). Images are unit RGB and are converted here to
    the input the backbone's weights expect (Backbone.preprocess). `style` may have another size than `x` (Grams are C x C);
    the relative form makes layers of different scale count equally. 0 for x == style.
    """
    layers = list(layers)
    if not layers:
        raise ValueError("style_distance needs at least one layer")
    param = next(backbone.extractor.parameters(), None)
    dtype = param.dtype if param is not None else torch.float32
    device = param.device if param is not None else style.device
    fs = backbone.extract(backbone.preprocess(style.detach().to(device, dtype)), layers)
    targets = {n: gram(fs[n].to(torch.float64), "chw") for n in layers}  # [1 or B, C, C], broadcast against x's

    @torch.no_grad()
    def distance(x: torch.Tensor) -> torch.Tensor:
        fx = backbone.extract(backbone.preprocess(x.detach().to(device, dtype)), layers)
        total = torch.zeros(x.shape[0], dtype=torch.float64, device=device)
        for name, gs in targets.items():
            gx = gram(fx[name].to(torch.float64), "chw")
            total = total + (gx - gs).flatten(1).norm(dim=1) / gs.flatten(1).norm(dim=1).clamp_min(1e-300)
        return total / len(layers)

    return distance


def style_distance(x: torch.Tensor, style: torch.Tensor, backbone: Backbone, layers: Iterable[str]) -> torch.Tensor:
    """style_distance_fn(style, backbone, layers)(x): one output against one style image."""
    return style_distance_fn(style, backbone, layers)(x)


# ---------------------------------------------------------------------------------------------
# LPIPS (optional; never downloads)
# ---------------------------------------------------------------------------------------------

LPIPS_NET = "alex"  # Zhang et al. 2018 recommend AlexNet as the forward metric
LPIPS_VERSION = "0.1"


def _alexnet_checkpoint() -> tuple[Path, str]:
    import torchvision

    url = torchvision.models.AlexNet_Weights.IMAGENET1K_V1.url
    return hub_checkpoint_dir() / os.path.basename(url), url


def lpips_status() -> tuple[bool, str]:
    """(available, reason). Checks files only; never touches the network.

    lpips.LPIPS(net="alex") would call torchvision's alexnet(pretrained=True), which downloads
    when the ImageNet weights are not cached. So LPIPS counts as available only when both its
    linear-layer weights (shipped inside the lpips package) and torchvision's AlexNet ImageNet
    weights (in $TORCH_HOME/hub/checkpoints, sha256 prefix checked) are on disk.
    """
    try:
        import lpips
    except ImportError as e:
        return False, f"the lpips package is not installed ({e})"
    lin = Path(lpips.__file__).parent / "weights" / f"v{LPIPS_VERSION}" / f"{LPIPS_NET}.pth"
    if not lin.is_file():
        return False, f"lpips linear weights missing: {lin}"
    ckpt, url = _alexnet_checkpoint()
    if not ckpt.is_file():
        return False, (
            f"AlexNet ImageNet weights are not in the torch cache ({ckpt}); LPIPS needs them and "
            f"nstbench does not download them: place {ckpt.name} (from {url}) there"
        )
    prefix = hash_prefix(ckpt.name)
    if prefix and not verified(ckpt, prefix):
        return False, f"{ckpt} does not match the sha256 prefix {prefix} in its name"
    from importlib.metadata import version

    return True, f"lpips {version('lpips')} net={LPIPS_NET} v{LPIPS_VERSION}, AlexNet weights {ckpt}"


@lru_cache(maxsize=1)
def _lpips_model():
    """lpips.LPIPS with a randomly built AlexNet, then the cached ImageNet weights loaded into it.

    `pnet_rand=True` makes lpips build torchvision's alexnet without weights (no download); the
    feature weights are then copied from the cache file into lpips' slices, which hold the very
    modules of `alexnet.features` under their original indices.
    """
    import lpips

    ckpt, _ = _alexnet_checkpoint()
    with warnings.catch_warnings():  # torchvision's `pretrained=` deprecation notice
        warnings.simplefilter("ignore")
        model = lpips.LPIPS(net=LPIPS_NET, version=LPIPS_VERSION, pnet_rand=True, verbose=False)
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    feats = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
    used = set()
    for sl in (model.net.slice1, model.net.slice2, model.net.slice3, model.net.slice4, model.net.slice5):
        for idx, mod in sl.named_children():
            sub = {k.split(".", 1)[1]: v for k, v in feats.items() if k.split(".", 1)[0] == idx}
            mod.load_state_dict(sub, strict=True)
            used |= {f"{idx}.{k}" for k in sub}
    if used != set(feats):
        raise RuntimeError(f"AlexNet weights not fully loaded into LPIPS: unused {sorted(set(feats) - used)}")
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@torch.no_grad()
def lpips_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor | None:
    """LPIPS (AlexNet, v0.1) per image -> float64 [B], or None when `lpips_status()` says unavailable."""
    ok, _ = lpips_status()
    if not ok:
        return None
    model = _lpips_model().to(x.device)
    x, y = _pair(x, y)
    d = model(x.float(), y.float(), normalize=True)  # normalize=True: inputs in [0, 1], not [-1, 1]
    return d.flatten().to(torch.float64)
