"""Neural ODE: learn the continuous-time dynamics dx/dt = f(x) of a series and extrapolate them.

A small MLP vector field on the standardised state, integrated by torchdiffeq (RK4 or dopri5),
trained on short random sub-trajectories with a growing window, optionally pulled towards a
physics prior (linear or damped oscillator). torch loads inside run() only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from chronoken.tools.base import Forecast, Tool, ToolArgs, ToolResult, arg, words

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from chronoken.series import Series

_N = r"(\d+)"
_F = r"(\d*\.?\d+(?:e-?\d+)?)"


class NeuralODEArgs(ToolArgs):
    """Arguments of the neural_ode tool."""

    horizon: int = arg(
        20,
        "Steps to forecast past the last observation by integrating the learned dynamics.",
        cues=[
            rf"{_N}\s*(?:more\s+)?(?:steps?|points?|samples?|periods?|observations?|days?|weeks?|months?|years?|hours?|minutes?|seconds?)\s*(?:ahead|forward|into the future|out)",
            rf"(?:forecast|predict|extrapolate|project|simulate|integrate)\w*\s+(?:the\s+)?(?:next\s+)?{_N}\b",
            rf"next\s+{_N}\s+(?:steps?|points?|samples?|periods?|observations?|days?|weeks?|months?|years?|hours?)",
            rf"horizon\s*(?:of|=|:)?\s*{_N}",
        ],
        ge=0,
        le=10_000,
    )
    prior: Literal["auto", "none", "linear", "damped_oscillator"] = arg(
        "auto",
        "Physics prior: the vector field becomes prior + MLP and the MLP part is penalised. "
        "'none' (MLP only), 'linear' (dx/dt = A x + b, A learned), 'damped_oscillator' (2-D "
        "state [x, v]: dx/dt = v, dv/dt = -omega^2 (x - x_eq) - 2 zeta omega v, omega, zeta "
        "and x_eq learned), 'auto' (try the MLP alone, with the linear prior and, for a 2-D "
        "state, with the damped-oscillator prior; keep the best on the validation tail).",
        synonyms={
            "damped_oscillator": [
                r"damped[\s_-]*(?:harmonic\s+)?oscillat",
                r"oscillator\s+prior",
                r"spring",
                r"pendulum",
                r"harmonic\s+oscillat",
                r"mass[\s-]+spring",
            ],
            "linear": [r"linear\s+(?:prior|dynamics|system|ode)", r"dx/dt\s*=\s*a\s*x"],
            "none": [
                r"no\s+(?:physics\s+)?prior",
                r"without\s+(?:a\s+|any\s+)?(?:physics\s+)?prior",
                r"pure(?:ly)?\s+(?:data[\s-]driven|neural)",
                r"black[\s-]box",
            ],
        },
    )
    prior_weight: float = arg(
        0.1,
        "Weight lambda of the physics residual mean ||f(x) - f_prior(x)||^2 over the trajectory "
        "states in the loss (physics weight); with a prior, a candidate without it is also tried.",
        cues=[
            rf"(?:physics|prior|regulari[sz]ation)\s*(?:loss\s+)?(?:weight|strength|lambda)\s*(?:of|=|:)?\s*{_F}",
            rf"lambda\s*(?:=|:|of)?\s*{_F}",
            rf"{_F}\s+(?:physics|prior)\s+weight",
        ],
        ge=0.0,
        le=1000.0,
    )
    hidden: int = arg(
        32,
        "Hidden units per layer of the MLP vector field.",
        cues=[
            rf"hidden\s*(?:units|size|width|layer size)?\s*(?:of|=|:)?\s*{_N}",
            rf"{_N}\s*hidden",
            rf"width\s*(?:of|=|:)?\s*{_N}",
            rf"{_N}\s*(?:units|neurons)",
        ],
        ge=4,
        le=256,
    )
    layers: int = arg(
        2,
        "Hidden layers of the MLP vector field.",
        cues=[
            rf"{_N}\s*(?:hidden\s+)?layers",
            rf"layers\s*(?:=|:)?\s*{_N}",
            rf"depth\s*(?:=|:|of)?\s*{_N}",
        ],
        ge=1,
        le=4,
    )
    activation: Literal["tanh", "softplus"] = arg(
        "tanh",
        "Activation of the hidden layers.",
        synonyms={"tanh": [r"\btanh\b"], "softplus": [r"softplus", r"smooth\s+relu"]},
    )
    epochs: int = arg(
        300,
        "Maximum training epochs; each epoch is one Adam step on a batch of 64 random "
        "sub-trajectories. Training stops earlier when the validation error stops improving.",
        cues=[
            rf"{_N}\s*(?:epochs?|iterations?|iters|training steps|optimi[sz]ation steps)",
            rf"(?:epochs?|iterations?)\s*(?:=|:|of)?\s*{_N}",
        ],
        ge=20,
        le=20_000,
    )
    window: int = arg(
        20,
        "Longest training sub-trajectory, in integration steps; windows grow from 3 to this.",
        cues=[
            rf"window\s*(?:of|=|:|length)?\s*{_N}",
            rf"{_N}[\s-]*(?:step|point)s?\s+(?:windows?|sub-?trajector|segments?|shooting)",
        ],
        ge=3,
        le=200,
    )
    learning_rate: float = arg(
        0.01,
        "Adam learning rate (decays linearly to a tenth over the epochs).",
        cues=[rf"(?:learning[\s-]*rate|\blr)\s*(?:of|=|:)?\s*{_F}"],
        gt=0.0,
        le=1.0,
    )
    solver: Literal["rk4", "dopri5"] = arg(
        "rk4",
        "ODE solver: fixed-step Runge-Kutta 4 (fast) or adaptive Dormand-Prince 5(4).",
        synonyms={
            "rk4": [r"\brk4\b", r"runge[\s-]*kutta(?:\s*4)?", r"fixed[\s-]*step"],
            "dopri5": [r"dopri", r"dormand", r"adaptive\s+(?:step|solver)", r"\brk45\b"],
        },
    )
    embedding: Literal["auto", "none", "derivative"] = arg(
        "auto",
        "State built from the channels: 'derivative' appends each channel's smoothed time "
        "derivative (phase space [x, dx/dt]); 'none' uses the channels as they are; 'auto' "
        "embeds a single channel and leaves several channels as they are.",
        synonyms={
            "derivative": [
                r"derivative\s+embedding",
                r"delay\s+embedding",
                r"phase[\s-]*space\s+embedding",
                r"embed",
            ],
            "none": [r"no\s+embedding", r"without\s+embedding", r"raw\s+state"],
        },
    )
    validation_fraction: float = arg(
        0.2,
        "Fraction of the series at the end held out to select the model and stop training.",
        cues=[
            rf"validation\s*(?:fraction|split|tail|set)?\s*(?:of|=|:)?\s*{_F}",
            rf"hold\s*(?:ing)?\s*out\s*(?:the\s+last\s+)?{_F}\s*(?:%|percent)",
        ],
        ge=0.05,
        le=0.5,
    )
    ensemble: int = arg(
        3,
        "Models refitted with different random initialisations; the forecast is their mean and "
        "their range is reported as a spread.",
        cues=[rf"ensemble\s*(?:of|=|:|size)?\s*{_N}", rf"{_N}\s*(?:ensemble\s+)?members"],
        ge=1,
        le=10,
    )
    seed: int = arg(0, "Random seed.", cues=[rf"seed\s*(?:=|:|of)?\s*{_N}"], ge=0)

    @field_validator("prior", "embedding", mode="before")
    @classmethod
    def _null_is_none(cls, value: Any) -> Any:
        # JSON null (and the rule filler's reading of a "none" synonym) means the 'none' choice
        return "none" if value is None else value


class NeuralODEResult(ToolResult):
    """What the neural_ode tool returns."""

    state: list[str] = Field(description="Names of the state components, in order.")
    forecasts: list[Forecast] = Field(
        default_factory=list, description="Forecast of each observed channel."
    )
    trajectory: list[list[float]] = Field(
        description="Fitted trajectory of shape (n_points, n_channels): the learned ODE "
        "integrated from the first observed state over the whole series (ensemble mean)."
    )
    trajectory_t: list[float] = Field(
        description="Time of each trajectory row (series.t_numeric() units)."
    )


class NeuralODE(Tool):
    """Neural ordinary differential equation tool."""

    name = "neural_ode"
    summary = (
        "Learn continuous-time dynamics dx/dt = f(x) of one or more channels with a neural ODE "
        "(optionally physics-informed) and extrapolate the trajectory."
    )
    doc = words(
        """
        Models a series as a continuous-time dynamical system: the state x (the channels,
        standardised, or for a single channel the phase space [x, dx/dt]) evolves by an
        autonomous differential equation dx/dt = f(x) whose vector field f is a small neural
        network, integrated with an ODE solver (Runge-Kutta 4 or adaptive dopri5). Training
        matches short integrated sub-trajectories to the data (multiple shooting). A
        physics-informed prior can be added: f = f_prior + network, with the physics residual
        ||f - f_prior||^2 penalised, where f_prior is a linear system or a damped harmonic
        oscillator (mass-spring, pendulum) whose natural frequency omega and damping ratio zeta
        are learned and reported. Use it for latent or physical dynamics, oscillators, coupled
        or mechanical systems, trajectories in phase space, or to fit a differential equation
        to data and simulate it forward. Returns the fitted trajectory, forecasts from
        integrating the learned ODE past the end (with an ensemble spread), train and
        validation errors, the learned prior parameters and the candidates compared. Not for
        seasonal business series, change points or calibrated prediction intervals.
        """
    )
    Args = NeuralODEArgs
    Result = NeuralODEResult
    min_samples = 20

    def run(self, series: Series, args: ToolArgs | dict[str, Any] | None = None) -> NeuralODEResult:
        """Select a prior on the validation tail, refit an ensemble, forecast ``horizon`` steps."""
        args = self.parse_args(args)
        series.require(self.name, self.min_samples, allow_constant=False)
        from chronoken.tools import _ode_fit

        out = _ode_fit.fit(series, args)
        return NeuralODEResult(
            tool=self.name,
            model=out["model"],
            params=out["params"],
            fit=out["fit"],
            diagnostics=out["diagnostics"],
            selection=out["selection"],
            notes=out["notes"],
            state=out["diagnostics"]["state"],
            forecasts=[Forecast(**f) for f in out["forecasts"]],
            trajectory=out["trajectory"],
            trajectory_t=out["trajectory_t"],
        )

    def plot(self, series: Series, result: ToolResult) -> Figure:
        """Data, fitted trajectory and forecast per channel; a phase portrait for two channels."""
        from chronoken.tools._ode_report import plot

        return plot(series, result)

    def report(self, series: Series, result: ToolResult) -> str:
        """Markdown: model, learned parameters, fit, selection, forecasts and notes."""
        from chronoken.tools._ode_report import report

        return report(series, result)
