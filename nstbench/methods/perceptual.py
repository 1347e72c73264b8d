"""The perceptual loss core that both methods share: what is measured (LossSpec), how the backbone
runs (Compute), and the content and style terms with their targets computed once (FeatureLoss).

Gatys' optimisation (gatys.make_gatys_loss) compares one image with fixed content features; the
fast trainer (fast.PerceptualLoss) compares each batch of outputs with the features of its own
inputs. Both build a FeatureLoss from the style image once and hand it the content targets.

`Compute` says how the backbone runs, never what is computed. dtype "bfloat16" runs the backbone
under autocast (convolutions in bf16, ~2x the fp32 throughput on CPUs with AVX512-BF16 or AMX and
on GPUs); the image, the optimiser's state, the Grams and the losses stay fp32. Grams are formed in
fp32 from the bf16 features because a Gram entry sums H*W products (65,536 at 256 px): a bf16
result keeps ~3 significant digits, and the style loss (G - A)^2 subtracts nearly equal Grams, so
bf16 Grams would leave mostly rounding noise near convergence. channels_last hands the
convolutions NHWC tensors, which oneDNN (CPU) and cuDNN (tensor cores) run without layout reorders.
compile names a torch.compile mode for the loss network's extract (every loss: Gatys and the
fast trainer) and for the fast network (Compute.prepare): "inductor" (generated kernels),
"reduce-overhead" (inductor plus CUDA graphs: one launch per step), "eager" (graph capture only, no
code generation: a test of the plumbing). The first call compiles (tens of seconds); whether it
pays is measured per device by benchmarks/gpu_check.py, so it is never on by default. The compiled
extractor is made once per backbone and Compute and reused by every later loss (an experiment runs
many), so it compiles once, not once per run (dynamo would stop recompiling after a few and
silently run eager).
"""

from __future__ import annotations

import copy
import dataclasses
import weakref

import torch

from ..config.compute import Compute
from ..config.errors import NstbenchError
from ..config.specs import LossSpec
from ..nets.backbones import Backbone
from ..nets.losses import content_loss, gram, style_loss, tv_loss


def extract_features(backbone: Backbone, x: torch.Tensor, layers, compute: Compute) -> dict[str, torch.Tensor]:
    """backbone.extract under `compute`; the features come back NCHW in the image's dtype (fp32
    from a bf16 backbone; float64 stays float64 for exact-arithmetic tests). For fp32 NCHW this is
    backbone.extract itself, bit for bit."""
    if compute.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    dtype = x.dtype
    with compute.autocast(x.device.type):
        f = backbone.extract(x, layers)
    # one copy converts dtype and layout; Grams (losses.gram reshapes to [B, C, HW]) want NCHW
    return {k: v.to(dtype, memory_format=torch.contiguous_format) for k, v in f.items()}


# extractor -> {Compute: (the weights' state, its converted and compiled copy)}; gone with the extractor
_CONVERTED: "weakref.WeakKeyDictionary[torch.nn.Module, dict]" = weakref.WeakKeyDictionary()


def compute_backbone(backbone: Backbone, compute: Compute) -> Backbone:
    """The backbone as `compute` runs it. For NHWC, bf16 or compile, a private copy of the
    extractor converted once per (extractor, compute) and reused: NHWC weights (no per-call
    reorder), bf16 weights (autocast would cast weights that need no gradient anew at every
    forward; the features are bit-identical), a compiled `extract`. The caller's backbone keeps
    its layout and dtype; a change to its weights (in place, or a move) makes a new copy."""
    if compute == Compute():
        return backbone
    cache = _CONVERTED.setdefault(backbone.extractor, {})
    # the source's weights as they are now: a move (.to) or an in-place change makes a new copy
    state = tuple((q.data_ptr(), q._version) for q in backbone.extractor.parameters())
    if cache.get(compute, (None,))[0] != state:
        ext = copy.deepcopy(backbone.extractor)
        if compute.channels_last:
            ext = ext.to(memory_format=torch.channels_last)
        if compute.dtype == "bfloat16":
            ext = ext.to(torch.bfloat16)
        if compute.compile is not None:  # the instance's extract, compiled (self is bound: one guard)
            ext.extract = torch.compile(ext.extract, **compute.compile_kwargs())
        cache[compute] = (state, ext)
    return dataclasses.replace(backbone, extractor=cache[compute][1])


