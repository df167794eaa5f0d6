"""Numerics of singular spectrum analysis (SSA) and its multichannel form (MSSA).

The trajectory (Hankel) matrix of a channel ``x`` of shape (n_samples,) with window ``L`` is
``X[i, k] = x[i + k]`` of shape (L, K) with ``K = n_samples - L + 1``; MSSA stacks the channels'
matrices side by side into shape (L, n_channels * K) (Golyandina, Korobeynikov & Zhigljavsky,
*Singular Spectrum Analysis with R*, 2018, ch. 4). Products with it are computed by FFT, so the
leading eigentriples of a 10,000-point series come from a seeded randomized SVD (Halko, Martinsson
& Tropp 2011) without forming the matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Largest window decomposed through the L x L lag-covariance matrix; longer ones go randomized.
COV_LIMIT = 1000


@dataclass
class Decomposition:
    """Leading eigentriples of the stacked trajectory matrix.

    sigma : array of shape (r,), singular values in decreasing order.
    U : array of shape (L, r), left singular vectors (the lag-space eigenvectors).
    V : array of shape (n_channels, K, r), right singular vectors split per channel.
    total : squared Frobenius norm of the trajectory matrix (sum of all eigenvalues).
    """

    sigma: np.ndarray
    U: np.ndarray
    V: np.ndarray
    total: float


class Hankel:
    """Products with the stacked trajectory matrix of ``y`` of shape (n_samples, n_channels)."""

    def __init__(self, y: np.ndarray, window: int) -> None:
        from scipy import fft

        self.y = np.asarray(y, dtype=float)
        self.T, self.N = self.y.shape
        self.L = int(window)
        self.K = self.T - self.L + 1
        self.nfft = fft.next_fast_len(self.T + max(self.L, self.K) - 1, real=True)
        self.fy = fft.rfft(np.ascontiguousarray(self.y.T), self.nfft, axis=-1)  # (N, nfreq)

    @property
    def shape(self) -> tuple[int, int]:
        return self.L, self.N * self.K

    def matmat(self, v: np.ndarray) -> np.ndarray:
        """X @ v for v of shape (n_channels * K, p); returns shape (L, p)."""
        from scipy import fft

        vt = np.ascontiguousarray(v.T.reshape(-1, self.N, self.K)[:, :, ::-1])  # (p, N, K)
        prod = (fft.rfft(vt, self.nfft, axis=-1) * self.fy).sum(axis=1)  # (p, nfreq)
        return fft.irfft(prod, self.nfft, axis=-1)[:, self.K - 1 : self.K - 1 + self.L].T

    def rmatmat(self, u: np.ndarray) -> np.ndarray:
        """X.T @ u for u of shape (L, p); returns shape (n_channels * K, p)."""
        from scipy import fft

        fu = fft.rfft(np.ascontiguousarray(u.T[:, ::-1]), self.nfft, axis=-1)  # (p, nfreq)
        out = fft.irfft(fu[:, None, :] * self.fy[None], self.nfft, axis=-1)  # (p, N, nfft)
        return out[:, :, self.L - 1 : self.L - 1 + self.K].reshape(u.shape[1], -1).T

    def weights(self) -> np.ndarray:
        """How many times each time point appears in one channel's matrix, shape (n_samples,)."""
        t = np.arange(self.T)
        return np.minimum.reduce([t + 1, np.full(self.T, min(self.L, self.K)), self.T - t])

    def frobenius2(self) -> float:
        return float(np.sum(self.weights()[:, None] * self.y**2))


