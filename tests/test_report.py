"""The report builder on a synthetic results folder: claims re-evaluated, banner, self-contained HTML."""

import json

import numpy as np
from PIL import Image

from nstbench.report import RANDOM_BANNER, build_reports


def _fake_e1(results, weights="random", imagenet=False):
    d = results / "e1_tv_gamma"
    d.mkdir(parents=True)
    rows = [
        "profile,weights,device,seed,gamma,hf_fraction",
        *[f"smoke,{weights},cpu,0,{g},{hf}" for g, hf in [(0, 0.30), (1, 0.25), (10, 0.2), (100, 0.1), (1000, 0.05)]],
    ]
    (d / "table.csv").write_text("\n".join(rows) + "\n")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(d / "grid.png")
    manifest = {
        "experiment": "e1_tv_gamma",
        "title": "TV gamma sweep",
        "status": "complete",
        "profile": "smoke",
        "profile_label": "smoke",
        "weights_kind": weights,
        "imagenet": imagenet,
        "device": "cpu",
        "seed": 0,
        "wall_seconds": 1.0,
        "notes": ["a note"],
        "provenance": {"commit": "abc", "torch": "x"},
        "settings": {"preset": {"name": "hust", "source": "000", "backbone": "vgg19", "weights": "keras"}},
        "claims": {"C1": {"csv": "table.csv", "where": None, "verdict": "stale value the builder must not trust"}},
        "files": ["table.csv", "grid.png", "manifest.json"],
    }
    (d / "manifest.json").write_text(json.dumps(manifest))
    return d


def test_reports_from_results(tmp_path):
    results, out = tmp_path / "results", tmp_path / "reports"
    _fake_e1(results)
    (results / "e4_init").mkdir()
    (results / "e4_init" / "manifest.json").write_text(json.dumps({"status": "running"}))  # incomplete: ignored
    written = {p.name for p in build_reports(results, out)}
    assert written == {
        "index.md",
        "hust.md",
        "iitb.md",
        "nyu.md",
        "upes.md",
        "yonsei.md",
        "gatys2016.md",
        "johnson2016.md",
        "index.html",
    }
    index = (out / "index.md").read_text()
    c1 = next(line for line in index.splitlines() if line.startswith("| C1 "))
    assert "| holds |" in c1 and "random" in c1 and "smoke" in c1  # re-evaluated from the CSV
    assert "| C6 " in index and "not run" in next(row for row in index.splitlines() if row.startswith("| C6 "))
    hust = (out / "hust.md").read_text()
    assert RANDOM_BANNER in hust and RANDOM_BANNER in index
    assert "49.43" in hust  # the source's own numbers beside ours
    assert "](../results/e1_tv_gamma/grid.png)" in hust
    # which preset and which weights produced the numbers
    assert "Presets: `hust` (source weights family: keras); this run's backbone weights: **random**." in hust
    assert "Not run yet" in (out / "nyu.md").read_text()
    gatys = (out / "gatys2016.md").read_text()  # the official code's printed trajectory, quoted
    assert "368493.78125" in gatys and "1388532.5" in gatys and "e8_reconstruction" in gatys
    assert (
        "e8_reconstruction" in (out / "yonsei.md").read_text() and "Not run yet" in (out / "johnson2016.md").read_text()
    )
    c11 = next(line for line in index.splitlines() if line.startswith("| C11 "))
    assert "not run" in c11 and "make e8" in c11
    page = (out / "index.html").read_text()
    assert "data:image/png;base64," in page and 'src="http' not in page and "<table>" in page


def test_imagenet_results_carry_no_banner(tmp_path):
    results, out = tmp_path / "results", tmp_path / "reports"
    _fake_e1(results, weights="imagenet", imagenet=True)
    build_reports(results, out)
    assert RANDOM_BANNER not in (out / "hust.md").read_text()
