"""SSA orchestration: window choice, gap filling, grouping, reconstruction and R-forecast.

``fit(series, args)`` returns the fields of :class:`chronoken.tools.ssa.SSAResult` (less ``tool``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from chronoken.errors import ArgsError
from chronoken.tools import _ssa_core as core
from chronoken.tools.base import Candidate, Forecast

if TYPE_CHECKING:
    from chronoken.series import Series
    from chronoken.tools.ssa import SSAArgs

#: Default windows stay at or below this (see choose_window); 2 periods may push it to COV_LIMIT.
WINDOW_CAP = 500
GAP_ITERATIONS = 10


def choose_window(T: int, period: int | None, requested: int | None) -> tuple[int, str]:
    """Window length L for a series of T observations, and the sentence that justifies it.

    Default: L close to T/2, which gives the best separability of the components (Golyandina,
    "On the choice of parameters in SSA", Statistics and Its Interface 3, 2010), capped at 500
    (or two periods, at most 1000) because components that repeat several times inside the
    window are already well separated and the L x L eigenproblem costs L^3; rounded down to a
    multiple of the detected period, which separates the periodic components best (Golyandina,
    Nekrutkin & Zhigljavsky 2001, sec. 1.6).
    """
    if requested is not None:
        if not 2 <= requested <= T - 1:
            raise ArgsError(
                f"window must be between 2 and {T - 1} (the series has {T} observations); got "
                f"{requested}. Leave it out for the automatic choice (about half the series)."
            )
        return int(requested), f"window L = {requested} as requested."
    cap = WINDOW_CAP if not period else min(core.COV_LIMIT, max(WINDOW_CAP, 2 * period))
    target = max(2, min(T // 2, cap))
    if period and target >= 2 * period:
        L = period * (target // period)
        return L, (
            f"window L = {L}: about half the series (at most {cap}), rounded down to a multiple "
            f"of the detected period {period} for the best separability (Golyandina 2010)."
        )
    return target, f"window L = {target}: about half the series (at most {cap}; Golyandina 2010)."


@dataclass
class Analysis:
    """One decomposition with its grouping. F: elementary components (r, T, N), scaled units."""

    dec: core.Decomposition
    F: np.ndarray
    units: list[core.Unit]
    ar1: list[tuple[float, float]]
    factor: float
    signal: list[int]


def analyse(z: np.ndarray, L: int, args: SSAArgs, seed: int = 0) -> Analysis:
    """Decompose z of shape (T, N) (centred, scaled), label and test the eigentriples."""
    T, N = z.shape
    dec = core.decompose(z, L, args.max_components, seed=seed)
    F = core.elementary(dec, T)
    units = core.find_units(dec.U)
    K = T - L + 1
    factor = core.noise_threshold(L, N * K)
    ar1 = core.test_units(units, dec.sigma**2, dec.U, F, z, K, factor)
    if args.rank is not None:
        signal = list(range(min(args.rank, len(dec.sigma))))
    else:
        signal = sorted(i for u in units if u.significant for i in u.indices)
    return Analysis(dec, F, units, ar1, factor, signal)


def fit(series: Series, args: SSAArgs) -> dict[str, Any]:
    """Run SSA/MSSA on ``series`` with ``args``; the Result fields as a dict."""
    import scipy.fft
    import scipy.linalg  # noqa: F401  (load its BLAS before limiting threads)
    from threadpoolctl import threadpool_limits

    T, N = series.values.shape
    notes: list[str] = []
    names = series.names
    mask = np.isnan(series.values)
    mean = np.nanmean(series.values, axis=0)
    scale = np.nanstd(series.values, axis=0)
    flat = scale == 0
    scale[flat] = 1.0
    z = np.where(mask, 0.0, (series.values - mean) / scale)  # gaps start at the mean
    period = next((p for p in (series.period(j) for j in range(N)) if p), None)  # gaps interpolated
    L, why = choose_window(T, period, args.window)
    notes.append(why)
    if N > 1:
        notes.append(
            f"multichannel SSA of {N} channels: each channel is centred and divided by its "
            "standard deviation, the trajectory matrices are stacked side by side and share "
            "eigenvectors; components are reported in each channel's units."
        )
    if series.time is not None and series.freq is None:
        notes.append(
            "the time stamps are irregular: SSA treats the observations as equally spaced, so "
            "periods are in observations, not time units."
        )
    if flat.any():
        notes.append(
            f"constant channel(s) {[names[j] for j in np.flatnonzero(flat)]} carry no signal."
        )
    # One BLAS thread: on a shared 2-core machine threaded OpenBLAS is many times slower on these
    # matrix sizes. The limit only reaches libraries already loaded, hence the imports above.
    with threadpool_limits(limits=1, user_api="blas"):
        an = analyse(z, L, args)
        iterations = 0
        if mask.any():
            for iterations in range(1, GAP_ITERATIONS + 1):  # noqa: B007
                signal = an.F[an.signal].sum(axis=0) if an.signal else np.zeros_like(z)
                change = float(np.max(np.abs(z[mask] - signal[mask]))) if mask.any() else 0.0
                z[mask] = signal[mask]
                an = analyse(z, L, args)
                if change < 1e-3:
                    break
            notes.append(
                f"{int(mask.sum())} missing value(s) filled by iterative SSA gap filling (Kondrashov "
                f"& Ghil 2006): the channel mean first, then the signal reconstruction, "
                f"{iterations} iteration(s); components and residual are given for the filled series."
            )
    y = z * scale + mean  # the (gap-filled) data in channel units
    groups, group_notes = _groups(an, T)
    notes += group_notes
    if args.rank is not None and args.rank > len(an.dec.sigma):
        notes.append(
            f"rank {args.rank} asked but only {len(an.dec.sigma)} eigentriples exist or were "
            f"computed (max_components = {args.max_components}); all of them are the signal."
        )
    if args.rank is not None:
        auto = sum(len(u.indices) for u in an.units if u.significant)
        notes.append(
            f"rank {args.rank} set by the request (the red-noise test would keep {auto} eigentriple(s))."
        )
    elif not an.signal:
        notes.append(
            "no eigentriple stands out from red noise: the series is reported as mean + noise. "
            "Set rank to keep leading eigentriples anyway."
        )
    components = _components(an, groups, y, mean, scale, names)
    forecast, fc_notes, nu2 = _forecast(series, an, y, z, mean, scale, args)
    notes += fc_notes
    lam = an.dec.sigma**2
    shares = lam / an.dec.total
    fit_d = _fit_measures(groups, components, y, mask, names)
    return {
        "model": _model_text(groups, L, an, N),
        "params": {
            "window": L,
            "rank": len(an.signal),
            "groups": {g["name"]: g["indices"] for g in groups if g["kind"] != "noise"},
            "periods": [g["period"] for g in groups if g["kind"] == "periodic"],
        },
        "fit": fit_d,
        "diagnostics": _diagnostics(an, groups, L, T, N, period, iterations, nu2, names),
        "selection": _candidates(an, L),
        "notes": notes,
        "window": L,
        "rank": len(an.signal),
        "multichannel": N > 1,
        "singular_values": [float(s) for s in an.dec.sigma],
        "shares": [float(s) for s in shares],
        "w_correlation": np.round(core.w_correlation(an.F[:20], L), 4).tolist(),
        "groups": groups,
        "components": components,
        "forecast": forecast,
    }


def _groups(an: Analysis, T: int) -> tuple[list[dict[str, Any]], list[str]]:
    """Signal units -> trend / periodic / other groups, plus the noise group."""
    lam = an.dec.sigma**2
    total = an.dec.total
    sig = set(an.signal)
    W = core.w_correlation(an.F, an.dec.U.shape[0]) if len(lam) else np.zeros((0, 0))
    trend: list[int] = []
    other: list[int] = []
    periodic: list[dict[str, Any]] = []
    notes: list[str] = []
    long_periods: list[float] = []
    for u in an.units:
        inside = [i for i in u.indices if i in sig]
        if not inside:
            continue
        if u.kind == "trend":
            trend += inside
        elif u.kind == "periodic" and len(inside) == len(u.indices):
            period = 1.0 / u.freq if u.freq > 0 else float("inf")
            if period >= T / 3:
                long_periods.append(period)
                trend += inside
                continue
            wc = float(abs(W[inside[0], inside[1]])) if len(inside) == 2 else None
            periodic.append(
                {
                    "name": "",
                    "kind": "periodic",
                    "indices": inside,
                    "share": float(lam[inside].sum() / total),
                    "period": float(period),
                    "w_correlation": wc,
                    "significance": u.ratio,
                }
            )
        else:
            other += inside
    if long_periods:
        notes.append(
            "oscillation(s) with period "
            + ", ".join(f"{p:.4g}" for p in long_periods)
            + f" (fewer than 3 cycles in {T} observations) counted as trend."
        )
    periodic.sort(key=lambda g: -g["share"])
    seen: dict[str, int] = {}
    for g in periodic:
        base = f"period {g['period']:.4g}"
        seen[base] = seen.get(base, 0) + 1
        g["name"] = base if seen[base] == 1 else f"{base} ({seen[base]})"
    groups: list[dict[str, Any]] = []
    if trend:
        groups.append(
            {
                "name": "trend",
                "kind": "trend",
                "indices": sorted(trend),
                "share": float(lam[trend].sum() / total),
                "period": None,
                "w_correlation": None,
                "significance": _mean_ratio(an, trend),
            }
        )
    groups += periodic
    if other:
        groups.append(
            {
                "name": "other signal",
                "kind": "other",
                "indices": sorted(other),
                "share": float(lam[other].sum() / total),
                "period": None,
                "w_correlation": None,
                "significance": _mean_ratio(an, other),
            }
        )
    noise = [i for i in range(len(lam)) if i not in sig]
    groups.append(
        {
            "name": "noise",
            "kind": "noise",
            "indices": noise,
            "share": float(max(0.0, 1.0 - lam[sorted(sig)].sum() / total)),
            "period": None,
            "w_correlation": None,
            "significance": None,
        }
    )
    return groups, notes


def _mean_ratio(an: Analysis, idx: list[int]) -> float:
    ratios = [u.ratio for u in an.units for i in u.indices if i in idx]
    return float(np.mean(ratios)) if ratios else 0.0


def _components(
    an: Analysis,
    groups: list[dict[str, Any]],
    y: np.ndarray,
    mean: np.ndarray,
    scale: np.ndarray,
    names: list[str],
) -> list[dict[str, Any]]:
    """Per channel: trend, periodic groups, other and residual in channel units."""
    T = y.shape[0]
    out = []
    for c, name in enumerate(names):

        def rec(idx: list[int], c: int = c) -> np.ndarray:
            return an.F[idx, :, c].sum(axis=0) * scale[c] if idx else np.zeros(T)

        trend = mean[c] + rec(next((g["indices"] for g in groups if g["kind"] == "trend"), []))
        periodic = {g["name"]: rec(g["indices"]) for g in groups if g["kind"] == "periodic"}
        other_idx = next((g["indices"] for g in groups if g["kind"] == "other"), None)
        other = rec(other_idx) if other_idx else None
        resid = (
            y[:, c] - trend - sum(periodic.values(), np.zeros(T)) - (0 if other is None else other)
        )
        out.append(
            {
                "channel": name,
                "mean": float(mean[c]),
                "trend": trend.tolist(),
                "periodic": {k: v.tolist() for k, v in periodic.items()},
                "other": None if other is None else other.tolist(),
                "residual": resid.tolist(),
            }
        )
    return out


def _forecast(
    series: Series,
    an: Analysis,
    y: np.ndarray,
    z: np.ndarray,
    mean: np.ndarray,
    scale: np.ndarray,
    args: SSAArgs,
) -> tuple[list[Forecast], list[str], float | None]:
    """Recurrent forecast of each channel's signal with an interval from past forecast errors."""
    from scipy.stats import norm

    h = args.horizon
    U = an.dec.U[:, an.signal]
    nu2 = float(U[-1] @ U[-1]) if an.signal else None
    if h == 0:
        return [], [], nu2
    notes: list[str] = []
    labels = series.future_labels(h)
    zq = float(norm.ppf(0.5 + args.level / 2))
    R = core.lrr(U) if an.signal else None
    if an.signal and R is None:
        return (
            [],
            [
                "no forecast: the signal subspace is vertical (its eigenvectors span the last "
                "coordinate), so no linear recurrence continues it. Try a larger window or a smaller rank."
            ],
            nu2,
        )
    out = []
    used_backtest = True
    for c, name in enumerate(series.names):
        if R is None:
            mean_z = np.zeros(h)
            err = None
        else:
            sig = an.F[an.signal, :, c].sum(axis=0)
            mean_z = core.recurrent_forecast(sig[None], R, h)[0]
            err = core.backtest_errors(z[:, c], sig, R, h)
        if err is None:
            used_backtest = False
            resid = z[:, c] - (an.F[an.signal, :, c].sum(axis=0) if an.signal else 0.0)
            spread = np.full(h, float(np.std(resid)))
        else:
            spread = np.sqrt(np.mean(err**2, axis=0))
        m = mean[c] + scale[c] * mean_z
        half = zq * scale[c] * spread
        out.append(
            Forecast(
                channel=name,
                steps=labels,
                mean=m.tolist(),
                lower=(m - half).tolist(),
                upper=(m + half).tolist(),
                level=args.level,
            )
        )
    if R is None:
        notes.append(
            "no signal to continue: the forecast is the mean, the interval the noise spread."
        )
    elif used_backtest:
        notes.append(
            f"forecast by recurrent SSA (linear recurrence of order {len(R)} from the signal "
            f"eigenvectors); the {args.level:.0%} interval is +-z times the RMSE of the same "
            "recurrence run from up to 200 past origins at each step ahead (in-sample: somewhat "
            "optimistic, the signal was estimated from all the data)."
        )
    else:
        notes.append(
            f"forecast by recurrent SSA; too few past origins for a backtest (horizon {h}, window "
            f"{an.dec.U.shape[0]}), so the {args.level:.0%} interval is +-z times the residual "
            "standard deviation at every step (it ignores the growth of error with the horizon)."
        )
    if h > series.n_samples // 2:
        notes.append(f"horizon {h} exceeds half the series; a long recurrent extrapolation.")
    return out, notes, nu2


