"""The arima tool: auto.arima-style selection, forecasts, intervals, diagnostics, errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from chronoken.errors import ArgsError, SeriesError
from chronoken.series import Series
from chronoken.tools import get, registry
from chronoken.tools.arima import ArimaResult


@pytest.fixture(scope="module")
def tool():
    return get("arima")


def _ar1(n: int, phi: float, seed: int, mean: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = rng.normal(size=n + 100)
    x = np.zeros(n + 100)
    for i in range(1, n + 100):
        x[i] = phi * x[i - 1] + e[i]
    return mean + x[100:]


def _co2_monthly() -> pd.Series:
    import statsmodels.api as sm

    weekly = sm.datasets.co2.load_pandas().data["co2"]
    return weekly.resample("MS").mean().interpolate()


@pytest.fixture(scope="module")
def co2_run(tool):
    """The last 24 months of co2 held out; the model fitted on the rest."""
    monthly = _co2_monthly()
    train = Series.load(monthly.iloc[:-24])
    result = tool.run(train, tool.parse_args(horizon=24))
    return train, monthly.iloc[-24:].to_numpy(), result


def test_registered_with_doc_and_schemas(tool):
    assert "arima" in registry()
    spec = tool.spec()
    for word in (
        "forecast",
        "default forecaster",
        "prediction interval",
        "autoregressive",
        "moving average",
        "seasonal",
        "Box-Jenkins",
    ):
        assert word.lower() in spec["doc"].lower()
    json.dumps(spec)  # schemas are plain JSON
    assert {"horizon", "level", "order", "seasonal_period"} <= set(
        spec["args_schema"]["properties"]
    )


def test_co2_forecast_beats_seasonal_naive(co2_run):
    train, future, result = co2_run
    y = train.values[:, 0]
    fc = np.array(result.forecasts[0].mean)
    scale = np.mean(np.abs(y[12:] - y[:-12]))  # in-sample seasonal-naive MAE
    mase = np.mean(np.abs(future - fc)) / scale
    naive = np.resize(y[-12:], 24)
    mase_naive = np.mean(np.abs(future - naive)) / scale
    assert mase < 1.0
    assert mase < mase_naive
    ch = result.channels[0]
    assert ch.period == 12 and ch.seasonal_order[3] == 12  # monthly frequency -> s = 12
    assert ch.tests["D"] == 1 and ch.tests["seasonal_strength"] > 0.64


def test_ar1_selection(tool):
    exact = 0
    for seed in range(5):
        res = tool.run(Series(_ar1(500, 0.7, seed)), tool.parse_args())
        ch = res.channels[0]
        p, d, q = ch.order
        assert p >= 1 and ch.seasonal_order == [0, 0, 0, 0]
        assert abs(ch.params["ar.L1"] - 0.7) < 0.1
        exact += (p, d, q) == (1, 0, 0)
        chosen = [c for c in ch.selection if c.selected]
        assert len(chosen) == 1 and chosen[0].name.startswith(ch.model.split(" ")[0])
    assert exact >= 3  # KPSS (auto.arima's rule) may difference an AR(0.7) now and then


def test_detected_cycle_vs_fixed_season(tool):
    # No time index: the period is detected. A quasi-periodic AR(2) cycle (period ~10) must not
    # be seasonally differenced; a fixed 12-step pattern must.
    rng = np.random.default_rng(0)
    x, e = np.zeros(500), rng.normal(size=500)
    for i in range(2, 500):
        x[i] = 2 * 0.95 * np.cos(2 * np.pi / 10) * x[i - 1] - 0.95**2 * x[i - 2] + e[i]
    quasi = tool.run(Series(x[100:]), tool.parse_args(horizon=5)).channels[0]
    assert quasi.period == 10 and quasi.tests["D"] == 0
    assert quasi.tests["seasonal_strength"] > 0.64 > quasi.tests["fixed_pattern_strength"]
    assert quasi.order[0] >= 2  # the cycle is carried by AR terms
    t = np.arange(240)
    y = 10 + 3 * np.sin(2 * np.pi * t / 12) + np.cos(2 * np.pi * t / 6) + rng.normal(0, 0.5, 240)
    season = tool.run(Series(y), tool.parse_args(horizon=5)).channels[0]
    assert season.period == 12 and season.tests["D"] == 1


def test_interval_coverage_and_level(tool):
    hits, total = 0, 0
    for seed in range(12):
        y = _ar1(208, 0.6, 100 + seed, mean=5.0)
        res = tool.run(Series(y[:200]), tool.parse_args(horizon=8, level=0.8))
        fc = res.forecasts[0]
        assert len(fc.mean) == len(fc.steps) == 8 and fc.level == 0.8
        hits += int(np.sum((y[200:] >= fc.lower) & (y[200:] <= fc.upper)))
        total += 8
    assert 0.65 <= hits / total <= 0.93
    # The same model at 95%: Gaussian intervals widen by z(0.975) / z(0.9).
    s = Series(_ar1(200, 0.6, 7))
    f80 = tool.run(s, tool.parse_args(horizon=5, level=0.8, order=[1, 0, 0])).forecasts[0]
    f95 = tool.run(s, tool.parse_args(horizon=5, level=95, order=[1, 0, 0])).forecasts[0]
    w80 = np.subtract(f80.upper, f80.lower)
    w95 = np.subtract(f95.upper, f95.lower)
    np.testing.assert_allclose(w95 / w80, 1.959964 / 1.281552, rtol=1e-4)
    np.testing.assert_allclose(f80.mean, f95.mean)


def test_default_horizon_and_future_labels(co2_run, tool):
    train, _, _ = co2_run
    res = tool.run(Series(_ar1(120, 0.5, 3)), tool.parse_args())
    assert len(res.forecasts[0].mean) == 10  # non-seasonal default
    two_years = tool.run(
        train,
        tool.parse_args(horizon=2, horizon_unit="years", order=[0, 1, 1], seasonal_order=[0, 1, 1]),
    )
    assert len(two_years.forecasts[0].mean) == 24  # monthly data: 2 years = 24 steps
    _, _, result = co2_run
    steps = result.forecasts[0].steps
    assert steps == train.future_labels(24)
    assert steps[0] > train.time_label(train.n_samples - 1)  # ISO dates compare as strings


def test_multichannel_one_model_per_channel(tool):
    t = pd.date_range("2000-01-01", periods=144, freq="MS")
    rng = np.random.default_rng(5)
    seasonal = 10 + 3 * np.sin(2 * np.pi * np.arange(144) / 12) + rng.normal(0, 0.3, 144)
    values = np.column_stack([_ar1(144, 0.7, 11), seasonal])
    both = tool.run(Series(values, t, ["a", "b"]), tool.parse_args(horizon=6))
    assert [c.channel for c in both.channels] == ["a", "b"]
    assert [f.channel for f in both.forecasts] == ["a", "b"]
    assert set(both.params) == {"a", "b"} and "a.rmse" in both.fit and "b.rmse" in both.fit
    for j, name in enumerate(["a", "b"]):
        alone = tool.run(Series(values[:, j], t, [name]), tool.parse_args(horizon=6))
        assert alone.channels[0].model == both.channels[j].model
        np.testing.assert_allclose(alone.forecasts[0].mean, both.forecasts[j].mean)
    assert both.channels[1].seasonal_order[3] == 12


def test_deterministic_and_json_round_trip(tool):
    s = Series(_ar1(150, 0.5, 21))
    a = tool.run(s, tool.parse_args(horizon=4))
    b = tool.run(s, tool.parse_args(horizon=4))
    assert a.model_dump_json() == b.model_dump_json()
    again = ArimaResult.model_validate_json(a.model_dump_json())
    assert again == a
    json.loads(a.model_dump_json())


def test_missing_values(tool):
    y = _ar1(300, 0.7, 4, mean=10.0)
    y[[20, 21, 22, 150, 299]] = np.nan
    res = tool.run(Series(y), tool.parse_args(horizon=5))
    ch = res.channels[0]
    assert ch.n_missing == 5 and ch.n_obs == 295
    assert any("missing" in n and "Kalman" in n for n in ch.notes)
    assert np.all(np.isfinite(res.forecasts[0].mean)) and np.all(
        np.isfinite(res.forecasts[0].lower)
    )


def test_constant_series_gives_trivial_model(tool):
    res = tool.run(Series(np.full(30, 4.2)), tool.parse_args(horizon=3))
    ch = res.channels[0]
    assert ch.sigma2 == 0.0 and ch.forecast.mean == [4.2] * 3
    assert ch.forecast.lower == ch.forecast.upper == [4.2] * 3
    assert any("constant" in n for n in ch.notes)


def test_too_short_and_bad_args(tool):
    with pytest.raises(SeriesError, match="at least"):
        tool.run(Series(np.arange(8.0)), tool.parse_args())
    with pytest.raises(SeriesError, match="period"):
        tool.run(Series(_ar1(20, 0.5, 1)), tool.parse_args(seasonal_period=12))
    bad = [
        {"horizon": 0},
        {"level": 1.5},
        {"order": [1, 1]},
        {"order": "1,5,1"},
        {"criterion": "mse"},
        {"seasonal_order": [0, 2, 1]},
        {"nonsense": 1},
        {"seasonal": False, "seasonal_order": [0, 1, 1, 12]},
        {"seasonal_period": 7, "seasonal_order": [0, 1, 1, 12]},
    ]
    for kwargs in bad:
        with pytest.raises(ArgsError):
            tool.parse_args(**kwargs)


def test_fixed_order_and_criterion(tool):
    s = Series(_ar1(200, 0.6, 8))
    res = tool.run(s, tool.parse_args(order="ARIMA(2,1,1)", criterion="bic"))
    ch = res.channels[0]
    assert ch.order == [2, 1, 1]
    assert all("BIC" in c.criterion for c in ch.selection)


def test_long_period_uses_fourier_terms(tool):
    n, h = 8 * 52, 52
    t = pd.date_range("2010-01-03", periods=n + h, freq="W-SUN")
    signal = 3 * np.sin(2 * np.pi * np.arange(n + h) / (365.25 / 7))
    y = signal + _ar1(n + h, 0.5, 13)
    res = tool.run(Series(y[:n], t[:n]), tool.parse_args(horizon=h))
    ch = res.channels[0]
    assert ch.period == 52 and ch.fourier_terms >= 1
    assert abs(ch.fourier_period - 365.25 / 7) < 1e-9
    assert np.corrcoef(res.forecasts[0].mean, signal[n:])[0, 1] > 0.9


def test_report_and_plot(co2_run, tool):
    from matplotlib.figure import Figure

    train, _, result = co2_run
    ch = result.channels[0]
    text = tool.report(train, result)
    assert ch.model in text and "Ljung-Box" in text
    assert f"{ch.ljung_box.pvalue:.4g}" in text
    fc = ch.forecast
    assert fc.steps[0] in text and fc.steps[-1] in text and f"{fc.mean[0]:.6g}" in text
    ranked = sorted(
        (c for c in ch.selection if "CSS" in c.criterion and c.score is not None),
        key=lambda c: c.score,
    )
    assert ranked[0].name in text and ranked[1].name in text  # the candidates it beat
    fig = tool.plot(train, result)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert len(ax.lines) == 3 and len(ax.collections) == 1  # data, fitted, forecast; band
    fitted = ax.lines[1].get_ydata()
    data = ax.lines[0].get_ydata()
    ok = ~np.isnan(fitted.astype(float))
    assert np.sqrt(np.nanmean((fitted[ok] - data[ok]) ** 2)) == pytest.approx(
        ch.fit["rmse"], rel=0.2
    )


def test_prompt_cues():
    args_mod = pytest.importorskip("chronoken.agent.args")
    tool = get("arima")
    cases = [
        (
            "Forecast the next 24 months with an 80% prediction interval",
            {"horizon": 24, "level": 0.8},
        ),
        ("predict 12 periods ahead", {"horizon": 12}),
        ("forecast the next 2 years", {"horizon": 2, "horizon_unit": "year"}),
        ("forecast for a period of 6 months", {"seasonal_period": None}),
        ("forecast 30 days, 95% interval", {"horizon": 30, "level": 0.95}),
        (
            "fit ARIMA(1,1,1), non-seasonal, horizon 30",
            {"order": [1, 1, 1], "seasonal": False, "horizon": 30},
        ),
        ("fit ARIMA(0,1,1)(0,1,1)[12]", {"order": [0, 1, 1], "seasonal_order": [0, 1, 1, 12]}),
        ("use seasonality 7 and select by BIC", {"seasonal_period": 7, "criterion": "bic"}),
    ]
    for prompt, expected in cases:
        filled = args_mod.fill_rules(tool, prompt)
        for key, value in expected.items():
            assert getattr(filled.args, key) == value, (prompt, key, filled.args)
