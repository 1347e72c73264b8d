"""Performance options keep the numbers: bf16 autocast, channels_last, and the benchmark's plumbing.

Timing ratios are asserted elsewhere (tests/test_timing.py); here only behaviour: what the fast
modes compute, and that `benchmarks/bench.py --quick` writes what the README says it writes.
"""

import copy
import csv
import dataclasses
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import BF16_NATIVE, BF16_WHY, needs_assets, needs_native_bf16, stylize_argv

from nstbench.config.compute import Compute
from nstbench.config.errors import NstbenchError
from nstbench.config.sources import HUST, UPES
from nstbench.config.specs import OptimizerSpec
from nstbench.methods.gatys import initial_image, make_gatys_loss, optimize_image
from nstbench.methods.perceptual import extract_features

ROOT = Path(__file__).resolve().parents[1]
G = torch.Generator().manual_seed(1)
CONTENT = torch.rand(1, 3, 48, 48, generator=G)
STYLE = torch.rand(1, 3, 48, 48, generator=G)

# bf16 rows run only where the CPU has native bf16: elsewhere every bf16 convolution is emulated
# (minutes for what takes seconds) and the CLI refuses it (nstbench/nets/precision.py).


def run(backbone, spec, space, compute, steps=5, lr=0.01):
    loss = make_gatys_loss(backbone, CONTENT, STYLE, spec, space, compute=compute)
    x0 = initial_image("content", CONTENT, STYLE, space)
    return optimize_image(loss, x0, steps, OptimizerSpec("adam", lr=lr))


def totals(result):
    return [h["total"] for h in result.history]


def test_channels_last_gives_the_same_trajectory(vgg19_random):
    ref = run(vgg19_random, UPES.loss, "imagenet", Compute(), lr=0.003)
    cl = run(vgg19_random, UPES.loss, "imagenet", Compute(channels_last=True), lr=0.003)
    assert totals(cl) == pytest.approx(totals(ref), rel=1e-4)
    assert totals(ref)[-1] < totals(ref)[0]  # it optimises
    assert torch.allclose(cl.last, ref.last, atol=1e-4)
    # the NHWC weights live in a private copy: the shared backbone keeps its layout
    assert all(p.is_contiguous() for p in vgg19_random.extractor.parameters())


@needs_native_bf16
def test_bf16_runs_close_to_fp32_and_really_uses_bf16(vgg19_random):
    spec = replace(HUST.loss, gamma=10.0)
    ref = run(vgg19_random, spec, "unit", Compute())
    bf = run(vgg19_random, spec, "unit", Compute("bfloat16", channels_last=True))
    assert totals(bf) == pytest.approx(totals(ref), rel=0.03)
    assert totals(bf) != totals(ref)  # autocast engaged: bf16 convolutions round differently
    assert bf.last.dtype == torch.float32  # the image (and Adam's state) stay fp32


@needs_native_bf16
def test_bf16_weights_converted_once_give_the_autocast_numbers(vgg19_random):
    # make_gatys_loss converts a private copy of the weights to bf16 once; autocast over the fp32
    # weights casts them at every forward. Same roundings: same features and gradients, bit for bit.
    layers = ["relu1_1", "relu3_1", "relu4_2", "relu5_1"]
    bf16 = dataclasses.replace(vgg19_random, extractor=copy.deepcopy(vgg19_random.extractor).to(torch.bfloat16))
    x = torch.rand(1, 3, 40, 40, generator=G, requires_grad=True)
    ref = extract_features(vgg19_random, x, layers, Compute("bfloat16"))
    got = extract_features(bf16, x, layers, Compute("bfloat16"))
    assert all(torch.equal(got[n], ref[n]) for n in layers)
    (g_ref,) = torch.autograd.grad(sum(t.sum() for t in ref.values()), x)
    (g_got,) = torch.autograd.grad(sum(t.sum() for t in got.values()), x)
    assert torch.equal(g_got, g_ref)
    make_gatys_loss(vgg19_random, CONTENT, STYLE, UPES.loss, "imagenet", compute=Compute("bfloat16"))
    assert all(p.dtype == torch.float32 for p in vgg19_random.extractor.parameters())  # the caller's stays fp32


