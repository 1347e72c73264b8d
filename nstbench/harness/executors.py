"""Where an experiment's work runs: `--executor inline|local|slurm` (and `debug`, for tests).

inline (the default) computes everything in the running process, as the scripts always did. The
other executors submit jobs through submitit (https://github.com/facebookincubator/submitit):

  local   LocalExecutor: each job a local process with `--cpus` cores (torch threads), at most
          `--max-parallel` at once (default: the machine's cores // --cpus)
  slurm   SlurmExecutor: sbatch jobs (--partition, --gpus, --cpus, --mem-gb, --time-min), the
          units of one experiment as one job array
  debug   DebugExecutor: submitit's in-process executor (pickles the call, runs it on .result())

An experiment whose Spec names `units` (E2's five trainings, ...) hands them to `Experiment.map_units`:
each unit is a function of its script, `fn(exp, **kwargs)` with picklable kwargs and a picklable
result; a job rebuilds the script's Experiment from the same command line (inline) and calls it. Its
result is kept in `<out>/.jobs/<experiment>/units/<unit>.pt` under a key (the experiment's cache key,
the function and the unit's name), so a unit whose result is current is not resubmitted, and a rerun
after a failure resubmits only the units that failed. The driver assembles the results folder (as
inline: temp folder, atomic swap) only when every unit finished. An experiment without units is
submitted whole, as one job running the script inline. Job logs: `<out>/.jobs/<experiment>/logs/`.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from ..config.errors import NstbenchError
from .registry import load_script

EXECUTORS = ("inline", "local", "slurm", "debug")
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the nstbench package


@dataclass(frozen=True)
class JobOptions:
    """What each job asks for (local and slurm; inline and debug ignore them)."""

    executor: str = "inline"
    partition: str | None = None  # slurm partition (default: the cluster's)
    gpus: int = 0  # GPUs per job
    cpus: int = 1  # cores per job: the job's torch threads
    mem_gb: float | None = None  # memory per job (default: the cluster's)
    time_min: int = 240  # time limit per job, minutes
    max_parallel: int | None = None  # jobs at once (local: default cores // cpus; slurm: array parallelism)


def add_job_arguments(ap: argparse.ArgumentParser, units: str | None) -> None:
    where = f"its units ({units})" if units else "the whole experiment (one job)"
    g = ap.add_argument_group(
        "jobs", f"--executor local|slurm submits {where} through submitit; logs under <out>/.jobs/<experiment>/"
    )
    g.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="inline",
        help="inline (default: this process), local (submitit local processes), slurm (sbatch), "
        "debug (submitit's in-process executor)",
    )
    g.add_argument("--partition", help="slurm partition")
    g.add_argument("--gpus", type=int, help="GPUs per job (default 1 with --device cuda, else 0)")
    g.add_argument("--cpus", type=int, default=1, help="cores per job (its torch threads; default 1)")
    g.add_argument("--mem-gb", type=float, help="memory per job, GB")
    g.add_argument("--time-min", type=int, default=240, help="time limit per job, minutes (default 240)")
    g.add_argument("--max-parallel", type=int, help="jobs at once (local: default cores // --cpus)")


def job_options(args: argparse.Namespace) -> JobOptions:
    gpus = args.gpus if args.gpus is not None else int(str(args.device).startswith("cuda"))
    opts = JobOptions(args.executor, args.partition, gpus, args.cpus, args.mem_gb, args.time_min, args.max_parallel)
    for name in ("cpus", "time_min", "max_parallel"):
        v = getattr(opts, name)
        if v is not None and v < 1:
            raise NstbenchError(f"--{name.replace('_', '-')} must be at least 1, got {v}")
    if opts.gpus < 0:
        raise NstbenchError(f"--gpus must be at least 0, got {opts.gpus}")
    return opts


def _submitit():
    try:
        import submitit
    except ImportError:
        raise NstbenchError("--executor local|slurm|debug needs submitit: pip install 'nstbench[slurm]'") from None
    return submitit


def make_executor(opts: JobOptions, folder: Path, name: str):
    """A submitit executor for `opts.executor`, its logs in `folder` (one subfolder per job id)."""
    submitit = _submitit()
    # the jobs import nstbench from the same tree as this process, not from whatever is installed
    setup = [f"export PYTHONPATH={PACKAGE_ROOT}${{PYTHONPATH:+:$PYTHONPATH}}"]
    logs = folder / "%j"
    if opts.executor == "debug":
        return submitit.DebugExecutor(logs)
    if opts.executor == "local":
        ex = submitit.LocalExecutor(logs)
        ex.update_parameters(timeout_min=opts.time_min, gpus_per_node=opts.gpus, setup=setup)
        return ex
    if opts.executor == "slurm":
        if shutil.which("srun") is None:
            raise NstbenchError(
                "--executor slurm: no Slurm here (srun is not on PATH); run it on a cluster's login "
                "node, or use --executor local"
            )
        ex = submitit.SlurmExecutor(logs)
        params = dict(
            job_name=f"nstbench-{name}",
            time=opts.time_min,
            cpus_per_task=opts.cpus,
            setup=setup,
            gpus_per_node=opts.gpus or None,
            partition=opts.partition,
            mem=f"{opts.mem_gb:g}GB" if opts.mem_gb else None,
            array_parallelism=opts.max_parallel,
        )
        ex.update_parameters(**{k: v for k, v in params.items() if v is not None})
        return ex
    raise RuntimeError(f"make_executor: {opts.executor!r} is not a job executor")


def unit_argv(argv: list[str], opts: JobOptions) -> list[str]:
    """The driver's command line for a job: run inline, with --cpus torch threads (in its own process)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in ("--executor", "--threads"):
            skip = True
            continue
        if a.startswith(("--executor=", "--threads=")):
            continue
        out.append(a)
    threads = ["--threads", str(opts.cpus)] if opts.executor in ("local", "slurm") else []  # debug: this process
    return out + ["--executor", "inline"] + threads


