"""ssa tool: grouping, periods, reconstruction, R-forecast, MSSA, gaps, errors."""

from __future__ import annotations

import numpy as np
import pytest

from chronoken.errors import ArgsError, SeriesError
from chronoken.series import Series
from chronoken.tools import get
from chronoken.tools.ssa import SSAResult

TOOL = get("ssa")


def run(series: Series, **kwargs: object) -> SSAResult:
    return TOOL.run(series, TOOL.parse_args(**kwargs))


def periodic(result: SSAResult) -> list:
    return [g for g in result.groups if g.kind == "periodic"]


def rebuilt(comp) -> np.ndarray:
    total = np.asarray(comp.trend) + np.asarray(comp.residual)
    for v in comp.periodic.values():
        total = total + np.asarray(v)
    if comp.other is not None:
        total = total + np.asarray(comp.other)
    return total


def trend_sine(n: int = 300, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 0.03 * t + np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.3, n)


def test_sunspots_strongest_pair_is_the_solar_cycle() -> None:
    import statsmodels.api as sm

    df = sm.datasets.sunspots.load_pandas().data
    r = run(Series(df["SUNACTIVITY"].to_numpy(), time=df["YEAR"].to_numpy()))
    strongest = max(periodic(r), key=lambda g: g.share)
    assert 10.0 <= strongest.period <= 12.0
    assert len(strongest.indices) == 2 and strongest.w_correlation > 0.5


def test_trend_and_period_12_found_and_parts_sum_to_data() -> None:
    y = trend_sine()
    r = run(Series(y))
    kinds = [g.kind for g in r.groups]
    assert "trend" in kinds and kinds[-1] == "noise"
    p12 = [g for g in periodic(r) if abs(g.period - 12) <= 0.5]
    assert p12 and len(p12[0].indices) == 2
    assert np.allclose(rebuilt(r.components[0]), y, atol=1e-9)
    # Trend is the slow part: it tracks the 0.03/step line, not the sine.
    slope = np.polyfit(np.arange(len(y)), r.components[0].trend, 1)[0]
    assert abs(slope - 0.03) < 0.005
    assert r.fit["signal_share"] > 0.9 and r.window % 12 == 0 and r.window <= len(y) // 2


def test_white_and_red_noise_have_no_periodic_component() -> None:
    rng = np.random.default_rng(3)
    assert not periodic(run(Series(rng.normal(size=400))))
    x = np.zeros(600)
    e = rng.normal(size=600)
    for i in range(1, 600):
        x[i] = 0.9 * x[i - 1] + e[i]
    assert not periodic(run(Series(x)))


def test_pure_sine_forecast_is_accurate() -> None:
    t = np.arange(224)
    y = 3.0 * np.sin(2 * np.pi * t / 12.5 + 0.4)
    r = run(Series(y[:200]), horizon=24)
    fc = r.forecast[0]
    assert len(fc.mean) == 24 and fc.level == 0.95
    assert np.max(np.abs(np.asarray(fc.mean) - y[200:])) < 1e-6
    assert all(lo <= m <= hi for lo, m, hi in zip(fc.lower, fc.mean, fc.upper, strict=True))


def test_noisy_forecast_is_close_and_interval_matches_the_noise() -> None:
    y = trend_sine(n=324, seed=5)
    r = run(Series(y[:300]), horizon=24)
    fc = np.asarray(r.forecast[0].mean)
    truth = 0.03 * np.arange(300, 324) + np.sin(2 * np.pi * np.arange(300, 324) / 12)
    assert np.sqrt(np.mean((fc - truth) ** 2)) < 0.3
    width = np.asarray(r.forecast[0].upper) - np.asarray(r.forecast[0].lower)
    assert 2 * 1.96 * 0.2 < width.mean() < 2 * 1.96 * 0.6  # noise sd 0.3


def test_mssa_two_channels() -> None:
    rng = np.random.default_rng(2)
    t = np.arange(240)
    a = np.sin(2 * np.pi * t / 12) + 0.2 * rng.normal(size=240)
    b = 50 + 10 * np.cos(2 * np.pi * t / 12) + 0.05 * t + rng.normal(size=240)
    y = np.c_[a, b]
    r = run(Series(y, names=["a", "b"]), horizon=6)
    assert r.multichannel and [c.channel for c in r.components] == ["a", "b"]
    assert any(abs(g.period - 12) <= 0.5 for g in periodic(r))
    for c, comp in enumerate(r.components):
        assert np.allclose(rebuilt(comp), y[:, c], atol=1e-8)
    assert [f.channel for f in r.forecast] == ["a", "b"]
    assert abs(np.mean(r.forecast[1].mean) - (50 + 0.05 * 243)) < 3  # channel units kept


def test_gaps_filled_by_iteration() -> None:
    rng = np.random.default_rng(4)
    t = np.arange(300)
    clean = np.sin(2 * np.pi * t / 12)
    y = clean + 0.1 * rng.normal(size=300)
    y[100:110] = np.nan
    r = run(Series(y))
    comp = r.components[0]
    signal = np.asarray(comp.trend) + sum(np.asarray(v) for v in comp.periodic.values())
    assert np.max(np.abs(signal[100:110] - clean[100:110])) < 0.15
    assert any("missing" in n for n in r.notes)


def test_user_window_and_rank_are_honoured() -> None:
    r = run(Series(trend_sine()), window=48, rank=3)
    assert r.window == 48 and r.rank == 3
    assert sorted(i for g in r.groups if g.kind != "noise" for i in g.indices) == [0, 1, 2]


def test_deterministic_and_json_round_trip() -> None:
    s = Series(trend_sine(n=2500, seed=7))  # window 500 > 300: the large-matrix path
    a, b = run(s, horizon=12), run(s, horizon=12)
    assert a.model_dump_json() == b.model_dump_json()
    assert SSAResult.model_validate_json(a.model_dump_json()) == a


def test_randomized_path_matches_dense() -> None:
    y = trend_sine(n=2600, seed=8)
    big = run(Series(y), window=1200)  # > COV_LIMIT: randomized SVD
    small = run(Series(y), window=996)  # lag-covariance path
    assert big.diagnostics["decomposition"].startswith("randomized")
    for r in (big, small):
        assert any(abs(g.period - 12) <= 0.1 for g in periodic(r))


def test_errors() -> None:
    with pytest.raises(SeriesError, match="at least"):
        run(Series(np.arange(5.0)))
    with pytest.raises(SeriesError, match="constant"):
        run(Series(np.ones(100)))
    with pytest.raises(ArgsError, match="window"):
        run(Series(trend_sine()), window=400)
    with pytest.raises(ArgsError):
        TOOL.parse_args(horizon=-1)
    with pytest.raises(ArgsError):
        TOOL.parse_args(level=1.5)


def test_prompt_cues_fill_arguments() -> None:
    from chronoken.agent.args import fill_rules

    got = fill_rules(TOOL, "SSA with window length 48 and rank 10, forecast 24 steps, 90% band")
    assert got.args.window == 48 and got.args.rank == 10
    assert got.args.horizon == 24 and got.args.level == pytest.approx(0.9)
    assert fill_rules(TOOL, "decompose it, next 12 months please").args.horizon == 12


def test_plot_and_report_use_the_result() -> None:
    from matplotlib.figure import Figure

    s = Series(trend_sine())
    r = run(s, horizon=6)
    fig = TOOL.plot(s, r)
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    text = TOOL.report(s, r)
    p = periodic(r)[0]
    assert f"{p.period:.4g}" in text and f"Window L = {r.window}" in text
    assert f"{r.forecast[0].mean[0]:.4g}" in text
