"""Covariance kernels of the gpr tool on 1-D time, as scikit-learn defines them, but fast.

Each candidate is a sum of terms ``amplitude * kernel`` plus a ``WhiteKernel`` noise term, the
same expression ``to_sklearn`` builds from ``sklearn.gaussian_process.kernels``, with the same
hyperparameter vector ``theta`` (natural logs, in scikit-learn's order) and bounds. scikit-learn
evaluates composite kernels with generic distance code (about 0.25 s for an ExpSineSquared Gram
matrix of 400 points on the 2-core test machine); here the pairwise time differences are computed
once per data set and reused across the hundreds of evaluations the optimizer makes. The test suite
checks the Gram matrices and gradients against scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Candidate families: name -> terms (each term gets its own amplitude).
FAMILIES: dict[str, tuple[str, ...]] = {
    "rbf": ("rbf",),
    "matern": ("matern",),
    "rational_quadratic": ("rq",),
    "periodic": ("periodic",),
    "linear": ("linear",),
    "linear+periodic": ("linear", "periodic"),
    "rbf+periodic": ("rbf", "periodic"),
}

#: Hyperparameters of each term, in scikit-learn's (alphabetical) order.
TERM_PARAMS: dict[str, tuple[str, ...]] = {
    "rbf": ("length_scale",),
    "matern": ("length_scale",),
    "rq": ("alpha", "length_scale"),
    "periodic": ("length_scale", "periodicity"),
    "linear": ("sigma_0",),
}

_SK_NAMES = {
    "rbf": "RBF",
    "matern": "Matern(nu=1.5)",
    "rq": "RationalQuadratic",
    "periodic": "ExpSineSquared",
    "linear": "DotProduct",
}


@dataclass
class Spec:
    """A kernel family with initial values and bounds of its hyperparameters.

    names : parameter labels, e.g. ``['rbf.amplitude', 'rbf.length_scale', 'noise_level']``.
    value : initial values, shape (p,). bounds : (low, high) per parameter (not logged).
    """

    family: str
    terms: tuple[str, ...]
    names: list[str] = field(default_factory=list)
    value: list[float] = field(default_factory=list)
    bounds: list[tuple[float, float]] = field(default_factory=list)

    @property
    def theta0(self) -> np.ndarray:
        return np.log(np.asarray(self.value, dtype=float))

    @property
    def log_bounds(self) -> np.ndarray:
        return np.log(np.asarray(self.bounds, dtype=float))

    def index(self, name: str) -> int:
        return self.names.index(name)


def make_spec(family: str, scales: dict[str, float]) -> Spec:
    """The family's hyperparameters with data-derived initial values and bounds.

    scales (time normalised to a span of 1): ``dt`` the median step, ``period`` the initial
    period, ``period_max`` the longest identifiable period. y is normalised to unit variance.
    """
    terms = FAMILIES[family]
    spec = Spec(family, terms)
    dt = scales["dt"]
    l_lo = max(0.5 * dt, 1e-6)
    for term in terms:
        amp = 1.0 if term != "periodic" or len(terms) == 1 else 0.5
        _add(spec, f"{term}.amplitude", amp, (1e-3, 1e2))
        if term in ("rbf", "matern"):
            init = 0.3 if len(terms) > 1 else 0.1
            _add(spec, f"{term}.length_scale", max(init, 2 * l_lo), (l_lo, 10.0))
        elif term == "rq":
            _add(spec, "rq.alpha", 1.0, (1e-2, 1e3))
            _add(spec, "rq.length_scale", max(0.1, 2 * l_lo), (l_lo, 10.0))
        elif term == "periodic":
            lo, hi = 2.0 * dt, scales["period_max"]
            p0 = float(np.clip(scales["period"], lo * 1.01, hi * 0.99))
            _add(spec, "periodic.length_scale", 1.0, (0.05, 20.0))
            _add(spec, "periodic.periodicity", p0, (lo, hi))
        elif term == "linear":
            _add(spec, "linear.sigma_0", 0.1, (1e-3, 10.0))
    _add(spec, "noise_level", 0.1, (1e-6, 2.0))
    return spec


def _add(spec: Spec, name: str, value: float, bounds: tuple[float, float]) -> None:
    spec.names.append(name)
    spec.value.append(float(value))
    spec.bounds.append((float(bounds[0]), float(bounds[1])))


class Pairs:
    """Pairwise quantities of time points x1 (n1,) and x2 (n2,) reused across evaluations.

    When the points are equally spaced (a regular series, one block) the distances take only n
    values: stationary terms are evaluated on those (``du``) and spread by the index matrix
    ``lag``, n transcendental evaluations instead of n^2.
    """

    def __init__(self, x1: np.ndarray, x2: np.ndarray | None = None) -> None:
        self.same = x2 is None
        x2 = x1 if x2 is None else x2
        self.shape = (len(x1), len(x2))
        self.dot = x1[:, None] * x2[None, :]
        self.lag: np.ndarray | None = None
        offset = _grid_offset(x1, x2)
        if offset is not None:
            step, off = offset
            lag = np.abs(np.arange(len(x1))[:, None] - np.arange(len(x2))[None, :] + off)
            self.lag = lag
            self.d = np.arange(int(lag.max()) + 1) * step
        else:
            self.d = np.abs(x1[:, None] - x2[None, :])
        self.d2 = self.d**2

    def spread(self, a: np.ndarray) -> np.ndarray:
        """A stationary quantity evaluated on ``d`` as a full (n1, n2) matrix."""
        return a if self.lag is None else a[self.lag]


def _grid_offset(x1: np.ndarray, x2: np.ndarray) -> tuple[float, int] | None:
    """(step, offset in steps of x1[0] from x2[0]) when x1 and x2 lie on one regular grid."""
    if len(x1) < 3 or len(x2) < 2:
        return None
    step = float(x1[1] - x1[0])
    if step <= 0 or not np.allclose(np.diff(x1), step, rtol=1e-9, atol=0):
        return None
    if not np.allclose(np.diff(x2), step, rtol=1e-9, atol=0):
        return None
    off = (x1[0] - x2[0]) / step
    if abs(off - round(off)) > 1e-6:
        return None
    return step, round(off)


def _term(
    term: str, p: dict[str, float], P: Pairs, grad: bool
) -> tuple[np.ndarray, list[np.ndarray]]:
    """One unit-amplitude term and its gradients w.r.t. the log of its parameters (sklearn order)."""
    if term == "rbf":
        l2 = p["length_scale"] ** 2
        k = np.exp(-0.5 * P.d2 / l2)
        return k, ([k * P.d2 / l2] if grad else [])
    if term == "matern":
        r = np.sqrt(3.0) * P.d / p["length_scale"]
        e = np.exp(-r)
        return (1.0 + r) * e, ([r**2 * e] if grad else [])
    if term == "rq":
        a, l2 = p["alpha"], p["length_scale"] ** 2
        base = 1.0 + P.d2 / (2.0 * a * l2)
        k = base**-a
        if not grad:
            return k, []
        ga = k * (-a * np.log(base) + P.d2 / (2.0 * l2 * base))
        gl = P.d2 * k / (l2 * base)
        return k, [ga, gl]
    if term == "periodic":
        ell, per = p["length_scale"], p["periodicity"]
        arg = np.pi * P.d / per
        s = np.sin(arg)
        k = np.exp(-2.0 * (s / ell) ** 2)
        if not grad:
            return k, []
        return k, [4.0 / ell**2 * s**2 * k, 4.0 * arg / ell**2 * np.cos(arg) * s * k]
    if term == "linear":
        s2 = p["sigma_0"] ** 2
        return s2 + P.dot, ([np.full(P.shape, 2.0 * s2)] if grad else [])
    raise ValueError(term)


def _params(spec: Spec, theta: np.ndarray) -> list[tuple[str, float, dict[str, float]]]:
    """(term, amplitude, {param: value}) per term, read from theta (natural logs)."""
    v = np.exp(theta)
    out, i = [], 0
    for term in spec.terms:
        amp = float(v[i])
        i += 1
        p = {}
        for name in TERM_PARAMS[term]:
            p[name] = float(v[i])
            i += 1
        out.append((term, amp, p))
    return out


def noise_level(spec: Spec, theta: np.ndarray) -> float:
    """Variance of the white-noise term (normalised y units)."""
    return float(np.exp(theta[-1]))


def gram(
    spec: Spec, theta: np.ndarray, P: Pairs, grad: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """Covariance of the points of P (n, n) (white noise on the diagonal when P.same) and,
    with ``grad``, its derivatives w.r.t. theta, shape (p, n, n)."""
    params = _params(spec, theta)
    K = np.zeros(P.shape)
    G = np.empty((len(theta), *P.shape)) if grad else None
    i = 0
    for term, amp, p in params:
        k, g = _term(term, p, P, grad)
        if term == "linear":  # not stationary: already (n1, n2)
            K += amp * k
        else:
            k, g = P.spread(k), [P.spread(gi) for gi in g]
            K += amp * k
        if G is not None:
            np.multiply(k, amp, out=G[i])
            for j, gi in enumerate(g):
                np.multiply(gi, amp, out=G[i + 1 + j])
            i += 1 + len(g)
    if P.same:
        nl = noise_level(spec, theta)
        K[np.diag_indices_from(K)] += nl
        if G is not None:
            G[i] = 0.0
            G[i][np.diag_indices(P.shape[0])] = nl
    return K, G


def prior_var(spec: Spec, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Prior variance of the latent function at x (n,), white noise excluded."""
    out = np.zeros(len(x))
    for term, amp, p in _params(spec, theta):
        out += amp * (p["sigma_0"] ** 2 + x**2 if term == "linear" else 1.0)
    return out


