"""Run records: provenance for every output, and writes that never leave a half-written file."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Mapping

import torch

from .. import __version__
from ..config.errors import NstbenchError

# What "dirty" looks at: the code. results/ and reports/ are outputs, tracked so that a clone shows
# them, and `make reproduce` rewrites them as it goes: counting them would mark every experiment
# after the first as made by uncommitted code.
DIRTY_SCOPE = "tracked files outside results/ and reports/"


def git_commit(root: Path | None = None) -> dict:
    """Commit of the nstbench checkout and whether its code had uncommitted changes (DIRTY_SCOPE)."""
    root = root or Path(__file__).resolve().parents[2]
    code = ["--", ".", ":(exclude)results", ":(exclude)reports"]
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", *code],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None, "dirty": None}
    if sha.returncode != 0:
        return {"commit": None, "dirty": None}
    return {"commit": sha.stdout.strip(), "dirty": bool(dirty.stdout.strip()), "dirty_scope": DIRTY_SCOPE}


def weight_set(records: Mapping[str, Mapping]) -> str:
    """The name of the weight set a run's backbones form (arch -> weights record), decided once:
    results go to <out>/<profile>/<weight set>/<experiment>/ and reports never mix two sets.

    All random -> "random"; all imagenet -> "imagenet"; a stand-in among random legs (E5's ResNet50
    has no stand-in) -> the stand-in's family ("hed"); any file -> "file-<first 8 hex of its sha256>"
    (two files are two sets); any other mix -> the sorted kinds joined with "+". No backbone at all
    -> "none". A function of what loaded, not of --weights: `auto` may fall back to random."""
    kinds = sorted({str(r.get("kind")) for r in records.values()})
    files = sorted(str(r.get("sha256") or "")[:8] or "unhashed" for r in records.values() if r.get("kind") == "file")
    standins = sorted({str(r.get("family")) for r in records.values() if r.get("kind") == "standin"})
    if not kinds:
        return "none"
    if files:
        return "file-" + "+".join(dict.fromkeys(files))
    if kinds == ["random"] or kinds == ["imagenet"]:
        return kinds[0]
    if standins and set(kinds) <= {"standin", "random"}:
        return "+".join(standins)
    return "+".join(kinds)


def device_info(device: torch.device | str) -> dict:
    device = torch.device(device)
    info = {"device": str(device), "threads": torch.get_num_threads()}
    if device.type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(device)
    else:
        info["device_name"] = platform.processor() or platform.machine()
    return info


def provenance(device: torch.device | str = "cpu", **extra) -> dict:
    import numpy
    import torchvision

    return {
        "nstbench": __version__,
        **git_commit(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        **device_info(device),
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **extra,
    }


def to_jsonable(obj):
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    return obj


def atomic_write(path: Path, write: Callable[[Path], object]) -> Path:
    """write(tmp) fills a temporary file beside `path`, which then replaces `path` in one rename:
    a crash leaves the old file or the new one, never half of one. The one helper for every
    file nstbench writes (text, images, checkpoints)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def write_json(path: Path, obj) -> Path:
    return atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n")


def write_csv(path: Path, rows: list[dict], columns: list[str] | None = None) -> Path:
    columns = columns or (list(rows[0]) if rows else [])
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    return atomic_write_text(path, buf.getvalue())


# Names that say "a file": a run's --out is a folder, and `--out result.png` would create a folder
# of that name (the image goes inside it), which is never what was meant.
FILE_SUFFIXES = (
    ".png",
    ".jpg",
    ".jpeg",
    ".webp",
    ".bmp",
    ".tif",
    ".tiff",
    ".gif",
    ".pt",
    ".pth",
    ".model",
    ".onnx",
    ".json",
    ".csv",
    ".txt",
    ".md",
    ".html",
)


def check_out_name(out, writes: str) -> Path:
    """--out for a command that writes a folder: not empty, not a file name."""
    if str(out).strip() == "":
        raise NstbenchError("--out is empty; give an output folder")
    path = Path(out).expanduser()
    if path.suffix.lower() in FILE_SUFFIXES:
        raise NstbenchError(
            f"--out {out} looks like a file name, but --out is a folder ({writes} go into it); give a folder name"
        )
    if path.is_file():
        raise NstbenchError(f"--out {out} is a file; --out is a folder ({writes} go into it)")
    return path


