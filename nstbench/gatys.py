"""The Gatys et al. optimisation: targets once, then optimise the pixels of one or more images.

`make_gatys_loss` turns a backbone, a content and a style image and a `LossSpec` into a callable
x -> {"total", "content", "style", "tv"} (each [B]); `optimize_image` minimises any such callable.
A batch of B images is B independent problems (a sweep point per image): each image's gradient
comes from its own loss only, and Adam's update is elementwise, so per-image results equal
separate runs. L-BFGS couples the batch through its line search and therefore takes B = 1.

The content and style terms come from the perceptual-loss core the fast trainer uses too
(perceptual.FeatureLoss); `Compute` (how the backbone runs: bf16, channels_last) is described there.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Literal, Sequence

import torch

from .backbones import Backbone
from .errors import NstbenchError
from .images import Space, space_to_unit, unit_to_space
from .losses import tv_loss
# LossSpec, Compute and extract_features live with the shared loss core; imported here for callers
from .perceptual import DTYPES, Compute, FeatureLoss, LossSpec, extract_features  # noqa: F401

TERMS = ("total", "content", "style", "tv")
LossFn = Callable[[torch.Tensor], dict]
Weight = float | Sequence[float]  # one value, or one per image of the batch (a sweep)


@dataclass(frozen=True)
class OptimizerSpec:
    """adam: torch.optim.Adam. adam_tf: TensorFlow/Keras Adam, whose epsilon is added outside the
    bias correction (x -= lr_t * m / (sqrt(v) + eps), lr_t = lr sqrt(1-b2^t) / (1-b1^t)); with a
    large eps such as the Keras codes' 0.1 the two differ a lot. lbfgs: torch.optim.LBFGS, one
    history row per loss evaluation.

    lbfgs_loop says how L-BFGS is driven (`steps` counts loss evaluations in both):
      "single" - one optimizer.step(closure) with max_iter = max_eval = steps and zero tolerances:
                 exactly `steps` evaluations (steps - 1 updates);
      "while"  - `while evaluations <= steps: optimizer.step(closure)` with torch's LBFGS defaults
                 (max_iter 20, max_eval 25, tolerance_grad 1e-7, tolerance_change 1e-9), the loop of
                 the PyTorch tutorial and of Gatys' official code: each call evaluates up to 20 times
                 and the state (history, step size) carries over, so steps=300 runs 320 evaluations
                 and 320 updates.
    """

    name: Literal["adam", "adam_tf", "lbfgs"] = "adam"
    lr: float = 1.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    lbfgs_loop: Literal["single", "while"] = "single"


def _per_image(w: Weight, like: torch.Tensor) -> torch.Tensor | float:
    if isinstance(w, (int, float)):
        return float(w)
    return torch.as_tensor(list(w), dtype=like.dtype, device=like.device)


def to_network(x: torch.Tensor, space: Space, input_space: Space = "imagenet") -> torch.Tensor:
    """Pixels in `space` -> the backbone's input (`input_space`, Backbone.input_space: the
    convention of its weights). Pixels already in that space pass through untouched."""
    return x if space == input_space else unit_to_space(space_to_unit(x, space), input_space)


# How make_gatys_loss hands the images to the backbone:
#   "network"   - every source but one: the optimised pixels and the target images alike, converted
#                 to the weights' input convention (to_network);
#   "hust_code" - the HUST notebook's quirk, kept (khanhnn20042002/cv20222@265a671 style_transfer.ipynb):
#                 the optimised image goes into VGG19 as it is, RGB in [0, 1] (In[20] makes it
#                 uint8 / 255; train_step, In[32], calls the extractors on it directly), while the
#                 content and style targets go through its preprocess() (In[10], In[11], In[18]):
#                 vgg19.preprocess_input on the *uint8* image, then / 255. preprocess_input flips RGB to
#                 BGR and adds the mean cast to the image's dtype: -103.939 etc. cast to uint8 is 0 on
#                 the GPU the notebook ran on (Colab T4; CUDA saturates, tensorflow/tensorflow#59702;
#                 a CPU would wrap to 153, 140, 133), so the targets are BGR in [0, 1], no mean
#                 subtracted. Neither matches the input convention of the Keras weights; unit space only.
Feed = Literal["network", "hust_code"]
FEEDS = ("network", "hust_code")


def _feeds(feed: Feed, space: Space, net_in: Space) -> tuple[Callable, Callable]:
    """(pixels in `space` -> network input, unit-space target image -> network input)."""
    if feed == "network":
        return (lambda x: to_network(x, space, net_in)), (lambda u: to_network(unit_to_space(u, space), space, net_in))
    if feed == "hust_code":
        if space != "unit":
            raise NstbenchError(f"feed 'hust_code' optimises unit-space pixels, not {space!r}")
        return (lambda x: x), (lambda u: u.flip(1))
    raise NstbenchError(f"unknown feed {feed!r}; valid: {', '.join(FEEDS)}")


def make_gatys_loss(
    backbone: Backbone,
    content: torch.Tensor,
    style: torch.Tensor,
    spec: LossSpec,
    space: Space,
    alpha: Weight | None = None,
    beta: Weight | None = None,
    gamma: Weight | None = None,
    compute: Compute = Compute(),
    feed: Feed = "network",
) -> LossFn:
    """Content features and style Grams are computed once here, never inside the loop.

    content and style are unit-space images [1, 3, H, W]; alpha/beta/gamma override the spec,
    per image when given as sequences. The returned callable takes pixels in `space`. The
    targets are computed under the same `compute` as the loop, so that at the optimum the
    features can match them exactly. `feed`: how the images reach the backbone (see Feed).
    """
    image_in, target_in = _feeds(feed, space, backbone.input_space)
    terms = FeatureLoss(backbone, spec, target_in(style), compute)
    p = terms.content_targets(target_in(content))
    a = _per_image(spec.alpha if alpha is None else alpha, content)
    b = _per_image(spec.beta if beta is None else beta, content)
    g = _per_image(spec.gamma if gamma is None else gamma, content)
    uses_tv = not (isinstance(g, float) and g == 0.0)

    def loss(x: torch.Tensor) -> dict:
        lc, ls = terms(image_in(x), p)
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
    best_step: list[int] = field(default_factory=list)  # per image; see optimize_image's keep_best_as


class Diverged(NstbenchError):
    """The loss became NaN or inf; `result.image` holds the last image with a finite loss."""

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


def optimize_image(
    loss_fn: LossFn,
    init: torch.Tensor,
    steps: int,
    optimizer: OptimizerSpec,
    clamp: tuple[torch.Tensor, torch.Tensor] | None = None,
    keep_best: bool = False,
    progress_every: int = 0,
    label: str = "gatys",
    on_step: Callable[[int, torch.Tensor, dict], None] | None = None,
    keep_best_as: Literal["measured", "after_update"] = "measured",
) -> OptimizeResult:
    """Minimise loss_fn over the pixels of `init` ([B, 3, H, W]) for `steps` steps.

    History row k holds the losses of the image *before* update k (what the sources print at
    step k). clamp = (lo, hi) clips the pixels after every update (and the initial image).
    keep_best returns, per image, a lowest-loss image; keep_best_as says which:
      "measured"     - the image the lowest loss was measured on (the last image included);
                       best_step k is its history row (steps + 1: the last image);
      "after_update" - the TensorFlow style-transfer tutorial's `if loss < best_loss: best_img =
                       init_image` after the update and clip: the image *after* the update whose
                       pre-update loss was the lowest (the last image is never scored); best_step k
                       is the history row of that loss. Adam only.
    on_step(step, x, losses) is called after each step's progress line with the current pixels
    (detached, in the space) and the first image's losses of that step (a host sync per step, so
    only when given); an exception it raises ends the run (the app cancels runs this way).
    """
    if steps < 1:
        raise NstbenchError(f"steps must be at least 1, got {steps}")
    if keep_best_as not in ("measured", "after_update"):
        raise NstbenchError(f"unknown keep_best_as {keep_best_as!r}; valid: measured, after_update")
    if keep_best and keep_best_as == "after_update" and optimizer.name == "lbfgs":
        raise NstbenchError("keep_best_as 'after_update' pairs a loss with one update; L-BFGS makes several per call")
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
    improved = torch.zeros(B, dtype=torch.bool, device=x.device)  # after_update: this step's loss was the best
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
            if keep_best_as == "measured":
                best.copy_(torch.where(better.view(-1, 1, 1, 1), x.detach(), best))
            improved.copy_(better)
        return True

    def report(step: int) -> None:
        if progress_every and (step % progress_every == 0 or step == steps):
            r = rows[-1][:, 0].tolist()
            el = times[-1]
            eta = el / step * (steps - step)
            print(f"[{label}] step {step}/{steps} total={r[0]:.4g} content={r[1]:.4g} style={r[2]:.4g} "
                  f"tv={r[3]:.4g} {el / step:.3f}s/it ETA {eta:.0f}s", file=sys.stderr, flush=True)
        if on_step is not None:
            on_step(step, x.detach(), dict(zip(TERMS, rows[-1][:, 0].tolist())))

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
            with torch.no_grad():
                if optimizer.name == "adam":
                    opt.step()
                else:
                    _tf_adam_step(x, x.grad, state, optimizer.lr, optimizer.betas, optimizer.eps)
                if clamp is not None:
                    x.copy_(torch.max(torch.min(x, clamp[1]), clamp[0]))
                if keep_best and keep_best_as == "after_update":
                    best.copy_(torch.where(improved.view(-1, 1, 1, 1), x.detach(), best))
            report(step)
    elif optimizer.name == "lbfgs":
        if optimizer.lbfgs_loop == "single":
            opt = torch.optim.LBFGS([x], lr=optimizer.lr, max_iter=steps, max_eval=steps,
                                    tolerance_grad=0.0, tolerance_change=0.0, history_size=100)
        elif optimizer.lbfgs_loop == "while":
            opt = torch.optim.LBFGS([x], lr=optimizer.lr)  # torch's defaults, as the sources call it
        else:
            raise NstbenchError(f"unknown lbfgs_loop {optimizer.lbfgs_loop!r}; valid: single, while")
        status = {"ok": True}

        def closure():
            with torch.no_grad():
                if clamp is not None:  # the PyTorch tutorial clips inside the closure
                    x.copy_(torch.max(torch.min(x, clamp[1]), clamp[0]))
            x.grad = None
            total = evaluate()
            if status["ok"] and not observe(total, len(rows)):
                status["ok"] = False
            report(len(rows))
            # a non-finite loss is handed to L-BFGS as +inf so its line search backs off, and the run ends
            return total.sum() if status["ok"] else torch.tensor(float("inf"))

        opt.step(closure)
        # the sources' `while run[0] <= num_steps`: the evaluation counter is checked between calls only
        while optimizer.lbfgs_loop == "while" and status["ok"] and len(rows) <= steps:
            opt.step(closure)
        diverged = not status["ok"]
        if clamp is not None:
            with torch.no_grad():
                x.copy_(torch.max(torch.min(x, clamp[1]), clamp[0]))
    else:
        raise NstbenchError(f"unknown optimizer {optimizer.name!r}; valid: adam, adam_tf, lbfgs")

    seconds = time.perf_counter() - t0
    hist = torch.stack(rows).cpu() if rows else torch.zeros(0, 4, B, dtype=torch.float64)  # [steps, 4, B]
    history = [
        {"step": k + 1, "image": i, **{t: float(hist[k, j, i]) for j, t in enumerate(TERMS)}, "seconds": times[k]}
        for k in range(hist.shape[0]) for i in range(B)
    ]
    result = OptimizeResult(image=last_good, last=last_good, history=history, seconds=seconds, diverged=diverged)
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
    if keep_best and keep_best_as == "after_update":
        result.image, result.best_step = best, best_step.tolist()
    elif keep_best:
        better = final["total"].to(torch.float64) < best_total
        result.image = torch.where(better.view(-1, 1, 1, 1), last, best)
        after = hist.shape[0] + 1  # the final image, after the last evaluated step
        result.best_step = torch.where(better, torch.full_like(best_step, after), best_step).tolist()
    return result

