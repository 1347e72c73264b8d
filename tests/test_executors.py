"""--executor local|slurm|debug (nstbench/harness/executors.py, Experiment.map_units): units as submitit jobs.

A tiny experiment script written here (two units, no backbone) runs through submitit's
LocalExecutor (real pickling, real processes): its units run in other processes, a unit that fails is
reported with its log and leaves the results as they were, a rerun resubmits only the failed unit,
and a unit whose result is current is not resubmitted. E2's five trainings through the
DebugExecutor give the same table as inline. A real single-node Slurm on localhost runs the same
units where slurmctld, slurmd and munge are installed and the tests run as root (else skipped)."""

import json
import os
import shutil
import textwrap

import pandas as pd
import pytest
from conftest import load_script, needs_assets

from nstbench.config.errors import NstbenchError
from nstbench.harness import executors
from nstbench.harness.registry import load_script as load_path

pytest.importorskip("submitit")

SCRIPT = textwrap.dedent('''
    """A two-unit test experiment."""
    import os
    import sys
    from dataclasses import dataclass
    from pathlib import Path

    import torch

    from nstbench.harness.experiment import COMMON_COLUMNS, Experiment, cli
    from nstbench.harness.registry import Spec


    @dataclass(frozen=True)
    class Profile:
        n: int


    SPEC = Spec(name="e99_units", title="units test", sources=(), claims=(), archs=(),
                profiles={p: Profile(n=3) for p in ("smoke", "cpu", "paper")}, options={}, units="two squares")


    def square(exp, x):
        fail = os.environ.get("E99_FAIL")
        if fail and Path(fail).exists() and x == 2:
            raise ValueError("unit x=2 told to fail")
        return {"x": x, "y": x * x * exp.profile.n, "pid": os.getpid(), "threads": torch.get_num_threads()}


    def compute(exp):
        got = exp.map_units(square, {f"x{x}": {"x": x} for x in (1, 2)})
        tag = {"profile": exp.profile_label, "weights": "none", "weights_id": "", "device": exp.device_type,
               "seed": exp.seed}
        exp.write_csv("table.csv", [{**tag, **r} for r in got.values()], ["x", "y", "pid", "threads"])


    def main(argv=None):
        return cli(lambda a: Experiment(SPEC, __file__, __doc__, a).run(compute), argv, "e99_units")
''')


@pytest.fixture
def script(tmp_path):
    p = tmp_path / "e99_units.py"
    p.write_text(SCRIPT)
    return p


def run(script, out, *extra):
    return load_path(script).main(["--profile", "smoke", "--weights", "random", "--out", str(out), *extra])


def test_local_executor_failed_unit_rerun_and_cached_units(script, tmp_path, monkeypatch, capsys):
    out, marker = tmp_path / "results", tmp_path / "fail"
    marker.touch()
    monkeypatch.setenv("E99_FAIL", str(marker))
    assert run(script, out, "--executor", "local", "--cpus", "1") == 2
    err = capsys.readouterr().err
    line = [x for x in err.splitlines() if "error:" in x]
    assert len(line) == 1 and "1 of 2 jobs of e99_units failed (x2: " in line[0] and "resubmits only" in line[0]
    log = line[0].split("(x2: ", 1)[1].split(")", 1)[0]
    assert log.startswith(str(out / ".jobs" / "e99_units" / "logs")) and "told to fail" in open(log).read()
    assert not (out / "smoke" / "none" / "e99_units").exists() and not list(out.glob("*/*/.tmp-*"))  # nothing assembled
    assert (out / ".jobs" / "e99_units" / "units" / "x1.pt").is_file()  # the finished unit is kept

    marker.unlink()
    assert run(script, out, "--executor", "local", "--cpus", "1") == 0
    err = capsys.readouterr().err
    assert (
        "unit x1: current result kept, not resubmitted" in err and "submitted x2" in err and "submitted x1" not in err
    )
    t = pd.read_csv(out / "smoke" / "none" / "e99_units" / "table.csv")
    assert list(t["y"]) == [3, 12] and os.getpid() not in set(t["pid"]) and t["pid"].nunique() == 2
    assert set(t["threads"]) == {1}  # --cpus 1: one torch thread per job
    m = json.loads((out / "smoke" / "none" / "e99_units" / "manifest.json").read_text())
    assert m["status"] == "complete" and m["executor"]["executor"] == "local"

    # results removed, units current: reassembled without a job; the same processes' numbers
    shutil.rmtree(out / "smoke" / "none" / "e99_units")
    assert run(script, out, "--executor", "local") == 0
    err = capsys.readouterr().err
    assert "] submitted" not in err and err.count("current result kept") == 2
    assert pd.read_csv(out / "smoke" / "none" / "e99_units" / "table.csv")["pid"].tolist() == t["pid"].tolist()


