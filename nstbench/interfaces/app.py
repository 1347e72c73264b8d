"""The web app's logic (no Streamlit here): finding fast-network checkpoints, reading uploads,
running the two methods for the page, and the `nstbench app` command that starts the server.

The page itself is nstbench/interfaces/app_page.py (a Streamlit script). The HUST report (000, section 4)
served its four fast networks with Streamlit: browse for a file, select a style, see the output.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import torch
from PIL import Image

from ..config.errors import NstbenchError
from ..config.specs import GatysPreset, Resize
from ..nets.assets import cache_dir, registry, resolve_image
from ..nets.images import load_image, save_image, space_to_unit, to_pil
from ..nets.transformer import CHECKPOINT_KIND, is_examples_state_dict, read_checkpoint

# The styles of the HUST app: main.py's selectbox ('mosaic', 'rain_princess', 'udnie', 'wave');
# the report's text names "autumn" instead of rain_princess, the code serves rain_princess.
HUST_STYLES = ("mosaic", "udnie", "wave", "rain_princess")
MODELS_ENV = "NSTBENCH_APP_MODELS"  # os.pathsep-separated checkpoint folders (set by `nstbench app --models`)
# Uploads above this many bytes are refused before they are opened (Streamlit's own limit is set
# to the same number of MB by `nstbench app`); the pixel limit is images.MAX_PIXELS.
MAX_UPLOAD_MB = 50
CHECKPOINT_SUFFIXES = (".pth", ".model")  # pytorch/examples saves <style>.pth / .model state dicts
EXAMPLES_WEIGHTS = (
    "not recorded in the file; pytorch/examples trains against torchvision's ImageNet "
    "VGG16 (vgg.py: models.vgg16(pretrained=True))"
)


def default_model_dirs() -> list[Path]:
    """runs/ (where `nstbench train --out runs/...` and `make app-models` put networks) and the cache."""
    return [Path("runs"), cache_dir() / "models"]


def model_dirs(spec: str | None = None) -> list[Path]:
    spec = spec if spec is not None else os.environ.get(MODELS_ENV)
    if not spec:
        return default_model_dirs()
    return [Path(p).expanduser() for p in spec.split(os.pathsep) if p]


def train_hint(style: str) -> str:
    return (
        f"nstbench train --preset hust --style {style} --profile cpu --out runs/hust-{style}"
        " (or `make app-models` for all four)"
    )


def weights_summary(rec: dict | None) -> str:
    """One line naming the backbone weights of a run record (weights.load_backbone's record)."""
    if not rec:
        return "unknown backbone weights"
    arch = rec.get("arch", "backbone")
    family = f" ({rec['family']})" if rec.get("family") else ""
    if rec.get("kind") == "random":
        return f"RANDOM {arch} weights (seed {rec.get('seed')}): not ImageNet, not comparable with the sources' results"
    if rec.get("imagenet"):
        return f"ImageNet {arch}{family}: {rec.get('source') or rec.get('file')}"
    if rec.get("kind") == "standin":
        instead = f", {arch} instead of {rec['instead_of']}" if rec.get("instead_of") else ""
        return f"STAND-IN {rec.get('description', 'weights')}{instead}"
    return f"{arch} weights from {rec.get('file')} (not verified as ImageNet)"


# ---------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelEntry:
    """One fast-network checkpoint found on disk."""

    path: Path
    style: str  # the style name (nstbench: the training style; pytorch/examples: the file name)
    format: str  # "nstbench" or "pytorch-examples"
    network: str  # transformer variant
    weights: str  # weights_summary of the loss network it was trained against
    style_image: Path | None  # the style image (thumbnail, and the comparison's Gatys style), when found
    steps: int | None = None

    @property
    def label(self) -> str:
        return f"{self.style} ({self.format} {self.network}, {self.path})"


def _style_image(name: str, recorded: str | None = None) -> Path | None:
    if recorded and Path(recorded).is_file():
        return Path(recorded)
    if name in registry()["images"]:
        try:
            return resolve_image(name)
        except NstbenchError:  # not local and no download: no thumbnail
            return None
    return None


@lru_cache(maxsize=256)
def _read_entry(path: str, mtime_ns: int, size: int) -> ModelEntry | str:
    """A ModelEntry, or the reason the file is not a usable checkpoint (cached per file version)."""
    p = Path(path)
    try:
        ckpt = read_checkpoint(p)
    except NstbenchError as e:
        return str(e)
    if ckpt.get("kind") == CHECKPOINT_KIND and "state_dict" in ckpt:
        style = ckpt.get("style") or {}
        name = str(style.get("name") or p.parent.name)
        name = Path(name).stem if ("/" in name or "." in name) else name
        return ModelEntry(
            p,
            name,
            "nstbench",
            (ckpt.get("network") or {}).get("name", "?"),
            weights_summary(ckpt.get("weights")),
            _style_image(name, style.get("path")),
            ckpt.get("step"),
        )
    if is_examples_state_dict(ckpt):
        return ModelEntry(p, p.stem, "pytorch-examples", "pytorch-examples", EXAMPLES_WEIGHTS, _style_image(p.stem))
    return f"{p} is not a fast-network checkpoint"


def find_checkpoints(dirs: list[Path]) -> tuple[list[ModelEntry], list[str]]:
    """The checkpoints under `dirs` (nstbench transformer.pt files, pytorch/examples .pth/.model
    state dicts; resumable checkpoint.pt files are skipped: their transformer.pt is the result),
    HUST styles first; and one line per file that could not be used."""
    found, problems, seen = [], [], set()
    for d in dirs:
        if not d.is_dir():
            continue
        for p in sorted(d.rglob("*")):
            if not p.is_file() or not (p.name == "transformer.pt" or p.suffix in CHECKPOINT_SUFFIXES):
                continue
            key = p.resolve()
            if key in seen:
                continue
            seen.add(key)
            st = p.stat()
            entry = _read_entry(str(p), st.st_mtime_ns, st.st_size)
            (found if isinstance(entry, ModelEntry) else problems).append(entry)
    order = {s: i for i, s in enumerate(HUST_STYLES)}
    found.sort(key=lambda e: (order.get(e.style, len(order)), e.style, str(e.path)))
    return found, problems


# ---------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------


@dataclass
class Picture:
    """A content or style image for the page: where it is on disk, and what it looks like."""

    path: Path
    name: str
    image: torch.Tensor  # [1, 3, H, W] unit RGB, as images.load_image reads it
    notes: list[str] = field(default_factory=list)  # what was done to read it (shown on the page)


def _probe_notes(path: Path) -> list[str]:
    """What images.load_image will do with this file that the user should know about."""
    with Image.open(path) as im:
        notes = []
        if getattr(im, "n_frames", 1) > 1:
            notes.append(f"animated {im.format} ({im.n_frames} frames): the first frame is used")
        if im.mode == "CMYK":
            notes.append("CMYK image: converted to RGB without a colour profile (colours may shift)")
        if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
            notes.append("16-bit grayscale: scaled from 0..65535 to 8-bit RGB")
        if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
            notes.append("transparency dropped (the alpha channel is ignored)")
    return notes


def read_upload(name: str, data: bytes, folder: Path) -> Picture:
    """Check and decode an uploaded file: a one-line NstbenchError for anything not usable.
    The pixel limit (images.MAX_PIXELS) is checked from the header, before decoding."""
    shown = Path(name).name or "upload"
    if not data:
        raise NstbenchError(f"{shown} is empty (0 bytes)")
    if len(data) > MAX_UPLOAD_MB * 2**20:
        raise NstbenchError(f"{shown} is {len(data) / 2**20:.0f} MB, above the upload limit of {MAX_UPLOAD_MB} MB")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"upload{Path(shown).suffix.lower() or '.img'}"
    path.write_bytes(data)
    try:
        image = load_image(path)  # refuses what it cannot use (the pixel limit before decoding)
    except NstbenchError as e:
        raise NstbenchError(str(e).replace(str(path), shown)) from None
    return Picture(path, shown, image, _probe_notes(path))


def named_picture(name: str) -> Picture:
    return Picture(resolve_image(name), name, load_image(name))


def content_names() -> list[str]:
    return sorted(n for n, e in registry()["images"].items() if e["file"].startswith("content/"))


def style_names() -> list[str]:
    return sorted(n for n, e in registry()["images"].items() if e["file"].startswith("style/"))


def fit_size(image: torch.Tensor, long_side: int) -> int | None:
    """The `size` argument that shrinks an image to `long_side` (None: it already fits; never enlarge)."""
    return long_side if max(image.shape[-2:]) > long_side else None


def resized_copy(picture: Picture, resize: Resize, folder: Path) -> Picture:
    """The picture resized as `resize` says, written as PNG: the side by side feeds this one file to
    both methods, so they see the same pixels (the hust preset floors sizes, the fast path rounds)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = save_image(load_image(picture.path, resize), folder / f"{Path(picture.name).stem}.png")
    return Picture(path, picture.name, load_image(path), picture.notes)


# ---------------------------------------------------------------------------------------------
# Running the methods
# ---------------------------------------------------------------------------------------------


@dataclass
class FastResult:
    image: Image.Image
    png: bytes  # the output file as written by fast.stylize_images
    seconds: float  # the network's forward pass (stylize_images' timing: no image reading or writing)
    size_hw: list
    entry: ModelEntry


def run_fast(entry: ModelEntry, picture: Picture, long_side: int, out: Path) -> FastResult:
    """One forward pass of the network on the picture, shrunk to `long_side` when larger (never enlarged)."""
    from ..methods.inference import stylize_images

    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{Path(picture.name).stem}-{entry.style}.png"
    # the page shows the result at the photo's size; the file is the page's own scratch copy, replaced on each run
    size = fit_size(picture.image, long_side)
    rec = stylize_images(entry.path, [str(picture.path)], path, size=size, crop=True, overwrite=True)[0]
    png = path.read_bytes()
    with Image.open(path) as im:
        image = im.convert("RGB")
    return FastResult(image, png, rec["seconds"], rec["size_hw"], entry)


class Cancelled(Exception):
    """Raised from the step callback when the user cancels a Gatys run."""


class GatysJob:
    """One `nstbench stylize` run in a background thread, observed by the page between reruns.

    The thread only writes plain attributes (status, step, losses, preview, record); the page reads
    them. cancel() makes the next step raise Cancelled, so stylize_to_folder() writes nothing.
    """

    def __init__(
        self,
        preset: GatysPreset,
        content: Path,
        style: Path,
        out: Path,
        *,
        weights: str = "auto",
        seed: int = 0,
        preview_seconds: float = 0.5,
    ):
        self.preset, self.content, self.style, self.out = preset, content, style, out
        self.weights, self.seed, self.preview_seconds = weights, seed, preview_seconds
        self.status = "starting"  # starting | running | done | cancelled | error
        self.step = 0
        self.losses: list[dict] = []
        self.preview: Image.Image | None = None
        self.record: dict | None = None
        self.error = ""
        self._last_preview = 0.0
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="nstbench-gatys")

    def start(self) -> "GatysJob":
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self.status in ("starting", "running")

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _on_step(self, step: int, x: torch.Tensor, losses: dict) -> None:
        if self._cancel.is_set():
            raise Cancelled
        self.step = step
        self.losses.append({"step": step, **losses})
        now = time.perf_counter()
        if now - self._last_preview >= self.preview_seconds or step >= self.preset.steps:
            self.preview = to_pil(space_to_unit(x[:1], self.preset.space))
            self._last_preview = now

    def _run(self) -> None:
        from ..methods.gatys import RunOptions
        from ..methods.gatys_run import stylize_to_folder

        self.status = "running"
        try:
            # on the CPU (RunOptions' default device), as the app always ran
            run = RunOptions(seed=self.seed, progress_every=0, on_step=self._on_step, weights=self.weights)
            self.record = stylize_to_folder(self.preset, str(self.content), str(self.style), self.out, run=run)
            self.status = "done"
        except Cancelled:
            self.status = "cancelled"
        except NstbenchError as e:
            self.error, self.status = str(e), "error"
        except Exception as e:  # the page shows it in one line; the server keeps serving
            self.error, self.status = f"{type(e).__name__}: {e}", "error"


# ---------------------------------------------------------------------------------------------
# `nstbench app`
# ---------------------------------------------------------------------------------------------

PAGE = Path(__file__).with_name("app_page.py")


def server_command(port: int) -> list[str]:
    """The Streamlit server on 127.0.0.1 only, no browser, no telemetry, upload limit in MB."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(PAGE),
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.maxUploadSize",
        str(MAX_UPLOAD_MB),
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
    ]