def test_features_come_back_fp32_nchw(vgg19_random):
    x = torch.rand(1, 3, 32, 32, generator=G)
    f = extract_features(vgg19_random, x, ["relu1_1", "relu3_1"], Compute("bfloat16", channels_last=True))
    ref = vgg19_random.extract(x, ["relu1_1", "relu3_1"])
    for name, t in f.items():
        assert t.dtype == torch.float32 and t.is_contiguous()
        assert not torch.equal(t, ref[name])  # computed in bf16 ...
        assert torch.allclose(t, ref[name], rtol=0.05, atol=0.05 * float(ref[name].abs().max()))  # ... close to fp32
    plain = extract_features(vgg19_random, x, ["relu1_1"], Compute())
    assert torch.equal(plain["relu1_1"], ref["relu1_1"])  # the default is backbone.extract, bit for bit


def test_unknown_dtype_is_a_user_error():
    with pytest.raises(NstbenchError, match="float16"):
        Compute("float16")
    with pytest.raises(NstbenchError, match="inductor"):
        Compute(compile="max-autotune")


def test_converted_backbone_is_made_once_and_follows_weight_changes(vgg19_random):
    """An experiment builds many losses on one backbone: the NHWC / bf16 / compiled copy is made
    once (a compiled extract compiles once), and a change to the source's weights makes a new one."""
    import nstbench.methods.perceptual as perceptual

    b = copy.deepcopy(vgg19_random)
    cl = Compute(channels_last=True)
    first = perceptual.compute_backbone(b, cl).extractor
    assert perceptual.compute_backbone(b, cl).extractor is first
    assert perceptual.compute_backbone(b, Compute()).extractor is b.extractor  # the default: no copy
    with torch.no_grad():
        next(b.extractor.parameters()).mul_(2.0)  # in place: the copy is outdated
    again = perceptual.compute_backbone(b, cl).extractor
    assert again is not first
    w, w_copy = next(b.extractor.parameters()), next(again.parameters())
    assert torch.equal(w_copy, w) and w_copy.is_contiguous(memory_format=torch.channels_last)


def test_compiled_loss_runs_the_same_optimisation(vgg19_random):
    """compile="eager" captures the extractor's graph (dynamo) and runs it op for op: the same
    numbers bit for bit, and dynamo really compiled a frame (not a silent fallback)."""
    import torch._dynamo

    torch._dynamo.reset()
    ref = run(vgg19_random, UPES.loss, "imagenet", Compute(channels_last=True), steps=3, lr=0.003)
    torch._dynamo.utils.counters.clear()
    got = run(vgg19_random, UPES.loss, "imagenet", Compute(channels_last=True, compile="eager"), steps=3, lr=0.003)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1
    assert totals(got) == totals(ref) and torch.equal(got.last, ref.last)


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="no C compiler for inductor")
def test_inductor_compiled_loss_agrees_to_float_rounding(vgg19_random, tmp_path, monkeypatch):
    """inductor generates its own kernels (other summation orders): 3 steps agree to 1e-5
    relative (measured 1.7e-7 at 48 px on a Zen 4). About 20 s of compilation on 2 cores.
    A cache folder of its own: inductor's on-disk cache does not key its C++ kernels on
    ATEN_CPU_CAPABILITY, so a kernel cached under avx512 fails to compile ('at::vec has not been
    declared') when `make test-kernels` reruns this test under avx2 or default."""
    import torch._dynamo

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    torch._dynamo.reset()
    ref = run(vgg19_random, UPES.loss, "imagenet", Compute(), steps=3, lr=0.003)
    got = run(vgg19_random, UPES.loss, "imagenet", Compute(compile="inductor"), steps=3, lr=0.003)
    assert totals(got) == pytest.approx(totals(ref), rel=1e-5) and totals(got) != []