def test_debug_executor_whole_experiment_and_inline_units(script, tmp_path, capsys):
    # inline: the units run in this process (as every script did before executors)
    assert run(script, tmp_path / "a") == 0
    t = pd.read_csv(tmp_path / "a" / "smoke" / "none" / "e99_units" / "table.csv")
    assert set(t["pid"]) == {os.getpid()} and not (tmp_path / "a" / ".jobs").exists()
    # debug: submitit's in-process executor, pickled calls; units stored as for any executor
    assert run(script, tmp_path / "b", "--executor", "debug") == 0
    assert pd.read_csv(tmp_path / "b" / "smoke" / "none" / "e99_units" / "table.csv")["y"].tolist() == [3, 12]
    assert sorted(p.name for p in (tmp_path / "b" / ".jobs" / "e99_units" / "units").iterdir()) == ["x1.pt", "x2.pt"]
    # an experiment without units is one job running the script inline
    whole = tmp_path / "e98_whole.py"
    whole.write_text(SCRIPT.replace("e99_units", "e98_whole").replace(', units="two squares"', ""))
    assert run(whole, tmp_path / "c", "--executor", "debug") == 0
    err = capsys.readouterr().err
    assert "submitting the experiment as one debug job" in err
    whole_manifest = tmp_path / "c" / "smoke" / "none" / "e98_whole" / "manifest.json"
    assert whole_manifest.is_file()
    assert json.loads(whole_manifest.read_text())["executor"]["executor"] == "inline"


@needs_assets
def test_e2_units_through_debug_executor_equal_inline(tmp_path, monkeypatch, shared_backbones):
    mod = load_script("e2_fast_sweeps")
    argv = ["--profile", "smoke", "--weights", "random", "--steps", "1"]
    assert mod.main(argv + ["--out", str(tmp_path / "inline")]) == 0
    assert mod.main(argv + ["--out", str(tmp_path / "debug"), "--executor", "debug"]) == 0
    a, b = (
        pd.read_csv(tmp_path / d / "smoke" / "random" / "e2_fast_sweeps" / "table.csv").drop(columns="train_seconds")
        for d in ("inline", "debug")
    )
    pd.testing.assert_frame_equal(a, b)
    units = tmp_path / "debug" / ".jobs" / "e2_fast_sweeps" / "units"
    assert sorted(p.stem for p in units.iterdir()) == sorted(mod.run_name(*p) for p in mod.points())


def test_slurm_submission_file_carries_the_job_options(tmp_path, monkeypatch):
    opts = executors.JobOptions("slurm", partition="gpu", gpus=1, cpus=4, mem_gb=32, time_min=90, max_parallel=2)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # no srun: a user error, one line
    with pytest.raises(NstbenchError, match="no Slurm here"):
        executors.make_executor(opts, tmp_path, "e2_fast_sweeps")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "srun").write_text("#!/bin/sh\nexit 1\n")  # submitit only looks for it
    (tmp_path / "bin" / "srun").chmod(0o755)
    ex = executors.make_executor(opts, tmp_path, "e2_fast_sweeps")
    text = ex._make_submission_file_text("python -m x", "uid")  # submitit's sbatch file, not submitted
    for line in (
        "#SBATCH --partition=gpu",
        "#SBATCH --gpus-per-node=1",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --mem=32GB",
        "#SBATCH --time=90",
        "#SBATCH --job-name=nstbench-e2_fast_sweeps",
        f"export PYTHONPATH={executors.PACKAGE_ROOT}",
    ):
        assert line in text, line
    assert executors.unit_argv(["--executor", "slurm", "--threads=3", "--steps", "2"], opts) == [
        "--steps",
        "2",
        "--executor",
        "inline",
        "--threads",
        "4",
    ]


