"""Regression bands: short deterministic runs whose losses must stay inside stored bands.

tests/bands.json holds, per scenario, what is run ("run"), the reference losses at fixed steps
("reference": {step: {term: value}}), the relative tolerance ("rel_tol") and why it was chosen
("why"). A scenario is one preset at a small size on seeded random weights (the same numbers on
every machine, with or without ImageNet weights), run for a few steps; its losses are compared at
the recorded steps. A value v passes when |v - ref| <= rel_tol * (|ref| + 1e-3 * scale), where scale
is the largest |ref| of that term over the recorded steps: the small absolute part only matters
for a reference that is (close to) zero, e.g. the content loss at step 1 of a run started from the
content image. A term that is zero at every step (tv with gamma = 0) must stay exactly zero.

Usage (from the repository root):
  python tests/bandtools.py --regenerate           rerun every scenario, print the diff vs bands.json
  python tests/bandtools.py --regenerate --write   ... and store the new references (review the diff!)
  python tests/bandtools.py --spread [--write]     spread over CPU kernels (avx512, avx2, default) and
                                                   1/2 threads; --write stores it as measured_spread
  python tests/bandtools.py --timing [--write]     timing ratios (see test_timing.py)
--write never touches the tolerances, the "why" texts or the published ImageNet numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from functools import lru_cache
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
BANDS_FILE = HERE / "bands.json"
TERMS = ("total", "content", "style", "tv")
ZERO_ALLOWANCE = 1e-3  # absolute part of a band, as a fraction of the term's largest reference value

if __name__ == "__main__":  # as a script: the same environment as tests/conftest.py
    _shared = HERE.parent.parent / "shared" / "assets"
    if "NSTBENCH_ASSETS" not in os.environ and (_shared / "SOURCES.md").is_file():
        os.environ["NSTBENCH_ASSETS"] = str(_shared)
    os.environ.setdefault("NSTBENCH_OFFLINE", "1")

import torch  # noqa: E402

if __name__ == "__main__":
    torch.set_num_threads(min(2, os.cpu_count() or 1))

SpecChange = Callable[["LossSpec"], "LossSpec"] | None  # noqa: F821  (a perturbation of the preset's LossSpec)


def load_bands(path: Path = BANDS_FILE) -> dict:
    with open(path) as f:
        return json.load(f)


def dump_bands(obj, indent: int = 0) -> str:
    """JSON with one line per flat record (a run, a step's terms), so a diff of bands.json reads well."""
    flat = lambda v: not isinstance(v, (dict, list)) or (isinstance(v, list) and all(map(flat, v)))  # noqa: E731
    if isinstance(obj, dict) and (not all(flat(v) for v in obj.values()) or len(json.dumps(obj)) > 200):
        pad = " " * (indent + 2)
        items = [f"{pad}{json.dumps(k)}: {dump_bands(v, indent + 2)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    return json.dumps(obj)


@lru_cache(maxsize=None)
def random_backbone(arch: str, seed: int = 0, pooling: str = "max", feature_scale: float = 1.0):
    """Seeded random weights: the bands must not depend on which ImageNet files a machine has.
    feature_scale multiplies the first conv's weights: with torchvision's zero-bias init every
    feature scales with it (ReLU and pooling are positively homogeneous), which lifts losses whose
    random-weight gradients fall below L-BFGS's default tolerances (gatys2016-code)."""
    from nstbench.nets.weights import load_backbone

    backbone = load_backbone(arch, "random", seed=seed, pooling=pooling)
    if feature_scale != 1.0:
        with torch.no_grad():
            backbone.extractor.layers[0].weight.mul_(feature_scale)
    return backbone


# ---------------------------------------------------------------------------------------------
# Running the scenarios
# ---------------------------------------------------------------------------------------------


def run_gatys(
    run: dict, spec_change: SpecChange = None, backbone=None, device: str = "cpu"
) -> dict[int, dict[str, float]]:
    """One Gatys preset (at run["size"], or the preset's own size when absent): {step: {term: value}}
    for every step. Weights: seeded random unless run["weights"] names others (the published bands)."""
    from nstbench.config.presets import get_preset
    from nstbench.methods.gatys import RunOptions
    from nstbench.methods.gatys_run import load_pair, override, run_preset
    from nstbench.nets.weights import load_backbone

    preset = override(get_preset(run["preset"]), dict(steps=run["steps"], size=run.get("size"), init=run.get("init")))
    spec = preset.loss
    if "gamma" in run:
        spec = dataclasses.replace(spec, gamma=run["gamma"])
    if spec_change is not None:
        spec = spec_change(spec)
    preset = dataclasses.replace(preset, loss=spec)
    content, style = load_pair(preset, run["content"], run["style"])
    if backbone is None:
        weights = run.get("weights", "random")
        backbone = (
            random_backbone(preset.backbone, run.get("weights_seed", 0), preset.pooling, run.get("feature_scale", 1.0))
            if weights == "random"
            else load_backbone(preset.backbone, weights, pooling=preset.pooling, family=preset.weights)
        )
    backbone.to(device)
    result = run_preset(
        preset,
        content.to(device),
        style.to(device),
        backbone,
        run=RunOptions(seed=run.get("seed", 0), progress_every=0),
    )
    return {h["step"]: {t: h[t] for t in TERMS} for h in result.history}


def weights_unavailable(preset_name: str, weights: str) -> str | None:
    """Why a published band cannot run here (None: the ImageNet file of that weights family is in its
    cache folder). "imagenet" means the preset's own family. Nothing is downloaded in tests."""
    from nstbench.config.errors import NstbenchError
    from nstbench.config.presets import get_preset
    from nstbench.nets.weights import fetch

    preset = get_preset(preset_name)
    family = preset.weights if weights == "imagenet" else weights
    try:
        fetch(family, preset.backbone, allow_download=False)
    except NstbenchError as e:
        return f"the published band of {preset_name} needs its ImageNet weights: {e}"
    return None


def run_fast(run: dict, spec_change: SpecChange = None, backbone=None) -> dict[int, dict[str, float]]:
    """The first training steps of a fast-transfer preset (tiny images, few data): {step: {term: value}}."""
    from nstbench.config.presets import get_fast_preset, override_fast
    from nstbench.methods.training import TrainOptions, train_transformer

    preset = override_fast(
        get_fast_preset(run["preset"]),
        dict(
            steps=run["steps"],
            batch=run["batch"],
            size=run["size"],
            max_images=run["max_images"],
            checkpoint_every=run["steps"],
        ),
    )
    if spec_change is not None:
        preset = dataclasses.replace(preset, loss=spec_change(preset.loss))
    backbone = backbone or random_backbone(preset.backbone, run.get("weights_seed", 0))
    rows: dict[int, dict[str, float]] = {}

    def keep(row: dict) -> None:
        rows[row["step"]] = {t: float(row[t]) for t in TERMS}

    with tempfile.TemporaryDirectory(prefix="nstbench-band-") as out:
        train_transformer(
            preset,
            run["style"],
            run["data"],
            out,
            backbone=backbone,
            run=TrainOptions(seed=run.get("seed", 0), progress_every=0, log=lambda m: None, on_step=keep),
        )
    return rows


def run_scenario(
    scenario: dict, spec_change: SpecChange = None, backbone=None, device: str = "cpu", until: int | None = None
) -> dict[int, dict[str, float]]:
    """The losses of a scenario at its recorded steps only: {step: {term: value}}.
    until: stop the run after that step (and record only the steps up to it)."""
    run = scenario["run"]
    if until is not None:
        run = dict(run, steps=until)
    if run["kind"] == "gatys":
        rows = run_gatys(run, spec_change, backbone, device)
    else:
        rows = run_fast(run, spec_change, backbone)
    steps = [int(s) for s in scenario.get("reference", {})] or run["record_steps"]
    steps = [s for s in steps if until is None or s <= until]
    missing = [s for s in steps if s not in rows]
    if missing:
        raise RuntimeError(f"the run produced no losses at steps {missing} (it has {len(rows)} steps)")
    return {s: rows[s] for s in steps}


# ---------------------------------------------------------------------------------------------
# Checking
# ---------------------------------------------------------------------------------------------


def _reference(scenario: dict) -> dict[int, dict[str, float]]:
    return {int(s): terms for s, terms in scenario["reference"].items()}


def deviations(name: str, scenario: dict, measured: dict, steps=None) -> list[dict]:
    """One row per (step, term): the value, its band and how far it is from the reference in units
    of the tolerance ("used": 1.0 = at the edge of the band). A step missing from `measured` is a
    violation; steps=[...] checks only those (a run stopped early on purpose)."""
    ref = _reference(scenario)
    scales = {t: max(abs(terms[t]) for terms in ref.values() if t in terms) for terms in ref.values() for t in terms}
    if steps is not None:
        ref = {s: ref[s] for s in steps}
    tol = scenario["rel_tol"]
    checked = scenario.get("terms", TERMS)  # a scenario may leave out a term it cannot check stably (its "why")
    out = []
    for term in sorted({t for terms in ref.values() for t in terms if t in checked}, key=TERMS.index):
        scale = scales[term]
        for step in sorted(ref):
            if term not in ref[step]:
                continue
            r = ref[step][term]
            v = measured.get(step, {}).get(term, float("nan"))
            allowed = tol * (abs(r) + ZERO_ALLOWANCE * scale)
            diff = abs(v - r)
            used = (0.0 if diff == 0 else math.inf) if allowed == 0 else diff / allowed
            if not math.isfinite(v):
                used = math.inf
            out.append(
                {
                    "scenario": name,
                    "step": step,
                    "term": term,
                    "value": v,
                    "reference": r,
                    "lo": r - allowed,
                    "hi": r + allowed,
                    "rel": diff / abs(r) if r else diff,
                    "used": used,
                }
            )
    return out


def band_violations(name: str, scenario: dict, measured: dict, steps=None) -> list[str]:
    """Every (step, term) outside its band, as one readable line each; [] when all pass."""
    return [
        f"{d['scenario']}: {d['term']} at step {d['step']} = {d['value']:.9g} outside the band "
        f"[{d['lo']:.9g}, {d['hi']:.9g}] (reference {d['reference']:.9g}, rel. diff {d['rel']:.3g}, "
        f"rel_tol {scenario['rel_tol']:g})"
        for d in deviations(name, scenario, measured, steps)
        if not d["used"] <= 1.0
    ]


def max_used(name: str, scenario: dict, measured: dict, steps=None) -> float:
    """The largest deviation in units of the tolerance (< 1: inside every band)."""
    return max(d["used"] for d in deviations(name, scenario, measured, steps))


def max_rel_spread(a: dict, b: dict, terms=TERMS) -> tuple[float, str]:
    """Largest relative difference between two measurements of a scenario over the checked terms,
    with the same near-zero allowance as the bands (so it compares directly with rel_tol), and where."""
    worst, where = 0.0, "-"
    for term in terms:
        scale = max(abs(a[s][term]) for s in a)
        for s in a:
            x, y = a[s][term], b[s][term]
            denom = abs(x) + ZERO_ALLOWANCE * scale
            d = 0.0 if x == y else (abs(x - y) / denom if denom else math.inf)
            if d > worst:
                worst, where = d, f"{term}@{s}"
    return worst, where


# ---------------------------------------------------------------------------------------------
# Timing: ratios measured in one process, never absolute seconds
# ---------------------------------------------------------------------------------------------
# Clock: the process CPU time of a single-threaded run. On a shared machine wall time mostly
# measures how long we waited for a core (we saw the same workload take 23 ms and 590 ms within a
# minute), and with two OpenMP threads a descheduled thread makes the other spin, which inflates
# CPU time too. One thread and CPU time gave ratios within +-4% under a load average of 7 on 2
# cores. What this cannot see: slowdowns that are waiting, not computing (sleeps, I/O, locks).

TIMING_STEPS = 4  # optimize_image steps per timed call; the per-iteration time is the call / 4


class single_thread:
    """torch.set_num_threads(1) for the block, the previous count restored after."""

    def __enter__(self):
        self.old = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.old)
        return False


def calibration_workload(size: int = 64) -> Callable[[], None]:
    """A fixed conv stack, forward and backward: the same kind of kernels as a Gatys step, so
    the ratio cancels the machine's speed.

    Input [1, 64, size, size]; four 3x3 convs 64 -> 64 with ReLU, seeded weights. Forward:
    4 * 2 * 64 * 64 * 9 * size^2 = 1.21 GFLOP at size 64 (multiply-adds counted as 2); backward
    (input and weight gradients) about twice that.
    """
    g = torch.Generator().manual_seed(0)
    convs = [torch.nn.Conv2d(64, 64, 3, padding=1) for _ in range(4)]
    for c in convs:
        with torch.no_grad():
            c.weight.copy_(torch.randn(c.weight.shape, generator=g) * 0.05)
    net = torch.nn.Sequential(*[m for c in convs for m in (c, torch.nn.ReLU())])
    x = torch.randn(1, 64, size, size, generator=g).requires_grad_(True)

    def work() -> None:
        x.grad = None
        net(x).square().mean().backward()

    return work


def gatys_step_workload(preset_name: str = "hust", size: int = 64, repeat: int = 1) -> Callable[[], None]:
    """`TIMING_STEPS` iterations of a preset's optimisation (optimize_image: loss, backward,
    optimizer update, clamping) at a small size, on targets computed once, as run_preset does.
    repeat=2 runs it twice: the injected 2x slowdown that the timing test must catch."""
    from nstbench.config.presets import get_preset
    from nstbench.methods.gatys import initial_image, make_gatys_loss, optimize_image
    from nstbench.methods.gatys_run import load_pair, override
    from nstbench.nets.images import space_bounds

    preset = override(get_preset(preset_name), dict(size=size))
    content, style = load_pair(preset, "chelsea", "starry_night")
    loss_fn = make_gatys_loss(
        random_backbone(preset.backbone), content, style, preset.loss, preset.space, feed=preset.feed
    )
    x0 = initial_image(preset.init, content, style, preset.space)
    clamp = space_bounds(preset.space, x0) if preset.clamp else None

    def work() -> None:
        for _ in range(repeat):
            optimize_image(loss_fn, x0, TIMING_STEPS, preset.optimizer, clamp=clamp, keep_best=preset.keep_best)

    return work


def interleaved_medians(
    workloads: dict[str, Callable[[], None]],
    repeats: int = 7,
    warmup: int = 2,
    clock: Callable[[], float] = time.process_time,
) -> dict[str, float]:
    """Median CPU seconds per call of each workload, single-threaded, the workloads interleaved
    (a, b, a, b, ...) so that a change in the machine's state hits them alike. Warm-up calls
    (allocator, oneDNN kernel selection) are discarded."""
    times: dict[str, list[float]] = {k: [] for k in workloads}
    with single_thread():
        for i in range(warmup + repeats):
            for k, fn in workloads.items():
                t = clock()
                fn()
                dt = clock() - t
                if i >= warmup:
                    times[k].append(dt)
    return {k: statistics.median(v) for k, v in times.items()}


def measure_step_ratio(repeat: int = 1, repeats: int = 7) -> float:
    """Per-iteration CPU time of the Gatys step / CPU time of the calibration workload."""
    m = interleaved_medians({"cal": calibration_workload(), "step": gatys_step_workload(repeat=repeat)}, repeats)
    return m["step"] / TIMING_STEPS / m["cal"]


def timing_violation(ratio: float, band: dict) -> str | None:
    """None inside [reference / below, reference * above], else one line saying why not."""
    lo, hi = band["reference"] / band["below"], band["reference"] * band["above"]
    if lo <= ratio <= hi:
        return None
    return (
        f"Gatys step / calibration CPU-time ratio {ratio:.3g} outside [{lo:.3g}, {hi:.3g}] "
        f"(reference {band['reference']:.3g})"
    )


# ---------------------------------------------------------------------------------------------
# Command line: regenerate (print diff, write on --write), spread, timing
# ---------------------------------------------------------------------------------------------


def measure_all(bands: dict, names: list[str] | None = None) -> dict[str, dict]:
    out = {}
    for name, sc in bands["scenarios"].items():
        if names and name not in names:
            continue
        t = time.perf_counter()
        out[name] = run_scenario(sc)
        print(f"  ran {name} in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    return out


def print_diff(bands: dict, measured: dict) -> int:
    """Print old -> new for every value; returns the number of values outside their band."""
    broken = 0
    for name, rows in measured.items():
        sc = bands["scenarios"][name]
        print(f"{name} (rel_tol {sc['rel_tol']:g})")
        if not sc.get("reference"):
            print("  no stored reference yet")
            for s, terms in rows.items():
                print(f"  step {s}: " + ", ".join(f"{t}={v!r}" for t, v in terms.items()))
            continue
        for d in deviations(name, sc, rows):
            flag = "OUT " if not d["used"] <= 1.0 else "    "
            broken += flag == "OUT "
            print(
                f"  {flag}step {d['step']:>3} {d['term']:8s} {d['reference']:<22.12g} -> {d['value']:<22.12g} "
                f"rel {d['rel']:.2e}  ({d['used']:.2g} of the band)"
            )
    return broken


def _spread_child(names: list[str]) -> None:
    """Print the scenarios' losses as JSON (run in a subprocess with another thread count / ISA)."""
    bands = load_bands()
    res = {n: {str(s): v for s, v in rows.items()} for n, rows in measure_all(bands, names).items()}
    print(json.dumps(res))


# The conditions that stand in for other machines. ATEN_CPU_CAPABILITY picks PyTorch's own kernels
# (pooling, ReLU, reductions, the losses); ONEDNN_MAX_CPU_ISA caps oneDNN's (the convolutions), so
# "avx2" is a Zen 3-like CPU on a Zen 4 one. "default" is ATen's scalar kernels, as the issue that
# found the capability-fragile tests ran them (oneDNN keeps its own ISA there).
CAPABILITIES = {
    "avx512": {},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "default": {"ATEN_CPU_CAPABILITY": "default"},
}
THREADS = ("1", "2")


def spread(names: list[str] | None, write: bool = False) -> dict[str, dict[str, float]]:
    """Run every scenario in a fresh process per (capability, thread count) and print the largest
    relative deviation from the stored reference, next to rel_tol. Returns {scenario: {capability:
    largest spread over the thread counts}}; write=True stores it as each scenario's measured_spread."""
    bands = load_bands()
    names = names or list(bands["scenarios"])
    table: dict[str, dict[str, tuple[float, str]]] = {n: {} for n in names}
    labels = []
    for cap, env in CAPABILITIES.items():
        for threads in THREADS:
            label = f"{cap}/{threads}t"
            labels.append(label)
            print(f"{label} ...", file=sys.stderr)
            child_env = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")}
            child_env.update(env, OMP_NUM_THREADS=threads, NSTBENCH_BAND_THREADS=threads)
            r = subprocess.run(
                [sys.executable, __file__, "--spread-child", *names],
                capture_output=True,
                text=True,
                env=child_env,
                check=True,
            )
            got = {n: {int(s): v for s, v in rows.items()} for n, rows in json.loads(r.stdout).items()}
            for n in names:
                ref = _reference(bands["scenarios"][n]) if bands["scenarios"][n].get("reference") else None
                terms = bands["scenarios"][n].get("terms", TERMS)
                table[n][label] = max_rel_spread(ref, got[n], terms) if ref else (float("nan"), "-")
    print("largest relative deviation from the stored reference (term@step), per capability/threads:")
    print(f"{'scenario':22s} {'rel_tol':>8s}  " + "  ".join(f"{k:>24s}" for k in labels))
    for n in names:
        print(
            f"{n:22s} {bands['scenarios'][n]['rel_tol']:8.0e}  "
            + "  ".join(f"{table[n][k][0]:9.2e} {table[n][k][1]:>14s}" for k in labels)
        )
    per_cap = {n: {cap: max(table[n][f"{cap}/{t}t"][0] for t in THREADS) for cap in CAPABILITIES} for n in names}
    if write:
        for n in names:
            bands["scenarios"][n]["measured_spread"] = {c: float(f"{v:.2g}") for c, v in per_cap[n].items()}
        BANDS_FILE.write_text(dump_bands(bands) + "\n")
        print(f"wrote measured_spread to {BANDS_FILE}")
    return per_cap


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--regenerate", action="store_true", help="rerun the loss scenarios and print the diff")
    ap.add_argument("--timing", action="store_true", help="measure the timing ratio and print the diff")
    ap.add_argument("--spread", action="store_true", help="measure run-to-run / threads / CPU-kernel spread")
    ap.add_argument("--write", action="store_true", help="store what --regenerate / --timing measured")
    ap.add_argument("--spread-child", nargs="*", help=argparse.SUPPRESS)
    ap.add_argument("scenarios", nargs="*", help="only these scenarios (default: all)")
    args = ap.parse_args(argv)
    if args.spread_child is not None:
        torch.set_num_threads(int(os.environ.get("NSTBENCH_BAND_THREADS", "2")))
        _spread_child(args.spread_child)
        return 0
    if not (args.regenerate or args.timing or args.spread):
        ap.error("give --regenerate, --timing or --spread")
    if args.spread and (args.regenerate or args.timing):
        ap.error("--spread measures against the stored references: run it on its own")
    bands = load_bands()
    print(
        f"threads: {torch.get_num_threads()}, torch {torch.__version__}, "
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}",
        file=sys.stderr,
    )
    if args.spread:
        spread(args.scenarios, write=args.write)
    if args.regenerate:
        measured = measure_all(bands, args.scenarios)
        broken = print_diff(bands, measured)
        print(f"{broken} value(s) outside the stored bands")
        if args.write:
            for name, rows in measured.items():
                bands["scenarios"][name]["reference"] = {str(s): terms for s, terms in rows.items()}
    if args.timing:
        ratio = measure_step_ratio()
        band = bands["timing"]["gatys_step_over_calibration"]
        print(
            f"Gatys step / calibration: stored {band['reference']:.4g}, measured {ratio:.4g}; "
            + (timing_violation(ratio, band) or "inside the band")
        )
        if args.write:
            band["reference"] = round(ratio, 4)
    if args.write and (args.regenerate or args.timing):
        BANDS_FILE.write_text(dump_bands(bands) + "\n")
        print(f"wrote {BANDS_FILE}")
    elif args.regenerate or args.timing:
        print("nothing written (add --write after reviewing the diff)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
