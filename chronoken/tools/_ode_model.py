"""Vector fields for the neural ODE: a batch of independent MLPs and the physics priors.

Several models (candidates or ensemble members) are trained at once: every weight has a leading
axis of size n_models and one batched matrix product evaluates all of them, which costs little
more than one model on a CPU where small-tensor overhead dominates. Gradients and Adam updates
stay separate per model, so training them together equals training them one by one.

States are standardised, z of shape (n_models, batch, n_state), time in units of tau.
This module imports torch at top level; neural_ode.py imports it only inside run(), so
`import chronoken` never loads torch.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import torch
from torch import nn

#: Precision of every tensor: float32 halves the cost of these small products on a CPU.
DTYPE = torch.float32


class BatchedMLP(nn.Module):
    """n_models MLPs dz/dtau = f(z): n_state -> hidden x layers -> n_state.

    Each model is initialised from its own seed (uniform +-1/sqrt(fan_in), as nn.Linear; the last
    layer scaled by 0.1 so the initial field is gentle), so a model's weights do not depend on
    which other models share the batch.
    """

    def __init__(
        self, seeds: list[int], dim: int, hidden: int, layers: int, activation: str
    ) -> None:
        super().__init__()
        sizes = [dim] + [hidden] * layers + [dim]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
            bound = 1.0 / math.sqrt(fan_in) * (0.1 if i == len(sizes) - 2 else 1.0)
            w = torch.empty(len(seeds), fan_in, fan_out, dtype=DTYPE)
            b = torch.empty(len(seeds), 1, fan_out, dtype=DTYPE)
            for m, seed in enumerate(seeds):
                g = torch.Generator().manual_seed(int(seed) * 1009 + i)
                w[m].uniform_(-bound, bound, generator=g)
                b[m].uniform_(-bound, bound, generator=g)
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(b))
        self.act = torch.tanh if activation == "tanh" else nn.functional.softplus
        self.layers = list(
            zip(self.weights, self.biases, strict=True)
        )  # ParameterList indexing is slow

    @property
    def n_weights(self) -> int:
        """Trainable numbers per model."""
        return int(sum(p[0].numel() for p in self.parameters()))

    @property
    def n_models(self) -> int:
        return int(self.weights[0].shape[0])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """MLP output of shape (n_models, batch, n_state) at states z of the same shape."""
        h = z
        for w, b in self.layers[:-1]:
            h = self.act(torch.baddbmm(b, h, w))
        w, b = self.layers[-1]
        return torch.baddbmm(b, h, w)

    def select(self, index: list[int]) -> BatchedMLP:
        """A new BatchedMLP holding copies of models ``index``."""
        out = BatchedMLP.__new__(BatchedMLP)
        nn.Module.__init__(out)
        out.weights = nn.ParameterList(
            [nn.Parameter(w[index].detach().clone()) for w in self.weights]
        )
        out.biases = nn.ParameterList(
            [nn.Parameter(b[index].detach().clone()) for b in self.biases]
        )
        out.act = self.act
        out.layers = list(zip(out.weights, out.biases, strict=True))
        return out


class Field(nn.Module):
    """Vector fields of n_models models: dz/dtau = prior_m(z) + MLP_m(z).

    A model without a prior is the MLP alone. Both priors are affine in the standardised state,
    prior_m(z) = A_m z + b_m, so all of them are applied with one batched product; ``refresh``
    rebuilds (A_m, b_m) from the prior parameters and must run before each integration.
    The physics residual f - f_prior is then the MLP output itself.
    """

    def __init__(self, mlp: BatchedMLP, priors: list[nn.Module | None]) -> None:
        super().__init__()
        self.mlp = mlp
        self.kinds = [p.kind if p is not None else "none" for p in priors]
        self.index = [m for m, p in enumerate(priors) if p is not None]
        self.priors = nn.ModuleList([p for p in priors if p is not None])
        self.calls = [0]  # a list: nn.Module.__setattr__ is too slow to count with an int
        self._bias: torch.Tensor | None = None
        self._matrix: torch.Tensor | None = None

    @property
    def n_models(self) -> int:
        return self.mlp.n_models

    @property
    def nfe(self) -> int:
        """Vector-field evaluations so far (every model counted once per call)."""
        return self.calls[0]

    def prior(self, m: int) -> nn.Module | None:
        """The prior of model m, or None."""
        return self.priors[self.index.index(m)] if m in self.index else None

    def refresh(self) -> None:
        if not self.index:
            return
        dim = self.mlp.weights[0].shape[1]
        zero_a = torch.zeros(dim, dim, dtype=DTYPE)
        zero_b = torch.zeros(dim, dtype=DTYPE)
        affine = {m: p.affine() for m, p in zip(self.index, self.priors, strict=True)}
        self._matrix = torch.stack(
            [affine[m][0].T if m in affine else zero_a for m in range(self.n_models)]
        )
        self._bias = torch.stack(
            [affine[m][1] if m in affine else zero_b for m in range(self.n_models)]
        ).unsqueeze(1)

    def forward(self, t: Any, z: torch.Tensor) -> torch.Tensor:
        """dz/dtau of shape (n_models, batch, n_state) at z of the same shape."""
        self.calls[0] += 1
        out = self.mlp(z)
        if self._matrix is not None:
            out = torch.baddbmm(out + self._bias, z, self._matrix)
        return out

    def select(self, keep: list[int]) -> Field:
        """A Field of models ``keep`` only (their priors shared, not copied)."""
        return Field(self.mlp.select(keep), [self.prior(m) for m in keep])


class LinearPrior(nn.Module):
    """dz/dtau = A z + b in standardised units; A of shape (n_state, n_state)."""

    kind = "linear"

    def __init__(self, a0: np.ndarray, b0: np.ndarray) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.as_tensor(a0, dtype=DTYPE).clone())
        self.b = nn.Parameter(torch.as_tensor(b0, dtype=DTYPE).clone())

    def affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.a, self.b

    def describe(self, time_scale: float) -> dict[str, Any]:
        """A, b and the eigenvalues of A converted to rates per series time unit."""
        a = self.a.detach().numpy()
        eig = np.linalg.eigvals(a) / time_scale
        order = np.argsort(-eig.real)
        eig = eig[order]
        periods = [float(2 * np.pi / abs(e.imag)) if abs(e.imag) > 1e-12 else None for e in eig]
        return {
            "A_standardised": a.round(6).tolist(),
            "b_standardised": self.b.detach().numpy().round(6).tolist(),
            "eigen_growth_rates": [float(e.real) for e in eig],
            "eigen_periods": periods,
        }


class DampedOscillatorPrior(nn.Module):
    """dx/dt = v, dv/dt = -omega^2 (x - x_eq) - 2 zeta omega v in the series' units and time.

    Evaluated on standardised states: x = mu_0 + sigma_0 z_0, v = mu_1 + sigma_1 z_1, and the
    result mapped back, dz_j/dtau = time_scale * (dx_j/dt) / sigma_j.
    """

    kind = "damped_oscillator"

    def __init__(
        self,
        omega0: float,
        zeta0: float,
        x_eq0: float,
        mu: np.ndarray,
        sigma: np.ndarray,
        time_scale: float,
    ) -> None:
        super().__init__()
        self.log_omega = nn.Parameter(torch.tensor(math.log(omega0), dtype=DTYPE))
        # softplus^-1 keeps zeta >= 0 while allowing any value above
        self.raw_zeta = nn.Parameter(torch.tensor(math.log(math.expm1(zeta0)), dtype=DTYPE))
        self.register_buffer("mu", torch.as_tensor(mu[:2], dtype=DTYPE))
        self.register_buffer("sigma", torch.as_tensor(sigma[:2], dtype=DTYPE))
        # the equilibrium is learned in standard deviations so Adam's step suits any units
        x_eq_std = (x_eq0 - float(mu[0])) / float(sigma[0])
        self.x_eq_std = nn.Parameter(torch.tensor(x_eq_std, dtype=DTYPE))
        self.time_scale = time_scale

    def physical(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.log_omega.exp(), nn.functional.softplus(self.raw_zeta)

    @property
    def x_eq(self) -> torch.Tensor:
        return self.mu[0] + self.sigma[0] * self.x_eq_std

    def affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(A, b) with dz/dtau = A z + b for the oscillator in standardised coordinates."""
        omega, zeta = self.physical()
        (m0, m1), (s0, s1), ts = self.mu, self.sigma, self.time_scale
        damping = 2 * zeta * omega
        a = torch.stack(
            [
                torch.stack([torch.zeros((), dtype=DTYPE), ts * s1 / s0]),
                torch.stack([-ts * omega**2 * s0 / s1, -ts * damping]),
            ]
        )
        b = torch.stack([ts * m1 / s0, ts / s1 * (-(omega**2) * (m0 - self.x_eq) - damping * m1)])
        return a, b

    def describe(self, time_scale: float) -> dict[str, Any]:
        omega, zeta = (float(p.detach()) for p in self.physical())
        damped = omega * math.sqrt(1 - zeta**2) if zeta < 1 else 0.0
        return {
            "omega": omega,
            "zeta": zeta,
            "x_equilibrium": float(self.x_eq.detach()),
            "natural_period": 2 * math.pi / omega,
            "damped_period": 2 * math.pi / damped if damped > 0 else None,
        }


