"""Turn a Series into the normalised state trajectory a neural ODE is trained on.

The state z has shape (n_samples, n_state): each observed channel standardised to mean 0 and
standard deviation 1, plus (for a single channel with the derivative embedding) its smoothed
time derivative as a second component. Time is rescaled to tau = (t - t0) / time_scale so the
state moves at a rate of order one per unit tau.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from chronoken import features
from chronoken.errors import SeriesError

#: Longest series trained on; longer ones are subsampled (every k-th point, last point kept).
MAX_POINTS = 5_000
#: Largest state dimension accepted.
MAX_STATE = 20
#: Integration step aimed at, in units of tau (RK4 is accurate far below one).
TARGET_STEP = 0.2


@dataclass
class StateData:
    """A prepared trajectory.

    z : array of shape (n_samples, n_state), standardised state with NaN where missing.
    zf : array of shape (n_samples, n_state), the same with gaps linearly interpolated.
    mu, sigma : arrays of shape (n_state,), state = mu + sigma * z in the series' units.
    t : array of shape (n_samples,), time of each row (series.t_numeric() units, regular grid).
    dt : time between rows in t units; dtau = dt / time_scale in units of tau.
    stride : rows between two training integration steps.
    n_observed : the first n_observed state components are the series' channels.
    n_val : rows at the end held out for selection and early stopping.
    rows : indices of the series rows kept (all of them unless subsampled).
    """

    z: np.ndarray
    zf: np.ndarray
    mu: np.ndarray
    sigma: np.ndarray
    t: np.ndarray
    dt: float
    time_scale: float
    stride: int
    state_names: list[str]
    n_observed: int
    n_val: int
    rows: np.ndarray
    notes: list[str] = field(default_factory=list)

    @property
    def dtau(self) -> float:
        return self.dt / self.time_scale

    @property
    def n(self) -> int:
        return int(self.z.shape[0])

    @property
    def dim(self) -> int:
        return int(self.z.shape[1])

    def to_units(self, z: np.ndarray) -> np.ndarray:
        """Map standardised states (..., n_state) back to the series' units."""
        return self.mu + self.sigma * z


def smooth_derivative(y: np.ndarray, dt: float, half: int = 4, order: int = 3) -> np.ndarray:
    """Savitzky-Golay first derivative of a gap-free 1-D array of shape (n_samples,).

    A cubic is fitted by least squares to each window of 2 * half + 1 points and differentiated
    at the window's centre; the first and last half points use the first and last window
    (as scipy's mode='interp'). Units: y units per t unit, dt the sampling step.
    """
    y = np.asarray(y, dtype=float)
    n = len(y)
    width = min(2 * half + 1, n if n % 2 else n - 1)
    if width < order + 2:
        return np.gradient(y, dt) if n > 1 else np.zeros(n)
    half = width // 2

    def coef(centre: int) -> np.ndarray:
        x = np.arange(width, dtype=float) - centre
        return np.linalg.pinv(np.vander(x, order + 1, increasing=True))[1]

    out = np.empty(n)
    out[half : n - half] = np.convolve(y, coef(half)[::-1], mode="valid")
    for i in range(half):
        out[i] = coef(i) @ y[:width]
        out[n - 1 - i] = coef(width - 1 - i) @ y[n - width :]
    return out / dt


def prepare(
    values: np.ndarray,
    t: np.ndarray,
    names: list[str],
    *,
    embedding: str,
    window: int,
    validation_fraction: float,
) -> StateData:
    """Build the standardised state from values (n_samples, n_channels) and times (n_samples,).

    Raises SeriesError for too many channels, a constant series, or too few points for the
    training windows plus the validation tail.
    """
    notes: list[str] = []
    n, k = values.shape
    rows = np.arange(n)
    if n > MAX_POINTS:
        step = int(np.ceil(n / MAX_POINTS))
        rows = np.arange(n - 1, -1, -step)[::-1]
        values, t = values[rows], t[rows]
        notes.append(
            f"The series has {n} points; the neural ODE is trained on one point in {step} "
            f"({len(rows)} points, the last observation kept) to stay within {MAX_POINTS} points."
        )
        n = len(rows)
    diffs = np.diff(t)
    dt = float(np.median(diffs))
    if not np.allclose(diffs, dt, rtol=0.01, atol=0.0):
        grid = t[0] + dt * np.arange(n)
        grid[-1] = t[-1]
        values = np.column_stack(
            [np.interp(grid, t[~np.isnan(c)], c[~np.isnan(c)]) for c in values.T]
        )
        t = grid
        notes.append(
            "Time stamps are irregular; the series was linearly interpolated onto a regular grid "
            f"with step {dt:g} (median spacing) before training."
        )
    filled = np.column_stack([features.fill_gaps(c) for c in values.T])
    use_derivative = embedding == "derivative" or (embedding == "auto" and k == 1)
    state_names = list(names)
    if use_derivative:
        deriv = np.column_stack([smooth_derivative(c, dt) for c in filled.T])
        values = np.column_stack([values, deriv])
        filled = np.column_stack([filled, deriv])
        state_names += [f"d{name}/dt" for name in names]
        notes.append(
            "Derivative embedding: the state is [" + ", ".join(state_names) + "], the "
            "derivative estimated by a Savitzky-Golay filter (9 points, cubic), so a single "
            "channel can carry second-order (oscillating) dynamics."
        )
    dim = filled.shape[1]
    if dim > MAX_STATE:
        raise SeriesError(
            f"neural_ode models at most {MAX_STATE} state components; this series gives {dim}. "
            "Select fewer channels (e.g. --columns a,b)."
        )
    mu = filled.mean(axis=0)
    sigma = filled.std(axis=0)
    constant = [state_names[j] for j in range(k) if sigma[j] == 0]
    if constant:
        notes.append(
            f"Constant channel(s) {constant} carry no dynamics; they are kept as flat states."
        )
    sigma = np.where(sigma > 0, sigma, 1.0)
    z = (values - mu) / sigma
    zf = (filled - mu) / sigma
    # Time scale: one tau is the time the standardised state needs to move by about one.
    rate = float(np.sqrt(np.mean([smooth_derivative(c, dt) ** 2 for c in zf[:, :k].T])))
    dtau = float(np.clip(dt * rate, 1e-3, 0.5)) if rate > 0 else 0.1
    time_scale = dt / dtau
    n_val = max(5, round(validation_fraction * n))
    n_train = n - n_val
    min_train = 3 * 3
    if n_train < min_train:
        raise SeriesError(
            f"neural_ode needs at least {min_train + n_val} observations with a validation tail "
            f"of {n_val}; this series has {n}. Provide a longer series."
        )
    # Stride: integrate in steps of about TARGET_STEP tau, while a full window still fits
    # into a third of the training rows.
    stride = max(1, round(TARGET_STEP / dtau))
    stride = max(1, min(stride, (n_train // 3) // max(window - 1, 1)))
    return StateData(
        z=z,
        zf=zf,
        mu=mu,
        sigma=sigma,
        t=t,
        dt=dt,
        time_scale=time_scale,
        stride=stride,
        state_names=state_names,
        n_observed=k,
        n_val=n_val,
        rows=rows,
        notes=notes,
    )