@needs_native_bf16
@needs_assets
def test_cli_dtype_is_recorded(tmp_path):
    env = dict(os.environ, NSTBENCH_OFFLINE="1")
    r = subprocess.run(
        [sys.executable, "-m", "nstbench", *stylize_argv(2, 40, "--dtype", "bfloat16", "--out", str(tmp_path / "run"))],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    rec = json.load(open(tmp_path / "run" / "run.json"))
    assert rec["compute"] == {"dtype": "bfloat16", "channels_last": False, "compile": None, "bf16_support": BF16_WHY}


def load_bench():
    spec = importlib.util.spec_from_file_location("nstbench_bench", ROOT / "benchmarks" / "bench.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def test_conv_flop_count_matches_vgg19_published_cost():
    bench = load_bench()
    # VGG19 at 224 px: 19.6 GMACs in all, of which the three FC layers are 0.124 G
    macs = sum(ci * co * 9 * h * w for _, ci, co, h, w in bench.vgg_convs("vgg19", 224, 224))
    assert macs / 1e9 == pytest.approx(19.63 - 0.124, rel=0.01)
    full, cut = bench.gatys_conv_flops(224, 224, True), bench.gatys_conv_flops(224, 224, False)
    assert full - cut == pytest.approx(2 * 3 * 512 * 512 * 9 * 14 * 14)  # conv5_2..conv5_4, forward only


@needs_assets
@pytest.mark.parametrize("bf16", ["native", "emulated"])
def test_bench_quick_writes_the_csv_and_table(tmp_path, monkeypatch, bf16):
    native = bf16 == "native"
    if not native:  # a CPU without native bf16: the bench skips every bf16 row and says why
        monkeypatch.setattr("nstbench.nets.precision.cpu_flags", lambda: {"avx2", "fma"})
    elif not BF16_NATIVE:
        pytest.skip(f"bf16 tests skipped: {BF16_WHY}")
    bench = load_bench()
    threads = torch.get_num_threads()
    try:
        assert bench.main(["--quick", "--threads", "1", "--out", str(tmp_path)]) == 0
    finally:
        torch.set_num_threads(threads)
    rows = list(csv.DictReader(open(tmp_path / "bench.csv")))
    assert list(rows[0]) == bench.COLUMNS + bench.PROV_COLUMNS
    sections = {"peak", "gatys", "sweep", "fast", "target", "total"} | ({"e1_bf16"} if native else {"bf16"})
    assert {r["section"] for r in rows} == sections
    for r in rows:
        assert r["device"] == "cpu" and r["torch"] == torch.__version__ and int(r["threads"]) >= 1
        assert r["weights"] == "random" and r["plan"] == "quick"  # every row says what produced it
        assert r["bf16_native"] == str(native)
        if not native and r["dtype"] == "bfloat16":  # emulated bf16 is not measured: no value, no ratio
            assert r["value"] == r["ratio"] == "" and r["met"] == "not measured"
    traj = {
        r["method"]: float(r["value"]) for r in rows if r["metric"] == "max_rel_diff_total" and r["section"] == "gatys"
    }
    assert set(traj) == {"nstbench", "nstbench-cl"} | ({"nstbench-bf16", "nstbench-bf16-cl"} if native else set())
    assert traj["nstbench"] <= 1e-4 and traj["nstbench-cl"] <= 1e-4  # same loss as the appendix loop
    methods = {r["method"] for r in rows if r["section"] == "gatys" and r["metric"] == "seconds_per_iter"}
    assert "baseline" in methods and all(float(r["value"]) > 0 for r in rows if r["metric"] == "seconds_per_iter")
    targets = [r for r in rows if r["section"] == "target"]
    assert len(targets) >= 5 and all(r["met"] in ("True", "False") for r in targets if r["dtype"] != "bfloat16")
    assert {r["met"] for r in targets if "bf16" in r["case"]} <= ({"True", "False"} if native else {"not measured"})
    assert "| section |" in (tmp_path / "bench.md").read_text()
