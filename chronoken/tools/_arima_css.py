"""Conditional-sum-of-squares (CSS) fits of seasonal ARIMA models, for fast order selection.

auto.arima (Hyndman & Khandakar 2008) ranks candidate orders with CSS fits when the series is
long (``approximation=TRUE``) and refits only the chosen model by maximum likelihood; this module
is that approximation. A fit is a Levenberg-Marquardt least-squares solve whose residuals come
from two linear filters, so one fit of a 10,000-point series takes milliseconds.

Conventions follow statsmodels' SARIMAX: phi(B) Phi(B^s) (w_t - mu - x_t'beta) =
theta(B) Theta(B^s) e_t, with phi(B) = 1 - phi_1 B - ... and theta(B) = 1 + theta_1 B + ...,
where w is the differenced series.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: A model whose AR or MA polynomial has a root this close to the unit circle is rejected, as in
#: auto.arima (its forecasts would be unstable).
MIN_ROOT = 1.01
#: Levenberg-Marquardt evaluation budget per free coefficient (plus one) of a CSS fit.
MAX_NFEV_PER_PARAM = 40


@dataclass(frozen=True)
class Spec:
    """One seasonal ARIMA specification (p,d,q)(P,D,Q)[s], with or without a constant."""

    p: int
    d: int
    q: int
    P: int = 0
    D: int = 0
    Q: int = 0
    s: int = 1
    constant: bool = False

    @property
    def order(self) -> tuple[int, int, int]:
        return (self.p, self.d, self.q)

    @property
    def seasonal_order(self) -> tuple[int, int, int, int]:
        seasonal = self.s > 1 and (self.P or self.D or self.Q)
        return (self.P, self.D, self.Q, self.s) if seasonal else (0, 0, 0, 0)

    @property
    def n_arma(self) -> int:
        return self.p + self.q + self.P + self.Q

    def name(self) -> str:
        """auto.arima's notation, e.g. 'ARIMA(0,1,1)(0,1,1)[12] with drift'."""
        text = f"ARIMA({self.p},{self.d},{self.q})"
        if self.seasonal_order[3]:
            text += f"({self.P},{self.D},{self.Q})[{self.s}]"
        if self.constant:
            text += " with drift" if self.d + self.D == 1 else " with mean"
        return text


@dataclass
class CssFit:
    """Result of a CSS fit. ``params`` are laid out as SARIMAX's (intercept, exog, ar, ma, seasonal
    ar, seasonal ma), so they can start the maximum-likelihood fit."""

    spec: Spec
    params: np.ndarray
    sigma2: float
    loglik: float
    n_eff: int
    n_params: int
    aic: float
    aicc: float
    bic: float
    min_root: float
    ok: bool
    reason: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    def score(self, criterion: str) -> float:
        return float(getattr(self, criterion)) if self.ok else float("inf")


def difference(y: np.ndarray, d: int, D: int, s: int) -> np.ndarray:
    """(1 - B)^d (1 - B^s)^D y for an array of shape (n_samples,) or (n_samples, k)."""
    w = np.asarray(y, dtype=float)
    for _ in range(D):
        w = w[s:] - w[:-s]
    for _ in range(d):
        w = w[1:] - w[:-1]
    return w


def seasonal_poly(coefs: np.ndarray, s: int, sign: float) -> np.ndarray:
    """Coefficients of 1 + sign * (c_1 B^s + c_2 B^2s + ...) in increasing powers of B."""
    out = np.zeros(len(coefs) * s + 1)
    out[0] = 1.0
    for i, c in enumerate(coefs, start=1):
        out[i * s] = sign * c
    return out