def to_sklearn(spec: Spec, theta: np.ndarray) -> Any:
    """The same kernel as a scikit-learn object (values from theta, bounds from spec)."""
    from sklearn.gaussian_process import kernels as k

    v = np.exp(theta)
    b = spec.bounds
    i = 0
    total = None
    for term in spec.terms:
        amp = k.ConstantKernel(v[i], b[i])
        i += 1
        if term == "rbf":
            base = k.RBF(v[i], b[i])
        elif term == "matern":
            base = k.Matern(v[i], b[i], nu=1.5)
        elif term == "rq":
            base = k.RationalQuadratic(v[i + 1], v[i], b[i + 1], b[i])
        elif term == "periodic":
            base = k.ExpSineSquared(v[i], v[i + 1], b[i], b[i + 1])
        else:
            base = k.DotProduct(v[i], b[i])
        i += len(TERM_PARAMS[term])
        total = amp * base if total is None else total + amp * base
    return total + k.WhiteKernel(v[i], b[i])


def describe(spec: Spec, theta: np.ndarray, span: float, y_std: float, unit: str) -> str:
    """Readable kernel with lengths in time units and amplitudes in y units."""
    parts = []
    for term, amp, p in _params(spec, theta):
        a = f"{np.sqrt(amp) * y_std:.3g}^2"
        if term in ("rbf", "matern"):
            parts.append(
                f"{a} * {_SK_NAMES[term]}(length_scale={p['length_scale'] * span:.4g} {unit})"
            )
        elif term == "rq":
            parts.append(
                f"{a} * RationalQuadratic(length_scale={p['length_scale'] * span:.4g} {unit}, "
                f"alpha={p['alpha']:.3g})"
            )
        elif term == "periodic":
            parts.append(
                f"{a} * ExpSineSquared(length_scale={p['length_scale']:.3g}, "
                f"periodicity={p['periodicity'] * span:.4g} {unit})"
            )
        else:
            parts.append(f"{a} * DotProduct(sigma_0={p['sigma_0']:.3g})")
    noise = np.sqrt(noise_level(spec, theta)) * y_std
    return " + ".join(parts) + f" + WhiteKernel(noise std {noise:.3g})"
