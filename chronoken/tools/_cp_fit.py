"""Fit change point models of several families and pick one: the engine behind the tool.

A *family* is a segment model: what changes at a change point. Level families segment the
(deseasonalised, outlier-clipped, standardised) series; difference families segment its first
differences, i.e. a random walk whose drift or volatility changes.

=========== ======= ======= =============================================================
family      data    cost    changes at a change point
=========== ======= ======= =============================================================
mean        level   l2      the mean (level shift)
meanvar     level   normal  the mean and/or the variance
trend       level   linear  intercept and slope of a linear trend
kink        level   linear  the slope of a continuous piecewise linear trend (vertices
                            refined under continuity)
smooth      level   -       nothing: a cubic trend without change points, the null model a
                            segmentation must beat so that curvature is not cut into pieces
drift       diff    l2      the drift (slope) of a random walk
volatility  diff    normal  the drift and/or volatility of a random walk
l1          level   l1      the median (ruptures CostL1)
rbf         level   rbf     the distribution (Gaussian kernel, ruptures KernelCPD)
=========== ======= ======= =============================================================

Families are compared by a modified BIC on the same data: -2 log-likelihood of the series
under Gaussian AR(1) noise around the segment model (AR coefficient and variances at their
maximum-likelihood values; the difference families are the AR coefficient 1 case, so a random
walk is compared fairly with a stationary series with shifts) plus ``log T`` per parameter and
``2 log T`` per change point.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from chronoken.errors import ToolError
from chronoken.tools import _cp_prep as prep
from chronoken.tools import _cp_search as search
from chronoken.tools._cp_cost import SegmentCost, ruptures_cost

#: Candidate positions for the vectorised searches; beyond it ``jump`` grows (then refined).
GRID_POINTS = 1000
#: Largest series for ruptures' Dynp (O(T^2) cost calls in Python).
DYNP_MAX = 2000
#: Largest series for the kernel (rbf) cost with PELT / dynamic programming (O(T^2) time).
RBF_MAX = 20_000
#: Largest series for rbf with binseg / window (ruptures keeps a T x T Gram matrix).
RBF_GRAM_MAX = 1000
#: Largest series for the l1 cost (a median per segment evaluation, in Python).
L1_MAX = 5000

FAMILIES = {
    # name: (data, cost, params changing per change per channel, base params per channel)
    "mean": ("level", "l2", 1, 3),
    "meanvar": ("level", "normal", 2, 3),
    "trend": ("level", "linear", 2, 4),
    "kink": ("level", "linear", 1, 4),
    "smooth": ("level", "none", 0, 6),
    "drift": ("diff", "l2", 1, 2),
    "volatility": ("diff", "normal", 2, 2),
    "l1": ("level", "l1", 1, 3),
    "rbf": ("level", "rbf", 1, 3),
}
COST_FAMILIES = {
    "l2": ("mean",),
    "normal": ("meanvar",),
    "linear": ("trend", "kink"),
    "l1": ("l1",),
    "rbf": ("rbf",),
}
AUTO_FAMILIES = ("mean", "meanvar", "trend", "kink", "drift", "volatility", "smooth")
WORDS = {
    "mean": "shifts in the mean level",
    "meanvar": "changes in mean and variance",
    "trend": "changes in a linear trend (level and slope)",
    "kink": "changes in the slope of a continuous trend",
    "smooth": "no abrupt change: a smooth (cubic) trend fits better than any segmentation",
    "drift": "changes in the drift of a random walk",
    "volatility": "changes in the drift and volatility of a random walk",
    "l1": "shifts in the median level",
    "rbf": "changes in the distribution (kernel)",
}


@dataclass
class FamilyFit:
    """One family's segmentation and scores."""

    family: str
    bkps: list[int]
    penalty: float
    penalised_cost: float
    criterion: float | None  # modified BIC under AR(1) noise (None for l1 / rbf)
    search: str
    notes: list[str] = field(default_factory=list)


@dataclass
class Prepared:
    """The series as the searches see it."""

    z: np.ndarray  # (T, N) deseasonalised, clipped, standardised (noise sd 1)
    noise: prep.Noise  # of the deseasonalised, clipped series, before standardising
    periods: list[int | None]  # seasonal period removed per channel
    n_clipped: int


