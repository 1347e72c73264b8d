"""The paper profile at its own sizes, a couple of steps per experiment: does every experiment fit
and run on this device before `make reproduce PROFILE=paper` spends hours on it?

    python benchmarks/paper_check.py [--device cuda] [--only e7_upes ...] [-- EXTRA EXPERIMENT ARGS]
    make paper-check DEVICE=cuda [DATA=/path/to/train2014]

Each experiment of the registry runs in its own process as `--profile paper --weights random
--force` plus its Spec's `paper_check_argv` (--steps 2, and E10's training and timing steps), in
the device's default compute (--dtype auto: bf16 + channels_last on CUDA) unless EXTRA says
otherwise, into a temporary folder that is deleted afterwards: the paper profile's images, sizes,
batches and data, none of its iteration counts, so none of its results. Training experiments read
$NSTBENCH_DATA (DATA=) when set, else the asset folder's coco100. Writes
results/bench/paper_check.csv and paper_check.md: per experiment the exit status, wall seconds, the
peak memory its manifest records (CUDA allocator peak, or the CPU resident set), its compute and
the last line it printed.

--dry-run: each experiment's smoke profile with its Spec's `test_argv` on the CPU instead (the
plumbing of a device run, benchmarks/device_call.sh, rehearsed on the CPU; not paper sizes).
--budget SECONDS: the wall time all experiments may take together (the device call's limit). An
experiment still running when it is spent is stopped (rc 124, a last line saying so), those not
started get a row saying so; the files are rewritten after every experiment, so a run stopped from
outside keeps what it checked.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nstbench.config.compute import Compute  # noqa: E402
from nstbench.harness import registry  # noqa: E402
from nstbench.harness.experiment import result_dir  # noqa: E402
from nstbench.nets.records import atomic_write_text, ensure_writable_dir, provenance, write_csv  # noqa: E402

COLUMNS = ["experiment", "rc", "seconds", "peak_memory_gib", "compute", "argv", "last_line"]
MIN_SECONDS = 10  # under a --budget, an experiment is not started with less left (its start alone takes seconds)


def check_one(name: str, device: str, out: Path, extra: list[str], dry_run: bool = False, timeout=None) -> dict:
    spec = registry.specs()[name]
    if dry_run:  # the argv column then starts with the profile, so a dry-run row says what it ran
        argv = ["--weights", "random", "--device", device, "--out", str(out), "--force"]
        argv += ["--profile", "smoke", *spec.test_argv]
    else:
        argv = ["--profile", "paper", "--weights", "random", "--device", device, "--out", str(out), "--force"]
        argv += list(spec.paper_check_argv)
    if "data" in spec.options and not os.environ.get("NSTBENCH_DATA"):
        argv += ["--data", "coco100"]
    argv += extra
    t = time.perf_counter()
    try:
        p = subprocess.run(
            [sys.executable, str(registry.EXPERIMENTS_DIR / f"{name}.py"), *argv],
            capture_output=True,
            text=True,
            env={**os.environ, "NSTBENCH_OFFLINE": os.environ.get("NSTBENCH_OFFLINE", "1")},
            timeout=timeout,
        )
        rc, err = p.returncode, p.stderr
    except subprocess.TimeoutExpired as e:  # the budget ran out: killed, what it printed is kept
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        rc, err = 124, err + f"\nstopped after {timeout:.0f} s: the check's --budget was spent"
    row = {"experiment": name, "rc": rc, "seconds": round(time.perf_counter() - t, 1)}
    row["argv"] = " ".join(argv[argv.index("--force") + 1 :])
    row["last_line"] = (err.strip().splitlines() or [""])[-1][:300]
    # <out>/paper/<weight set>/<name>/ (experiment.result_dir); the set is random unless `extra` says otherwise
    manifest = next(iter(sorted(out.glob(str(result_dir("", "paper", "*", name) / "manifest.json")))), None)
    if rc == 0 and manifest is not None:
        m = json.loads(manifest.read_text())
        peak = m.get("peak_memory_bytes")
        row["peak_memory_gib"] = round(peak / 2**30, 2) if peak else None
        c = m["compute"]
        row["compute"] = Compute(c["dtype"], c["channels_last"], c["compile"]).describe()
    status = "ok" if rc == 0 else f"FAILED (exit {rc})"
    print(f"[paper-check] {name}: {status} in {row['seconds']} s; {row['last_line'][:120]}", file=sys.stderr)
    return row


def markdown(rows: list[dict], device: str, wall: float, dry_run: bool = False) -> str:
    import torch

    prov = provenance(device if device == "cpu" or torch.cuda.is_available() else "cpu")
    head = [f"# Paper-profile check on {device} ({prov.get('device_name', '')})", ""]
    if dry_run:
        head += ["**DRY RUN** (CPU, smoke profile): plumbing only, not the paper profile's sizes.", ""]
    head += [
        f"Every experiment at the paper profile's sizes for a couple of steps (random weights: no result "
        f"is kept). torch {prov.get('torch')}, commit {prov.get('commit')}, {prov.get('time_utc')}; "
        f"{wall:.0f} s in all.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    return "\n".join(head + ["| " + " | ".join(str(r.get(c, "")) for c in COLUMNS) + " |" for r in rows]) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--device", default="cuda", help="the experiments' --device (default cuda)")
    ap.add_argument("--only", nargs="+", choices=list(registry.specs()), help="these experiments only")
    ap.add_argument("--out", default=str(ROOT / "results" / "bench"), help="where paper_check.csv/.md go")
    ap.add_argument("--dry-run", action="store_true", help="smoke profile and test_argv on the CPU: plumbing only")
    ap.add_argument("--budget", type=float, help="seconds all experiments may take together (default: no limit)")
    args = ap.parse_args(argv)
    device = "cpu" if args.dry_run else args.device
    out = ensure_writable_dir(Path(args.out))
    t0, rows = time.perf_counter(), []
    with tempfile.TemporaryDirectory(prefix="nstbench-paper-check-") as tmp:
        for name in args.only or list(registry.specs()):
            left = None if args.budget is None else args.budget - (time.perf_counter() - t0)
            if left is not None and left < MIN_SECONDS:
                why = f"not run: {max(left, 0):.0f} s of the --budget of {args.budget:.0f} s left"
                rows.append({"experiment": name, "rc": "", "last_line": why})
                print(f"[paper-check] {name}: {why}", file=sys.stderr)
            else:
                rows.append(check_one(name, device, Path(tmp), extra, args.dry_run, left))
            # both files after every experiment: a run stopped from outside keeps what it checked
            write_csv(out / "paper_check.csv", rows, COLUMNS)
            atomic_write_text(out / "paper_check.md", markdown(rows, device, time.perf_counter() - t0, args.dry_run))
    wall = time.perf_counter() - t0
    failed = [r["experiment"] for r in rows if r["rc"] not in (0, "")]
    skipped = [r["experiment"] for r in rows if r["rc"] == ""]
    print(
        f"wrote {out / 'paper_check.csv'} and paper_check.md ({wall:.0f} s); failed: {', '.join(failed) or 'none'}"
        + (f"; not run (budget): {', '.join(skipped)}" if skipped else "")
    )
    return 1 if failed or skipped else 0


if __name__ == "__main__":
    sys.exit(main())
