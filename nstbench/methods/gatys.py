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
from dataclasses import dataclass, field, replace
from typing import Callable, Literal, Sequence

import torch

from ..config.compute import Compute
from ..config.errors import NstbenchError
from ..config.specs import FEEDS, Feed, LossSpec, OptimizerSpec, Space
from ..nets.backbones import Backbone
from ..nets.images import space_to_unit, unit_to_space
from ..nets.losses import tv_loss
from .perceptual import FeatureLoss

TERMS = ("total", "content", "style", "tv")
LossFn = Callable[[torch.Tensor], dict]
Weight = float | Sequence[float]  # one value, or one per image of the batch (a sweep)


def _per_image(w: Weight, like: torch.Tensor) -> torch.Tensor | float:
    if isinstance(w, (int, float)):
        return float(w)
    return torch.as_tensor(list(w), dtype=like.dtype, device=like.device)


def to_network(x: torch.Tensor, space: Space, input_space: Space = "imagenet") -> torch.Tensor:
    """Pixels in `space` -> the backbone's input (`input_space`, Backbone.input_space: the
    convention of its weights). Pixels already in that space pass through untouched."""
    return x if space == input_space else unit_to_space(space_to_unit(x, space), input_space)


def _feeds(feed: Feed, space: Space, net_in: Space) -> tuple[Callable, Callable]:
    """(pixels in `space` -> network input, unit-space target image -> network input)."""
    if feed == "network":
        return (lambda x: to_network(x, space, net_in)), (lambda u: to_network(unit_to_space(u, space), space, net_in))
    if feed == "hust_code":
        if space != "unit":
            raise NstbenchError(f"feed 'hust_code' optimises unit-space pixels, not {space!r}")
        return (lambda x: x), (lambda u: u.flip(1))
    raise NstbenchError(f"unknown feed {feed!r}; valid: {', '.join(FEEDS)}")


@dataclass(frozen=True)
class Mix:
    """How a run weighs its loss beyond the LossSpec: alpha, beta and gamma in place of the
    spec's (one value, or one per image of the batch: a sweep; None keeps the spec's) and the
    weights that blend several style images' Grams (neural-style's -style_blend_weights; None:
    equal). Kept apart from the spec, which is a source's declaration and holds one value each."""

    alpha: Weight | None = None
    beta: Weight | None = None
    gamma: Weight | None = None
    style_blend: list[float] | None = None


def make_gatys_loss(
    backbone: Backbone,
    content: torch.Tensor,
    style: torch.Tensor | list[torch.Tensor],
    spec: LossSpec,
    space: Space,
    mix: Mix = Mix(),
    compute: Compute = Compute(),
    feed: Feed = "network",
) -> LossFn:
    """Content features and style Grams are computed once here, never inside the loop.

    content and style are unit-space images [1, 3, H, W] (style may be a list, its Grams blended by
    mix.style_blend); mix's alpha/beta/gamma override the spec's. The returned callable takes pixels
    in `space`. The targets are computed under the same `compute` as the loop, so that at the
    optimum the features can match them exactly. `feed`: how the images reach the backbone (see Feed).
    """
    image_in, target_in = _feeds(feed, space, backbone.input_space)
    styles = style if isinstance(style, (list, tuple)) else [style]
    terms = FeatureLoss(backbone, spec, [target_in(s) for s in styles], compute, blend=mix.style_blend)
    p = terms.content_targets(target_in(content))
    a = _per_image(spec.alpha if mix.alpha is None else mix.alpha, content)
    b = _per_image(spec.beta if mix.beta is None else mix.beta, content)
    g = _per_image(spec.gamma if mix.gamma is None else mix.gamma, content)
    uses_tv = not (isinstance(g, float) and g == 0.0)

    def loss(x: torch.Tensor) -> dict:
        lc, ls = terms(image_in(x), p)
        ltv = tv_loss(x, spec.tv_mode) if uses_tv else torch.zeros_like(lc)
        return {"total": a * lc + b * ls + g * ltv, "content": lc, "style": ls, "tv": ltv}

    return loss