def full_polys(spec: Spec, arma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expanded AR and MA polynomials (increasing powers of B) from [phi, theta, Phi, Theta]."""
    p, q, P, Q, s = spec.p, spec.q, spec.P, spec.Q, max(spec.s, 1)
    phi, theta = arma[:p], arma[p : p + q]
    Phi, Theta = arma[p + q : p + q + P], arma[p + q + P : p + q + P + Q]
    ar = np.convolve(np.r_[1.0, -phi], seasonal_poly(Phi, s, -1.0))
    ma = np.convolve(np.r_[1.0, theta], seasonal_poly(Theta, s, 1.0))
    return ar, ma


def min_root(poly: np.ndarray) -> float:
    """Smallest modulus of the roots of a polynomial in B (inf when it is constant)."""
    nz = np.flatnonzero(np.abs(poly) > 1e-8)
    if len(nz) <= 1:
        return float("inf")
    roots = np.roots(poly[: nz[-1] + 1][::-1])
    return float(np.min(np.abs(roots))) if len(roots) else float("inf")


def _constrain(u: np.ndarray) -> np.ndarray:
    """Unconstrained reals -> coefficients of a stationary AR polynomial 1 - c_1 B - ... (Jones'
    partial-autocorrelation transform, as statsmodels' SARIMAX uses)."""
    if len(u) == 0:
        return u
    from statsmodels.tsa.statespace.tools import constrain_stationary_univariate

    return constrain_stationary_univariate(np.asarray(u, dtype=float))


def _arma_from_free(spec: Spec, u: np.ndarray) -> np.ndarray:
    """[phi, theta, Phi, Theta] from free parameters; every factor stationary or invertible."""
    p, q, P, Q = spec.p, spec.q, spec.P, spec.Q
    parts = np.split(u, np.cumsum([p, q, P, Q])[:-1])
    return np.concatenate(
        [_constrain(parts[0]), -_constrain(parts[1]), _constrain(parts[2]), -_constrain(parts[3])]
    )


def css_fit(w: np.ndarray, spec: Spec, xw: np.ndarray | None = None) -> CssFit:
    """Fit ``spec`` to the differenced series ``w`` of shape (n,) by conditional least squares.

    xw : array of shape (n, k), optional
        Differenced regressors (e.g. Fourier terms), their coefficients estimated jointly.

    The mean and regression coefficients enter the residuals linearly, so they are solved
    exactly for each set of ARMA coefficients (variable projection); the ARMA coefficients are
    searched by Levenberg-Marquardt in a transformed space that keeps every factor stationary
    and invertible, so the residual filters never explode.
    """
    from scipy.optimize import least_squares
    from scipy.signal import lfilter

    w = np.asarray(w, dtype=float)
    n = len(w)
    k_x = 0 if xw is None else xw.shape[1]
    k_c = int(spec.constant)
    k_arma = spec.n_arma
    ncond = spec.p + spec.P * max(spec.s, 1)
    n_params = k_c + k_x + k_arma
    n_total = n_params + 1  # + sigma2, as auto.arima counts it
    if n - ncond <= n_total + 1:
        return _failed(spec, n, n_params, "too few observations for this order")
    cols = [w[:, None]] + ([np.ones((n, 1))] if k_c else []) + ([xw] if k_x else [])
    data = np.hstack(cols)  # (n, 1 + k_c + k_x): the series, then the linear regressors
    scale = float(np.std(w)) or 1.0

    def solve(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Residuals (n - ncond,) and linear coefficients for free ARMA parameters u."""
        ar, ma = full_polys(spec, _arma_from_free(spec, u))
        f = lfilter(ar, [1.0], data, axis=0)[ncond:]
        if len(ma) > 1:
            f = lfilter([1.0], ma, f, axis=0)
        if data.shape[1] == 1:
            return f[:, 0], np.zeros(0)
        x = f[:, 1:]
        try:  # normal equations: the regressors are few and well conditioned (mean, sinusoids)
            coef = np.linalg.solve(x.T @ x, x.T @ f[:, 0])
        except np.linalg.LinAlgError:
            coef = np.linalg.lstsq(x, f[:, 0], rcond=None)[0]
        return f[:, 0] - x @ coef, coef

    u = np.zeros(k_arma)
    if k_arma:
        # A coefficient running to the unit circle drifts off to infinity in the free space;
        # the evaluation cap stops it there and the root check below rejects the model.
        sol = least_squares(
            lambda v: solve(v)[0] / scale,
            u,
            method="lm",
            xtol=1e-7,
            ftol=1e-7,
            max_nfev=MAX_NFEV_PER_PARAM * (k_arma + 1),
        )
        u = sol.x
    e, lin = solve(u)
    arma = _arma_from_free(spec, u)
    sigma2 = float(np.mean(e**2))
    ar, ma = full_polys(spec, arma)
    root = min(min_root(ar), min_root(ma))
    if not np.isfinite(sigma2) or sigma2 <= 0:
        return _failed(spec, n, n_params, "residual variance is zero or not finite")
    # Gaussian log-likelihood of the conditional residuals over the n differenced points,
    # the same scale as auto.arima's CSS information criteria (its `offset`).
    loglik = -0.5 * n * (np.log(2 * np.pi * sigma2) + 1.0)
    aic = -2.0 * loglik + 2.0 * n_total
    aicc = aic + 2.0 * n_total * (n_total + 1) / (n - n_total - 1)
    bic = -2.0 * loglik + n_total * np.log(n)
    ok = root >= MIN_ROOT
    # SARIMAX's intercept is the constant of the AR equation: mu * phi(1) * Phi(1).
    params = np.r_[lin, arma]
    if k_c:
        params[0] = lin[0] * float(np.sum(ar))
    return CssFit(
        spec,
        params,
        sigma2,
        float(loglik),
        n,
        n_total,
        float(aic),
        float(aicc),
        float(bic),
        root,
        ok,
        "" if ok else f"AR/MA root at modulus {root:.3f} (< {MIN_ROOT}): rejected",
    )


def _failed(spec: Spec, n: int, n_params: int, reason: str) -> CssFit:
    nan = float("nan")
    return CssFit(
        spec, np.zeros(n_params), nan, nan, n, n_params + 1, nan, nan, nan, nan, False, reason
    )
