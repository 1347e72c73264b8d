"""Shared test setup: the local asset folder, no network, fixed threads, small random backbones."""
import os
from pathlib import Path

import pytest

# Idle OpenMP threads sleep instead of spinning: on a shared 2-core machine spinning threads steal
# the cores from the work (measured: the band tests went from 2m30 to 36 s under load, same numbers).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402  (after OMP_WAIT_POLICY, which OpenMP reads when torch loads)

_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "assets"
if "NSTBENCH_ASSETS" not in os.environ and (_SHARED / "SOURCES.md").is_file():
    os.environ["NSTBENCH_ASSETS"] = str(_SHARED)
os.environ.setdefault("NSTBENCH_OFFLINE", "1")  # `auto` weights never try the network in tests
torch.set_num_threads(min(2, os.cpu_count() or 1))  # fixed threads: reproducible float sums


def assets_dir() -> Path | None:
    p = os.environ.get("NSTBENCH_ASSETS")
    return Path(p) if p and Path(p).is_dir() else None


needs_assets = pytest.mark.skipif(assets_dir() is None, reason="no local asset folder (set NSTBENCH_ASSETS)")


@pytest.fixture(scope="session")
def vgg19_random():
    from nstbench.weights import load_backbone

    return load_backbone("vgg19", "random", seed=0)


@pytest.fixture(scope="session")
def vgg16_random():
    from nstbench.weights import load_backbone

    return load_backbone("vgg16", "random", seed=0)


@pytest.fixture(scope="session")
def resnet50_random():
    from nstbench.weights import load_backbone

    return load_backbone("resnet50", "random", seed=0)


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module (`pytestmark = pytest.mark.usefixtures("one_thread")`): on a
    shared 2-core machine two spinning OpenMP threads are much slower than one."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