def call_script(script: str, argv: list[str]) -> int:
    """In a job: the whole script, inline; a non-zero exit is a failed job."""
    rc = load_script(script).main(argv)
    if rc:
        raise RuntimeError(f"{Path(script).name} exited with status {rc} (see this job's stderr)")
    return rc


def unit_key(exp_key: str, fn: str, name: str) -> str:
    """A unit's kwargs are a function of the experiment's settings and code: its key is theirs + its name."""
    return hashlib.sha256(f"{exp_key}\0{fn}\0{name}".encode()).hexdigest()


class UnitStore:
    """Finished units' results: <folder>/<name>.pt holding {"key", "result"} (written atomically)."""

    def __init__(self, folder: Path):
        self.folder = folder

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.pt"

    def load(self, name: str, key: str) -> tuple[bool, Any]:
        p = self.path(name)
        if not p.is_file():
            return False, None
        try:
            saved = torch.load(p, map_location="cpu", weights_only=False)
        except Exception:  # a truncated or foreign file is a unit to redo, not an error
            return False, None
        return (True, saved["result"]) if saved.get("key") == key else (False, None)

    def save(self, name: str, key: str, result: Any) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{name}.{os.getpid()}.tmp"
        torch.save({"key": key, "result": result}, tmp)
        os.replace(tmp, self.path(name))


def _log(prog: str, msg: str) -> None:
    print(f"[{prog}] {msg}", file=sys.stderr, flush=True)


def _stderr_path(job) -> str:
    try:
        return str(job.paths.stderr)
    except Exception:  # a job without a log folder
        return "(no log file)"


def run_jobs(
    executor, opts: JobOptions, fn: Callable, calls: dict[str, tuple], prog: str, on_done: Callable[[str, Any], None]
) -> dict[str, str]:
    """Submit fn(*args) per name (slurm: one job array; local: waves of max_parallel), wait for all;
    on_done(name, result) for each that finished. Returns {name: stderr log path} of the failed ones."""
    names = list(calls)
    if opts.executor == "local":
        per = opts.max_parallel or max(1, (os.cpu_count() or 1) // opts.cpus)
        waves = [names[i : i + per] for i in range(0, len(names), per)]
    else:
        waves = [names]
    failed: dict[str, str] = {}
    for wave in waves:
        jobs = executor.map_array(fn, *zip(*[calls[n] for n in wave]))
        for n, job in zip(wave, jobs):
            _log(prog, f"submitted {n}: job {job.job_id}, log {_stderr_path(job)}")
        for n, job in zip(wave, jobs):
            t = time.time()
            try:
                # the debug executor drops into pdb when result() fails; exception() runs it without
                err = job.exception() if opts.executor == "debug" else None
                if err is not None:
                    raise err
                result = job.result()
            except Exception as e:
                failed[n] = _stderr_path(job)
                first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
                _log(prog, f"FAILED {n}: {first}; log {failed[n]}")
                continue
            on_done(n, result)
            _log(prog, f"finished {n} (waited {time.time() - t:.0f}s)")
    return failed


def failure_message(prog: str, failed: dict[str, str], total: int) -> str:
    logs = "; ".join(f"{n}: {p}" for n, p in failed.items())
    return (
        f"{len(failed)} of {total} jobs of {prog} failed ({logs}); the finished ones are kept and a rerun "
        "resubmits only the failed ones"
    )
