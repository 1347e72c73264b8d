"""Content, Gram, style and total-variation losses, with every source's normalisation as a named mode.

All losses are per image: inputs are [B, ...] and the result has shape [B], so a batch can hold
the points of a sweep whose losses stay independent. Notation: a feature map F has C channels
(Gatys' N) and H*W positions (Gatys' M); A / P are the targets (style Gram, content features).

Content modes (per layer):
  half_sum   1/2 sum (F - P)^2                 Gatys et al. 2015/2016, eq. 1 (HUST E1)
  sum        sum (F - P)^2                     IIT Bombay report's formula; NYU's D_C
  mean       mean (F - P)^2 = |F-P|^2 / (CHW)  Johnson et al. (l_feat); UPES and Keras codes
Gram normalisations (G = F F^T over positions):
  none       F F^T                             Gatys; UPES appendix
  hw         F F^T / (H W)                     Keras/TF tutorial codes (IIT Bombay E5)
  chw        F F^T / (C H W)                   Johnson et al. eq. for G; PyTorch tutorial
Style modes (per layer, on Grams built with the matching normalisation):
  gatys      sum (G - A)^2 / (4 C^2 (HW)^2)    Gatys E_l (with Gram "none")
  frobenius  sum (G - A)^2                     Johnson l_style, squared Frobenius (Gram "chw")
  mean       mean (G - A)^2                    Keras codes (Gram "hw"); PyTorch tutorial (Gram "chw")
  upes       mean (G - A)^2 / (C H W)          UPES appendix: w * mean((G-A)^2) / (d*h*w), Gram "none"
Layer reductions: "sum" (sum_l w_l E_l, Gatys/Johnson/UPES) or "mean" (the Keras codes'
1/|L| per layer, applied on top of the weights).
TV modes (on the image tensor [B, 3, H, W], summed over channels):
  l1_sum       sum |y[i+1,j]-y[i,j]| + |y[i,j+1]-y[i,j]|     EXPERIMENTS.md E1 (HUST formula)
  l1_mean      l1_sum / (H W)  per-pixel normalised          HUST code (see sources.py)
  squared_sum  sum (y[i+1,j]-y[i,j])^2 + (y[i,j+1]-y[i,j])^2  Johnson et al. (squared TV)
  squared_half_interior  1/2 sum over i < H-1, j < W-1 of (y[i,j]-y[i,j+1])^2 + (y[i,j]-y[i+1,j])^2:
               the loss whose gradient Johnson's TotalVariation.lua adds (it reports no value; the
               last row and column never enter a difference as its first pixel)
"""

from __future__ import annotations

from typing import Mapping

import torch

from ..config.specs import (
    CONTENT_MODES,
    GRAM_NORMS,
    STYLE_MODES,
    TV_MODES,
    ContentMode,
    GramNorm,
    Reduce,
    StyleMode,
    TVMode,
)


class _Gram(torch.autograd.Function):
    """G = F F^T with a one-matmul backward.

    Autograd differentiates bmm(F, F^T) as two products, dG F and (F^T dG)^T, plus an add of two
    [C, HW] tensors. Both products use the same F, so dL/dF = (dG + dG^T) F: one matmul and an add
    of two small [C, C] tensors. benchmarks/ab_gram.py (whole Gatys iterations at 256 px, 1 thread
    of the 2-core CPU): 1.06x in fp32, 1.13x under bf16 autocast; same losses to rounding.
    """

    @staticmethod
    def forward(ctx, flat: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(flat)
        return torch.bmm(flat, flat.transpose(1, 2))

    @staticmethod
    def backward(ctx, dg: torch.Tensor) -> torch.Tensor:
        (flat,) = ctx.saved_tensors
        return torch.bmm(dg + dg.transpose(1, 2), flat)


def gram(f: torch.Tensor, norm: GramNorm = "none") -> torch.Tensor:
    """[B, C, H, W] -> [B, C, C]."""
    b, c, h, w = f.shape
    flat = f.reshape(b, c, h * w)
    # under torch.autocast the Function runs in the features' dtype: the callers cast to fp32 first
    g = _Gram.apply(flat) if flat.requires_grad else torch.bmm(flat, flat.transpose(1, 2))
    if norm == "none":
        return g
    if norm == "hw":
        return g / (h * w)
    if norm == "chw":
        return g / (c * h * w)
    raise ValueError(f"unknown Gram normalisation {norm!r}; valid: {GRAM_NORMS}")


def content_loss(f: torch.Tensor, p: torch.Tensor, mode: ContentMode) -> torch.Tensor:
    d = (f - p).pow(2).flatten(1)
    if mode == "half_sum":
        return 0.5 * d.sum(1)
    if mode == "sum":
        return d.sum(1)
    if mode == "mean":
        return d.mean(1)
    raise ValueError(f"unknown content mode {mode!r}; valid: {CONTENT_MODES}")


def style_layer_loss(
    g: torch.Tensor, a: torch.Tensor, feature_shape: tuple[int, int, int], mode: StyleMode
) -> torch.Tensor:
    """E_l for Grams g [B, C, C] and target a [1 or B, C, C]; feature_shape = (C, H, W) of the layer."""
    c, h, w = feature_shape
    d = (g - a).pow(2).flatten(1)
    if mode == "gatys":
        return d.sum(1) / (4.0 * c**2 * (h * w) ** 2)
    if mode == "frobenius":
        return d.sum(1)
    if mode == "mean":
        return d.mean(1)
    if mode == "upes":
        return d.mean(1) / (c * h * w)
    raise ValueError(f"unknown style mode {mode!r}; valid: {STYLE_MODES}")


def style_loss(
    feats: Mapping[str, torch.Tensor],
    targets: Mapping[str, torch.Tensor],
    weights: Mapping[str, float],
    gram_norm: GramNorm,
    mode: StyleMode,
    reduce: Reduce = "sum",
) -> torch.Tensor:
    """sum_l w_l E_l (or its mean over layers); `targets` are target Grams per layer."""
    total = 0.0
    for name, w in weights.items():
        f = feats[name]
        total = total + w * style_layer_loss(gram(f, gram_norm), targets[name], tuple(f.shape[1:]), mode)
    if reduce == "mean":
        total = total / len(weights)
    elif reduce != "sum":
        raise ValueError(f"unknown layer reduction {reduce!r}; valid: ('sum', 'mean')")
    return total


def tv_loss(y: torch.Tensor, mode: TVMode = "l1_sum") -> torch.Tensor:
    dy = y[:, :, 1:, :] - y[:, :, :-1, :]
    dx = y[:, :, :, 1:] - y[:, :, :, :-1]
    if mode == "l1_sum":
        return dy.abs().flatten(1).sum(1) + dx.abs().flatten(1).sum(1)
    if mode == "l1_mean":
        h, w = y.shape[-2:]
        return (dy.abs().flatten(1).sum(1) + dx.abs().flatten(1).sum(1)) / (h * w)
    if mode == "squared_sum":
        return dy.pow(2).flatten(1).sum(1) + dx.pow(2).flatten(1).sum(1)
    if mode == "squared_half_interior":
        return 0.5 * (dy[..., :, :-1].pow(2).flatten(1).sum(1) + dx[..., :-1, :].pow(2).flatten(1).sum(1))
    raise ValueError(f"unknown TV mode {mode!r}; valid: {TV_MODES}")
