"""Training images for the fast networks: a folder of JPEG/PNG images as deterministic batches.

The papers and reports train on COCO train2014 (82,783 images, about 13 GB): get train2014.zip from
https://cocodataset.org/#download (http://images.cocodataset.org/zips/train2014.zip), unzip it and
pass `--data .../train2014`. nstbench never downloads it. The `smoke` and `cpu` profiles use the
100 COCO images of the asset folder (`coco100`, see ../shared/assets/SOURCES.md) instead.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import torch

from ..config.errors import NstbenchError
from ..config.specs import Resize
from .images import load_image

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
COCO_HELP = (
    "COCO train2014 (82,783 images, about 13 GB) is not downloaded by nstbench: get "
    "http://images.cocodataset.org/zips/train2014.zip (see https://cocodataset.org/#download), unzip it "
    "and pass --data .../train2014, or use --data coco100 (100 images from the asset folder)"
)


_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")  # how JPEG and PNG files begin


def _looks_like_image(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(8).startswith(_MAGIC)
    except OSError:
        return False


def _checksum_list(path: Path) -> bool:
    """SHA256SUMS and the like: a data set's own checksum list, not a stray file worth a warning."""
    return path.name.upper() in ("SHA256SUMS", "SHA1SUMS", "SHA512SUMS", "MD5SUMS") or path.suffix.lower() in (
        ".sha256",
        ".md5",
    )


class ImageFolderData:
    """The training images of a folder (recursive; .jpg/.jpeg/.png, any case), as [B, 3, S, S] unit batches.

    Batch k of a run is a pure function of (seed, k): epoch e = k // batches_per_epoch uses the
    permutation of torch.randperm under seed `seed * 1_000_003 + e` (sorted order when shuffle is
    off). Grayscale, palette and 16-bit images are converted by images.load_image. A file that
    cannot be decoded is skipped: the next file in sorted order takes its place (so the order stays
    deterministic), and it is counted and reported once.
    """

    # Decoded images are kept in memory when they fit in this budget (small data sets, CPU runs).
    CACHE_BYTES = 512 * 2**20

    def __init__(
        self,
        root: Path,
        size: int,
        batch: int,
        resize: str = "exact",
        shuffle: bool = True,
        seed: int = 0,
        max_images: int | None = None,
        log: Callable[[str], None] = print,
    ):
        self.root, self.size, self.batch, self.resize, self.shuffle, self.seed = (
            Path(root),
            size,
            batch,
            resize,
            shuffle,
            seed,
        )
        self.log = log
        if not self.root.is_dir():
            raise NstbenchError(f"data folder not found: {self.root}; {COCO_HELP}")
        self.check_size(size)
        all_files = sorted(
            p for p in self.root.rglob("*") if p.is_file() and not p.name.startswith(".") and not _checksum_list(p)
        )
        named = [p for p in all_files if p.suffix.lower() in IMAGE_EXTENSIONS]
        files = [p for p in named if _looks_like_image(p)]  # empty and non-image files are not usable images
        self.other_files = len(all_files) - len(named)
        self.not_images = len(named) - len(files)
        self.total_found = len(files)
        if max_images is not None:
            files = files[:max_images]
        self.files = files
        if len(files) < batch:
            skipped = (
                f" ({self.not_images} empty or non-JPEG/PNG file(s) named as images skipped)" if self.not_images else ""
            )
            raise NstbenchError(
                f"data folder {self.root} has {len(files)} usable image file(s) "
                f"(.jpg/.jpeg/.png){skipped}; a batch needs {batch}. {COCO_HELP}"
            )
        self.batches_per_epoch = len(files) // batch
        rel = "\n".join(str(p.relative_to(self.root)) for p in files)
        self.list_sha256 = hashlib.sha256(rel.encode()).hexdigest()
        self.unreadable: dict[str, str] = {}
        self._cache: dict[int, torch.Tensor] = {}
        self._cache_ok = len(files) * 3 * size * size * 4 <= self.CACHE_BYTES
        log(
            f"data: {len(files)} images under {self.root}"
            + (
                f" (first {max_images} of {self.total_found})"
                if max_images is not None and self.total_found > len(files)
                else ""
            )
            + (f"; skipped {self.other_files} non-image file(s)" if self.other_files else "")
            + (f"; skipped {self.not_images} empty or non-JPEG/PNG file(s) named as images" if self.not_images else "")
            + f"; {self.batches_per_epoch} batches of {batch} per epoch"
        )

    def describe(self) -> dict:
        return {
            "root": str(self.root),
            "images": len(self.files),
            "found": self.total_found,
            "non_image_files_skipped": self.other_files,
            "not_images_skipped": self.not_images,
            "unreadable_skipped": sorted(self.unreadable),
            "list_sha256": self.list_sha256,
            "size": self.size,
            "resize": self.resize,
            "shuffle": self.shuffle,
            "batches_per_epoch": self.batches_per_epoch,
        }

    @staticmethod
    def check_size(size: int) -> None:
        """The transformers downsample twice by 2 and upsample back: a side that is not a multiple
        of 4 comes out larger than it went in, so its loss against the input cannot be taken."""
        if size < 16 or size % 4:
            raise NstbenchError(
                f"training size {size} px is not valid: it must be a multiple of 4 and at least 16 "
                f"(e.g. {max(16, size - size % 4)} or {max(16, size - size % 4 + 4)})"
            )

    def order(self, epoch: int) -> torch.Tensor:
        n = len(self.files)
        if not self.shuffle:
            return torch.arange(n)
        # an arbitrary large prime keeps (seed, epoch) pairs apart
        return torch.randperm(n, generator=torch.Generator().manual_seed(self.seed * 1_000_003 + epoch))

    def _load(self, i: int) -> torch.Tensor:
        if i in self._cache:
            return self._cache[i]
        S = self.size
        for k in range(len(self.files)):  # on failure, the next file in sorted order
            j = (i + k) % len(self.files)
            path = self.files[j]
            if str(path) in self.unreadable:
                continue
            try:
                if self.resize == "exact":
                    x = load_image(path, Resize("exact", (S, S), "bilinear"))
                else:  # torchvision Resize(S) then CenterCrop(S): crop offsets round((H - S) / 2)
                    x = load_image(path, Resize("short", S, "bilinear"))
                    h, w = x.shape[-2:]
                    top, left = int(round((h - S) / 2.0)), int(round((w - S) / 2.0))
                    x = x[..., top : top + S, left : left + S]
            except NstbenchError as e:
                self.unreadable[str(path)] = str(e)
                self.log(f"data: skipping unreadable image ({len(self.unreadable)} so far): {e}")
                continue
            x = x[0].contiguous()
            if self._cache_ok:
                self._cache[i] = x
            return x
        raise NstbenchError(f"no readable image in {self.root}")

    def batch_at(self, step: int) -> tuple[torch.Tensor, int]:
        """(images [B, 3, S, S] in unit space, epoch) for the 0-based step."""
        epoch, pos = divmod(step, self.batches_per_epoch)
        idx = self.order(epoch)[pos * self.batch : (pos + 1) * self.batch].tolist()
        return torch.stack([self._load(i) for i in idx]), epoch
