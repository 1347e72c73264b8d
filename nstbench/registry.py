"""The experiments of experiments/*.py, read from the `SPEC` each script declares (experiment.Spec).

Everything that lists experiments reads this registry: the report builder (which experiments each
source's report shows), the claims index (which experiment evaluates a claim), the tests'
parametrisation and `nstbench experiments`. The Makefile finds the same scripts by their file
names (experiments/eN_*.py -> target eN). Adding an experiment is adding one such file.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from functools import lru_cache
from pathlib import Path
from types import ModuleType

from .experiment import Spec

EXPERIMENTS_DIR = Path(__file__).resolve().parents[1] / "experiments"  # the repository's scripts
_SCRIPT = re.compile(r"^e(\d+)_\w+\.py$")


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
    from .claims import CLAIMS
    from .report import SOURCES

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