def _fit_measures(
    groups: list[dict[str, Any]],
    comps: list[dict[str, Any]],
    y: np.ndarray,
    mask: np.ndarray,
    names: list[str],
) -> dict[str, float]:
    share = {
        k: sum(g["share"] for g in groups if g["kind"] == k) for k in ("trend", "periodic", "other")
    }
    out = {
        "signal_share": float(share["trend"] + share["periodic"] + share["other"]),
        "trend_share": float(share["trend"]),
        "periodic_share": float(share["periodic"]),
    }
    rmses = []
    for c, comp in enumerate(comps):
        resid = np.asarray(comp["residual"])[~mask[:, c]]
        rmse = float(np.sqrt(np.mean(resid**2)))
        rmses.append(rmse)
        if len(comps) > 1:
            out[f"rmse[{names[c]}]"] = rmse
    out["rmse"] = float(np.mean(rmses))
    sd = np.std(y, axis=0)
    out["residual_over_data_std"] = float(
        np.mean([r / s if s > 0 else 0.0 for r, s in zip(rmses, sd, strict=True)])
    )
    return out


def _diagnostics(
    an: Analysis,
    groups: list[dict[str, Any]],
    L: int,
    T: int,
    N: int,
    period: int | None,
    iterations: int,
    nu2: float | None,
    names: list[str],
) -> dict[str, Any]:
    W = np.abs(core.w_correlation(an.F, L)) if len(an.dec.sigma) else np.zeros((0, 0))
    sig_groups = [g["indices"] for g in groups if g["kind"] != "noise"]
    noise = next(g["indices"] for g in groups if g["kind"] == "noise")
    between = max(
        (
            float(W[np.ix_(a, b)].max())
            for i, a in enumerate(sig_groups)
            for b in sig_groups[i + 1 :]
        ),
        default=0.0,
    )
    sig_all = [i for g in sig_groups for i in g]
    to_noise = float(W[np.ix_(sig_all, noise)].max()) if sig_all and noise else 0.0
    return {
        "decomposition": "lag-covariance eigendecomposition"
        if L <= core.COV_LIMIT
        else "randomized SVD (seeded) with FFT products",
        "components_computed": len(an.dec.sigma),
        "detected_period": period,
        "red_noise_null": {
            n: {"lag1_autocorrelation": p, "variance_scaled": v}
            for n, (p, v) in zip(names, an.ar1, strict=True)
        },
        "significance_threshold": an.factor,
        "max_w_correlation_between_signal_groups": between,
        "max_w_correlation_signal_noise": to_noise,
        "lrr_verticality_nu2": nu2,
        "gap_fill_iterations": iterations,
        "n_samples": T,
        "n_channels": N,
    }


def _candidates(an: Analysis, L: int) -> list[Candidate]:
    crit = f"eigenvalue / expected red-noise eigenvalue (signal when >= {an.factor:.2f})"
    sig = set(an.signal)
    out = []
    for u in an.units:
        idx = "-".join(str(i) for i in u.indices)
        if u.kind == "periodic":
            what = f"oscillation, period {1 / u.freq:.4g}" if u.freq > 0 else "oscillation"
        else:
            what = {"trend": "slow (trend)", "other": "unstructured"}[u.kind]
        out.append(
            Candidate(
                name=f"ET {idx}: {what}",
                score=u.ratio,
                criterion=crit,
                selected=all(i in sig for i in u.indices),
            )
        )
    return out


def _model_text(groups: list[dict[str, Any]], L: int, an: Analysis, N: int) -> str:
    parts = []
    for g in groups:
        if g["kind"] == "noise":
            continue
        n = len(g["indices"])
        parts.append(f"{g['name']} ({n} ET)" if g["kind"] != "periodic" else g["name"])
    kind = "MSSA" if N > 1 else "SSA"
    body = " + ".join(parts) if parts else "no signal above red noise"
    return f"{kind} (window {L}, rank {len(an.signal)}): {body} + noise"
