"""The fast-transfer experiment scripts E2 (lambda sweeps), E3 (content layer, batch size), E6 (timing).

Each runs in-process on the smoke profile (32 px training on 8 COCO images, a few steps; E6 at one
64 px size) with the session's random backbones, into tmp_path. Checked: the files, that no
training checkpoint reaches the results, the CSV schemas the claim rules read and the manifest's
verdicts (recomputed from the CSV and the recorded filter), which trainings ran with which
settings, the derived columns (seconds per epoch, extrapolated totals, speed-up), and the --data
errors. The harness itself (caching, crash safety) is tested in test_experiments_gatys.py.
"""

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import check_lpips_column, load_script, needs_assets
from PIL import Image

import nstbench.harness.experiment as harness
from nstbench.config import claims
from nstbench.harness import registry
from nstbench.harness.figures import read_stamp
from nstbench.methods import training

pytestmark = [needs_assets, pytest.mark.usefixtures("one_thread")]


def record_trainings(monkeypatch, mod):
    """Wrap train_transformer (which the scripts reach through training.train_and_apply): keep the
    preset of every call."""
    presets = []
    real = training.train_transformer

    def wrapped(preset, *a, **k):
        presets.append(preset)
        return real(preset, *a, **k)

    monkeypatch.setattr(training, "train_transformer", wrapped)
    return presets


def check_common(out: Path, csvs: list[str], profile: str) -> dict:
    m = json.loads((out / "manifest.json").read_text())
    assert m["status"] == "complete" and m["weights_kind"] == "random" and m["imagenet"] is False
    assert sorted(m["files"]) == sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert not [f for f in m["files"] if f.endswith(".pt") or f.startswith("train/")]  # no checkpoints kept
    assert not list(out.parent.glob(".tmp-*"))
    for csv in csvs:
        df = pd.read_csv(out / csv)
        assert list(df.columns[: len(harness.COMMON_COLUMNS)]) == harness.COMMON_COLUMNS, csv
        assert set(df["weights"]) == {"random"} and set(df["profile"]) == {profile}
    for cid, rec in m["claims"].items():
        df = pd.read_csv(out / rec["csv"])
        df = df.query(rec["where"]) if rec["where"] else df
        assert registry.evaluate(cid, df)["verdict"] == rec["verdict"]
        assert rec["caveat"]  # random weights: flagged as not testing the source's claim
    return m


def test_e2_fast_sweeps(tmp_path, monkeypatch, shared_backbones):
    mod = load_script("e2_fast_sweeps")
    presets = record_trainings(monkeypatch, mod)
    assert mod.main(["--profile", "smoke", "--weights", "random", "--out", str(tmp_path), "--steps", "2"]) == 0
    out = harness.result_dir(tmp_path, "smoke", "random", "e2_fast_sweeps")
    m = check_common(out, ["table.csv", "curves.csv"], "smoke(steps=2)")
    check_lpips_column(out)
    assert set(m["claims"]) == {"C2", "C3"}
    assert m["claims"]["C2"]["where"] == "sweep == 'lambda_c'" and m["claims"]["C3"]["where"] == "sweep == 'lambda_s'"

    # five trainings (the base point 2/40 shared), HUST otherwise unchanged, 2 steps of batch 2 at 32 px
    assert [(p.loss.alpha, p.loss.beta) for p in presets] == [(0.5, 40), (2, 40), (8, 40), (2, 4), (2, 400)]
    assert all(p.loss.gamma == 200 and p.backbone == "vgg19" and p.network == "hust" for p in presets)
    assert all((p.steps, p.batch, p.size, p.max_images) == (2, 2, 32, 8) for p in presets)

    t = pd.read_csv(out / "table.csv")
    assert list(t["sweep"]) == ["lambda_c"] * 3 + ["lambda_s"] * 3
    assert list(t["lambda_c"]) == [0.5, 2, 8, 2, 2, 2] and list(t["lambda_s"]) == [40, 40, 40, 4, 40, 400]
    c2, c3 = t[t["sweep"] == "lambda_c"], t[t["sweep"] == "lambda_s"]
    for col in ("lambda_c", "ssim_content", "content_loss", "style_distance"):
        assert col in c2.columns
    base = t[(t["lambda_c"] == 2) & (t["lambda_s"] == 40)]
    assert len(base) == 2 and base.drop(columns="sweep").nunique().max() == 1  # one run, in both sweeps
    assert set(t["judge"]) == {"vgg16"} and (t["train_steps"] == 2).all() and (t["train_images"] == 4).all()
    assert t["ssim_content"].between(-1, 1).all() and (t["style_distance"] > 0).all()
    assert registry.evaluate("C3", c3)["verdict"] in claims.VERDICTS
    for f in set(t["output"]):
        assert Image.open(out / f).size == (64, 43)  # chelsea at the smoke eval size, long side 64
    cur = pd.read_csv(out / "curves.csv")
    assert cur.groupby("run")["step"].apply(list).to_dict() == {mod.run_name(*p): [1, 2] for p in mod.points()}
    for f in ("grid_lambda_c.png", "grid_lambda_s.png", "curves.png"):
        assert str(read_stamp(out / f)).startswith("weights: random (seed 0) · profile: smoke"), f


