"""E4 (claim C6): white-noise versus content initialisation, NYU report 002 section 4.1.

The `nyu` preset (the PyTorch neural-style tutorial's settings: VGG19, content conv2_2, style
conv1_1..conv3_1 pre-ReLU, MSE losses, beta 1e6, L-BFGS, clamping to [0, 1]) started from the
content image, from seeded white noise (torch.randn, as the tutorial) and, as an extension, from
the style image; the same number of loss evaluations each. L-BFGS couples a batch through its
line search, so the inits run one after another. Content chelsea, style starry_night (the
report's images are not named).

Writes results/e4_init/: table.csv (one row per init: final content_loss, ssim_content, iteration,
...; claim C6), curves.csv (per iteration and init), loss_curves.png, grid.png, outputs/, manifest.json.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, replace

from nstbench.config.sources import NYU
from nstbench.harness.experiment import Experiment, cli, pyplot
from nstbench.harness.figures import loss_axis
from nstbench.harness.registry import Spec
from nstbench.methods.gatys import Diverged, RunOptions
from nstbench.methods.gatys_run import load_pair, override, run_preset

NAME = "e4_init"


@dataclass(frozen=True)
class Profile:
    size: int  # short side in px (the tutorial's transforms.Resize(imsize))
    steps: int  # the tutorial's num_steps (its while loop evaluates in calls of 20: 300 -> 320 evaluations)
    progress_every: int


PROFILES = {
    "smoke": Profile(size=48, steps=10, progress_every=5),  # plumbing only (72x48 px)
    "cpu": Profile(
        size=128, steps=300, progress_every=50
    ),  # the tutorial without a GPU: imsize 128 (192x128 px), 300 steps
    "paper": Profile(size=512, steps=300, progress_every=50),  # tutorial on a GPU: imsize 512, num_steps 300
}
SPEC = Spec(
    name=NAME,
    title="white-noise versus content initialisation, NYU report 002 section 4.1",
    sources=("nyu",),
    claims=("C6",),
    archs=("vgg19",),
    profiles=PROFILES,
    test_argv=("--steps", "3", "--size", "32"),  # chelsea 48x32
)
INITS = ("content", "noise", "style")  # content vs noise is the claim; style is the extension
CONTENT, STYLE = "chelsea", "starry_night"

TABLE_COLUMNS = [
    "init",
    "iteration",
    "content_loss",
    "style_loss",
    "total_loss",
    "ssim_content",
    "psnr_content",
    "lpips_content",
    "status",
    "seconds",
    "height",
    "width",
]
CURVE_COLUMNS = ["init", "iteration", "total", "content", "style", "seconds"]


def compute(exp: Experiment, base) -> None:
    content, style = load_pair(base, CONTENT, STYLE)
    content, style = content.to(exp.device), style.to(exp.device)
    vgg = exp.backbone(base.backbone)
    tag = exp.tag(base.backbone)
    h, w = content.shape[-2:]
    rows, curves, outputs = [], [], {}
    for k, init in enumerate(INITS, start=1):
        preset = replace(base, init=init)
        print(
            f"[{NAME}] run {k}/{len(INITS)}: init={init}, {w}x{h} px, num_steps {preset.steps} (L-BFGS calls of 20 evaluations)",
            file=sys.stderr,
            flush=True,
        )
        status = "ok"
        try:
            result = run_preset(
                preset, content, style, vgg, run=RunOptions(label=f"{NAME}:{init}", **exp.run_options())
            )
        except Diverged as e:  # keep the curve up to the failure; the final row gets NaN losses
            result, status = e.result, "diverged"
        curves += [
            {
                **tag,
                "init": init,
                "iteration": r["step"],
                **{t: r[t] for t in ("total", "content", "style")},
                "seconds": r["seconds"],
            }
            for r in result.history
        ]
        out = result.image.clamp(0, 1)  # unit space, clamped by the preset
        outputs[init] = out
        exp.image(out, f"outputs/init_{init}.png")
        final = result.final or {}
        nan = [math.nan]
        rows.append(
            {
                **tag,
                "init": init,
                "iteration": len(result.history),
                "content_loss": final.get("content", nan)[0],
                "style_loss": final.get("style", nan)[0],
                "total_loss": final.get("total", nan)[0],
                **exp.content_quality(out, content)[0],
                "status": status,
                "seconds": result.seconds,
                "height": h,
                "width": w,
            }
        )
    exp.write_csv("table.csv", rows, TABLE_COLUMNS)
    exp.write_csv("curves.csv", curves, CURVE_COLUMNS)
    figures(exp, content, style, outputs, rows, curves)
    exp.claim("C6", "table.csv")
    exp.note(
        f"profile {exp.profile_label}: {w}x{h} px, num_steps {base.steps}: {rows[0]['iteration']} L-BFGS evaluations "
        "per init, the tutorial's `while run[0] <= num_steps: optimizer.step(closure)` with max_iter 20 "
        "(tutorial: short side 512 on a GPU, 128 on a CPU; num_steps 300)"
    )
    exp.note(
        "iteration counts loss evaluations (L-BFGS closure calls), as the tutorial's run[0] counter; "
        "losses are unweighted (total = alpha content + beta style); final losses are those of the returned image"
    )
    exp.note("noise init: seeded torch.randn in unit space, clipped to [0, 1] by the first clamp (as the tutorial)")


def figures(exp, content, style, outputs, rows, curves) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, term in zip(axes, ("content", "style", "total")):
        for init in INITS:
            pts = [(c["iteration"], c[term]) for c in curves if c["init"] == init]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], lw=1.2, label=f"init={init}")
        # the content loss starts at exactly 0 from the content: the log axis stops at the data's smallest
        # meaningful value instead of at an arbitrary 1e-30
        loss_axis(ax, [c[term] for c in curves])
        ax.set_xlabel("iteration (loss evaluation)")
        ax.set_title(f"{term} loss" + (" (unweighted)" if term != "total" else ""), fontsize=9)
        ax.legend(fontsize=7)
    exp.figure(fig, "loss_curves.png")

    exp.panels(
        "grid.png",
        "initialisation",
        [("content", content), ("style", style)]
        + [(f"init={r['init']}\nSSIM {r['ssim_content']:.2f}", outputs[r["init"]]) for r in rows],
    )


def _main(argv: list[str] | None) -> None:
    exp = Experiment(SPEC, __file__, __doc__, argv)
    base = override(NYU, dict(steps=exp.profile.steps, size=exp.profile.size))
    exp.settings.update(preset=base, inits=INITS, content=CONTENT, style=STYLE)
    exp.run(lambda e: compute(e, base))


def main(argv: list[str] | None = None) -> int:
    return cli(_main, argv, NAME)


if __name__ == "__main__":
    sys.exit(main())
