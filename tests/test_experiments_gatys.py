"""Every experiment script of the registry (outputs, claims, cache), the Gatys ones E1, E4, E5, E7 in
detail, and the shared harness (nstbench.harness.experiment).

Each script runs in-process on the smoke profile with test-only --steps/--size overrides and the
session's random backbones, into tmp_path. Checked: the files, the CSV schemas the claim rules
read (and that the rule returns a verdict from the written CSV), the manifest's records, caching
(a second run is skipped, --force and a changed setting recompute), and that a run failing
midway leaves the previous results untouched and no temp folder behind.
"""

import json
import os
import signal
import time

import pandas as pd
import pytest
from conftest import BF16_NATIVE, check_lpips_column, load_script, needs_assets

import nstbench.harness.experiment as harness
from nstbench.config import claims
from nstbench.config.compute import Compute
from nstbench.config.specs import Resize
from nstbench.harness import registry
from nstbench.harness.figures import read_stamp
from nstbench.nets.images import load_image

pytestmark = needs_assets

SPECS = registry.specs()  # every experiments/eN_*.py: the parametrisation below needs no list of its own
CLAIM_TABLES = {  # claim -> (csv, filter, columns its rule needs)
    "e1_tv_gamma": {"C1": ("table.csv", None, ["gamma", "hf_fraction"])},
    "e4_init": {"C6": ("table.csv", None, ["init", "content_loss", "ssim_content", "iteration"])},
    "e5_vgg_resnet": {
        "C7": ("table.csv", None, ["net", "n_style_layers", "style_loss"]),
        "C8": ("curves.csv", "n_style_layers == 5", ["iteration", "total_loss", "net"]),
        "C9": ("table.csv", "n_style_layers == 5", ["net", "style_distance", "judge"]),
    },
    "e7_upes": {},
    "e8_reconstruction": {"C11": ("table.csv", "kind == 'content'", ["net", "depth", "ssim_content"])},
    "e9_gatys_ablations": {
        "C12": ("ratio.csv", None, ["ratio", "ssim_content", "style_distance"]),
        "C13": ("curves.csv", "study == 'optimizer'", ["optimizer", "evaluation", "seconds", "total_loss"]),
    },
    "e10_fast_vs_optimisation": {"C14": ("fig5.csv", None, ["method", "iterations", "objective"])},
}
FILES = {
    "e1_tv_gamma": [
        "table.csv",
        "curves.csv",
        "radial.csv",
        "grid.png",
        "spectra.png",
        "radial_spectrum.png",
        "curves.png",
        "outputs/gamma_1000.png",
    ],
    "e4_init": ["table.csv", "curves.csv", "loss_curves.png", "grid.png", "outputs/init_noise.png"],
    "e5_vgg_resnet": ["table.csv", "curves.csv", "fig7.png", "table1.png", "grid.png", "outputs/resnet50_5layers.png"],
    "e7_upes": ["trajectory.csv", "printed.csv", "trajectory.png", "output.png"],
    "e8_reconstruction": [
        "table.csv",
        "curves.csv",
        "content_grid.png",
        "style_grid.png",
        "outputs/content_vgg16_relu4_3.png",
        "outputs/style_vgg19_relu5_1.png",
    ],
    "e9_gatys_ablations": [
        "ratio.csv",
        "pooling.csv",
        "optimizers.csv",
        "curves.csv",
        "ratio_grid.png",
        "pooling_grid.png",
        "optimizers.png",
        "outputs/ratio_0.1.png",
        "outputs/pooling_max_lbfgs.png",
        "outputs/optimizer_avg_adam.png",
    ],
    "e10_fast_vs_optimisation": [
        "fig5.csv",
        "curve.csv",
        "table1.csv",
        "fig5.png",
        "table1.png",
        "grid.png",
        "outputs/fast.png",
        "outputs/lbfgs.png",
    ],
}


def smoke_dir(root, name):
    """Where a smoke run on random weights writes (experiment.result_dir: <root>/smoke/random/<name>)."""
    return harness.result_dir(root, "smoke", "random", name)


def argv(name, out, *extra):
    return ["--profile", "smoke", "--weights", "random", "--out", str(out), *SPECS[name].test_argv, *extra]


