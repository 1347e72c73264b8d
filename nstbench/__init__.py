"""nstbench: reproducible neural style transfer benchmarks (Gatys et al.; Johnson et al.).

Python API (nstbench/api.py; loaded on first use): nstbench.stylize(...), nstbench.train(...),
nstbench.apply(...), nstbench.load_backbone(...) and nstbench.presets (the Gatys presets module).
"""

__version__ = "0.1.0"

_API = ("train", "apply", "load_backbone", "Stylized", "Trained")


def __getattr__(name: str):
    # Lazy, so `nstbench --version` and `import nstbench` stay light. `stylize` and `presets` are
    # submodules: `nstbench.stylize` is always the module, which is callable (stylize.py, end) and
    # forwards a call to api.stylize, so `from nstbench import stylize` keeps meaning the module.
    if name in _API:
        from . import api

        return getattr(api, name)
    if name in ("stylize", "presets"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'nstbench' has no attribute {name!r}")
