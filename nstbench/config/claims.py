"""Verdict rules for the claims C1..C14 of EXPERIMENTS.md.

Each rule is a plain function `rule_cN(df) -> dict` on the tidy table an experiment writes (one row
per run, image or logged step; extra columns are ignored). It returns
    {"claim": "CN", "verdict": "holds" | "does not hold" | "inconclusive",
     "measured": short text with the numbers, "rule": one sentence stating the rule}.
A missing column raises NstbenchError naming the expected ones (that is a bug in the table, not
a finding). Rows with NaN in a needed column are dropped first (a failed point of a sweep), and
repeated rows for one setting (several images or seeds) are averaged. Timings (C5, C10) come as one
row per timed repeat and use the median, which one slow outlier (another job on the machine) does
not move, with the median absolute deviation (MAD) of the repeats as their noise (timing_spread);
a timing with fewer than TIMING_MIN_REPEATS repeats cannot show its noise and decides nothing.

"inconclusive" means the table cannot decide: too few settings, a needed setting missing, or a
difference inside the stated noise margin. Thresholds are module constants so the experiment
reports can quote them; each is explained where it is defined.

Column schemas (names are case-sensitive; string values are compared lower-cased):
  C1  gamma, hf_fraction
  C2  lambda_c, and ssim_content (preferred) or content_loss
  C3  lambda_s, ssim_content [, style_distance reported if present]
  C4  content_layer (relu2_2 / relu3_3 / relu4_3), colour_artifact_index
  C5  batch_size, seconds_per_epoch (one row per timed repeat), and a quality column (default ssim_content)
  C6  init ("content" / "noise", others ignored), content_loss [, ssim_content] [, iteration]
  C7  net, n_style_layers, style_loss
  C8  iteration, total_loss [, net: one curve per net]
  C9  net ("vgg19" / "resnet50": the optimised net), style_distance [, judge: the measuring net]
  C10 method ("vanilla" / "fast"), seconds_per_iteration (one row per timed repeat) [, size] [, device] [, dtype]
  C11 net, depth (the VGG block of the reconstructed layer), ssim_content
  C12 ratio (alpha/beta), ssim_content, style_distance
  C13 optimizer ("lbfgs" / "adam"), evaluation, seconds, total_loss (one curve per optimiser, same problem)
  C14 method ("fast" / "lbfgs"), iterations (of L-BFGS), objective (the same objective for both)
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from .errors import NstbenchError, unknown
from .sources import cited

HOLDS = "holds"
FAILS = "does not hold"
INCONCLUSIVE = "inconclusive"
VERDICTS = (HOLDS, FAILS, INCONCLUSIVE)

# C1: a Spearman rank correlation of -0.9 or below is a consistently falling trend: with the five
# gammas of E1 it allows at most one swap of neighbours, and with three gammas none.
C1_MIN_GAMMAS = 3
C1_MAX_RHO = -0.9
# C2: the sweep spans 16x in lambda_c; an effect smaller than this is no effect (SSIM differences
# of 0.01 are within what a different test image or seed moves; 5% of content loss likewise).
C2_MIN_VALUES = 3
C2_MIN_SSIM_GAIN = 0.02
C2_MAX_LOSS_RATIO = 0.95
# C3: SSIM to the content >= 0.6 reads as "the input, slightly changed"; <= 0.25 is structure
# mostly gone (unrelated natural images score about 0 to 0.2); the band between is undecidable.
C3_LOW_MIN_SSIM, C3_LOW_FAIL_SSIM = 0.6, 0.4
C3_HIGH_MAX_SSIM, C3_HIGH_FAIL_SSIM = 0.25, 0.5
C3_MIN_RATIO = 10.0  # the smallest and largest lambda_s must differ at least 10x (E2: 100x)
# C4 and C9: orderings count only when the values differ by more than 5%, a margin above the
# spread of one metric between seeds of the same setting.
REL_MARGIN = 0.05
C4_LAYERS = ("relu2_2", "relu3_3", "relu4_3")
# Timings (C5, C10): a setting needs at least 3 timed repeats: the median of 3 ignores one outlier,
# and their MAD (the noise band median +- MAD) is then 0 only if two repeats agree exactly.
TIMING_MIN_REPEATS = 3
# C5: "no significant difference": every batch size within 15% of one common seconds per epoch,
# i.e. slowest / fastest <= 1.15 / 0.85 = 1.35 (timing noise on a shared machine is about 5-10%;
# the noise of this run is handled by the MAD bands), and within 10% of the mean quality.
C5_TIME_TOL = 0.15
C5_MAX_TIME_RATIO = (1.0 + C5_TIME_TOL) / (1.0 - C5_TIME_TOL)
C5_QUALITY_TOL = 0.10
# C7: "grows as layers are added": at least 3 of every 4 steps non-decreasing (the report's own
# VGG19 column has one decrease in four steps, 3.92e6 -> 3.59e6), in every net.
C7_MIN_FRACTION = 0.75
C7_MIN_COUNTS = 3
# C8: "most of the loss drop" = at least half of the drop from the first logged step to the end
# happens by step 100; the value at 100 is the last one logged at or before it, which must be
# at step 90 or later (a coarser log cannot place the drop).
C8_AT = 100
C8_SHARE = 0.5
C8_MIN_LOGGED_FRACTION = 0.9
# C10: at least three orders of magnitude (Johnson et al.'s "three orders of magnitude").
C10_ITERATIONS = 1000
C10_MIN_SPEEDUP = 1000.0
# C11: fidelity "falls with depth" per net: Spearman rho(depth, SSIM to the original) <= -0.8 (one
# swap of neighbours gives -0.8 with the 4 layers of VGG16 and -0.9 with the 5 of VGG19; two, less)
# and the deepest layer at least 0.05 SSIM below the shallowest (C2's margin of SSIM noise, 0.02,
# is per setting; two settings each that noisy differ by up to ~0.05). A net whose deepest layer
# reconstructs at least as well as its shallowest contradicts the claim.
C11_MIN_LAYERS = 3
C11_MAX_RHO = -0.8
C11_MIN_SSIM_DROP = 0.05
# C12: two trends over the alpha/beta sweep (Gatys Fig. 3: four ratios). A trend counts when its
# Spearman rho is >= 0.8 (four ratios: one swap of neighbours gives 0.8; two, less) and its ends
# differ by more than noise: 0.05 SSIM as C11, and REL_MARGIN (5%) for the style distance. A trend
# whose ends are reversed contradicts the claim.
C12_MIN_RATIOS = 3
C12_MIN_RHO = 0.8
C12_MIN_SSIM_GAIN = 0.05
# C13: the best loss each optimiser reached within the budget both had (loss evaluations, and
# seconds), compared with REL_MARGIN: loss values of one problem are exact, but the seconds budget
# carries timing noise, and a 5% lower loss is what a second look at the curves would also see.
# C14: "matches" = the forward pass's objective is at most REL_MARGIN above L-BFGS's after 50
# iterations (Johnson Fig. 5: "comparable to 50 to 100 iterations"); without a 50-iteration value
# (a run shorter than that) the table cannot decide.
C14_ITERATIONS = 50


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _result(claim: str, verdict: str, measured: str, rule: str) -> dict:
    assert verdict in VERDICTS, verdict
    return {"claim": claim, "verdict": verdict, "measured": measured, "rule": rule}


def _all_nets(claim: str, verdicts: list[str], parts: list[str], rule: str) -> dict:
    """A claim that must hold in every net: one net failing fails it, one undecidable leaves it
    inconclusive, no rows at all are inconclusive."""
    if not verdicts:
        return _result(claim, INCONCLUSIVE, "no rows", rule)
    return _result(claim, _combine(verdicts), "; ".join(parts), rule)


def _need(df: pd.DataFrame, claim: str, columns: list[str]) -> pd.DataFrame:
    """The rows with all `columns` present (NaN rows dropped); error if a column is missing."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise NstbenchError(
            f"{claim}: table lacks column(s) {', '.join(missing)}; expected {', '.join(columns)} "
            f"(has {', '.join(map(str, df.columns))})"
        )
    return df.dropna(subset=columns)


