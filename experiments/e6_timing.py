"""E6 (claim C10): vanilla optimisation versus one forward pass of the fast network, HUST report 000 section 3.3.

Vanilla: E1's optimisation, the `hust` Gatys preset (VGG19, Adam, from the content; gamma 0 as the
preset) on chelsea + starry_night at long side 256, 512 and 1024 px (Johnson et al.'s speed-table
sizes; the HUST code's own size is 512). The report times 1000 iterations. Fast: one forward pass
of the `hust` transformer (nstbench.nets.transformer, batch norm, eval mode) on the same content at the
same size; its weights are a seeded random initialisation, which does not change the arithmetic
and so not the time.

Timing: for each size, `warmup` untimed vanilla iterations (a separate run) and forward passes come
first; then vanilla runs `steps` iterations, seconds_per_iteration being the median time of one
iteration; when `steps` < 1000 (smoke, cpu) the 1000-iteration total is extrapolated linearly
(iterations_measured says how many were run; per-iteration time is constant for a fixed-size
optimisation). The fast network's seconds_per_iteration is the median of `repeats` timed forward
passes of one image (CUDA synchronised). The vanilla total excludes loading and target extraction;
both exclude reading and writing images. speedup = 1000 x vanilla seconds per iteration / fast
seconds per pass, per (device, dtype, size), as claims.rule_c10 computes it. The repeats (the timed
iterations, the timed passes) also give each median its noise, the median absolute deviation (MAD):
rule_c10 is inconclusive where the speed-up at the pessimistic or optimistic ends of the bands
median +- MAD falls on the other side of 1000x.

Writes results/e6_timing/: table.csv (one row per method and size, with the median, mean, min, max
and MAD over the repeats and the source's numbers on the 512 px rows), repeats.csv (one row per
timed iteration or pass: C10 reads it), timing.png, manifest.json.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import torch

from nstbench.config.claims import C10_ITERATIONS, timing_spread
from nstbench.config.sources import HUST
from nstbench.config.variants import get_variant
from nstbench.harness.experiment import Experiment, cli, pyplot
from nstbench.harness.registry import Spec, families_of
from nstbench.methods.gatys import RunOptions
from nstbench.methods.gatys_run import load_pair, override
from nstbench.methods.timing import time_forward, time_optimisation
from nstbench.nets.transformer import build_transformer

NAME = "e6_timing"


@dataclass(frozen=True)
class Profile:
    sizes: tuple[int, ...]  # long side of the content, px
    steps: int  # vanilla iterations timed per size (extrapolated to 1000 when fewer)
    warmup: int  # untimed vanilla iterations and forward passes first, per size
    repeats: int  # timed forward passes of the fast network per size
    size: int | None = None  # --size: this one size instead of `sizes`
    progress_every: int = 0


PROFILES = {
    "smoke": Profile(sizes=(64, 96), steps=3, warmup=1, repeats=3),  # plumbing only (64x42, 96x63 px)
    # 3 timed iterations per size (about 1, 4 and 15 s each on 2 cores) extrapolated to 1000
    "cpu": Profile(sizes=(256, 512, 1024), steps=3, warmup=1, repeats=5),
    "paper": Profile(sizes=(256, 512, 1024), steps=1000, warmup=10, repeats=50, progress_every=250),  # report: 1000
}
SPEC = Spec(
    name=NAME,
    title="vanilla optimisation versus one forward pass of the fast network, HUST report 000 section 3.3",
    sources=("hust",),
    claims=("C10",),
    archs=(HUST.backbone,),
    profiles=PROFILES,
    test_argv=("--size", "64"),  # one 64 px size
    families=families_of(HUST),
)
CONTENT, STYLE = "chelsea", "starry_night"  # E1's pair
FAST_NETWORK = "hust"  # the HUST notebook's transformer (transformer.HUST_NET)
SOURCE_SIZE = 512  # the HUST code's working size (long side): the report's timing is for it
SOURCE_VANILLA_SECONDS, SOURCE_FAST_SECONDS = 49.43, 0.04  # report 3.3 table (GPU not stated)

TABLE_COLUMNS = [
    "method",
    "size",
    "dtype",
    "height",
    "width",
    "iterations",
    "iterations_measured",
    "extrapolated",
    "total_seconds",
    "seconds_per_iteration",
    "seconds_per_iteration_mean",
    "seconds_per_iteration_min",
    "seconds_per_iteration_max",
    "seconds_per_iteration_mad",
    "images_per_second",
    "speedup",
    "warmup",
    "repeats",
    "source_total_seconds",
    "source_speedup",
]
REPEAT_COLUMNS = ["method", "size", "dtype", "repeat", "seconds_per_iteration"]


def compute(exp: Experiment, sizes: tuple[int, ...]) -> None:
    vgg = exp.backbone(HUST.backbone)
    tag = exp.tag(HUST.backbone)
    net = exp.compute.prepare(build_transformer(get_variant(FAST_NETWORK), seed=exp.seed).to(exp.device)).eval()
    steps = min(exp.profile.steps, C10_ITERATIONS)
    rows, repeats = [], []
    for size in sizes:
        preset = override(HUST, dict(steps=steps, size=size))
        content, style = load_pair(preset, CONTENT, STYLE)
        content, style = content.to(exp.device), style.to(exp.device)
        h, w = content.shape[-2:]
        print(
            f"[{NAME}] {w}x{h} px: vanilla {exp.profile.warmup} + {steps} iterations, fast {exp.profile.warmup} + "
            f"{exp.profile.repeats} passes",
            file=sys.stderr,
            flush=True,
        )
        van = time_optimisation(
            preset,
            content,
            style,
            vgg,
            warmup=exp.profile.warmup,
            run=RunOptions(label=f"{NAME} vanilla", **exp.run_options()),
        )
        fast = time_forward(
            net.stylize_unit, content, warmup=exp.profile.warmup, repeats=exp.profile.repeats, compute=exp.compute
        )
        speedup = C10_ITERATIONS * van["median"] / fast["median"]
        source = size == SOURCE_SIZE
        common = {
            **tag,
            "size": size,
            "dtype": exp.compute.dtype,
            "height": h,
            "width": w,
            "speedup": speedup,
            "warmup": exp.profile.warmup,
            "source_speedup": SOURCE_VANILLA_SECONDS / SOURCE_FAST_SECONDS if source else float("nan"),
        }
        extrapolated = steps < C10_ITERATIONS
        van_total = C10_ITERATIONS * van["median"] if extrapolated else van["total"]
        spread = {"vanilla": timing_spread(van["times"]), "fast": timing_spread(fast["times"])}
        for method, times in (("vanilla", van["times"]), ("fast", fast["times"])):
            repeats += [
                {
                    **tag,
                    "method": method,
                    "size": size,
                    "dtype": exp.compute.dtype,
                    "repeat": k + 1,
                    "seconds_per_iteration": t,
                }
                for k, t in enumerate(times)
            ]
        rows.append(
            {
                **common,
                "method": "vanilla",
                "iterations": C10_ITERATIONS,
                "iterations_measured": steps,
                "extrapolated": extrapolated,
                "total_seconds": van_total,
                "seconds_per_iteration": van["median"],
                "seconds_per_iteration_mean": van["mean"],
                "seconds_per_iteration_min": spread["vanilla"].min,
                "seconds_per_iteration_max": spread["vanilla"].max,
                "seconds_per_iteration_mad": spread["vanilla"].mad,
                "images_per_second": 1.0 / van_total,
                "repeats": spread["vanilla"].n,  # the timed iterations
                "source_total_seconds": SOURCE_VANILLA_SECONDS if source else float("nan"),
            }
        )
        rows.append(
            {
                **common,
                "method": "fast",
                "iterations": 1,
                "iterations_measured": exp.profile.repeats,
                "extrapolated": False,
                "total_seconds": fast["median"],
                "seconds_per_iteration": fast["median"],
                "seconds_per_iteration_mean": fast["mean"],
                "seconds_per_iteration_min": spread["fast"].min,
                "seconds_per_iteration_max": spread["fast"].max,
                "seconds_per_iteration_mad": spread["fast"].mad,
                "images_per_second": 1.0 / fast["median"],
                "repeats": exp.profile.repeats,
                "source_total_seconds": SOURCE_FAST_SECONDS if source else float("nan"),
            }
        )
        print(
            f"[{NAME}] {w}x{h} px: vanilla {van['median']:.4g} s/it ({van_total:.4g} s per {C10_ITERATIONS}), "
            f"fast {fast['median']:.4g} s, speed-up {speedup:.4g}x",
            file=sys.stderr,
            flush=True,
        )
    exp.write_csv("table.csv", rows, TABLE_COLUMNS)
    exp.write_csv("repeats.csv", repeats, REPEAT_COLUMNS)
    figure(exp, rows, sizes)
    exp.claim("C10", "repeats.csv")
    exp.record(
        "source",
        {
            "vanilla_seconds": SOURCE_VANILLA_SECONDS,
            "fast_seconds": SOURCE_FAST_SECONDS,
            "iterations": C10_ITERATIONS,
            "size_long_side": SOURCE_SIZE,
            "device": "not stated",
        },
    )
    threads = torch.get_num_threads() if exp.device.type == "cpu" else None
    exp.note(
        f"profile {exp.profile_label}: sizes {', '.join(map(str, sizes))} px (long side); vanilla timed over "
        f"{steps} iteration(s) after {exp.profile.warmup} warm-up iteration(s)"
        + (
            f", extrapolated linearly to {C10_ITERATIONS} (column iterations_measured)"
            if steps < C10_ITERATIONS
            else ""
        )
        + f"; fast: median of {exp.profile.repeats} forward passes after {exp.profile.warmup} warm-up"
        + (f"; {threads} CPU thread(s), on a machine that may be shared" if threads else "")
    )
    exp.note(
        f"report 3.3: vanilla {SOURCE_VANILLA_SECONDS} s (1000 iterations) vs fast {SOURCE_FAST_SECONDS} s, "
        f"GPU and image size not stated; the source columns sit on the {SOURCE_SIZE} px rows (the HUST code's "
        "working size). Both methods float32; the fast network is the HUST variant with random weights "
        "(the time does not depend on the weights)"
    )


def figure(exp, rows, sizes) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    x = np.arange(len(sizes))
    van = [r["total_seconds"] for r in rows if r["method"] == "vanilla"]
    fast = [r["total_seconds"] for r in rows if r["method"] == "fast"]
    ax.bar(x - 0.2, van, 0.4, label=f"vanilla, {C10_ITERATIONS} iterations")
    ax.bar(x + 0.2, fast, 0.4, label="fast, one forward pass")
    for i, r in enumerate(r for r in rows if r["method"] == "fast"):
        ax.annotate(f"{r['speedup']:,.0f}x", (x[i], max(van[i], fast[i])), ha="center", va="bottom", fontsize=8)
    ax.set_yscale("log")
    ax.set_xticks(x, [f"{s} px" for s in sizes])
    ax.set_ylabel(f"seconds ({exp.device.type}, {exp.compute.dtype})")
    ax.legend(fontsize=7)
    exp.figure(fig, "timing.png")


def _main(argv: list[str] | None) -> None:
    exp = Experiment(SPEC, __file__, __doc__, argv)
    sizes = (exp.profile.size,) if exp.profile.size else exp.profile.sizes
    exp.settings.update(preset=HUST, content=CONTENT, style=STYLE, sizes=sizes, fast_network=get_variant(FAST_NETWORK))
    exp.run(lambda e: compute(e, sizes))


def main(argv: list[str] | None = None) -> int:
    return cli(_main, argv, NAME)


if __name__ == "__main__":
    sys.exit(main())
