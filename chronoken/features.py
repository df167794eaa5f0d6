"""Factual statistics of a series used by describe() and by the tools.

Every function takes a 1-D float array of shape (n_samples,) without NaN unless stated.
"""

from __future__ import annotations

import numpy as np


def fill_gaps(y: np.ndarray) -> np.ndarray:
    """Linearly interpolate NaN in a 1-D array of shape (n_samples,); edges take the nearest value."""
    y = np.asarray(y, dtype=float)
    mask = np.isnan(y)
    if not mask.any():
        return y.copy()
    idx = np.arange(len(y))
    out = y.copy()
    out[mask] = np.interp(idx[mask], idx[~mask], y[~mask])
    return out


def longest_gap(y: np.ndarray) -> int:
    """Length of the longest run of NaN in a 1-D array."""
    best = run = 0
    for missing in np.isnan(y):
        run = run + 1 if missing else 0
        best = max(best, run)
    return best


def detect_period(y: np.ndarray, max_period: int | None = None, min_acf: float = 0.2) -> int | None:
    """Strongest seasonal period in observations, or None when there is none.

    The candidate is the periodogram peak of the linearly detrended series (periods 2..n/2);
    it is accepted when the autocorrelation at that lag (or at the nearest local maximum of the
    ACF within +-10%) is at least ``min_acf``, so noise peaks are not called periods.
    """
    y = np.asarray(y, dtype=float)
    n = len(y)
    if n < 8 or np.std(y) == 0:
        return None
    max_period = min(max_period or n // 2, n // 2)
    t = np.arange(n)
    resid = y - np.polyval(np.polyfit(t, y, 1), t)
    # Remove slow drift further with a long moving average so a trend does not masquerade as a period.
    if resid.std() == 0:
        return None
    spec = np.abs(np.fft.rfft(resid - resid.mean())) ** 2
    freqs = np.fft.rfftfreq(n)
    valid = (freqs > 0) & (freqs >= 1.0 / max_period) & (freqs <= 0.5)
    if not valid.any():
        return None
    acf = _acf(resid, max_period + max_period // 10 + 2)
    order = np.argsort(spec[valid])[::-1]
    for k in order[:5]:
        f = freqs[valid][k]
        p0 = 1.0 / f
        lo, hi = max(2, int(np.floor(p0 * 0.9))), min(len(acf) - 1, int(np.ceil(p0 * 1.1)))
        if lo > hi:
            continue
        lag = lo + int(np.argmax(acf[lo : hi + 1]))
        if acf[lag] >= min_acf and lag <= max_period:
            return int(lag)
    return None


def _acf(y: np.ndarray, nlags: int) -> np.ndarray:
    y = y - y.mean()
    n = len(y)
    nlags = min(nlags, n - 1)
    denom = float(np.dot(y, y)) or 1.0
    # FFT autocovariance (zero-padded, so not circular): O(n log n) instead of O(n * nlags).
    size = 1 << (2 * n - 1).bit_length()
    spec = np.fft.rfft(y, size)
    return np.fft.irfft(spec * np.conj(spec), size)[: nlags + 1] / denom


def _moving_average(y: np.ndarray, window: int) -> np.ndarray:
    window = max(1, int(window))
    if window % 2 == 0:  # centred 2xMA for even windows, as in classical decomposition
        k = np.r_[0.5, np.ones(window - 1), 0.5] / window
    else:
        k = np.ones(window) / window
    pad = len(k) // 2
    ypad = np.r_[np.full(pad, y[0]), y, np.full(pad, y[-1])]
    return np.convolve(ypad, k, mode="valid")[: len(y)]


def decompose_strength(y: np.ndarray, period: int | None) -> tuple[float, float, float]:
    """(trend strength, seasonal strength, slope per observation) after Hyndman & Athanasopoulos.

    Strengths are in [0, 1]: F = max(0, 1 - var(remainder) / var(component + remainder)).
    """
    y = np.asarray(y, dtype=float)
    n = len(y)
    window = period if period and period >= 2 else max(3, n // 10)
    trend = _moving_average(y, window)
    detr = y - trend
    if period and period >= 2 and n >= 2 * period:
        means = np.array([detr[i::period].mean() for i in range(period)])
        seasonal = np.resize(means - means.mean(), n)
    else:
        seasonal = np.zeros(n)
    rem = y - trend - seasonal
    vr = float(np.var(rem))

    def strength(comp: np.ndarray) -> float:
        v = float(np.var(comp + rem))
        return 0.0 if v == 0 else max(0.0, 1.0 - vr / v)

    slope = float(np.polyfit(np.arange(n), y, 1)[0])
    return strength(trend), strength(seasonal) if period else 0.0, slope


def adf_pvalue(y: np.ndarray) -> float | None:
    """p-value of the augmented Dickey-Fuller unit-root test (None when it cannot run)."""
    if len(y) < 12 or np.std(y) == 0:
        return None
    import warnings

    from statsmodels.tsa.stattools import adfuller

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(adfuller(y, autolag="AIC")[1])
    except (ValueError, np.linalg.LinAlgError):
        return None
