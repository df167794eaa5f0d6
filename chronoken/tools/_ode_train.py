"""Training and integration of batched neural ODEs on short sub-trajectories.

Training follows the short-window (multiple-shooting style) recipe: each epoch draws a batch of
random sub-trajectories of the standardised state, integrates every model from the observed
first state of each sub-trajectory and scores the prediction on its remaining points (missing
points masked out). The window grows from 3 points to ``window`` over the first half of the
epochs, and the learning rate decays linearly to a tenth. With a physics prior the field is
f = f_prior + MLP and the loss adds ``prior_weight * mean ||f(z) - f_prior(z)||^2`` (the MLP
output) over up to PRIOR_POINTS training states.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torchdiffeq import odeint

from chronoken.errors import ToolError
from chronoken.tools._ode_data import StateData
from chronoken.tools._ode_model import DTYPE, Field

BATCH = 64
RAMP = 0.5  # fraction of the epochs over which the window grows to its full length
EVAL_EVERY = 10
PATIENCE = 6  # evaluations without improvement, counted once the window is full
MAX_VAL_STEPS = 300
PRIOR_POINTS = 512
MAX_ADAPTIVE_STEPS = 20_000
ANCHOR_ROWS = 10  # rows averaged to estimate the state an integration starts from


@dataclass
class TrainConfig:
    epochs: int
    window: int
    learning_rate: float
    solver: str
    prior_weights: list[float]


@dataclass
class TrainOutcome:
    """Per-model results of one batched training run."""

    best_epoch: list[int]
    val_rmse: list[float | None]
    val_rmse_channels: list[list[float]]
    epochs_run: int
    data_loss: list[float]
    prior_loss: list[float]
    nfe: int
    failed: list[bool] = field(default_factory=list)


def solve(f: Field, z0: torch.Tensor, t: torch.Tensor, solver: str) -> torch.Tensor:
    """Integrate every model from z0 (n_models, batch, n_state) over times t (n_times,) in tau.

    Returns states of shape (n_times, n_models, batch, n_state).
    """
    f.refresh()
    if solver != "dopri5":
        return odeint(f, z0, t, method="rk4")
    try:
        return odeint(
            f,
            z0,
            t,
            method="dopri5",
            rtol=1e-5,
            atol=1e-6,
            options={"max_num_steps": MAX_ADAPTIVE_STEPS},
        )
    except AssertionError as exc:  # torchdiffeq signals a stiff or exploding field this way
        raise ToolError(
            f"the adaptive dopri5 solver needed more than {MAX_ADAPTIVE_STEPS} steps ({exc}); the "
            "learned dynamics are stiff or explode. Use the rk4 solver or a smaller learning rate."
        ) from None


def _schedule(epoch: int, cfg: TrainConfig) -> tuple[int, float]:
    ramp = min(1.0, epoch / max(1.0, RAMP * cfg.epochs))
    w = round(3 + (cfg.window - 3) * ramp)
    lr = cfg.learning_rate * (1.0 - 0.9 * epoch / cfg.epochs)
    return max(3, w), lr


def train(
    f: Field,
    data: StateData,
    n_train: int,
    cfg: TrainConfig,
    seed: int,
    *,
    validate: bool,
    stop_epoch: int | None = None,
) -> TrainOutcome:
    """Train the models of ``f`` on rows [0, n_train) of ``data``.

    validate: score each model every EVAL_EVERY epochs by extrapolating from row n_train - 1
        over the held-out tail; keep each model's best weights and stop when every model has
        gone PATIENCE evaluations without improvement (with a full window).
    stop_epoch: for a refit without validation, the number of epochs to run.
    """
    n_models = f.n_models
    rng = np.random.default_rng(seed)
    z = torch.as_tensor(data.z, dtype=DTYPE)
    zf = torch.as_tensor(data.zf, dtype=DTYPE)
    s = data.stride
    tgrid = torch.arange(cfg.window, dtype=DTYPE) * (s * data.dtau)
    opt = torch.optim.Adam(f.parameters(), lr=cfg.learning_rate)
    weights = torch.tensor(cfg.prior_weights, dtype=DTYPE)
    use_prior = bool(np.any(np.asarray(cfg.prior_weights) > 0))
    prior_rows = np.linspace(0, n_train - 1, min(n_train, PRIOR_POINTS)).round().astype(int)
    zp = zf[prior_rows]

    val = _validation_grid(data, n_train) if validate else None
    best = [float("inf")] * n_models
    best_channels: list[list[float]] = [[float("nan")] * data.n_observed] * n_models
    best_epoch = [0] * n_models
    best_state: list[dict | None] = [None] * n_models
    stale = [0] * n_models
    active = np.ones(n_models, dtype=bool)
    failed = np.zeros(n_models, dtype=bool)
    last_data = [float("nan")] * n_models
    last_prior = [0.0] * n_models
    epoch = 0
    for epoch in range(1, (stop_epoch or cfg.epochs) + 1):
        w, lr = _schedule(epoch, cfg)
        for group in opt.param_groups:
            group["lr"] = lr
        span = (w - 1) * s
        starts = rng.integers(0, n_train - span, size=BATCH)
        idx = starts[:, None] + s * np.arange(w)[None, :]
        z0 = zf[starts].unsqueeze(0).expand(n_models, -1, -1)
        pred = solve(f, z0, tgrid[:w], cfg.solver)[1:]  # (w-1, models, batch, state)
        target = z[idx[:, 1:]].permute(1, 0, 2).unsqueeze(1)  # (w-1, 1, batch, state)
        mask = ~torch.isnan(target)
        err = torch.where(mask, pred - torch.nan_to_num(target), torch.zeros(()))
        data_loss = err.pow(2).sum(dim=(0, 2, 3)) / mask.sum().clamp(min=1)
        prior_loss = torch.zeros(n_models, dtype=DTYPE)
        if use_prior:  # f - f_prior is the MLP part of the field
            prior_loss = f.mlp(zp.unsqueeze(0).expand(n_models, -1, -1)).pow(2).sum(-1).mean(-1)
        per_model = data_loss + weights * prior_loss
        failed |= ~torch.isfinite(per_model).numpy()
        if failed.all():
            break
        # Models are independent, so one summed loss gives each its own gradient.
        loss = torch.where(torch.as_tensor(failed), torch.zeros(()), per_model).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        last_data = data_loss.tolist()
        last_prior = prior_loss.tolist()
        if val is not None and epoch % EVAL_EVERY == 0:
            per_channel = _val_rmse(f, data, val, cfg.solver)
            rmse = np.sqrt(np.mean(per_channel**2, axis=1))
            for m in np.flatnonzero(active & ~failed):
                if rmse[m] < best[m]:
                    best[m], best_epoch[m], stale[m] = float(rmse[m]), epoch, 0
                    best_channels[m] = per_channel[m].tolist()
                    best_state[m] = _snapshot(f, m)
                elif w == cfg.window:
                    stale[m] += 1
                    active[m] = stale[m] < PATIENCE
            if not (active & ~failed).any():
                break
    if failed.all():
        raise ToolError(
            "neural ODE training diverged for every model. Try a smaller learning rate "
            "(e.g. 'learning rate 0.003'), the rk4 solver, or fewer hidden units."
        )
    if val is not None:
        for m in range(n_models):
            if best_state[m] is not None:
                _restore(f, m, best_state[m])
    else:
        best_epoch = [epoch] * n_models
    return TrainOutcome(
        best_epoch=best_epoch,
        val_rmse=[b if np.isfinite(b) else None for b in best],
        val_rmse_channels=best_channels,
        epochs_run=epoch,
        data_loss=last_data,
        prior_loss=last_prior,
        nfe=f.nfe,
        failed=failed.tolist(),
    )


def _validation_grid(data: StateData, n_train: int) -> tuple[np.ndarray, torch.Tensor]:
    rows = np.arange(n_train - 1, data.n, data.stride)[: MAX_VAL_STEPS + 1]
    return rows, torch.as_tensor((rows - rows[0]) * data.dtau, dtype=DTYPE)


@torch.no_grad()
def _val_rmse(f: Field, data: StateData, val: Any, solver: str) -> np.ndarray:
    """RMSE of shape (n_models, n_observed) over the tail, in standard deviations."""
    rows, t = val
    k = data.n_observed
    nfe = f.nfe
    z0 = anchor_state(f, data, int(rows[0]), ANCHOR_ROWS, solver)
    pred = solve(f, z0, t, solver)[1:, :, 0, :k].numpy()  # (steps, models, k)
    f.calls[0] = nfe  # validation is not training work
    target = data.z[rows[1:], :k][:, None, :]
    err = np.where(np.isnan(target), np.nan, pred - target)
    with np.errstate(invalid="ignore"):
        out = np.sqrt(np.nanmean(err**2, axis=0))
    return np.where(np.isfinite(out), out, np.inf)


def _snapshot(f: Field, m: int) -> dict[str, torch.Tensor]:
    state = {f"f.{k}": v[m].detach().clone() for k, v in f.mlp.state_dict().items()}
    prior = f.prior(m)
    if prior is not None:
        state.update({f"p.{k}": v.detach().clone() for k, v in prior.state_dict().items()})
    return state


@torch.no_grad()
def _restore(f: Field, m: int, state: dict[str, torch.Tensor]) -> None:
    for k, v in f.mlp.state_dict().items():
        v[m].copy_(state[f"f.{k}"])
    prior = f.prior(m)
    if prior is not None:
        for k, v in prior.state_dict().items():
            v.copy_(state[f"p.{k}"])


@torch.no_grad()
def anchor_state(
    f: Field, data: StateData, target: int, n_rows: int, solver: str, *, backward: bool = False
) -> torch.Tensor:
    """Estimate of the state at row ``target`` per model, shape (n_models, 1, n_state).

    An observation is noisy; averaging the model's predictions of the state at ``target`` made
    from each of the ``n_rows`` fully observed rows up to it (integrating forward) or, with
    ``backward``, from it on (integrating backward in time) reduces that noise by about
    sqrt(n_rows) at the price of a short integration.
    """
    near = (
        range(target, min(data.n, target + n_rows))
        if backward
        else range(max(0, target - n_rows + 1), target + 1)
    )
    rows = [r for r in near if not np.isnan(data.z[r]).any()] or [target]
    steps = [abs(r - target) for r in rows]
    z0 = torch.as_tensor(data.zf[rows], dtype=DTYPE).unsqueeze(0).expand(f.n_models, -1, -1)
    t = torch.arange(max(steps) + 1, dtype=DTYPE) * (data.dtau * (-1 if backward else 1))
    path = solve(f, z0, t, solver) if len(t) > 1 else z0.unsqueeze(0)
    ends = torch.stack([path[k, :, i] for i, k in enumerate(steps)], dim=1)
    return ends.mean(dim=1, keepdim=True)


@torch.no_grad()
def integrate(f: Field, z0: torch.Tensor, n_steps: int, dtau: float, solver: str) -> np.ndarray:
    """States at n_steps + 1 equally spaced times from z0: array (n_steps + 1, n_models, n_state)."""
    t = torch.arange(n_steps + 1, dtype=DTYPE) * dtau
    return solve(f, z0, t, solver)[:, :, 0, :].numpy()


@torch.no_grad()
def window_rmse(f: Field, data: StateData, window: int, solver: str) -> np.ndarray:
    """RMSE per observed channel (standardised) of the ensemble-mean prediction over
    consecutive non-overlapping windows of ``window`` integration steps (the training task)."""
    s, k = data.stride, data.n_observed
    span = (window - 1) * s
    starts = np.arange(0, data.n - span, span) if data.n > span else np.array([0])
    w = window if data.n > span else max(2, (data.n - 1) // s + 1)
    idx = starts[:, None] + s * np.arange(w)[None, :]
    z0 = torch.as_tensor(data.zf[starts], dtype=DTYPE).unsqueeze(0).expand(f.n_models, -1, -1)
    t = torch.arange(w, dtype=DTYPE) * (s * data.dtau)
    pred = solve(f, z0, t, solver)[1:].mean(dim=1).numpy()[..., :k]  # (w-1, starts, k)
    target = data.z[idx[:, 1:]].transpose(1, 0, 2)[..., :k]
    with np.errstate(invalid="ignore"):
        return np.sqrt(np.nanmean((pred - target) ** 2, axis=(0, 1)))
