"""Plot and markdown report of an SSA result (numbers come from the result only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from chronoken.series import Series
    from chronoken.tools.base import ToolResult

_COLORS = {"trend": "tab:red", "periodic": "tab:blue", "other": "tab:purple", "noise": "0.6"}


def time_axes(series: Series, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """x values of the observations, shape (n_samples,), and of ``horizon`` future steps (the
    median time step continued): datetime64 for dated series, floats otherwise."""
    n = series.n_samples
    if series.time is None:
        return np.arange(n, dtype=float), np.arange(n, n + horizon, dtype=float)
    t = series.time
    step = (
        np.median(np.diff(t)) if n > 1 else (np.timedelta64(1, "D") if series.is_datetime else 1.0)
    )
    return t, t[-1] + step * np.arange(1, horizon + 1)


def plot(series: Series, result: ToolResult) -> Figure:
    """Three panels: data, signal, trend and forecast (up to 3 channels); the periodic
    components of the first channel; the eigenvalue shares coloured by group."""
    from matplotlib.figure import Figure

    r: Any = result
    fig = Figure(figsize=(10, 9), layout="constrained")
    ax1, ax2, ax3 = fig.subplots(3, 1)
    h = len(r.forecast[0].mean) if r.forecast else 0
    x, xf = time_axes(series, h)
    for c, comp in enumerate(r.components[:3]):
        signal = np.asarray(comp.trend)
        for v in comp.periodic.values():
            signal = signal + np.asarray(v)
        if comp.other is not None:
            signal = signal + np.asarray(comp.other)
        ax1.plot(x, series.values[:, c], color="0.55", lw=0.8, label="data" if c == 0 else None)
        ax1.plot(x, signal, color=f"C{c}", lw=1.3, label=f"signal ({comp.channel})")
        ax1.plot(x, comp.trend, color=f"C{c}", lw=1.0, ls="--", label="trend" if c == 0 else None)
        if r.forecast:
            f = r.forecast[c]
            ax1.plot(
                xf, f.mean, color=f"C{c}", lw=1.5, ls=":", label="forecast" if c == 0 else None
            )
            if f.lower is not None and f.upper is not None:
                ax1.fill_between(
                    xf,
                    f.lower,
                    f.upper,
                    color=f"C{c}",
                    alpha=0.2,
                    label=f"{f.level:.0%} interval" if c == 0 else None,
                )
    ax1.set_title(r.model, fontsize=9)
    ax1.legend(fontsize=7, loc="best")
    first = r.components[0]
    shown = list(first.periodic.items())[:4]
    for k, (name, v) in enumerate(shown):
        ax2.plot(x, v, lw=0.9, color=f"C{k}", label=name)
    if first.other is not None:
        ax2.plot(x, first.other, lw=0.9, color="tab:purple", label="other signal")
    ax2.set_title(
        f"periodic components ({first.channel})" if shown else "no periodic component", fontsize=9
    )
    if shown or first.other is not None:
        ax2.legend(fontsize=7, loc="upper right")
    kinds = ["noise"] * len(r.shares)
    for g in r.groups:
        for i in g.indices:
            if i < len(kinds):
                kinds[i] = g.kind
    m = min(len(r.shares), 30)
    ax3.bar(np.arange(m), np.maximum(r.shares[:m], 1e-12), color=[_COLORS[k] for k in kinds[:m]])
    ax3.set_yscale("log")
    ax3.set_xlabel("eigentriple")
    ax3.set_ylabel("share")
    ax3.set_title(
        "eigenvalue shares (red trend, blue periodic, purple other, grey noise)", fontsize=9
    )
    return fig


def report(series: Series, result: ToolResult) -> str:
    """Markdown with the window, groups, fit, forecast (first 24 steps) and notes."""
    r: Any = result
    kind = (
        "Multichannel singular spectrum analysis (MSSA)"
        if r.multichannel
        else "Singular spectrum analysis"
    )
    lines = [f"## {kind}", "", f"**Model:** {r.model}", ""]
    lines.append(
        f"Window L = {r.window}; {r.rank} eigentriple(s) form the signal, explaining "
        f"{100 * r.fit.get('signal_share', 0.0):.1f}% of the energy of the centred series "
        f"(trend {100 * r.fit.get('trend_share', 0.0):.1f}%, periodic "
        f"{100 * r.fit.get('periodic_share', 0.0):.1f}%)."
    )
    lines += [
        "",
        "| group | kind | eigentriples | share % | period | pair w-corr | signal/noise |",
        "|---|---|---|---|---|---|---|",
    ]
    for g in r.groups:
        idx = _ranges(g.indices)
        per = f"{g.period:.4g}" if g.period is not None else ""
        wc = f"{g.w_correlation:.2f}" if g.w_correlation is not None else ""
        sn = f"{g.significance:.1f}" if g.significance is not None else ""
        lines.append(f"| {g.name} | {g.kind} | {idx} | {100 * g.share:.2f} | {per} | {wc} | {sn} |")
    lines += ["", "**Fit:** " + ", ".join(f"{k} = {v:.4g}" for k, v in r.fit.items())]
    top = ", ".join(f"{100 * s:.2f}%" for s in r.shares[:10])
    lines += ["", f"Leading eigenvalue shares: {top}."]
    d = r.diagnostics
    lines.append(
        f"Separability: max w-correlation between signal groups "
        f"{d.get('max_w_correlation_between_signal_groups', 0):.3f}, between signal and noise "
        f"{d.get('max_w_correlation_signal_noise', 0):.3f} (near 0 = well separated)."
    )
    for f in r.forecast:
        lines += f.markdown("interval")
    if r.notes:
        lines += ["", "**Notes:**"] + [f"- {n}" for n in r.notes]
    return "\n".join(lines) + "\n"


def _ranges(idx: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2, 5'."""
    if not idx:
        return "-"
    out, start, prev = [], idx[0], idx[0]
    for i in [*idx[1:], None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    return ", ".join(out)