def _means(df: pd.DataFrame, key: str, value: str, how: str = "mean") -> pd.Series:
    """value aggregated per key, sorted by key."""
    return df.groupby(key)[value].agg(how).sort_index()


def _lower(s: pd.Series) -> pd.Series:
    return s.astype(str).str.strip().str.lower()


def _g(v: float) -> str:
    return f"{v:.4g}"


def _series(s: pd.Series) -> str:
    return ", ".join(f"{k}: {_g(v)}" for k, v in s.items())


def _spearman(a, b) -> float:
    """Spearman rho; NaN when either side is constant (no ranking to correlate)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(spearmanr(a, b).statistic)


def _clearly_below(a: float, b: float, margin: float = REL_MARGIN) -> bool:
    """a < b by more than `margin` relative to b."""
    return a < b * (1.0 - margin)


class Spread(NamedTuple):
    """Repeated timings of one setting, in their unit (seconds): the median is the statistic the
    rules compare; the MAD (median absolute deviation from the median) is the noise: the band
    median +- MAD holds the half of the repeats nearest the median, and one outlier among 3 or more
    repeats moves neither median nor MAD. min and max are reported, not used (max is the outlier's)."""

    n: int
    median: float
    mad: float
    min: float
    max: float

    @property
    def low(self) -> float:
        return self.median - self.mad

    @property
    def high(self) -> float:
        return self.median + self.mad

    def text(self) -> str:
        return f"{_g(self.median)} +- {_g(self.mad)} (min {_g(self.min)}, max {_g(self.max)}, n={self.n})"


def timing_spread(values) -> Spread:
    """Spread of repeated timings (the experiments' tables use it too, so they show what the rules use)."""
    v = np.asarray(values, dtype=float)
    med = float(np.median(v))
    return Spread(len(v), med, float(np.median(np.abs(v - med))), float(v.min()), float(v.max()))


def _ratio_range(slow: list[Spread], fast: list[Spread]) -> tuple[float, float]:
    """The smallest and largest max(slow) / min(fast) when every timing may lie anywhere in its
    band median +- MAD (a band reaching 0 gives an infinite upper end)."""
    lo = max(s.low for s in slow) / min(f.high for f in fast)
    low_end = min(f.low for f in fast)
    hi = max(s.high for s in slow) / low_end if low_end > 0 else math.inf
    return lo, hi


def _combine(verdicts: list[str]) -> str:
    """Parts that must all hold: one failing fails the whole, else one undecided leaves it undecided."""
    return FAILS if FAILS in verdicts else INCONCLUSIVE if INCONCLUSIVE in verdicts else HOLDS


# ---------------------------------------------------------------------------------------------
# rules
# ---------------------------------------------------------------------------------------------

RULE_C1 = (
    f"Per-gamma mean hf_fraction: holds if Spearman rho(gamma, hf) <= {C1_MAX_RHO} and hf at the largest "
    f"gamma < hf at the smallest; inconclusive with fewer than {C1_MIN_GAMMAS} gammas."
)


def rule_c1(df: pd.DataFrame) -> dict:
    """C1 (E1): high-frequency energy falls as the TV weight gamma grows. Columns: gamma, hf_fraction."""
    hf = _means(_need(df, "C1", ["gamma", "hf_fraction"]), "gamma", "hf_fraction")
    if len(hf) < C1_MIN_GAMMAS:
        return _result("C1", INCONCLUSIVE, f"only {len(hf)} gamma value(s): {_series(hf)}", RULE_C1)
    rho = _spearman(hf.index, hf.values)
    first, last = hf.iloc[0], hf.iloc[-1]
    measured = f"hf_fraction by gamma: {_series(hf)}; Spearman rho = {_g(rho)}"
    ok = (not math.isnan(rho)) and rho <= C1_MAX_RHO + 1e-9 and last < first  # 1e-9: rho = -0.9 comes out as -0.8999...
    return _result("C1", HOLDS if ok else FAILS, measured, RULE_C1)


RULE_C2 = (
    f"Per-lambda_c mean ssim_content (or content_loss): holds if it rises (content loss falls) at every "
    f"step of lambda_c and by at least {C2_MIN_SSIM_GAIN} SSIM (to <= {C2_MAX_LOSS_RATIO}x the loss) "
    f"overall; monotone but smaller is inconclusive, as are fewer than {C2_MIN_VALUES} lambda_c values."
)


def rule_c2(df: pd.DataFrame) -> dict:
    """C2 (E2): a higher lambda_c gives an output closer to the content.

    Columns: lambda_c and ssim_content (SSIM of output to content, higher = closer); a table
    without ssim_content may give content_loss (lower = closer) instead.
    """
    metric = "ssim_content" if "ssim_content" in df.columns else "content_loss"
    s = _means(_need(df, "C2", ["lambda_c", metric]), "lambda_c", metric)
    if len(s) < C2_MIN_VALUES:
        return _result("C2", INCONCLUSIVE, f"only {len(s)} lambda_c value(s): {_series(s)}", RULE_C2)
    steps = np.diff(s.values)
    measured = f"{metric} by lambda_c: {_series(s)}"
    if metric == "ssim_content":
        monotone, large = bool((steps > 0).all()), s.iloc[-1] - s.iloc[0] >= C2_MIN_SSIM_GAIN
    else:
        monotone = bool((steps < 0).all())
        large = s.iloc[0] > 0 and s.iloc[-1] / s.iloc[0] <= C2_MAX_LOSS_RATIO
    verdict = FAILS if not monotone else (HOLDS if large else INCONCLUSIVE)
    return _result("C2", verdict, measured, RULE_C2)


RULE_C3 = (
    f"Mean ssim_content at the smallest and largest lambda_s (at least {C3_MIN_RATIO:g}x apart): holds if "
    f"the smallest gives >= {C3_LOW_MIN_SSIM} and the largest <= {C3_HIGH_MAX_SSIM}; does not hold if the "
    f"smallest gives < {C3_LOW_FAIL_SSIM} or the largest >= {C3_HIGH_FAIL_SSIM}; otherwise inconclusive."
)


def rule_c3(df: pd.DataFrame) -> dict:
    """C3 (E2): lambda_s=4 changes the input little; lambda_s=400 loses the content.

    Columns: lambda_s, ssim_content; style_distance (optional) is reported alongside.
    """
    d = _need(df, "C3", ["lambda_s", "ssim_content"])
    s = _means(d, "lambda_s", "ssim_content")
    if len(s) < 2 or s.index[0] <= 0 or s.index[-1] / s.index[0] < C3_MIN_RATIO:
        return _result("C3", INCONCLUSIVE, f"lambda_s values do not span {C3_MIN_RATIO:g}x: {_series(s)}", RULE_C3)
    low, high = s.iloc[0], s.iloc[-1]
    measured = f"ssim_content at lambda_s={s.index[0]:g}: {_g(low)}, at lambda_s={s.index[-1]:g}: {_g(high)}"
    if "style_distance" in d.columns and d["style_distance"].notna().any():
        sd = _means(d.dropna(subset=["style_distance"]), "lambda_s", "style_distance")
        measured += f"; style_distance by lambda_s: {_series(sd)}"
    if low >= C3_LOW_MIN_SSIM and high <= C3_HIGH_MAX_SSIM:
        verdict = HOLDS
    elif low < C3_LOW_FAIL_SSIM or high >= C3_HIGH_FAIL_SSIM:
        verdict = FAILS
    else:
        verdict = INCONCLUSIVE
    return _result("C3", verdict, measured, RULE_C3)


RULE_C4 = (
    f"Mean colour_artifact_index per content layer: holds if relu2_2 is lower than both relu3_3 and relu4_3 "
    f"and relu4_3 is higher than relu3_3, each by more than {REL_MARGIN:.0%}; does not hold if either "
    f"ordering is reversed by more than {REL_MARGIN:.0%}; otherwise (or a layer missing) inconclusive."
)


def rule_c4(df: pd.DataFrame) -> dict:
    """C4 (E3): relu2_2 is the best content layer; relu3_3 gives colour lumps, relu4_3 worse.

    Columns: content_layer (VGG16 names relu2_2, relu3_3, relu4_3), colour_artifact_index.
    """
    d = _need(df, "C4", ["content_layer", "colour_artifact_index"]).assign(
        content_layer=lambda t: _lower(t["content_layer"])
    )
    cai = _means(d, "content_layer", "colour_artifact_index")
    measured = f"colour_artifact_index by content layer: {_series(cai)}"
    if any(layer not in cai.index for layer in C4_LAYERS):
        return _result("C4", INCONCLUSIVE, measured + f" (needs all of {', '.join(C4_LAYERS)})", RULE_C4)
    c2, c3, c4 = (float(cai[layer]) for layer in C4_LAYERS)
    if _clearly_below(c2, c3) and _clearly_below(c2, c4) and _clearly_below(c3, c4):
        verdict = HOLDS
    elif _clearly_below(min(c3, c4), c2) or _clearly_below(c4, c3):
        verdict = FAILS
    else:
        verdict = INCONCLUSIVE
    return _result("C4", verdict, measured, RULE_C4)


RULE_C5 = (
    f"Time: per batch size, the median and MAD of the repeats' seconds_per_epoch; the ratio slowest / fastest "
    f"median, taken at the ends of the bands median +- MAD that make it smallest and largest: holds if even the "
    f"largest is <= {C5_MAX_TIME_RATIO:.3g} (every batch size within {C5_TIME_TOL:.0%} of one common time), "
    f"does not hold if even the smallest is > {C5_MAX_TIME_RATIO:.3g}, otherwise (the repeats' spread is as "
    f"large as the effect, or a batch size has fewer than {TIMING_MIN_REPEATS} repeats) inconclusive. Quality: "
    f"mean per batch size, holds if every batch size is within {C5_QUALITY_TOL:.0%} of the mean, else does not "
    f"hold. The claim does not hold if either half does not, holds if both hold, otherwise inconclusive; "
    f"inconclusive with fewer than 2 batch sizes."
)


def _c5_time(t: dict[float, Spread]) -> tuple[str, str]:
    """C5's time half on the per-batch-size spreads of seconds per epoch: verdict and measured text."""
    text = "seconds_per_epoch by batch size (median +- MAD): " + "; ".join(f"{k:g}: {v.text()}" for k, v in t.items())
    few = [f"{k:g}" for k, v in t.items() if v.n < TIMING_MIN_REPEATS]
    if few:
        return INCONCLUSIVE, text + f" (batch size {', '.join(few)}: fewer than {TIMING_MIN_REPEATS} repeats)"
    spreads = list(t.values())
    ratio = max(v.median for v in spreads) / min(v.median for v in spreads)
    lo, hi = _ratio_range(spreads, spreads)
    lo = max(lo, 1.0)  # bands that overlap can all be one common time
    text += f"; slowest / fastest median {ratio:.3g}, {lo:.3g} to {_g(hi)} within the bands"
    verdict = HOLDS if hi <= C5_MAX_TIME_RATIO else FAILS if lo > C5_MAX_TIME_RATIO else INCONCLUSIVE
    return verdict, text


def rule_c5(df: pd.DataFrame, quality: str = "ssim_content") -> dict:
    """C5 (E3): batch size changes neither training time per epoch nor result quality significantly.

    Columns: batch_size, seconds_per_epoch (one row per timed repeat of a batch size), and
    `quality` (default ssim_content; any scalar where the relative spread is meaningful, e.g.
    style_distance or colour_artifact_index; repeated on a batch size's rows, which are averaged).
    """
    d = _need(df, "C5", ["batch_size", "seconds_per_epoch", quality])
    t = {k: timing_spread(g) for k, g in d.groupby("batch_size")["seconds_per_epoch"]}
    q = _means(d, "batch_size", quality)
    if len(t) < 2:
        return _result("C5", INCONCLUSIVE, f"batch sizes {', '.join(f'{k:g}' for k in t) or 'none'} (needs 2)", RULE_C5)
    time_verdict, measured = _c5_time(t)
    measured += f"; {quality}: {_series(q)}"
    q_dev = float((q - q.mean()).abs().max() / abs(q.mean())) if q.mean() != 0 else math.inf
    quality_verdict = HOLDS if q_dev <= C5_QUALITY_TOL else FAILS
    measured += f"; max quality deviation from the mean {q_dev:.1%}; time {time_verdict}, quality {quality_verdict}"
    return _result("C5", _combine([time_verdict, quality_verdict]), measured, RULE_C5)


RULE_C6 = (
    "At the last iteration both runs logged: holds if the content-initialised run has lower content_loss "
    "and (when given) higher ssim_content than the noise-initialised one; does not hold if all given "
    "measures favour noise; mixed or a run missing is inconclusive."
)


def rule_c6(df: pd.DataFrame) -> dict:
    """C6 (E4): initialising from the content delivers the content better.

    Columns: init ("content", "noise"; other inits such as "style" are ignored), content_loss,
    optionally ssim_content and iteration (then the runs are compared at the largest iteration
    both logged; without it every row is taken as final).
    """
    d = _need(df, "C6", ["init", "content_loss"]).assign(init=lambda t: _lower(t["init"]))
    d = d[d["init"].isin(["content", "noise"])]
    if set(d["init"]) != {"content", "noise"}:
        return _result("C6", INCONCLUSIVE, f"runs present: {sorted(set(d['init']))} (needs content and noise)", RULE_C6)
    where = ""
    if "iteration" in d.columns:
        common = min(d.loc[d["init"] == i, "iteration"].max() for i in ("content", "noise"))
        d = d[d["iteration"] == common]
        where = f" at iteration {common:g}"
        if set(d["init"]) != {"content", "noise"}:
            return _result("C6", INCONCLUSIVE, f"no iteration logged by both runs{where}", RULE_C6)
    cl = _means(d, "init", "content_loss")
    favours = [cl["content"] < cl["noise"]]
    measured = f"content_loss{where}: content-init {_g(cl['content'])}, noise-init {_g(cl['noise'])}"
    if "ssim_content" in d.columns and d["ssim_content"].notna().groupby(d["init"]).any().all():
        ss = _means(d.dropna(subset=["ssim_content"]), "init", "ssim_content")
        favours.append(ss["content"] > ss["noise"])
        measured += f"; ssim_content: content-init {_g(ss['content'])}, noise-init {_g(ss['noise'])}"
    verdict = HOLDS if all(favours) else FAILS if not any(favours) else INCONCLUSIVE
    return _result("C6", verdict, measured, RULE_C6)


RULE_C7 = (
    f"Per net, mean final style_loss by number of style layers: holds if at least {C7_MIN_FRACTION:.0%} of "
    f"the steps to one more layer are non-decreasing in every net; inconclusive with fewer than 2 nets or "
    f"fewer than {C7_MIN_COUNTS} layer counts in a net."
)


def rule_c7(df: pd.DataFrame) -> dict:
    """C7 (E5): style loss grows as style layers are added (both nets).

    Columns: net, n_style_layers (1..5, cumulative ablation), style_loss (final).
    """
    d = _need(df, "C7", ["net", "n_style_layers", "style_loss"]).assign(net=lambda t: _lower(t["net"]))
    parts, fractions, short = [], {}, []
    for net, g in d.groupby("net"):
        s = _means(g, "n_style_layers", "style_loss")
        if len(s) < C7_MIN_COUNTS:
            short.append(net)
        steps = np.diff(s.values)
        fractions[net] = float((steps >= 0).mean()) if len(steps) else math.nan
        parts.append(f"{net}: {_series(s)} (non-decreasing steps {fractions[net]:.0%})")
    measured = "; ".join(parts) or "no rows"
    if len(fractions) < 2 or short:
        return _result("C7", INCONCLUSIVE, measured, RULE_C7)
    ok = all(f >= C7_MIN_FRACTION for f in fractions.values())
    return _result("C7", HOLDS if ok else FAILS, measured, RULE_C7)


RULE_C8 = (
    f"Per curve: share = (L(first) - L({C8_AT})) / (L(first) - L(last)), L({C8_AT}) being the last loss "
    f"logged at or before step {C8_AT}; holds if share >= {C8_SHARE} in every curve; inconclusive if the "
    f"loss did not fall, the run ends by step {C8_AT}, or no step in "
    f"[{int(C8_AT * C8_MIN_LOGGED_FRACTION)}, {C8_AT}] was logged."
)


def rule_c8(df: pd.DataFrame, at: int = C8_AT) -> dict:
    """C8 (E5): most of the loss drop happens in the first ~100 iterations.

    Columns: iteration, total_loss, optionally net (one curve per net; otherwise one curve).
    """
    d = _need(df, "C8", ["iteration", "total_loss"])
    groups = d.groupby(_lower(d["net"])) if "net" in d.columns else [("run", d)]
    parts, verdicts = [], []
    for name, g in groups:
        loss = _means(g, "iteration", "total_loss")
        if len(loss) == 0:
            continue
        it = loss.index.to_numpy(dtype=float)
        upto = loss[loss.index <= at]
        l0, lend = loss.iloc[0], loss.iloc[-1]
        if len(upto) < 2 or upto.index[-1] < at * C8_MIN_LOGGED_FRACTION or it[-1] <= at or not l0 > lend:
            parts.append(
                f"{name}: iterations {it[0]:g}..{it[-1]:g}, loss {_g(l0)} -> {_g(lend)} (cannot place the drop)"
            )
            verdicts.append(INCONCLUSIVE)
            continue
        share = float((l0 - upto.iloc[-1]) / (l0 - lend))
        parts.append(
            f"{name}: loss {_g(l0)} (it {it[0]:g}) -> {_g(upto.iloc[-1])} (it {upto.index[-1]:g}) -> "
            f"{_g(lend)} (it {it[-1]:g}); share of the drop by {at}: {share:.0%}"
        )
        verdicts.append(HOLDS if share >= C8_SHARE else FAILS)
    return _all_nets("C8", verdicts, parts, RULE_C8)


RULE_C9 = (
    f"Mean style_distance (measured in a third network) per optimised net: holds if vgg19's is lower than "
    f"resnet50's by more than {REL_MARGIN:.0%}; does not hold if higher by more than {REL_MARGIN:.0%}; "
    f"within the margin, a net missing, or a judge that is one of the optimised nets is inconclusive."
)


def rule_c9(df: pd.DataFrame) -> dict:
    """C9 (E5): VGG19 stylises more than ResNet50 (lower style distance to the style image).

    Columns: net ("vgg19", "resnet50": which net the run optimised), style_distance; optionally
    judge (the arch style_distance was measured in; it must be neither optimised net).
    """
    d = _need(df, "C9", ["net", "style_distance"]).assign(net=lambda t: _lower(t["net"]))
    sd = _means(d, "net", "style_distance")
    measured = f"style_distance by optimised net: {_series(sd)}"
    if "judge" in d.columns:
        judges = sorted(set(_lower(d["judge"].dropna())))
        measured += f" (judged in {', '.join(judges)})"
        if set(judges) & {"vgg19", "resnet50"}:
            return _result("C9", INCONCLUSIVE, measured + "; the judge was one of the optimised nets", RULE_C9)
    if not {"vgg19", "resnet50"} <= set(sd.index):
        return _result("C9", INCONCLUSIVE, measured + " (needs vgg19 and resnet50)", RULE_C9)
    v, r = float(sd["vgg19"]), float(sd["resnet50"])
    verdict = HOLDS if _clearly_below(v, r) else FAILS if _clearly_below(r, v) else INCONCLUSIVE
    return _result("C9", verdict, measured, RULE_C9)


RULE_C10 = (
    f"Per (device, dtype, size): the median and MAD of the repeats' seconds_per_iteration per method; speed-up = "
    f"{C10_ITERATIONS} x vanilla / fast at the medians, and at the ends of the bands median +- MAD (pessimistic: "
    f"vanilla's lower end over fast's upper end; optimistic: the reverse); a setting holds if even the pessimistic "
    f"speed-up is >= {C10_MIN_SPEEDUP:g}, does not hold if even the optimistic one is below, otherwise (the spread "
    f"could flip it, or a method has fewer than {TIMING_MIN_REPEATS} repeats) inconclusive; holds if every setting "
    f"holds, does not hold if one does not; inconclusive if no setting has both methods."
)


def rule_c10(df: pd.DataFrame) -> dict:
    """C10 (E6): the fast network is at least 1000x faster than 1000 vanilla iterations.

    Columns: method ("vanilla", "fast"), seconds_per_iteration (one row per timed repeat: for
    "vanilla" one iteration of the optimisation, for "fast" one forward pass of one image),
    optionally size, device, dtype (speed-ups are only formed within one setting). A vanilla run of
    fewer iterations is scaled linearly to 1000, as seconds per iteration is constant for a
    fixed-size optimisation.
    """
    d = _need(df, "C10", ["method", "seconds_per_iteration"]).assign(method=lambda t: _lower(t["method"]))
    keys = [k for k in ("device", "dtype", "size") if k in d.columns]
    groups = d.groupby(keys) if keys else [((), d)]
    parts, verdicts = [], []
    for key, g in groups:
        spi = {m: timing_spread(s) for m, s in g.groupby("method")["seconds_per_iteration"]}
        if not {"vanilla", "fast"} <= set(spi) or not spi["fast"].median > 0:
            continue
        van, fast = spi["vanilla"], spi["fast"]
        speedup = C10_ITERATIONS * van.median / fast.median
        worst, best = (C10_ITERATIONS * r for r in _ratio_range([van], [fast]))
        label = ", ".join(f"{k}={v}" for k, v in zip(keys, key if isinstance(key, tuple) else (key,))) or "all"
        parts.append(
            f"{label}: vanilla {_g(C10_ITERATIONS * van.median)} s/{C10_ITERATIONS} it (s/it {van.text()}), "
            f"fast {_g(fast.median)} s (s/pass {fast.text()}), speed-up {_g(speedup)}x ({_g(worst)}x to "
            f"{_g(best)}x within the bands)"
        )
        if min(van.n, fast.n) < TIMING_MIN_REPEATS:
            parts[-1] += f" (fewer than {TIMING_MIN_REPEATS} repeats)"
            verdicts.append(INCONCLUSIVE)
        else:
            verdicts.append(HOLDS if worst >= C10_MIN_SPEEDUP else FAILS if best < C10_MIN_SPEEDUP else INCONCLUSIVE)
    if not verdicts:
        return _result("C10", INCONCLUSIVE, "no setting with both a vanilla and a fast timing", RULE_C10)
    return _all_nets("C10", verdicts, parts, RULE_C10)


RULE_C11 = (
    f"Per net, mean ssim_content by depth: holds in a net if Spearman rho(depth, ssim) <= {C11_MAX_RHO} "
    f"and ssim at the shallowest layer exceeds ssim at the deepest by >= {C11_MIN_SSIM_DROP}; does not hold "
    f"in a net whose deepest layer is at least as close as its shallowest; holds if it holds in every net, "
    f"does not hold if it fails in one; otherwise, or with fewer than {C11_MIN_LAYERS} layers, inconclusive."
)


def rule_c11(df: pd.DataFrame) -> dict:
    """C11 (E8): reconstruction fidelity falls with the depth of the layer reconstructed from.

    Columns: net (one trend per net), depth (VGG block 1..5 of the layer, or any increasing
    depth index), ssim_content (reconstruction versus the original; higher = closer).
    """
    d = _need(df, "C11", ["net", "depth", "ssim_content"]).assign(net=lambda t: _lower(t["net"]))
    parts, verdicts = [], []
    for net, g in d.groupby("net"):
        s = _means(g, "depth", "ssim_content")
        rho = _spearman(s.index, s.values)
        drop = float(s.iloc[0] - s.iloc[-1])
        parts.append(f"{net}: ssim by depth {_series(s)}; rho = {_g(rho)}, drop {_g(drop)}")
        if len(s) < C11_MIN_LAYERS:
            verdicts.append(INCONCLUSIVE)
        elif drop <= 0:
            verdicts.append(FAILS)
        elif rho <= C11_MAX_RHO + 1e-9 and drop >= C11_MIN_SSIM_DROP:  # 1e-9: rho = -0.8 comes out as -0.7999...
            verdicts.append(HOLDS)
        else:
            verdicts.append(INCONCLUSIVE)
    return _all_nets("C11", verdicts, parts, RULE_C11)


RULE_C12 = (
    f"Mean ssim_content and style_distance per alpha/beta ratio: content rises if Spearman rho(ratio, ssim) "
    f">= {C12_MIN_RHO} and ssim gains >= {C12_MIN_SSIM_GAIN} from the smallest to the largest ratio; style "
    f"distance falls as the ratio shrinks if rho(ratio, distance) >= {C12_MIN_RHO} and the distance at the "
    f"smallest ratio is more than {REL_MARGIN:.0%} below the largest's; holds if both; does not hold if "
    f"either end-to-end change is reversed; otherwise, or with fewer than {C12_MIN_RATIOS} ratios, "
    "inconclusive."
)


def _trend(s: pd.Series, clear) -> str:
    """up (rho >= C12_MIN_RHO and clear(first, last)), reversed (last <= first) or flat."""
    rho = _spearman(s.index, s.values)
    if s.iloc[-1] <= s.iloc[0]:
        return "reversed"
    return "up" if rho >= C12_MIN_RHO - 1e-9 and clear(s.iloc[0], s.iloc[-1]) else "flat"


def rule_c12(df: pd.DataFrame) -> dict:
    """C12 (E9): content similarity rises with alpha/beta; the style distance falls as it shrinks.

    Columns: ratio (alpha/beta), ssim_content (to the content), style_distance (to the style,
    measured in a network the runs did not optimise; lower = closer).
    """
    d = _need(df, "C12", ["ratio", "ssim_content", "style_distance"])
    ss, sd = _means(d, "ratio", "ssim_content"), _means(d, "ratio", "style_distance")
    measured = f"ssim_content by ratio: {_series(ss)}; style_distance: {_series(sd)}"
    if len(ss) < C12_MIN_RATIOS:
        return _result("C12", INCONCLUSIVE, measured + f" (only {len(ss)} ratios)", RULE_C12)
    content = _trend(ss, lambda a, b: b - a >= C12_MIN_SSIM_GAIN)
    style = _trend(sd, lambda a, b: _clearly_below(a, b))
    measured += f"; content {content}, style distance {style}"
    verdict = HOLDS if content == style == "up" else FAILS if "reversed" in (content, style) else INCONCLUSIVE
    return _result("C12", verdict, measured, RULE_C12)


RULE_C13 = (
    f"Best total_loss each optimiser reached within the budget both had, in loss evaluations and in "
    f"seconds: holds if L-BFGS is more than {REL_MARGIN:.0%} below Adam in both budgets; does not hold if "
    f"Adam is more than {REL_MARGIN:.0%} below L-BFGS in either; otherwise, or an optimiser missing, "
    "inconclusive."
)


def rule_c13(df: pd.DataFrame) -> dict:
    """C13 (E9): L-BFGS reaches a lower loss than Adam in the same budget (Gatys et al.'s choice).

    Columns: optimizer ("lbfgs", "adam"), evaluation (1, 2, ...), seconds (since the run
    started), total_loss (the objective both minimised, on one scale).
    """
    d = _need(df, "C13", ["optimizer", "evaluation", "seconds", "total_loss"]).assign(
        optimizer=lambda t: _lower(t["optimizer"])
    )
    runs = {o: g for o, g in d.groupby("optimizer") if o in ("lbfgs", "adam")}
    if len(runs) < 2:
        return _result("C13", INCONCLUSIVE, f"curves present: {sorted(runs)} (needs lbfgs and adam)", RULE_C13)
    parts, verdicts = [], []
    for budget in ("evaluation", "seconds"):
        limit = min(g[budget].max() for g in runs.values())
        best = {o: float(g.loc[g[budget] <= limit, "total_loss"].min()) for o, g in runs.items()}
        parts.append(
            f"within {_g(limit)} {budget}{'s' if budget == 'evaluation' else ''}: "
            f"lbfgs {_g(best['lbfgs'])}, adam {_g(best['adam'])}"
        )
        verdicts.append(
            HOLDS
            if _clearly_below(best["lbfgs"], best["adam"])
            else FAILS
            if _clearly_below(best["adam"], best["lbfgs"])
            else INCONCLUSIVE
        )
    verdict = FAILS if FAILS in verdicts else HOLDS if verdicts == [HOLDS, HOLDS] else INCONCLUSIVE
    return _result("C13", verdict, "; ".join(parts), RULE_C13)


RULE_C14 = (
    f"Mean objective of the fast network's output against L-BFGS's after {C14_ITERATIONS} iterations: holds if "
    f"fast <= (1 + {REL_MARGIN:g}) x L-BFGS; does not hold otherwise; inconclusive without a fast row or an "
    f"L-BFGS row at {C14_ITERATIONS} iterations."
)


def rule_c14(df: pd.DataFrame) -> dict:
    """C14 (E10): one forward pass of the fast network matches the objective of >= 50 L-BFGS iterations.

    Columns: method ("fast": the network's output; "lbfgs": the optimisation from noise),
    iterations (for lbfgs: the iteration count the objective was read at; ignored for fast),
    objective (the same objective for both, lower = better).
    """
    d = _need(df, "C14", ["method", "iterations", "objective"]).assign(method=lambda t: _lower(t["method"]))
    fast = d.loc[d["method"] == "fast", "objective"]
    lb = _means(d[d["method"] == "lbfgs"], "iterations", "objective")
    measured = f"fast: {_g(fast.mean()) if len(fast) else 'none'}; L-BFGS by iterations: {_series(lb) or 'none'}"
    if not len(fast) or C14_ITERATIONS not in lb.index:
        return _result("C14", INCONCLUSIVE, measured + f" (needs fast and L-BFGS at {C14_ITERATIONS})", RULE_C14)
    f = float(fast.mean())
    beaten = [int(n) for n, v in lb.items() if v < f]
    measured += (
        f"; L-BFGS first below the fast network at {beaten[0]} iterations"
        if beaten
        else "; L-BFGS never below the fast network"
    )
    ok = f <= lb[C14_ITERATIONS] * (1.0 + REL_MARGIN)
    return _result("C14", HOLDS if ok else FAILS, measured, RULE_C14)


# ---------------------------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------------------------


class Claim(NamedTuple):
    source: str  # the report that made the claim (seed file in ../shared/seeds)
    text: str
    rule: Callable[[pd.DataFrame], dict]


_HUST, _IITB, _NYU, _YONSEI, _GATYS = (cited(k) for k in ("hust", "iitb", "nyu", "yonsei", "gatys2016"))

CLAIMS: dict[str, Claim] = {
    "C1": Claim(_HUST + " (3.1)", "As the TV weight gamma grows, high-frequency energy falls.", rule_c1),
    "C2": Claim(_HUST + " (3.2)", "A higher lambda_c gives an output closer to the content.", rule_c2),
    "C3": Claim(_HUST + " (3.2)", "lambda_s=4 changes the input little; lambda_s=400 loses the content.", rule_c3),
    "C4": Claim(
        _NYU + " (4.2)", "relu2_2 is the best content layer; relu3_3 gives colour lumps, relu4_3 worse.", rule_c4
    ),
    "C5": Claim(_NYU + " (4.2)", "Batch size changes neither training time per epoch nor result quality.", rule_c5),
    "C6": Claim(
        _NYU + " (4.1)", "Initialising from the content delivers the content better than white noise.", rule_c6
    ),
    "C7": Claim(_IITB + " (Table 1)", "Style loss grows as style layers are added (VGG19 and ResNet50).", rule_c7),
    "C8": Claim(_IITB + " (Fig. 7)", "Most of the loss drop happens in the first ~100 iterations.", rule_c8),
    "C9": Claim(_IITB + " (5 Conclusions)", "VGG19 stylises more than ResNet50.", rule_c9),
    "C10": Claim(_HUST + " (3.3)", "The fast network is at least 1000x faster than 1000 vanilla iterations.", rule_c10),
    "C11": Claim(
        _YONSEI + " (Fig. 3); Gatys et al. 2016 (Fig. 1)",
        "Reconstruction fidelity falls with the depth of the layer reconstructed from.",
        rule_c11,
    ),
    "C12": Claim(
        _YONSEI + " (1.3); Gatys et al. 2016 (Fig. 3)",
        "A larger alpha/beta gives an output closer to the content, a smaller one closer to the style.",
        rule_c12,
    ),
    "C13": Claim(_GATYS, "L-BFGS reaches a lower loss than Adam in the same budget.", rule_c13),
    "C14": Claim(
        cited("johnson2016") + " (Fig. 5)",
        "One forward pass of the fast network matches the objective of at least 50 L-BFGS iterations.",
        rule_c14,
    ),
}


def evaluate_rule(claim_id: str, df: pd.DataFrame) -> dict:
    """Run the rule of `claim_id` on `df`; the result also carries the claim's source and text.
    Which experiment evaluates a claim is the experiments' knowledge: registry.evaluate adds it."""
    if claim_id not in CLAIMS:
        raise unknown("claim", claim_id, CLAIMS)
    c = CLAIMS[claim_id]
    return {**c.rule(df), "source": c.source, "text": c.text}
