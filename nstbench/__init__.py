"""nstbench: reproducible neural style transfer benchmarks (Gatys et al.; Johnson et al.)."""

__version__ = "0.1.0"