def seasonal_periods(x: np.ndarray, period: int | None) -> list[int | None]:
    """Per channel, the seasonal period worth removing (None: none).

    ``period`` None: detect (on the series, else on its differences, as a trend can hide a
    period from the periodogram) and keep a period when its profile explains more than a BIC
    cost; 0: none; an integer: that period wherever it fits 3 cycles."""
    from chronoken import features

    n, k = x.shape
    out: list[int | None] = []
    for j in range(k):
        col = x[:, j : j + 1]
        if period is None:
            p = features.detect_period(col[:, 0], max_period=n // 3) or features.detect_period(
                np.diff(col[:, 0]), max_period=n // 3
            )
        else:
            p = period or None
        if p is None or not 2 <= p <= n // 3:
            out.append(None)
            continue
        prof = prep.seasonal_profile(col, p)
        rest = col - np.resize(prof[:, 0], n)[:, None]
        # judged against the noise of what is left (the cycle itself is not noise)
        worth = prep.seasonal_worth_removing(prof, n, prep.robust_noise(rest))[0]
        out.append(p if period is not None or worth else None)
    return out


def prepare(x: np.ndarray, periods: list[int | None], robust: bool, min_size: int) -> Prepared:
    """Remove the seasonal profile of each channel with a period, clip outliers, standardise."""
    n = x.shape[0]
    y = x.copy()
    for j, p in enumerate(periods):
        if p is not None:
            y[:, j] -= np.resize(prep.seasonal_profile(y[:, j : j + 1], p)[:, 0], n)
    noise = prep.robust_noise(y)
    n_clipped = 0
    if robust:
        y, n_clipped = prep.clip_outliers(y, 2 * min_size + 1)
    z = (y - np.median(y, axis=0)) / noise.sigma
    return Prepared(z, noise, list(periods), n_clipped)


def criterion_offset(pre: Prepared) -> float:
    """What makes criteria of differently prepared series comparable: the Jacobian of the
    standardisation (n - 1 innovations per channel scaled by sigma) plus ``log T`` for each
    of the ``period - 1`` free values of every seasonal profile removed."""
    n = pre.z.shape[0]
    jacobian = (n - 1) * float(np.sum(np.log(pre.noise.sigma**2)))
    profiles = sum(p - 1 for p in pre.periods if p is not None)
    return jacobian + profiles * float(np.log(n))


def _min_size(family: str, min_size: int) -> int:
    cost_name = FAMILIES[family][1]
    return max(min_size, 3 if cost_name == "linear" else 2 if cost_name == "normal" else 1)


def _length(family: str, n: int) -> int:
    return n - 1 if FAMILIES[family][0] == "diff" else n


