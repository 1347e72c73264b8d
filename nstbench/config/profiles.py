"""The run profiles every experiment and `nstbench train` share (EXPERIMENTS.md): names and the
default. Kept free of torch so the command line can offer them before loading anything."""

PROFILE_NAMES = ("smoke", "cpu", "paper")  # every experiment and `nstbench train` has these three (EXPERIMENTS.md)


def default_profile(device: str) -> str:
    """The profile a run gets without --profile, for `train` and the experiment scripts alike (the
    Makefile's rule): `paper` (the sources' own sizes) on a CUDA device, `cpu` (smaller but
    faithful) otherwise."""
    return "paper" if str(device).startswith("cuda") else "cpu"
