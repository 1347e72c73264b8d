"""The experiments of experiments/*.py, read from the `SPEC` each script declares (Spec, below),
and which experiment evaluates each claim (claims.py knows the claims, not who tests them).

Everything that lists experiments reads this registry: the report builder (which experiments each
source's report shows), the claims index (which experiment evaluates a claim), the tests'
parametrisation and `nstbench experiments`. The Makefile finds the same scripts by their file
names (experiments/eN_*.py -> target eN). Adding an experiment is adding one such file.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any, Mapping

from ..config.claims import CLAIMS, evaluate_rule
from ..config.sources import SOURCES

EXPERIMENTS_DIR = Path(__file__).resolve().parents[2] / "experiments"  # the repository's scripts
_SCRIPT = re.compile(r"^e(\d+)_\w+\.py$")


@dataclass(frozen=True)
class Spec:
    """What an experiment is, declared once at the top of its script experiments/<name>.py."""

    name: str  # the script's file stem; it writes results/<profile>/<weight set>/<name>/ and `make eN` runs it
    title: str  # one line, for reports and listings
    sources: tuple[str, ...]  # keys of sources.SOURCES whose report shows this experiment
    claims: tuple[str, ...]  # claims.CLAIMS it evaluates; a run that does not evaluate them all fails
    archs: tuple[str, ...]  # backbones it loads (their weights records go into the cache key)
    profiles: Mapping[str, Any]  # PROFILE_NAMES -> a frozen dataclass of sizes, steps, data volume
    # profile fields a command line may override (--steps, --size, --data, ...) with their types;
    # "data" defaults to $NSTBENCH_DATA (the Makefile's DATA=) where an experiment declares it
    options: Mapping[str, type] = field(default_factory=lambda: {"steps": int, "size": int})
    test_argv: tuple[str, ...] = ()  # added to `--profile smoke` by the tests: the smallest settings
    # added to `--profile paper` by benchmarks/paper_check.py: the paper profile's sizes and data,
    # a couple of steps (does every experiment fit and run on this device before the long run?)
    paper_check_argv: tuple[str, ...] = ("--steps", "2")
    # arch -> the weight family `--weights imagenet|auto` loads for it: families_of(the presets)
    families: Mapping[str, str] = field(default_factory=dict)
    # what its independent units are (e.g. "the five trainings"), submitted one job each by
    # Experiment.map_units under --executor local|slurm; None: the experiment is one job
    units: str | None = None

    @property
    def key(self) -> str:
        """ "e4" for e4_init: the Makefile target and the EXPERIMENTS.md heading (E4)."""
        return self.name.split("_", 1)[0]


def families_of(*presets) -> dict[str, str]:
    """Spec.families from the presets an experiment runs (Gatys or fast): each one's backbone ->
    its `weights`, the family its source used, so a Spec never restates a preset."""
    return {p.backbone: p.weights for p in presets}


def script_paths(root: Path = EXPERIMENTS_DIR) -> list[Path]:
    """experiments/eN_*.py in numeric order (e2 before e10)."""
    found = [p for p in Path(root).glob("e*_*.py") if _SCRIPT.match(p.name)]
    return sorted(found, key=lambda p: int(_SCRIPT.match(p.name).group(1)))


def load_script(name_or_path: str | Path) -> ModuleType:
    """An experiment script as a module (its `main(argv)` runs it; its SPEC describes it)."""
    path = Path(name_or_path)
    if not path.suffix:
        path = EXPERIMENTS_DIR / f"{name_or_path}.py"
    spec = importlib.util.spec_from_file_location(f"nstbench_experiment_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the script is executed
    spec.loader.exec_module(mod)
    return mod


@lru_cache(maxsize=None)
def specs(root: Path = EXPERIMENTS_DIR) -> dict[str, Spec]:
    """name -> Spec of every experiment script, checked for consistency (names, claims, sources)."""
    out: dict[str, Spec] = {}
    owner: dict[str, str] = {}
    for path in script_paths(root):
        s = getattr(load_script(path), "SPEC", None)
        if not isinstance(s, Spec) or s.name != path.stem:
            raise RuntimeError(f"{path} must declare SPEC = Spec(name={path.stem!r}, ...)")
        for c in s.claims:
            if c not in CLAIMS:
                raise RuntimeError(f"{path.name} declares claim {c}, which claims.CLAIMS does not define")
            if c in owner:
                raise RuntimeError(f"claim {c} is declared by both {owner[c]} and {s.name}")
            owner[c] = s.name
        unknown_sources = set(s.sources) - {src.key for src in SOURCES}
        if unknown_sources:
            raise RuntimeError(f"{path.name} names unknown sources {sorted(unknown_sources)}")
        out[s.name] = s
    return out


def experiment_of_claim(claim_id: str) -> str | None:
    """The experiment that evaluates `claim_id` (None: no script declares it yet)."""
    return next((n for n, s in specs().items() if claim_id in s.claims), None)


def claim_experiment(claim_id: str) -> str:
    """E1..E10: the experiment whose Spec declares `claim_id`, or "none"."""
    name = experiment_of_claim(claim_id)
    return name.split("_", 1)[0].upper() if name else "none"


def evaluate(claim_id: str, df) -> dict:
    """Run the rule of `claim_id` on `df` (a DataFrame); the result also carries the claim's
    source and text (claims.evaluate_rule) and the experiment that evaluates it."""
    return {**evaluate_rule(claim_id, df), "experiment": claim_experiment(claim_id)}
