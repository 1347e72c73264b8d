"""benchmarks/gpu_check.sh --dry-run: the GPU check's plumbing on the CPU (tiny sizes, a couple of
iterations). It must write the same files as the GPU run, every row flagged dry_run, with every
section present; nothing here measures a GPU."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from bandtools import load_bands
from conftest import BF16_NATIVE, needs_assets

ROOT = Path(__file__).resolve().parents[1]


@needs_assets
@pytest.mark.slow
def test_gpu_check_dry_run_writes_csv_and_md(tmp_path):
    env = {**os.environ, "PY": sys.executable, "GPU_CHECK_TIMEOUT": "300"}
    p = subprocess.run(
        [str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run", "--out", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    df = pd.read_csv(tmp_path / "gpu.csv")
    md = (tmp_path / "gpu.md").read_text()
    assert "DRY RUN" in md and "not GPU numbers" in md
    assert df["dry_run"].astype(bool).all() and set(df["device"]) == {"cpu"}
    assert {"bands", "gatys", "fast", "e7", "estimate", "target", "total"} <= set(df["section"])
    bands = df[df["section"] == "bands"]
    # every Gatys band of bands.json, each against its CPU reference at the stated tolerance; on the CPU
    # the dry run computes the reference's own numbers, so each must pass
    gatys_bands = [n for n, sc in load_bands()["scenarios"].items() if sc["run"]["kind"] == "gatys"]
    assert sorted(bands["case"]) == sorted(gatys_bands) and bands["met"].astype(str).eq("True").all()
    assert (bands["target"] == "<= 0.001").all()
    gatys = df[(df["section"] == "gatys") & df["value"].notna()]
    assert {"fp32", "fp32-compiled", "tf32", "tf32-compiled"} <= set(gatys["method"])
    if BF16_NATIVE:  # the GPU path's variants: compiled, CUDA graphs, and the old per-step sync
        assert {"bf16", "bf16-compiled", "bf16-graphs", "bf16-sync-every-step"} <= set(gatys["method"])
    assert not df["met"].astype(str).eq("failed").any(), df[df["met"].astype(str) == "failed"]["note"].tolist()
    train = df[(df["section"] == "fast") & (df["metric"] == "images_per_second") & df["value"].notna()]
    assert {"train_transformer fp32"} | ({"train_transformer bf16-cl"} if BF16_NATIVE else set()) == set(
        train["method"]
    )
    assert (gatys["value"].astype(float) > 0).all()
    fast = df[(df["section"] == "fast") & (df["metric"] == "seconds")]
    assert set(fast["px"]) == {32, 64}
    e7 = df[(df["section"] == "e7") & (df["metric"] == "wall_seconds")]
    assert e7["met"].astype(str).eq("True").all(), e7["note"].tolist()
    est = df[df["section"] == "estimate"].set_index("case")
    parts = ["e1_tv_gamma", "e4_init", "e5_vgg_resnet", "e6_timing", "e7_upes", "e8_reconstruction"]
    parts += ["e9_gatys_ablations", "e10_fast_vs_optimisation"]
    assert est.loc["paper profile without COCO training", "value"] == pytest.approx(est.loc[parts, "value"].sum())


@needs_assets
def test_paper_check_runs_an_experiment_at_paper_sizes(tmp_path):
    """benchmarks/paper_check.py on the CPU for the quickest experiment: the paper profile's sizes
    (E7: 400 px), its Spec's few steps, and a row with the compute and the peak memory."""
    p = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "paper_check.py"), "--device", "cpu", "--only", "e7_upes"]
        + ["--out", str(tmp_path), "--", "--channels-last"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    row = pd.read_csv(tmp_path / "paper_check.csv").iloc[0]
    assert row["experiment"] == "e7_upes" and row["rc"] == 0 and row["compute"] == "float32 channels_last"
    assert row["argv"] == "--steps 2 --channels-last" and 0 < row["peak_memory_gib"] < 64
    assert "wrote" in row["last_line"] and "e7_upes" in (tmp_path / "paper_check.md").read_text()