def smoke_overrides(name) -> dict:
    """The Spec's test-only overrides as the manifest records them ({"steps": 3, "size": 56})."""
    a = SPECS[name].test_argv
    return {a[i].lstrip("-"): int(a[i + 1]) for i in range(0, len(a), 2)}


def count_calls(monkeypatch, mod, fail_on=None, exc=RuntimeError):
    """Wrap the script's run_preset: count calls; raise `exc` on call number `fail_on`."""
    calls = []
    real = getattr(mod, "run_preset", None)
    if real is None:  # a script that does not optimise images itself (the fast-transfer ones)
        return None

    def wrapped(*a, **k):
        calls.append(1)
        if fail_on is not None and len(calls) == fail_on:
            raise exc("simulated crash in the middle of the run")
        return real(*a, **k)

    monkeypatch.setattr(mod, "run_preset", wrapped)
    return calls


@pytest.mark.parametrize("name", list(SPECS))
def test_experiment_outputs_schema_claims_and_cache(name, tmp_path, monkeypatch, capsys, shared_backbones):
    mod = load_script(name)
    calls = count_calls(monkeypatch, mod)
    # a cpu-profile result already in the root: the smoke run goes beside it and leaves it alone
    cpu = harness.result_dir(tmp_path, "cpu", "random", name)
    cpu.mkdir(parents=True)
    (cpu / "manifest.json").write_text('{"status": "complete", "profile": "cpu"}')
    assert mod.main(argv(name, tmp_path)) == 0
    out = smoke_dir(tmp_path, name)
    for f in FILES.get(name, []) + ["manifest.json"]:
        assert (out / f).is_file(), f
    assert not list(out.parent.glob(".tmp-*")) and not list(out.parent.glob(".old-*"))
    assert [p.name for p in cpu.iterdir()] == ["manifest.json"]
    assert (cpu / "manifest.json").read_text() == '{"status": "complete", "profile": "cpu"}'

    m = json.loads((out / "manifest.json").read_text())
    assert m["status"] == "complete" and m["profile"] == "smoke"
    assert m["overrides"] == smoke_overrides(name) and m["sources"] == list(SPECS[name].sources)
    assert m["weights_kind"] == "random" and m["imagenet"] is False and m["weight_set"] == "random"
    assert all(w["kind"] == "random" for w in m["weights"].values())
    assert {"commit", "torch", "device"} <= set(m["provenance"])
    assert m["wall_seconds"] > 0 and len(m["cache_key"]) == 64
    assert sorted(m["files"]) == sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    # every figure names its weights and profile (outputs/ and E7's output.png are images, not figures)
    stamps = {p.name: read_stamp(p) for p in out.glob("*.png") if (name, p.name) != ("e7_upes", "output.png")}
    assert stamps and all(str(s).startswith("weights: random (seed 0) · profile: smoke") for s in stamps.values()), (
        stamps
    )

    ov = smoke_overrides(name)
    label = "smoke" + ("(" + ",".join(f"{k}={v}" for k, v in ov.items()) + ")" if ov else "")
    for csv in [f for f in m["files"] if f.endswith(".csv")]:
        df = pd.read_csv(out / csv)
        assert list(df.columns[: len(harness.COMMON_COLUMNS)]) == harness.COMMON_COLUMNS, csv
        assert set(df["weights"]) == {"random"} and set(df["device"]) == {"cpu"} and set(df["seed"]) == {0}
        assert set(df["profile"]) == {label}

    assert set(m["claims"]) == set(SPECS[name].claims)  # every declared claim evaluated, no other
    for cid, rec in m["claims"].items():
        csv, where, columns = CLAIM_TABLES.get(name, {}).get(cid, (rec["csv"], rec["where"], []))
        assert (csv, where) == (rec["csv"], rec["where"])
        df = pd.read_csv(out / csv)
        assert set(columns) <= set(df.columns), (cid, columns)
        verdict = registry.evaluate(cid, df.query(where) if where else df)
        assert verdict["verdict"] in claims.VERDICTS
        assert m["claims"][cid]["verdict"] == verdict["verdict"]
        assert m["claims"][cid]["caveat"]  # random weights are flagged as not testing the source's claim

    if name not in NO_QUALITY_TABLE:
        check_lpips_column(out, QUALITY_TABLES.get(name, "table.csv"))
    if name in CHECKS:
        CHECKS[name](mod, out, calls)

    # unchanged settings and code: the second run computes nothing and leaves the folder alone
    n, before = len(calls or []), (out / "manifest.json").read_bytes()
    capsys.readouterr()
    assert mod.main(argv(name, tmp_path)) == 0
    assert len(calls or []) == n and (out / "manifest.json").read_bytes() == before
    assert "up to date" in capsys.readouterr().err


