"""Order selection as auto.arima does it (Hyndman & Khandakar 2008).

The seasonal period comes from the time frequency or the data; D from the seasonal strength
(F_S > 0.64, auto.arima's default ``seasonal.test="seas"``); d from repeated KPSS tests
(auto.arima's ``ndiffs``); then a stepwise search over p, q, P, Q and the constant ranked by an
information criterion of CSS fits (see _arima_css). Periods too long for seasonal ARIMA lags
are modelled with Fourier terms instead (dynamic harmonic regression, as Hyndman recommends).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace

import numpy as np

from chronoken import features
from chronoken.tools._arima_css import CssFit, Spec, css_fit, difference

#: auto.arima's threshold on the seasonal strength F_S for one seasonal difference.
SEASONAL_STRENGTH_THRESHOLD = 0.64
#: Longest period modelled with seasonal ARIMA lags; longer ones get Fourier terms.
MAX_SARIMA_PERIOD = 24
#: Longest period modelled at all (Fourier terms beyond this would need too much data).
MAX_PERIOD = 400
#: Most Fourier harmonics tried for a long period.
MAX_FOURIER_K = 10

#: Natural cycles (in observations) of each pandas base frequency, the primary one first.
_CALENDAR_PERIODS = {
    **dict.fromkeys(("Q", "QS", "QE", "BQ", "BQS", "BQE"), (4,)),
    **dict.fromkeys(("M", "MS", "ME", "BM", "BMS", "BME", "CBMS", "CBME"), (12,)),
    **dict.fromkeys(("SM", "SMS", "SME"), (24,)),
    "W": (52,),
    "D": (7, 365),
    "B": (5,),
    "C": (5,),
}


@dataclass
class Limits:
    """Inclusive bounds of the search over p, q, P, Q (equal bounds fix an order)."""

    p: tuple[int, int] = (0, 5)
    q: tuple[int, int] = (0, 5)
    P: tuple[int, int] = (0, 2)
    Q: tuple[int, int] = (0, 2)

    def allows(self, spec: Spec) -> bool:
        return all(lo <= getattr(spec, k) <= hi for k, (lo, hi) in self.__dict__.items())

    def clip(self, spec: Spec) -> Spec:
        vals = {k: int(np.clip(getattr(spec, k), lo, hi)) for k, (lo, hi) in self.__dict__.items()}
        return replace(spec, **vals)


@dataclass
class Search:
    """What the stepwise search tried, in order, and the best fit under the criterion."""

    fits: list[CssFit] = field(default_factory=list)
    best: CssFit | None = None
    capped: bool = False


def calendar_periods(freq: str | None) -> tuple[int, ...]:
    """Natural cycles in observations for a pandas frequency string, the primary first:
    quarterly (4,), monthly (12,), weekly (52,), daily (7, 365), business-daily (5,), sub-daily
    (per day, per week); () when unknown, numeric or yearly."""
    if not freq or "(" in freq:
        return ()
    import pandas as pd

    try:
        offset = pd.tseries.frequencies.to_offset(freq)
    except ValueError:
        return ()
    base = freq.lstrip("0123456789").split("-")[0]
    if getattr(offset, "n", 1) == 1 and base in _CALENDAR_PERIODS:
        return _CALENDAR_PERIODS[base]
    try:
        nanos = pd.Timedelta(offset).value
    except (ValueError, TypeError):
        return ()
    hour, day = 3_600 * 10**9, 86_400 * 10**9
    if not (0 < nanos < day and day % nanos == 0):
        return ()
    cycles = (int(day // nanos), int(7 * day // nanos))
    if nanos < hour and hour % nanos == 0 and hour // nanos >= 2:
        cycles = (*cycles, int(hour // nanos))  # minutes: the hour, when a day is too long
    return cycles


def exact_period(s: int, freq: str | None) -> float:
    """The calendar-exact length of a yearly cycle the integer period s stands for (weekly data:
    365.25/7 = 52.18, daily data: 365.25), else s; Fourier terms can use a fractional period."""
    base = (freq or "").lstrip("0123456789").split("-")[0]
    if base == "W" and s in (52, 53):
        return 365.25 / 7
    if base == "D" and 364 <= s <= 366:
        return 365.25
    return float(s)


def seasonal_strength(y: np.ndarray, s: int) -> float:
    """F_S = max(0, 1 - var(R) / var(S + R)) from an STL decomposition of y (shape (n,))."""
    if s < 2 or len(y) < 2 * s + 1 or np.std(y) == 0:
        return 0.0
    from statsmodels.tsa.seasonal import STL

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = STL(y, period=s, robust=False).fit()
    rem, sea = np.asarray(res.resid), np.asarray(res.seasonal)
    v = float(np.var(sea + rem))
    return 0.0 if v == 0 else max(0.0, 1.0 - float(np.var(rem)) / v)


def choose_period(y: np.ndarray, freq: str | None, min_cycles: int = 3) -> tuple[int, str]:
    """The seasonal period of a gap-free series y (shape (n,)) and how it was found.

    With a calendar frequency the candidates are its natural cycles (daily data: week and year),
    the one with the larger (fixed-pattern) seasonal strength winning; a cycle found in dated
    data at another length is a business-cycle-like oscillation, not a season, and is left to
    the AR terms. Without one (numbers, yearly or irregular data) the period is detected in the
    data. Returns (1, reason) when there is none.
    """
    n = len(y)
    cal = calendar_periods(freq)
    if cal:
        found = {s: f"from the time frequency ({freq})" for s in cal}
    else:
        det = features.detect_period(y)
        found = {det: "detected in the data (periodogram peak confirmed by the ACF)"} if det else {}
    usable = {s: how for s, how in found.items() if 2 <= s <= MAX_PERIOD and n >= min_cycles * s}
    if not usable:
        if found:
            s = min(found)
            return 1, (
                f"period {s} found but the series is too short for it ({n} < {min_cycles} "
                f"x {s}) or it exceeds {MAX_PERIOD}"
            )
        return 1, "no seasonal period in the time frequency or the data"
    if len(usable) == 1:
        s = next(iter(usable))
        return s, usable[s]
    scores = seasonal_means_aic(y, list(usable))
    s = min(scores, key=lambda k: (scores[k], k))
    return s, f"{usable[s]}; AIC of its seasonal pattern {scores[s]:.1f} beat " + ", ".join(
        f"period {k} ({v:.1f})" for k, v in scores.items() if k != s
    )


def seasonal_means_aic(y: np.ndarray, periods: list[int]) -> dict[int, float]:
    """AIC of a fixed seasonal pattern (one mean per phase) for each period, fitted to y
    (shape (n,)) minus a moving-average trend over the longest period: n log(RSS/n) + 2s.

    A multiple of a period (168 hours vs 24) repeats the shorter pattern and always fits a
    little better; the penalty of its extra phases makes it win only with real extra structure.
    """
    n = len(y)
    window = max(periods)
    kernel = (
        np.r_[0.5, np.ones(window - 1), 0.5] / window
        if window % 2 == 0
        else np.ones(window) / window
    )
    pad = len(kernel) // 2
    trend = np.convolve(np.r_[np.full(pad, y[0]), y, np.full(pad, y[-1])], kernel, mode="valid")
    detr = y - trend[:n]
    out = {}
    for s in periods:
        phase = np.arange(n) % s
        means = np.bincount(phase, detr, minlength=s) / np.maximum(
            np.bincount(phase, minlength=s), 1
        )
        rss = float(np.sum((detr - means[phase]) ** 2))
        out[s] = n * np.log(max(rss, 1e-300) / n) + 2.0 * s
    return out


def kpss_pvalue(x: np.ndarray) -> float:
    """p-value of the KPSS level-stationarity test with auto.arima's lag rule trunc(3 sqrt(n)/13);
    statsmodels interpolates it within [0.01, 0.1]."""
    from statsmodels.tsa.stattools import kpss

    nlags = max(1, int(3 * np.sqrt(len(x)) / 13))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(kpss(x, regression="c", nlags=nlags)[1])


def ndiffs(y: np.ndarray, max_d: int = 2, alpha: float = 0.05) -> tuple[int, list[float]]:
    """Number of first differences: difference while KPSS rejects stationarity at ``alpha``.

    Returns (d, KPSS p-values of the series differenced 0, 1, ... times)."""
    pvals: list[float] = []
    x = np.asarray(y, dtype=float)
    d = 0
    while True:
        if len(x) < 8 or np.std(x) == 0:
            break
        p = kpss_pvalue(x)
        pvals.append(p)
        if p >= alpha or d >= max_d:
            break
        x = np.diff(x)
        d += 1
    return d, pvals


def fourier(n_or_t: int | np.ndarray, s: float, k: int) -> np.ndarray:
    """Fourier terms of shape (len(t), 2k or 2k-1): sin and cos of 2 pi j t / s, j = 1..k
    (the sine at j = s/2 is identically zero and dropped). t defaults to 0..n-1."""
    t = np.arange(n_or_t, dtype=float) if np.isscalar(n_or_t) else np.asarray(n_or_t, dtype=float)
    cols = []
    for j in range(1, k + 1):
        if 2 * j != s:
            cols.append(np.sin(2 * np.pi * j * t / s))
        cols.append(np.cos(2 * np.pi * j * t / s))
    return np.column_stack(cols) if cols else np.zeros((len(t), 0))


def fourier_names(s: float, k: int) -> list[str]:
    """Names of the columns of ``fourier(n, s, k)``: 'sin1(52.18)', 'cos1(52.18)', ..."""
    names = []
    for j in range(1, k + 1):
        if 2 * j != s:
            names.append(f"sin{j}({s:g})")
        names.append(f"cos{j}({s:g})")
    return names


def choose_fourier_k(y: np.ndarray, s: float, d: int) -> tuple[int, list[tuple[int, float]]]:
    """Harmonics K in 0..min(s//2, MAX_FOURIER_K) (nearly) minimising the AICc of a CSS fit of
    ARIMA(2,d,0) errors (with a constant when d = 0) on K Fourier pairs; the AR errors keep
    autocorrelated noise from passing for extra harmonics (plain regression overfits K)."""
    w = difference(y, d, 0, 1)
    spec = Spec(2, d, 0, constant=d == 0)
    scores: list[tuple[int, float]] = []
    for k in range(0, min(int(s // 2), MAX_FOURIER_K) + 1):
        xw = difference(fourier(len(y), s, k), d, 0, 1) if k else None
        fit = css_fit(w, spec, xw)
        scores.append((k, fit.aicc if np.isfinite(fit.aicc) else float("inf")))
    # Parsimony: the fewest harmonics within 2 AICc units of the best (Burnham & Anderson's
    # "substantial support"), so chance gains from extra sinusoids do not add terms.
    low = min(v for _, v in scores)
    best = min(k for k, v in scores if v <= low + 2.0)
    return best, scores


def stepwise(
    w: np.ndarray,
    d: int,
    D: int,
    s: int,
    limits: Limits,
    criterion: str,
    max_models: int,
    xw: np.ndarray | None = None,
    constant: bool | None = None,
) -> Search:
    """Hyndman-Khandakar stepwise search on the differenced series w (shape (n,)).

    Starts from (2,d,2)(1,D,1), (0,d,0)(0,D,0), (1,d,0)(1,D,0), (0,d,1)(0,D,1) and the null model
    without constant, then moves to the first neighbour (P, Q, p, q by +-1, singly and in pairs,
    or the constant toggled) that lowers the criterion, until no neighbour does or
    ``max_models`` fits were made. ``constant`` None lets the search choose it (allowed when
    d + D <= 1); True/False fixes it.
    """
    allow_const = d + D <= 1 if constant is None else constant
    base_const = allow_const if constant is None else constant
    seasonal = s > 1
    search = Search()
    tried: dict[Spec, CssFit] = {}

    def visit(spec: Spec) -> bool:
        """Fit spec if new and allowed; True when it became the best."""
        if spec in tried or not limits.allows(spec):
            return False
        if len(tried) >= max_models:
            search.capped = True
            return False
        fit = css_fit(w, spec, xw)
        tried[spec] = fit
        search.fits.append(fit)
        if search.best is None or fit.score(criterion) < search.best.score(criterion):
            search.best = fit
            return True
        return False

    def mk(p: int, q: int, P: int, Q: int, c: bool) -> Spec:
        P, Q = (P, Q) if seasonal else (0, 0)
        return limits.clip(Spec(p, d, q, P, D, Q, s if seasonal else 1, c))

    starts = [
        mk(2, 2, 1, 1, base_const),
        mk(0, 0, 0, 0, base_const),
        mk(1, 0, 1, 0, base_const),
        mk(0, 1, 0, 1, base_const),
    ]
    if base_const and constant is None:
        starts.append(mk(0, 0, 0, 0, False))
    for spec in starts:
        visit(spec)
    moves = [
        (0, 0, -1, 0),
        (0, 0, 0, -1),
        (0, 0, 1, 0),
        (0, 0, 0, 1),
        (0, 0, -1, -1),
        (0, 0, -1, 1),
        (0, 0, 1, -1),
        (0, 0, 1, 1),
        (-1, 0, 0, 0),
        (0, -1, 0, 0),
        (1, 0, 0, 0),
        (0, 1, 0, 0),
        (-1, -1, 0, 0),
        (-1, 1, 0, 0),
        (1, -1, 0, 0),
        (1, 1, 0, 0),
    ]
    improved = True
    while improved and not search.capped and search.best is not None:
        improved = False
        b = search.best.spec
        neighbours = [
            Spec(b.p + dp, d, b.q + dq, b.P + dP, D, b.Q + dQ, b.s, b.constant)
            for dp, dq, dP, dQ in moves
            if seasonal or (dP == 0 and dQ == 0)
        ]
        if constant is None and allow_const:
            neighbours.append(replace(b, constant=not b.constant))
        for spec in neighbours:
            if min(spec.p, spec.q, spec.P, spec.Q) < 0:
                continue
            if visit(spec):
                improved = True
                break
    return search
