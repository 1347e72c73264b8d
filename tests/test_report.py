"""The report builder on a synthetic results folder: claims re-evaluated, banner, one report per
(profile, weight set), the claims index's verdict columns, the HTML site."""

import json
import re
import shutil

import numpy as np
from PIL import Image

from nstbench.harness.experiment import result_dir
from nstbench.harness.report import CAVEATS, RANDOM_BANNER, build_reports

FALLING = [(0, 0.30), (1, 0.25), (10, 0.2), (100, 0.1), (1000, 0.05)]  # C1 holds
RISING = [(0, 0.05), (1, 0.1), (10, 0.2), (100, 0.25), (1000, 0.30)]  # C1 does not hold


def _fake_e1(results, weights="random", imagenet=False, profile="smoke", wset=None, hf=FALLING, family="keras"):
    d = result_dir(results, profile, wset or weights, "e1_tv_gamma")
    d.mkdir(parents=True)
    rows = [
        "profile,weights,device,seed,gamma,hf_fraction",
        *[f"{profile},{weights},cpu,0,{g},{h}" for g, h in hf],
    ]
    (d / "table.csv").write_text("\n".join(rows) + "\n")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(d / "grid.png")
    manifest = {
        "experiment": "e1_tv_gamma",
        "title": "TV gamma sweep",
        "status": "complete",
        "profile": profile,
        "profile_label": profile,
        "weights_kind": weights,
        "weights": {"vgg19": {"kind": weights, "family": {"random": "random", "standin": "hed"}.get(weights, family)}},
        "imagenet": imagenet,
        "device": "cpu",
        "seed": 0,
        "wall_seconds": 1.0,
        "notes": ["a note"],
        "provenance": {"commit": "abc", "torch": "x"},
        "settings": {"preset": {"name": "hust", "source": "000", "backbone": "vgg19", "weights": family}},
        "claims": {"C1": {"csv": "table.csv", "where": None, "verdict": "stale value the builder must not trust"}},
        "files": ["table.csv", "grid.png", "manifest.json"],
    }
    (d / "manifest.json").write_text(json.dumps(manifest))
    return d


def test_reports_from_results(tmp_path):
    results, out = tmp_path / "results", tmp_path / "reports"
    _fake_e1(results)
    incomplete = result_dir(results, "smoke", "random", "e4_init")
    incomplete.mkdir()
    (incomplete / "manifest.json").write_text(json.dumps({"status": "running"}))  # incomplete: ignored
    written = {str(p.relative_to(out)) for p in build_reports(results, out)}
    sources = ["hust", "iitb", "nyu", "upes", "yonsei", "gatys2016", "johnson2016"]
    assert written == {"index.md", "index.html"} | {f"smoke/random/{s}.{x}" for s in sources for x in ("md", "html")}
    index = (out / "index.md").read_text()
    c1 = next(line for line in index.splitlines() if line.startswith("| C1 "))
    # re-evaluated from the CSV; the smoke profile's verdicts are plumbing only
    assert "[holds (plumbing only)](smoke/random/hust.md)" in c1 and "## Profile smoke (plumbing only)" in index
    assert "| C6 " in index and "not run" in next(row for row in index.splitlines() if row.startswith("| C6 "))
    hust = (out / "smoke" / "random" / "hust.md").read_text()
    assert RANDOM_BANNER in hust and CAVEATS["random"] in index
    assert "49.43" in hust  # the source's own numbers beside ours
    assert "](../../../results/smoke/random/e1_tv_gamma/grid.png)" in hust
    # which preset and which weights produced the numbers
    assert "Presets: `hust` (source weights family: keras); this run's backbone weights: **random**." in hust
    assert "Not run yet" in (out / "smoke" / "random" / "nyu.md").read_text()
    gatys = (out / "smoke" / "random" / "gatys2016.md").read_text()  # the official code's printed trajectory, quoted
    assert "368493.78125" in gatys and "1388532.5" in gatys and "e8_reconstruction" in gatys
    assert (
        "e8_reconstruction" in (out / "smoke" / "random" / "yonsei.md").read_text()
        and "Not run yet" in (out / "smoke" / "random" / "johnson2016.md").read_text()
    )
    c11 = next(line for line in index.splitlines() if line.startswith("| C11 "))
    assert "not run" in c11 and "make e8" in c11
    page = (out / "index.html").read_text()
    assert "data:image" not in page and 'src="http' not in page and "<table>" in page


def test_imagenet_results_carry_no_banner(tmp_path):
    results, out = tmp_path / "results", tmp_path / "reports"
    _fake_e1(results, weights="imagenet", imagenet=True)
    build_reports(results, out)
    assert RANDOM_BANNER not in (out / "smoke" / "imagenet" / "hust.md").read_text()


