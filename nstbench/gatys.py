"""The Gatys et al. optimisation: targets once, then optimise the pixels of one or more images.

`make_gatys_loss` turns a backbone, a content and a style image and a `LossSpec` into a callable
x -> {"total", "content", "style", "tv"} (each [B]); `optimize_image` minimises any such callable.
A batch of B images is B independent problems (a sweep point per image): each image's gradient
comes from its own loss only, and Adam's update is elementwise, so per-image results equal
separate runs. L-BFGS couples the batch through its line search and therefore takes B = 1.

`Compute` says how the backbone runs, never what is computed. dtype "bfloat16" runs the backbone
under autocast (convolutions in bf16, ~2x the fp32 throughput on CPUs with AVX512-BF16 or AMX and
on GPUs); the image, Adam's state, the Grams and the losses stay fp32. Grams are formed in fp32
from the bf16 features because a Gram entry sums H*W products (65,536 at 256 px): a bf16 result
keeps ~3 significant digits, and the style loss (G - A)^2 subtracts nearly equal Grams, so bf16
Grams would leave mostly rounding noise near convergence. channels_last hands the convolutions
NHWC tensors, which oneDNN (CPU) and cuDNN (tensor cores) run without layout reorders.
"""
from __future__ import annotations

import copy
import dataclasses
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Literal, Sequence

import torch

from .backbones import Backbone
from .errors import NstbenchError
from .images import Space, space_to_unit, unit_to_space
from .losses import (ContentMode, GramNorm, Reduce, StyleMode, TVMode, content_loss, gram,
                     style_loss, tv_loss)

TERMS = ("total", "content", "style", "tv")
LossFn = Callable[[torch.Tensor], dict]
Weight = float | Sequence[float]  # one value, or one per image of the batch (a sweep)


@dataclass(frozen=True)
class LossSpec:
    """What is measured: layers with weights, normalisation modes (see losses.py), and the mix
    total = alpha * content + beta * style + gamma * tv."""

    content_layers: tuple[tuple[str, float], ...]
    style_layers: tuple[tuple[str, float], ...]
    content_mode: ContentMode
    gram_norm: GramNorm
    style_mode: StyleMode
    style_reduce: Reduce = "sum"
    alpha: float = 1.0
    beta: float = 1.0
    gamma: float = 0.0
    tv_mode: TVMode = "l1_sum"


@dataclass(frozen=True)
class OptimizerSpec:
    """adam: torch.optim.Adam. adam_tf: TensorFlow/Keras Adam, whose epsilon is added outside the
    bias correction (x -= lr_t * m / (sqrt(v) + eps), lr_t = lr sqrt(1-b2^t) / (1-b1^t)); with a
    large eps such as the Keras codes' 0.1 the two differ a lot. lbfgs: torch.optim.LBFGS, one
    step per loss evaluation."""

    name: Literal["adam", "adam_tf", "lbfgs"] = "adam"
    lr: float = 1.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class Compute:
    """How the backbone runs (see the module docstring). The default is plain fp32 NCHW."""

    dtype: Literal["float32", "bfloat16"] = "float32"
    channels_last: bool = False

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise NstbenchError(f"unknown dtype {self.dtype!r}; valid: {', '.join(DTYPES)}")


def extract_features(backbone: Backbone, x: torch.Tensor, layers, compute: Compute) -> dict[str, torch.Tensor]:
    """backbone.extract under `compute`; the features come back as fp32 NCHW tensors (for fp32
    NCHW this is backbone.extract itself, bit for bit)."""
    if compute.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=compute.dtype == "bfloat16"):
        f = backbone.extract(x, layers)
    # one copy converts dtype and layout; Grams (losses.gram reshapes to [B, C, HW]) want NCHW
    return {k: v.to(torch.float32, memory_format=torch.contiguous_format) for k, v in f.items()}


def _per_image(w: Weight, like: torch.Tensor) -> torch.Tensor | float:
    if isinstance(w, (int, float)):
        return float(w)
    return torch.as_tensor(list(w), dtype=like.dtype, device=like.device)


def to_network(x: torch.Tensor, space: Space) -> torch.Tensor:
    """Pixels in `space` -> the input torchvision's weights expect (ImageNet-normalised RGB)."""
    return x if space == "imagenet" else unit_to_space(space_to_unit(x, space), "imagenet")


