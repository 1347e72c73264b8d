"""The rehearsal of the device call (benchmarks/device_call.sh; README "The GPU check"): the command a
GPU session gets one chance to run, run here on the CPU with --dry-run sizes in what that machine
offers, so that it will not fail there for want of a file, a package or the network:

- a copy of the files that travel (tracked and untracked-not-ignored), with no ../shared beside it
  and no .git, `prepare` run into it (the carried .device/);
- the device image's Python imitated by tests/device_image/sitecustomize.py: only the distributions
  of tests/device_image/packages.txt importable (not lpips, streamlit, submitit, ...), nstbench from
  the copy only, no network; HOME, TORCH_HOME and the caches empty; `python3` the one command;
- what comes back: at most 8 flat files in $OUT, gpu.csv, gpu.md, paper_check.csv among them.

The paper check runs two experiments here (E5: golden_gate, the one image the GPU check does not
read; E10: training on coco100, timing, the fast network): ten would take three more minutes on two
cores. Every experiment script is still imported there (the registry), and the time limits are
the device's. NSTBENCH_REHEARSAL_FULL=1 runs all ten. What it cannot rehearse: the image's Python 3.12
and torch 2.11 (here: this environment's), CUDA.
"""

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import assets_dir, needs_assets

from nstbench.harness import registry

ROOT = Path(__file__).resolve().parents[1]
PAPER = None if os.environ.get("NSTBENCH_REHEARSAL_FULL") == "1" else ["e5_vgg_resnet", "e10_fast_vs_optimisation"]


def travelling_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [f for f in out.split("\0") if f and os.path.lexists(ROOT / f)]


def blocked_modules() -> set[str]:
    """Top-level modules of the distributions installed here that the device image lacks."""
    norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
    lines = (ROOT / "tests" / "device_image" / "packages.txt").read_text().splitlines()
    image = {norm(s) for s in lines if s.strip() and not s.startswith("#")}
    dists = importlib.metadata.packages_distributions()
    return {top for top, ds in dists.items() if top != "nstbench" and not any(norm(d) in image for d in ds)}


def run(cmd, cwd, env, timeout=600):
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, f"{cmd} exit {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p


@needs_assets
@pytest.mark.slow
def test_device_call_dry_run_in_the_device_image(tmp_path):
    box = tmp_path / "box"  # the copy's parent: no shared/ in it
    tree = box / "nstbench"
    for f in travelling_files():
        (tree / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, tree / f, follow_symlinks=False)
    # prepare here reads the real asset folder and measures what travels (git ls-files, so the copy
    # is made a repository for it); the device then gets no .git
    run(["git", "init", "-q"], tree, os.environ)
    run(["git", "add", "-A"], tree, os.environ)
    prep = run(["bash", "benchmarks/device_call.sh", "prepare"], tree, {**os.environ, "PY": sys.executable})
    shutil.rmtree(tree / ".git")
    assert "of the 64 MiB limit" in prep.stdout
    carried = tree / ".device" / "assets"

    home, bin_, out = tmp_path / "home", tmp_path / "bin", tmp_path / "out"
    for d in (home, bin_, out):
        d.mkdir()
    (bin_ / "python3").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')  # the image's one python3
    (bin_ / "python3").chmod(0o755)
    log = tmp_path / "opened.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NSTBENCH_", "PYTHON", "TORCH"))}
    env.update(
        PATH=f"{bin_}{os.pathsep}{os.environ['PATH']}",
        PYTHONPATH=str(tree / "tests" / "device_image"),
        HOME=str(home),
        XDG_CACHE_HOME=str(home / ".cache"),
        TORCH_HOME=str(home / "torch"),
        OUT=str(out),
        **({"PAPER_CHECK_ONLY": " ".join(PAPER)} if PAPER else {}),
        DEVICE_REHEARSAL_BLOCKED=" ".join(sorted(blocked_modules())),
        DEVICE_REHEARSAL_CHECKOUT=str(tree),
        DEVICE_REHEARSAL_LOG=str(log),
        DEVICE_REHEARSAL_WATCH=os.pathsep.join([str(carried), str(assets_dir())]),
    )
    # the imitation holds: no lpips (when installed here), no network
    probe = "import socket\ntry:\n import lpips\nexcept ImportError: pass\nelse: raise SystemExit('lpips')\n"
    probe += (
        "try:\n socket.create_connection(('pypi.org', 443), 3)\nexcept OSError: pass\nelse: raise SystemExit('net')"
    )
    run(["python3", "-c", probe], tree, env)

    p = run(["bash", "benchmarks/device_call.sh", "run", "--dry-run"], tree, env)
    assert not (box / "shared").exists() and not (tree / ".git").exists()

    files = sorted(f.name for f in out.iterdir())
    assert files == ["device_call.log", "gpu.csv", "gpu.md", "paper_check.csv", "paper_check.md"], files
    assert all(f.is_file() and f.stat().st_size < 16 * 2**20 for f in out.iterdir())
    text = (out / "device_call.log").read_text()
    assert "LPIPS: not available" in text and "lpips package is not installed" in text, text[:2000]

    gpu = pd.read_csv(out / "gpu.csv")
    assert gpu["dry_run"].astype(bool).all() and set(gpu["device"]) == {"cpu"}
    assert {"bands", "gatys", "fast", "e7", "estimate", "target", "total"} <= set(gpu["section"])
    assert not gpu["met"].astype(str).isin(["failed", "stopped"]).any(), gpu[["section", "method", "note"]]
    assert "DRY RUN" in (out / "gpu.md").read_text()

    paper = pd.read_csv(out / "paper_check.csv")
    assert list(paper["experiment"]) == (PAPER or list(registry.specs()))
    assert (paper["rc"] == 0).all(), paper[["experiment", "rc", "last_line"]].to_string()
    assert paper["argv"].str.startswith("--profile smoke").all()

    # every prepared asset was read, and nothing from the real asset folder
    read = {Path(line) for line in log.read_text().splitlines()}
    images = {f for d in ("content", "style") for f in (carried / d).iterdir()}
    assert images and images <= read, sorted(str(f) for f in images - read)
    assert any(f.is_relative_to(carried / "coco100") for f in read)
    assert not [f for f in read if not f.is_relative_to(carried)], sorted(read)[:5]
    print(p.stdout[-1500:])