def test_weight_sets_get_reports_of_their_own_and_index_columns(tmp_path):
    results, out = tmp_path / "results", tmp_path / "reports"
    _fake_e1(results, "random", profile="cpu", hf=FALLING)
    _fake_e1(results, "standin", profile="cpu", wset="hed", hf=RISING, family="torchvision")
    _fake_e1(results, "random", profile="smoke", hf=FALLING)
    build_reports(results, out)
    index = (out / "index.md").read_text()
    cpu = index.split("## Profile cpu")[1].split("## Profile smoke")[0]
    header = next(line for line in cpu.splitlines() if line.startswith("| claim "))
    assert header == "| claim | source | text | random | hed (stand-in) | sets differ |"
    c1 = next(line for line in cpu.splitlines() if line.startswith("| C1 "))
    cells = [c.strip() for c in c1.split(" | ")]
    assert cells[3].startswith("[holds](cpu/random/hust.md)") and cells[4].startswith(
        "[does not hold](cpu/hed/hust.md)"
    )
    assert cells[5].startswith("**differs**")
    c2 = next(line for line in cpu.splitlines() if line.startswith("| C2 "))  # not run in either set: no difference
    assert c2.endswith("|  |")
    # each verdict carries its set's caveat; the stand-in run of a torchvision-family preset the loss balance too
    assert CAVEATS["random"] in cpu and CAVEATS["hed"] in cpu and CAVEATS["loss_balance"] in cpu
    smoke = index.split("## Profile smoke (plumbing only)")[1]
    assert "hed" not in smoke.split("## Reports")[0] and "(plumbing only)](smoke/random/hust.md)" in smoke
    # the reports never mix: each names its own set's weights and links its own set's figures only
    rnd, hed = (out / "cpu" / "random" / "hust.md").read_text(), (out / "cpu" / "hed" / "hust.md").read_text()
    assert RANDOM_BANNER in rnd and "results/cpu/hed" not in rnd and "results/cpu/random/e1_tv_gamma/grid.png" in rnd
    assert hed.splitlines()[2].startswith("**Stand-in weights (hed).** " + CAVEATS["hed"])
    assert "results/cpu/random" not in hed and CAVEATS["loss_balance"] in hed and RANDOM_BANNER not in hed


def _fake_e7(results, kind, family, wset):
    d = result_dir(results, "cpu", wset, "e7_upes")
    d.mkdir(parents=True)
    (d / "printed.csv").write_text(
        "profile,weights,weights_id,device,seed,step,total_loss,source_total_loss,ratio_to_source\n"
        f"cpu,{kind},x,cpu,0,1600,3.0e6,3145412.75,0.95\ncpu,{kind},x,cpu,0,2000,2.1e6,2023719.125,1.04\n"
    )
    manifest = {
        "experiment": "e7_upes",
        "status": "complete",
        "profile": "cpu",
        "weights_kind": kind,
        "weights": {"vgg19": {"kind": kind, "family": family}},
        "settings": {"preset": {"name": "upes", "source": "004", "backbone": "vgg19", "weights": "torchvision"}},
        "claims": {},
        "files": ["printed.csv", "manifest.json"],
    }
    (d / "manifest.json").write_text(json.dumps(manifest))


def test_ratio_to_source_only_on_the_sources_own_imagenet_weights(tmp_path):
    results, out = tmp_path / "results", tmp_path / "reports"
    _fake_e7(results, "random", "random", "random")
    _fake_e7(results, "imagenet", "torchvision", "imagenet")
    build_reports(results, out)
    rnd, inet = (out / "cpu" / "random" / "upes.md").read_text(), (out / "cpu" / "imagenet" / "upes.md").read_text()
    header = next(line for line in inet.split("### printed.csv")[1].splitlines() if line.startswith("| "))
    assert header == "| step | total_loss | source_total_loss | ratio_to_source |"
    assert "| 0.95 |" in inet
    table = rnd.split("### printed.csv")[1]
    assert "Column ratio_to_source left out" in table and "| 0.95 |" not in table
    assert not any(line.startswith("|") and "ratio_to_source" in line for line in table.splitlines())
    shutil.rmtree(out)
    _fake_e7(results, "imagenet", "caffe", "imagenet-caffe")  # ImageNet weights, but not the source's family
    build_reports(results, out)
    assert "Column ratio_to_source left out" in (out / "cpu" / "imagenet-caffe" / "upes.md").read_text()


def test_html_site_pages_link_files_and_fit(tmp_path):
    results, out = tmp_path / "results", tmp_path / "reports"
    _fake_e1(results, "random", profile="cpu")
    _fake_e1(results, "standin", profile="cpu", wset="hed", hf=RISING)
    build_reports(results, out)
    index = (out / "index.html").read_text()
    pages = set(re.findall(r'href="([^"#]+\.html)', index))
    assert pages == {f"cpu/{s}/{k}.html" for s in ("random", "hed") for k in ("hust", "iitb", "nyu", "upes",
                     "yonsei", "gatys2016", "johnson2016")}  # fmt: skip
    for page in [out / "index.html"] + [out / p for p in pages]:
        text = page.read_text()
        assert page.is_file() and page.stat().st_size < 60_000 and "data:image" not in text
        assert text.count("<table>") == text.count('<div class="scroll"><table>')  # wide tables scroll in a box
        for src in re.findall(r'(?:src|href)="([^"#]+)"', text):  # every figure and page link resolves
            assert (page.parent / src).is_file(), (page, src)
    hust = (out / "cpu" / "random" / "hust.html").read_text()
    assert '<nav class="toc">' in hust and 'href="#e1_tv_gamma' not in hust and 'href="#e1-tv-gamma' in hust
    assert 'src="../../../results/cpu/random/e1_tv_gamma/grid.png"' in hust
    # the columns every row repeats are one line above the table; the note shared by sections said once
    table = hust.split('id="table-csv"')[1]
    assert "In every row: weights: random · device: cpu · seed: 0." in table
    assert "<th>gamma</th><th>hf_fraction</th></tr>" in table and "<th>seed</th>" not in table