def decompose(y: np.ndarray, window: int, n_components: int, seed: int = 0) -> Decomposition:
    """The leading eigentriples (at most ``n_components``) of the trajectory matrix of ``y``.

    y : array of shape (n_samples, n_channels). Windows up to ``COV_LIMIT``: eigendecomposition
    of the lag-covariance matrix X X^T (L x L), built in O(L^2 + T L) without forming X. Longer
    windows: randomized SVD with FFT products, 4 power iterations and 10 extra vectors, seeded.
    Components at round-off level (sigma < 1e-7 sigma_1) are dropped, so a pure sine yields
    exactly its two eigentriples.
    """
    H = Hankel(y, window)
    L, M = H.shape
    r = int(min(n_components, L, M))
    if L <= COV_LIMIT:
        U, s = _top_eigh(lag_covariance(H.y, L), r)
        keep = s > 1e-7 * max(s[0], 1e-300)
        U, s = U[:, keep], s[keep]
        V = H.rmatmat(U) / s
    else:
        rng = np.random.default_rng(seed)
        Q = _orth(H.matmat(rng.standard_normal((M, r + 10))))
        for _ in range(4):
            Q = _orth(H.matmat(_orth(H.rmatmat(Q))))
        B = H.rmatmat(Q)  # (M, p) = (Q^T X)^T
        Ub, s = _top_eigh(B.T @ B, min(r, Q.shape[1]))
        keep = s > 1e-7 * max(s[0], 1e-300)
        Ub, s = Ub[:, keep], s[keep]
        U, V = Q @ Ub, B @ Ub / s
    # Sign convention: the largest-magnitude entry of each eigenvector is positive.
    flip = np.sign(U[np.argmax(np.abs(U), axis=0), np.arange(U.shape[1])])
    flip[flip == 0] = 1.0
    U, V = U * flip, V * flip
    return Decomposition(s, U, V.reshape(H.N, H.K, -1), H.frobenius2())


def lag_covariance(y: np.ndarray, window: int) -> np.ndarray:
    """X X^T of shape (L, L) summed over channels, y of shape (n_samples, n_channels).

    The first row is an FFT cross-correlation; the rest follow the diagonal recursion
    C[i+1, j+1] = C[i, j] + x[i+K] x[j+K] - x[i] x[j], so the cost is O(T log T + L^2).
    """
    from scipy import fft

    T = y.shape[0]
    L = int(window)
    K = T - L + 1
    n = fft.next_fast_len(T + K, real=True)
    yt = np.ascontiguousarray(y.T)
    first = fft.irfft(np.conj(fft.rfft(yt[:, :K], n)) * fft.rfft(yt, n), n)[:, :L].sum(axis=0)
    a, b = y[K : K + L - 1], y[: L - 1]
    step = a @ a.T - b @ b.T  # (L-1, L-1)
    C = np.empty((L, L))
    C[0] = first
    for i in range(1, L):
        C[i, i:] = C[i - 1, i - 1 : L - 1] + step[i - 1, i - 1 :]
    iu = np.triu_indices(L, 1)
    C[iu[1], iu[0]] = C[iu]
    return C