def test_e3_content_layer(tmp_path, monkeypatch, shared_backbones):
    mod = load_script("e3_content_layer")
    presets = record_trainings(monkeypatch, mod)
    assert mod.main(["--profile", "smoke", "--weights", "random", "--out", str(tmp_path)]) == 0
    out = harness.result_dir(tmp_path, "smoke", "random", "e3_content_layer")
    m = check_common(out, ["table.csv", "curves.csv", "repeats.csv"], "smoke")
    check_lpips_column(out)
    assert set(m["claims"]) == {"C4", "C5"} and m["claims"]["C5"]["csv"] == "repeats.csv"

    # relu2_2/batch 4 is shared; one epoch of 8 images for every batch size
    runs = [(p.loss.content_layers, p.batch) for p in presets]
    assert runs == [
        ((("relu2_2", 1.0),), 4),
        ((("relu3_3", 1.0),), 4),
        ((("relu4_3", 1.0),), 4),
        ((("relu2_2", 1.0),), 2),
        ((("relu2_2", 1.0),), 8),
    ]
    assert all(
        p.backbone == "vgg16" and p.network == "johnson2016" and p.steps is None and p.epochs == 1 for p in presets
    )

    t = pd.read_csv(out / "table.csv")
    layers = t[t["sweep"] == "content_layer"]
    batches = t[t["sweep"] == "batch_size"]
    assert list(layers["content_layer"]) == ["relu2_2", "relu3_3", "relu4_3"] and set(layers["batch_size"]) == {4}
    assert list(batches["batch_size"]) == [2, 4, 8] and set(batches["content_layer"]) == {"relu2_2"}
    assert list(batches["train_steps"]) == [4, 2, 1] and set(t["train_images"]) == {8} and set(t["epochs"]) == {1}
    assert t["seconds_per_epoch"].to_numpy() == pytest.approx(
        (t["train_seconds"] * t["images_per_epoch"] / t["train_images"]).to_numpy()
    )
    assert (t["colour_artifact_index"] >= 0).all() and set(t["judge"]) == {"vgg19"}

    # C5's time: 3 interleaved timed passes of 8 images per batch size, one row each, with the
    # trained network's quality; the table's batch-size rows summarise them
    rep = pd.read_csv(out / "repeats.csv")
    assert set(mod.REPEAT_COLUMNS) <= set(rep.columns)
    assert rep.groupby("batch_size")["repeat"].apply(list).to_dict() == {2: [1, 2, 3], 4: [1, 2, 3], 8: [1, 2, 3]}
    assert (rep["steps"] * rep["batch_size"] == 8).all() and (rep["seconds"] > 0).all()
    assert rep["seconds_per_epoch"].to_numpy() == pytest.approx(rep["seconds"].to_numpy())  # 8 images per epoch
    by_batch = batches.set_index("batch_size")
    assert rep.groupby("batch_size")["ssim_content"].first().to_dict() == by_batch["ssim_content"].to_dict()
    spread = rep.groupby("batch_size")["seconds_per_epoch"]
    assert by_batch["seconds_per_epoch_median"].to_numpy() == pytest.approx(spread.median().to_numpy())
    assert by_batch["seconds_per_epoch_min"].to_numpy() == pytest.approx(spread.min().to_numpy())
    assert by_batch["seconds_per_epoch_max"].to_numpy() == pytest.approx(spread.max().to_numpy())
    assert set(by_batch["timing_repeats"]) == {3} and (by_batch["seconds_per_epoch_mad"] >= 0).all()
    assert layers.set_index("content_layer").loc[["relu3_3", "relu4_3"], "timing_repeats"].isna().all()
    cur = pd.read_csv(out / "curves.csv")
    assert cur.groupby("run")["step"].max().to_dict() == {
        "relu2_2_b4": 2,
        "relu3_3_b4": 2,
        "relu4_3_b4": 2,
        "relu2_2_b2": 4,
        "relu2_2_b8": 1,
    }
    for f in ("grid_content_layer.png", "grid_batch_size.png", "curves.png", "outputs/relu4_3_b4.png"):
        assert (out / f).is_file()


