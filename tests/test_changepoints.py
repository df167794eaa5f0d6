"""Tests of the changepoints tool: real data, synthetic truth, null series, contract, limits."""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest

from chronoken.errors import ArgsError, SeriesError, ToolError
from chronoken.series import Series
from chronoken.tools import get
from chronoken.tools._cp_cost import SegmentCost
from chronoken.tools._cp_search import binseg, optimal_k, pelt
from chronoken.tools.changepoints import ChangepointsArgs, ChangepointsResult

TOOL = get("changepoints")
MARGIN = 5


def f1_margin(true: list[int], pred: list[int], margin: int = MARGIN) -> float:
    """F1 of predicted change points against the truth, as TCPD/ruptures count hits: a true
    change point is found when a prediction lies within ``margin``; each prediction matches at
    most one true change point (closest first). Unlike TCPD, index 0 is not added to both
    sets, so an empty prediction scores 0 whenever there is a true change."""
    if not true and not pred:
        return 1.0
    left = sorted(pred)
    hits = 0
    for t in sorted(true):
        close = sorted((abs(t - p), p) for p in left if abs(t - p) <= margin)
        if close:
            hits += 1
            left.remove(close[0][1])
    if hits == 0:
        return 0.0
    precision, recall = hits / len(pred), hits / len(true)
    return 2 * precision * recall / (precision + recall)


def test_f1_margin_counts_each_truth_once() -> None:
    assert f1_margin([100], [98, 101]) == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert f1_margin([100, 200], [100]) == pytest.approx(2 / 3)
    assert f1_margin([100], [106]) == 0.0
    assert f1_margin([], []) == 1.0