def _top_eigh(G: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    """Leading r eigenvectors (columns) and square roots of the eigenvalues of a PSD matrix."""
    from scipy.linalg import eigh

    n = G.shape[0]
    w, V = eigh(G, subset_by_index=[n - r, n - 1], driver="evx")
    order = np.argsort(w)[::-1]
    return V[:, order], np.sqrt(np.clip(w[order], 0.0, None))


def _orth(A: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the columns of a tall A via its Gram matrix (twice, for accuracy);
    LAPACK's Householder QR is far slower on tall-skinny matrices under thread contention."""
    for _ in range(2):
        w, V = np.linalg.eigh(A.T @ A)
        keep = w > 1e-12 * max(w[-1], 1e-300)
        A = A @ (V[:, keep] / np.sqrt(w[keep]))
    return A


def elementary(dec: Decomposition, n_samples: int) -> np.ndarray:
    """Diagonal averages of each rank-one term, shape (r, n_samples, n_channels)."""
    from scipy.fft import next_fast_len

    L = dec.U.shape[0]
    K = dec.V.shape[1]

    n = next_fast_len(n_samples, real=True)
    fu = np.fft.rfft(dec.U * dec.sigma, n, axis=0)  # (nf, r)
    fv = np.fft.rfft(dec.V, n, axis=1)  # (N, nf, r)
    conv = np.fft.irfft(fu[None] * fv, n, axis=1)[:, :n_samples]  # (N, T, r)
    t = np.arange(n_samples)
    w = np.minimum.reduce([t + 1, np.full(n_samples, min(L, K)), n_samples - t])
    return (conv / w[None, :, None]).transpose(2, 1, 0)


def w_correlation(F: np.ndarray, window: int) -> np.ndarray:
    """Weighted correlations between reconstructed components F of shape (r, n_samples, N)."""
    r, T, _ = F.shape
    t = np.arange(T)
    K = T - window + 1
    w = np.minimum.reduce([t + 1, np.full(T, min(window, K)), T - t]).astype(float)
    flat = (F * np.sqrt(w)[None, :, None]).reshape(r, -1)
    G = flat @ flat.T
    d = np.sqrt(np.clip(np.diag(G), 1e-300, None))
    return G / np.outer(d, d)


def eigen_spectra(U: np.ndarray, pad: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Periodograms of the eigenvectors: (frequencies in cycles per step, power (r, nf) rows
    summing to 1). Zero-padded ``pad`` times for a fine frequency grid."""
    L = U.shape[0]
    n = pad * L
    P = np.abs(np.fft.rfft(U, n, axis=0)) ** 2
    P = P / P.sum(axis=0, keepdims=True)
    return np.fft.rfftfreq(n), P.T


def band_share(freqs: np.ndarray, P: np.ndarray, f0: float, half_width: float) -> float:
    """Share of a normalized periodogram within ``f0 +- half_width``."""
    return float(P[np.abs(freqs - f0) <= half_width].sum())


def pair_frequency(U2: np.ndarray) -> float:
    """Frequency (cycles per step) of an eigenvector pair U2 of shape (L, 2) by shift
    invariance (ESPRIT): U2[1:] ~ U2[:-1] @ A, the eigenvalues of A are exp(+-2 pi i f)."""
    A = np.linalg.lstsq(U2[:-1], U2[1:], rcond=None)[0]
    ev = np.linalg.eigvals(A)
    return float(np.max(np.abs(np.angle(ev))) / (2 * np.pi))


def noise_threshold(L: int, M: int, alpha: float = 0.01) -> float:
    """Factor over the expected noise eigenvalue that a component must exceed.

    The eigenvalue of one noise component is roughly (expected value) x chi2(nu)/nu with
    nu = 2 max(L, M) / min(L, M) (the window averages that many independent stretches), and the
    largest of ~min(L, M)/2 such values is what a noise component reaches: a Bonferroni level
    ``alpha`` over them.
    """
    from scipy.stats import chi2

    nu = 2.0 * max(L, M) / min(L, M)
    m = max(1.0, min(L, M) / 2.0)
    return float(chi2.ppf(1.0 - alpha / m, nu) / nu)


def lrr(U: np.ndarray) -> np.ndarray | None:
    """Coefficients of the linear recurrence of the subspace spanned by U (L, r), shape (L-1,),
    or None when the subspace is vertical (the last coordinate is spanned: nu^2 ~ 1)."""
    pi = U[-1]
    nu2 = float(pi @ pi)
    if nu2 >= 1.0 - 1e-6:
        return None
    return U[:-1] @ pi / (1.0 - nu2)


def recurrent_forecast(signal: np.ndarray, R: np.ndarray, horizon: int) -> np.ndarray:
    """Continue each row of ``signal`` (p, n) by the recurrence R (L-1,): shape (p, horizon)."""
    m = len(R)
    buf = np.concatenate([signal[:, -m:], np.zeros((signal.shape[0], horizon))], axis=1)
    for h in range(horizon):
        buf[:, m + h] = buf[:, h : m + h] @ R
    return buf[:, m:]


def backtest_errors(
    data: np.ndarray, signal: np.ndarray, R: np.ndarray, horizon: int, max_origins: int = 200
) -> np.ndarray | None:
    """Errors of the recurrent forecast from past origins, shape (n_origins, horizon), or None
    when fewer than 20 origins fit. data and signal have shape (n_samples,)."""
    m, T = len(R), len(data)
    first, last = m, T - horizon
    if last - first < 20:
        return None
    origins = np.unique(np.linspace(first, last, min(max_origins, last - first + 1)).astype(int))
    windows = np.stack([signal[o - m : o] for o in origins])
    pred = recurrent_forecast(windows, R, horizon)
    actual = np.stack([data[o : o + horizon] for o in origins])
    return actual - pred


@dataclass
class Unit:
    """A candidate group of eigentriples: one slow component, an oscillating pair, ..."""

    kind: str  # "trend" | "periodic" | "other"
    indices: list[int]
    freq: float  # cycles per step (0 for slow components)
    ratio: float = 0.0  # mean eigenvalue / expected noise eigenvalue
    significant: bool = False


def find_units(U: np.ndarray, conc_min: float = 0.55) -> list[Unit]:
    """Label the eigenvectors U (L, r) by their periodograms.

    slow: at least half the power below 1/L (varies on the scale of the window: trend);
    pair: two eigenvectors at most 3 apart whose joint periodogram has >= ``conc_min`` of its
    power within 1.5/L of one frequency (a sine-cosine pair, Golyandina et al. 2018, sec. 2.4);
    period 2: one eigenvector concentrated at the Nyquist frequency; anything else: other.
    """
    L, r = U.shape
    freqs, P = eigen_spectra(U)
    bw = 1.5 / L
    slow = [band_share(freqs, P[i], 0.0, 1.0 / L) >= 0.5 for i in range(r)]
    used = [False] * r
    units: list[Unit] = []
    for i in range(r):
        if used[i]:
            continue
        used[i] = True
        if slow[i]:
            units.append(Unit("trend", [i], 0.0))
            continue
        best = None
        for j in range(i + 1, min(i + 4, r)):  # the nearest partner that qualifies
            if used[j] or slow[j]:
                continue
            joint = 0.5 * (P[i] + P[j])
            if band_share(freqs, joint, float(freqs[np.argmax(joint)]), bw) >= conc_min:
                best = j
                break
        if best is not None:
            used[best] = True
            f = pair_frequency(U[:, [i, best]])
            units.append(Unit("periodic", [i, best], f))
        elif band_share(freqs, P[i], 0.5, bw) >= conc_min:
            units.append(Unit("periodic", [i], 0.5))
        else:
            units.append(Unit("other", [i], float(freqs[np.argmax(P[i])])))
    return units


def ar1_fit(resid: np.ndarray) -> list[tuple[float, float]]:
    """Red-noise (AR(1)) parameters (lag-1 autocorrelation, variance) of each column of a
    residual of shape (n_samples, n_channels): the null of Allen & Smith (1996)."""
    out = []
    for x in resid.T:
        x = x - x.mean()
        g0 = float(np.mean(x**2))
        phi = float(np.mean(x[1:] * x[:-1]) / g0) if g0 > 0 else 0.0
        out.append((float(np.clip(phi, -0.99, 0.995)), g0))
    return out


def expected_noise_eigen(U: np.ndarray, params: list[tuple[float, float]], K: int) -> np.ndarray:
    """Expected eigenvalue of each eigenvector U (L, r) under independent AR(1) noise in each
    channel: sum_c K gamma0_c u^T Gamma(phi_c) u, where Gamma_ab = phi^|a-b|. Shape (r,)."""
    from scipy.signal import lfilter

    total = np.zeros(U.shape[1])
    for phi, g0 in params:
        fwd = lfilter([1.0], [1.0, -phi], U, axis=0)
        bwd = lfilter([1.0], [1.0, -phi], U[::-1], axis=0)[::-1]
        total += K * g0 * np.sum(U * (fwd + bwd - U), axis=0)
    return total


def test_units(
    units: list[Unit],
    lam: np.ndarray,
    U: np.ndarray,
    F: np.ndarray,
    y: np.ndarray,
    K: int,
    factor: float,
    max_iter: int = 10,
) -> list[tuple[float, float]]:
    """Mark the units that stand out from red noise (Monte Carlo SSA's null, with the expected
    eigenvalue computed exactly instead of by simulation).

    A unit is significant when its mean eigenvalue is at least ``factor`` x the eigenvalue the
    AR(1) null gives its eigenvectors. The null is fitted to the data minus every slow unit (so a
    trend does not pass itself off as red noise) and minus the units found significant so far;
    each round that finds new significant units refits the null without them (Allen & Smith
    1996), until no new unit passes. lam (r,), U (L, r), F (r, T, N), y (T, N).
    Returns the final AR(1) parameters per channel.
    """
    removed = {i for u in units if u.kind == "trend" for i in u.indices}
    params = ar1_fit(y)
    for _ in range(max_iter):
        idx = sorted(removed)
        params = ar1_fit(y - F[idx].sum(axis=0) if idx else y)
        E = np.maximum(expected_noise_eigen(U, params, K), 1e-12 * float(lam.max(initial=1.0)))
        for u in units:
            u.ratio = float(np.mean(lam[u.indices]) / np.mean(E[u.indices]))
            u.significant = u.ratio >= factor
        new = {i for u in units if u.significant for i in u.indices} - removed
        if not new:
            break
        removed |= new
    return params