def test_e6_timing(tmp_path, monkeypatch, capsys, shared_backbones):
    mod = load_script("e6_timing")
    monkeypatch.setattr(mod, "SOURCE_SIZE", 64)  # the source's numbers go on the rows of that size
    args = ["--profile", "smoke", "--weights", "random", "--out", str(tmp_path), "--size", "64"]
    assert mod.main(args) == 0
    out = harness.result_dir(tmp_path, "smoke", "random", "e6_timing")
    m = check_common(out, ["table.csv", "repeats.csv"], "smoke(size=64)")
    assert set(m["claims"]) == {"C10"} and (out / "timing.png").is_file() and m["claims"]["C10"]["csv"] == "repeats.csv"
    assert read_stamp(out / "timing.png") == "weights: random (seed 0) · profile: smoke(size=64)"

    t = pd.read_csv(out / "table.csv").set_index("method")
    assert sorted(t.index) == ["fast", "vanilla"] and set(t["size"]) == {64} and set(t["dtype"]) == {"float32"}
    v, f = t.loc["vanilla"], t.loc["fast"]
    assert bool(v["extrapolated"]) and v["iterations_measured"] == 3 and v["iterations"] == 1000
    assert v["total_seconds"] == pytest.approx(1000 * v["seconds_per_iteration"])
    assert f["total_seconds"] == f["seconds_per_iteration"] and f["images_per_second"] == pytest.approx(
        1 / f["seconds_per_iteration"]
    )
    assert v["speedup"] == f["speedup"] == pytest.approx(1000 * v["seconds_per_iteration"] / f["seconds_per_iteration"])
    assert (v["source_total_seconds"], f["source_total_seconds"]) == (49.43, 0.04)
    assert v["seconds_per_iteration"] > 0 and f["seconds_per_iteration"] > 0
    assert m["results"]["source"]["vanilla_seconds"] == 49.43

    # every timed iteration and forward pass, one row each (C10 reads them); the table's spread columns
    rep = pd.read_csv(out / "repeats.csv")
    assert set(mod.REPEAT_COLUMNS) <= set(rep.columns)
    assert rep.groupby("method")["repeat"].apply(list).to_dict() == {"fast": [1, 2, 3], "vanilla": [1, 2, 3]}
    for method, row in (("vanilla", v), ("fast", f)):
        s = rep.loc[rep["method"] == method, "seconds_per_iteration"]
        assert row["repeats"] == 3 and row["seconds_per_iteration"] == pytest.approx(s.median())
        assert (row["seconds_per_iteration_min"], row["seconds_per_iteration_max"]) == pytest.approx((s.min(), s.max()))
        assert row["seconds_per_iteration_mad"] == pytest.approx((s - s.median()).abs().median())

    capsys.readouterr()  # unchanged settings: nothing is re-timed
    assert mod.main(args) == 0
    assert "up to date" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["e2_fast_sweeps", "e3_content_layer", "e10_fast_vs_optimisation"])
def test_training_data_errors(name, tmp_path, capsys):
    mod = load_script(name)
    assert mod.main(["--profile", "paper", "--weights", "random", "--out", str(tmp_path)]) == 2
    assert "pass --data" in capsys.readouterr().err
    assert (
        mod.main(
            ["--profile", "smoke", "--weights", "random", "--out", str(tmp_path), "--data", str(tmp_path / "nope")]
        )
        == 2
    )
    assert "data folder not found" in capsys.readouterr().err
    for profile in ("paper", "smoke"):
        out = harness.result_dir(tmp_path, profile, "random", name)
        assert not out.exists() and not list(out.parent.glob(".tmp-*"))
