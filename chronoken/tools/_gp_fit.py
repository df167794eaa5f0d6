"""Gaussian-process regression: kernel selection by marginal likelihood, prediction, forecast.

Time is normalised to x = (t - t_mid) / span (span 1), y per channel to zero mean and unit
variance. Hyperparameters maximise the exact log marginal likelihood (LML) with L-BFGS-B from
data-derived starts plus seeded random restarts; candidates are compared by BIC = -2 LML + k ln n.

Limits, stated in the notes of every result that uses them:
- hyperparameters: at most ``HYPER_N`` points enter the likelihood; longer series use
  ``N_BLOCKS`` contiguous blocks (start, middle, end), treated as independent (a block-composite
  likelihood), thinned evenly inside a block when a long period needs a longer block;
- prediction: exact up to ``EXACT_N`` observations; beyond, each point is predicted by an exact GP
  on the ``WINDOW`` observations around it (local experts), the forecast by the last window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from chronoken import features
from chronoken.tools import _gp_kernels as gk
from chronoken.tools._gp_infer import WINDOW, optimise, posterior, posterior_local
from chronoken.tools.base import Candidate, Forecast

if TYPE_CHECKING:
    from chronoken.series import Series
    from chronoken.tools.gpr import GPRArgs

HYPER_N = 300
N_BLOCKS = 3
EXACT_N = 2000


# ------------------------------------------------------------------------------ data helpers
def period_starts(
    t: np.ndarray, y: np.ndarray, regular: bool, acf_period: float | None
) -> list[float]:
    """Up to two candidate periods (time units): the ACF-confirmed period (when given) and the
    strongest periodogram peaks, refined on a fine frequency grid because the likelihood is
    sharply peaked in the period (a start a few percent off can end in another mode).

    t, y : arrays of shape (n,), no NaN. regular: t equally spaced (zero-padded FFT); else the
    classical periodogram |sum_t y e^(-2 pi i f t)|^2 on at most 1000 of the points.
    """
    n = len(t)
    span = float(t[-1] - t[0])
    dt = float(np.median(np.diff(t)))
    resid = y - np.polyval(np.polyfit(t - t[0], y, 1), t - t[0])
    f_lo, f_hi = 2.0 / span, 0.5 / dt
    if regular:
        freqs = np.fft.rfftfreq(16 * n, d=dt)
        power = np.abs(np.fft.rfft(resid * np.hanning(n), 16 * n)) ** 2
    else:
        idx = np.unique(np.linspace(0, n - 1, min(n, 1000)).astype(int))
        freqs = np.linspace(f_lo, f_hi, min(8000, 16 * len(idx)))
        power = _dft_power(t[idx] - t[0], resid[idx], freqs)
    ok = (freqs >= f_lo) & (freqs <= f_hi)
    is_max = np.r_[True, power[1:] >= power[:-1]] & np.r_[power[:-1] >= power[1:], True]
    peaks = sorted(np.flatnonzero(ok & is_max), key=lambda i: -power[i])
    out: list[float] = []
    if acf_period:  # the periodogram maximum within 15% of the ACF period
        near = [i for i in peaks if abs(1.0 / freqs[i] - acf_period) <= 0.15 * acf_period]
        out.append(float(1.0 / freqs[near[0]]) if near else float(acf_period))
    for i in peaks:
        p = 1.0 / freqs[i]
        if all(abs(p - q) > 0.15 * q for q in out):
            out.append(float(p))
        if len(out) >= 2:
            break
    return out or [span / 10.0]


def _dft_power(t: np.ndarray, y: np.ndarray, freqs: np.ndarray) -> np.ndarray:
    """|sum_k y_k exp(-2 pi i f t_k)|^2 for each frequency (irregular t), in chunks."""
    out = np.empty(len(freqs))
    for s in range(0, len(freqs), 500):
        f = freqs[s : s + 500]
        out[s : s + 500] = np.abs(np.exp(-2j * np.pi * np.outer(f, t)) @ y) ** 2
    return out


def hyper_blocks(
    x: np.ndarray, y: np.ndarray, period_steps: float | None
) -> tuple[list[np.ndarray], str]:
    """Index arrays of the points whose likelihood sets the hyperparameters, and a description."""
    n = len(x)
    if n <= HYPER_N:
        return [np.arange(n)], f"all {n} observations (exact likelihood)"
    per_block = HYPER_N // N_BLOCKS
    span = per_block
    if period_steps:
        span = int(min(max(per_block, np.ceil(4 * period_steps)), n // N_BLOCKS))
    step = max(1, int(np.ceil(span / per_block)))
    starts = np.linspace(0, n - span, N_BLOCKS).astype(int)
    blocks = [np.arange(s, s + span, step) for s in starts]
    thin = f", every {step}th point" if step > 1 else ""
    return blocks, (
        f"{N_BLOCKS} contiguous blocks of {span} observations (start, middle, end{thin}; "
        f"{sum(len(b) for b in blocks)} points) treated as independent"
    )


# ------------------------------------------------------------------------------ one channel
@dataclass
class ChannelFit:
    spec: gk.Spec
    theta: np.ndarray
    lml: float
    candidates: list[dict[str, Any]]
    n_used: int
    converged: bool


def select(
    x: np.ndarray,
    y: np.ndarray,
    blocks: list[np.ndarray],
    scales: dict[str, float],
    periods: list[float],
    args: GPRArgs,
    seed: int,
) -> ChannelFit:
    """Fit every candidate family (or the requested one) and keep the best by the criterion.

    Stage 1: each family from its data-derived starts (one per candidate period for periodic
    terms). Stage 2: the two best families get ``args.restarts`` seeded random starts each
    (log-uniform within the bounds, period jittered by 2% around a candidate period); a restart
    replaces the fit when its likelihood is higher.
    """
    data = _block_data(x, y, blocks)
    n_used = int(sum(len(b) for b in blocks))
    families = list(gk.FAMILIES) if args.kernel == "auto" else [args.kernel]
    rng = np.random.default_rng(seed)
    fits: dict[str, tuple[gk.Spec, np.ndarray, float, bool]] = {}
    for fam in families:
        spec = gk.make_spec(fam, {**scales, "period": periods[0]})
        starts = [spec.theta0]
        if "periodic" in spec.terms:
            j = spec.index("periodic.periodicity")
            for p in periods[1:]:
                th = spec.theta0.copy()
                th[j] = np.log(p)
                starts.append(th)
        elif len(spec.terms) == 1 and spec.terms[0] != "linear":
            # a short length scale too (a quarter of the leading period): from the default
            # (a tenth of the span) the optimizer can stall in the flat, noise-only optimum
            th = spec.theta0.copy()
            th[spec.index(f"{spec.terms[0]}.length_scale")] = np.log(0.25 * periods[0])
            starts.append(th)
        fits[fam] = (spec, *optimise(spec, data["linear" not in spec.terms], starts))

    def score(fam: str) -> float:
        _, theta, value, _ = fits[fam]
        return _bic(value, len(theta), n_used) if args.criterion == "bic" else -value

    for fam in sorted(families, key=score)[:2]:
        spec, theta, value, ok = fits[fam]
        lo, hi = spec.log_bounds[:, 0], spec.log_bounds[:, 1]
        for _ in range(args.restarts):
            th = rng.uniform(lo, hi)
            if "periodic" in spec.terms:
                j = spec.index("periodic.periodicity")
                th[j] = np.log(periods[int(rng.integers(len(periods)))]) + rng.uniform(-0.02, 0.02)
            t2, v2, ok2 = optimise(spec, data["linear" not in spec.terms], [th])
            if v2 > value:
                theta, value, ok = t2, v2, ok2
        fits[fam] = (spec, theta, value, ok)
    cands = []
    for fam in families:
        spec, theta, value, _ = fits[fam]
        k = len(theta)
        cands.append(
            {
                "family": fam,
                "lml": value,
                "bic": _bic(value, k, n_used),
                "k": k,
                "score": score(fam),
            }
        )
    best = min(families, key=score)
    spec, theta, value, ok = fits[best]
    return ChannelFit(spec, theta, value, cands, n_used, ok)


def _block_data(
    x: np.ndarray, y: np.ndarray, blocks: list[np.ndarray]
) -> dict[bool, list[tuple[gk.Pairs, np.ndarray]]]:
    """Likelihood data for stationary kernels (key True: blocks of identical spacing stacked as
    columns of one y) and for kernels with a linear term (key False: one entry per block)."""
    each = [(gk.Pairs(x[b]), y[b]) for b in blocks]
    gaps = [np.diff(x[b]) for b in blocks]
    same = all(len(g) == len(gaps[0]) and np.allclose(g, gaps[0], rtol=1e-9) for g in gaps)
    stacked = (
        [(each[0][0], np.column_stack([y[b] for b in blocks]))]
        if same and len(blocks) > 1
        else each
    )
    return {True: stacked, False: each}


def _bic(lml_value: float, k: int, n: int) -> float:
    return -2.0 * lml_value + k * float(np.log(n))


# ------------------------------------------------------------------------------ the tool
@dataclass
class Grid:
    """Time axes shared by the channels: observation times, future times, normalisation."""

    t: np.ndarray  # (T,) time in series.t_numeric() units
    x: np.ndarray  # (T,) normalised time (t - t_mid) / span
    x_future: np.ndarray  # (h,)
    dt: float  # median step
    span: float
    regular: bool
    unit: str
    labels: list[str]
    z: float  # normal quantile of the band


def make_grid(series: Series, args: GPRArgs) -> Grid:
    from scipy.stats import norm

    t = series.t_numeric()
    dt = float(np.median(np.diff(t)))
    span = float(t[-1] - t[0])
    mid = 0.5 * (t[0] + t[-1])
    h = args.horizon
    unit = "days" if series.is_datetime else ("time units" if series.time is not None else "steps")
    return Grid(
        t=t,
        x=(t - mid) / span,
        x_future=(t[-1] + dt * np.arange(1, h + 1) - mid) / span,
        dt=dt,
        span=span,
        regular=bool(np.allclose(np.diff(t), dt, rtol=1e-6)),
        unit=unit,
        labels=series.future_labels(h) if h else [],
        z=float(norm.ppf(0.5 + args.level / 2)),
    )


def fit(series: Series, args: GPRArgs) -> dict[str, Any]:
    """One GP per channel; returns the fields of GPRResult (less ``tool``)."""
    import scipy.linalg
    import scipy.optimize  # noqa: F401  (load BLAS users before limiting threads, see below)
    from threadpoolctl import threadpool_limits

    g = make_grid(series, args)
    N = series.n_channels
    notes: list[str] = []
    if not g.regular:
        notes.append(
            "irregular time stamps are used as they are; the forecast steps are the median spacing."
        )
    out: dict[str, Any] = {"channels": [], "forecast": [], "selection": [], "fit": {}}
    diag: dict[str, Any] = {"time_unit": g.unit, "regular_time": g.regular, "channels": {}}
    approx: set[str] = set()
    # One BLAS thread: on a shared 2-core machine OpenBLAS threads on small matrices are up to
    # 100x slower (a 200 x 200 Cholesky: 0.4 s threaded, 0.6 ms not). The limit only reaches
    # libraries already loaded, hence the imports above.
    with threadpool_limits(limits=1, user_api="blas"):
        for c, name in enumerate(series.names):
            ch = _fit_channel(series, c, g, args, notes, approx)
            prefix = f"[{name}]" if N > 1 else ""
            out["channels"].append(ch["channel"])
            if ch["forecast"] is not None:
                out["forecast"].append(ch["forecast"])
            for cand in ch["selection"]:
                cand.name = f"{name}: {cand.name}" if N > 1 else cand.name
                out["selection"].append(cand)
            out["fit"].update({f"{k}{prefix}": v for k, v in ch["fit"].items()})
            diag["channels"][name] = ch["diagnostics"]
    notes += _limit_notes(approx, args)
    chans = out["channels"]
    fams = sorted({c["family"] for c in chans if c["family"] != "constant"})
    model = "GP regression, " + (
        f"kernel {chans[0]['kernel']}" if N == 1 else f"one GP per channel ({', '.join(fams)})"
    )
    return {
        "model": model,
        "params": {c["channel"]: {"family": c["family"], **c["hyperparameters"]} for c in chans},
        "diagnostics": diag,
        "notes": notes,
        "level": args.level,
        "time_unit": g.unit,
        **out,
    }


def _fit_channel(
    series: Series, c: int, g: Grid, args: GPRArgs, notes: list[str], approx: set[str]
) -> dict[str, Any]:
    """Select, fit and predict one channel; appends its notes, records approximations used."""
    name = series.names[c]
    T, h = series.n_samples, args.horizon
    v = series.values[:, c]
    obs = ~np.isnan(v)
    y_mean, y_std = float(v[obs].mean()), float(v[obs].std())
    if y_std == 0 or obs.sum() < 3:
        notes.append(
            f"channel '{name}' is constant (or nearly empty): reported as its mean, no GP."
        )
        fc = (
            Forecast(
                channel=name,
                steps=g.labels,
                mean=[y_mean] * h,
                lower=[y_mean] * h,
                upper=[y_mean] * h,
                level=args.level,
            )
            if h
            else None
        )
        return {
            "channel": _flat_channel(name, y_mean, T),
            "forecast": fc,
            "selection": [],
            "fit": {},
            "diagnostics": {"constant": True},
        }
    x, yn = g.x[obs], (v[obs] - y_mean) / y_std
    if g.regular:  # gaps (if any) interpolated on the grid for the FFT and the ACF
        acf_p = series.period(c)
        filled = features.fill_gaps(v)
        auto = period_starts(g.t, filled, True, acf_p * g.dt if acf_p else None)
    else:
        auto = period_starts(g.t[obs], v[obs], False, None)
    if args.period:
        periods = [float(args.period), *[p for p in auto if abs(p / args.period - 1) > 0.15][:1]]
    else:
        periods = auto[:2]
    p_steps = periods[0] / g.dt
    blocks, how = hyper_blocks(x, yn, p_steps if p_steps < len(x) / 4 else None)
    if len(blocks) > 1:
        approx.add("hyper")
    block_span = max(float(x[b[-1]] - x[b[0]]) for b in blocks)
    scales = {"dt": g.dt / g.span, "period_max": max(0.5 * block_span, 4 * g.dt / g.span)}
    cf = select(x, yn, blocks, scales, [p / g.span for p in periods], args, seed=c)
    xs = np.concatenate([g.x, g.x_future])
    if len(x) <= EXACT_N:
        m, var = posterior(cf.spec, cf.theta, x, yn, xs)
        pred = "exact"
    else:
        m, var = posterior_local(cf.spec, cf.theta, x, yn, xs)
        pred = f"local exact GPs on windows of {WINDOW} observations"
        approx.add("pred")
    noise = gk.noise_level(cf.spec, cf.theta)
    sd = np.sqrt(var + noise) * y_std
    mean = m * y_std + y_mean
    lo, hi = mean - g.z * sd, mean + g.z * sd
    resid = v[obs] - mean[:T][obs]
    inside = float(np.mean((v[obs] >= lo[:T][obs]) & (v[obs] <= hi[:T][obs])))
    period = None
    if "periodic" in cf.spec.terms:
        period = float(np.exp(cf.theta[cf.spec.index("periodic.periodicity")]) * g.span)
    channel = {
        "channel": name,
        "family": cf.spec.family,
        "kernel": gk.describe(cf.spec, cf.theta, g.span, y_std, g.unit),
        "sklearn_kernel": str(gk.to_sklearn(cf.spec, cf.theta)),
        "period": period,
        "hyperparameters": _hyper_in_units(cf.spec, cf.theta, g.span, y_std),
        "noise_std": float(np.sqrt(noise) * y_std),
        "mean": mean[:T].tolist(),
        "lower": lo[:T].tolist(),
        "upper": hi[:T].tolist(),
        "std": sd[:T].tolist(),
    }
    fc = None
    if h:
        fc = Forecast(
            channel=name,
            steps=g.labels,
            mean=mean[T:].tolist(),
            lower=lo[T:].tolist(),
            upper=hi[T:].tolist(),
            level=args.level,
        )
    crit = (
        "BIC = -2 LML + k ln n (lower is better)"
        if args.criterion == "bic"
        else "-LML (lower is better)"
    )
    selection = [
        Candidate(
            name=cd["family"],
            score=float(cd["score"]) if np.isfinite(cd["score"]) else None,
            criterion=crit,
            selected=cd["family"] == cf.spec.family,
        )
        for cd in cf.candidates
    ]
    best = next(cd for cd in cf.candidates if cd["family"] == cf.spec.family)
    if (~obs).any():
        notes.append(
            f"channel '{name}': {int((~obs).sum())} missing value(s) are left out of the fit; "
            "the GP predicts them (mean and band) like any other time."
        )
    return {
        "channel": channel,
        "forecast": fc,
        "selection": selection,
        "fit": {
            "lml": float(cf.lml),
            "bic": float(best["bic"]),
            "rmse": float(np.sqrt(np.mean(resid**2))),
            "noise_std": float(np.sqrt(noise) * y_std),
            "in_sample_coverage": inside,
        },
        "diagnostics": {
            "candidates": {
                cd["family"]: {"lml": cd["lml"], "bic": cd["bic"], "n_hyperparameters": cd["k"]}
                for cd in cf.candidates
            },
            "hyperparameter_data": how,
            "n_likelihood_points": cf.n_used,
            "prediction": pred,
            "optimizer_converged": cf.converged,
            "period_starts": [float(p) for p in periods],
            "missing": int((~obs).sum()),
        },
    }


def _flat_channel(name: str, value: float, T: int) -> dict[str, Any]:
    return {
        "channel": name,
        "family": "constant",
        "kernel": "constant",
        "sklearn_kernel": "",
        "period": None,
        "hyperparameters": {},
        "noise_std": 0.0,
        "mean": [value] * T,
        "lower": [value] * T,
        "upper": [value] * T,
        "std": [0.0] * T,
    }


def _hyper_in_units(
    spec: gk.Spec, theta: np.ndarray, span: float, y_std: float
) -> dict[str, float]:
    """Hyperparameters in data units: lengths and periods in time units, amplitudes as std."""
    out = {}
    for name, v in zip(spec.names, np.exp(theta), strict=True):
        if name.endswith(".amplitude"):
            out[name.replace("amplitude", "std")] = float(np.sqrt(v) * y_std)
        elif name == "noise_level":
            out["noise_std"] = float(np.sqrt(v) * y_std)
        elif name.endswith(("length_scale", "periodicity")) and not name.startswith(
            "periodic.length"
        ):
            out[name] = float(v * span)
        else:
            out[name] = float(v)
    return out


def _limit_notes(approx: set[str], args: GPRArgs) -> list[str]:
    notes = [
        f"candidates compared by {'BIC = -2 LML + k ln n' if args.criterion == 'bic' else 'log marginal likelihood'}; "
        f"each fitted by L-BFGS-B from data-derived starts (period from the periodogram) plus "
        f"{args.restarts} seeded random restart(s). The {args.level:.0%} band is for new "
        "observations (latent variance + fitted white noise)."
    ]
    if "hyper" in approx:
        notes.append(
            f"exact GPs cost O(n^3): above {HYPER_N} observations the hyperparameters are fitted on "
            f"{N_BLOCKS} contiguous blocks (start, middle, end) of at most {HYPER_N // N_BLOCKS} "
            "points treated as independent, so structure longer than a block is not learned from "
            "the likelihood."
        )
    if "pred" in approx:
        notes.append(
            f"above {EXACT_N} observations the prediction is a local approximation: each time is "
            f"predicted by the exact GP of the {WINDOW} observations around it, the forecast by "
            "the last window."
        )
    return notes
