"""Change point detection: where does a series switch regime? (ruptures-style segmentation)."""

from __future__ import annotations

from itertools import pairwise
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, Field

from chronoken.tools.base import Candidate, Tool, ToolArgs, ToolResult, arg, words

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from chronoken.series import Series
    from chronoken.tools._cp_fit import Prepared

_NUM = r"(\d+)"
_CHANGES = (
    r"(?:change[- ]?points?|changes?|breaks?|break[- ]?points?|structural breaks?|"
    r"regime (?:shifts?|changes?|switch(?:es)?)|level shifts?|shifts?|splits?|switch(?:es)?)"
)
TREND_FAMILIES = ("trend", "kink", "drift", "volatility")


class ChangepointsArgs(ToolArgs):
    """Arguments of the change point tool; every one has a default."""

    method: Literal["auto", "pelt", "binseg", "window", "dynp"] = arg(
        "auto",
        "Search method. auto: exact PELT (a penalty) or exact dynamic programming (a number of "
        "changes); pelt: pruned exact linear time; binseg: binary segmentation (greedy, fast); "
        "window: sliding window; dynp: dynamic programming (ruptures Dynp, up to 2,000 points).",
        synonyms={
            "pelt": [r"\bpelt\b", r"pruned exact"],
            "binseg": [r"binary segmentation", r"\bbin ?seg\b"],
            "window": [r"sliding window", r"\bwindow[- ](?:based|method|search|sliding)"],
            "dynp": [
                r"dynamic programming",
                r"\bdynp\b",
                r"segment neighbou?rhood",
                r"optimal partition",
            ],
        },
    )
    cost: Literal["auto", "l2", "l1", "normal", "rbf", "linear"] = arg(
        "auto",
        "What changes at a change point. auto: compares mean shifts, mean-and-variance changes, "
        "linear-trend changes and random-walk drift/volatility changes and keeps the best by a "
        "modified BIC; l2: the mean; l1: the median (robust); normal: mean and/or variance; "
        "rbf: the distribution (kernel, up to 20,000 points); linear: level and slope of a trend "
        "(with or without jumps, the better by the modified BIC).",
        synonyms={
            "l2": [
                r"\bl2\b",
                r"least squares",
                r"(?:shifts?|changes?) in (?:the )?(?:mean|level)\b(?! and)",
                r"mean shifts?",
                r"level shifts?",
            ],
            "l1": [r"\bl1\b", r"\bmedian\b", r"least absolute"],
            "normal": [
                r"\bnormal cost\b",
                r"gaussian",
                r"mean and variance",
                r"(?:changes?|shifts?) in (?:the )?variance",
                r"variance changes?",
            ],
            "rbf": [
                r"\brbf\b",
                r"\bkernel\b",
                r"(?:changes?|shifts?) in (?:the )?distribution",
                r"distribution(?:al)? (?:changes?|shifts?)",
            ],
            "linear": [
                r"\bslopes?\b",
                r"trend changes?",
                r"(?:changes?|breaks?) in (?:the )?trend",
                r"piecewise linear",
                r"linear trend",
                r"growth rate",
            ],
        },
    )
    n_bkps: int | None = arg(
        None,
        "Exact number of change points to return; None chooses it from the data with a "
        "penalty. 'at most 3 change points', '3 breaks', 'two regime shifts' set it.",
        ge=0,
        cues=[
            rf"(?:at most|exactly|up to|maximum of|max(?:imum)?|find|detect|the|top)\s+{_NUM}\s+{_CHANGES}",
            rf"(?<!least )(?<!than )\b{_NUM}\s+{_CHANGES}",
            rf"n_bkps\s*=\s*{_NUM}",
        ],
        synonyms={"1": [rf"\ba single\s+{_CHANGES}"]},
    )
    penalty: float | None = arg(
        None,
        "Penalty per change point, in units of the cost on the standardised series (noise "
        "long-run sd 1); None picks a modified-BIC penalty (d + 2) log T from the data. Larger "
        "means fewer change points.",
        gt=0,
        cues=[r"penalty\s*(?:of|=|:|value)?\s*(\d+(?:\.\d+)?)", r"\bpen\s*=\s*(\d+(?:\.\d+)?)"],
    )
    min_size: int | None = arg(
        None,
        "Minimum number of observations in a segment; None: T/100 clipped to [5, 25] "
        "(less for series under 11 points).",
        ge=2,
        cues=[
            r"min(?:imum)?[_ ]size\s*(?:of|=|:)?\s*(\d+)",
            r"(?:segments?|regimes?) (?:of |lasting )?at least (\d+)",
            r"minimum segment length\s*(?:of|=|:)?\s*(\d+)",
        ],
    )
    jump: int | None = arg(
        None,
        "Consider change points only every `jump` observations (then refined to single points); "
        "None: 1 up to 1,000 points, else T/1,000.",
        ge=1,
        cues=[r"\bjump\s*(?:of|=|:)?\s*(\d+)"],
    )
    width: int | None = arg(
        None,
        "Window width in observations for method 'window'; None: T/10 clipped to [2 min_size, 200].",
        ge=4,
        cues=[
            r"window (?:width|size|length)\s*(?:of|=|:)?\s*(\d+)",
            r"(\d+)[- ](?:point|sample|step) window",
        ],
    )
    period: int | None = arg(
        None,
        "Seasonal period (observations) whose average profile is removed before segmenting; "
        "None detects it, 0 keeps the series as it is.",
        ge=0,
        cues=[r"(?:seasonal )?period\s*(?:of|=|:)\s*(\d+)", r"seasonality of (\d+)"],
        synonyms={
            "0": [
                r"(?:keep|ignore|no) (?:the )?seasonal(?:ity)? (?:adjustment|removal)",
                r"(?:ignore|keep) (?:the )?seasonality",
                r"(?:don'?t|do not) (?:remove|adjust for) (?:the )?season",
                r"without (?:removing )?(?:the )?seasonal",
            ]
        },
    )
    robust: bool = arg(
        True,
        "Clip outliers to a running median +- 3 local noise sd before segmenting, so single "
        "spikes do not become segments (statistics still use the observed values).",
        synonyms={
            "False": [r"(?:keep|don'?t clip|no clipping of) (?:the )?outliers", r"not robust"]
        },
    )


