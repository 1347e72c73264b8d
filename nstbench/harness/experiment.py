"""Shared harness of the experiment scripts (experiments/e*.py).

A script declares itself once, as data: `SPEC = Spec(...)` at its top (name, title, the source
reports whose report shows it, the claims it evaluates, the backbones it loads, its profile table
(a frozen dataclass per profile: sizes, iteration counts, data volume; never the method), the
profile fields a command line may override, the smallest settings the tests run). The registry
(nstbench/harness/registry.py) finds the scripts and reads their SPECs: the Makefile's targets, the report
builder, the claims index and the tests' parametrisation all come from it, so a new experiment is
one new file. A script derives its settings from the core presets with dataclasses.replace and
hands a `compute(exp)` function to `Experiment.run`. The harness gives every script the same
command line, output layout, caching and crash safety:

    results/<profile>/<set>/<name>/          finished results, only ever replaced as a whole
        manifest.json             settings, cache key, profile, weight set, weights records,
                                  provenance (git commit, versions, device), wall time, files,
                                  claim verdicts
        *.csv                     tidy tables; every row has profile, weights, device, seed
        *.png                     figures (matplotlib, Agg backend) and images
    results/<profile>/<set>/.tmp-<name>-<pid>/   where a run writes; renamed into place when it
                                  finished (its lock: results/<profile>/<set>/.<name>.lock)

<set> is the weight set of the backbones that actually loaded (records.weight_set: random,
imagenet, hed, file-<sha256 prefix>, ...), so a smoke run never replaces a cpu result and a
random-weight run never replaces a stand-in one.

Caching: the cache key is a SHA-256 over the settings (profile values and overrides, presets,
images, the weights records of the backbones actually loaded, device type, seed) and over the code
(every file of the nstbench package and the script itself). A complete results folder with the
same key is not recomputed; `--force` recomputes. A run that fails or is interrupted deletes its
temp folder and leaves the previous results as they were; a killed run's temp folder is removed by
the next run of that experiment.

Executors (`--executor inline|local|slurm`, nstbench/harness/executors.py): inline computes in the running
process. Otherwise an experiment whose Spec names `units` submits them as jobs through
`map_units` (finished units kept under results/.jobs/<name>/units/, so only missing or failed ones
are resubmitted) and assembles the results here as inline does; an experiment without units is
submitted whole, as one job running the script inline. Job logs: results/.jobs/<name>/logs/.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import pandas as pd
import torch

from ..config.errors import NstbenchError
from ..config.families import weights_help
from ..config.profiles import PROFILE_NAMES, default_profile
from ..methods import metrics
from ..nets.backbones import Backbone
from ..nets.device import resolve_device
from ..nets.images import save_image, to_pil
from ..nets.precision import require_native_bf16
from ..nets.records import OutputLock, ensure_writable_dir, provenance, to_jsonable, weight_set, write_csv, write_json
from ..nets.weights import load_backbone, weights_label
from . import executors, registry
from .compute_args import add_compute_arguments, compute_from_args
from .figures import save_figure, stamp_text, weights_stamp
from .registry import Spec

# first columns of every CSV row; weights_id: family, file and hash of the row's backbone, or random
COMMON_COLUMNS = ["profile", "weights", "weights_id", "device", "seed"]
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # nstbench/, its subpackages and data/


def pyplot():
    """matplotlib.pyplot on the Agg backend (files only; no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def code_hash(script: str | Path) -> str:
    """SHA-256 over the nstbench package's source and data files and the experiment script."""
    h = hashlib.sha256()
    files = sorted(p for p in PACKAGE_DIR.rglob("*") if p.is_file() and p.suffix in (".py", ".json"))
    named = [(str(p.relative_to(PACKAGE_DIR)), p) for p in files] + [("script:" + Path(script).name, Path(script))]
    for label, p in named:  # names relative to the package: the key does not depend on where the clone is
        h.update(label.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def peak_memory_bytes(device: torch.device) -> int | None:
    """The process's peak so far: CUDA tensors (the caching allocator's peak allocation) on a GPU,
    the resident set on the CPU (Linux reports ru_maxrss in KiB)."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    try:
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
    except (ImportError, OSError):
        return None


def result_dir(root: str | Path, profile: str, wset: str, name: str) -> Path:
    """Where an experiment's finished results live: <root>/<profile>/<weight set>/<name>/ (the one
    place that spells the layout; the report builder and benchmarks/paper_check.py read it too)."""
    return Path(root) / profile / wset / name


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(to_jsonable(obj), sort_keys=True, default=str).encode()).hexdigest()


def experiment_parser(spec: Spec, description: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=spec.name, description=(description or spec.title).strip().splitlines()[0])
    ap.add_argument(
        "--profile",
        choices=list(PROFILE_NAMES),
        default=None,
        help="smoke (CI, minutes), cpu (smaller but faithful), paper (the source's sizes); "
        "default paper with --device cuda, else cpu",
    )
    ap.add_argument("--weights", default="auto", help="backbone weights: " + weights_help())
    ap.add_argument("--device", default="cpu", help="cpu | cuda (default cpu)")
    ap.add_argument(
        "--out",
        default="results",
        help="results root; this experiment writes <out>/<profile>/<weight set>/%s/" % spec.name,
    )
    ap.add_argument("--seed", type=int, default=0, help="seed for random weights and noise (default 0)")
    ap.add_argument("--force", action="store_true", help="recompute even if the results are up to date")
    for opt, typ in spec.options.items():
        default = (os.environ.get("NSTBENCH_DATA") or None) if opt == "data" else None
        ap.add_argument(
            "--" + opt.replace("_", "-"),
            dest=opt,
            type=typ,
            default=default,
            help=f"override the profile's {opt}" + (" (default $NSTBENCH_DATA)" if opt == "data" else ""),
        )
    ap.add_argument("--progress-every", type=int, help="progress line every N steps (default: the profile's)")
    ap.add_argument(
        "--threads",
        type=int,
        help="torch CPU threads (default torch's; 1 is often faster on a machine shared with other jobs)",
    )
    add_compute_arguments(ap, "every network of the experiment", auto=True)
    executors.add_job_arguments(ap, spec.units)
    return ap


def thin_curve(df: pd.DataFrame, rows: int, step: str = "step") -> pd.DataFrame:
    """About `rows` evenly spaced rows of a per-step curve, keeping the first and last step
    (a paper-profile training has 20k steps; a figure and a committed CSV need a few hundred)."""
    stride = max(1, len(df) // rows)
    return df[(df[step] % stride == 0) | (df[step] == df[step].max()) | (df[step] == df[step].min())]


def _terminated(signum, frame):
    raise SystemExit(128 + signum)  # unwinds like an exception: Experiment.run removes its temp folder


def cli(fn: Callable[[list[str] | None], Any], argv: list[str] | None, prog: str) -> int:
    """Run fn(argv) as a command: user errors are one line and exit status 2; SIGTERM (kill, a CI
    timeout) ends the run as cleanly as Ctrl-C does."""
    try:
        previous = signal.signal(signal.SIGTERM, _terminated)
    except ValueError:  # not the main thread: leave signals alone
        previous = None
    try:
        fn(argv)
    except NstbenchError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; previous results left as they were", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Experiment:
    """One experiment run: parsed options, profile, backbones, and the writers for its outputs.

    Attributes a script uses: `profile` (its frozen profile dataclass, overrides applied),
    `profile_name`, `args`, `device` (torch.device), `compute` (compute.Compute: how every
    network runs; hand it to make_gatys_loss / run_preset / training), `seed`, `settings` (a dict the script fills
    before `run`; it goes into the cache key and the manifest), `dir` (the temp folder, during
    compute only), `progress_every`.
    """

    def __init__(self, spec: Spec, script: str | Path, description: str, argv: list[str] | None):
        self.spec = spec
        name = self.name = spec.name
        self.script = Path(script).resolve()
        if self.script.stem != name:
            raise RuntimeError(f"{self.script.name} declares Spec(name={name!r}): the name must be the file's stem")
        self.title = spec.title
        self.args = experiment_parser(spec, description).parse_args(argv)
        self.argv = list(sys.argv[1:] if argv is None else argv)
        self.profile_name = self.args.profile or default_profile(self.args.device)
        self.overrides = {k: getattr(self.args, k) for k in spec.options if getattr(self.args, k) is not None}
        self.profile = dataclasses.replace(spec.profiles[self.profile_name], **self.overrides)
        for k, v in self.overrides.items():
            if isinstance(v, int) and v < 1:
                raise NstbenchError(f"--{k} must be at least 1, got {v}")
        self.profile_label = self.profile_name + (
            "(" + ",".join(f"{k}={v}" for k, v in self.overrides.items()) + ")" if self.overrides else ""
        )
        self.jobs = executors.job_options(self.args)
        self.device = self._driver_device()
        self.device_type = torch.device(self.args.device).type  # the jobs' device: in the key and the rows
        if self.args.threads is not None:  # speed only, not results: recorded in provenance, not in the key
            if self.args.threads < 1:
                raise NstbenchError(f"--threads must be at least 1, got {self.args.threads}")
            torch.set_num_threads(self.args.threads)
        self.compute = compute_from_args(self.args, self.device_type)
        self.bf16_support = None  # why bf16 is (or is allowed to be) used: for the manifest
        if self.compute.dtype == "bfloat16" and self.device.type == self.device_type:  # else the job checks
            self.bf16_support = require_native_bf16(self.device, self.args.allow_slow_bf16)
        self.seed = self.args.seed
        if self.args.progress_every is not None and self.args.progress_every < 0:
            raise NstbenchError(f"--progress-every must be at least 0, got {self.args.progress_every}")
        self.progress_every = (
            self.args.progress_every
            if self.args.progress_every is not None
            else getattr(self.profile, "progress_every", 0)
        )
        self.archs = tuple(spec.archs)
        # arch -> the weight family `--weights imagenet|auto` loads for it (the presets' `weights`);
        # unlisted archs get torchvision's (keras for keras_resnet50)
        self.families = dict(spec.families)
        self.claim_ids = tuple(spec.claims)
        self.settings: dict = {}
        self.out_root = Path(self.args.out)
        # <out>/<profile>/<weight set>/<name>: the set is known once the backbones loaded (run)
        self.weight_set: str | None = None
        self.final_dir: Path | None = None
        self.dir: Path | None = None
        self._key = ""  # the cache key, set by run (map_units keys the units with it)
        self._backbones: dict[tuple[str, str], Backbone] = {}
        self._manifest: dict = {"claims": {}, "notes": [], "results": {}}

    def _driver_device(self) -> torch.device:
        """The requested device; under local/slurm a driver without CUDA (a login node) assembles on the
        CPU while the jobs get the requested device."""
        try:
            return resolve_device(self.args.device)
        except NstbenchError:
            if self.jobs.executor not in ("local", "slurm") or not self.args.device.startswith("cuda"):
                raise
            print(
                f"[{self.name}] no CUDA here: the jobs run on {self.args.device}, this driver on the cpu",
                file=sys.stderr,
                flush=True,
            )
            return torch.device("cpu")

    @property
    def jobs_dir(self) -> Path:
        """results/.jobs/<name>/: job logs (logs/) and finished units (units/)."""
        return self.out_root / ".jobs" / self.name

    def map_units(self, fn: Callable[..., Any], units: Mapping[str, dict]) -> dict[str, Any]:
        """{name: fn(self, **kwargs)} for the independent units of this experiment: in this process
        (inline), or one job each (local, slurm: one array; debug). fn must be a module-level function
        of the script, its kwargs and result picklable; it may use the backbones, device, seed and
        profile of the experiment it is given, never its output folder."""
        if self.jobs.executor == "inline":
            return {name: fn(self, **kw) for name, kw in units.items()}
        if fn.__qualname__ != fn.__name__ or fn.__name__ == "<lambda>":  # a job finds it by name in the script
            raise RuntimeError(f"{self.name}: unit function {fn.__qualname__} must be defined at the top of its script")
        store = executors.UnitStore(self.jobs_dir / "units")
        keys = {n: executors.unit_key(self._key, fn.__name__, n) for n in units}
        results, calls = {}, {}
        argv = executors.unit_argv(self.argv, self.jobs)
        for name, kw in units.items():
            current, result = (False, None) if self.args.force else store.load(name, keys[name])
            if current:
                results[name] = result
                print(f"[{self.name}] unit {name}: current result kept, not resubmitted", file=sys.stderr, flush=True)
            else:
                calls[name] = (str(self.script), argv, fn.__name__, dict(kw))
        if calls:

            def done(name, result):
                store.save(name, keys[name], result)
                results[name] = result

            ex = executors.make_executor(self.jobs, self.jobs_dir / "logs", self.name)
            failed = executors.run_jobs(ex, self.jobs, call_unit, calls, self.name, done)
            if failed:
                raise NstbenchError(executors.failure_message(self.name, failed, len(units)))
        return {name: results[name] for name in units}

    def _submit_whole(self) -> None:
        """The whole experiment as one job (the script inline, which writes the results itself)."""
        ex = executors.make_executor(self.jobs, self.jobs_dir / "logs", self.name)
        calls = {self.name: (str(self.script), executors.unit_argv(self.argv, self.jobs))}
        failed = executors.run_jobs(ex, self.jobs, executors.call_script, calls, self.name, lambda n, r: None)
        if failed:
            raise NstbenchError(executors.failure_message(self.name, failed, 1))

    # ---- backbones ------------------------------------------------------------------------------

    def backbone(self, arch: str, pooling: str = "max") -> Backbone:
        """The backbone for `arch` (loaded once per pooling, with the --weights request and --seed,
        on the device); pooling "avg" is Gatys et al.'s average-pooling variant."""
        if (arch, pooling) not in self._backbones:
            if arch not in self.archs:
                raise RuntimeError(f"{self.name}: backbone {arch} not declared in archs={self.archs}")
            family = self.families.get(arch)
            kw = {"family": family} if family else {}
            self._backbones[(arch, pooling)] = load_backbone(
                arch, self.args.weights, seed=self.seed, pooling=pooling, **kw
            ).to(self.device)
        return self._backbones[(arch, pooling)]

    def run_options(self) -> dict:
        """What every optimisation and training of this run shares: the seed, the compute and the
        progress interval (keywords of stylize.run_preset, timing.time_optimisation and
        training.train_and_apply)."""
        return {"seed": self.seed, "compute": self.compute, "progress_every": self.progress_every}

    def weights_kind(self, arch: str) -> str:
        return self.backbone(arch).weights["kind"]

    def tag(self, arch: str) -> dict:
        """The common columns for a row computed with backbone `arch`."""
        return {
            "profile": self.profile_label,
            "weights": self.weights_kind(arch),
            "weights_id": weights_label(self.backbone(arch).weights),
            "device": self.device_type,
            "seed": self.seed,
        }

    def weights_records(self) -> dict:
        return {arch: self.backbone(arch).weights for arch in self.archs}

    # ---- outputs (inside compute) ---------------------------------------------------------------

    def path(self, name: str) -> Path:
        if self.dir is None:
            raise RuntimeError("outputs are written inside Experiment.run only")
        p = self.dir / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def write_csv(self, name: str, rows: list[dict], columns: list[str]) -> pd.DataFrame:
        """A tidy CSV: the common columns first, then `columns`. Every row must carry the common ones."""
        for r in rows:
            missing = [c for c in COMMON_COLUMNS if c not in r]
            if missing:
                raise RuntimeError(f"{name}: row lacks {missing} (merge exp.tag(arch) into every row)")
        cols = COMMON_COLUMNS + [c for c in columns if c not in COMMON_COLUMNS]
        write_csv(self.path(name), rows, cols)
        return pd.read_csv(self.path(name))

    def figure(self, fig, name: str) -> Path:
        """Every figure of an experiment is saved here: stamped with its weights and profile (figures.py)."""
        stamp = stamp_text(weights_stamp(self.weights_records()), self.profile_label)
        return save_figure(fig, self.path(name), stamp)

    def image(self, x_unit: torch.Tensor, name: str) -> Path:
        return save_image(x_unit.detach().cpu(), self.path(name))

    def panels(self, name: str, title: str, items: list[tuple[str, torch.Tensor]]) -> Path:
        """One row of labelled images ([1, 3, H, W] unit space) as figure `name`."""
        plt = pyplot()
        fig, axes = plt.subplots(1, len(items), figsize=(2.6 * len(items), 2.4), squeeze=False)
        for ax, (label, img) in zip(axes[0], items):
            ax.imshow(to_pil(img.detach().cpu()))
            ax.set_title(label, fontsize=8)
            ax.axis("off")
        fig.suptitle(title, fontsize=9)
        return self.figure(fig, name)

    def note(self, text: str) -> None:
        """A sentence for the manifest (what differs from the source, what the profile reduced)."""
        if text not in self._manifest["notes"]:
            self._manifest["notes"].append(text)

    def content_quality(self, out: torch.Tensor, content: torch.Tensor) -> list[dict]:
        """Per output image (unit space, [B, 3, H, W]) its distance to the content: ssim_content,
        psnr_content and lpips_content (empty when LPIPS cannot run here; see `lpips`)."""
        ss, ps = metrics.ssim(out, content).tolist(), metrics.psnr(out, content).tolist()
        lp = self.lpips(out, content)
        return [{"ssim_content": a, "psnr_content": b, "lpips_content": c} for a, b, c in zip(ss, ps, lp)]

    def lpips(self, x: torch.Tensor, y: torch.Tensor, column: str = "lpips_content") -> list[float | None]:
        """LPIPS per image pair when its weights are on this machine (metrics.lpips_status); otherwise
        empty cells, and a note in the manifest (and so in the report) saying why."""
        d = metrics.lpips_distance(x, y)
        if d is None:
            self.note(f"{column} is empty: {metrics.lpips_status()[1]}")
            return [None] * max(x.shape[0], y.shape[0])
        return d.tolist()

    def record(self, key: str, value) -> None:
        """A result value for the manifest (e.g. reference numbers measured on the inputs)."""
        self._manifest["results"][key] = value

    def claim(self, claim_id: str, csv: str, where: str | None = None) -> dict:
        """Evaluate a claim on a CSV this run wrote (optionally the rows matching `where`, a pandas
        query); the verdict goes into the manifest with the csv and filter, so a report can redo it."""
        df = pd.read_csv(self.path(csv))
        if where:
            df = df.query(where)
        if claim_id not in self.claim_ids:
            raise RuntimeError(f"{self.name} evaluates {claim_id} but its Spec declares claims={self.claim_ids}")
        verdict = registry.evaluate(claim_id, df)
        kinds = sorted(set(df["weights"].astype(str))) if "weights" in df.columns else []
        verdict.update(csv=csv, where=where, weights=kinds, profile=self.profile_label)
        if kinds != ["imagenet"]:
            verdict["caveat"] = (
                f"measured with {'/'.join(kinds) or 'unknown'} backbone weights, not ImageNet: "
                "not a test of the source's claim as stated"
            )
        self._manifest["claims"][claim_id] = verdict
        print(
            f"[{self.name}] {claim_id}: {verdict['verdict']} ({verdict['measured']})"
            + (" [not ImageNet weights]" if "caveat" in verdict else ""),
            file=sys.stderr,
            flush=True,
        )
        return verdict

    # ---- the run --------------------------------------------------------------------------------

    def _cleanup_stale(self) -> None:
        """Remove temp folders of dead runs of this experiment; restore results a crash left aside."""
        for p in self.final_dir.parent.glob(f".tmp-{self.name}-*"):
            pid = p.name.rsplit("-", 1)[-1]
            if pid.isdigit() and not _pid_alive(int(pid)):
                shutil.rmtree(p, ignore_errors=True)
        for p in self.final_dir.parent.glob(f".old-{self.name}-*"):
            pid = p.name.rsplit("-", 1)[-1]
            if pid.isdigit() and not _pid_alive(int(pid)):
                if not self.final_dir.exists():  # killed between the two renames of _swap
                    os.replace(p, self.final_dir)
                else:
                    shutil.rmtree(p, ignore_errors=True)

    def _is_current(self, key: str) -> bool:
        m = self.final_dir / "manifest.json"
        if not m.is_file():
            return False
        try:
            old = json.loads(m.read_text())
        except (OSError, json.JSONDecodeError):
            return False
        return (
            old.get("status") == "complete"
            and old.get("cache_key") == key
            and all((self.final_dir / f).is_file() for f in old.get("files", []))
        )

    def _swap(self, tmp: Path) -> None:
        """tmp -> final. The old folder is set aside first and deleted only after the new one is in place."""
        if self.final_dir.exists():
            old = self.final_dir.parent / f".old-{self.name}-{os.getpid()}"
            if old.exists():
                shutil.rmtree(old)
            os.replace(self.final_dir, old)
            os.replace(tmp, self.final_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, self.final_dir)

    def run(self, compute: Callable[["Experiment"], None]) -> Path:
        started = time.time()
        ensure_writable_dir(self.out_root)
        # The backbones load before the lock: `auto` may fall back, so the weight set, and with it the
        # folder (and the lock, temp and old folders beside it), is known only once they have loaded.
        weights = self.weights_records()
        self.weight_set = weight_set(weights)
        self.final_dir = result_dir(self.out_root, self.profile_name, self.weight_set, self.name)
        ensure_writable_dir(self.final_dir.parent)
        what = f"{self.script.name} --out {self.out_root} ({self.profile_name}/{self.weight_set})"
        with OutputLock(self.final_dir.parent / f".{self.name}.lock", what) as lock:
            self._lock = lock
            return self._run_locked(compute, started, weights)

    def _run_locked(self, compute: Callable[["Experiment"], None], started: float, weights: dict) -> Path:
        self._cleanup_stale()
        key, code = self._cache_key(weights)
        if not self.args.force and self._is_current(key):
            print(
                f"[{self.name}] up to date: {self.final_dir} (cache key {key[:12]}); skipped "
                "(use --force to recompute)",
                file=sys.stderr,
                flush=True,
            )
            return self.final_dir
        self._key = key
        if self.jobs.executor != "inline" and self.spec.units is None:
            return self._run_as_one_job(key)
        kinds = sorted({w["kind"] for w in weights.values()})
        self._announce(kinds)
        tmp = self.final_dir.parent / f".tmp-{self.name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        self.dir = tmp
        try:
            torch.manual_seed(self.seed)
            compute(self)
            missing = [c for c in self.claim_ids if c not in self._manifest["claims"]]
            if missing:  # a declared claim that no run evaluated would read "not run" in the index
                raise RuntimeError(f"{self.name} declares claims {missing} but did not evaluate them")
            write_json(tmp / "manifest.json", self._final_manifest(key, code, weights, kinds, started, tmp))
            self._swap(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        finally:
            self.dir = None
        print(
            f"[{self.name}] wrote {self.final_dir} in {time.time() - started:.1f}s (weights {'/'.join(kinds)})",
            file=sys.stderr,
            flush=True,
        )
        return self.final_dir

    def _cache_key(self, weights: dict) -> tuple[str, str]:
        """(the cache key, the code hash): the settings, the code and what actually loaded (weights:
        `auto` may fall back), so a run is redone exactly when one of them changed."""
        code = code_hash(self.script)
        keyed = {
            "experiment": self.name,
            "profile": self.profile_name,
            "profile_settings": self.profile,
            "overrides": self.overrides,
            "settings": self.settings,
            "device": self.device_type,
            "compute": dataclasses.asdict(self.compute),
            "seed": self.seed,
            "weights": {a: {k: v for k, v in w.items() if k != "fallback_reason"} for a, w in weights.items()},
        }
        return _digest({"settings": keyed, "code": code}), code

    def _run_as_one_job(self, key: str) -> Path:
        """--executor local|slurm for an experiment without units: the whole script is one job,
        which writes the results folder under this run's lock."""
        print(
            f"[{self.name}] submitting the experiment as one {self.jobs.executor} job; logs under "
            f"{self.jobs_dir / 'logs'}",
            file=sys.stderr,
            flush=True,
        )
        with self._lock.lend():  # the job writes the results folder under this run's lock
            self._submit_whole()
        if not self._is_current(key):
            raise NstbenchError(
                f"the {self.name} job finished but {self.final_dir} is not complete with cache key "
                f"{key[:12]} (see its log under {self.jobs_dir / 'logs'})"
            )
        return self.final_dir

    def _announce(self, kinds: list[str]) -> None:
        print(
            f"[{self.name}] profile {self.profile_label}, weights {'/'.join(kinds)}, device {self.device} "
            f"({self.compute.describe()}), seed {self.seed} -> {self.final_dir}",
            file=sys.stderr,
            flush=True,
        )
        if kinds != ["imagenet"]:
            print(
                f"[{self.name}] NOTE: backbone weights are {'/'.join(kinds)}, not ImageNet: the numbers are not "
                "comparable with the sources' ImageNet results",
                file=sys.stderr,
                flush=True,
            )

    def _final_manifest(self, key: str, code: str, weights: dict, kinds: list[str], started: float, tmp: Path) -> dict:
        """manifest.json of a finished run written into `tmp`: settings, weights, where and how it
        ran, what the run recorded (self._manifest) and the files it wrote."""
        wall = time.time() - started
        files = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())
        return {
            "experiment": self.name,
            "title": self.title,
            "sources": list(self.spec.sources),
            "status": "complete",
            "cache_key": key,
            "code_hash": code,
            "profile": self.profile_name,
            "profile_label": self.profile_label,
            "profile_settings": self.profile,
            "overrides": self.overrides,
            "settings": self.settings,
            "weight_set": self.weight_set,
            "weights": weights,
            "weights_kind": "/".join(kinds),
            "weights_labels": {a: weights_label(w) for a, w in weights.items()},
            "imagenet": kinds == ["imagenet"],
            "device": str(self.device),
            "compute": dataclasses.asdict(self.compute) | {"bf16_support": self.bf16_support},
            "seed": self.seed,
            "executor": to_jsonable(self.jobs),
            "command": [str(self.script.name)] + self.argv,
            "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "wall_seconds": round(wall, 2),
            **self._manifest,
            "provenance": provenance(self.device),
            "peak_memory_bytes": peak_memory_bytes(self.device),
            "files": files + ["manifest.json"],
        }


def call_unit(script: str, argv: list[str], fn: str, kwargs: dict) -> Any:
    """In a job: the script's Experiment rebuilt from `argv` (inline), then script.fn(exp, **kwargs)."""
    mod = registry.load_script(script)
    exp = Experiment(mod.SPEC, script, mod.__doc__ or "", argv)
    return getattr(mod, fn)(exp, **kwargs)
