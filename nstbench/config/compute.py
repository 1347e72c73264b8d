"""How the backbone runs (Compute): dtype, memory layout, torch.compile mode; never what is
computed (perceptual.py's module docstring says what each choice does to the numbers).

Torch-free at import (torch is imported by the methods that use it): the command line's options
(compute_args.py) and the torch-free listings name the modes without loading torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .errors import NstbenchError

if TYPE_CHECKING:  # annotations only: importing this module must not load torch
    import torch

DTYPES = ("float32", "bfloat16")  # bfloat16: autocast; Grams and losses stay fp32 (perceptual.py)
# torch.compile modes of Compute.compile: "reduce-overhead" is inductor with CUDA graphs; "eager"
# captures graphs without generating code (a test of the plumbing)
COMPILE_MODES = ("inductor", "reduce-overhead", "eager")


@dataclass(frozen=True)
class Compute:
    """How the backbone runs (see perceptual.py's module docstring). The default is plain fp32 NCHW."""

    dtype: Literal["float32", "bfloat16"] = "float32"
    channels_last: bool = False
    compile: Literal["inductor", "reduce-overhead", "eager"] | None = None  # None: eager PyTorch

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise NstbenchError(f"unknown dtype {self.dtype!r}; valid: {', '.join(DTYPES)}")
        if self.compile is not None and self.compile not in COMPILE_MODES:
            raise NstbenchError(f"unknown compile mode {self.compile!r}; valid: {', '.join(COMPILE_MODES)}")

    def compile_kwargs(self) -> dict:
        """torch.compile's arguments for this mode ("reduce-overhead" is a mode of inductor)."""
        return {"mode": "reduce-overhead"} if self.compile == "reduce-overhead" else {"backend": self.compile}

    def autocast(self, device_type: str):
        """The autocast context of this dtype (a no-op context for float32)."""
        import torch

        return torch.autocast(device_type, dtype=torch.bfloat16, enabled=self.dtype == "bfloat16")

    def prepare(self, module: torch.nn.Module) -> torch.nn.Module:
        """A network (the fast transformer) as this compute runs it: NHWC weights, compiled in place
        (module.compile: the state_dict keys stay as they are). Returns the same module."""
        import torch

        if self.channels_last:
            module = module.to(memory_format=torch.channels_last)
        if self.compile is not None:
            module.compile(**self.compile_kwargs())
        return module

    def describe(self) -> str:
        """'float32', 'bfloat16 channels_last compile=inductor', ...: for progress lines and labels."""
        parts = [self.dtype] + (["channels_last"] if self.channels_last else [])
        return " ".join(parts + ([f"compile={self.compile}"] if self.compile else []))
