"""Seasonal ARIMA (Box-Jenkins) forecasting with automatic order selection, as auto.arima does.

Period from the time frequency or the data, D by seasonal strength, d by KPSS tests, orders by a
stepwise AICc search over CSS fits, then a maximum-likelihood fit with statsmodels' SARIMAX,
forecasts with prediction intervals and a Ljung-Box check of the residuals; one model per
channel. Selection: ``_arima_select`` and ``_arima_css``; SARIMAX: ``_arima_fit``; one channel
end to end: ``_arima_run``; plot and report: ``_arima_report``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from chronoken.tools.base import Candidate, Forecast, Tool, ToolArgs, ToolResult, arg, words

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from chronoken.series import Series

_N = r"(\d+)"
_UNITS = (
    r"(?:time\s*steps?|steps?|points?|values?|periods?|observations?|days?|weeks?|months?|"
    r"years?|quarters?|hours?|minutes?)"
)
_TRIPLE = r"\d+\s*,\s*\d+\s*,\s*\d+"
_UNIT_WORD = r"(step|minute|hour|day|week|month|quarter|year)"
_UNIT_NAMES = ("step", "minute", "hour", "day", "week", "month", "quarter", "year")


def _ints(value: Any) -> Any:
    """'(1,1,1)', '0,1,1,12', '(0,1,1)[12]' or a list -> list of ints (other values unchanged)."""
    if isinstance(value, str):
        return [int(x) for x in re.findall(r"\d+", value)]
    if isinstance(value, tuple):
        return list(value)
    return value


class ArimaArgs(ToolArgs):
    """Arguments of the arima tool."""

    horizon: int | None = arg(
        None,
        "Steps to forecast past the last observation. None: two seasonal cycles (at most 200 "
        "steps), or 10 steps for a non-seasonal series.",
        cues=[
            rf"{_N}\s*(?:more\s+)?{_UNITS}\s*(?:ahead|forward|into the future|out)",
            rf"(?:forecast|predict|extrapolate|project)\w*\s+(?:for\s+)?(?:the\s+)?(?:next\s+|coming\s+)?{_N}\s*{_UNITS}",
            rf"next\s+{_N}\s+{_UNITS}",
            rf"horizon\s*(?:of|=|:)?\s*{_N}",
            rf"\bh\s*=\s*{_N}",
        ],
        ge=1,
        le=10_000,
    )
    horizon_unit: (
        Literal["step", "minute", "hour", "day", "week", "month", "quarter", "year"] | None
    ) = arg(
        None,
        "Unit of `horizon` when the request states it in calendar time ('the next 2 years'): "
        "converted to steps with the series' time frequency (2 years of monthly data = 24 "
        "steps). None or 'step': horizon counts observations.",
        cues=[
            rf"\d+\s*(?:more\s+)?{_UNIT_WORD}s?\s*(?:ahead|forward|into the future|out)",
            rf"(?:forecast|predict|extrapolate|project)\w*\s+(?:for\s+)?(?:the\s+)?(?:next\s+|coming\s+)?\d+\s*{_UNIT_WORD}s?\b",
            rf"next\s+\d+\s+{_UNIT_WORD}s?\b",
        ],
    )
    level: float = arg(
        0.95,
        "Coverage of the prediction interval, e.g. 0.95 or 0.8 (a percentage from 50 to 99.9 is "
        "read as a fraction: 95 -> 0.95).",
        cues=[
            r"(\d{2}(?:\.\d+)?)\s*%\s*(?:prediction\s+|confidence\s+|forecast\s+|uncertainty\s+)?(?:intervals?|bands?|bounds?|level|coverage|ci\b|pi\b)",
            r"(?:level|coverage)\s*(?:of|=|:)?\s*(0?\.\d+|\d{2}(?:\.\d+)?\s*%?)",
        ],
        gt=0.0,
        lt=1.0,
    )
    seasonal_period: int | None = arg(
        None,
        "Seasonal period s in observations (12 for monthly data with a yearly cycle, 7 for daily "
        "data with a weekly one). None: from the time frequency or detected in the data; 1: no "
        "seasonality.",
        cues=[
            r"(?:seasonal\s+)?period(?:icity)?\s*(?:=|:|is)?\s*(\d{1,3})\b",
            r"seasonal\s+period\s+of\s+(\d{1,3})\b",
            rf"seasonality\s*(?:of|=|:|is)?\s*{_N}",
            rf"season(?:al)?\s+(?:length|lag|cycle)\s*(?:of|=|:|is)?\s*{_N}",
            rf"{_N}[\s-]*(?:step|day|month|hour|observation|point|sample|quarter|week)s?\s+(?:seasonality|season|cycle|period)",
            rf"\)\s*\[\s*{_N}\s*\]",
            rf"\bs\s*=\s*{_N}",
        ],
        ge=1,
        le=400,
    )
    seasonal: bool = arg(
        True,
        "Whether seasonal terms may be used; False fits a non-seasonal ARIMA.",
        synonyms={
            "false": [
                r"non[\s-]?seasonal",
                r"\bno\s+season",
                r"without\s+(?:any\s+)?season",
                r"ignore\s+(?:the\s+)?season",
            ],
            "true": [r"\bsarima\b"],
        },
    )
    order: list[int] | None = arg(
        None,
        "Fixed non-seasonal order [p, d, q] (e.g. ARIMA(1,1,1)); None: selected automatically.",
        cues=[
            rf"arima\s*\(\s*({_TRIPLE})\s*\)",
            rf"(?<!seasonal )order\s*(?:=|of|:)?\s*\(?\s*({_TRIPLE})",
        ],
    )
    seasonal_order: list[int] | None = arg(
        None,
        "Fixed seasonal order [P, D, Q] or [P, D, Q, s] (e.g. (0,1,1)[12]); None: selected "
        "automatically.",
        cues=[
            rf"arima\s*\(\s*{_TRIPLE}\s*\)\s*(\(\s*{_TRIPLE}(?:\s*,\s*\d+)?\s*\)(?:\s*\[\s*\d+\s*\]|\s*_?\d+)?)",
            rf"seasonal\s+order\s*(?:=|of|:)?\s*(\(?\s*{_TRIPLE}(?:\s*,\s*\d+)?)",
        ],
    )
    max_p: int = arg(
        5,
        "Largest AR order p searched.",
        cues=[
            r"max(?:imum)?[\s_]*p\s*(?:=|of|:|is)?\s*(\d+)",
            r"(?:at most|up to)\s+(\d+)\s+(?:ar|autoregressive)\s+(?:terms|lags|coefficients)",
        ],
        ge=0,
        le=10,
    )
    max_q: int = arg(
        5,
        "Largest MA order q searched.",
        cues=[
            r"max(?:imum)?[\s_]*q\s*(?:=|of|:|is)?\s*(\d+)",
            r"(?:at most|up to)\s+(\d+)\s+(?:ma|moving[\s-]average)\s+(?:terms|lags|coefficients)",
        ],
        ge=0,
        le=10,
    )
    max_seasonal_p: int = arg(
        2,
        "Largest seasonal AR order P searched.",
        cues=[r"max(?:imum)?[\s_]*seasonal[\s_]*(?:p|ar)\s*(?:=|of|:|is)?\s*(\d+)"],
        ge=0,
        le=2,
    )
    max_seasonal_q: int = arg(
        2,
        "Largest seasonal MA order Q searched.",
        cues=[r"max(?:imum)?[\s_]*seasonal[\s_]*(?:q|ma)\s*(?:=|of|:|is)?\s*(\d+)"],
        ge=0,
        le=2,
    )
    criterion: Literal["aicc", "aic", "bic"] = arg(
        "aicc",
        "Information criterion that ranks the candidate orders.",
        synonyms={
            "aicc": [r"\baicc\b", r"corrected\s+(?:aic|akaike)"],
            "aic": [r"\baic\b", r"\bakaike\b(?!.*correct)"],
            "bic": [r"\bbic\b", r"schwarz", r"bayesian information"],
        },
    )
    max_models: int = arg(
        94,
        "Most candidate models fitted by the stepwise search (auto.arima's nmodels).",
        cues=[r"(?:at most|up to|max(?:imum)?)\s+(\d+)\s+(?:models|fits|candidates)"],
        ge=1,
        le=500,
    )

    @field_validator("level", mode="before")
    @classmethod
    def _percent(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = v.strip().rstrip("%").strip()
            try:
                v = float(v)
            except ValueError:
                return v
        if isinstance(v, (int, float)) and 50 <= v < 100:  # a percentage such as 95
            return v / 100.0
        return v

    @field_validator("horizon_unit", mode="before")
    @classmethod
    def _singular(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = v.strip().lower()
            v = {"steps": "step", "observations": "step", "periods": "step"}.get(v, v)
            return v[:-1] if v.endswith("s") and v[:-1] in _UNIT_NAMES else v
        return v

    @field_validator("order", "seasonal_order", mode="before")
    @classmethod
    def _parse_orders(cls, v: Any) -> Any:
        return _ints(v)

    @field_validator("order")
    @classmethod
    def _check_order(cls, v: list[int] | None) -> list[int] | None:
        if v is None:
            return v
        if len(v) != 3 or min(v) < 0 or v[0] > 10 or v[1] > 2 or v[2] > 10:
            raise ValueError(
                "order must be three integers [p, d, q] with p, q in 0..10 and d in 0..2"
            )
        return v

    @field_validator("seasonal_order")
    @classmethod
    def _check_seasonal(cls, v: list[int] | None) -> list[int] | None:
        if v is None:
            return v
        if len(v) not in (3, 4) or min(v) < 0 or v[0] > 2 or v[1] > 1 or v[2] > 2:
            raise ValueError(
                "seasonal_order must be [P, D, Q] or [P, D, Q, s] with P, Q in 0..2 and D in 0..1"
            )
        if len(v) == 4 and not 2 <= v[3] <= 400:
            raise ValueError("the period s in seasonal_order must be between 2 and 400")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> ArimaArgs:
        if (
            self.seasonal_order is not None
            and len(self.seasonal_order) == 4
            and self.seasonal_period
            and self.seasonal_period != self.seasonal_order[3]
        ):
            raise ValueError(
                f"seasonal_period={self.seasonal_period} contradicts the period "
                f"{self.seasonal_order[3]} in seasonal_order; give one of them"
            )
        if self.seasonal_order is not None and not self.seasonal:
            raise ValueError("seasonal=False contradicts a seasonal_order; drop one of them")
        return self


class LjungBox(BaseModel):
    """Ljung-Box portmanteau test of the residuals (H0: no autocorrelation)."""

    statistic: float | None = Field(description="Q statistic (None when too few residuals).")
    pvalue: float | None = Field(description="p-value; small values mean autocorrelation is left.")
    lags: int = Field(description="Lags tested: min(2s or 10, n/5), at least model df + 3.")
    df: int | None = Field(description="Degrees of freedom: lags - (p + q + P + Q).")


class ArimaChannel(BaseModel):
    """The model selected and fitted for one channel."""

    channel: str = Field(description="Channel name.")
    model: str = Field(
        description="Selected model in auto.arima notation, e.g. 'ARIMA(0,1,1)(0,1,1)[12]'."
    )
    order: list[int] = Field(description="Non-seasonal order [p, d, q].")
    seasonal_order: list[int] = Field(
        description="Seasonal order [P, D, Q, s] ([0, 0, 0, 0] when none)."
    )
    constant: bool = Field(
        description="Whether a constant (mean, or drift when d + D = 1) is included."
    )
    period: int = Field(description="Seasonal period used (1 = none).")
    period_source: str = Field(description="How the period was chosen.")
    fourier_terms: int = Field(
        0, description="Fourier harmonics K used for a long period (0 = none)."
    )
    fourier_period: float | None = Field(
        None, description="Period of the Fourier terms (fractional for weekly data: 52.18)."
    )
    params: dict[str, float] = Field(description="Coefficients (statsmodels SARIMAX names).")
    sigma2: float = Field(description="Innovation variance.")
    loglik: float | None = Field(description="Log-likelihood over all observations.")
    aicc: float | None = Field(description="AICc of the selected model (exact likelihood).")
    aic: float | None = Field(description="AIC of the selected model.")
    bic: float | None = Field(description="BIC of the selected model.")
    n_obs: int = Field(description="Observed (non-missing) values.")
    n_missing: int = Field(description="Missing values (handled by the Kalman filter).")
    estimation_window: int = Field(
        description="Last observations the coefficients were estimated on."
    )
    estimation_method: str = Field(
        description="How the coefficients were estimated: 'innovations_mle' (exact likelihood, "
        "innovations algorithm) or 'statespace' (exact likelihood, Kalman filter, used with "
        "missing values)."
    )
    fit: dict[str, float] = Field(
        description="In-sample one-step errors: rmse, mae, mase, mape (when sensible)."
    )
    ljung_box: LjungBox = Field(description="Residual autocorrelation test.")
    tests: dict[str, Any] = Field(
        description="Differencing tests: KPSS p-values, seasonal strength, d, D."
    )
    converged: bool = Field(description="Whether the likelihood optimiser converged.")
    forecast: Forecast = Field(description="Point forecast and prediction interval.")
    selection: list[Candidate] = Field(
        description="Every candidate tried, with its criterion value."
    )
    notes: list[str] = Field(default_factory=list, description="Caveats for this channel.")


class ArimaResult(ToolResult):
    """Per-channel models plus the common ToolResult fields. params and diagnostics are keyed by
    channel; fit keys are 'channel.metric'; candidate names are prefixed by the channel when
    there are several."""

    channels: list[ArimaChannel] = Field(description="One selected and fitted model per channel.")
    forecasts: list[Forecast] = Field(description="One forecast per channel.")
    level: float = Field(description="Coverage of the prediction intervals.")


class Arima(Tool):
    """Automatic seasonal ARIMA: the default forecaster."""

    name = "arima"
    summary = (
        "Forecast future values with an automatically selected seasonal ARIMA (Box-Jenkins) "
        "model and prediction intervals; the default forecaster."
    )
    doc = words(
        """Seasonal ARIMA (Box-Jenkins) forecasting, the default forecaster: use it to forecast or
        predict future values of a series ("forecast the next 12 months", "predict the next 30
        days with a 95% prediction interval", "what will sales be next quarter") whenever no
        other model is named. The model is autoregressive (AR), integrated (differencing removes
        trend) and moving average (MA), with seasonal AR and MA terms and seasonal differencing
        for a repeating pattern (monthly, quarterly, weekly or daily cycles); long cycles use
        Fourier terms. The orders (p,d,q)(P,D,Q)[s] are selected automatically as auto.arima
        does (KPSS unit-root tests for d, seasonal strength for D, a stepwise search by AICc),
        or fixed when the request names one such as ARIMA(1,1,1). It returns, per channel, the
        selected model and its coefficients, AICc/AIC/BIC, in-sample errors (RMSE, MAE, MASE,
        MAPE), the point forecast with prediction intervals at the requested level, a Ljung-Box
        test of the residuals, and the candidate models it compared. Missing values are handled;
        each channel of a multichannel series gets its own model. Not for finding change points,
        decomposing into trend and oscillations, nonparametric smoothing with uncertainty, or
        continuous-time dynamics."""
    )
    Args = ArimaArgs
    Result = ArimaResult
    min_samples = 12

    def run(self, series: Series, args: ToolArgs) -> ArimaResult:
        from chronoken.tools._arima_run import fit_channel, horizon_steps

        a = self.parse_args(args)
        assert isinstance(a, ArimaArgs)
        series.require(self.name, self.min_samples, allow_constant=True)
        horizon, unit_note = horizon_steps(series, a.horizon, a.horizon_unit)
        channels = [
            fit_channel(series, j, a, self.min_samples, horizon) for j in range(series.n_channels)
        ]
        multi = len(channels) > 1

        def tag(c: ArimaChannel, text: str) -> str:
            return f"{c.channel}: {text}" if multi else text

        return ArimaResult(
            tool=self.name,
            model="; ".join(tag(c, c.model) for c in channels),
            params={c.channel: c.params for c in channels},
            fit={
                f"{c.channel}.{k}": v
                for c in channels
                for k, v in {**c.fit, "aicc": c.aicc, "sigma2": c.sigma2}.items()
                if v is not None
            },
            diagnostics={
                c.channel: {
                    "ljung_box": c.ljung_box.model_dump(),
                    **c.tests,
                    "converged": c.converged,
                }
                for c in channels
            },
            selection=[
                Candidate(**{**s.model_dump(), "name": tag(c, s.name)})
                for c in channels
                for s in c.selection
            ],
            notes=([unit_note] if unit_note else [])
            + [tag(c, n) for c in channels for n in c.notes],
            channels=channels,
            forecasts=[c.forecast for c in channels],
            level=a.level,
        )

    def plot(self, series: Series, result: ToolResult) -> Figure:
        from chronoken.tools._arima_report import plot

        return plot(series, ArimaResult.model_validate(result.model_dump()))

    def report(self, series: Series, result: ToolResult) -> str:
        from chronoken.tools._arima_report import report

        return report(series, ArimaResult.model_validate(result.model_dump()))
