"""Singular spectrum analysis: split a series into trend, oscillations and noise; R-forecast.

Window L, eigentriples of the trajectory (Hankel) matrix, automatic grouping into a slow trend,
sine-cosine pairs (each with its period) and noise tested against red noise, diagonal averaging
back to series, and the recurrent forecast of the signal subspace. Two or more channels give
multichannel SSA (stacked trajectory matrices, common eigenvectors). Numerics: ``_ssa_core``;
orchestration: ``_ssa_fit``; plot and report: ``_ssa_report``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from chronoken.tools.base import Forecast, Tool, ToolArgs, ToolResult, arg, words

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from chronoken.series import Series

_N = r"(\d+)"
_UNITS = r"(?:steps?|points?|samples?|periods?|observations?|days?|weeks?|months?|years?|quarters?|hours?|minutes?)"


class SSAArgs(ToolArgs):
    """Arguments of the ssa tool."""

    window: int | None = arg(
        None,
        "Window length L (embedding dimension) in observations. None: about half the series, "
        "at most 500 (up to 1000 for long periods), rounded down to a multiple of the detected "
        "period.",
        cues=[
            rf"window(?:\s+(?:length|size|width))?\s*(?:of|=|:|is)?\s*{_N}",
            rf"{_N}[\s-]*(?:point|step|sample|observation|lag)s?\s+window",
            rf"embedding\s+(?:dimension|window|length)\s*(?:of|=|:)?\s*{_N}",
            rf"\bl\s*=\s*{_N}",
        ],
        ge=2,
    )
    horizon: int = arg(
        0,
        "Steps to forecast past the last observation by the recurrent (R-) forecast of the "
        "signal; 0 for no forecast.",
        cues=[
            rf"{_N}\s*(?:more\s+)?{_UNITS}\s*(?:ahead|forward|into the future|out)",
            rf"(?:forecast|predict|extrapolate|project|continue)\w*\s+(?:the\s+)?(?:next\s+)?{_N}\b",
            rf"next\s+{_N}\s+{_UNITS}",
            rf"horizon\s*(?:of|=|:)?\s*{_N}",
        ],
        ge=0,
        le=100_000,
    )
    rank: int | None = arg(
        None,
        "Number of leading eigentriples kept as signal. None: every eigentriple that stands "
        "out from red (AR(1)) noise is kept.",
        cues=[
            rf"rank\s*(?:of|=|:|r\s*=)?\s*{_N}",
            rf"(?:first|leading|top|keep(?:ing)?|use)\s+{_N}\s+(?:eigen[\w-]*|components?|singular\s+values?|modes?)",
            rf"{_N}\s+(?:eigen-?triples|eigen-?vectors|signal\s+components|leading\s+components|modes)",
        ],
        ge=1,
        le=500,
    )
    level: float = arg(
        0.95,
        "Coverage of the forecast interval (from the errors of past recurrent forecasts).",
        cues=[
            r"(\d{2}(?:\.\d+)?)\s*%\s*(?:prediction\s+|confidence\s+|forecast\s+|uncertainty\s+)?(?:intervals?|bands?|bounds?|level|coverage)",
            r"(?:level|coverage)\s*(?:of|=|:)?\s*(0?\.\d+|\d{2}(?:\.\d+)?\s*%?)",
        ],
        ge=0.5,
        le=0.999,
    )
    max_components: int = arg(
        50,
        "How many leading eigentriples are computed and examined for signal.",
        cues=[rf"(?:compute|examine|inspect)\s+{_N}\s+(?:eigen[\w-]*|components?)"],
        ge=2,
        le=500,
    )


class SSAGroup(BaseModel):
    """A group of eigentriples reconstructed together."""

    name: str = Field(description="Label: 'trend', 'period 12', 'other signal' or 'noise'.")
    kind: Literal["trend", "periodic", "other", "noise"] = Field(
        description="trend: slowly varying; periodic: an oscillation (sine-cosine pair); other: "
        "signal neither slow nor a clean oscillation; noise: the remaining eigentriples."
    )
    indices: list[int] = Field(description="Eigentriple indices (0 = largest singular value).")
    share: float = Field(
        description="Share of the (centred) series' energy, sum of eigenvalues / total."
    )
    period: float | None = Field(None, description="Period in observations (periodic groups).")
    w_correlation: float | None = Field(
        None, description="w-correlation of the pair's two reconstructed components."
    )
    significance: float | None = Field(
        None, description="Mean eigenvalue over the eigenvalue expected from red noise."
    )


class SSAChannel(BaseModel):
    """Reconstructed components of one channel; trend + periodic + other + residual == data."""

    channel: str = Field(description="Channel name.")
    mean: float = Field(
        description="Channel mean, removed before the decomposition and put back in the trend."
    )
    trend: list[float] = Field(
        description="Trend (mean + slow eigentriples), one value per observation."
    )
    periodic: dict[str, list[float]] = Field(
        default_factory=dict, description="Each periodic group's reconstruction, by group name."
    )
    other: list[float] | None = Field(
        None, description="Reconstruction of 'other' signal eigentriples."
    )
    residual: list[float] = Field(
        description="Data (gaps filled) minus the signal: the noise part."
    )


class SSAResult(ToolResult):
    """What the ssa tool returns."""

    window: int = Field(description="Window length L.")
    rank: int = Field(
        description="Number of eigentriples in the signal (trend + periodic + other)."
    )
    multichannel: bool = Field(
        description="True when several channels were decomposed together (MSSA)."
    )
    singular_values: list[float] = Field(
        description="Leading singular values (of the scaled, centred data)."
    )
    shares: list[float] = Field(description="Each eigentriple's share of the total energy.")
    w_correlation: list[list[float]] = Field(
        description="w-correlation matrix of the leading (at most 20) elementary components."
    )
    groups: list[SSAGroup] = Field(description="Groups: trend, periodic pairs, other, noise.")
    components: list[SSAChannel] = Field(description="Reconstructed components per channel.")
    forecast: list[Forecast] = Field(
        default_factory=list, description="R-forecast of each channel."
    )


class SSA(Tool):
    """Singular spectrum analysis tool."""

    name = "ssa"
    summary = (
        "Decompose a series with singular spectrum analysis into trend, periodic components "
        "(with their periods) and noise, and forecast the signal by recurrent SSA."
    )
    doc = words(
        """
        Singular spectrum analysis (SSA), a model-free decomposition: the series is embedded in
        a trajectory (Hankel) matrix of lagged windows, its singular value decomposition gives
        eigentriples, and these are grouped into a slowly varying trend, oscillations that come
        as sine-cosine pairs (each with its period, e.g. a 12-month season or an 11-year cycle)
        and noise, judged against red noise as in Monte Carlo SSA. Use it to extract a smooth
        trend, find hidden cycles or periodicities without assuming a model, separate signal
        from noise, smooth or denoise a series, fill gaps, or decompose several related
        channels together (multichannel SSA, MSSA). It can forecast the signal part with the
        recurrent SSA forecast and an empirical interval. Returns the window, singular values
        and contributions, the w-correlation matrix, the groups with their share of variance
        and period, the reconstructed trend, periodic components and residual as series, and
        the forecast. Not for change points, probabilistic forecasting with calibrated
        uncertainty, or irregular time stamps (it assumes equal spacing).
        """
    )
    Args = SSAArgs
    Result = SSAResult
    min_samples = 12

    def run(self, series: Series, args: ToolArgs | dict[str, Any] | None = None) -> SSAResult:
        """Choose the window, decompose, group, reconstruct and (horizon > 0) forecast."""
        args = self.parse_args(args)
        series.require(self.name, self.min_samples, allow_constant=False)
        from chronoken.tools._ssa_fit import fit

        return SSAResult(tool=self.name, **fit(series, args))

    def plot(self, series: Series, result: ToolResult) -> Figure:
        """Data with signal, trend and forecast; periodic components; eigenvalue shares."""
        from chronoken.tools._ssa_report import plot

        return plot(series, result)

    def report(self, series: Series, result: ToolResult) -> str:
        """Markdown: window, groups with shares and periods, fit, forecast and notes."""
        from chronoken.tools._ssa_report import report

        return report(series, result)
