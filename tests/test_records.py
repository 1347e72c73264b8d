"""Provenance: the commit a result names, and whether its code (not its outputs) had changes."""

import subprocess

from nstbench.nets.records import git_commit


def _git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_dirty_means_uncommitted_code_not_rewritten_results(tmp_path):
    repo = tmp_path / "clone"
    (repo / "nstbench").mkdir(parents=True)
    (repo / "results" / "e1").mkdir(parents=True)
    (repo / "reports").mkdir()
    for f in ("nstbench/code.py", "results/e1/table.csv", "reports/index.md"):
        (repo / f).write_text("v1\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "c")
    clean = git_commit(repo)
    assert len(clean["commit"]) == 40 and clean["dirty"] is False
    # make reproduce rewrites the committed results and reports as it goes: the code is still clean
    (repo / "results" / "e1" / "table.csv").write_text("v2\n")
    (repo / "reports" / "index.md").write_text("v2\n")
    assert git_commit(repo)["dirty"] is False
    (repo / "nstbench" / "code.py").write_text("v2\n")  # a change of the code is
    assert git_commit(repo)["dirty"] is True
    assert git_commit(tmp_path)["commit"] is None  # not a git checkout
