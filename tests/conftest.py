"""Shared test setup: the local asset folder, no network, fixed threads, small random backbones."""

import os
from pathlib import Path

import pytest

# Idle OpenMP threads sleep instead of spinning: on a shared 2-core machine spinning threads steal
# the cores from the work (measured: the band tests went from 2m30 to 36 s under load, same numbers).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402  (after OMP_WAIT_POLICY, which OpenMP reads when torch loads)

from nstbench.interfaces.cli import main  # noqa: E402
from nstbench.nets.precision import bf16_support  # noqa: E402

_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "assets"
if "NSTBENCH_ASSETS" not in os.environ and (_SHARED / "SOURCES.md").is_file():
    os.environ["NSTBENCH_ASSETS"] = str(_SHARED)
os.environ.setdefault("NSTBENCH_OFFLINE", "1")  # `auto` weights never try the network in tests
# Fixed threads: reproducible float sums. OMP_NUM_THREADS, when set, chooses the count (the suite
# must pass with 1 and 2 threads: `OMP_NUM_THREADS=1 make test`).
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or min(2, os.cpu_count() or 1)))


def assets_dir() -> Path | None:
    p = os.environ.get("NSTBENCH_ASSETS")
    return Path(p) if p and Path(p).is_dir() else None


needs_assets = pytest.mark.skipif(assets_dir() is None, reason="no local asset folder (set NSTBENCH_ASSETS)")
BF16_NATIVE, BF16_WHY = bf16_support(torch.device("cpu"))


def stylize_argv(steps: int, size: int, *extra: str) -> list[str]:
    """`nstbench stylize` of the tests' smallest real run: upes, octopus + hockney, random weights."""
    return ["stylize", "--preset", "upes", "--content", "octopus", "--style", "hockney", "--weights", "random"] + [
        "--steps", str(steps), "--size", str(size), *extra,
    ]  # fmt: skip


needs_native_bf16 = pytest.mark.skipif(not BF16_NATIVE, reason=f"bf16 tests skipped: {BF16_WHY}")


@pytest.fixture(scope="session")
def vgg19_random():
    from nstbench.nets.weights import load_backbone

    return load_backbone("vgg19", "random", seed=0)


@pytest.fixture(scope="session")
def vgg16_random():
    from nstbench.nets.weights import load_backbone

    return load_backbone("vgg16", "random", seed=0)


@pytest.fixture(scope="session")
def resnet50_random():
    from nstbench.nets.weights import load_backbone

    return load_backbone("resnet50", "random", seed=0)


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module (`pytestmark = pytest.mark.usefixtures("one_thread")`): on a
    shared 2-core machine two spinning OpenMP threads are much slower than one."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def load_script(name: str):
    """experiments/<name>.py as a module (its main() is what the tests run; its SPEC describes it)."""
    from nstbench.harness.registry import load_script as load

    return load(name)


@pytest.fixture
def shared_backbones(monkeypatch, request):
    """The experiment harness gets the session's random backbones instead of building new ones
    (each is built on first use)."""
    import nstbench.harness.experiment as harness

    real = harness.load_backbone

    def load(arch, weights="auto", seed=0, pooling="max", family=None):
        if weights == "random" and seed == 0 and pooling == "max" and arch in ("vgg19", "vgg16", "resnet50"):
            return request.getfixturevalue(f"{arch}_random")  # random weights: the family does not matter
        return real(arch, weights, seed=seed, pooling=pooling, family=family)

    monkeypatch.setattr(harness, "load_backbone", load)


def check_lpips_column(out: Path, table: str = "table.csv") -> None:
    """An experiment's lpips_content column: filled when LPIPS can run here, otherwise empty with
    a manifest note that gives the reason (tests run offline, so it is empty unless the AlexNet
    weights happen to be cached)."""
    import json

    import pandas as pd

    from nstbench.methods import metrics

    col = pd.read_csv(out / table)["lpips_content"]
    ok, reason = metrics.lpips_status()
    notes = json.loads((out / "manifest.json").read_text())["notes"]
    if ok:
        assert col.notna().all() and (col >= 0).all()
    else:
        assert col.isna().all() and f"lpips_content is empty: {reason}" in notes


def run_cli(capsys, argv) -> tuple[int, str, str]:
    """The command line in-process: (exit code, stdout, stderr)."""
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def one_line_error(rc: int, err: str, *needles: str) -> str:
    """Exit 2 and exactly one stderr line: `nstbench: error: ...` holding every needle, no traceback."""
    assert rc == 2, err
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("[train ")]  # data log lines
    assert len(lines) == 1 and lines[0].startswith("nstbench: error: "), err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]