class Segment(BaseModel):
    """One segment between change points, statistics of the observed values per channel."""

    start: int = Field(description="0-based index of the segment's first observation.")
    end: int = Field(description="0-based index of the segment's last observation (inclusive).")
    start_label: str = Field(description="Time label of the first observation.")
    end_label: str = Field(description="Time label of the last observation.")
    n: int = Field(description="Number of observations.")
    mean: list[float] = Field(description="Mean per channel.")
    std: list[float] = Field(description="Standard deviation per channel.")
    slope: list[float] = Field(description="Least-squares slope per observation step, per channel.")


class ChangepointsResult(ToolResult):
    """Change points, segments and how the segmentation was chosen."""

    change_points: list[int] = Field(
        description="0-based index of the first observation of each new segment, ascending."
    )
    change_labels: list[str] = Field(description="Time label of each change point.")
    segments: list[Segment] = Field(description="The segments, in time order.")
    channels: list[str] = Field(description="Channel names, the order of mean/std/slope.")
    family: str = Field(
        description="What changes: mean, meanvar, trend (jumps allowed), kink (continuous "
        "trend), drift or volatility (of a random walk), l1, rbf; 'smooth' when a cubic trend "
        "without change points fits best, 'none' for a constant series."
    )
    method: str = Field(description="Search algorithm used.")
    penalty: float | None = Field(description="Penalty per change used (None with n_bkps).")