@pytest.fixture(scope="module")
def slurm_env():
    import slurmtools

    why = slurmtools.why_no_slurm()
    if why:
        pytest.skip(why)
    with slurmtools.local_slurm() as env:
        yield env


def test_slurm_on_localhost_failed_unit_and_rerun(script, tmp_path, monkeypatch, capsys, slurm_env):
    """A real single-node Slurm (munged, slurmctld, slurmd on localhost, tests/slurmtools.py): the
    units are one sbatch job array; a failing unit names its log; the rerun submits only it."""
    monkeypatch.setenv("SLURM_CONF", slurm_env["SLURM_CONF"])
    out, marker = tmp_path / "results", tmp_path / "fail"
    marker.touch()
    monkeypatch.setenv("E99_FAIL", str(marker))
    args = ("--executor", "slurm", "--partition", "debug", "--cpus", "1", "--time-min", "5")
    assert run(script, out, *args) == 2
    err = capsys.readouterr().err
    ids = [x.split(": job ", 1)[1].split(",")[0] for x in err.splitlines() if "] submitted" in x]
    assert len(ids) == 2 and all(i.split("_")[0].isdigit() for i in ids)  # Slurm job ids (one array)
    line = [x for x in err.splitlines() if "error:" in x][0]
    log = line.split("(x2: ", 1)[1].split(")", 1)[0]
    assert "told to fail" in open(log).read() and not (out / "smoke" / "none" / "e99_units").exists()
    marker.unlink()
    assert run(script, out, *args) == 0
    err = capsys.readouterr().err
    assert "unit x1: current result kept" in err and err.count("] submitted") == 1
    t = pd.read_csv(out / "smoke" / "none" / "e99_units" / "table.csv")
    assert list(t["y"]) == [3, 12] and os.getpid() not in set(t["pid"])


def test_job_option_errors_are_one_line(script, tmp_path, monkeypatch, capsys):
    assert run(script, tmp_path, "--executor", "local", "--cpus", "0") == 2
    assert capsys.readouterr().err.strip() == "e99_units: error: --cpus must be at least 1, got 0"
    monkeypatch.setenv("PATH", str(tmp_path))  # no srun here
    assert run(script, tmp_path, "--executor", "slurm") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("e99_units: error: --executor slurm: no Slurm here") and "Traceback" not in "".join(err)
    assert not (tmp_path / "smoke" / "none" / "e99_units").exists()


@needs_assets
def test_local_executor_runs_e7_whole_and_skips_it_when_current(tmp_path, capsys):
    """E7 has no units: one local job runs the script inline and writes the results; a rerun with
    the same settings finds them current and submits nothing."""
    mod = load_script("e7_upes")
    argv = [
        "--profile",
        "smoke",
        *mod.SPEC.test_argv,
        "--weights",
        "random",
        "--out",
        str(tmp_path),
        "--executor",
        "local",
    ]
    assert mod.main(argv) == 0
    err = capsys.readouterr().err
    assert "submitting the experiment as one local job" in err and "finished e7_upes" in err
    m = json.loads((tmp_path / "smoke" / "random" / "e7_upes" / "manifest.json").read_text())
    assert m["status"] == "complete" and m["executor"]["executor"] == "inline"  # the job ran it inline
    assert m["command"][-4:] == ["--executor", "inline", "--threads", "1"]
    assert list((tmp_path / ".jobs" / "e7_upes" / "logs").glob("*/*.err"))
    assert mod.main(argv) == 0
    err = capsys.readouterr().err
    assert "up to date" in err and "submitting" not in err
