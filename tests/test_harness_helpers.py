"""Small exact checks of the harness helpers the experiment scripts share, and of Spec-driven options."""

import json
import os
import socket
from dataclasses import dataclass, replace

import pandas as pd
import pytest

from nstbench.config.errors import NstbenchError
from nstbench.config.profiles import PROFILE_NAMES
from nstbench.harness.experiment import Experiment, result_dir, thin_curve
from nstbench.harness.registry import Spec
from nstbench.nets.records import weight_set


def test_thin_curve_keeps_first_last_and_every_stride_step():
    df = pd.DataFrame({"step": range(1, 1001), "total": range(1000)})
    t = thin_curve(df, rows=100)  # stride 10
    assert list(t["step"][:3]) == [1, 10, 20] and t["step"].iloc[-1] == 1000
    assert len(t) == 101  # 1, then 10, 20, ..., 1000
    assert thin_curve(df.head(7), rows=100).equals(df.head(7))  # short curves stay whole


def test_thin_curve_keeps_an_odd_last_step():
    t = thin_curve(pd.DataFrame({"step": range(1, 1008)}), rows=100)
    assert t["step"].iloc[-1] == 1007 and t["step"].iloc[-2] == 1000


@dataclass(frozen=True)
class _Profile:
    steps: int
    size: int
    data: str | None


SPEC = Spec(
    name="e99_demo",
    title="demo",
    sources=(),
    claims=(),
    archs=(),
    profiles={p: _Profile(3, 32, "coco100" if p != "paper" else None) for p in PROFILE_NAMES},
    options={"steps": int, "size": int, "data": str},
)


@pytest.fixture
def script(tmp_path):
    p = tmp_path / "e99_demo.py"
    p.write_text("")
    return p


def test_declared_options_override_the_profile(script, tmp_path, monkeypatch):
    monkeypatch.delenv("NSTBENCH_DATA", raising=False)
    exp = Experiment(
        SPEC, script, "demo", ["--profile", "smoke", "--data", "/d", "--steps", "5", "--out", str(tmp_path)]
    )
    assert exp.profile == _Profile(5, 32, "/d") and exp.overrides == {"steps": 5, "data": "/d"}
    assert exp.profile_label == "smoke(steps=5,data=/d)"
    assert Experiment(SPEC, script, "demo", ["--profile", "paper"]).profile.data is None
    monkeypatch.setenv("NSTBENCH_DATA", "/coco")  # the Makefile's DATA=
    assert Experiment(SPEC, script, "demo", ["--profile", "paper"]).profile.data == "/coco"


def test_undeclared_options_and_misnamed_scripts_are_refused(script, tmp_path, capsys):
    with pytest.raises(SystemExit):  # argparse: unrecognized arguments
        Experiment(replace(SPEC, options={"steps": int}), script, "demo", ["--data", "/d"])
    assert "--data" in capsys.readouterr().err
    with pytest.raises(RuntimeError, match="stem"):
        Experiment(replace(SPEC, name="e98_other"), script, "demo", [])


def test_a_declared_claim_that_is_not_evaluated_fails_the_run(script, tmp_path):
    exp = Experiment(replace(SPEC, claims=("C1",)), script, "demo", ["--profile", "smoke", "--out", str(tmp_path)])
    with pytest.raises(RuntimeError, match=r"declares claims \['C1'\] but did not evaluate"):
        exp.run(lambda e: None)
    assert not (tmp_path / "smoke" / "none" / "e99_demo").exists()  # nothing half-finished is left


def test_weight_set_names_what_loaded():
    rnd = {"kind": "random", "family": "random", "seed": 0}
    inet = {"kind": "imagenet", "family": "torchvision"}
    hed = {"kind": "standin", "family": "hed"}
    assert weight_set({"vgg19": rnd, "vgg16": rnd}) == "random"
    assert weight_set({"vgg19": inet, "vgg16": {"kind": "imagenet", "family": "caffe"}}) == "imagenet"
    assert weight_set({"vgg19": hed, "resnet50": rnd}) == "hed"  # E5's ResNet50 leg has no stand-in
    assert weight_set({"vgg19": {"kind": "file", "sha256": "0123456789abcdef"}, "vgg16": rnd}) == "file-01234567"
    assert weight_set({"vgg19": inet, "resnet50": rnd}) == "imagenet+random"  # auto fell back for one arch
    assert weight_set({}) == "none"


def _demo_run(tmp_path, monkeypatch, record: dict, value: str) -> Experiment:
    """The demo experiment with backbone records `record` (no network is loaded), writing `value`."""
    monkeypatch.setattr(Experiment, "weights_records", lambda self: {"vgg19": record})
    exp = Experiment(SPEC, tmp_path / "e99_demo.py", "demo", ["--profile", "cpu", "--out", str(tmp_path)])
    exp.run(lambda e: e.path("value.txt").write_text(value))
    return exp


def test_weight_sets_and_profiles_get_folders_of_their_own(script, tmp_path, monkeypatch):
    rnd = _demo_run(tmp_path, monkeypatch, {"kind": "random", "family": "random", "seed": 0}, "random")
    assert rnd.final_dir == result_dir(tmp_path, "cpu", "random", "e99_demo") == tmp_path / "cpu/random/e99_demo"
    hed = _demo_run(tmp_path, monkeypatch, {"kind": "standin", "family": "hed"}, "hed")
    assert hed.final_dir == tmp_path / "cpu" / "hed" / "e99_demo"
    # the stand-in run did not replace the random one; each manifest names its profile and set
    assert (rnd.final_dir / "value.txt").read_text() == "random" and (hed.final_dir / "value.txt").read_text() == "hed"
    m = json.loads((hed.final_dir / "manifest.json").read_text())
    assert (m["profile"], m["weight_set"]) == ("cpu", "hed")
    assert not (tmp_path / "e99_demo").exists() and not list(tmp_path.rglob(".tmp-*"))


def test_a_run_of_one_set_ignores_another_sets_lock_and_temp_folders(script, tmp_path, monkeypatch):
    rnd_dir = tmp_path / "cpu" / "random"
    rnd_dir.mkdir(parents=True)
    # a live run of the random set: its lock (held by this very process) and its temp folder
    (rnd_dir / ".e99_demo.lock").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    (rnd_dir / f".tmp-e99_demo-{os.getpid()}").mkdir()
    _demo_run(tmp_path, monkeypatch, {"kind": "standin", "family": "hed"}, "hed")  # not refused
    assert (rnd_dir / ".e99_demo.lock").is_file() and (rnd_dir / f".tmp-e99_demo-{os.getpid()}").is_dir()
    with pytest.raises(NstbenchError, match="being written by another nstbench run"):  # the same set is
        _demo_run(tmp_path, monkeypatch, {"kind": "random", "family": "random", "seed": 0}, "random")