class ChangepointsTool(Tool):
    name: ClassVar[str] = "changepoints"
    summary: ClassVar[str] = (
        "Find change points: where a series shifts regime (level shifts, structural breaks, "
        "trend or variance changes) and the segments between them."
    )
    doc: ClassVar[str] = words(
        """
        Change point detection and segmentation. Finds the times where a series changes
        abruptly: level shifts, structural breaks, regime shifts or switches, jumps in the
        mean, changes in variance or volatility, changes in a trend's slope, distribution
        changes. Use it when the question is when or whether something changed, how many
        regimes or phases there are, where the series breaks, or to split a series into
        homogeneous segments before and after an event; it works on one or several channels
        at once. It fits piecewise models (constant mean, mean and variance, linear trend,
        random walk drift or volatility; or median and kernel costs) with the ruptures-style
        searches PELT, binary segmentation, sliding window or dynamic programming, picks what
        changes and how many change points from the data with a modified BIC penalty that is
        robust to outliers, seasonality and autocorrelation, or returns exactly the number of
        breaks asked for. It returns the change point indices and dates, a table of segments
        with start, end, mean, standard deviation and slope, the candidates compared, and a
        plot. It does not forecast future values or smooth the series.
        """
    )
    Args: ClassVar[type[ToolArgs]] = ChangepointsArgs
    Result: ClassVar[type[ToolResult]] = ChangepointsResult
    min_samples: ClassVar[int] = 8

    # ------------------------------------------------------------------ run
    def run(self, series: Series, args: ToolArgs | dict | None = None) -> ChangepointsResult:
        from chronoken.tools import _cp_fit as fit

        a = self.parse_args(args)
        assert isinstance(a, ChangepointsArgs)
        n, k = series.n_samples, series.n_channels
        min_size = a.min_size or _auto_min_size(n, a.cost)
        series.require(self.name, max(self.min_samples, 2 * min_size + 1))
        notes: list[str] = []
        if a.min_size is None:
            notes.append(f"Minimum segment length {min_size} observations (automatic).")
        x = series.filled()
        if series.n_missing:
            notes.append(
                f"{series.n_missing} missing value(s) were linearly interpolated before segmenting."
            )
        params = {"cost": a.cost, "n_bkps": a.n_bkps, "min_size": min_size}
        active = [j for j in range(k) if np.std(x[:, j]) > 0]
        if not active:
            notes.append("The series is constant: there is no change point.")
            return self._result(series, x, [], "none", "no search", None, [], notes, {}, {}, params)
        if len(active) < k:
            dropped = [series.names[j] for j in range(k) if j not in active]
            notes.append(
                f"Constant channel(s) {dropped} carry no change and were left out of the search."
            )
        if a.n_bkps is not None and a.penalty is not None:
            notes.append("Both n_bkps and penalty were given: n_bkps was used.")
        fams = fit.AUTO_FAMILIES if a.cost == "auto" else fit.COST_FAMILIES[a.cost]
        if a.n_bkps is not None:
            fams = tuple(f for f in fams if f != "smooth")
        periods, tried = fit.fit_all(
            x[:, active], a.period, a.robust, min_size, fams,
            a.method, a.n_bkps, a.penalty, a.jump, a.width,
        )  # fmt: skip
        scored = [t for t in tried if t[1].criterion is not None]
        pre, best = min(scored, key=lambda t: float(t[1].criterion or 0.0)) if scored else tried[0]
        for _, f in tried:
            notes.extend(n_ for n_ in f.notes if n_ not in notes)
        if any(p is not None for p in periods) and all(p is None for p in pre.periods):
            notes.append(
                f"A seasonal period ({', '.join(str(p) for p in periods if p)}) was detected, but "
                "removing its profile did not improve the modified BIC: the series was segmented "
                "as observed."
            )
        seasonal_tag = {id(p): any(v is not None for v in p.periods) for p, _ in tried}
        selection = [
            Candidate(
                name=f"{f.family}{' (seasonal profile removed)' if seasonal_tag[id(p)] else ''}: "
                f"{len(f.bkps)} change point(s) ({f.search})",
                score=None if f.criterion is None else round(float(f.criterion), 4),
                criterion="modified BIC under AR(1) noise (lower is better)"
                if f.criterion is not None
                else "not scored (single cost requested)",
                selected=f is best,
            )
            for p, f in tried
        ]
        notes.extend(_preparation_notes(pre, [series.names[j] for j in active], a.penalty))
        if a.period and None in periods:
            notes.append(
                f"The seasonal period {a.period} was not removed: it needs at least 3 full "
                f"cycles ({3 * a.period} observations) and a period of at least 2."
            )
        # the smooth null model has no search and no penalty
        penalty = None if a.n_bkps is not None or best.family == "smooth" else best.penalty
        fit_stats = {"n_change_points": float(len(best.bkps))}
        if np.isfinite(best.penalised_cost):
            fit_stats["penalised_cost"] = float(best.penalised_cost)
        if best.criterion is not None:
            fit_stats["modified_bic"] = float(best.criterion)
        if penalty is not None:
            fit_stats["penalty"] = float(penalty)
        diagnostics = _diagnostics(pre, [series.names[j] for j in active], min_size)
        return self._result(
            series, x, best.bkps, best.family, best.search, penalty, selection, notes,
            diagnostics, fit_stats, params,
        )  # fmt: skip

    def _result(
        self,
        series: Series,
        x: np.ndarray,
        bkps: list[int],
        family: str,
        method: str,
        penalty: float | None,
        selection: list[Candidate],
        notes: list[str],
        diagnostics: dict,
        fit_stats: dict,
        params: dict,
    ) -> ChangepointsResult:
        from chronoken.tools._cp_fit import WORDS

        edges = [0, *bkps, series.n_samples]
        segments = []
        for s, e in pairwise(edges):
            seg = x[s:e]
            t = np.arange(e - s, dtype=float) - (e - s - 1) / 2.0
            tt = float(t @ t)
            slope = (t @ (seg - seg.mean(axis=0))) / tt if tt > 0 else np.zeros(x.shape[1])
            segments.append(
                Segment(
                    start=s,
                    end=e - 1,
                    start_label=series.time_label(s),
                    end_label=series.time_label(e - 1),
                    n=e - s,
                    mean=[float(v) for v in seg.mean(axis=0)],
                    std=[float(v) for v in seg.std(axis=0)],
                    slope=[float(v) for v in slope],
                )
            )
        if family == "none":
            model = "constant series: no change point"
        elif family == "smooth":
            model = f"no change point: {WORDS['smooth']}"
        else:
            model = f"{len(bkps)} change point(s): {WORDS[family]}; {method}"
            if penalty is not None:
                model += f", penalty {penalty:.3g} per change"
        return ChangepointsResult(
            tool=self.name,
            model=model,
            params={"family": family, "method": method, "penalty": penalty, **params},
            fit=fit_stats,
            diagnostics=diagnostics,
            selection=selection,
            notes=notes,
            change_points=[int(b) for b in bkps],
            change_labels=[series.time_label(b) for b in bkps],
            segments=segments,
            channels=list(series.names),
            family=family,
            method=method,
            penalty=penalty,
        )

    # ------------------------------------------------------------------ plot
    def plot(self, series: Series, result: ToolResult) -> Figure:
        from matplotlib.figure import Figure

        assert isinstance(result, ChangepointsResult)
        shown = min(series.n_channels, 6)
        fig = Figure(figsize=(9, 2.4 * shown + 0.6), constrained_layout=True)
        axes = fig.subplots(shown, 1, sharex=True, squeeze=False)[:, 0]
        xt = series.time if series.is_datetime else series.t_numeric()
        trend = result.family in TREND_FAMILIES
        for j, ax in enumerate(axes):
            ax.plot(xt, series.values[:, j], lw=0.8, color="0.35", label=series.names[j])
            for i, seg in enumerate(result.segments):
                idx = np.arange(seg.start, seg.end + 1)
                if trend:
                    line = seg.mean[j] + seg.slope[j] * (idx - (seg.start + seg.end) / 2.0)
                else:
                    line = np.full(len(idx), seg.mean[j])
                ax.plot(
                    xt[idx], line, color="tab:red", lw=2, label="segment fit" if i == 0 else None
                )
            for c in result.change_points:
                ax.axvline(xt[c], color="tab:blue", ls="--", lw=1)
            ax.set_ylabel(series.names[j])
            ax.legend(loc="best", fontsize=8)
        axes[0].set_title(f"{len(result.change_points)} change point(s) — {result.family}")
        return fig

    # ---------------------------------------------------------------- report
    def report(self, series: Series, result: ToolResult) -> str:
        assert isinstance(result, ChangepointsResult)
        cps = result.change_points
        lines = [f"**Change points** — {result.model}.", ""]
        if cps:
            lines.append(
                "Change points (first observation of each new segment): "
                + ", ".join(
                    f"{lab} (index {i})" for i, lab in zip(cps, result.change_labels, strict=True)
                )
                + "."
            )
        else:
            lines.append("No change point was found: the series is one segment.")
        lines.append("")
        chans = list(range(min(len(result.channels), 4)))
        show_slope = result.family in TREND_FAMILIES
        head = ["segment", "start", "end", "from", "to", "n"]
        for j in chans:
            sfx = f" ({result.channels[j]})" if len(result.channels) > 1 else ""
            head += [f"mean{sfx}", f"std{sfx}"] + ([f"slope{sfx}"] if show_slope else [])
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
        for i, s in enumerate(result.segments, 1):
            row = [str(i), str(s.start), str(s.end), s.start_label, s.end_label, str(s.n)]
            for j in chans:
                row += [f"{s.mean[j]:.4g}", f"{s.std[j]:.4g}"]
                if show_slope:
                    row.append(f"{s.slope[j]:.4g}")
            lines.append("| " + " | ".join(row) + " |")
        if len(result.channels) > len(chans):
            lines.append(f"\n({len(result.channels) - len(chans)} more channels not shown.)")
        chosen = [c for c in result.selection if c.selected]
        if len(result.selection) > 1 and chosen:
            lines += ["", "Candidates compared (" + result.selection[0].criterion + "):", ""]
            for c in result.selection:
                mark = " **(selected)**" if c.selected else ""
                score = "n/a" if c.score is None else f"{c.score:.2f}"
                lines.append(f"- {c.name}: {score}{mark}")
        if result.notes:
            lines += ["", "Notes:", ""] + [f"- {n_}" for n_ in result.notes]
        return "\n".join(lines)


