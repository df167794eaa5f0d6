"""Tests of the neural_ode tool.

Extrapolation protocol: a damped oscillator (omega = 1.5 rad per time unit, zeta = 0.05, step
0.1, x(0) = 1, v(0) = 0) is observed for 200 points as two channels, position and velocity, with
Gaussian noise of standard deviation 0.02. The tool is trained on those 200 points and forecasts
50 steps; the forecast is compared to the noise-free continuation (points 200-249). Relative
RMSE = RMSE over the 50 steps / RMS of the true values over the same steps, per channel.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from chronoken.errors import ArgsError, SeriesError
from chronoken.series import Series
from chronoken.tools import get, registry
from chronoken.tools.neural_ode import NeuralODE, NeuralODEResult

OMEGA, ZETA, DT, N_OBS, HORIZON = 1.5, 0.05, 0.1, 200, 50


def oscillator(n: int) -> np.ndarray:
    """Exact solution of x'' + 2 zeta omega x' + omega^2 x = 0, x(0) = 1, x'(0) = 0: (n, 2)."""
    t = np.arange(n) * DT
    wd = OMEGA * np.sqrt(1 - ZETA**2)
    decay = np.exp(-ZETA * OMEGA * t)
    x = decay * (np.cos(wd * t) + ZETA * OMEGA / wd * np.sin(wd * t))
    v = -decay * OMEGA**2 / wd * np.sin(wd * t)
    return np.column_stack([x, v])


@pytest.fixture(scope="module")
def data() -> tuple[Series, np.ndarray]:
    truth = oscillator(N_OBS + HORIZON)
    noisy = truth[:N_OBS] + 0.02 * np.random.default_rng(0).standard_normal((N_OBS, 2))
    series = Series(noisy, time=np.arange(N_OBS) * DT, names=["position", "velocity"])
    return series, truth[N_OBS:]


@pytest.fixture(scope="module")
def tool() -> NeuralODE:
    return NeuralODE()


@pytest.fixture(scope="module")
def default_result(tool, data) -> NeuralODEResult:
    return tool.run(data[0], tool.parse_args(horizon=HORIZON))


@pytest.fixture(scope="module")
def prior_result(tool, data) -> NeuralODEResult:
    return tool.run(data[0], tool.parse_args(horizon=HORIZON, prior="damped_oscillator"))


def relative_rmse(result: NeuralODEResult, truth: np.ndarray) -> np.ndarray:
    forecast = np.column_stack([f.mean for f in result.forecasts])
    return np.sqrt(np.mean((forecast - truth) ** 2, axis=0)) / np.sqrt(np.mean(truth**2, axis=0))


def test_registered_and_torch_free_import():
    assert isinstance(registry()["neural_ode"], NeuralODE)
    code = (
        "import sys, chronoken, chronoken.tools.neural_ode\n"
        "assert 'torch' not in sys.modules and 'torchdiffeq' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_extrapolation_default_args(default_result, data):
    rel = relative_rmse(default_result, data[1])
    assert rel.shape == (2,)
    assert np.all(rel < 0.10), rel


def test_extrapolation_damped_oscillator_prior(prior_result, data):
    rel = relative_rmse(prior_result, data[1])
    assert np.all(rel < 0.10), rel
    assert prior_result.params["prior"] == "damped_oscillator"


def test_prior_parameters_recovered(prior_result):
    assert abs(prior_result.params["omega"] - OMEGA) / OMEGA < 0.20
    assert 0.0 <= prior_result.params["zeta"] < 0.5
    assert prior_result.params["n_weights"] > 0


def test_selection_reports_candidates(default_result, prior_result):
    for result in (default_result, prior_result):
        assert sum(c.selected for c in result.selection) == 1
        assert any("no prior" in c.name for c in result.selection)
        chosen = next(c for c in result.selection if c.selected)
        scored = [c.score for c in result.selection if c.score is not None]
        assert chosen.score == min(scored)
    # auto tries the MLP alone, the linear prior and (2-D state) the damped oscillator
    assert len(default_result.selection) == 3
    assert len(prior_result.selection) == 2


def test_result_contents(default_result, data):
    r = default_result
    assert r.tool == "neural_ode"
    assert r.state == ["position", "velocity"]
    assert [f.channel for f in r.forecasts] == ["position", "velocity"]
    for f in r.forecasts:
        assert len(f.mean) == len(f.steps) == HORIZON
        assert f.lower is not None and f.upper is not None
        assert np.all(np.asarray(f.lower) <= np.asarray(f.mean) + 1e-12)
        assert np.all(np.asarray(f.mean) <= np.asarray(f.upper) + 1e-12)
    assert r.forecasts[0].steps[0] == "20"  # numeric time continues 19.9 -> 20
    traj = np.asarray(r.trajectory)
    assert traj.shape == (N_OBS, 2) and np.isfinite(traj).all()
    assert len(r.trajectory_t) == N_OBS
    for key in (
        "train_rmse",
        "validation_rmse",
        "trajectory_rmse",
        "train_relative_rmse",
        "validation_relative_rmse",
    ):
        assert np.isfinite(r.fit[key]) and r.fit[key] >= 0
    # the fitted trajectory follows the data far better than the data's own spread
    assert r.fit["trajectory_relative_rmse"] < 0.3
    d = r.diagnostics
    assert d["solver"] == "rk4" and d["nfe_training"] > 0
    assert d["nfe_forecast"] == 4 * HORIZON  # fixed-step RK4: four evaluations per step
    assert 0 < d["refit_epochs"] <= d["selection_epochs_run"] <= NeuralODE.Args().epochs


def test_json_round_trip_and_schema(default_result, tool):
    dumped = default_result.model_dump_json()
    again = NeuralODEResult.model_validate_json(dumped)
    assert again == default_result
    spec = tool.spec()
    json.dumps(spec)
    props = spec["args_schema"]["properties"]
    assert set(props["prior"]["enum"]) >= {"none", "linear", "damped_oscillator"}
    assert all(p.get("description") for p in props.values())
    assert "trajectory" in spec["result_schema"]["properties"]


def test_deterministic(tool, data):
    args = tool.parse_args(horizon=10, epochs=40, prior="linear", ensemble=2)
    first = tool.run(data[0], args).model_dump()
    second = tool.run(data[0], args).model_dump()
    assert first == second


def test_missing_values_masked_and_single_channel(tool, data):
    y = data[0].values[:, 0].copy()
    y[[20, 21, 22, 90, 150]] = np.nan
    r = tool.run(Series(y), tool.parse_args(horizon=5, epochs=40, ensemble=1))
    assert r.state == ["y", "dy/dt"]  # single channel: derivative embedding
    assert any("masked" in n for n in r.notes)
    assert np.isfinite(r.forecasts[0].mean).all() and r.forecasts[0].lower is None
    assert np.isfinite(np.asarray(r.trajectory)).all()


@pytest.mark.parametrize(
    "bad",
    [
        {"hidden": 0},
        {"prior": "quadratic"},
        {"solver": "euler"},
        {"epochs": 5},
        {"foo": 1},
        {"validation_fraction": 0.9},
        {"horizon": -1},
    ],
)
def test_bad_args(tool, bad):
    with pytest.raises(ArgsError):
        tool.parse_args(**bad)


def test_damped_prior_needs_two_dimensional_state(tool):
    x = np.random.default_rng(1).standard_normal((60, 3)).cumsum(axis=0)
    with pytest.raises(ArgsError, match="2-D state"):
        tool.run(Series(x), tool.parse_args(prior="damped_oscillator"))


def test_too_short_and_constant(tool):
    with pytest.raises(SeriesError, match="at least"):
        tool.run(Series(np.sin(np.arange(12.0))), tool.parse_args())
    with pytest.raises(SeriesError, match="constant"):
        tool.run(Series(np.full(80, 3.0)), tool.parse_args())


def test_plot_and_report(tool, data, prior_result):
    from matplotlib.figure import Figure

    fig = tool.plot(data[0], prior_result)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3  # two channels and the phase portrait
    text = tool.report(data[0], prior_result)
    assert f"{prior_result.params['omega']:.4g}" in text
    assert f"{prior_result.forecasts[0].mean[0]:.4g}" in text
    assert f"{prior_result.fit['validation_rmse']:.4g}" in text
    for c in prior_result.selection:
        assert c.name in text


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        (
            "fit a neural ODE with a damped oscillator prior and forecast 50 steps",
            {"prior": "damped_oscillator", "horizon": 50},
        ),
        (
            "linear prior, hidden 64, 2000 epochs, physics weight 0.5",
            {"prior": "linear", "hidden": 64, "epochs": 2000, "prior_weight": 0.5},
        ),
        ("use the dopri5 solver", {"solver": "dopri5"}),
        (
            "rk4, 3 layers, learning rate 0.003",
            {"solver": "rk4", "layers": 3, "learning_rate": 0.003},
        ),
        ("pure data-driven, no prior", {"prior": "none"}),
    ],
)
def test_prompt_cues(prompt, expected):
    from chronoken.agent.args import fill_rules

    args = fill_rules(get("neural_ode"), prompt).args
    assert {k: getattr(args, k) for k in expected} == expected