def blend_weights(weights: list[float] | None, n: int) -> list[float]:
    """The weights of n style images, normalised to sum 1 (equal when not given)."""
    if weights is None:
        return [1.0 / n] * n
    if len(weights) != n or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise NstbenchError(
            f"--style-blend needs {n} weights >= 0 (one per --style) with a positive sum, got {list(weights)}"
        )
    return [w / sum(weights) for w in weights]


class FeatureLoss:
    """The content and style terms of `spec` on `backbone`, per image ([B] each).

    The style Grams come from `style` (network input, [1, 3, H, W], or a list blended by `blend`)
    once, here; the content
    targets are the caller's (`content_targets` of the content image, once for Gatys, of every
    input batch for the fast trainer). All images go in as network input (Backbone.preprocess /
    gatys.to_network), and every call runs the network once, to the deepest layer either term needs.
    """

    def __init__(
        self,
        backbone: Backbone,
        spec: LossSpec,
        style: torch.Tensor | list[torch.Tensor],
        compute: Compute = Compute(),
        blend: list[float] | None = None,
    ):
        self.backbone, self.spec, self.compute = compute_backbone(backbone, compute), spec, compute
        self.content_w = dict(spec.content_layers)
        self.style_w = dict(spec.style_layers)
        self.layers = list(dict.fromkeys(list(self.content_w) + list(self.style_w)))
        styles = list(style) if isinstance(style, (list, tuple)) else [style]
        weights = blend_weights(blend, len(styles))
        self.style_targets: dict[str, torch.Tensor] = {}  # [1, C, C] each
        with torch.no_grad():
            for image, w in zip(styles, weights):
                s = extract_features(self.backbone, image, list(self.style_w), compute)
                for n in self.style_w:
                    g = gram(s[n], spec.gram_norm)
                    # one style: its Gram as it is (bit-exact); several: the weighted sum (neural-style)
                    self.style_targets[n] = g if len(styles) == 1 else self.style_targets.get(n, 0) + w * g

    def content_targets(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The content layers' features of network input `x` (no gradient)."""
        with torch.no_grad():
            return extract_features(self.backbone, x, list(self.content_w), self.compute)

    def __call__(self, x: torch.Tensor, targets: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(content, style) of network input `x` against content `targets` and the style Grams."""
        spec = self.spec
        f = extract_features(self.backbone, x, self.layers, self.compute)
        lc = sum(w * content_loss(f[n], targets[n], spec.content_mode) for n, w in self.content_w.items())
        ls = style_loss(f, self.style_targets, self.style_w, spec.gram_norm, spec.style_mode, spec.style_reduce)
        return lc, ls


class PerceptualLoss:
    """Johnson's perceptual loss for a batch of outputs y and inputs x (both unit space).

    The loss network sees the input its weights expect (Backbone.preprocess: ImageNet-normalised
    RGB for torchvision and random weights, BGR 0..255 minus the mean for Keras and Caffe weights).
    The style Grams are computed once here and broadcast over every batch. Note: the Caffe/Keras
    VGGs produce features on another scale than torchvision's VGG, so the same lambdas weigh the
    terms differently unless the preset's own weight family is loaded; see README.
    """

    def __init__(
        self,
        backbone: Backbone,
        style: torch.Tensor,
        spec: LossSpec,
        tv_batch: str = "mean",
        content_target_quirk: bool = False,
        compute: Compute = Compute(),
    ):
        self.backbone, self.spec, self.tv_batch, self.quirk = backbone, spec, tv_batch, content_target_quirk
        self.terms = FeatureLoss(backbone, spec, backbone.preprocess(style), compute)  # style Grams [1, C, C], once

    @property
    def targets(self) -> dict[str, torch.Tensor]:
        """The style Grams, one [1, C, C] per style layer (broadcast over every batch)."""
        return self.terms.style_targets

    def __call__(self, y: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
        spec, pre = self.spec, self.backbone.preprocess
        p = self.terms.content_targets(pre(x / 255.0 if self.quirk else x))
        lc, ls = self.terms(pre(y), p)
        if spec.gamma != 0.0:
            ltv = tv_loss(y * 255.0, spec.tv_mode)  # 0..255 pixel units
            tv = ltv.sum() if self.tv_batch == "sum" else ltv.mean()
        else:
            tv = torch.zeros((), device=y.device)
        content, style = lc.mean(), ls.mean()
        total = spec.alpha * content + spec.beta * style + spec.gamma * tv
        return {"total": total, "content": content, "style": style, "tv": tv}
