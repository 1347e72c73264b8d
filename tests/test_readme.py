"""The README's Quick start commands and its Python block, run as written (in a fresh folder, with
no NSTBENCH_ASSETS: the asset folder beside the clone is found as a fresh shell would find it)."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import needs_assets

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
pytestmark = needs_assets


def _block(heading: str, lang: str) -> str:
    section = README.split(f"## {heading}\n", 1)[1]
    return re.search(rf"```{lang}\n(.*?)```", section, re.S).group(1)


def _env():
    env = {k: v for k, v in os.environ.items() if k != "NSTBENCH_ASSETS"}
    # this checkout's package, as `make install` would install it; no network in tests
    return dict(env, PYTHONPATH=str(ROOT), NSTBENCH_OFFLINE="1", OMP_NUM_THREADS="1")


def test_quick_start_commands_run_as_written(tmp_path):
    if not (ROOT.parent / "shared" / "assets" / "SOURCES.md").is_file():
        pytest.skip("no ../shared/assets beside this clone")
    commands = [
        ln.split("  #")[0].strip()
        for ln in _block("Quick start", "bash").splitlines()
        if ln.startswith(".venv/bin/nstbench")
    ]
    assert len(commands) == 6
    for cmd in commands + commands[3:]:  # the runs pasted twice: the second replaces the first's outputs
        argv = [sys.executable, "-m", "nstbench"] + shlex.split(cmd)[1:]
        r = subprocess.run(argv, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, (cmd, r.stderr)
        assert "Traceback" not in r.stderr
    assert (tmp_path / "runs" / "first" / "output.png").is_file()
    assert (tmp_path / "runs" / "mosaic" / "transformer.pt").is_file()
    assert (tmp_path / "runs" / "chelsea.png").is_file()


def test_python_block_runs_as_written(tmp_path):
    code = _block("Python API", "python")
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr
    first, second = r.stdout.strip().splitlines()
    assert first.startswith("torch.Size([1, 3, 48, 71])") and first.endswith(" random")
    assert "'upes'" in second and "(2, 8)" in second and "torch.Size([1, 3, 43, 64])" in second
    assert (tmp_path / "runs" / "api-mosaic" / "transformer.pt").is_file()
