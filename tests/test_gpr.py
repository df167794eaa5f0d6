"""gpr tool: kernel selection, period, calibrated bands, irregular time, approximations, errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg  # noqa: F401  (loaded before threadpool_limits, which only reaches loaded libraries)
from threadpoolctl import threadpool_limits

from chronoken.errors import ArgsError, SeriesError
from chronoken.series import Series
from chronoken.tools import _gp_fit as gf
from chronoken.tools import _gp_infer as gi
from chronoken.tools import _gp_kernels as gk
from chronoken.tools import get
from chronoken.tools.gpr import GPRResult

TOOL = get("gpr")
PERIOD = 20.0


def run(series: Series, **kwargs: object) -> GPRResult:
    return TOOL.run(series, TOOL.parse_args(**kwargs))


@pytest.fixture(scope="module")
def held_out() -> tuple[GPRResult, np.ndarray, np.ndarray, np.ndarray]:
    """Protocol: a noisy sine (period 20, noise sd 0.3) of 400 points; every 4th point from 20
    to 356 is hidden (85 interpolation targets) and the 40 points after the end are forecast
    (125 held-out points: the binomial sd of a 95% coverage is 2 points in 100)."""
    rng = np.random.default_rng(11)
    t = np.arange(440)
    y = np.sin(2 * np.pi * t / PERIOD) + 0.3 * rng.normal(size=440)
    seen = y[:400].copy()
    hidden = np.arange(20, 360, 4)
    seen[hidden] = np.nan
    return run(Series(seen), horizon=40), y, hidden, seen


def test_periodic_kernel_selected_with_the_true_period(held_out) -> None:
    r, *_ = held_out
    ch = r.channels[0]
    assert ch.family == "periodic"
    assert abs(ch.period - PERIOD) <= 0.05 * PERIOD
    assert [c.name for c in r.selection if c.selected] == ["periodic"]
    assert len(r.selection) == len(gk.FAMILIES)
    assert ch.noise_std == pytest.approx(0.3, rel=0.25)


def test_band_covers_held_out_points(held_out) -> None:
    r, y, hidden, _ = held_out
    ch, fc = r.channels[0], r.forecast[0]
    lower = np.r_[np.asarray(ch.lower)[hidden], fc.lower]
    upper = np.r_[np.asarray(ch.upper)[hidden], fc.upper]
    truth = np.r_[y[hidden], y[400:]]
    coverage = np.mean((truth >= lower) & (truth <= upper))
    assert 0.90 <= coverage <= 0.99
    assert any("missing" in n for n in r.notes)


def test_user_kernel_is_honoured() -> None:
    rng = np.random.default_rng(3)
    t = np.arange(120)
    r = run(Series(np.sin(t / 8.0) + 0.1 * rng.normal(size=120)), kernel="rbf")
    ch = r.channels[0]
    assert ch.family == "rbf" and ch.period is None
    assert [c.name for c in r.selection] == ["rbf"] and "RBF" in ch.sklearn_kernel
    assert np.sqrt(np.mean((np.asarray(ch.mean) - np.sin(t / 8.0)) ** 2)) < 0.1


def test_irregular_time_stamps() -> None:
    rng = np.random.default_rng(5)
    t = np.sort(rng.uniform(0, 300, 180))
    y = np.sin(2 * np.pi * t / PERIOD) + 0.2 * rng.normal(size=180)
    r = run(Series(y, time=t), horizon=5)
    ch = r.channels[0]
    assert "periodic" in ch.family and abs(ch.period - PERIOD) <= 0.05 * PERIOD
    assert r.diagnostics["regular_time"] is False and r.time_unit == "time units"
    step = float(np.median(np.diff(t)))
    truth = np.sin(2 * np.pi * (t[-1] + step * np.arange(1, 6)) / PERIOD)
    assert np.max(np.abs(np.asarray(r.forecast[0].mean) - truth)) < 0.3


def test_linear_trend_extrapolates() -> None:
    rng = np.random.default_rng(6)
    t = np.arange(80)
    r = run(Series(2.0 + 0.5 * t + rng.normal(size=80)), horizon=10)
    fc = np.asarray(r.forecast[0].mean)
    assert np.max(np.abs(fc - (2.0 + 0.5 * np.arange(80, 90)))) < 2.0
    assert r.forecast[0].upper[-1] - r.forecast[0].lower[-1] > 2 * 1.96 * 0.8


def test_two_channels_one_gp_each() -> None:
    rng = np.random.default_rng(7)
    t = np.arange(100)
    y = np.c_[
        np.sin(2 * np.pi * t / 10) + 0.1 * rng.normal(size=100),
        0.05 * t + 0.1 * rng.normal(size=100),
    ]
    r = run(Series(y, names=["wave", "ramp"]), horizon=3)
    assert [c.channel for c in r.channels] == ["wave", "ramp"]
    assert [f.channel for f in r.forecast] == ["wave", "ramp"]
    for c, ch in enumerate(r.channels):
        assert np.sqrt(np.mean((np.asarray(ch.mean) - y[:, c]) ** 2)) < 0.2
    assert {"rmse[wave]", "rmse[ramp]"} <= set(r.fit)


def test_kernels_and_likelihood_match_scikit_learn() -> None:
    from sklearn.gaussian_process import GaussianProcessRegressor

    rng = np.random.default_rng(8)
    x = np.sort(rng.uniform(-0.5, 0.5, 30))
    y = rng.normal(size=30)
    xs = np.linspace(-0.6, 0.7, 9)
    for fam in gk.FAMILIES:
        spec = gk.make_spec(fam, {"dt": 0.01, "period": 0.1, "period_max": 0.5})
        theta = spec.theta0 + rng.normal(0, 0.3, len(spec.theta0))
        sk = gk.to_sklearn(spec, theta)
        assert np.allclose(sk.theta, theta) and np.allclose(sk.bounds, spec.log_bounds)
        gp = GaussianProcessRegressor(sk, optimizer=None, alpha=0.0).fit(x[:, None], y)
        value, grad = gi.lml(spec, theta, [(gk.Pairs(x), y)])
        ref_value, ref_grad = gp.log_marginal_likelihood(theta, eval_gradient=True)
        assert value == pytest.approx(ref_value, rel=1e-8)
        assert np.allclose(grad, ref_grad, rtol=1e-6, atol=1e-8)
        mean, var = gi.posterior(spec, theta, x, y, xs)
        ref_mean, ref_std = gp.predict(xs[:, None], return_std=True)
        assert np.allclose(mean, ref_mean, atol=1e-8)
        assert np.allclose(np.sqrt(var + gk.noise_level(spec, theta)), ref_std, atol=1e-6)


def test_local_prediction_stays_inside_the_band_of_the_exact_one() -> None:
    rng = np.random.default_rng(9)
    x = np.linspace(-0.5, 0.5, 1500)
    y = np.sin(2 * np.pi * x * 60) + 0.3 * rng.normal(size=1500)
    spec = gk.make_spec("rbf+periodic", {"dt": 1 / 1500, "period": 1 / 60, "period_max": 0.5})
    with threadpool_limits(limits=1, user_api="blas"):  # as the tool runs (see _gp_fit.fit)
        theta, _, _ = gi.optimise(spec, [(gk.Pairs(x[:300]), y[:300])], [spec.theta0])
        m1, v1 = gi.posterior(spec, theta, x, y, x)
        m2, v2 = gi.posterior_local(spec, theta, x, y, x)
    sd1 = np.sqrt(v1 + gk.noise_level(spec, theta))
    sd2 = np.sqrt(v2 + gk.noise_level(spec, theta))
    # the approximation moves the mean by less than half a predictive sd, the sd by < 5%
    assert np.max(np.abs(m1 - m2) / sd1) < 0.5
    assert np.max(np.abs(sd2 / sd1 - 1)) < 0.05


def test_long_series_states_its_approximation() -> None:
    rng = np.random.default_rng(10)
    t = np.arange(2500)
    r = run(Series(np.sin(2 * np.pi * t / 12) + 0.3 * rng.normal(size=2500)), horizon=12)
    d = r.diagnostics["channels"]["y"]
    assert d["prediction"].startswith("local") and d["n_likelihood_points"] <= gf.HYPER_N
    assert sum("O(n^3)" in n or "local approximation" in n for n in r.notes) == 2
    assert abs(r.channels[0].period - 12) < 0.25


def test_deterministic_and_json_round_trip() -> None:
    rng = np.random.default_rng(12)
    s = Series(np.cos(np.arange(90) / 5.0) + 0.2 * rng.normal(size=90))
    a, b = run(s, horizon=4), run(s, horizon=4)
    assert a.model_dump_json() == b.model_dump_json()
    assert GPRResult.model_validate_json(a.model_dump_json()) == a


def test_errors() -> None:
    with pytest.raises(SeriesError, match="at least"):
        run(Series(np.arange(4.0)))
    with pytest.raises(SeriesError, match="constant"):
        run(Series(np.full(50, 3.0)))
    with pytest.raises(ArgsError, match="kernel"):
        TOOL.parse_args(kernel="spline")
    with pytest.raises(ArgsError):
        TOOL.parse_args(level=1.2)


def test_prompt_cues_fill_arguments() -> None:
    from chronoken.agent.args import fill_rules

    got = fill_rules(TOOL, "Fit a GP with an RBF kernel and forecast 24 steps, 90% band").args
    assert got.kernel == "rbf" and got.horizon == 24 and got.level == pytest.approx(0.9)
    assert fill_rules(TOOL, "use a linear + periodic kernel").args.kernel == "linear+periodic"
    assert fill_rules(TOOL, "gaussian process with a periodic kernel").args.kernel == "periodic"
    assert fill_rules(TOOL, "seasonal GP, period 12, marginal likelihood").args.period == 12


def test_plot_and_report_use_the_result(held_out) -> None:
    from matplotlib.figure import Figure

    r, _, _, seen = held_out
    s = Series(seen)
    assert isinstance(TOOL.plot(s, r), Figure)
    text = TOOL.report(s, r)
    assert f"{r.channels[0].period:.4g}" in text and f"{r.forecast[0].mean[0]:.4g}" in text
    for fam, d in r.diagnostics["channels"]["y"]["candidates"].items():
        assert f"| {fam} | {d['lml']:.2f} |" in text
