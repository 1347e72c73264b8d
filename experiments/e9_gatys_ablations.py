"""E9 (claims C12, C13): Gatys et al.'s ablations (CVPR 2016 Fig. 3 and section 2; Yonsei report 003 section 1.3).

Gatys et al.'s loss (VGG19 with average pooling, content conv4_2 = relu4_2 with 1/2 sum (F - P)^2,
style conv1_1 .. conv5_1 = relu1_1 .. relu5_1 with w_l = 1/5 and E_l = 1/(4 N^2 M^2) sum (G - A)^2,
from white noise) in three ablations, content tubingen, style starry_night (Gatys Fig. 2's pair):

  ratio      alpha/beta in {1e-4, 1e-3, 1e-2, 1e-1} (Fig. 3's rows) as ONE batch with Adam: Adam is
             elementwise and each image's gradient comes from its own loss, so the batch equals four
             separate runs; L-BFGS couples a batch through its line search and would need four runs.
             Claim C12: content similarity (SSIM) rises with the ratio and the style distance
             (measured in VGG16, a network no run optimised) falls as it shrinks.
  pooling    average versus max pooling at alpha/beta 1e-3, L-BFGS (the paper's optimiser), same
             settings: the loss reached and the style distance.
  optimiser  Adam versus L-BFGS on the same problem (average pooling, 1e-3), the same number of loss
             evaluations: loss against evaluations and against seconds. Claim C13 (Gatys: "L-BFGS,
             which we found to work best for image synthesis").

Every run minimises its loss divided by the loss of the noise image (a constant per image: the
same minimiser, and the same scale for both optimisers); on random weights the raw losses are so
small that float32 pixels and Adam's epsilon would swallow the updates.

Writes results/e9_gatys_ablations/: ratio.csv (claim C12), pooling.csv, optimizers.csv (per-run
summary), curves.csv (loss per evaluation and seconds of every run; claim C13 on the optimiser
rows), ratio_grid.png, pooling_grid.png, optimizers.png, outputs/, manifest.json.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from typing import Callable

from nstbench.config.sources import NYU
from nstbench.config.specs import GATYS_STYLE_LAYERS, GatysPreset, LossSpec, OptimizerSpec
from nstbench.harness.experiment import Experiment, cli, pyplot
from nstbench.harness.registry import Spec
from nstbench.methods import metrics
from nstbench.methods.gatys import Mix, RunOptions
from nstbench.methods.gatys_run import initial_loss, load_pair, override, run_preset

NAME = "e9_gatys_ablations"


@dataclass(frozen=True)
class Profile:
    size: int  # short side in px (Gatys' code: transforms.Scale(512))
    steps: int  # loss evaluations per run (Adam steps; L-BFGS closure calls)
    progress_every: int


PROFILES = {
    "smoke": Profile(size=40, steps=6, progress_every=0),  # plumbing only (60x40 px)
    "cpu": Profile(size=64, steps=200, progress_every=50),  # 96x64 px, 200 evaluations per run
    # Gatys' official code: Scale(512), `while n_iter <= 500: optimizer.step(closure)`
    "paper": Profile(size=512, steps=500, progress_every=100),
}
JUDGE, JUDGE_LAYERS = "vgg16", ("relu1_2", "relu2_2", "relu3_3", "relu4_3")  # as E5: a net no run optimised
SPEC = Spec(
    name=NAME,
    title="Gatys et al.'s ablations: alpha/beta ratio, max vs average pooling, Adam vs L-BFGS",
    sources=("yonsei", "gatys2016"),
    claims=("C12", "C13"),
    archs=("vgg19", JUDGE),
    profiles=PROFILES,
    test_argv=("--steps", "3", "--size", "32"),  # tubingen 42x32
)
CONTENT, STYLE = "tubingen", "starry_night"  # Gatys Fig. 2/3: Neckarfront with The Starry Night

GATYS_LOSS = LossSpec(
    content_layers=(("relu4_2", 1.0),),  # Gatys 2016 sec. 2: content on 'conv4_2' (Caffe: rectified in place)
    style_layers=tuple((n, 0.2) for n in GATYS_STYLE_LAYERS),  # 'conv1_1' .. 'conv5_1', w_l = 1/5
    content_mode="half_sum",  # eq. (1): 1/2 sum (F - P)^2
    gram_norm="none",  # eq. (3): G = F F^T
    style_mode="gatys",  # eq. (4): E_l = 1/(4 N^2 M^2) sum (G - A)^2
    alpha=1e-3,  # Fig. 2: alpha/beta = 1e-3 (beta 1)
    beta=1.0,
)
# NYU preset's machinery (torch L-BFGS lr 1, [0, 1] RGB pixels clipped as the PyTorch tutorial) from noise
BASE = replace(
    NYU,
    name="e9-gatys",
    source="Gatys et al. CVPR 2016 sec. 2-3",
    loss=GATYS_LOSS,
    init="noise",  # sec. 2: "we start from a white noise image"
    pooling="avg",  # sec. 2: average pooling "improves the gradient flow"
    # one L-BFGS call of exactly `steps` evaluations (tolerances 0), not the tutorial's while
    # loop the NYU preset runs: Adam and L-BFGS are compared at equal evaluation budgets
    optimizer=OptimizerSpec("lbfgs", lr=1.0, lbfgs_loop="single"),
)
ADAM = OptimizerSpec("adam", lr=0.02)  # the reports' optimiser; lr ours: 1/50 of the pixel range per step
LBFGS = BASE.optimizer  # torch.optim.LBFGS, lr 1 (Gatys' official code: optim.LBFGS defaults)
RATIOS = (1e-4, 1e-3, 1e-2, 1e-1)  # Fig. 3's alpha/beta rows
POOLINGS = ("avg", "max")

RATIO_COLUMNS = [
    "ratio",
    "alpha",
    "beta",
    "optimizer",
    "ssim_content",
    "psnr_content",
    "lpips_content",
    "style_distance",
    "content_share_at_init",
    "content_loss",
    "style_loss",
    "objective",
    "evaluations",
    "height",
    "width",
]
RUN_COLUMNS = [
    "pooling",
    "optimizer",
    "ratio",
    "objective",
    "paper_total",
    "content_loss",
    "style_loss",
    "style_distance",
    "ssim_content",
    "psnr_content",
    "lpips_content",
    "evaluations",
    "seconds",
    "seconds_per_evaluation",
    "height",
    "width",
]
CURVE_COLUMNS = ["study", "pooling", "optimizer", "ratio", "evaluation", "seconds", "total_loss", "content", "style"]


@dataclass
class State:
    """What the studies of one run share: the settings, the judge, and what they produced."""

    base: GatysPreset  # the settings of this profile
    style_distance: Callable | None = None  # x -> [B], metrics.style_distance_fn in the judge
    outputs: dict = field(default_factory=dict)  # figure panels
    curves: list = field(default_factory=list)  # rows of curves.csv


def normaliser(preset, content, style, vgg, seed: int, ratio: float) -> tuple[float, float]:
    """(1 / (alpha content + beta style), the content term's share of it) for the noise image at
    alpha/beta = ratio, beta = 1."""
    t = initial_loss(preset, content, style, vgg, seed=seed)
    total = ratio * t["content"] + t["style"]
    return 1.0 / total, ratio * t["content"] / total


def ratio_sweep(exp, st, content, style, tag) -> list[dict]:
    vgg = exp.backbone("vgg19", "avg")
    preset = replace(st.base, optimizer=ADAM)
    k, share = zip(*(normaliser(preset, content, style, vgg, exp.seed, r) for r in RATIOS))
    alpha, beta = [r * ki for r, ki in zip(RATIOS, k)], list(k)
    print(f"[{NAME}] ratio sweep: {len(RATIOS)} ratios as one Adam batch, {preset.steps} steps", file=sys.stderr)
    result = run_preset(
        preset,
        content,
        style,
        vgg,
        batch=len(RATIOS),
        run=RunOptions(label=f"{NAME}:ratio", **exp.run_options()),
        mix=Mix(alpha=alpha, beta=beta),
    )
    out = result.image.clamp(0, 1)
    st.outputs["ratio"] = out
    quality, sd = exp.content_quality(out, content), st.style_distance(out).tolist()
    rows = []
    for i, r in enumerate(RATIOS):
        exp.image(out[i : i + 1], f"outputs/ratio_{r:g}.png")
        rows.append(
            {
                **tag,
                "ratio": r,
                "alpha": r,
                "beta": 1.0,
                "optimizer": "adam",
                **quality[i],
                "style_distance": sd[i],
                "content_share_at_init": share[i],
                "content_loss": result.final["content"][i],
                "style_loss": result.final["style"][i],
                "objective": result.final["total"][i],
                "evaluations": preset.steps,
                "height": out.shape[-2],
                "width": out.shape[-1],
            }
        )
    st.curves += [
        {
            **tag,
            "study": "ratio",
            "pooling": "avg",
            "optimizer": "adam",
            "ratio": RATIOS[h["image"]],
            "evaluation": h["step"],
            "seconds": h["seconds"],
            "total_loss": h["total"],
            "content": h["content"],
            "style": h["style"],
        }
        for h in result.history
    ]
    return rows


def single_run(exp, st, content, style, tag, study: str, pooling: str, optimizer: OptimizerSpec) -> dict:
    """One run at alpha/beta 1e-3 (B = 1): its summary row; its curve goes to st.curves."""
    vgg = exp.backbone("vgg19", pooling)
    preset = replace(st.base, pooling=pooling, optimizer=optimizer)
    k, _ = normaliser(preset, content, style, vgg, exp.seed, GATYS_LOSS.alpha)
    print(f"[{NAME}] {study}: {pooling} pooling, {optimizer.name}, {preset.steps} evaluations", file=sys.stderr)
    result = run_preset(
        preset,
        content,
        style,
        vgg,
        run=RunOptions(label=f"{NAME}:{study}:{pooling}:{optimizer.name}", **exp.run_options()),
        mix=Mix(alpha=GATYS_LOSS.alpha * k, beta=k),
    )
    out = result.image.clamp(0, 1)
    st.outputs[(study, pooling, optimizer.name)] = out
    exp.image(out, f"outputs/{study}_{pooling}_{optimizer.name}.png")
    c, s = result.final["content"][0], result.final["style"][0]
    st.curves += [
        {
            **tag,
            "study": study,
            "pooling": pooling,
            "optimizer": optimizer.name,
            "ratio": GATYS_LOSS.alpha,
            "evaluation": h["step"],
            "seconds": h["seconds"],
            "total_loss": h["total"],
            "content": h["content"],
            "style": h["style"],
        }
        for h in result.history
    ]
    n = len(result.history)
    return {
        **tag,
        "pooling": pooling,
        "optimizer": optimizer.name,
        "ratio": GATYS_LOSS.alpha,
        "objective": result.final["total"][0],
        "paper_total": GATYS_LOSS.alpha * c + GATYS_LOSS.beta * s,
        "content_loss": c,
        "style_loss": s,
        "style_distance": float(st.style_distance(out)[0]),
        **exp.content_quality(out, content)[0],
        "evaluations": n,
        "seconds": result.seconds,
        "seconds_per_evaluation": result.seconds / n,
        "height": out.shape[-2],
        "width": out.shape[-1],
    }


def compute(exp: Experiment, st: State) -> None:
    content, style = load_pair(st.base, CONTENT, STYLE)
    content, style = content.to(exp.device), style.to(exp.device)
    st.style_distance = metrics.style_distance_fn(style, exp.backbone(JUDGE), JUDGE_LAYERS)
    tag = exp.tag("vgg19")
    exp.write_csv("ratio.csv", ratio_sweep(exp, st, content, style, tag), RATIO_COLUMNS)
    pooling = [single_run(exp, st, content, style, tag, "pooling", p, LBFGS) for p in POOLINGS]
    exp.write_csv("pooling.csv", pooling, RUN_COLUMNS)
    # the L-BFGS run of the pooling study at avg pooling is the same problem: the optimiser study adds Adam
    st.outputs[("optimizer", "avg", "lbfgs")] = st.outputs[("pooling", "avg", "lbfgs")]
    lbfgs_curve = [dict(c, study="optimizer") for c in st.curves if c["study"] == "pooling" and c["pooling"] == "avg"]
    adam = single_run(exp, st, content, style, tag, "optimizer", "avg", ADAM)
    st.curves += lbfgs_curve
    exp.write_csv("optimizers.csv", [dict(pooling[0]), adam], RUN_COLUMNS)
    exp.write_csv("curves.csv", st.curves, CURVE_COLUMNS)
    figures(exp, st, content, style)
    exp.claim("C12", "ratio.csv")
    exp.claim("C13", "curves.csv", "study == 'optimizer'")
    notes(exp, st, content.shape[-1], content.shape[-2])


def notes(exp: Experiment, st: State, w: int, h: int) -> None:
    exp.note(
        f"profile {exp.profile_label}: {w}x{h} px, {st.base.steps} loss evaluations per run (paper profile: "
        "short side 512, 500 evaluations as Gatys' official code's loop)"
    )
    exp.note(
        "ratio sweep: one Adam batch (lr 0.02; Adam treats the images independently, L-BFGS would couple "
        "them); pooling and optimiser studies: batch 1. objective = the optimised loss (alpha c + beta s "
        "divided by its value at the noise image); content_share_at_init = alpha c / (alpha c + beta s) at the "
        "noise image (which term the ratio lets dominate); paper_total = 1e-3 content + style, unnormalised; "
        "content_loss and style_loss unweighted. The avg-pooling L-BFGS run serves both the pooling and the "
        "optimiser study (one run, the same problem)"
    )
    exp.note(
        f"style_distance: relative Gram distance in {JUDGE} {'/'.join(JUDGE_LAYERS)} (metrics.style_distance), "
        "a network no run optimised, so losses of max- and average-pooling nets become comparable"
    )
    if exp.weights_kind("vgg19") != "imagenet":
        exp.note(
            "random weights: the ratio trades a random network's content features against its Gram "
            "statistics, and the pooling and optimiser comparisons are of these random-feature objectives; "
            "Adam vs L-BFGS speed per evaluation does not depend on the weights, the loss they reach does"
        )


def figures(exp: Experiment, st: State, content, style) -> None:
    items = [("content", content), ("style", style)]
    exp.panels(
        "ratio_grid.png",
        "alpha/beta sweep (Adam, one batch)",
        items + [(f"alpha/beta={r:g}", st.outputs["ratio"][i : i + 1]) for i, r in enumerate(RATIOS)],
    )
    exp.panels(
        "pooling_grid.png",
        "max vs average pooling (L-BFGS, alpha/beta 1e-3)",
        items
        + [(f"{p} pooling", st.outputs[("pooling", p, "lbfgs")]) for p in POOLINGS]
        + [("avg pooling, Adam", st.outputs[("optimizer", "avg", "adam")])],
    )
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for opt in ("lbfgs", "adam"):
        pts = [c for c in st.curves if c["study"] == "optimizer" and c["optimizer"] == opt]
        for ax, x in zip(axes, ("evaluation", "seconds")):
            ax.semilogy([c[x] for c in pts], [max(c["total_loss"], 1e-30) for c in pts], lw=1.2, label=opt)
    for ax, x in zip(axes, ("loss evaluations", f"seconds ({exp.device.type})")):
        ax.set_xlabel(x)
        ax.set_ylabel("objective (loss / loss of the noise image)")
        ax.legend(fontsize=7)
    exp.figure(fig, "optimizers.png")


def _main(argv: list[str] | None) -> None:
    exp = Experiment(SPEC, __file__, __doc__, argv)
    st = State(base=override(BASE, dict(steps=exp.profile.steps, size=exp.profile.size)))
    exp.settings.update(
        preset=st.base,
        ratios=RATIOS,
        poolings=POOLINGS,
        adam=ADAM,
        lbfgs=LBFGS,
        judge=JUDGE,
        judge_layers=JUDGE_LAYERS,
        content=CONTENT,
        style=STYLE,
    )
    exp.run(lambda e: compute(e, st))


def main(argv: list[str] | None = None) -> int:
    return cli(_main, argv, NAME)


if __name__ == "__main__":
    sys.exit(main())
