"""Weights: local files (full model or features only), ImageNet through the torch.hub path
(served from 127.0.0.1 with a hash-named file the test makes), `auto` fallback, and clear errors."""

import hashlib

import pytest
import torch
from localserver import serve

from nstbench.config.errors import NstbenchError
from nstbench.nets import weights as W

X = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def vgg16_state():
    """A 'trained' VGG16 features state dict: random weights with a seed no test uses elsewhere."""
    return {k: v.clone() for k, v in W.load_backbone("vgg16", "random", seed=123).extractor.state_dict().items()}


def _features_state(vgg16_state):
    # extractor keys are "layers.N.weight"; torchvision's features keys are "N.weight"
    return {k.split(".", 1)[1]: v for k, v in vgg16_state.items()}


def _reference(seed=123):
    return W.load_backbone("vgg16", "random", seed=seed).extract(X, ["relu3_3"])["relu3_3"]


def test_features_only_file(tmp_path, vgg16_state):
    torch.save(_features_state(vgg16_state), tmp_path / "f.pth")
    b = W.load_backbone("vgg16", str(tmp_path / "f.pth"))
    assert b.weights["kind"] == "file" and not b.weights["imagenet"] and len(b.weights["sha256"]) == 64
    assert torch.equal(b.extract(X, ["relu3_3"])["relu3_3"], _reference())


def test_full_model_file_with_classifier(tmp_path, vgg16_state):
    full = {f"features.{k}": v for k, v in _features_state(vgg16_state).items()}
    full["classifier.6.bias"] = torch.zeros(1000)  # a full torchvision file carries the classifier too
    torch.save(full, tmp_path / "full.pth")
    b = W.load_backbone("vgg16", str(tmp_path / "full.pth"))
    assert torch.equal(b.extract(X, ["relu3_3"])["relu3_3"], _reference())


def test_wrong_keys_and_shapes_are_clear_errors(tmp_path, vgg16_state):
    feats = _features_state(vgg16_state)
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "keys.pth")
    with pytest.raises(NstbenchError, match="missing .* keys"):
        W.load_backbone("vgg16", str(tmp_path / "keys.pth"))
    bad = dict(feats)
    bad["0.weight"] = torch.zeros(8, 3, 3, 3)
    torch.save(bad, tmp_path / "shapes.pth")
    with pytest.raises(NstbenchError, match="wrong shapes"):
        W.load_backbone("vgg16", str(tmp_path / "shapes.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(NstbenchError, match="cannot read weights file"):
        W.load_backbone("vgg16", str(tmp_path / "junk.pth"))
    with pytest.raises(NstbenchError, match="not found"):
        W.load_backbone("vgg16", str(tmp_path / "absent.pth"))
    with pytest.raises(NstbenchError, match="do not fit vgg19"):
        torch.save(feats, tmp_path / "v16.pth")
        W.load_backbone("vgg19", str(tmp_path / "v16.pth"))


@pytest.fixture
def hub(tmp_path, monkeypatch, vgg16_state):
    """TORCH_HOME in tmp, and a torchvision-style file `vgg16-<sha256 prefix>.pth` on a local server."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    www = tmp_path / "www"
    www.mkdir()
    full = {f"features.{k}": v for k, v in _features_state(vgg16_state).items()}
    torch.save(full, www / "tmp.pth")
    prefix = hashlib.sha256((www / "tmp.pth").read_bytes()).hexdigest()[:8]
    name = f"vgg16-{prefix}.pth"
    (www / "tmp.pth").rename(www / name)
    (www / "vgg16-00000000.pth").write_bytes((www / name).read_bytes())  # a name whose hash is wrong
    W.file_digest.cache_clear()
    return www, name


def test_offline_means_no_download_attempt_for_imagenet_too(hub, monkeypatch):
    www, name = hub
    monkeypatch.setenv("NSTBENCH_OFFLINE", "1")
    with serve(www) as url:
        monkeypatch.setattr(W, "imagenet_url", lambda arch: f"{url}/{name}")
        with pytest.raises(NstbenchError, match="NSTBENCH_OFFLINE=1: no download attempted"):
            W.load_backbone("vgg16", "imagenet")
    assert not (W.hub_checkpoint_dir() / name).exists()  # the file was there to fetch: it was not


def test_imagenet_download_is_hash_checked_and_cached(hub, monkeypatch):
    www, name = hub
    monkeypatch.delenv("NSTBENCH_OFFLINE", raising=False)  # this test downloads (from a local server)
    with serve(www) as url:
        monkeypatch.setattr(W, "imagenet_url", lambda arch: f"{url}/{name}")
        b = W.load_backbone("vgg16", "imagenet")
    assert b.weights["kind"] == "imagenet" and b.weights["imagenet"]
    cached = W.hub_checkpoint_dir() / name
    assert cached.is_file() and b.weights["file"] == str(cached)
    assert torch.equal(b.extract(X, ["relu3_3"])["relu3_3"], _reference())
    # server gone: the cache serves it, and `auto` now picks ImageNet too
    assert W.load_backbone("vgg16", "auto").weights["kind"] == "imagenet"
    # a corrupted cache file is refused, not silently used
    cached.write_bytes(cached.read_bytes()[:-10] + b"0123456789")
    W.file_digest.cache_clear()
    with pytest.raises(NstbenchError, match="sha256 prefix"):
        W.load_backbone("vgg16", "imagenet")


def test_imagenet_download_with_wrong_hash_is_rejected(hub, monkeypatch, capsys):
    www, _ = hub
    monkeypatch.delenv("NSTBENCH_OFFLINE", raising=False)
    with serve(www) as url:
        monkeypatch.setattr(W, "imagenet_url", lambda arch: f"{url}/vgg16-00000000.pth")
        with pytest.raises(NstbenchError, match="cannot get ImageNet weights"):
            W.load_backbone("vgg16", "imagenet")
    assert "Downloading" not in capsys.readouterr().out  # torch.hub's line, once per failed attempt
    assert not (W.hub_checkpoint_dir() / "vgg16-00000000.pth").exists()


def test_imagenet_unavailable_is_an_error_that_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(W, "imagenet_url", lambda arch: "http://127.0.0.1:9/vgg16-397923af.pth")
    with pytest.raises(NstbenchError, match="--weights PATH"):
        W.load_backbone("vgg16", "imagenet")


def test_auto_falls_back_to_random_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("NSTBENCH_OFFLINE", "1")
    monkeypatch.setattr(W, "_warned", set())
    monkeypatch.setattr(W, "hed_weights_file", lambda: (_ for _ in ()).throw(W.NstbenchError("no stand-in here")))
    a = W.load_backbone("vgg16", "auto", seed=5)
    b = W.load_backbone("vgg16", "auto", seed=5)
    assert a.weights["kind"] == "random" and not a.weights["imagenet"] and "fallback_reason" in a.weights
    assert capsys.readouterr().err.count("NOT comparable") == 1  # warned once
    assert torch.equal(a.extract(X, ["relu1_2"])["relu1_2"], b.extract(X, ["relu1_2"])["relu1_2"])


def test_real_imagenet_urls_are_torchvision_hash_named():
    for arch, prefix in [("vgg16", "397923af"), ("vgg19", "dcbb9e9d"), ("resnet50", "0676ba61")]:
        assert W.imagenet_url(arch).endswith(f"-{prefix}.pth")