def check_e1(mod, out, calls):
    assert len(calls) == 1  # the sweep is one batched optimisation
    t = pd.read_csv(out / "table.csv")
    assert list(t["gamma"]) == list(mod.GAMMAS)
    assert t["hf_fraction"].between(0, 1).all() and (t["tv"] > 0).all()
    c = pd.read_csv(out / "curves.csv")
    assert len(c) == 3 * len(mod.GAMMAS) and sorted(set(c["step"])) == [1, 2, 3]
    r = pd.read_csv(out / "radial.csv")
    assert set(r["image"]) == {"content"} | {f"gamma={g:g}" for g in mod.GAMMAS}


def check_e4(mod, out, calls):
    assert len(calls) == len(mod.INITS)  # L-BFGS: one run per init
    t = pd.read_csv(out / "table.csv")
    # num_steps 3 in the tutorial's loop: one L-BFGS call of max_iter 20 evaluations
    assert list(t["init"]) == list(mod.INITS) and set(t["iteration"]) == {20}
    c = pd.read_csv(out / "curves.csv")
    assert c.groupby("init")["iteration"].max().to_dict() == {i: 20 for i in mod.INITS}


def check_e5(mod, out, calls):
    assert len(calls) == 10  # 5 cumulative layer sets x 2 nets, one run each
    t = pd.read_csv(out / "table.csv")
    for net, preset in mod.NETS.items():
        g = t[t["net"] == net].sort_values("n_style_layers")
        assert list(g["n_style_layers"]) == [1, 2, 3, 4, 5]
        assert list(g["style_layers"].str.count(r"\+") + 1) == [1, 2, 3, 4, 5]
        assert g["style_score"].to_numpy() == pytest.approx(preset.loss.beta * g["style_loss"].to_numpy(), rel=1e-9)
        assert g["content_score"].to_numpy() == pytest.approx(
            preset.loss.alpha * g["content_loss"].to_numpy(), rel=1e-9
        )
        # total is the optimiser's (float32) alpha*content + beta*style of the kept image
        assert g["total_loss"].to_numpy() == pytest.approx((g["style_score"] + g["content_score"]).to_numpy(), rel=1e-4)
        assert list(g["source_style"]) == [s for _, s, _ in mod.SOURCE_TABLE1[net]]
        # Table 1's triple is the code's last print (i = 900 of 1000 -> step 901), the minimum is beside it
        assert set(g["printed_step"]) == {mod.printed_step(3)} and (g["best_total_loss"] <= g["total_loss"]).all()
    assert (mod.printed_step(1000), mod.printed_step(300), mod.printed_step(10)) == (901, 271, 10)
    assert set(t["judge"]) == {"vgg16"} and set(t["judge_weights"]) == {"random"}
    assert len(pd.read_csv(out / "curves.csv")) == 10 * 3
    # the pixel change is measured on the saved outputs; a net whose pixels did not move gets a note
    for _, r in t.iterrows():
        saved = load_image(out / "outputs" / f"{r['net']}_{r['n_style_layers']}layers.png", Resize())
        content = load_image(mod.CONTENT, Resize("long", 48, "lanczos"))
        assert float((saved - content).abs().max()) * 255 == pytest.approx(r["max_pixel_change"], abs=1.0)
    notes = json.loads((out / "manifest.json").read_text())["notes"]
    for net in mod.NETS:
        still = t[t["net"] == net]["max_pixel_change"].max() < 1.0
        assert still == any(n.startswith(f"{net}: no pixel moved") for n in notes)