def _auto_jump(n: int) -> int:
    return max(1, -(-n // GRID_POINTS))


def fit_family(
    family: str,
    pre: Prepared,
    method: str,
    min_size: int,
    n_bkps: int | None,
    penalty: float | None,
    jump: int | None,
    width: int | None,
    trend_fit: FamilyFit | None = None,
) -> FamilyFit:
    """Search one family's change points with ``method`` and score the result.

    ``trend_fit``: the trend family's fit, whose change points the kink family starts from
    (same search, so it is not run twice)."""
    data, cost_name, d, _ = FAMILIES[family]
    z = pre.z
    n, k = z.shape
    if family == "smooth":
        return FamilyFit(family, [], 0.0, float("nan"), criterion(z, family, []), "no search")
    noise = pre.noise if data == "level" else prep.robust_noise(np.diff(z, axis=0))
    if data == "level":  # z has noise sd 1: divide by sqrt(phi) for long-run variance units
        sig = z / np.sqrt(noise.phi)
    else:
        dz = np.diff(z, axis=0)
        sig = (dz - np.median(dz, axis=0)) / (noise.sigma * np.sqrt(noise.phi))
    phi = float(np.mean(noise.phi))
    if penalty is not None:
        pen = float(penalty)
    elif cost_name in ("l2", "linear"):
        # the kink family searches with the discontinuous linear cost: count its parameters
        pen = prep.mbic_penalty(n, (2 if family == "kink" else d) * k)
    elif cost_name == "normal":
        pen = prep.mbic_penalty(n, d * k) * phi
    elif cost_name == "l1":  # Laplace -2 log-lik = 2 * cost / b, b = E|noise| = 0.798 sd
        sig = z
        pen = prep.mbic_penalty(n, k) * phi * 0.7979 / 2.0
    else:  # rbf: penalty in units of the feature-space noise variance
        sig = z
        pen = 0.0  # set in _rbf
    m = len(sig)
    ms = _min_size(family, min_size)
    if n_bkps is not None and (n_bkps + 1) * ms > m:
        raise ToolError(
            f"cannot place {n_bkps} change points with segments of at least {ms} points in "
            f"{m} observations. Ask for fewer change points or a smaller min_size."
        )
    notes: list[str] = []
    if cost_name == "rbf":
        bkps, pen, label = _rbf(sig, method, ms, n_bkps, penalty, phi, jump, width, notes)
        shift = 0
    elif cost_name == "l1":
        bkps, label = _ruptures(sig, "l1", method, ms, n_bkps, pen, jump, width, notes)
        shift = 0
    elif family == "kink" and trend_fit is not None:
        bkps, label, shift = list(trend_fit.bkps), trend_fit.search, 0
        bkps = search.refine_kinks(sig, bkps, ms, radius=max(10, 2 * ms))
        label += ", vertices refined under continuity"
    else:
        bkps, label = _search(sig, cost_name, method, ms, n_bkps, pen, jump, width, notes)
        shift = 1 if data == "diff" else 0
        if family == "kink":
            bkps = search.refine_kinks(sig, bkps, ms, radius=max(10, 2 * ms))
            label += ", vertices refined under continuity"
    if cost_name in ("l2", "normal", "linear"):
        pcost = SegmentCost(sig, cost_name).total(bkps) + pen * len(bkps)
    else:
        pcost = float("nan")
    bkps = [b + shift for b in bkps]
    crit = criterion(pre.z, family, bkps) if cost_name in ("l2", "normal", "linear") else None
    return FamilyFit(family, bkps, pen, pcost, crit, label, notes)


def fit_families(
    families: tuple[str, ...],
    pre: Prepared,
    method: str,
    min_size: int,
    n_bkps: int | None,
    penalty: float | None,
    jump: int | None,
    width: int | None,
) -> list[FamilyFit]:
    """fit_family for each family, in order (the kink family reuses the trend search).

    With ``n_bkps``, families that cannot hold that many segments of ``min_size`` (the
    difference families have one observation fewer) are skipped, unless none can."""
    if n_bkps is not None:
        n = pre.z.shape[0]
        fits_k = [f for f in families if (n_bkps + 1) * _min_size(f, min_size) <= _length(f, n)]
        families = tuple(fits_k) or families[:1]  # none fits: let the first raise the error
    fits: list[FamilyFit] = []
    for fam in families:
        trend = next((f for f in fits if f.family == "trend"), None)
        fits.append(fit_family(fam, pre, method, min_size, n_bkps, penalty, jump, width, trend))
    return fits


def fit_all(
    x: np.ndarray,
    period: int | None,
    robust: bool,
    min_size: int,
    families: tuple[str, ...],
    method: str,
    n_bkps: int | None,
    penalty: float | None,
    jump: int | None,
    width: int | None,
) -> tuple[list[int | None], list[tuple[Prepared, FamilyFit]]]:
    """Every family on the series with its seasonal profiles removed and, when periods were
    detected (not given), also on the series as observed, so that removing a profile has to
    pay for its ``period - 1`` values in the criterion (a staircase of level shifts can pass
    for a long period). Returns the periods found and the (preparation, fit) pairs; criteria
    include :func:`criterion_offset`, so all are comparable."""
    periods = seasonal_periods(x, period)
    variants = [periods]
    if period is None and any(p is not None for p in periods):
        variants.append([None] * len(periods))
    tried: list[tuple[Prepared, FamilyFit]] = []
    for per in variants:
        pre = prepare(x, per, robust, min_size)
        offset = criterion_offset(pre)
        for f in fit_families(families, pre, method, min_size, n_bkps, penalty, jump, width):
            if f.criterion is not None:
                f.criterion += offset
            tried.append((pre, f))
    return periods, tried


def _search(
    sig: np.ndarray,
    cost_name: str,
    method: str,
    ms: int,
    n_bkps: int | None,
    pen: float,
    jump: int | None,
    width: int | None,
    notes: list[str],
) -> tuple[list[int], str]:
    n = len(sig)
    if method in ("window", "dynp"):
        return _ruptures(sig, cost_name, method, ms, n_bkps, pen, jump, width, notes)
    cost = SegmentCost(sig, cost_name)
    if method == "binseg":
        j = jump or 1
        bkps = search.binseg(cost, ms, j, pen=None if n_bkps is not None else pen, n_bkps=n_bkps)
        return search.refine(cost, bkps, ms, j), "binary segmentation"
    j = jump or _auto_jump(n)
    if n_bkps is not None:
        if method == "pelt":
            notes.append(
                "PELT needs a penalty, not a number of changes: the optimal partition with "
                f"exactly {n_bkps} changes was found by dynamic programming instead."
            )
        bkps = search.optimal_k(cost, n_bkps, ms, j)
        label = "dynamic programming (exact number of changes)"
    else:
        bkps = search.pelt(cost, pen, ms, j)
        label = "PELT"
    if j > 1:
        label += f" on every {j}th point, refined to single points"
    return search.refine(cost, bkps, ms, j), label


def _ruptures(
    sig: np.ndarray,
    cost_name: str,
    method: str,
    ms: int,
    n_bkps: int | None,
    pen: float,
    jump: int | None,
    width: int | None,
    notes: list[str],
) -> tuple[list[int], str]:
    """ruptures' Pelt / Binseg / Window / Dynp with the given cost (size limits checked)."""
    n = len(sig)
    if cost_name == "l1" and n > L1_MAX:
        raise ToolError(
            f"the l1 cost is limited to {L1_MAX:,} observations (it takes a median per "
            f"candidate segment); this series has {n:,}. Use cost='l2' (outliers are clipped "
            "by default) or cost='auto'."
        )
    if method == "dynp" and n > DYNP_MAX:
        raise ToolError(
            f"method 'dynp' (dynamic programming, O(T^2)) is limited to {DYNP_MAX:,} "
            f"observations; this series has {n:,}. Use method='pelt' (exact for a penalty) "
            "or method='auto'."
        )
    # ruptures evaluates one segment per Python call: coarser grids, refined afterwards
    slow = cost_name == "l1" or method == "dynp"
    j = jump or (max(5, -(-n // 200)) if slow else max(1, -(-n // GRID_POINTS)))
    from ruptures.exceptions import BadSegmentationParameters

    try:
        return _ruptures_run(sig, cost_name, method, ms, n_bkps, pen, j, width, notes)
    except BadSegmentationParameters:
        if j > 1 and not jump:  # a coarse grid too short for the segments: try every point
            return _ruptures_run(sig, cost_name, method, ms, n_bkps, pen, 1, width, notes)
        raise ToolError(
            f"ruptures cannot place {n_bkps} change point(s) with segments of at least {ms} "
            f"points on every {j}th of {n} observations. Ask for fewer change points or a "
            "smaller min_size or jump."
        ) from None


def _ruptures_run(
    sig: np.ndarray,
    cost_name: str,
    method: str,
    ms: int,
    n_bkps: int | None,
    pen: float,
    j: int,
    width: int | None,
    notes: list[str],
) -> tuple[list[int], str]:
    import ruptures as rpt

    n = len(sig)
    custom = ruptures_cost(cost_name) if cost_name != "l1" else rpt.costs.CostL1()
    if method in ("auto", "pelt"):
        if n_bkps is not None:
            method = "dynp"
            notes.append(f"PELT needs a penalty: exactly {n_bkps} changes were found with Dynp.")
            if n > DYNP_MAX:
                raise ToolError(
                    f"an exact number of changes with the {cost_name} cost uses Dynp, limited to "
                    f"{DYNP_MAX:,} observations; this series has {n:,}. Leave n_bkps unset or "
                    "use method='binseg'."
                )
        else:
            algo = rpt.Pelt(custom_cost=custom, min_size=ms, jump=j).fit(sig)
            return _refine_rpt(algo.predict(pen=pen)[:-1], algo.cost, ms, j), "PELT (ruptures)"
    if method == "binseg":
        algo = rpt.Binseg(custom_cost=custom, min_size=ms, jump=j).fit(sig)
        out = algo.predict(n_bkps=n_bkps) if n_bkps is not None else algo.predict(pen=pen)
        return _refine_rpt(out[:-1], algo.cost, ms, j), "binary segmentation (ruptures)"
    if method == "window":
        w = width or int(np.clip(n // 10, 2 * ms, 200))
        w = max(2 * (w // 2), 2 * ms)
        if w >= n:
            raise ToolError(
                f"the window width {w} is not smaller than the series ({n} points). Give a "
                "smaller width or use method='pelt'."
            )
        algo = rpt.Window(width=w, custom_cost=custom, min_size=ms, jump=j).fit(sig)
        out = algo.predict(n_bkps=n_bkps) if n_bkps is not None else algo.predict(pen=pen)
        notes.append(f"Sliding window of {w} points.")
        return _refine_rpt(out[:-1], algo.cost, ms, j), f"sliding window (ruptures, width {w})"
    # dynp
    algo = rpt.Dynp(custom_cost=custom, min_size=ms, jump=j).fit(sig)
    if n_bkps is not None:
        return _refine_rpt(algo.predict(n_bkps=n_bkps)[:-1], algo.cost, ms, j), "Dynp (ruptures)"
    k_max = max(0, min(10, n // ms - 1))
    best: tuple[float, list[int]] = (algo.cost.sum_of_costs([n]), [])
    for k in range(1, k_max + 1):
        try:
            b = algo.predict(n_bkps=k)
        except rpt.exceptions.BadSegmentationParameters:  # past the feasible k
            break
        val = algo.cost.sum_of_costs(b) + pen * k
        if val < best[0]:
            best = (val, b[:-1])
    notes.append(f"Dynp with a penalty: the best of 0..{k_max} changes under the penalty.")
    return _refine_rpt(best[1], algo.cost, ms, j), "Dynp (ruptures)"


def _refine_rpt(bkps: list[int], cost: object, ms: int, jump: int) -> list[int]:
    """search.refine for a ruptures cost (one segment per call)."""
    if jump <= 1 or not bkps:
        return [int(b) for b in bkps]

    class _Vec:
        n_samples = int(cost.signal.shape[0])  # type: ignore[attr-defined]

        def __call__(self, s: object, e: object) -> np.ndarray:
            s_arr, e_arr = np.broadcast_arrays(np.asarray(s), np.asarray(e))
            return np.array(
                [
                    cost.error(int(a), int(b))
                    for a, b in zip(s_arr.ravel(), e_arr.ravel(), strict=True)
                ]
            )  # type: ignore[attr-defined]

    return search.refine(_Vec(), [int(b) for b in bkps], ms, jump)


def _rbf(
    z: np.ndarray,
    method: str,
    ms: int,
    n_bkps: int | None,
    penalty: float | None,
    phi: float,
    jump: int | None,
    width: int | None,
    notes: list[str],
) -> tuple[list[int], float, str]:
    """Gaussian-kernel cost. Penalty: 3 log T times the feature-space noise variance
    ``mean(1 - k(z_t, z_t+1))`` (the kernel analogue of the first-difference noise estimate)
    times the autocorrelation factor."""
    import ruptures as rpt

    n = len(z)
    limit = RBF_GRAM_MAX if method in ("binseg", "window") else RBF_MAX
    if n > limit:
        raise ToolError(
            f"the rbf (kernel) cost costs O(T^2) and is limited to {limit:,} observations with "
            f"method '{method}'; this series has {n:,}. Use cost='normal' or cost='auto' "
            "(linear time), or aggregate the series first."
        )
    sub = z[:: max(1, n // 1000)]
    d2 = ((sub[:, None, :] - sub[None, :, :]) ** 2).sum(-1)
    med = float(np.median(d2[np.triu_indices(len(sub), 1)])) if len(sub) > 1 else 1.0
    gamma = 1.0 / med if med > 0 else 1.0
    kern = np.exp(-gamma * ((z[1:] - z[:-1]) ** 2).sum(-1))
    v = float(np.mean(1.0 - kern))
    pen = float(penalty) if penalty is not None else max(v, 1e-3) * phi * 3.0 * np.log(n)
    if method in ("binseg", "window"):
        bkps, label = _ruptures_rbf(z, method, ms, n_bkps, pen, gamma, jump, width, notes)
        return bkps, pen, label
    algo = rpt.KernelCPD(kernel="rbf", min_size=ms, params={"gamma": gamma}).fit(z)
    if n_bkps is not None:
        return algo.predict(n_bkps=n_bkps)[:-1], pen, "kernel dynamic programming (ruptures)"
    return algo.predict(pen=pen)[:-1], pen, "kernel PELT (ruptures KernelCPD)"


def _ruptures_rbf(
    z: np.ndarray,
    method: str,
    ms: int,
    n_bkps: int | None,
    pen: float,
    gamma: float,
    jump: int | None,
    width: int | None,
    notes: list[str],
) -> tuple[list[int], str]:
    import ruptures as rpt

    n = len(z)
    j = jump or 1
    if method == "binseg":
        algo = rpt.Binseg(model="rbf", min_size=ms, jump=j, params={"gamma": gamma}).fit(z)
        label = "binary segmentation (ruptures, rbf)"
    else:
        w = width or int(np.clip(n // 10, 2 * ms, 200))
        w = max(2 * (w // 2), 2 * ms)
        algo = rpt.Window(width=w, model="rbf", min_size=ms, jump=j, params={"gamma": gamma}).fit(z)
        label = f"sliding window (ruptures, rbf, width {w})"
        notes.append(f"Sliding window of {w} points.")
    out = algo.predict(n_bkps=n_bkps) if n_bkps is not None else algo.predict(pen=pen)
    return [int(b) for b in out[:-1]], label


def residuals(z: np.ndarray, family: str, bkps: list[int]) -> tuple[np.ndarray, bool]:
    """Residuals in observation space (n_samples, n_channels) of ``family`` with change points
    ``bkps``, and whether the AR coefficient is free (level) or 1 (difference families)."""
    n = len(z)
    data, cost_name, _, _ = FAMILIES[family]
    edges = [0, *bkps, n]
    if data == "diff":
        dz = np.diff(z, axis=0)
        r = np.zeros_like(z)
        for s, e in pairwise(edges):
            a, b = max(s - 1, 0), e - 1  # increments of observations s..e-1
            if b > a:
                r[a + 1 : b + 1] = dz[a:b] - dz[a:b].mean(axis=0)
        return r, False
    if family == "smooth":
        t = np.linspace(-1.0, 1.0, n)
        basis = np.column_stack([t**p for p in range(4)])
        coef, *_ = np.linalg.lstsq(basis, z, rcond=None)
        return z - basis @ coef, True
    if family == "kink":
        t = np.arange(n, dtype=float) / n
        basis = np.column_stack([np.ones(n), t] + [np.maximum(t - b / n, 0.0) for b in bkps])
        coef, *_ = np.linalg.lstsq(basis, z, rcond=None)
        return z - basis @ coef, True
    r = np.empty_like(z)
    for s, e in pairwise(edges):
        seg = z[s:e]
        if cost_name == "linear" and e - s >= 3:
            t = np.arange(e - s, dtype=float)
            t -= t.mean()
            slope = (t @ (seg - seg.mean(axis=0))) / (t @ t)
            r[s:e] = seg - seg.mean(axis=0) - np.outer(t, slope)
        else:
            r[s:e] = seg - seg.mean(axis=0)
    return r, True


def criterion(z: np.ndarray, family: str, bkps: list[int]) -> float:
    """Modified BIC of ``family`` with change points ``bkps`` on the standardised series:
    -2 log-lik (AR(1) Gaussian noise) + log T per parameter + 2 log T per change point."""
    n, k = z.shape
    _, cost_name, d, base = FAMILIES[family]
    r, ar = residuals(z, family, bkps)
    nll = prep.ar1_neg2loglik(r, [0, *bkps, n], per_segment_var=cost_name == "normal", ar=ar)
    n_params = base * k + len(bkps) * d * k
    return nll + (n_params + 2 * len(bkps)) * np.log(n)
