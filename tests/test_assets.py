"""Asset resolution order: local folder, then cache, then a checksum-verified download."""

import hashlib

import pytest
from localserver import serve

from nstbench.config.errors import NstbenchError
from nstbench.nets import assets

PAYLOAD = b"\x89PNG fake image bytes for the resolver test"
SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def fake_registry(monkeypatch, tmp_path):
    served = tmp_path / "www"
    served.mkdir()
    (served / "thing.png").write_bytes(PAYLOAD)
    (served / "bad.png").write_bytes(b"tampered")
    reg = {"images": {}, "datasets": {}}
    monkeypatch.setattr(assets, "registry", lambda: reg)
    monkeypatch.setenv("NSTBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NSTBENCH_ASSETS", raising=False)
    monkeypatch.delenv("NSTBENCH_OFFLINE", raising=False)  # these tests are about downloading
    monkeypatch.setattr(assets, "_BESIDE_CLONE", tmp_path / "no-shared-assets")
    return reg, served, tmp_path


def test_the_asset_folder_beside_the_clone_is_found_without_the_variable(fake_registry, monkeypatch):
    """A fresh shell after `make install` has no NSTBENCH_ASSETS: ../shared/assets beside the
    clone is used when it holds SOURCES.md (the Makefile's rule), and not otherwise."""
    reg, served, tmp = fake_registry
    beside = tmp / "shared" / "assets"
    (beside / "style").mkdir(parents=True)
    (beside / "style" / "thing.png").write_bytes(PAYLOAD)
    reg["images"]["thing"] = {"file": "style/thing.png", "url": "http://127.0.0.1:9/never", "sha256": SHA}
    monkeypatch.setattr(assets, "_BESIDE_CLONE", beside)
    with pytest.raises(NstbenchError, match="cannot download"):  # no SOURCES.md: not an asset folder
        assets.resolve_image("thing")
    (beside / "SOURCES.md").write_text("sources")
    assert assets.resolve_image("thing") == beside / "style" / "thing.png"


def test_download_then_cache(fake_registry):
    reg, served, tmp = fake_registry
    with serve(served) as url:
        reg["images"]["thing"] = {"file": "style/thing.png", "url": f"{url}/thing.png", "sha256": SHA}
        p = assets.resolve_image("thing")
    assert p == tmp / "cache" / "style" / "thing.png" and p.read_bytes() == PAYLOAD
    # the server is gone: the cached copy is used
    assert assets.resolve_image("thing") == p


def test_local_folder_comes_first(fake_registry, monkeypatch):
    reg, served, tmp = fake_registry
    local = tmp / "local"
    (local / "style").mkdir(parents=True)
    (local / "style" / "thing.png").write_bytes(PAYLOAD)
    (tmp / "cache" / "style").mkdir(parents=True)
    (tmp / "cache" / "style" / "thing.png").write_bytes(PAYLOAD)
    reg["images"]["thing"] = {"file": "style/thing.png", "url": "http://127.0.0.1:9/never", "sha256": SHA}
    monkeypatch.setenv("NSTBENCH_ASSETS", str(local))
    assert assets.resolve_image("thing") == local / "style" / "thing.png"
    (tmp / "empty").mkdir()  # an asset folder without the file (a missing folder is an error: issue 23)
    monkeypatch.setenv("NSTBENCH_ASSETS", str(tmp / "empty"))
    assert assets.resolve_image("thing") == tmp / "cache" / "style" / "thing.png"


def test_wrong_checksum_is_rejected_and_nothing_kept(fake_registry):
    reg, served, tmp = fake_registry
    with serve(served) as url:
        reg["images"]["bad"] = {"file": "style/bad.png", "url": f"{url}/bad.png", "sha256": SHA}
        with pytest.raises(NstbenchError, match="checksum mismatch"):
            assets.resolve_image("bad")
    folder = tmp / "cache" / "style"
    assert not folder.exists() or list(folder.iterdir()) == []  # no partial or temporary file left


def test_unreachable_download_is_a_clear_error(fake_registry):
    reg, _, _ = fake_registry
    reg["images"]["gone"] = {"file": "style/gone.png", "url": "http://127.0.0.1:9/gone.png", "sha256": SHA}
    with pytest.raises(NstbenchError, match="cannot download"):
        assets.resolve_image("gone")


def test_paths_and_unknown_names(fake_registry, tmp_path):
    f = tmp_path / "mine.png"
    f.write_bytes(PAYLOAD)
    assert assets.resolve_image(str(f)) == f
    with pytest.raises(NstbenchError, match="unknown image"):
        assets.resolve_image("not_a_registered_name")


def test_dataset_download_into_cache(fake_registry):
    reg, served, tmp = fake_registry
    with serve(served) as url:
        reg["datasets"]["tiny"] = {"folder": "tiny", "url_prefix": f"{url}/", "files": {"thing.png": SHA}}
        folder = assets.resolve_dataset("tiny")
    assert (folder / "thing.png").read_bytes() == PAYLOAD
    with pytest.raises(NstbenchError, match="not found"):
        assets.resolve_dataset(str(tmp / "no_such_folder"))


def test_real_registry_covers_the_shared_assets():
    reg = assets.registry.__wrapped__()
    names = set(reg["images"])
    for n in (
        "tubingen",
        "starry_night",
        "octopus",
        "hockney",
        "chelsea",
        "mosaic",
        "candy",
        "udnie",
        "starry_night_gatys",
        "hust_cat",
        "hust_picasso",
        "hust_wave",
    ):
        assert n in names
    assert len(reg["datasets"]["coco100"]["files"]) == 100
    assert all(len(e["sha256"]) == 64 and e["url"].startswith("https://") for e in reg["images"].values())
