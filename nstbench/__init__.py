"""nstbench: reproducible neural style transfer benchmarks (Gatys et al.; Johnson et al.).

Python API (nstbench/interfaces/api.py; loaded on first use): nstbench.stylize(...), nstbench.train(...),
nstbench.apply(...), nstbench.load_backbone(...) and nstbench.presets (nstbench/config/presets.py).
"""

__version__ = "0.1.0"

_API = ("stylize", "train", "apply", "load_backbone", "Stylized", "Trained")


def __getattr__(name: str):
    # Lazy, so `nstbench --version` and `import nstbench` stay light. No subpackage (config, nets,
    # methods, harness, interfaces) is named like an API function (a loaded subpackage would shadow
    # it as the package's attribute): `stylize` is api.stylize, the Gatys run it calls is gatys_run.py.
    if name in _API:
        from .interfaces import api

        return getattr(api, name)
    if name == "presets":
        import importlib

        return importlib.import_module(".config.presets", __name__)
    raise AttributeError(f"module 'nstbench' has no attribute {name!r}")
