"""E1 (claim C1): TV weight gamma sweep with FFT spectra, HUST report 000 section 3.1.

The `hust` preset (VGG19, content conv4_2, style conv1_1..conv5_1 at 0.2, alpha 1, beta 1e3, Adam
lr 0.01, init from the content, l_tv = sum |dy| + |dx|) with gamma in {0, 1, 10, 100, 1000},
optimised as ONE batch: image i of the batch is sweep point gamma_i (Adam is elementwise and each
image's gradient comes from its own loss, so this equals five separate runs).
Images: the HUST repository's own, hust_cat (its Gatys notebook's content, 259x195) and hust_picasso
(its style). The gamma sweep runs on `hust`, the report's settings (with its TV term); `hust-code`, the
earlier notebook, has no TV term to sweep.

Writes results/e1_tv_gamma/: table.csv (one row per gamma: hf_fraction, tv, content_loss,
style_loss, ssim_content, ...; claim C1), curves.csv (per iteration and gamma), radial.csv
(azimuthally averaged power spectra), grid.png, spectra.png, radial_spectrum.png, curves.png,
outputs/gamma_<g>.png, manifest.json.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from nstbench.config.sources import HUST
from nstbench.harness.experiment import Experiment, cli, pyplot
from nstbench.harness.figures import readable_log_x
from nstbench.harness.registry import Spec, families_of
from nstbench.methods import metrics
from nstbench.methods.gatys import Mix, RunOptions
from nstbench.methods.gatys_run import load_pair, override, run_preset

NAME = "e1_tv_gamma"


@dataclass(frozen=True)
class Profile:
    size: int  # long side in px (the hust resize rule: long side, tf bilinear, truncated)
    steps: int  # Adam iterations
    progress_every: int  # progress line every N steps


PROFILES = {
    "smoke": Profile(size=64, steps=10, progress_every=5),  # plumbing only (64x42 px)
    "cpu": Profile(size=128, steps=300, progress_every=50),  # 128x85 px, 300 of the report's 1000 iterations
    "paper": Profile(size=512, steps=1000, progress_every=100),  # report 3.1: long side 512, 1000 iterations
}
SPEC = Spec(
    name=NAME,
    title="TV weight gamma sweep with FFT spectra, HUST report 000 section 3.1",
    sources=("hust",),
    claims=("C1",),
    archs=("vgg19",),
    profiles=PROFILES,
    test_argv=("--steps", "3", "--size", "56"),  # hust_cat 56x42
    families=families_of(HUST),
)
GAMMAS = (0.0, 1.0, 10.0, 100.0, 1000.0)  # report shows 0, 10, 100; EXPERIMENTS.md asks for at least these
CONTENT, STYLE = "hust_cat", "hust_picasso"  # the HUST repository: cat.jpg, picasso.jpg
HF_RADIUS = 0.25  # cycles/pixel (half Nyquist), metrics.high_frequency_fraction's default

TABLE_COLUMNS = [
    "gamma",
    "hf_fraction",
    "tv",
    "tv_loss",
    "content_loss",
    "style_loss",
    "total_loss",
    "ssim_content",
    "psnr_content",
    "lpips_content",
    "height",
    "width",
    "steps",
]
CURVE_COLUMNS = ["gamma", "step", "total", "content", "style", "tv", "seconds"]
RADIAL_COLUMNS = ["image", "gamma", "freq", "power"]


def compute(exp: Experiment, preset) -> None:
    content, style = load_pair(preset, CONTENT, STYLE)
    content, style = content.to(exp.device), style.to(exp.device)
    vgg = exp.backbone(preset.backbone)
    tag = exp.tag(preset.backbone)
    h, w = content.shape[-2:]
    print(f"[{NAME}] {len(GAMMAS)} gammas as one batch, {w}x{h} px, {preset.steps} steps", file=sys.stderr, flush=True)
    result = run_preset(
        preset,
        content,
        style,
        vgg,
        batch=len(GAMMAS),
        run=RunOptions(label=NAME, **exp.run_options()),
        mix=Mix(gamma=list(GAMMAS)),
    )
    out = result.image.clamp(0, 1)  # the preset's space is unit and it clamps: already in [0, 1]

    hf = metrics.high_frequency_fraction(out, HF_RADIUS).tolist()
    tv = metrics.total_variation(out).tolist()
    quality = exp.content_quality(out, content)
    rows = []
    for i, g in enumerate(GAMMAS):
        rows.append(
            {
                **tag,
                "gamma": g,
                "hf_fraction": hf[i],
                "tv": tv[i],
                "tv_loss": result.final["tv"][i],
                "content_loss": result.final["content"][i],
                "style_loss": result.final["style"][i],
                "total_loss": result.final["total"][i],
                **quality[i],
                "height": h,
                "width": w,
                "steps": preset.steps,
            }
        )
        exp.image(out[i : i + 1], f"outputs/gamma_{g:g}.png")
    exp.write_csv("table.csv", rows, TABLE_COLUMNS)
    curves = [
        {**tag, "gamma": GAMMAS[r["image"]], **{k: r[k] for k in CURVE_COLUMNS if k in r}} for r in result.history
    ]
    exp.write_csv("curves.csv", curves, CURVE_COLUMNS)
    exp.record("content_hf_fraction", float(metrics.high_frequency_fraction(content, HF_RADIUS)[0]))
    exp.record("content_tv", float(metrics.total_variation(content)[0]))

    freqs, power = metrics.radial_spectrum(out)
    _, power_c = metrics.radial_spectrum(content)
    radial = [
        {**tag, "image": "content", "gamma": float("nan"), "freq": f, "power": p}
        for f, p in zip(freqs.tolist(), power_c[0].tolist())
    ]
    for i, g in enumerate(GAMMAS):
        radial += [
            {**tag, "image": f"gamma={g:g}", "gamma": g, "freq": f, "power": p}
            for f, p in zip(freqs.tolist(), power[i].tolist())
        ]
    exp.write_csv("radial.csv", radial, RADIAL_COLUMNS)

    figures(exp, content, style, out, freqs, power, power_c, rows, curves)
    exp.claim("C1", "table.csv")
    exp.note(f"profile {exp.profile_label}: {w}x{h} px and {preset.steps} iterations (report: long side 512, 1000)")
    exp.note(
        "hust preset: the report's losses with the repository notebook's optimiser (Keras Adam lr 0.01, "
        "beta1 0.9, epsilon 0.1 in TensorFlow form) and clipping to [0, 1] (see sources.py, hust-code)"
    )
    exp.note(
        f"images {CONTENT} / {STYLE}: the HUST repository's cat.jpg and picasso.jpg. The sweep runs on the "
        "hust preset (the report, with its TV term); hust-code, the repository's earlier notebook, has none"
    )
    exp.note(
        f"hf_fraction: share of non-DC luma power above {HF_RADIUS} cycles/pixel; tv: L1 TV per pixel "
        "(metrics.total_variation); tv_loss: the optimised l1_sum term; losses unweighted, report formulas"
    )


def figures(exp, content, style, out, freqs, power, power_c, rows, curves) -> None:
    plt = pyplot()
    n = len(GAMMAS)
    exp.panels(
        "grid.png",
        f"TV weight sweep ({n} gammas, one batch)",
        [("content", content), ("style", style)]
        + [
            (f"gamma={g:g}\nSSIM {r['ssim_content']:.2f}", out[i : i + 1]) for i, (g, r) in enumerate(zip(GAMMAS, rows))
        ],
    )

    amp = metrics.fft_log_amplitude(out).cpu().numpy()
    amp_c = metrics.fft_log_amplitude(content).cpu().numpy()[0]
    vmin, vmax = min(amp.min(), amp_c.min()), max(amp.max(), amp_c.max())  # one colour scale for all
    fig, axes = plt.subplots(1, n + 1, figsize=(2.6 * (n + 1), 2.4))
    for ax, (title, a) in zip(axes, [("content", amp_c)] + [(f"gamma={g:g}", amp[i]) for i, g in enumerate(GAMMAS)]):
        im = ax.imshow(a, cmap="magma", vmin=vmin, vmax=vmax)
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    fig.colorbar(im, ax=list(axes), shrink=0.8, label="log(1 + |FFT(luma)|)")
    exp.figure(fig, "spectra.png")

    f = freqs.cpu().numpy()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    ax.loglog(f[1:], power_c[0, 1:].cpu().numpy(), "k--", lw=1, label="content")
    for i, g in enumerate(GAMMAS):
        ax.loglog(f[1:], power[i, 1:].cpu().numpy(), lw=1.2, label=f"gamma={g:g}")
    ax.axvline(HF_RADIUS, color="grey", lw=0.8, ls=":")
    readable_log_x(ax)  # at smoke sizes the axis spans about a decade: its default labels overlapped
    ax.set_xlabel("radial frequency (cycles/pixel)")
    ax.set_ylabel("mean power |FFT|^2 / (HW)^2")
    ax.legend(fontsize=7)
    ax.set_title("azimuthally averaged spectrum", fontsize=9)
    exp.figure(fig, "radial_spectrum.png")

    fig, ax = plt.subplots(figsize=(5, 3.6))
    for g in GAMMAS:
        pts = [(c["step"], c["total"]) for c in curves if c["gamma"] == g]
        ax.semilogy(*np.array(pts).T, lw=1.2, label=f"gamma={g:g}")
    ax.set_xlabel("iteration")
    ax.set_ylabel("total loss (alpha c + beta s + gamma tv)")
    ax.legend(fontsize=7)
    exp.figure(fig, "curves.png")


def _main(argv: list[str] | None) -> None:
    exp = Experiment(SPEC, __file__, __doc__, argv)
    preset = override(HUST, dict(steps=exp.profile.steps, size=exp.profile.size))
    exp.settings.update(preset=preset, content=CONTENT, style=STYLE, gammas=GAMMAS, hf_radius=HF_RADIUS, batched=True)
    exp.run(lambda e: compute(e, preset))


def main(argv: list[str] | None = None) -> int:
    return cli(_main, argv, NAME)


if __name__ == "__main__":
    sys.exit(main())
