"""Neural ODE fitting pipeline: prepare the state, select a prior on a validation tail, refit an
ensemble on the whole series, forecast and describe. Returns plain Python values that
neural_ode.py turns into its Result.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from chronoken.errors import ArgsError
from chronoken.series import Series
from chronoken.tools import _ode_train as tr
from chronoken.tools._ode_data import StateData, prepare, smooth_derivative
from chronoken.tools._ode_model import (
    BatchedMLP,
    DampedOscillatorPrior,
    Field,
    LinearPrior,
    linear_init,
    oscillator_init,
)

PRIOR_LABEL = {
    "none": "no prior",
    "linear": "linear prior dx/dt = A x + b",
    "damped_oscillator": "damped-oscillator prior",
}


@contextmanager
def torch_settings(seed: int) -> Iterator[None]:
    """One thread and a seeded RNG, the caller's settings restored afterwards.

    Every operation used (dense CPU products, elementwise maps) is deterministic on one
    thread, so torch.use_deterministic_algorithms is not needed; it would cost a 2 s import.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tensors here are tiny: threads only add overhead
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        torch.set_num_threads(threads)


def candidate_priors(prior: str, dim: int) -> list[str]:
    """Priors tried in the selection: the MLP alone and the MLP with each applicable prior."""
    if prior == "damped_oscillator" and dim != 2:
        raise ArgsError(
            f"the damped_oscillator prior needs a 2-D state [position, velocity]; this series "
            f"gives a {dim}-D state. Give one channel (its derivative is added) or two channels "
            "(position, velocity), or use prior='linear'."
        )
    if prior == "none":
        return ["none"]
    if prior == "auto":
        return ["none", "linear"] + (["damped_oscillator"] if dim == 2 else [])
    return ["none", prior]


def build_prior(kind: str, data: StateData, n_rows: int) -> torch.nn.Module | None:
    """A prior initialised by least squares on rows [0, n_rows) of the trajectory."""
    if kind == "none":
        return None
    zf = data.zf[:n_rows]
    dz = np.column_stack([smooth_derivative(c, data.dtau) for c in zf.T])
    if kind == "linear":
        return LinearPrior(*linear_init(zf, dz))
    x, v = data.to_units(zf)[:, 0], data.to_units(zf)[:, 1]
    omega, zeta, x_eq, _ = oscillator_init(
        x, v, smooth_derivative(x, data.dt), smooth_derivative(v, data.dt), data.dt
    )
    return DampedOscillatorPrior(omega, zeta, x_eq, data.mu, data.sigma, data.time_scale)


def describe_priors(priors: list[torch.nn.Module], time_scale: float) -> dict[str, Any]:
    """Learned prior parameters averaged over ensemble members (per-member values kept)."""
    if not priors:
        return {}
    with torch.no_grad():
        if priors[0].kind == "linear":
            a = torch.stack([p.a for p in priors]).mean(0).numpy()
            b = torch.stack([p.b for p in priors]).mean(0).numpy()
            return LinearPrior(a, b).describe(time_scale)
    each = [p.describe(time_scale) for p in priors]
    out: dict[str, Any] = {}
    for key in each[0]:
        vals = [e[key] for e in each]
        out[key] = None if any(v is None for v in vals) else float(np.mean(vals))
    if len(each) > 1:
        out["omega_members"] = [e["omega"] for e in each]
        out["zeta_members"] = [e["zeta"] for e in each]
    return out


