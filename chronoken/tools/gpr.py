"""Gaussian-process regression: a smooth fit with uncertainty and forecasts, kernel selected.

Candidate kernels (RBF, Matern, rational quadratic, periodic ExpSineSquared, linear DotProduct
and the sums linear + periodic, RBF + periodic), each with a WhiteKernel noise term, fitted by
marginal likelihood and compared by BIC. Kernels and selection: ``_gp_kernels``, ``_gp_fit``;
plot and report: ``_gp_report``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from chronoken.tools.base import Forecast, Tool, ToolArgs, ToolResult, arg, words

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from chronoken.series import Series

_N = r"(\d+)"
_F = r"(\d*\.?\d+)"
_UNITS = r"(?:steps?|points?|samples?|periods?|observations?|days?|weeks?|months?|years?|quarters?|hours?|minutes?)"

Kernel = Literal[
    "auto",
    "rbf",
    "matern",
    "rational_quadratic",
    "periodic",
    "linear",
    "linear+periodic",
    "rbf+periodic",
]


class GPRArgs(ToolArgs):
    """Arguments of the gpr tool."""

    kernel: Kernel = arg(
        "auto",
        "Covariance kernel: 'auto' fits every candidate and keeps the best by the criterion; or "
        "one of rbf (squared exponential), matern (nu = 1.5), rational_quadratic, periodic "
        "(ExpSineSquared), linear (DotProduct), linear+periodic, rbf+periodic. A WhiteKernel "
        "noise term is always added.",
        synonyms={
            "linear+periodic": [
                r"linear\s*(?:trend\s*)?(?:\+|plus|and|with)\s*(?:a\s+)?(?:periodic|seasonal)",
                r"(?:periodic|seasonal)\s*(?:\+|plus|and|with)\s*(?:a\s+)?linear",
            ],
            "rbf+periodic": [
                r"(?:rbf|squared[\s-]exponential|smooth)\s*(?:\+|plus|and|with)\s*(?:a\s+)?periodic",
                r"periodic\s*(?:\+|plus|and|with)\s*(?:an?\s+)?rbf",
            ],
            "rbf": [
                r"\brbf\b",
                r"squared[\s-]exponential",
                r"radial[\s-]basis",
                r"gaussian\s+kernel",
                r"\bse\s+kernel",
            ],
            "matern": [r"mat[eé]rn"],
            "rational_quadratic": [r"rational[\s-]quadratic", r"\brq\s+kernel"],
            "periodic": [
                r"periodic\s+kernel",
                r"exp[\s-]?sine[\s-]?squared",
                r"periodic\s+covariance",
            ],
            "linear": [r"linear\s+kernel", r"dot[\s-]?product", r"bayesian\s+linear\s+regression"],
            "auto": [r"(?:best|automatic|auto)\s+kernel", r"select\s+(?:the\s+)?kernel"],
        },
    )
    horizon: int = arg(
        0,
        "Steps to forecast past the last observation (spacing: the median time step); 0 for none.",
        cues=[
            rf"{_N}\s*(?:more\s+)?{_UNITS}\s*(?:ahead|forward|into the future|out)",
            rf"(?:forecast|predict|extrapolate|project)\w*\s+(?:the\s+)?(?:next\s+)?{_N}\b",
            rf"next\s+{_N}\s+{_UNITS}",
            rf"horizon\s*(?:of|=|:)?\s*{_N}",
        ],
        ge=0,
        le=10_000,
    )
    level: float = arg(
        0.95,
        "Coverage of the prediction band for new observations, e.g. 0.95.",
        cues=[
            r"(\d{2}(?:\.\d+)?)\s*%\s*(?:prediction\s+|confidence\s+|credible\s+|forecast\s+|uncertainty\s+)?(?:intervals?|bands?|bounds?|level|coverage)",
            r"(?:level|coverage)\s*(?:of|=|:)?\s*(0?\.\d+|\d{2}(?:\.\d+)?\s*%?)",
        ],
        ge=0.5,
        le=0.999,
    )
    period: float | None = arg(
        None,
        "Starting value of the periodic kernel's period in the series' time units "
        "(observations for a plain index, days for dates); still optimised. None: from the "
        "periodogram.",
        cues=[
            r"(?:period(?:icity)?|cycle\s+length|season(?:al)?\s+length)\s*(?:of|=|:|is|around|about|near)?"
            r"\s*(?:~\s*)?(\d{1,3}(?:\.\d+)?)\b(?!\s*(?:-|to)\s*\d)",
            r"(\d{1,3}(?:\.\d+)?)[\s-]*(?:step|day|week|month|observation|sample|hour)s?\s+(?:period|cycle|seasonality)",
        ],
        gt=0,
    )
    criterion: Literal["bic", "lml"] = arg(
        "bic",
        "How candidates are compared: 'bic' (-2 LML + k ln n, penalises hyperparameters) or "
        "'lml' (log marginal likelihood alone).",
        synonyms={
            "lml": [r"(?:log\s+)?marginal\s+likelihood", r"\blml\b", r"evidence"],
            "bic": [r"\bbic\b", r"bayesian\s+information"],
        },
    )
    restarts: int = arg(
        1,
        "Seeded random restarts of the optimizer per candidate, on top of the data-derived starts.",
        cues=[rf"{_N}\s+(?:optimi[sz]er\s+)?restarts?", rf"restarts?\s*(?:=|:|of)?\s*{_N}"],
        ge=0,
        le=10,
    )


class GPChannel(BaseModel):
    """The fitted GP of one channel, with in-sample predictions."""

    channel: str = Field(description="Channel name.")
    family: str = Field(
        description="Selected kernel family, e.g. 'rbf+periodic' ('constant': no GP)."
    )
    kernel: str = Field(
        description="Selected kernel with lengths in time units and amplitudes in y units."
    )
    sklearn_kernel: str = Field(
        description="The same kernel as scikit-learn prints it, on normalised time "
        "(t - t_mid) / span and standardised y."
    )
    period: float | None = Field(
        None, description="Fitted period in time units (periodic kernels)."
    )
    hyperparameters: dict[str, float] = Field(description="Fitted hyperparameters in data units.")
    noise_std: float = Field(description="Standard deviation of the fitted white noise (y units).")
    mean: list[float] = Field(description="Predictive mean at every observation time.")
    lower: list[float] = Field(description="Lower band at every observation time.")
    upper: list[float] = Field(description="Upper band at every observation time.")
    std: list[float] = Field(description="Predictive standard deviation for a new observation.")


class GPRResult(ToolResult):
    """What the gpr tool returns."""

    level: float = Field(description="Coverage of the bands.")
    time_unit: str = Field(description="Unit of lengths and periods: steps, days or time units.")
    channels: list[GPChannel] = Field(description="One fitted GP per channel.")
    forecast: list[Forecast] = Field(default_factory=list, description="Forecast of each channel.")


class GPR(Tool):
    """Gaussian-process regression tool."""

    name = "gpr"
    summary = (
        "Fit a Gaussian process (kernel chosen among RBF, Matern, periodic, linear and sums) for "
        "a smooth curve with uncertainty bands, interpolation and forecasts."
    )
    doc = words(
        """
        Gaussian-process regression (GPR, kriging): a Bayesian nonparametric model of the series
        as a smooth random function of time, defined by a covariance kernel. Candidate kernels:
        squared exponential (RBF), Matern, rational quadratic, periodic (ExpSineSquared, for
        seasonality with a fitted period), linear (DotProduct, a trend) and the sums linear +
        periodic and RBF + periodic, each with a white-noise term; hyperparameters (length
        scales, period, noise level) are fitted by maximum marginal likelihood and the kernel is
        chosen by BIC, or named by the user. Use it for a smooth fit with credible intervals or
        uncertainty bands, to interpolate or fill missing values, for irregularly spaced time
        stamps, for a probabilistic forecast with a prediction interval, or to estimate a period
        and a noise level. Returns the selected kernel and its hyperparameters, each candidate's
        log marginal likelihood and BIC, the predictive mean and band at every time, and the
        forecast. Exact GPs cost O(n^3): long series (more than 300 points) fit hyperparameters
        on three blocks and, above 2,000 points, predict with local windows of 400 points.
        Several channels: one GP each. Not for change points or cycle decomposition.
        """
    )
    Args = GPRArgs
    Result = GPRResult
    min_samples = 8

    def run(self, series: Series, args: ToolArgs | dict[str, Any] | None = None) -> GPRResult:
        """Fit the candidate kernels per channel, keep the best, predict and forecast."""
        args = self.parse_args(args)
        series.require(self.name, self.min_samples, allow_constant=False)
        from chronoken.tools._gp_fit import fit

        return GPRResult(tool=self.name, **fit(series, args))

    def plot(self, series: Series, result: ToolResult) -> Figure:
        """Data, predictive mean and band, forecast; one panel per channel (up to 4)."""
        from chronoken.tools._gp_report import plot

        return plot(series, result)

    def report(self, series: Series, result: ToolResult) -> str:
        """Markdown: kernel, hyperparameters, candidates (LML, BIC), fit, forecast, notes."""
        from chronoken.tools._gp_report import report

        return report(series, result)
