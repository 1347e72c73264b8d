"""Small exact checks of the harness helpers the experiment scripts share, and of Spec-driven options."""

from dataclasses import dataclass, replace

import pandas as pd
import pytest

from nstbench.experiment import PROFILE_NAMES, Experiment, Spec, thin_curve


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
    assert not (tmp_path / "e99_demo").exists()  # nothing half-finished is left