def check_e7(mod, out, calls):
    assert len(calls) == 1
    traj = pd.read_csv(out / "trajectory.csv")
    assert list(traj["step"]) == list(range(1, 11))
    assert traj["total_loss"].to_numpy() == pytest.approx(
        (traj["content_term"] + traj["style_term"]).to_numpy(), rel=1e-5
    )
    printed = pd.read_csv(out / "printed.csv")
    assert list(printed["step"]) == [5, 10]  # smoke prints every 5 steps
    assert printed["total_loss"].tolist() == traj.set_index("step").loc[[5, 10], "total_loss"].tolist()
    assert printed["source_total_loss"].isna().all()  # the source printed at 1600 and 2000 only
    assert mod.SOURCE_PRINTED == {1600: 3145412.75, 2000: 2023719.125}


def check_e8(mod, out, calls):
    assert len(calls) == 5 + 4 + 5  # one L-BFGS run per reconstruction
    t = pd.read_csv(out / "table.csv")
    content = t[t["kind"] == "content"]
    assert list(content["layers"]) == list(mod.GATYS_LAYERS) + list(mod.JOHNSON_LAYERS)
    assert list(content["depth"]) == [1, 2, 3, 4, 5, 1, 2, 3, 4]
    assert set(t[t["net"] == "vgg19"]["pooling"]) == {"avg"} and set(t[t["net"] == "vgg16"]["pooling"]) == {"max"}
    style = t[t["kind"] == "style"]
    assert list(style["layers"].str.count(r"\+") + 1) == [1, 2, 3, 4, 5] and (style["net"] == "vgg19").all()
    assert set(t["evaluations"]) == {3} and (t["feature_loss"] >= 0).all() and t["hf_fraction"].between(0, 1).all()
    c = pd.read_csv(out / "curves.csv")
    assert len(c) == 14 * 3 and set(c["evaluation"]) == {1, 2, 3}


def check_e9(mod, out, calls):
    # one batched Adam sweep, two L-BFGS pooling runs, one Adam run (the avg L-BFGS run is shared)
    assert len(calls) == 4
    r = pd.read_csv(out / "ratio.csv")
    assert list(r["ratio"]) == list(mod.RATIOS) and set(r["optimizer"]) == {"adam"}
    assert r["content_share_at_init"].between(0, 1).all() and r["content_share_at_init"].is_monotonic_increasing
    p = pd.read_csv(out / "pooling.csv")
    assert list(p["pooling"]) == ["avg", "max"] and set(p["optimizer"]) == {"lbfgs"}
    # paper_total is the unnormalised Gatys total 1e-3 content + style of the same image
    assert p["paper_total"].to_numpy() == pytest.approx((1e-3 * p["content_loss"] + p["style_loss"]).to_numpy())
    o = pd.read_csv(out / "optimizers.csv")
    assert list(o["optimizer"]) == ["lbfgs", "adam"] and set(o["pooling"]) == {"avg"}
    assert o.iloc[0]["objective"] == p.iloc[0]["objective"]  # the shared run
    c = pd.read_csv(out / "curves.csv")
    opt = c[c["study"] == "optimizer"]
    assert opt.groupby("optimizer")["evaluation"].max().to_dict() == {"adam": 3, "lbfgs": 3}
    # one objective scale: both optimisers start from the same noise image at objective 1
    assert opt[opt["evaluation"] == 1]["total_loss"].to_numpy() == pytest.approx([1.0, 1.0], rel=1e-5)
    assert len(c[c["study"] == "ratio"]) == 3 * len(mod.RATIOS)


