"""Plot and markdown report of a gpr result (numbers come from the result only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from chronoken.tools._ssa_report import time_axes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from chronoken.series import Series
    from chronoken.tools.base import ToolResult


def plot(series: Series, result: ToolResult) -> Figure:
    """One panel per channel (at most 4): data, predictive mean, band and forecast."""
    from matplotlib.figure import Figure

    r: Any = result
    shown = r.channels[:4]
    fig = Figure(figsize=(10, 3.2 * len(shown)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(shown), 1))
    h = len(r.forecast[0].mean) if r.forecast else 0
    x, xf = time_axes(series, h)
    for c, (ax, ch) in enumerate(zip(axes, shown, strict=False)):
        ax.plot(x, series.values[:, c], ".", ms=2.5, color="0.35", label="data")
        ax.plot(x, ch.mean, color="C0", lw=1.2, label="GP mean")
        ax.fill_between(x, ch.lower, ch.upper, color="C0", alpha=0.2, label=f"{r.level:.0%} band")
        fc = next((f for f in r.forecast if f.channel == ch.channel), None)
        if fc is not None:
            ax.plot(xf, fc.mean, color="C3", lw=1.2, label="forecast")
            ax.fill_between(xf, fc.lower, fc.upper, color="C3", alpha=0.2)
        ax.set_title(f"{ch.channel}: {ch.kernel}", fontsize=8)
        ax.legend(fontsize=7, loc="best")
    return fig


def report(series: Series, result: ToolResult) -> str:
    """Markdown with the kernel per channel, candidates, fit, forecast (24 steps) and notes."""
    r: Any = result
    lines = ["## Gaussian-process regression", "", f"**Model:** {r.model}", ""]
    for ch in r.channels:
        lines.append(f"### Channel {ch.channel}: {ch.family}")
        lines.append("")
        lines.append(f"Kernel: `{ch.kernel}`")
        if ch.period is not None:
            lines.append(f"Fitted period: {ch.period:.4g} {r.time_unit}.")
        hp = ", ".join(f"{k} = {v:.4g}" for k, v in ch.hyperparameters.items())
        if hp:
            lines.append(f"Hyperparameters ({r.time_unit} for lengths): {hp}.")
        cands = r.diagnostics.get("channels", {}).get(ch.channel, {}).get("candidates", {})
        if cands:
            lines += ["", "| kernel | LML | k | BIC | selected |", "|---|---|---|---|---|"]
            for fam, d in sorted(cands.items(), key=lambda kv: kv[1]["bic"]):
                mark = "yes" if fam == ch.family else ""
                lines.append(
                    f"| {fam} | {d['lml']:.2f} | {d['n_hyperparameters']} | {d['bic']:.2f} | {mark} |"
                )
        lines.append("")
    lines.append("**Fit:** " + ", ".join(f"{k} = {v:.4g}" for k, v in r.fit.items()))
    for f in r.forecast:
        lines += f.markdown("band")
    if r.notes:
        lines += ["", "**Notes:**"] + [f"- {n}" for n in r.notes]
    return "\n".join(lines) + "\n"
