"""The command-line form of compute.Compute, one definition for `nstbench stylize`, `nstbench
train` and every experiment script: --dtype, --channels-last, --compile, --allow-slow-bf16.

The commands default to float32 NCHW. The experiment scripts default to `auto`: float32 NCHW on
the CPU (the sources' precision, bit for bit the numbers the bands pin) and the GPU path on CUDA
(bf16 autocast, NHWC). Refusing emulated bf16 is left to each caller, which knows the device and
when "before any work" is. Torch-free (compute.py is): `nstbench --help`
and the argument parsing stay fast.
"""

from __future__ import annotations

import argparse

from ..config.compute import COMPILE_MODES, Compute


def add_compute_arguments(ap: argparse.ArgumentParser, what: str, auto: bool = False) -> None:
    """The four options, grouped under `what` they apply to; auto=True adds `--dtype auto` and makes it (and channels_last) the default."""
    g = ap.add_argument_group(f"compute ({what}; compute.Compute)")
    g.add_argument(
        "--dtype",
        choices=(["auto"] if auto else []) + ["float32", "bfloat16"],
        default="auto" if auto else "float32",
        help=("auto (default): float32 on the CPU, bfloat16 on CUDA; " if auto else "default float32; ")
        + "bfloat16 = autocast, Grams and losses stay fp32; refused on a CPU without native bf16 "
        "(no AVX512_BF16/AMX)",
    )
    g.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=None if auto else False,
        help="NHWC convolutions, the same numbers to fp32 rounding (default: " + ("on CUDA only)" if auto else "off)"),
    )
    g.add_argument(
        "--compile",
        choices=list(COMPILE_MODES),
        default=None,
        help="torch.compile the loss network and the fast network (default off; see benchmarks/gpu_check.py)",
    )
    g.add_argument(
        "--allow-slow-bf16",
        action="store_true",
        help="run bfloat16 even where the CPU would emulate it (many times slower than float32)",
    )


def compute_from_args(args: argparse.Namespace, device_type: str | None = None):
    """The compute.Compute the options ask for on `device_type` ("cpu", "cuda"): `auto` and an
    unset channels_last follow the device (the commands' options have neither: no device needed)."""
    gpu = device_type == "cuda"
    dtype = ("bfloat16" if gpu else "float32") if args.dtype == "auto" else args.dtype
    cl = gpu if args.channels_last is None else args.channels_last
    return Compute(dtype=dtype, channels_last=cl, compile=args.compile)