def check_e10(mod, out, calls):
    assert len(calls) == 1  # L-BFGS from noise (the timing runs go through nstbench.methods.timing)
    f = pd.read_csv(out / "fig5.csv")
    assert list(f["method"]) == ["fast", "lbfgs"] and list(f["iterations"]) == [0, 6]  # smoke: 6 < 50
    # the fast network's score is its training loss (PerceptualLoss) on the same image: one objective
    m = json.loads((out / "manifest.json").read_text())
    assert f.loc[0, "objective"] == pytest.approx(m["results"]["fast_training_loss_terms"]["total"], rel=1e-5)
    c = pd.read_csv(out / "curve.csv")
    assert list(c["iteration"]) == list(range(1, 7)) and c["best_objective"].is_monotonic_decreasing
    assert f.loc[1, "objective"] == c["best_objective"].iloc[-1] and (c["objective"] >= c["best_objective"]).all()
    t = pd.read_csv(out / "table1.csv")
    lb = t[t["method"] == "lbfgs"]
    assert list(lb["iterations"]) == list(mod.TABLE1_ITERATIONS) and set(t["size"]) == {64}
    assert lb["seconds"].to_numpy() == pytest.approx(lb["iterations"].to_numpy() * lb["seconds_per_iteration"])
    fast = t[t["method"] == "fast"].iloc[0]
    assert lb["speedup"].to_numpy() == pytest.approx(lb["seconds"].to_numpy() / fast["seconds"])
    assert mod.SOURCE_TABLE1[256][0][2] / mod.SOURCE_TABLE1[256][1] == pytest.approx(1057, rel=1e-3)


CHECKS = {
    "e1_tv_gamma": check_e1,
    "e4_init": check_e4,
    "e5_vgg_resnet": check_e5,
    "e7_upes": check_e7,
    "e8_reconstruction": check_e8,
    "e9_gatys_ablations": check_e9,
    "e10_fast_vs_optimisation": check_e10,
}
# E6 times methods and E7 reproduces a loss trajectory: no output-quality table with lpips_content
NO_QUALITY_TABLE = {"e6_timing", "e7_upes"}
# the table with lpips_content where it is not table.csv
QUALITY_TABLES = {"e9_gatys_ablations": "ratio.csv", "e10_fast_vs_optimisation": "fig5.csv"}


def test_force_and_changed_settings_recompute(tmp_path, monkeypatch, shared_backbones):
    mod = load_script("e7_upes")
    calls = count_calls(monkeypatch, mod)
    assert mod.main(argv("e7_upes", tmp_path, "--steps", "2")) == 0
    key = json.loads((smoke_dir(tmp_path, "e7_upes") / "manifest.json").read_text())["cache_key"]
    assert mod.main(argv("e7_upes", tmp_path, "--steps", "2", "--force")) == 0
    assert len(calls) == 2
    assert json.loads((smoke_dir(tmp_path, "e7_upes") / "manifest.json").read_text())["cache_key"] == key
    assert mod.main(argv("e7_upes", tmp_path, "--steps", "3")) == 0  # another setting: another key, recomputed
    assert len(calls) == 3
    m = json.loads((smoke_dir(tmp_path, "e7_upes") / "manifest.json").read_text())
    assert m["cache_key"] != key and m["profile_settings"]["steps"] == 3
    assert len(pd.read_csv(smoke_dir(tmp_path, "e7_upes") / "trajectory.csv")) == 3

    assert m["compute"] == {"dtype": "float32", "channels_last": False, "compile": None, "bf16_support": None}
    assert mod.main(argv("e7_upes", tmp_path, "--steps", "3", "--channels-last")) == 0  # another compute: recomputed
    assert len(calls) == 4
    m = json.loads((smoke_dir(tmp_path, "e7_upes") / "manifest.json").read_text())
    assert m["compute"]["channels_last"] is True


# The GPU path's compute (what --device cuda runs by default, plus compile) on the CPU: bf16 where
# this CPU runs it natively, fp32 NHWC elsewhere; compile with the "eager" backend (graph capture
# without code generation: the plumbing, in seconds).
GPU_PATH = ("--dtype", "bfloat16" if BF16_NATIVE else "float32", "--channels-last", "--compile", "eager")


