"""E7: the Adam loss trajectory of the UPES appendix code, report 004 (Appendix I, Fig. 6.1).

The `upes` preset exactly: torchvision VGG19 features, ImageNet normalisation, the appendix's
load_image (max_size 400: Resize(int) scales the SHORT side), style resized to the content's shape,
content conv4_2, style conv1_1 1.0, conv2_1 0.75, conv3_1..conv5_1 0.2 (post-ReLU, as the in-place
ReLUs make them), alpha 1, beta 1e6, Adam lr 0.003, 2000 steps from the content, the total loss
printed every 400 steps. Images octopus + hockney (the appendix's). With ImageNet weights the
original printed 3145412.75 at step 1600 and 2023719.125 at step 2000 (source columns).

Writes results/e7_upes/: trajectory.csv (every step), printed.csv (the steps the code prints, with
the source's numbers beside ours), trajectory.png, output.png, manifest.json.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, replace

from nstbench.config.sources import UPES
from nstbench.harness.experiment import Experiment, cli, pyplot
from nstbench.harness.registry import Spec
from nstbench.methods.gatys import RunOptions
from nstbench.methods.gatys_run import load_pair, override, run_preset
from nstbench.nets.images import space_to_unit

NAME = "e7_upes"


@dataclass(frozen=True)
class Profile:
    size: int  # the appendix's max_size (then the short side becomes min(size, long side))
    steps: int  # Adam steps
    print_every: int  # the code's show_every: rows of printed.csv
    progress_every: int


PROFILES = {
    "smoke": Profile(size=48, steps=20, print_every=5, progress_every=10),  # plumbing only
    # all 2000 steps and the source's print schedule, at a short side of 96 px (142x96) instead of
    # 400: the trajectory is what E7 is about, so the steps are kept and the size is cut
    "cpu": Profile(size=96, steps=2000, print_every=400, progress_every=200),
    "paper": Profile(size=400, steps=2000, print_every=400, progress_every=400),  # appendix: 400, 2000, 400
}
SPEC = Spec(
    name=NAME,
    title="the Adam loss trajectory of the UPES appendix code, report 004 (Appendix I, Fig. 6.1)",
    sources=("upes",),
    claims=(),
    archs=("vgg19",),
    profiles=PROFILES,
    test_argv=("--steps", "10", "--size", "32"),  # octopus 47x32; smoke prints every 5 steps
)
CONTENT, STYLE = "octopus", "hockney"  # appendix: images/octopus_color.jpg, images/hockney.jpg
SOURCE_PRINTED = {1600: 3145412.75, 2000: 2023719.125}  # Fig. 6.1 output, ImageNet weights, max_size 400

TRAJECTORY_COLUMNS = ["step", "total_loss", "content_loss", "style_loss", "content_term", "style_term", "seconds"]
PRINTED_COLUMNS = ["step", "total_loss", "source_total_loss", "source_weights", "ratio_to_source", "height", "width"]


def compute(exp: Experiment, preset) -> None:
    content, style = load_pair(preset, CONTENT, STYLE)
    content, style = content.to(exp.device), style.to(exp.device)
    vgg = exp.backbone(preset.backbone)
    tag = exp.tag(preset.backbone)
    h, w = content.shape[-2:]
    print(f"[{NAME}] {w}x{h} px, {preset.steps} Adam steps", file=sys.stderr, flush=True)
    result = run_preset(preset, content, style, vgg, run=RunOptions(label=NAME, **exp.run_options()))
    a, b = preset.loss.alpha, preset.loss.beta
    traj = [
        {
            **tag,
            "step": r["step"],
            "total_loss": r["total"],
            "content_loss": r["content"],
            "style_loss": r["style"],
            "content_term": a * r["content"],
            "style_term": b * r["style"],
            "seconds": r["seconds"],
        }
        for r in result.history
    ]
    exp.write_csv("trajectory.csv", traj, TRAJECTORY_COLUMNS)
    # the code prints at ii % show_every == 0 the total computed in iteration ii, before its update:
    # history row `step` holds exactly that
    printed = []
    for r in traj:
        if r["step"] % exp.profile.print_every == 0:
            src = SOURCE_PRINTED.get(r["step"], math.nan)
            printed.append(
                {
                    **tag,
                    "step": r["step"],
                    "total_loss": r["total_loss"],
                    "source_total_loss": src,
                    "source_weights": "imagenet",
                    "ratio_to_source": r["total_loss"] / src,
                    "height": h,
                    "width": w,
                }
            )
    exp.write_csv("printed.csv", printed, PRINTED_COLUMNS)
    exp.image(space_to_unit(result.image, preset.space).clamp(0, 1), "output.png")
    figure(exp, traj, printed)
    exp.record("final_total_loss", result.final["total"][0])
    exp.note(
        f"profile {exp.profile_label}: {w}x{h} px (appendix: max_size 400, i.e. short side 400), "
        f"{preset.steps} steps (appendix: 2000)"
    )
    exp.note(
        "source numbers are the appendix's printed totals with ImageNet weights at max_size 400; a run with "
        "other weights or another size is not expected to match them (ratio_to_source shows by how much)"
    )
    exp.note(
        "the appendix taps conv layers after torchvision's in-place ReLUs, so the preset uses the relu "
        "outputs; the image is never clipped (the code does not clip)"
    )


def figure(exp, traj, printed) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.semilogy(
        [r["step"] for r in traj],
        [r["total_loss"] for r in traj],
        lw=1.2,
        label=f"ours (weights: {traj[0]['weights']})",
    )
    ax.semilogy(
        [r["step"] for r in printed], [r["total_loss"] for r in printed], "o", ms=4, label="ours, printed steps"
    )
    src = [r for r in printed if not math.isnan(r["source_total_loss"])]
    if src:
        ax.semilogy(
            [r["step"] for r in src],
            [r["source_total_loss"] for r in src],
            "kx",
            ms=7,
            label="appendix output (ImageNet, 400 px)",
        )
    ax.set_xlabel("step")
    ax.set_ylabel("total loss (content + 1e6 style)")
    ax.legend(fontsize=7)
    ax.set_title("UPES appendix: Adam trajectory", fontsize=9)
    exp.figure(fig, "trajectory.png")


def _main(argv: list[str] | None) -> None:
    exp = Experiment(SPEC, __file__, __doc__, argv)
    preset = replace(
        override(UPES, dict(steps=exp.profile.steps, size=exp.profile.size)), print_every=exp.profile.print_every
    )
    exp.settings.update(preset=preset, content=CONTENT, style=STYLE, source_printed=SOURCE_PRINTED)
    exp.run(lambda e: compute(e, preset))


def main(argv: list[str] | None = None) -> int:
    return cli(_main, argv, NAME)


if __name__ == "__main__":
    sys.exit(main())