# ------------------------------------------------------------------ synthetic generators
def _add_outliers(rng: np.random.Generator, y: np.ndarray, scale: float) -> None:
    idx = rng.choice(len(y), len(y) // 100, replace=False)
    y[idx] += rng.choice([-1, 1], len(idx)) * rng.uniform(scale, 1.5 * scale, len(idx))


def mean_shifts(seed: int) -> tuple[np.ndarray, list[int]]:
    """Four level shifts of 2-4 noise sd, segments of 80-200 points, 1% outliers of 6-9 sd."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(80, 200, size=5)
    levels = np.cumsum(np.r_[0, rng.choice([-1, 1], 4) * rng.uniform(2, 4, 4)])
    y = np.repeat(levels, lengths) + rng.normal(size=lengths.sum())
    _add_outliers(rng, y, 6)
    return y, [int(c) for c in np.cumsum(lengths)[:-1]]


def variance_shifts(seed: int) -> tuple[np.ndarray, list[int]]:
    """Noise sd alternating 1 and 3, segments of 120-250 points, 1% outliers of 10-15 sd."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(120, 250, size=4)
    sds = [1, 3, 1, 3] if rng.random() < 0.5 else [3, 1, 3, 1]
    y = np.concatenate([rng.normal(0, s, n) for n, s in zip(lengths, sds, strict=True)])
    _add_outliers(rng, y, 10)
    return y, [int(c) for c in np.cumsum(lengths)[:-1]]


def slope_changes(seed: int) -> tuple[np.ndarray, list[int]]:
    """Continuous trend whose slope changes by 0.1-0.2 per step three times, noise sd 1."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(100, 200, size=4)
    slopes = np.cumsum(
        np.r_[rng.uniform(-0.05, 0.05), rng.choice([-1, 1], 3) * rng.uniform(0.1, 0.2, 3)]
    )
    y = np.cumsum(np.repeat(slopes, lengths)) + rng.normal(size=lengths.sum())
    _add_outliers(rng, y, 6)
    return y, [int(c) for c in np.cumsum(lengths)[:-1]]


def ar1(seed: int, n: int, phi: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = rng.normal(size=n)
    y = np.empty(n)
    y[0] = e[0] / np.sqrt(1 - phi**2)
    for t in range(1, n):
        y[t] = phi * y[t - 1] + e[t]
    return y


# ------------------------------------------------------------------ behaviour on data
def test_nile_single_change_near_1898() -> None:
    import statsmodels.api as sm

    df = sm.datasets.nile.load_pandas().data
    s = Series(df["volume"].to_numpy(), time=df["year"].to_numpy(), names=["volume"])
    r = TOOL.run(s, TOOL.parse_args())
    assert len(r.change_points) == 1
    assert abs(r.change_points[0] - 28) <= 2
    assert r.change_labels == [s.time_label(r.change_points[0])]
    before, after = r.segments
    assert before.mean[0] > after.mean[0] + 150  # the Aswan-era drop in flow


# The tool was developed on seeds 0-9; seeds 100-129 were scored once afterwards, not tuned on
# (mean F1 0.985 / 0.922 / 0.962). Variance changes are the hardest to place within 5 points:
# with sd 1 vs 3 even the exact likelihood optimum on clean data is often 6-15 points off.
@pytest.mark.parametrize("gen", [mean_shifts, variance_shifts, slope_changes])
def test_synthetic_f1_with_defaults(gen) -> None:
    scores = []
    for seed in range(100, 130):
        y, truth = gen(seed)
        r = TOOL.run(Series(y), TOOL.parse_args())
        scores.append(f1_margin(truth, r.change_points))
    assert np.mean(scores) >= 0.9, scores


@pytest.mark.parametrize(
    "make",
    [
        lambda s: np.random.default_rng(s).normal(size=500),
        lambda s: ar1(s, 500, 0.5),
        lambda s: (
            3 * np.sin(2 * np.pi * np.arange(240) / 12) + np.random.default_rng(s).normal(size=240)
        ),
    ],
    ids=["white", "ar1_0.5", "seasonal"],
)
def test_no_change_in_noise_or_smooth_seasonal(make) -> None:
    for seed in (200, 201, 202):
        r = TOOL.run(Series(make(seed)), TOOL.parse_args())
        assert r.change_points == [], (seed, r.model)


def test_seasonal_profile_removed_and_reported() -> None:
    rng = np.random.default_rng(5)
    t = np.arange(360)
    y = 4 * np.sin(2 * np.pi * t / 12) + rng.normal(size=360)
    y[200:] += 3.0
    r = TOOL.run(Series(y), TOOL.parse_args())
    assert r.diagnostics["seasonal_period_removed"]["y"] == 12
    assert len(r.change_points) == 1 and abs(r.change_points[0] - 200) <= MARGIN
    assert any("seasonal" in n for n in r.notes)


# ------------------------------------------------------------------ arguments honoured
@pytest.mark.parametrize("method", ["auto", "pelt", "binseg", "window", "dynp"])
def test_n_bkps_gives_exactly_k(method: str) -> None:
    y, _ = mean_shifts(7)
    for k in (1, 3, 6):
        r = TOOL.run(Series(y), TOOL.parse_args(method=method, n_bkps=k))
        assert len(r.change_points) == k
        assert len(r.segments) == k + 1
        assert r.penalty is None


@pytest.mark.parametrize("cost", ["l2", "l1", "normal", "rbf", "linear"])
def test_each_cost_finds_a_clear_shift(cost: str) -> None:
    rng = np.random.default_rng(11)
    y = np.r_[rng.normal(0, 1, 150), rng.normal(4, 1, 150)]
    r = TOOL.run(Series(y), TOOL.parse_args(cost=cost))
    assert len(r.change_points) == 1 and abs(r.change_points[0] - 150) <= MARGIN


def test_larger_penalty_never_adds_change_points() -> None:
    y, _ = mean_shifts(3)
    counts = [
        len(TOOL.run(Series(y), TOOL.parse_args(cost="l2", penalty=p)).change_points)
        for p in (2.0, 20.0, 200.0, 2000.0)
    ]
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]


def test_multichannel_change_in_one_channel() -> None:
    rng = np.random.default_rng(12)
    a = rng.normal(size=400)
    b = np.r_[rng.normal(0, 1, 250), rng.normal(3, 1, 150)]
    s = Series(np.c_[a, b], names=["a", "b"])
    r = TOOL.run(s, TOOL.parse_args())
    assert len(r.change_points) == 1 and abs(r.change_points[0] - 250) <= MARGIN
    assert r.channels == ["a", "b"]
    seg = r.segments[1]
    assert len(seg.mean) == 2 and seg.mean[1] == pytest.approx(b[r.change_points[0] :].mean())


def test_deterministic() -> None:
    y, _ = variance_shifts(4)
    r1 = TOOL.run(Series(y), TOOL.parse_args())
    r2 = TOOL.run(Series(y), TOOL.parse_args())
    assert r1.model_dump_json() == r2.model_dump_json()


def test_missing_values_interpolated_with_note() -> None:
    rng = np.random.default_rng(13)
    y = np.r_[rng.normal(0, 1, 200), rng.normal(5, 1, 200)]
    y[[10, 50, 51, 300]] = np.nan
    r = TOOL.run(Series(y), TOOL.parse_args())
    assert abs(r.change_points[0] - 200) <= MARGIN and len(r.change_points) == 1
    assert any("4 missing" in n and "interpolated" in n for n in r.notes)


def test_constant_series_has_no_change_and_a_note() -> None:
    r = TOOL.run(Series(np.full(50, 3.0)), TOOL.parse_args())
    assert r.change_points == [] and len(r.segments) == 1
    assert any("constant" in n for n in r.notes)


# ------------------------------------------------------------------ contract and errors
def test_schemas_and_json_round_trip() -> None:
    json.dumps(ChangepointsArgs.model_json_schema())
    json.dumps(ChangepointsResult.model_json_schema())
    y, _ = mean_shifts(1)
    r = TOOL.run(Series(y), TOOL.parse_args())
    back = ChangepointsResult.model_validate_json(r.model_dump_json())
    assert back == r
    assert sum(c.selected for c in r.selection) == 1
    for name, info in ChangepointsArgs.model_fields.items():
        assert info.description, name


@pytest.mark.parametrize(
    "bad",
    [
        {"method": "fast"},
        {"cost": "l3"},
        {"n_bkps": -1},
        {"penalty": 0},
        {"min_size": 1},
        {"jump": 0},
        {"colour": "red"},
    ],
)
def test_bad_args_raise_args_error(bad: dict) -> None:
    with pytest.raises(ArgsError):
        TOOL.parse_args(**bad)


def test_too_short_series_raises_series_error() -> None:
    with pytest.raises(SeriesError):
        TOOL.run(Series([1.0, 2.0, 3.0, 4.0, 5.0]), TOOL.parse_args())
    with pytest.raises(SeriesError, match="at least 101"):
        TOOL.run(Series(np.arange(60.0)), TOOL.parse_args(min_size=50))


def test_impossible_k_and_size_limits_raise_tool_error() -> None:
    with pytest.raises(ToolError, match="cannot place"):
        TOOL.run(
            Series(np.random.default_rng(0).normal(size=40)), TOOL.parse_args(n_bkps=10, min_size=5)
        )
    with pytest.raises(ToolError, match="pelt"):
        TOOL.run(Series(np.random.default_rng(0).normal(size=2500)), TOOL.parse_args(method="dynp"))
    with pytest.raises(ToolError, match="rbf"):
        TOOL.run(Series(np.random.default_rng(0).normal(size=20_001)), TOOL.parse_args(cost="rbf"))


# ------------------------------------------------------------------ search equals ruptures
@pytest.mark.parametrize("kind", ["l2", "normal"])
def test_vectorised_searches_match_ruptures(kind: str) -> None:
    import warnings

    import ruptures as rpt

    rng = np.random.default_rng(21)
    x = np.r_[
        rng.normal(0, 1, 120), rng.normal(2, 1, 80), rng.normal(2, 3, 100), rng.normal(-1, 1, 100)
    ]
    cost = SegmentCost(x, kind)
    pen = 3 * np.log(len(x)) * (2 if kind == "normal" else 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for jump in (1, 5):
            ref = rpt.Pelt(model=kind, min_size=5, jump=jump).fit(x).predict(pen=pen)[:-1]
            assert pelt(cost, pen, 5, jump) == ref
            ref = rpt.Binseg(model=kind, min_size=5, jump=jump).fit(x).predict(pen=pen)[:-1]
            assert binseg(cost, 5, jump, pen=pen) == ref
        ref = rpt.Dynp(model=kind, min_size=5, jump=5).fit(x).predict(n_bkps=3)[:-1]
        assert optimal_k(cost, 3, 5, 5) == ref


# ------------------------------------------------------------------ prompt cues
def _read(field: str, prompt: str):
    extra = ChangepointsArgs.model_fields[field].json_schema_extra or {}
    for cue in extra.get("cues", []):
        m = re.search(cue, prompt.lower())
        if m:
            return m.group(1)
    for value, patterns in extra.get("synonyms", {}).items():
        if any(re.search(p, prompt.lower()) for p in patterns):
            return value
    return None


def test_cues_read_counts_and_choices() -> None:
    assert _read("n_bkps", "Find at most 3 change points in sales") == "3"
    assert _read("n_bkps", "where are the 2 breaks?") == "2"
    assert _read("n_bkps", "detect 4 regime shifts") == "4"
    assert _read("n_bkps", "is there a single structural break") == "1"
    assert _read("n_bkps", "is there at least 1 change?") is None
    assert _read("n_bkps", "forecast 12 months ahead") is None
    assert _read("method", "use binary segmentation") == "binseg"
    assert _read("cost", "did the variance change? find changes in variance") == "normal"
    assert _read("cost", "when did the trend change") == "linear"
    assert _read("cost", "any breaks in the trend?") == "linear"
    assert _read("penalty", "with a penalty of 25") == "25"
    assert _read("min_size", "segments of at least 30 points") == "30"


# ------------------------------------------------------------------ plot, report, speed
def test_plot_and_report_show_the_result() -> None:
    from matplotlib.figure import Figure

    rng = np.random.default_rng(14)
    y = np.r_[rng.normal(0, 1, 100), rng.normal(4, 1, 100)]
    time_index = np.datetime64("2021-01-01") + np.arange(200)
    s = Series(y, time=time_index)
    r = TOOL.run(s, TOOL.parse_args())
    fig = TOOL.plot(s, r)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    vlines = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert len(vlines) == len(r.change_points) == 1
    md = TOOL.report(s, r)
    for seg in r.segments:
        assert f"| {seg.start} | {seg.end} | {seg.start_label} | {seg.end_label} | {seg.n} |" in md
        assert f"{seg.mean[0]:.4g}" in md and f"{seg.std[0]:.4g}" in md
    assert r.change_labels[0] in md and r.change_labels[0].startswith("2021-04")


def test_ten_thousand_points_default_is_fast() -> None:
    rng = np.random.default_rng(15)
    t = np.arange(10_000)
    y = 0.002 * t + np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.3, t.size)
    y[5000:] += 2.0
    TOOL.run(Series(y[:50]), TOOL.parse_args())  # warm imports
    c0 = time.process_time()
    r = TOOL.run(Series(y), TOOL.parse_args())
    cpu = time.process_time() - c0
    assert abs(r.change_points[0] - 5000) <= MARGIN
    assert cpu < 3.0  # target 1 s wall on an idle 2-core machine; generous for shared CI