def linear_init(zf: np.ndarray, dz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares A, b with dz ~ zf A^T + b; zf, dz of shape (n_samples, n_state)."""
    design = np.column_stack([zf, np.ones(len(zf))])
    coef, *_ = np.linalg.lstsq(design, dz, rcond=None)
    return coef[:-1].T, coef[-1]


def oscillator_init(
    x: np.ndarray, v: np.ndarray, dxdt: np.ndarray, dvdt: np.ndarray, dt: float
) -> tuple[float, float, float, float]:
    """Least-squares omega, zeta, x_eq from dv/dt = a x + b v + c, and the slope of dx/dt on v.

    Arrays of shape (n_samples,) in the series' units; rates per t unit. When the fit gives no
    restoring force (a >= 0) omega falls back to the strongest frequency of x.
    """
    design = np.column_stack([x, v, np.ones(len(x))])
    (a, b, c), *_ = np.linalg.lstsq(design, dvdt, rcond=None)
    if a < 0:
        omega = math.sqrt(-a)
        x_eq = -c / a
    else:
        spec = np.abs(np.fft.rfft(x - x.mean()))
        freqs = np.fft.rfftfreq(len(x), d=dt)
        f = freqs[1:][int(np.argmax(spec[1:]))] if len(freqs) > 1 else 1.0 / (len(x) * dt)
        omega = 2 * math.pi * f
        x_eq = float(x.mean())
    zeta = float(np.clip(-b / (2 * omega), 0.005, 3.0))
    vv = float(np.dot(v - v.mean(), v - v.mean()))
    slope = float(np.dot(v - v.mean(), dxdt - dxdt.mean()) / vv) if vv > 0 else 0.0
    return float(omega), zeta, float(x_eq), slope
