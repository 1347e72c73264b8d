"""bf16 only where the CPU runs it natively: the check, and the CLI refusing before any work."""

import time
from pathlib import Path

import pytest
import torch
from conftest import needs_assets, stylize_argv

from nstbench.config.errors import NstbenchError
from nstbench.interfaces import cli
from nstbench.nets import precision

CPU = torch.device("cpu")
ZEN3_FLAGS = {"fpu", "sse4_2", "avx", "avx2", "fma", "f16c"}  # AVX2, no AVX-512, no BF16
ZEN4_FLAGS = ZEN3_FLAGS | {"avx512f", "avx512bw", "avx512_bf16"}


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text(
        "processor\t: 0\nflags\t\t: fpu avx2 avx512_bf16\n\nprocessor\t: 1\nflags\t\t: fpu avx2 avx512_bf16\n"
    )
    assert precision.cpu_flags(info) == {"fpu", "avx2", "avx512_bf16"}
    assert precision.cpu_flags(tmp_path / "missing") is None


@pytest.mark.parametrize(
    "flags,isa,native",
    [
        (ZEN4_FLAGS, "", True),
        (ZEN3_FLAGS | {"amx_bf16"}, "", True),
        (ZEN3_FLAGS, "", False),
        (ZEN3_FLAGS | {"avx512f", "avx512bw"}, "", False),  # AVX-512 without BF16 still emulates
        (ZEN4_FLAGS, "AVX2", False),  # oneDNN capped below its bf16 kernels
        (ZEN4_FLAGS, "avx512_core_bf16", True),
        (None, "", False),  # flags unknown: not assumed native
    ],
)
def test_bf16_support_follows_the_cpu_flags_and_onednn_cap(monkeypatch, flags, isa, native):
    monkeypatch.setattr(precision, "cpu_flags", lambda: flags)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", isa)
    ok, why = precision.bf16_support(CPU)
    assert ok is native and why
    if not native:
        with pytest.raises(NstbenchError, match="--dtype float32.*--allow-slow-bf16"):
            precision.require_native_bf16(CPU)
        assert precision.require_native_bf16(CPU, allow_slow=True) == why


def _stylize_argv(out: Path, *extra: str) -> list[str]:
    return stylize_argv(1, 40, "--dtype", "bfloat16", "--out", str(out), *extra)


def _train_argv(out: Path, *extra: str) -> list[str]:
    return ["train", "--preset", "hust", "--style", "mosaic", "--profile", "smoke", "--steps", "1"] + [
        "--weights", "random", "--dtype", "bfloat16", "--out", str(out), *extra,
    ]  # fmt: skip


@needs_assets
@pytest.mark.parametrize("argv", [_stylize_argv, _train_argv], ids=["stylize", "train"])
def test_cli_refuses_emulated_bf16_at_once_with_one_line(monkeypatch, tmp_path, capsys, argv):
    monkeypatch.setattr(precision, "cpu_flags", lambda: ZEN3_FLAGS)
    t = time.perf_counter()
    code = cli.main(argv(tmp_path / "run"))
    seconds = time.perf_counter() - t
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and seconds < 1.0
    assert len(err) == 1 and "no native bf16" in err[0] and "--allow-slow-bf16" in err[0]
    assert not (tmp_path / "run").exists()  # refused before anything was written


@needs_assets
def test_cli_runs_emulated_bf16_when_insisted(monkeypatch, tmp_path):
    monkeypatch.setattr(precision, "cpu_flags", lambda: ZEN3_FLAGS)
    assert cli.main(_stylize_argv(tmp_path / "run", "--allow-slow-bf16", "--channels-last")) == 0
    import json

    rec = json.loads((tmp_path / "run" / "run.json").read_text())
    assert rec["compute"]["dtype"] == "bfloat16" and "no native bf16" in rec["compute"]["bf16_support"]
    assert rec["compute"]["channels_last"] is True


@needs_assets
def test_cli_train_records_bf16_and_channels_last_when_insisted(monkeypatch, tmp_path):
    monkeypatch.setattr(precision, "cpu_flags", lambda: ZEN3_FLAGS)
    assert cli.main(_train_argv(tmp_path / "run", "--allow-slow-bf16", "--channels-last")) == 0
    import json

    rec = json.loads((tmp_path / "run" / "run.json").read_text())
    assert rec["compute"]["dtype"] == "bfloat16" and rec["compute"]["channels_last"] is True
    assert "no native bf16" in rec["compute"]["bf16_support"]


@needs_assets
def test_experiment_refuses_emulated_bf16_before_any_work(monkeypatch, tmp_path, capsys):
    from conftest import load_script

    monkeypatch.setattr(precision, "cpu_flags", lambda: ZEN3_FLAGS)
    mod = load_script("e7_upes")
    argv = ["--profile", "smoke", "--weights", "random", "--out", str(tmp_path / "r"), "--dtype", "bfloat16"]
    assert mod.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no native bf16" in err[0] and "--allow-slow-bf16" in err[0]
    assert not (tmp_path / "r").exists()
