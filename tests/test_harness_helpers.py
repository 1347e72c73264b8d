"""Small exact checks of the harness helpers the experiment scripts share."""
import pandas as pd
import pytest

from nstbench.experiment import split_option, thin_curve


def test_thin_curve_keeps_first_last_and_every_stride_step():
    df = pd.DataFrame({"step": range(1, 1001), "total": range(1000)})
    t = thin_curve(df, rows=100)  # stride 10
    assert list(t["step"][:3]) == [1, 10, 20] and t["step"].iloc[-1] == 1000
    assert len(t) == 101  # 1, then 10, 20, ..., 1000
    assert thin_curve(df.head(7), rows=100).equals(df.head(7))  # short curves stay whole


def test_thin_curve_keeps_an_odd_last_step():
    t = thin_curve(pd.DataFrame({"step": range(1, 1008)}), rows=100)
    assert t["step"].iloc[-1] == 1007 and t["step"].iloc[-2] == 1000


@pytest.mark.parametrize("argv,value,rest", [
    (["--profile", "smoke", "--data", "/d", "--force"], "/d", ["--profile", "smoke", "--force"]),
    (["--profile", "smoke"], None, ["--profile", "smoke"]),
    (["--data=/x/y", "--out", "o"], "/x/y", ["--out", "o"]),
])
def test_split_option(argv, value, rest):
    assert split_option(argv, "--data") == (value, rest)


def test_split_option_does_not_take_abbreviations():
    # "--d" must reach the harness's parser (which rejects it) instead of silently becoming --data
    assert split_option(["--d", "x"], "--data") == (None, ["--d", "x"])