def _blend_weights(weights: list[float] | None, n: int) -> list[float]:
    if weights is None:
        return [1.0 / n] * n
    if len(weights) != n or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise NstbenchError(f"--style-blend needs {n} weights >= 0 (one per --style) with a positive sum, "
                            f"got {list(weights)}")
    return [w / sum(weights) for w in weights]


def make_gatys_loss(
    backbone: Backbone,
    content: torch.Tensor,
    style: torch.Tensor | list[torch.Tensor],
    spec: LossSpec,
    space: Space,
    alpha: Weight | None = None,
    beta: Weight | None = None,
    gamma: Weight | None = None,
    compute: Compute = Compute(),
    style_blend: list[float] | None = None,
) -> LossFn:
    """Content features and style Grams are computed once here, never inside the loop.

    content and style are unit-space images [1, 3, H, W]; alpha/beta/gamma override the spec,
    per image when given as sequences. Several style images (a list) give one target Gram per
    layer, their sum weighted by style_blend (normalised to 1; default equal), as neural-style's
    -style_blend_weights does. The returned callable takes pixels in `space`. The
    targets are computed under the same `compute` as the loop, so that at the optimum the
    features can match them exactly.
    """
    content_w = dict(spec.content_layers)
    style_w = dict(spec.style_layers)
    if compute.channels_last or compute.dtype == "bfloat16":
        # A private copy of the extractor, converted once: NHWC weights (no per-call reorder) and/or
        # bf16 weights (autocast casts weights that need no gradient anew at every forward; the
        # features are bit-identical). The caller's backbone keeps its layout and dtype.
        ext = copy.deepcopy(backbone.extractor)
        if compute.channels_last:
            ext = ext.to(memory_format=torch.channels_last)
        if compute.dtype == "bfloat16":
            ext = ext.to(torch.bfloat16)
        backbone = dataclasses.replace(backbone, extractor=ext)
    with torch.no_grad():
        p = extract_features(backbone, to_network(unit_to_space(content, space), space), list(content_w), compute)
        styles = style if isinstance(style, (list, tuple)) else [style]
        blend = _blend_weights(style_blend, len(styles))
        targets: dict = {}
        for st, w in zip(styles, blend):
            s = extract_features(backbone, to_network(unit_to_space(st, space), space), list(style_w), compute)
            for n in style_w:
                g_n = gram(s[n], spec.gram_norm)
                targets[n] = g_n if len(styles) == 1 else targets.get(n, 0) + w * g_n  # one style: bit-exact
    layers = list(dict.fromkeys(list(content_w) + list(style_w)))
    a = _per_image(spec.alpha if alpha is None else alpha, content)
    b = _per_image(spec.beta if beta is None else beta, content)
    g = _per_image(spec.gamma if gamma is None else gamma, content)
    uses_tv = not (isinstance(g, float) and g == 0.0)

    def loss(x: torch.Tensor) -> dict:
        f = extract_features(backbone, to_network(x, space), layers, compute)
        lc = sum(w * content_loss(f[n], p[n], spec.content_mode) for n, w in content_w.items())
        ls = style_loss(f, targets, style_w, spec.gram_norm, spec.style_mode, spec.style_reduce)
        ltv = tv_loss(x, spec.tv_mode) if uses_tv else torch.zeros_like(lc)
        return {"total": a * lc + b * ls + g * ltv, "content": lc, "style": ls, "tv": ltv}

    return loss


def initial_image(init: str, content: torch.Tensor, style: torch.Tensor, space: Space, seed: int = 0, batch: int = 1) -> torch.Tensor:
    """content | noise | style, as pixels in `space`, repeated `batch` times.

    noise is seeded white noise N(0, 1) in unit space (the PyTorch tutorial's torch.randn); with
    clamping on, the first step clips it to [0, 1]. style is resized to the content's shape.
    """
    if init == "content":
        x = content
    elif init == "noise":
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(content.shape, generator=gen, dtype=content.dtype).to(content.device)
    elif init == "style":
        x = torch.nn.functional.interpolate(style, size=content.shape[-2:], mode="bilinear", align_corners=False, antialias=True)
    else:
        raise NstbenchError(f"unknown init {init!r}; valid: content, noise, style")
    return unit_to_space(x, space).repeat(batch, 1, 1, 1).contiguous()


