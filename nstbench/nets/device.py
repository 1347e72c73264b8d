"""Devices: resolving a --device string, and whether a run's activations fit in its memory.

Kept apart from the commands so that every command and the experiment harness share one rule.
"""

from __future__ import annotations

import torch

from ..config.errors import NstbenchError


def resolve_device(device: str) -> torch.device:
    """A torch.device this build and machine can use, or a one-line error saying why not."""
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise NstbenchError(f"unknown device {device!r}; use cpu or cuda (cuda:N for one GPU)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise NstbenchError(f"device {device!r} requested but CUDA is not available here; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise NstbenchError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if dev.type != "cpu":
        try:  # mps, xpu, ...: only an allocation says whether this torch build supports it here
            torch.empty(1, device=dev)
        except (RuntimeError, AssertionError) as e:
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0].split(". ")[0][:160]
            raise NstbenchError(
                f"device {device!r} cannot be used with this torch build ({reason}); use --device cpu"
            ) from None
    return dev


def available_bytes(device: torch.device) -> int | None:
    """Free memory for tensors on `device` (CUDA: the driver's free bytes; CPU: MemAvailable), or
    None where it cannot be known (the check is then skipped)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the file counts kB
    except OSError:
        return None
    return None


_PROBE = 64  # px: the side of the probe forward; activations scale with the pixel count


@torch.no_grad()
def activation_bytes(extractor: torch.nn.Module, layers, hw: tuple[int, int], batch: int = 1) -> int:
    """Bytes of the float32 activations one forward of `extractor.extract(x, layers)` produces on a
    [batch, 3, H, W] input: what autograd keeps for the backward pass of an image optimisation (a
    lower bound of the run's peak). Measured on a 64 x 64 probe and scaled by the pixel count."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel()

    leaves = [m for m in extractor.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(count) for m in leaves]
    try:
        p = next(extractor.parameters(), None)
        probe = torch.zeros(1, 3, _PROBE, _PROBE, device=p.device if p is not None else "cpu")
        extractor.extract(probe, layers)
    finally:
        for h in hooks:
            h.remove()
    return int(total * hw[0] * hw[1] / _PROBE**2) * batch * 4


def check_memory(needed: int, device: torch.device, what: str) -> None:
    """Refuse, before any work, a run whose estimate does not fit in the device's free memory."""
    free = available_bytes(device)
    if free is not None and needed > free:
        raise NstbenchError(
            f"{what} needs about {needed / 2**30:.1f} GiB for its activations alone, more than the "
            f"{free / 2**30:.1f} GiB free on {device}; use a smaller --size"
        )