@pytest.mark.parametrize("name", list(SPECS))
def test_experiment_runs_with_the_gpu_path_compute(name, tmp_path, shared_backbones):
    mod = load_script(name)
    assert mod.main(argv(name, tmp_path, *GPU_PATH)) == 0
    m = json.loads((smoke_dir(tmp_path, name) / "manifest.json").read_text())
    assert m["status"] == "complete" and set(m["claims"]) == set(SPECS[name].claims)
    assert m["compute"] | {"bf16_support": None} == {
        "dtype": GPU_PATH[1], "channels_last": True, "compile": "eager", "bf16_support": None,
    }  # fmt: skip
    assert (m["compute"]["bf16_support"] is not None) == (GPU_PATH[1] == "bfloat16")
    for csv in [f for f in m["files"] if f.endswith(".csv")]:
        df = pd.read_csv(smoke_dir(tmp_path, name) / csv)
        assert len(df) > 0, csv
        if "dtype" in df.columns:  # the timing tables say what they timed
            assert set(df["dtype"]) == {GPU_PATH[1]}, csv


def test_auto_compute_is_fp32_on_the_cpu_and_bf16_nhwc_on_cuda():
    ap = harness.experiment_parser(SPECS["e7_upes"], "")
    auto = ap.parse_args([])
    assert harness.compute_from_args(auto, "cpu") == Compute()
    assert harness.compute_from_args(auto, "cuda") == Compute("bfloat16", channels_last=True)
    off = ap.parse_args(["--dtype", "float32", "--no-channels-last", "--compile", "inductor"])
    assert harness.compute_from_args(off, "cuda") == Compute("float32", False, "inductor")


def sigterm(message):
    os.kill(os.getpid(), signal.SIGTERM)  # as `kill PID` or a CI timeout would
    time.sleep(5)  # the handler raises before this returns


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt, sigterm])
def test_failure_midway_keeps_previous_results(error, tmp_path, monkeypatch, shared_backbones):
    mod = load_script("e4_init")
    assert mod.main(argv("e4_init", tmp_path)) == 0
    out = smoke_dir(tmp_path, "e4_init")
    snapshot = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    # fail in the second of the three runs, after the first one's image was written to the temp folder
    calls = count_calls(monkeypatch, mod, fail_on=2, exc=error)
    seen = {}
    real_image = harness.Experiment.image

    def image(self, x, name):
        seen["tmp"] = self.dir  # the run's temp folder, to check it is gone afterwards
        return real_image(self, x, name)

    monkeypatch.setattr(harness.Experiment, "image", image)
    if error is KeyboardInterrupt:  # the command's handler reports it and exits 130
        assert mod.main(argv("e4_init", tmp_path, "--force")) == 130
    elif error is sigterm:  # the harness turns SIGTERM into SystemExit(143), and restores the handler
        previous = signal.getsignal(signal.SIGTERM)
        with pytest.raises(SystemExit) as e:
            mod.main(argv("e4_init", tmp_path, "--force"))
        assert e.value.code == 128 + signal.SIGTERM and signal.getsignal(signal.SIGTERM) == previous
    else:
        with pytest.raises(RuntimeError, match="simulated crash"):
            mod.main(argv("e4_init", tmp_path, "--force"))
    assert len(calls) == 2 and seen["tmp"].name.startswith(".tmp-e4_init-")
    assert not seen["tmp"].exists()
    assert not list(out.parent.glob(".tmp-*")) and not list(out.parent.glob(".old-*"))
    after = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == snapshot


def test_stale_temp_folder_of_a_dead_run_is_removed(tmp_path, monkeypatch, shared_backbones):
    mod = load_script("e7_upes")
    assert mod.main(argv("e7_upes", tmp_path, "--steps", "2")) == 0
    stale = smoke_dir(tmp_path, "e7_upes").parent / ".tmp-e7_upes-999999999"  # no such pid
    stale.mkdir()
    (stale / "trajectory.csv").write_text("half")
    assert mod.main(argv("e7_upes", tmp_path, "--steps", "2")) == 0  # cached, and the stale folder is cleaned
    assert not stale.exists()


def test_user_errors_are_one_line(tmp_path, capsys, shared_backbones):
    mod = load_script("e7_upes")
    assert mod.main(argv("e7_upes", tmp_path, "--steps", "0")) == 2
    assert "at least 1" in capsys.readouterr().err
    assert mod.main(argv("e7_upes", tmp_path, "--device", "nonsense")) == 2
    assert "unknown device" in capsys.readouterr().err
    assert not smoke_dir(tmp_path, "e7_upes").exists()
