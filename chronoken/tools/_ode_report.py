"""Figure and markdown report of a neural_ode Result; every number comes from the result."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from chronoken.series import Series
    from chronoken.tools.base import ToolResult


def _forecast_times(series: Series, horizon: int) -> np.ndarray:
    t = series.t_numeric()
    step = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
    return t[-1] + step * np.arange(1, horizon + 1)


def plot(series: Series, result: ToolResult) -> Figure:
    """One panel per channel (data, fitted trajectory, forecast with the ensemble range) and,
    for two channels, a phase portrait of channel 1 against channel 0."""
    from matplotlib.figure import Figure

    res: Any = result
    k = series.n_channels
    shown = min(k, 4)
    phase = k == 2
    fig = Figure(figsize=(10, 2.6 * shown + (3.6 if phase else 0)), layout="constrained")
    rows = shown + (1 if phase else 0)
    heights = [1.0] * shown + ([1.5] if phase else [])
    axes = fig.subplots(rows, 1, gridspec_kw={"height_ratios": heights}, squeeze=False)[:, 0]
    t = series.t_numeric()
    traj = np.asarray(res.trajectory, dtype=float)
    traj_t = np.asarray(res.trajectory_t, dtype=float)
    xlabel = "time (days since start)" if series.is_datetime else "time"
    for j in range(shown):
        ax = axes[j]
        ax.plot(t, series.values[:, j], ".", ms=2.5, color="0.45", label="data")
        ax.plot(
            traj_t, traj[:, j], color="C0", lw=1.2, label="fitted trajectory (ODE from first state)"
        )
        fc = res.forecasts[j] if j < len(res.forecasts) else None
        if fc is not None and fc.mean:
            tf = _forecast_times(series, len(fc.mean))
            ax.plot(tf, fc.mean, color="C3", lw=1.5, label="forecast")
            if fc.lower is not None and fc.upper is not None:
                ax.fill_between(
                    tf, fc.lower, fc.upper, color="C3", alpha=0.2, label="ensemble range"
                )
        ax.set_ylabel(series.names[j])
        ax.grid(alpha=0.3)
    axes[0].legend(loc="best", fontsize=8)
    axes[shown - 1].set_xlabel(xlabel)
    axes[0].set_title(res.model, fontsize=9)
    if phase:
        ax = axes[-1]
        ax.plot(series.values[:, 0], series.values[:, 1], ".", ms=2.5, color="0.45", label="data")
        ax.plot(traj[:, 0], traj[:, 1], color="C0", lw=1.0, label="fitted trajectory")
        if res.forecasts and res.forecasts[0].mean:
            ax.plot(
                res.forecasts[0].mean, res.forecasts[1].mean, color="C3", lw=1.5, label="forecast"
            )
        ax.set_xlabel(series.names[0])
        ax.set_ylabel(series.names[1])
        ax.set_title("phase portrait", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    return fig


def _num(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def report(series: Series, result: ToolResult) -> str:
    """Markdown: model, learned parameters, fit, selection, forecast and notes."""
    res: Any = result
    p, fit, d = res.params, res.fit, res.diagnostics
    lines = ["## Neural ODE: learned continuous-time dynamics", "", f"**Model.** {res.model}.", ""]
    lines.append(
        f"State: [{', '.join(res.state)}]; {p.get('n_weights')} weights per network; time scale "
        f"{_num(p.get('time_scale'))} time units per unit of model time; {d.get('solver')} solver."
    )
    prior = p.get("prior")
    if prior == "damped_oscillator":
        lines += [
            "",
            (
                f"**Learned oscillator.** omega = {_num(p.get('omega'))} rad per time unit "
                f"(natural period {_num(p.get('natural_period'))}), damping ratio zeta = "
                f"{_num(p.get('zeta'))}, equilibrium {_num(p.get('x_equilibrium'))}."
            ),
        ]
    elif prior == "linear":
        rates = ", ".join(_num(r) for r in p.get("eigen_growth_rates", []))
        periods = ", ".join(_num(r) for r in p.get("eigen_periods", []))
        lines += [
            "",
            (
                f"**Linear part dx/dt = A x + b.** Eigenvalue growth rates per time unit: {rates}; "
                f"periods: {periods}."
            ),
        ]
    lines += [
        "",
        "**Fit** (RMSE in the series' units, pooled over channels; relative = in standard "
        "deviations):",
        "",
        "| measure | RMSE | relative |",
        "|---|---|---|",
        f"| training windows ({d.get('window')} steps ahead) | {_num(fit.get('train_rmse'))} | "
        f"{_num(fit.get('train_relative_rmse'))} |",
        f"| validation tail ({d.get('n_validation')} points, extrapolated) | "
        f"{_num(fit.get('validation_rmse'))} | {_num(fit.get('validation_relative_rmse'))} |",
        f"| whole series from the first state | {_num(fit.get('trajectory_rmse'))} | "
        f"{_num(fit.get('trajectory_relative_rmse'))} |",
        "",
        f"Training: {d.get('selection_epochs_run')} epochs to select, refit for "
        f"{d.get('refit_epochs')} epochs on all {d.get('n_points_trained')} points; final data "
        f"loss {_num(d.get('final_data_loss'))}, prior loss {_num(d.get('final_prior_loss'))}; "
        f"{d.get('nfe_training')} vector-field evaluations in training, "
        f"{d.get('nfe_forecast')} for the forecast.",
        "",
        "**Candidates** (selected in bold):",
        "",
        "| model | validation RMSE (sd) |",
        "|---|---|",
    ]
    for c in res.selection:
        name = f"**{c.name}**" if c.selected else c.name
        lines.append(f"| {name} | {_num(c.score)} |")
    if res.forecasts and res.forecasts[0].mean:
        lines += ["", f"**Forecast** ({len(res.forecasts[0].mean)} steps):", ""]
        header = "| step | " + " | ".join(f.channel for f in res.forecasts) + " |"
        lines += [header, "|---" * (len(res.forecasts) + 1) + "|"]
        n = len(res.forecasts[0].mean)
        show = list(range(n)) if n <= 12 else [*range(5), *range(n - 5, n)]
        for i, step in enumerate(show):
            if i > 0 and step != show[i - 1] + 1:
                lines.append("| ... |" + " |" * len(res.forecasts))
            cells = []
            for f in res.forecasts:
                cell = _num(f.mean[step])
                if f.lower is not None and f.upper is not None:
                    cell += f" [{_num(f.lower[step])}, {_num(f.upper[step])}]"
                cells.append(cell)
            lines.append(f"| {res.forecasts[0].steps[step]} | " + " | ".join(cells) + " |")
    if res.notes:
        lines += ["", "**Notes.**", ""] + [f"- {n}" for n in res.notes]
    return "\n".join(lines) + "\n"
