"""E8 (claim C11): content and style reconstruction per layer (Gatys et al. Fig. 1; Johnson et al. Fig. 3;
Yonsei report 003 Fig. 3).

From seeded white noise, L-BFGS finds an image whose features at one layer match those of the
content image: VGG16 relu1_2, relu2_2, relu3_3, relu4_3 with Johnson et al.'s feature
reconstruction loss (1/CHW) ||phi_j(y) - phi_j(x)||^2, and VGG19 conv1_1 .. conv5_1 (Caffe's in-place
ReLU makes these the rectified maps relu1_1 .. relu5_1) with Gatys et al.'s 1/2 sum (F - P)^2 on the
average-pooling VGG19. Style reconstructions match the Gram matrices of the nested style sets
{conv1_1}, {conv1_1, conv2_1}, ..., {conv1_1 .. conv5_1} of the style image (Gatys' E_l = 1/(4 N^2 M^2)
sum (G - A)^2, w_l = 1/|set|). Each reconstruction is its own L-BFGS run (L-BFGS couples a batch
through its line search, so batch 1). Content tubingen (Gatys Fig. 1's Neckarfront), style
starry_night.

Writes results/e8_reconstruction/: table.csv (one row per reconstruction: kind, net, layers, depth,
ssim_content, psnr_content, lpips_content, feature_loss, hf_fraction; claim C11 on the content rows),
curves.csv (loss per evaluation), content_grid.png, style_grid.png, outputs/, manifest.json.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace

from nstbench.config.sources import NYU
from nstbench.config.specs import LossSpec, OptimizerSpec
from nstbench.harness.experiment import Experiment, cli, pyplot
from nstbench.harness.registry import Spec
from nstbench.methods import metrics
from nstbench.methods.gatys import Diverged, Mix, RunOptions
from nstbench.methods.gatys_run import initial_loss, load_pair, override, run_preset
from nstbench.nets.images import to_pil

NAME = "e8_reconstruction"


@dataclass(frozen=True)
class Profile:
    size: int  # short side in px (Gatys' code: transforms.Scale(512))
    steps: int  # L-BFGS loss evaluations per reconstruction
    progress_every: int


PROFILES = {
    "smoke": Profile(size=40, steps=8, progress_every=0),  # plumbing only (60x40 px)
    "cpu": Profile(size=64, steps=150, progress_every=50),  # 14 reconstructions at 96x64 px, 150 evaluations
    # Gatys' official code: Scale(512), `while n_iter <= 500: optimizer.step(closure)`
    "paper": Profile(size=512, steps=500, progress_every=100),
}
SPEC = Spec(
    name=NAME,
    title="content and style reconstruction per layer, Gatys Fig. 1, Johnson Fig. 3, Yonsei report 003 Fig. 3",
    sources=("yonsei", "gatys2016", "johnson2016"),
    claims=("C11",),
    archs=("vgg16", "vgg19"),
    profiles=PROFILES,
    test_argv=("--steps", "3", "--size", "32"),  # tubingen 42x32
)
CONTENT, STYLE = "tubingen", "starry_night"  # Gatys Fig. 1: Neckarfront, Tuebingen; The Starry Night

# The optimisation: the NYU preset's L-BFGS machinery (torch.optim.LBFGS, lr 1, pixels in [0, 1]
# clipped in the closure) started from white noise; the losses below replace its loss.
BASE = replace(
    NYU,
    name="e8-reconstruction",
    init="noise",  # Gatys 2016 sec. 2: "from a white noise image"
    # one L-BFGS call of exactly `steps` evaluations (tolerances 0), not the tutorial's while
    # loop the NYU preset runs: every reconstruction gets the same evaluation budget
    optimizer=OptimizerSpec("lbfgs", lr=1.0, lbfgs_loop="single"),
    source="Gatys et al. CVPR 2016 Fig. 1 / arXiv 1508.06576 Fig. 1; Johnson et al. ECCV 2016 Fig. 3",
)
# Gatys Fig. 1 content layers (arXiv 1508.06576 Fig. 1: 'conv1_1' .. 'conv5_1'), post-ReLU in Caffe
GATYS_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
JOHNSON_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")  # Johnson Fig. 3: VGG-16 relu1_2 .. relu4_3
GATYS_POOLING = "avg"  # Gatys 2016 sec. 2: average pooling "improves the gradient flow" for synthesis
JOHNSON_POOLING = "max"  # Johnson: the VGG-16 as trained
HF_RADIUS = 0.25  # cycles/pixel, metrics.high_frequency_fraction's default (as E1)

TABLE_COLUMNS = [
    "kind",
    "net",
    "pooling",
    "layers",
    "depth",
    "ssim_content",
    "psnr_content",
    "lpips_content",
    "feature_loss",
    "hf_fraction",
    "evaluations",
    "status",
    "seconds",
    "height",
    "width",
]
CURVE_COLUMNS = ["kind", "net", "layers", "evaluation", "loss", "seconds"]


def content_spec(net: str, layer: str) -> LossSpec:
    """Content-only loss at `layer`. make_gatys_loss needs a style layer: the same layer at beta 0
    (its Gram is computed on features already extracted, and weighted out of the total)."""
    if net == "vgg16":  # Johnson eq. (2): (1 / C_j H_j W_j) ||phi_j(y) - phi_j(x)||_2^2
        return LossSpec(
            ((layer, 1.0),),
            ((layer, 1.0),),
            content_mode="mean",
            gram_norm="chw",
            style_mode="frobenius",
            alpha=1.0,
            beta=0.0,
        )
    # Gatys eq. (1): L_content = 1/2 sum (F - P)^2
    return LossSpec(
        ((layer, 1.0),),
        ((layer, 1.0),),
        content_mode="half_sum",
        gram_norm="none",
        style_mode="gatys",
        alpha=1.0,
        beta=0.0,
    )


def style_spec(layers: tuple[str, ...]) -> LossSpec:
    """Style-only loss on the nested set (Gatys eq. (4)-(5), w_l = 1/|set|); the content term sits on
    the deepest style layer at alpha 0 (make_gatys_loss needs one)."""
    return LossSpec(
        ((layers[-1], 1.0),),
        tuple((n, 1.0 / len(layers)) for n in layers),
        content_mode="half_sum",
        gram_norm="none",
        style_mode="gatys",
        alpha=0.0,
        beta=1.0,
    )


def jobs() -> list[tuple[str, str, str, tuple[str, ...], int, LossSpec]]:
    """(kind, net, pooling, layers, depth, loss spec) per reconstruction; depth is the VGG block."""
    out = [
        ("content", "vgg19", GATYS_POOLING, (n,), d, content_spec("vgg19", n))
        for d, n in enumerate(GATYS_LAYERS, start=1)
    ]
    out += [
        ("content", "vgg16", JOHNSON_POOLING, (n,), d, content_spec("vgg16", n))
        for d, n in enumerate(JOHNSON_LAYERS, start=1)
    ]
    out += [
        ("style", "vgg19", GATYS_POOLING, GATYS_LAYERS[:d], d, style_spec(GATYS_LAYERS[:d]))
        for d in range(1, len(GATYS_LAYERS) + 1)
    ]
    return out


def compute(exp: Experiment, base) -> None:
    content, style = load_pair(base, CONTENT, STYLE)
    content, style = content.to(exp.device), style.to(exp.device)
    h, w = content.shape[-2:]
    rows, curves, images = [], [], {}
    todo = jobs()
    for k, (kind, net, pooling, layers, depth, spec) in enumerate(todo, start=1):
        label = "+".join(layers)
        print(
            f"[{NAME}] {k}/{len(todo)}: {kind} from {net} {label}, {w}x{h} px, {base.steps} L-BFGS evaluations",
            file=sys.stderr,
            flush=True,
        )
        preset = replace(base, backbone=net, pooling=pooling, loss=spec)
        status, vgg = "ok", exp.backbone(net, pooling)
        # the matched loss divided by its value at the noise image (a constant: same minimiser). L-BFGS
        # is scale-free except in float32: a style loss of ~1e-4 (random weights) has pixel gradients
        # below float32's resolution of a pixel value, and the run never moves from the noise
        weight = 1.0 / initial_loss(preset, content, style, vgg, seed=exp.seed)[kind]
        scale = Mix(alpha=weight) if kind == "content" else Mix(beta=weight)
        try:
            result = run_preset(
                preset,
                content,
                style,
                vgg,
                run=RunOptions(label=f"{NAME}:{kind}:{net}:{label}", **exp.run_options()),
                mix=scale,
            )
            loss = result.final[kind][0]
        except Diverged as e:
            result, status, loss = e.result, "diverged", float("nan")
        out = result.image.clamp(0, 1)
        images[(kind, net, depth)] = out
        exp.image(out, f"outputs/{kind}_{net}_{layers[-1]}.png")
        tag = exp.tag(net)
        curves += [
            {
                **tag,
                "kind": kind,
                "net": net,
                "layers": label,
                "evaluation": r["step"],
                "loss": r[kind],
                "seconds": r["seconds"],
            }
            for r in result.history
        ]
        rows.append(
            {
                **tag,
                "kind": kind,
                "net": net,
                "pooling": pooling,
                "layers": label,
                "depth": depth,
                **exp.content_quality(out, content)[0],
                "feature_loss": loss,
                "hf_fraction": float(metrics.high_frequency_fraction(out, HF_RADIUS)[0]),
                "evaluations": len(result.history),
                "status": status,
                "seconds": result.seconds,
                "height": h,
                "width": w,
            }
        )
    exp.write_csv("table.csv", rows, TABLE_COLUMNS)
    exp.write_csv("curves.csv", curves, CURVE_COLUMNS)
    exp.record("content_hf_fraction", float(metrics.high_frequency_fraction(content, HF_RADIUS)[0]))
    figures(exp, content, style, rows, images)
    exp.claim("C11", "table.csv", "kind == 'content'")
    notes(exp, w, h, base.steps)


def notes(exp: Experiment, w: int, h: int, steps: int) -> None:
    exp.note(
        f"profile {exp.profile_label}: {w}x{h} px, {steps} L-BFGS evaluations per reconstruction "
        "(paper profile: short side 512 and 500 evaluations, as Gatys' official code's loop)"
    )
    exp.note(
        "optimisation: torch.optim.LBFGS (lr 1, history 100) on [0, 1] RGB pixels clipped in the closure, "
        "from seeded white noise (torch.randn, clipped by the first clamp); Gatys optimises unbounded pixels, "
        "the clip keeps the reconstruction a valid image for SSIM/PSNR. The optimised objective is the "
        "matched loss divided by its value at the noise image (same minimiser; without it float32 pixels "
        "cannot register the tiny gradients of a random-weight style loss and L-BFGS never leaves the noise)"
    )
    exp.note(
        "feature_loss: the matched loss (content: Johnson's mean squared error for VGG16, Gatys' 1/2 sum of "
        "squares for VGG19; style: Gatys' sum_l w_l E_l) of the returned image, unweighted; ssim/psnr/lpips "
        "and hf_fraction are of the clipped reconstruction against the content image (style rows too: a "
        "style reconstruction should NOT resemble the content)"
    )
    if exp.weights_kind("vgg19") != "imagenet":
        exp.note(
            "random weights: a random VGG's deep features still pool away position, so fidelity can fall with "
            "depth without any learned features; what the ImageNet VGG adds (shape kept, colour and texture "
            "lost, Gatys' Fig. 1) is not tested here, and style reconstructions of random features are not "
            "textures of the painting"
        )


def figures(exp: Experiment, content, style, rows, images) -> None:
    plt = pyplot()
    for kind, name, first in (("content", "content_grid.png", content), ("style", "style_grid.png", style)):
        nets = [n for n in ("vgg19", "vgg16") if any(r["kind"] == kind and r["net"] == n for r in rows)]
        cols = 1 + max(sum(1 for r in rows if r["kind"] == kind and r["net"] == n) for n in nets)
        fig, axes = plt.subplots(len(nets), cols, figsize=(2.2 * cols, 2.0 * len(nets)), squeeze=False)
        for i, net in enumerate(nets):
            axes[i][0].imshow(to_pil(first.detach().cpu()))
            axes[i][0].set_title(f"{kind} image", fontsize=7)
            sel = [r for r in rows if r["kind"] == kind and r["net"] == net]
            for j in range(1, cols):
                ax = axes[i][j]
                ax.axis("off")
                if j <= len(sel):
                    r = sel[j - 1]
                    ax.imshow(to_pil(images[(kind, net, r["depth"])].cpu()))
                    label = r["layers"] if kind == "content" else f"relu1_1..{r['layers'].split('+')[-1]}"
                    score = (
                        f"SSIM {r['ssim_content']:.2f}" if kind == "content" else f"style loss {r['feature_loss']:.2g}"
                    )
                    ax.set_title(f"{net} {label}\n{score}", fontsize=7)
            axes[i][0].axis("off")
        fig.suptitle(f"{kind} reconstructions from white noise (L-BFGS)", fontsize=9)
        exp.figure(fig, name)


def _main(argv: list[str] | None) -> None:
    exp = Experiment(SPEC, __file__, __doc__, argv)
    base = override(BASE, dict(steps=exp.profile.steps, size=exp.profile.size))
    exp.settings.update(preset=base, jobs=jobs(), content=CONTENT, style=STYLE, hf_radius=HF_RADIUS)
    exp.run(lambda e: compute(e, base))


def main(argv: list[str] | None = None) -> int:
    return cli(_main, argv, NAME)


if __name__ == "__main__":
    sys.exit(main())
