"""Named images and datasets: resolution from a local folder, a user cache, or a checked download.

Resolution order for a name (see README "Images and weights"):
1. `$NSTBENCH_ASSETS/<file>` (a folder laid out like ../shared/assets; the Makefile and CI set it),
   else `../shared/assets/<file>` beside the clone when that folder exists;
2. the user cache `$NSTBENCH_CACHE` (default `~/.cache/nstbench`);
3. download from the public URL into the cache, accepted only when its sha256 matches.
A download is written to a temporary file beside its target and renamed into place only after
the checksum passed, so an interrupted or corrupt download never leaves a file in the cache.
Anything that is not a registered name is treated as a path to an image file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import urllib.request
from functools import lru_cache
from pathlib import Path

from ..config.errors import NstbenchError, unknown

_REGISTRY_FILE = Path(__file__).resolve().parents[1] / "data" / "assets.json"  # nstbench/data/


@lru_cache(maxsize=1)
def registry() -> dict:
    return json.loads(_REGISTRY_FILE.read_text())


def image_names() -> list[str]:
    return sorted(registry()["images"])


def cache_dir() -> Path:
    return Path(os.environ.get("NSTBENCH_CACHE", Path.home() / ".cache" / "nstbench"))


# A clone beside the project's shared folder finds its assets without NSTBENCH_ASSETS (the rule
# the Makefile applies), so the README's commands work in a fresh shell after `make install`.
_BESIDE_CLONE = Path(__file__).resolve().parents[3] / "shared" / "assets"


def local_assets_dir() -> Path | None:
    """$NSTBENCH_ASSETS, else ../shared/assets beside the clone when it holds SOURCES.md, else None."""
    root = os.environ.get("NSTBENCH_ASSETS")
    if root:
        if not Path(root).expanduser().is_dir():  # a typo would otherwise mean downloads, silently
            raise NstbenchError(f"NSTBENCH_ASSETS={root} is not a folder; point it at an asset folder or unset it")
        return Path(root).expanduser()
    return _BESIDE_CLONE if (_BESIDE_CLONE / "SOURCES.md").is_file() else None


def offline() -> bool:
    """NSTBENCH_OFFLINE=1: nstbench attempts no download (images, data sets, weights)."""
    return os.environ.get("NSTBENCH_OFFLINE") == "1"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(url: str, dest: Path, sha256: str, timeout: float = 60.0) -> Path:
    """Download url to dest, keeping it only if its sha256 matches. Never leaves a partial file.
    NSTBENCH_OFFLINE=1: no attempt; the error says where the file goes."""
    if offline():
        raise NstbenchError(
            f"{dest.name} is not here and NSTBENCH_OFFLINE=1 forbids downloading it: put it at {dest} "
            "(or in the asset folder NSTBENCH_ASSETS names)"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            for chunk in iter(lambda: resp.read(1 << 20), b""):
                h.update(chunk)
                out.write(chunk)
        if h.hexdigest() != sha256:
            raise NstbenchError(
                f"checksum mismatch for {url}: got sha256 {h.hexdigest()[:16]}..., expected {sha256[:16]}...; nothing was kept"
            )
        os.replace(tmp, dest)
        return dest
    except NstbenchError:
        raise
    except OSError as e:  # URLError and socket timeouts are OSErrors
        raise NstbenchError(f"cannot download {url}: {e}; set NSTBENCH_ASSETS to a local asset folder") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _resolve(file: str, url: str, sha256: str) -> Path:
    local = local_assets_dir()
    if local is not None and (local / file).is_file():
        return local / file
    cached = cache_dir() / file
    if cached.is_file():
        return cached
    return download(url, cached, sha256)


def resolve_image(name_or_path: str | os.PathLike) -> Path:
    """A registered image name (`tubingen`, `hockney`, ...) or any path to an image file."""
    s = str(name_or_path)
    entry = registry()["images"].get(s)
    if entry is not None:
        return _resolve(entry["file"], entry["url"], entry["sha256"])
    p = Path(s).expanduser()
    if p.exists() or os.sep in s or "." in Path(s).name:
        return p  # a path: the image loader reports a missing or unreadable file
    raise unknown("image", s, image_names())


def resolve_dataset(name_or_path: str | os.PathLike) -> Path:
    """A folder of training images: a registered dataset name (`coco100`) or a path to a folder."""
    s = str(name_or_path)
    entry = registry()["datasets"].get(s)
    if entry is None:
        p = Path(s).expanduser()
        if p.is_file():
            raise NstbenchError(f"--data expects a folder of training images; {s} is a file")
        if not p.is_dir():
            raise NstbenchError(f"data folder not found: {s} (or a dataset name: {', '.join(registry()['datasets'])})")
        return p
    local = local_assets_dir()
    if local is not None and (local / entry["folder"]).is_dir():
        return local / entry["folder"]
    folder = cache_dir() / entry["folder"]
    for fname, sha in sorted(entry["files"].items()):
        if not (folder / fname).is_file():
            download(entry["url_prefix"] + fname, folder / fname, sha)
    return folder
