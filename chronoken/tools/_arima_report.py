"""Plot and markdown report of an arima Result; every number comes from the Result."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from chronoken.tools._arima_css import Spec

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from chronoken.series import Series
    from chronoken.tools.arima import ArimaChannel, ArimaResult

#: Forecast tables list every step up to this horizon, else the first and last few.
FULL_TABLE = 24
TABLE_ENDS = 6
TOP_CANDIDATES = 5
#: The plot shows at most this many observations per forecast step (and at least SHOW_MIN).
SHOW_PER_STEP = 10
SHOW_MIN = 300


def fitted_values(series: Series, ch: ArimaChannel) -> np.ndarray:
    """One-step fitted values of shape (n_samples,) rebuilt from the stored coefficients (one
    Kalman-filter pass; NaN where undefined)."""
    from chronoken.tools._arima_fit import evaluate
    from chronoken.tools._arima_select import fourier

    j = series.names.index(ch.channel)
    y = np.asarray(series.channel(j), dtype=float)
    if ch.sigma2 == 0 or not ch.params or ch.loglik is None:
        return np.full(len(y), float(ch.params.get("intercept", np.nan)))
    P, D, Q, s = ch.seasonal_order
    spec = Spec(*ch.order, P, D, Q, max(s, 1), ch.constant)
    fp = ch.fourier_period or ch.period
    exog = fourier(len(y), fp, ch.fourier_terms) if ch.fourier_terms else None
    fut = fourier(np.arange(len(y), len(y) + 1), fp, ch.fourier_terms) if exog is not None else None
    fit = evaluate(
        y,
        spec,
        exog,
        fut,
        np.array(list(ch.params.values())),
        1,
        ch.forecast.level or 0.95,
        ch.converged,
        "",
        ch.estimation_window,
    )
    return fit.fitted


def _future_x(series: Series, steps: list[str]) -> np.ndarray:
    """x positions of the forecast steps: dates when the labels parse, else continued time."""
    h = len(steps)
    if series.is_datetime:
        try:
            return np.array(steps, dtype="datetime64[ns]")
        except ValueError:
            step = series.time[-1] - series.time[-2]
            return series.time[-1] + step * np.arange(1, h + 1)
    t = series.t_numeric()
    step = t[-1] - t[-2] if len(t) > 1 else 1.0
    return t[-1] + step * np.arange(1, h + 1)


def plot(series: Series, result: ArimaResult) -> Figure:
    """Data, one-step fitted values, forecast and prediction band, one panel per channel."""
    from matplotlib.figure import Figure

    n = len(result.channels)
    fig = Figure(figsize=(10, 3.2 * n), layout="constrained")
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    x = series.time if series.is_datetime else series.t_numeric()
    for ax, ch in zip(axes, result.channels, strict=True):
        j = series.names.index(ch.channel)
        fc = ch.forecast
        fx = _future_x(series, fc.steps)
        # A long history would squash the forecast: show the recent past only.
        shown = slice(-max(SHOW_PER_STEP * len(fc.steps), SHOW_MIN), None)
        ax.plot(x[shown], series.channel(j)[shown], color="0.2", lw=1.0, label="data")
        ax.plot(
            x[shown],
            fitted_values(series, ch)[shown],
            color="tab:blue",
            lw=0.9,
            ls="--",
            alpha=0.8,
            label="fitted (one step ahead)",
        )
        ax.plot(fx, fc.mean, color="tab:red", lw=1.4, label="forecast")
        if fc.lower is not None and fc.upper is not None:
            ax.fill_between(
                fx,
                fc.lower,
                fc.upper,
                color="tab:red",
                alpha=0.2,
                label=f"{100 * (fc.level or result.level):g}% prediction interval",
            )
        n_shown = min(series.n_samples, max(SHOW_PER_STEP * len(fc.steps), SHOW_MIN))
        span = (
            ""
            if n_shown == series.n_samples
            else f" (last {n_shown} of {series.n_samples} observations)"
        )
        ax.set_title(f"{ch.channel}: {ch.model}{span}", fontsize=10)
        ax.legend(loc="upper left", fontsize=8)
    return fig


def _num(v: float | None, digits: int = 4) -> str:
    return "n/a" if v is None else f"{v:.{digits}g}"


def _channel_report(ch: ArimaChannel, level: float) -> list[str]:
    t = ch.tests
    lines = [f"### {ch.channel}: {ch.model}", ""]
    crit = next((c.criterion for c in ch.selection if c.selected), "AICc")
    lines.append(
        f"Selected **{ch.model}** from {len(ch.selection)} candidate fits by "
        f"{crit.split(' (')[0]}. Period: {ch.period} ({ch.period_source})."
    )
    diff = f"d = {t.get('d')}"
    if t.get("kpss_pvalues"):
        diff += " (KPSS p-values " + ", ".join(f"{p:g}" for p in t["kpss_pvalues"]) + ")"
    diff += f", D = {t.get('D')}"
    if t.get("seasonal_strength") is not None:
        diff += (
            f" (seasonal strength F_S = {t['seasonal_strength']:.3f} vs threshold "
            f"{t.get('seasonal_strength_threshold')})"
        )
    lines += [f"Differencing: {diff}.", ""]
    lines += ["| Coefficient | Value |", "|---|---|"]
    lines += [f"| {k} | {_num(v)} |" for k, v in ch.params.items()]
    lines += [f"| sigma2 | {_num(ch.sigma2)} |", ""]
    fit = ", ".join(f"{k.upper()} {_num(v)}" for k, v in ch.fit.items())
    lines.append(
        f"Fit on {ch.n_obs} observations ({ch.n_missing} missing; coefficients estimated on the "
        f"last {ch.estimation_window} by {ch.estimation_method}): log-likelihood {_num(ch.loglik, 6)}, AICc {_num(ch.aicc, 6)}, "
        f"AIC {_num(ch.aic, 6)}, BIC {_num(ch.bic, 6)}; in-sample one-step errors: {fit}."
    )
    ranked = sorted(
        (c for c in ch.selection if c.score is not None and "CSS" in c.criterion),
        key=lambda c: c.score,
    )[:TOP_CANDIDATES]
    if ranked:
        lines += [
            "",
            f"Top candidates of the stepwise search ({ranked[0].criterion}):",
            "",
            "| Rank | Model | Score |",
            "|---|---|---|",
        ]
        lines += [f"| {i} | {c.name} | {c.score:.2f} |" for i, c in enumerate(ranked, 1)]
    refits = [c for c in ch.selection if "exact" in c.criterion]
    if len(refits) > 1:
        lines += [
            "",
            "Refitted by exact likelihood: "
            + "; ".join(
                f"{c.name} {_num(c.score, 6)}{' (selected)' if c.selected else ''}" for c in refits
            )
            + ".",
        ]
    lb = ch.ljung_box
    if lb.pvalue is not None:
        verdict = (
            "no evidence of remaining autocorrelation"
            if lb.pvalue >= 0.05
            else "autocorrelation remains in the residuals"
        )
        lines += [
            "",
            f"Ljung-Box test on the residuals: Q = {lb.statistic:.3f} at {lb.lags} lags "
            f"(df {lb.df}), p = {lb.pvalue:.4g}: {verdict}.",
        ]
    fc = ch.forecast
    lines += [
        "",
        f"Forecast, {len(fc.steps)} steps with {100 * (fc.level or level):g}% prediction interval:",
        "",
        "| Step | Forecast | Lower | Upper |",
        "|---|---|---|---|",
    ]
    idx = list(range(len(fc.steps)))
    if len(idx) > FULL_TABLE:
        idx = [*idx[:TABLE_ENDS], -1, *idx[-TABLE_ENDS:]]
    for i in idx:
        if i < 0:
            lines.append("| ... | | | |")
            continue
        lo = _num(fc.lower[i], 6) if fc.lower else "n/a"
        hi = _num(fc.upper[i], 6) if fc.upper else "n/a"
        lines.append(f"| {fc.steps[i]} | {_num(fc.mean[i], 6)} | {lo} | {hi} |")
    if ch.notes:
        lines += ["", "Notes:"] + [f"- {n}" for n in ch.notes]
    return lines


def report(series: Series, result: ArimaResult) -> str:
    """Markdown: per channel the selected model, the candidates it beat, diagnostics, forecasts."""
    head = [
        f"## ARIMA forecast ({len(result.channels)} channel"
        f"{'s' if len(result.channels) > 1 else ''})",
        "",
    ]
    body: list[str] = []
    for ch in result.channels:
        body += [*_channel_report(ch, result.level), ""]
    return "\n".join(head + body).rstrip() + "\n"