def _preparation_notes(pre: Prepared, names: list[str], penalty: float | None) -> list[str]:
    """Caveats from the preparation: seasonality removed, outliers clipped, autocorrelation."""
    notes = []
    seasonal = [f"{c}: {p}" for c, p in zip(names, pre.periods, strict=True) if p is not None]
    if seasonal:
        notes.append(
            f"A seasonal profile was removed before segmenting (period {', '.join(seasonal)}); "
            "segment statistics are of the observed values."
        )
    if pre.n_clipped:
        notes.append(
            f"{pre.n_clipped} outlying value(s) were clipped to the running median +- 3 local "
            "noise sd for the search (robust=True); segment statistics use the observed values."
        )
    if pre.noise.rho.max() > 0.1 and penalty is None:
        notes.append(
            f"The noise is autocorrelated (lag-1 up to {float(pre.noise.rho.max()):.2f}); the "
            f"penalty was raised by the long-run variance factor {float(pre.noise.phi.max()):.2f}."
        )
    return notes


def _diagnostics(pre: Prepared, names: list[str], min_size: int) -> dict:
    def per(values: np.ndarray) -> dict[str, float]:
        return {c: float(v) for c, v in zip(names, values, strict=True)}

    return {
        "noise_sd": per(pre.noise.sigma),
        "noise_lag1_autocorrelation": per(pre.noise.rho),
        "long_run_variance_factor": per(pre.noise.phi),
        "seasonal_period_removed": dict(zip(names, pre.periods, strict=True)),
        "outliers_clipped": pre.n_clipped,
        "min_size": min_size,
    }


def _auto_min_size(n: int, cost: str) -> int:
    floor = 3 if cost in ("linear", "auto") else 2
    m = int(np.clip(n // 100, 5, 25))
    return max(floor, min(m, (n - 1) // 2))


__all__ = ["ChangepointsArgs", "ChangepointsResult", "ChangepointsTool", "Segment"]