def fit(series: Series, args: Any) -> dict[str, Any]:
    """Run the whole pipeline; ``args`` is a validated NeuralODE.Args."""
    data = prepare(
        series.values,
        series.t_numeric(),
        list(series.names),
        embedding=args.embedding,
        window=args.window,
        validation_fraction=args.validation_fraction,
    )
    notes = list(data.notes)
    if args.embedding == "none" and series.n_channels == 1:
        notes.append(
            "No embedding: the state is the single channel, so the fitted dynamics are "
            "first order and cannot oscillate."
        )
    if series.n_missing:
        notes.append(
            f"{series.n_missing} missing value(s) are masked out of the training loss; "
            "sub-trajectories starting at a gap start from the linearly interpolated value."
        )
    kinds = candidate_priors(args.prior, data.dim)
    n_val = data.n_val
    n_train = data.n - n_val
    window = max(3, min(args.window, (n_train - 1) // data.stride))
    if window < args.window:
        notes.append(
            f"Training window shortened from {args.window} to {window} steps to fit "
            f"the {n_train} training points."
        )
    cfg = tr.TrainConfig(
        epochs=args.epochs,
        window=window,
        learning_rate=args.learning_rate,
        solver=args.solver,
        prior_weights=[0.0 if k == "none" else args.prior_weight for k in kinds],
    )
    with torch_settings(args.seed):
        # Stage 1: every candidate (same initial weights and windows) on the head of the series.
        mlp = BatchedMLP(
            [args.seed] * len(kinds), data.dim, args.hidden, args.layers, args.activation
        )
        priors = [build_prior(k, data, n_train) for k in kinds]
        sel = tr.train(Field(mlp, priors), data, n_train, cfg, args.seed, validate=True)
        scores = [None if fail else v for v, fail in zip(sel.val_rmse, sel.failed, strict=True)]
        best = int(np.argmin([np.inf if s is None else s for s in scores]))
        kind = kinds[best]
        if all(s is None for s in scores):
            notes.append(
                "No candidate gave a finite error on the validation tail (the learned dynamics "
                "diverge there); the first candidate was kept. Treat the forecast with suspicion."
            )
        # Stage 2: an ensemble of the selected model refitted on the whole series.
        n_members = args.ensemble
        seeds = [args.seed + 1 + m for m in range(n_members)]
        g = Field(
            BatchedMLP(seeds, data.dim, args.hidden, args.layers, args.activation),
            [build_prior(kind, data, data.n) for _ in range(n_members)],
        )
        cfg.prior_weights = [0.0 if kind == "none" else args.prior_weight] * n_members
        refit_epochs = max(tr.EVAL_EVERY, sel.best_epoch[best])
        final = tr.train(
            g, data, data.n, cfg, args.seed + 1, validate=False, stop_epoch=refit_epochs
        )
        keep = [m for m in range(n_members) if not final.failed[m]]
        if len(keep) < n_members:
            notes.append(f"{n_members - len(keep)} ensemble member(s) diverged and were dropped.")
            g = g.select(keep)
        members = list(g.priors)
        out = _outputs(series, data, g, args, window)
        out["params"] = {
            "prior": kind,
            **(describe_priors(members, data.time_scale) if kind != "none" else {}),
            "n_weights": g.mlp.n_weights,
            "hidden": args.hidden,
            "layers": args.layers,
            "activation": args.activation,
            "time_scale": data.time_scale,
        }
        cand_params = [p.describe(data.time_scale) if p is not None else {} for p in priors]
    k = data.n_observed
    val_units = _pool(np.asarray(sel.val_rmse_channels[best]) * data.sigma[:k])
    out["fit"].update(
        {
            "validation_rmse": val_units,
            "validation_relative_rmse": _pool(np.asarray(sel.val_rmse_channels[best])),
        }
    )
    out["selection"] = [
        {
            "name": _candidate_name(kd, args, cp),
            "score": s,
            "criterion": f"RMSE of the {n_val}-point validation-tail extrapolation in standard "
            "deviations (lower is better)",
            "selected": i == best,
        }
        for i, (kd, s, cp) in enumerate(zip(kinds, scores, cand_params, strict=True))
    ]
    field = "MLP(z)" if kind == "none" else "prior(z) + MLP(z)"
    out["model"] = (
        f"Neural ODE dz/dt = {field} ({args.layers}x{args.hidden} {args.activation} MLP, "
        f"{data.dim}-D state [{', '.join(data.state_names)}], autonomous), {PRIOR_LABEL[kind]}"
        + (f" (residual weight {args.prior_weight:g})" if kind != "none" else "")
        + f", {args.solver} solver, ensemble of {len(keep)}"
    )
    out["diagnostics"].update(
        {
            "solver": args.solver,
            "state": data.state_names,
            "selection_epochs_run": sel.epochs_run,
            "selection_best_epochs": dict(zip(kinds, sel.best_epoch, strict=True)),
            "refit_epochs": refit_epochs,
            "final_data_loss": float(np.mean([final.data_loss[m] for m in keep])),
            "final_prior_loss": float(np.mean([final.prior_loss[m] for m in keep])),
            "nfe_training": sel.nfe + final.nfe,
            "window": window,
            "stride": data.stride,
            "dtau": data.dtau,
            "n_train_selection": n_train,
            "n_validation": n_val,
            "n_points_trained": data.n,
            "ensemble": len(keep),
        }
    )
    if kind == "damped_oscillator":
        zf = data.to_units(data.zf)
        slope = oscillator_init(
            zf[:, 0],
            zf[:, 1],
            smooth_derivative(zf[:, 0], data.dt),
            smooth_derivative(zf[:, 1], data.dt),
            data.dt,
        )[3]
        out["diagnostics"]["dxdt_vs_v_slope"] = slope
        if abs(slope - 1) > 0.3:
            notes.append(
                f"The prior assumes d{data.state_names[0]}/dt = {data.state_names[1]}, but the "
                f"data give a slope of {slope:.2f} instead of 1; read omega and zeta with care."
            )
    if args.horizon > 0:
        notes.append(
            f"Forecast: the mean of {len(keep)} ensemble members (different random "
            "initialisations); lower/upper are the members' range, a spread, not a calibrated "
            "prediction interval."
            if len(keep) > 1
            else "Forecast: a single model, no interval."
        )
    out["notes"] = notes
    return out


def _outputs(series: Series, data: StateData, g: Field, args: Any, window: int) -> dict:
    """Forecast, fitted trajectory and fit measures of the final ensemble."""
    k = data.n_observed
    z_end = tr.anchor_state(g, data, data.n - 1, tr.ANCHOR_ROWS, args.solver)
    t_all = series.t_numeric()
    step = float(np.median(np.diff(t_all))) if len(t_all) > 1 else data.dt
    nfe0 = g.nfe
    path = data.to_units(tr.integrate(g, z_end, args.horizon, step / data.time_scale, args.solver))
    nfe_forecast = g.nfe - nfe0
    labels = series.future_labels(args.horizon)
    forecasts = []
    for j in range(k if args.horizon > 0 else 0):
        member = path[1:, :, j]  # (horizon, members)
        forecasts.append(
            {
                "channel": data.state_names[j],
                "steps": labels,
                "mean": member.mean(axis=1).tolist(),
                "lower": member.min(axis=1).tolist() if member.shape[1] > 1 else None,
                "upper": member.max(axis=1).tolist() if member.shape[1] > 1 else None,
            }
        )
    z0 = tr.anchor_state(g, data, 0, tr.ANCHOR_ROWS, args.solver, backward=True)
    traj = data.to_units(tr.integrate(g, z0, data.n - 1, data.dtau, args.solver)).mean(axis=1)
    obs = data.to_units(data.z)[:, :k]
    traj_rel = np.sqrt(np.nanmean(((traj[:, :k] - obs) / data.sigma[:k]) ** 2, axis=0))
    win_rel = tr.window_rmse(g, data, window, args.solver)
    return {
        "forecasts": forecasts,
        "trajectory": traj[:, :k].tolist(),
        "trajectory_t": data.t.tolist(),
        "fit": {
            "train_rmse": _pool(win_rel * data.sigma[:k]),
            "train_relative_rmse": _pool(win_rel),
            "trajectory_rmse": _pool(traj_rel * data.sigma[:k]),
            "trajectory_relative_rmse": _pool(traj_rel),
        },
        "diagnostics": {"nfe_forecast": nfe_forecast},
    }


def _pool(per_channel: np.ndarray) -> float:
    """Root mean square over channels."""
    return float(np.sqrt(np.mean(np.square(per_channel))))


def _candidate_name(kind: str, args: Any, described: dict[str, Any]) -> str:
    name = f"MLP {args.layers}x{args.hidden} {args.activation}"
    if kind == "none":
        return name + " (no prior)"
    name += f" + {PRIOR_LABEL[kind]} (residual weight {args.prior_weight:g}"
    if kind == "damped_oscillator":
        name += f"; omega {described['omega']:.4g}, zeta {described['zeta']:.3g}"
    return name + ")"