def initial_image(
    init: str, content: torch.Tensor, style: torch.Tensor, space: Space, seed: int = 0, batch: int = 1
) -> torch.Tensor:
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
        x = torch.nn.functional.interpolate(
            style, size=content.shape[-2:], mode="bilinear", align_corners=False, antialias=True
        )
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


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during the optimisation; `result.image` holds the last image with a finite loss."""

    def __init__(self, message: str, result: OptimizeResult):
        super().__init__(message)
        self.result = result


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


PROGRESS_SECONDS = 10.0  # the default progress interval of every long run (stylize, train)
# How often optimize_image reads the "all losses finite" flag on the host, off the CPU (sync_every).
# A read waits for the device to finish every queued step; at 512 px a bf16 Adam step takes ~2 ms on
# an H100-class GPU, about the time the host needs to queue the next one, so a read per step would
# leave the GPU idle between steps. Every 50 steps costs one drain per 50 and, when a run diverges,
# at most 49 wasted (and discarded) steps. On the CPU a read costs nothing: every step.
SYNC_EVERY_DEVICE = 50
OnStep = Callable[[int, torch.Tensor, dict], None]


@dataclass(frozen=True)
class RunOptions:
    """How one Gatys run goes, never what it computes (the preset, the loss and the optimiser say
    that). optimize_image reads the progress line's interval (progress_every: every N steps, 0
    none, None every PROGRESS_SECONDS) and label, the step observer (on_step) and sync_every;
    gatys_run.run_preset also the seed (the noise init) and compute (how the backbone runs);
    gatys_run.run_stylize also which weights it loads (families.py's --weights keywords) and the
    device it runs on (run_preset runs on its images' device)."""

    seed: int = 0
    compute: Compute = Compute()
    progress_every: int | None = None
    label: str | None = None  # the progress lines' prefix; None: the preset's name ("gatys" for optimize_image)
    on_step: OnStep | None = None
    sync_every: int | None = None
    weights: str = "auto"
    device: torch.device = torch.device("cpu")


QUIET = RunOptions(progress_every=0)  # optimize_image's default: no progress lines


class _Run:
    """One optimize_image call's state: the pixels x, the per-step losses (kept as tensors: no host
    sync per step), the last image with a finite loss and, with keep_best, the best one."""

    def __init__(
        self,
        loss_fn: LossFn,
        init: torch.Tensor,
        steps: int,
        clamp,
        keep_best: bool,
        keep_best_as: str,
        run: RunOptions,
    ):
        self.loss_fn, self.steps, self.clamp = loss_fn, steps, clamp
        self.planned = steps  # the evaluations expected (OptimizerSpec.evaluations): the progress line's end
        self.keep_best, self.keep_best_as = keep_best, keep_best_as
        self.progress_every, self.label, self.on_step = run.progress_every, run.label or "gatys", run.on_step
        # on_step reads the losses: a sync anyway
        self.sync_every = 1 if run.on_step is not None else run.sync_every
        self.x = init.detach().clone()
        if clamp is not None:
            self.x = torch.max(torch.min(self.x, clamp[1]), clamp[0])
        self.x.requires_grad_(True)
        B, dev = self.x.shape[0], self.x.device
        self.rows: list[torch.Tensor] = []  # [4, B] per step
        self.times: list[float] = []
        self.last_good = self.x.detach().clone()
        self.best = self.x.detach().clone() if keep_best else None
        self.best_total = torch.full((B,), float("inf"), dtype=torch.float64, device=dev)
        self.best_step = torch.zeros(B, dtype=torch.long, device=dev)
        self.improved = torch.zeros(B, dtype=torch.bool, device=dev)  # after_update: this step's loss was the best
        self.ok = torch.ones((), dtype=torch.bool, device=dev)  # every loss so far finite (on the device)
        self.t0 = time.perf_counter()
        self.printed_at = 0.0

    def clip(self) -> None:
        if self.clamp is not None:
            with torch.no_grad():
                self.x.copy_(torch.max(torch.min(self.x, self.clamp[1]), self.clamp[0]))

    def evaluate(self) -> torch.Tensor:
        self.x.grad = None
        terms = self.loss_fn(self.x)
        total = terms["total"]
        total.sum().backward()  # per-image losses summed: each image gets its own gradient
        self.rows.append(torch.stack([terms[k].detach().to(torch.float64) for k in TERMS]))
        self.times.append(time.perf_counter() - self.t0)
        return total.detach()

    def observe(self, total: torch.Tensor) -> bool:
        """Track the last finite and the best image and tell on_step. Returns False once a loss is
        known not to be finite: the host reads the device's `ok` flag only every sync_every steps,
        so a GPU runs ahead of Python; the steps after the first non-finite loss change nothing
        (every update below is masked by `ok`) and `finish` drops their rows."""
        self.ok &= torch.isfinite(total).all()
        step = len(self.rows)
        if (step % self.sync_every == 0 or step == self.steps) and not bool(self.ok):
            return False
        # torch.where, not an `if`: a copy where every loss so far is finite, without a host sync
        self.last_good.copy_(torch.where(self.ok, self.x.detach(), self.last_good))
        if self.keep_best:
            t64 = total.to(torch.float64)
            better = (t64 < self.best_total) & self.ok
            self.best_total.copy_(torch.where(better, t64, self.best_total))
            self.best_step.copy_(torch.where(better, torch.full_like(self.best_step, step), self.best_step))
            if self.keep_best_as == "measured":
                self.best.copy_(torch.where(better.view(-1, 1, 1, 1), self.x.detach(), self.best))
            self.improved.copy_(better)
        if self.on_step is not None:  # the measured image and its losses (a host sync, only when asked)
            self.on_step(step, self.last_good, dict(zip(TERMS, self.rows[-1][:, 0].tolist())))
        return True

    def finish(self) -> bool:
        """The end of the loop: whether every loss was finite (one host sync). If not, the rows after
        the first non-finite one are dropped, so the history ends where a per-step check had stopped."""
        if bool(self.ok):
            return True
        totals = torch.stack([r[0] for r in self.rows]).cpu()  # [steps, B]
        bad = int((~torch.isfinite(totals).all(dim=1)).nonzero()[0])
        del self.rows[bad + 1 :], self.times[bad + 1 :]
        return False

    def report(self) -> None:
        """A progress line: every progress_every steps, or (None) every PROGRESS_SECONDS."""
        step, el = len(self.rows), self.times[-1]
        if self.progress_every is None:
            due = step in (1, self.planned) or el - self.printed_at >= PROGRESS_SECONDS
        else:
            due = bool(self.progress_every) and (step % self.progress_every == 0 or step == self.planned)
        if due:
            self.printed_at = el
            r = self.rows[-1][:, 0].tolist()
            eta = el / step * max(self.planned - step, 0)
            # the sources' L-BFGS while loop goes on past `steps` to the end of its last L-BFGS call: both counts
            at = (
                f"step {step}/{self.steps}"
                if self.planned == self.steps
                else f"step {min(step, self.steps)}/{self.steps} (evaluation {step}/{self.planned})"
            )
            print(
                f"[{self.label}] {at} total={r[0]:.4g} content={r[1]:.4g} style={r[2]:.4g} "
                f"tv={r[3]:.4g} {el / step:.3f}s/it ETA {eta:.0f}s",
                file=sys.stderr,
                flush=True,
            )


def _adam(run: _Run, optimizer: OptimizerSpec) -> bool:
    """Adam (torch's, or TensorFlow's epsilon convention): one evaluation and one update per step.
    Returns False when the loss stopped being finite."""
    x = run.x
    if optimizer.name == "adam":
        opt = torch.optim.Adam([x], lr=optimizer.lr, betas=optimizer.betas, eps=optimizer.eps)
    else:
        state = {"t": 0, "m": torch.zeros_like(x), "v": torch.zeros_like(x)}
    for _ in range(run.steps):
        if not run.observe(run.evaluate()):
            break
        with torch.no_grad():
            if optimizer.name == "adam":
                opt.step()
            else:
                _tf_adam_step(x, x.grad, state, optimizer.lr, optimizer.betas, optimizer.eps)
        run.clip()
        if run.keep_best and run.keep_best_as == "after_update":
            with torch.no_grad():
                run.best.copy_(torch.where(run.improved.view(-1, 1, 1, 1), x.detach(), run.best))
        run.report()
    return run.finish()


def _lbfgs(run: _Run, optimizer: OptimizerSpec) -> bool:
    """torch's L-BFGS, one history row per loss evaluation (lbfgs_loop: see OptimizerSpec).
    Returns False when the loss stopped being finite."""
    if optimizer.lbfgs_loop == "single":
        opt = torch.optim.LBFGS(
            [run.x],
            lr=optimizer.lr,
            max_iter=run.steps,
            max_eval=run.steps,
            tolerance_grad=0.0,
            tolerance_change=0.0,
            history_size=100,
        )
    elif optimizer.lbfgs_loop == "while":
        opt = torch.optim.LBFGS([run.x], lr=optimizer.lr)  # torch's defaults, as the sources call it
    else:
        raise NstbenchError(f"unknown lbfgs_loop {optimizer.lbfgs_loop!r}; valid: single, while")
    status = {"ok": True}
    run.sync_every = 1  # torch's L-BFGS reads every loss on the host (line search, tolerances) anyway

    def closure():
        run.clip()  # the PyTorch tutorial clips inside the closure
        total = run.evaluate()
        if status["ok"] and not run.observe(total):
            status["ok"] = False
        run.report()
        # a non-finite loss is handed to L-BFGS as +inf so its line search backs off, and the run ends
        return total.sum() if status["ok"] else torch.tensor(float("inf"))

    opt.step(closure)
    # the sources' `while run[0] <= num_steps`: the evaluation counter is checked between calls only
    while optimizer.lbfgs_loop == "while" and status["ok"] and len(run.rows) <= run.steps:
        opt.step(closure)
    run.clip()
    return run.finish() and status["ok"]


def optimize_image(
    loss_fn: LossFn,
    init: torch.Tensor,
    steps: int,
    optimizer: OptimizerSpec,
    clamp: tuple[torch.Tensor, torch.Tensor] | None = None,
    keep_best: bool = False,
    keep_best_as: Literal["measured", "after_update"] = "measured",
    run: RunOptions = QUIET,
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
    run (RunOptions; its seed, compute, weights and device are not read here): run.progress_every:
    a progress line on stderr every N steps; 0: none; None: every PROGRESS_SECONDS (and after the
    first and the last step), prefixed with run.label. run.on_step(step, image, losses) is
    called with each step's measured image (finite loss; in the space, do not modify it) and the
    first image's losses; an exception it raises ends the run (the app cancels runs this way).
    Ctrl-C raises Interrupted with the last image with a finite loss.
    run.sync_every: Adam reads the device's "every loss finite" flag on the host every N steps (None:
    every step on the CPU, SYNC_EVERY_DEVICE elsewhere); the result, history and Diverged are the
    same for every N (the steps after a non-finite loss are masked and dropped). The losses stay on
    the device until the end, so with progress_every=0 and no on_step a run has no per-step sync.
    On CUDA the history's per-row `seconds` are then host (queueing) times; `seconds` of the
    result is measured after the final sync.
    """
    if steps < 1:
        raise NstbenchError(f"steps must be at least 1, got {steps}")
    if keep_best_as not in ("measured", "after_update"):
        raise NstbenchError(f"unknown keep_best_as {keep_best_as!r}; valid: measured, after_update")
    if keep_best and keep_best_as == "after_update" and optimizer.name == "lbfgs":
        raise NstbenchError("keep_best_as 'after_update' pairs a loss with one update; L-BFGS makes several per call")
    if optimizer.name == "lbfgs" and init.shape[0] != 1:
        raise NstbenchError("L-BFGS couples the images of a batch through its line search; use batch 1")
    if optimizer.name not in ("adam", "adam_tf", "lbfgs"):
        raise NstbenchError(f"unknown optimizer {optimizer.name!r}; valid: adam, adam_tf, lbfgs")
    if run.sync_every is None:
        run = replace(run, sync_every=1 if init.device.type == "cpu" else SYNC_EVERY_DEVICE)
    if run.sync_every < 1:
        raise NstbenchError(f"sync_every must be at least 1, got {run.sync_every}")
    state = _Run(loss_fn, init, steps, clamp, keep_best, keep_best_as, run)
    state.planned = optimizer.evaluations(steps)
    interrupted = False
    try:
        finite = (_lbfgs if optimizer.name == "lbfgs" else _adam)(state, optimizer)
    except KeyboardInterrupt:  # Ctrl-C: the last image with a finite loss is handed back (Interrupted)
        finite, interrupted = state.finish(), True  # finish: rows after an unread non-finite loss dropped
    return _result(state, finite, interrupted)


def _result(run: _Run, finite: bool, interrupted: bool) -> OptimizeResult:
    """The history as rows, the final losses, the kept image; Interrupted / Diverged raised with it."""
    B = run.x.shape[0]
    hist = torch.stack(run.rows).cpu() if run.rows else torch.zeros(0, 4, B, dtype=torch.float64)  # [steps, 4, B]
    history = [
        {"step": k + 1, "image": i, **{t: float(hist[k, j, i]) for j, t in enumerate(TERMS)}, "seconds": run.times[k]}
        for k in range(hist.shape[0])
        for i in range(B)
    ]
    result = OptimizeResult(
        image=run.last_good,
        last=run.last_good,
        history=history,
        seconds=time.perf_counter() - run.t0,
        diverged=not finite,
    )
    done = hist.shape[0]
    if interrupted:  # steps measured (curve rows); the kept image is the last one measured finite
        raise Interrupted(f"interrupted after {done} of {run.steps} steps; kept the image of step {done}", result)
    if not finite:
        raise Diverged(
            f"loss became non-finite at step {done}; kept the image of step {max(done - 1, 0)} "
            "(the last with a finite loss)",
            result,
        )
    last = run.x.detach()
    with torch.no_grad():
        final = {k: v.detach() for k, v in run.loss_fn(last).items()}
    result.last, result.image = last, last
    result.final = {k: v.cpu().tolist() for k, v in final.items()}
    if run.keep_best and run.keep_best_as == "after_update":
        result.image, result.best_step = run.best, run.best_step.tolist()
    elif run.keep_best:
        better = final["total"].to(torch.float64) < run.best_total
        result.image = torch.where(better.view(-1, 1, 1, 1), last, run.best)
        after = done + 1  # the final image, after the last evaluated step
        result.best_step = torch.where(better, torch.full_like(run.best_step, after), run.best_step).tolist()
    return result