def prepare_run_dir(
    out, command: str, overwrite: bool = False, writes: str = "output.png, curve.csv, run.json"
) -> Path:
    """The output folder of one run of `command` (stylize, train): created, writable, and not
    holding another command's run, nor a finished run of this one unless `overwrite`."""
    path = ensure_writable_dir(check_out_name(out, writes))
    run = path / "run.json"
    if run.is_file():
        try:
            old = json.loads(run.read_text())
        except (OSError, ValueError):
            old = {}
        other = old.get("command") if isinstance(old, dict) else None
        if other and other != command:
            raise NstbenchError(f"{path} holds a `{other}` run (run.json); choose another --out for `{command}`")
        if not overwrite and command == "stylize":
            raise NstbenchError(
                f"{path} already holds a {command} run; pass --overwrite to replace it "
                "(when the new run has finished) or choose another --out"
            )
    return path


def ensure_writable_dir(path: Path) -> Path:
    """Create the output folder, or fail now (before any compute) with a one-line error."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".nstbench-write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise NstbenchError(f"cannot write to output folder {path}: {e.strerror or e}") from None
    return path


LOCK_NAME = ".nstbench.lock"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


HELD_LOCKS_ENV = "NSTBENCH_HELD_LOCKS"  # lock files a driver holds for the jobs it submits (os.pathsep-separated)


class OutputLock:
    """One writer per output: a lock file (`folder/.nstbench.lock`, or any path) created with
    O_EXCL and holding the owner's pid, host and command. A second writer is refused with a
    one-line error; a lock left by a process that died on this host is stale and taken over.
    A job that a lock's holder submitted (an experiment run whole under --executor local|slurm)
    finds the path in $NSTBENCH_HELD_LOCKS and works under its driver's lock (`lend`)."""

    def __init__(self, path: Path, what: str):
        self.path, self.what = Path(path), what
        self.borrowed = False

    @contextlib.contextmanager
    def lend(self):
        """While in the block, the jobs this process submits write under this lock."""
        before = os.environ.get(HELD_LOCKS_ENV)
        held = [p for p in (before or "").split(os.pathsep) if p]
        os.environ[HELD_LOCKS_ENV] = os.pathsep.join(held + [str(self.path.resolve())])
        try:
            yield
        finally:
            if before is None:
                os.environ.pop(HELD_LOCKS_ENV, None)
            else:
                os.environ[HELD_LOCKS_ENV] = before

    def __enter__(self) -> "OutputLock":
        held = os.environ.get(HELD_LOCKS_ENV, "").split(os.pathsep)
        if str(self.path.resolve()) in held and self.path.exists():  # our driver holds it for us
            self.borrowed = True
            return self
        me = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": self.what,
            "since_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        for _ in range(2):  # the second try follows the removal of a stale lock
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                if owner is None:
                    continue  # stale (removed): try again
                raise NstbenchError(
                    f"{self.path.parent} is being written by another nstbench run (pid {owner.get('pid')} on "
                    f"{owner.get('host')}: {owner.get('command')}, since {owner.get('since_utc')}); wait for it "
                    f"or choose another output (if that process is gone, delete {self.path})"
                ) from None
            except OSError as e:
                raise NstbenchError(f"cannot create lock file {self.path}: {e.strerror or e}") from None
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(me) + "\n")
            return self
        raise NstbenchError(f"cannot take the lock {self.path}: another process keeps taking it")

    def _owner(self) -> dict | None:
        """The live owner of an existing lock, or None after removing a stale one."""
        try:
            owner = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):  # being written this instant, or garbage: a young one counts as held
            try:
                age = time.time() - self.path.stat().st_mtime
            except FileNotFoundError:
                return None
            if age < 10:
                return {"pid": "?", "host": "?", "command": "?", "since_utc": "just now"}
            owner = {}
        same_host = owner.get("host") == socket.gethostname()
        if isinstance(owner.get("pid"), int) and (not same_host or _pid_alive(owner["pid"])):
            return owner
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        return None

    def __exit__(self, *exc) -> bool:
        if self.borrowed:
            return False
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        return False


def output_lock(folder: Path, what: str) -> OutputLock:
    """The lock of an output folder (created by ensure_writable_dir first)."""
    return OutputLock(Path(folder) / LOCK_NAME, what)


@contextlib.contextmanager
def run_dir(out, command: str, overwrite: bool = False, writes: str = "output.png, curve.csv, run.json"):
    """The output folder of one run (prepare_run_dir), locked while the run writes it. A folder
    this call created is removed again when the run fails before writing anything into it."""
    existed = Path(str(out)).expanduser().exists() if str(out).strip() else True
    path = prepare_run_dir(out, command, overwrite, writes)
    try:
        with output_lock(path, command):
            yield path
    except BaseException:
        if not existed:
            try:
                path.rmdir()  # only when empty
            except OSError:
                pass
        raise
