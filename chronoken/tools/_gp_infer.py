"""Exact Gaussian-process inference for the gpr tool: likelihood, its optimisation, prediction.

Arrays are 1-D normalised times x of shape (n,) and standardised values y of shape (n,); the
covariance is a :class:`chronoken.tools._gp_kernels.Spec` with log-hyperparameters ``theta``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chronoken.tools import _gp_kernels as gk

#: Local prediction: observations per window and overlap on each side of its core.
WINDOW = 400
MARGIN = 80
#: L-BFGS-B iterations: per start in the coarse pass, and for the best start.
COARSE = 12
MAXITER = 60


def _chol(K: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor, adding jitter (1e-10 .. 1e-4 of the mean diagonal) if needed."""
    from scipy.linalg import cholesky

    jitter = 0.0
    scale = float(np.mean(np.diag(K)))
    for _ in range(7):
        try:
            return cholesky(K + jitter * np.eye(len(K)), lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            jitter = scale * (1e-10 if jitter == 0 else jitter / scale * 10)
    raise np.linalg.LinAlgError("covariance not positive definite")


def lml(
    spec: gk.Spec, theta: np.ndarray, blocks: list[tuple[gk.Pairs, np.ndarray]]
) -> tuple[float, np.ndarray]:
    """Sum over independent blocks of the log marginal likelihood and its gradient (theta).

    Each block is (Pairs, y) with y of shape (n,) or (n, B): B blocks with the same time
    geometry (equally spaced, stationary kernel) share one covariance factorisation.
    """
    from scipy.linalg import cho_solve
    from scipy.linalg.lapack import dpotri

    total, grad = 0.0, np.zeros(len(theta))
    for P, y in blocks:
        Y = y.reshape(len(y), -1)
        n, B = Y.shape
        K, G = gk.gram(spec, theta, P, grad=True)
        L = _chol(K)
        A = cho_solve((L, True), Y, check_finite=False)
        inv, info = dpotri(L, lower=1)  # K^-1 from the factor: a third of a full solve
        if info != 0:
            raise np.linalg.LinAlgError("dpotri failed")
        Kinv = np.tril(inv) + np.tril(inv, -1).T
        total += (
            -0.5 * float(np.sum(Y * A))
            - B * float(np.log(np.diag(L)).sum())
            - 0.5 * n * B * np.log(2 * np.pi)
        )
        inner = A @ A.T - B * Kinv
        grad += 0.5 * G.reshape(len(theta), -1) @ inner.reshape(-1)
    return total, grad


def optimise(
    spec: gk.Spec, blocks: list[tuple[gk.Pairs, np.ndarray]], starts: list[np.ndarray]
) -> tuple[np.ndarray, float, bool]:
    """Maximise the LML (L-BFGS-B in log space within bounds): every start runs ``COARSE``
    iterations, the best one continues to ``MAXITER``.

    Returns (theta, its LML, whether the optimizer reported convergence)."""
    from scipy.optimize import minimize

    bounds = spec.log_bounds

    def neg(th: np.ndarray) -> tuple[float, np.ndarray]:
        try:
            v, g = lml(spec, th, blocks)
        except np.linalg.LinAlgError:
            return 1e25, np.zeros_like(th)
        return -v, -g

    def run(th0: np.ndarray, maxiter: int) -> Any:
        th0 = np.clip(th0, bounds[:, 0], bounds[:, 1])
        return minimize(
            neg, th0, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": maxiter}
        )

    if len(starts) > 1:
        first = [run(th, COARSE) for th in starts]
        best = min(first, key=lambda r: r.fun)
        res = best if best.success else run(best.x, MAXITER)
    else:
        res = run(starts[0], MAXITER)
    if not np.isfinite(res.fun) or res.fun >= 1e25:
        return spec.theta0, -np.inf, False
    return res.x, float(-res.fun), bool(res.success)


def predictor(
    spec: gk.Spec, theta: np.ndarray, x: np.ndarray, xs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Exact GP weights W (m, n) with mean = W @ y, and the latent variance at xs (m,),
    from observation times x (n,)."""
    from scipy.linalg import cho_solve

    K, _ = gk.gram(spec, theta, gk.Pairs(x))
    L = _chol(K)
    Ks, _ = gk.gram(spec, theta, gk.Pairs(xs, x))
    W = cho_solve((L, True), Ks.T, check_finite=False).T
    var = gk.prior_var(spec, theta, xs) - np.sum(W * Ks, axis=1)
    return W, np.maximum(var, 0.0)


def posterior(
    spec: gk.Spec, theta: np.ndarray, x: np.ndarray, y: np.ndarray, xs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Exact predictive mean and latent variance at xs (m,) from observations (x, y) (n,)."""
    from scipy.linalg import cho_solve, solve_triangular

    K, _ = gk.gram(spec, theta, gk.Pairs(x))
    L = _chol(K)
    alpha = cho_solve((L, True), y, check_finite=False)
    Ks, _ = gk.gram(spec, theta, gk.Pairs(xs, x))
    v = solve_triangular(L, Ks.T, lower=True, check_finite=False)
    var = gk.prior_var(spec, theta, xs) - np.sum(v**2, axis=0)
    return Ks @ alpha, np.maximum(var, 0.0)


def posterior_local(
    spec: gk.Spec, theta: np.ndarray, x: np.ndarray, y: np.ndarray, xs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Like ``posterior`` but each point of xs uses the exact GP of the WINDOW observations around
    it: windows overlap by MARGIN on each side of their core; x and xs sorted.

    With a stationary kernel, windows whose time geometry repeats (a regular grid without gaps)
    share one set of weights, so a long regular series costs a few window solves.
    """
    n = len(x)
    core = WINDOW - 2 * MARGIN
    starts = list(range(0, n, core))
    mean = np.empty(len(xs))
    var = np.empty(len(xs))
    edges = [x[s] for s in starts[1:]]
    owner = np.searchsorted(np.asarray(edges), xs, side="right")
    stationary = "linear" not in spec.terms
    cache: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}
    for w, s in enumerate(starts):
        sel = owner == w
        if not sel.any():
            continue
        hi = min(n, s + core + MARGIN)
        lo = max(0, min(s - MARGIN, hi - WINDOW))
        xw, xq = x[lo:hi], xs[sel]
        key = np.round(np.r_[xw - xw[0], np.nan, xq - xw[0]] / (x[1] - x[0]), 6).tobytes()
        if stationary and key in cache:
            W, v = cache[key]
        else:
            W, v = predictor(spec, theta, xw, xq)
            cache[key] = (W, v)
        mean[sel], var[sel] = W @ y[lo:hi], v
    return mean, var
