"""Which compute dtypes this machine runs natively, and refusing the ones it would only emulate.

bf16 on a CPU: oneDNN (PyTorch's CPU convolutions) uses bf16 instructions only on CPUs with
AVX512_BF16 (AMD Zen 4, Intel Cooper Lake and later) or AMX-BF16 (Intel Sapphire Rapids and later).
Elsewhere (AVX2-only CPUs such as AMD Zen 3, or AVX-512 without BF16) every bf16 convolution is
emulated: converted and computed element by element, far slower than float32 itself (reported on a
Zen 3 machine: a 12-step `upes` run did not finish in 13 minutes at 100% CPU; fp32 takes 3 s a step
there). So `--dtype bfloat16` on such a CPU is refused before any work, unless the user insists.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..config.errors import NstbenchError

NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags (Linux names)
# ONEDNN_MAX_CPU_ISA values that stop oneDNN below its bf16 instruction sets (oneDNN's ISA names,
# lowest first; AVX512_CORE_BF16 is the first with native bf16 dot products).
_ISA_WITHOUT_BF16 = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str] | None:
    """The CPU's feature flags (None where they cannot be read, e.g. not Linux)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):  # the same on every core; the first is enough
            return set(line.split(":", 1)[1].split())
    return None


def bf16_support(device: torch.device) -> tuple[bool, str]:
    """(native, why): whether bf16 compute runs natively on `device`, and a sentence saying why."""
    if device.type == "cuda":
        ok = torch.cuda.is_bf16_supported()
        return ok, f"{torch.cuda.get_device_name(device)} {'supports' if ok else 'does not support'} bf16"
    if device.type != "cpu":
        return True, f"{device.type}: bf16 support left to PyTorch"
    cap = torch.backends.cpu.get_cpu_capability()
    flags = cpu_flags()
    if flags is None:
        return False, f"the CPU's flags cannot be read here (PyTorch CPU capability {cap}), so native bf16 is not known"
    native = [f for f in NATIVE_BF16_FLAGS if f in flags]
    if not native:
        return False, (
            f"this CPU has no native bf16 instructions (no {' / '.join(NATIVE_BF16_FLAGS)} among its "
            f"flags; PyTorch CPU capability {cap}): every bf16 convolution would be emulated, far "
            "slower than float32"
        )
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    if isa in _ISA_WITHOUT_BF16:
        return False, f"ONEDNN_MAX_CPU_ISA={isa} keeps oneDNN from this CPU's bf16 instructions"
    return True, f"native bf16 ({', '.join(native)})"


def require_native_bf16(device: torch.device, allow_slow: bool = False) -> str:
    """Refuse bf16 on a device that would only emulate it (NstbenchError naming the way out),
    unless allow_slow; returns the reason sentence for the run record."""
    native, why = bf16_support(device)
    if not native and not allow_slow:
        raise NstbenchError(
            f"--dtype bfloat16 refused: {why}; use --dtype float32, or --allow-slow-bf16 to run it anyway"
        )
    return why
