"""The device machine's Python, imitated for the rehearsal of benchmarks/device_call.sh
(tests/test_device_call.py). Python imports `sitecustomize` at start-up from its path, so with this
folder on PYTHONPATH every process of the rehearsal (the checks and each experiment they start) sees:

- only the distributions of the device image: importing a module of any other installed one
  (DEVICE_REHEARSAL_BLOCKED: lpips, streamlit, submitit, selenium, ..., computed by the test from
  packages.txt) raises ModuleNotFoundError, as it would there;
- nstbench only from the carried checkout (DEVICE_REHEARSAL_CHECKOUT), not from an editable install;
- no network: no name resolves and no socket connects (the device machine reaches nothing);
- a log (DEVICE_REHEARSAL_LOG) of every file opened and folder listed under the paths named in
  DEVICE_REHEARSAL_WATCH: which prepared assets were read, and that the real asset folder was not.
"""

import importlib.abc
import importlib.machinery
import os
import socket
import sys

_BLOCKED = set(os.environ.get("DEVICE_REHEARSAL_BLOCKED", "").split())
_CHECKOUT = os.path.realpath(os.environ["DEVICE_REHEARSAL_CHECKOUT"])
_LOG = os.environ["DEVICE_REHEARSAL_LOG"]
_WATCH = tuple(  # each as given and with its links resolved: a file may be opened by either path
    q for p in os.environ.get("DEVICE_REHEARSAL_WATCH", "").split(os.pathsep) if p for q in (p, os.path.realpath(p))
)


class _DeviceImage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in _BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (not on the device image: rehearsal)", name=name)
        if name == "nstbench":
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            where = os.path.realpath(spec.origin) if spec and spec.origin else None
            if where is None or not where.startswith(_CHECKOUT + os.sep):
                raise ModuleNotFoundError(f"nstbench outside the carried checkout ({where}): rehearsal", name=name)
            return spec
        return None


sys.meta_path.insert(0, _DeviceImage())


def _no_network(*args, **kwargs):
    raise socket.gaierror("no network on the device machine (rehearsal)")


socket.getaddrinfo = _no_network
socket.socket.connect = _no_network
socket.socket.connect_ex = _no_network


def _audit(event, args):
    if event in ("open", "os.listdir", "os.scandir") and args and isinstance(args[0], (str, bytes, os.PathLike)):
        p = os.fsdecode(args[0])
        if p.startswith(_WATCH) or (not os.path.isabs(p) and os.path.abspath(p).startswith(_WATCH)):
            fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            try:
                os.write(fd, (os.path.abspath(p) + "\n").encode())
            finally:
                os.close(fd)


if _WATCH:
    sys.addaudithook(_audit)