def server_env(models: str | None) -> dict:
    env = dict(os.environ)
    if models:
        paths = [Path(p).expanduser() for p in models.split(os.pathsep) if p]
        for p in paths:
            if not p.is_dir():
                raise NstbenchError(f"--models folder not found: {p}")
        env[MODELS_ENV] = os.pathsep.join(str(p.resolve()) for p in paths)
    return env


def check_port_free(port: int) -> None:
    """Refuse a port something already listens on (bound as Streamlit's server binds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            raise NstbenchError(f"port {port} on 127.0.0.1 is not free ({e.strerror}); choose another --port") from None


def app_command(args) -> None:
    try:
        import streamlit  # noqa: F401
    except ImportError:
        raise NstbenchError("the app needs Streamlit: pip install -e '.[app]' (or `make app`)") from None
    if not 1 <= args.port <= 65535:
        raise NstbenchError(f"--port must be 1..65535, got {args.port}")
    env = server_env(args.models)
    check_port_free(args.port)  # before the announcement: a busy port is the one line, not after it
    print(f"nstbench app on http://127.0.0.1:{args.port} (Ctrl-C stops it)", file=sys.stderr, flush=True)
    rc, stopped = run_server(server_command(args.port), env)
    if rc != 0 and not stopped:
        raise NstbenchError(f"the Streamlit server stopped with status {rc} (see its messages above)")


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def run_server(command: list[str], env: dict) -> tuple[int, bool]:
    """Run the server as a child that stops with this process: SIGINT, SIGTERM and SIGHUP are
    forwarded to it, and we wait for it to exit (so its port and memory are freed when `nstbench app`
    ends). The child gets a session of its own, so a terminal's Ctrl-C reaches it once (forwarded),
    not twice. Returns its exit status and whether a stop signal ended it."""
    proc = subprocess.Popen(command, env=env, start_new_session=True)
    stopped = False

    def forward(signum, frame):
        nonlocal stopped
        stopped = True
        if proc.poll() is None:
            proc.send_signal(signum)

    old = {s: signal.signal(s, forward) for s in STOP_SIGNALS}
    try:
        return proc.wait(), stopped
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        if proc.poll() is None:  # an exception of ours: the server must not outlive the command
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