@dataclass
class OptimizeResult:
    image: torch.Tensor  # the result: the best image when keep_best, else the last (in the space)
    last: torch.Tensor  # the image after the last step
    history: list[dict] = field(default_factory=list)  # one row per step and image
    final: dict = field(default_factory=dict)  # losses of `last`, per image
    seconds: float = 0.0
    diverged: bool = False
    best_step: list[int] = field(default_factory=list)


class Diverged(NstbenchError):
    """The loss became NaN or inf; `result.image` holds the last image with a finite loss."""

    def __init__(self, message: str, result: OptimizeResult):
        super().__init__(message)
        self.result = result


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during the optimisation; `result.image` holds the last image with a finite loss."""

    def __init__(self, message: str, result: OptimizeResult):
        super().__init__(message)
        self.result = result


def _tf_adam_step(x: torch.Tensor, g: torch.Tensor, state: dict, lr: float, betas, eps: float) -> None:
    b1, b2 = betas
    state["t"] += 1
    t = state["t"]
    state["m"].mul_(b1).add_(g, alpha=1 - b1)
    state["v"].mul_(b2).addcmul_(g, g, value=1 - b2)
    lr_t = lr * (1 - b2**t) ** 0.5 / (1 - b1**t)
    x.sub_(lr_t * state["m"] / (state["v"].sqrt() + eps))


PROGRESS_SECONDS = 10.0  # the default progress interval of every long run (stylize, train)


def optimize_image(
    loss_fn: LossFn,
    init: torch.Tensor,
    steps: int,
    optimizer: OptimizerSpec,
    clamp: tuple[torch.Tensor, torch.Tensor] | None = None,
    keep_best: bool = False,
    progress_every: int | None = 0,
    label: str = "gatys",
    on_step: Callable[[int, torch.Tensor], None] | None = None,
) -> OptimizeResult:
    """Minimise loss_fn over the pixels of `init` ([B, 3, H, W]) for `steps` steps.

    History row k holds the losses of the image *before* update k (what the sources print at
    step k). clamp = (lo, hi) clips the pixels after every update (and the initial image).
    keep_best returns, per image, the lowest-loss image seen (the last one included).
    progress_every: a progress line on stderr every N steps; 0: none; None: every
    PROGRESS_SECONDS (and after the first and the last step). on_step(step, image) is called
    with each step's measured image (finite loss; in the space, do not modify it).
    """
    if steps < 1:
        raise NstbenchError(f"steps must be at least 1, got {steps}")
    if optimizer.name == "lbfgs" and init.shape[0] != 1:
        raise NstbenchError("L-BFGS couples the images of a batch through its line search; use batch 1")
    x = init.detach().clone()
    if clamp is not None:
        x = torch.max(torch.min(x, clamp[1]), clamp[0])
    x.requires_grad_(True)
    B = x.shape[0]
    rows: list[torch.Tensor] = []  # [4, B] per step, kept as tensors: no host sync per step
    times: list[float] = []
    last_good = x.detach().clone()
    best = x.detach().clone() if keep_best else None
    best_total = torch.full((B,), float("inf"), dtype=torch.float64, device=x.device)
    best_step = torch.zeros(B, dtype=torch.long, device=x.device)
    t0 = time.perf_counter()
    diverged = False

    def evaluate() -> torch.Tensor:
        terms = loss_fn(x)
        total = terms["total"]
        total.sum().backward()  # per-image losses summed: each image gets its own gradient
        rows.append(torch.stack([terms[k].detach().to(torch.float64) for k in TERMS]))
        times.append(time.perf_counter() - t0)
        return total.detach()

    def observe(total: torch.Tensor, step: int) -> bool:
        """Track the last finite and the best image; False when the loss is no longer finite."""
        if not bool(torch.isfinite(total).all()):
            return False
        last_good.copy_(x.detach())
        if keep_best:
            better = total.to(torch.float64) < best_total
            best_total.copy_(torch.where(better, total.to(torch.float64), best_total))
            best_step.copy_(torch.where(better, torch.full_like(best_step, step), best_step))
            best.copy_(torch.where(better.view(-1, 1, 1, 1), x.detach(), best))
        return True

    printed = {"at": 0.0}

    def report(step: int) -> None:
        el = times[-1]
        if progress_every is None:
            due = step in (1, steps) or el - printed["at"] >= PROGRESS_SECONDS
        else:
            due = bool(progress_every) and (step % progress_every == 0 or step == steps)
        if due:
            printed["at"] = el
            r = rows[-1][:, 0].tolist()
            eta = el / step * (steps - step)
            print(f"[{label}] step {step}/{steps} total={r[0]:.4g} content={r[1]:.4g} style={r[2]:.4g} "
                  f"tv={r[3]:.4g} {el / step:.3f}s/it ETA {eta:.0f}s", file=sys.stderr, flush=True)

    interrupted = False
    try:
        if optimizer.name in ("adam", "adam_tf"):
            if optimizer.name == "adam":
                opt = torch.optim.Adam([x], lr=optimizer.lr, betas=optimizer.betas, eps=optimizer.eps)
            else:
                state = {"t": 0, "m": torch.zeros_like(x), "v": torch.zeros_like(x)}
            for step in range(1, steps + 1):
                x.grad = None
                total = evaluate()
                if not observe(total, step):
                    diverged = True
                    break
                if on_step is not None:
                    on_step(step, last_good)
                with torch.no_grad():
                    if optimizer.name == "adam":
                        opt.step()
                    else:
                        _tf_adam_step(x, x.grad, state, optimizer.lr, optimizer.betas, optimizer.eps)
                    if clamp is not None:
                        x.copy_(torch.max(torch.min(x, clamp[1]), clamp[0]))
                report(step)
        elif optimizer.name == "lbfgs":
            opt = torch.optim.LBFGS([x], lr=optimizer.lr, max_iter=steps, max_eval=steps,
                                    tolerance_grad=0.0, tolerance_change=0.0, history_size=100)
            status = {"ok": True}

            def closure():
                with torch.no_grad():
                    if clamp is not None:  # the PyTorch tutorial clips inside the closure
                        x.copy_(torch.max(torch.min(x, clamp[1]), clamp[0]))
                x.grad = None
                total = evaluate()
                if status["ok"] and not observe(total, len(rows)):
                    status["ok"] = False
                elif status["ok"] and on_step is not None:
                    on_step(len(rows), last_good)
                report(len(rows))
                # a non-finite loss is handed to L-BFGS as +inf so its line search backs off, and the run ends
                return total.sum() if status["ok"] else torch.tensor(float("inf"))

            opt.step(closure)
            diverged = not status["ok"]
            if clamp is not None:
                with torch.no_grad():
                    x.copy_(torch.max(torch.min(x, clamp[1]), clamp[0]))
        else:
            raise NstbenchError(f"unknown optimizer {optimizer.name!r}; valid: adam, adam_tf, lbfgs")
    except KeyboardInterrupt:  # Ctrl-C: the last image with a finite loss is handed back (Interrupted)
        interrupted = True

    seconds = time.perf_counter() - t0
    hist = torch.stack(rows).cpu() if rows else torch.zeros(0, 4, B, dtype=torch.float64)  # [steps, 4, B]
    history = [
        {"step": k + 1, "image": i, **{t: float(hist[k, j, i]) for j, t in enumerate(TERMS)}, "seconds": times[k]}
        for k in range(hist.shape[0]) for i in range(B)
    ]
    result = OptimizeResult(image=last_good, last=last_good, history=history, seconds=seconds, diverged=diverged)
    if interrupted:
        done = len(rows)  # steps measured (curve rows); the kept image is the last one measured finite
        raise Interrupted(f"interrupted after {done} of {steps} steps; kept the image of step {done}", result)
    if diverged:
        bad = hist.shape[0]
        raise Diverged(f"loss became non-finite at step {bad}; kept the image of step {max(bad - 1, 0)} "
                       "(the last with a finite loss)", result)
    last = x.detach()
    with torch.no_grad():
        final = {k: v.detach() for k, v in loss_fn(last).items()}
    result.last = last
    result.final = {k: v.cpu().tolist() for k, v in final.items()}
    result.image = last
    if keep_best:
        better = final["total"].to(torch.float64) < best_total
        result.image = torch.where(better.view(-1, 1, 1, 1), last, best)
        result.best_step = torch.where(better, torch.full_like(best_step, steps + 1), best_step).tolist()
    return result

