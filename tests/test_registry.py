"""The experiment registry: every experiments/eN_*.py declares a Spec, and everything that lists
experiments (Makefile, reports, claims index, README) agrees with it."""

import subprocess
from pathlib import Path

from nstbench.config import claims, sources
from nstbench.harness import registry, report

ROOT = Path(__file__).resolve().parents[1]


def test_every_script_declares_a_consistent_spec():
    specs = registry.specs()
    paths = registry.script_paths()
    assert list(specs) == [p.stem for p in paths] and len(specs) >= 7
    numbers = [int(s.key[1:]) for s in specs.values()]
    assert numbers == sorted(numbers)  # numeric order: e2 before e10
    for s in specs.values():
        assert s.title and set(s.profiles) == {"smoke", "cpu", "paper"} and s.archs
        assert set(s.sources) <= {src.key for src in sources.SOURCES}


def test_every_claim_belongs_to_exactly_one_experiment():
    owners = {}
    for name, s in registry.specs().items():
        for c in s.claims:
            assert c not in owners, (c, owners.get(c), name)
            owners[c] = name
    assert set(owners) == set(claims.CLAIMS)  # no claim without an experiment, none undefined
    assert all(registry.claim_experiment(c) == owners[c].split("_")[0].upper() for c in owners)


def test_every_source_report_shows_an_experiment():
    for src in sources.SOURCES:
        assert report.source_experiments(src), src.key


def test_makefile_targets_come_from_the_same_files():
    out = subprocess.run(
        ["make", "-s", "--no-print-directory", "print-EXPERIMENTS"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == [s.key for s in registry.specs().values()]


def test_readme_lists_every_experiment():
    readme = (ROOT / "README.md").read_text()
    missing = [n for n in registry.specs() if f"experiments/{n}.py" not in readme]
    assert not missing, f"README's experiment table lacks {missing}"
