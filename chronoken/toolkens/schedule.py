"""Cross-validated early stopping, with the refit trained alongside the fold models.

Stage 1 fits K fold models, each on the rows outside its fold, and after every epoch each one
scores the rows inside its fold: the summed out-of-fold loss covers every row once and picks
the epoch count (early stopping on K validation splits at once). The fold models are needed
anyway (their out-of-fold scores train the reranker), so choosing the epoch count costs no fit
of its own. A refit on all rows then trains for that count.

The refit need not wait for the choice: the chosen count is never below the best epoch so far,
which only grows, so the refit trains up to it while the fold models go on. Nor do the fold
models wait for each other at the end of an epoch. Each fit draws from its own generators, so
its weights after k epochs do not depend on which thread ran which epoch, or when: any number of
workers gives the weights of one fit after another.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any


@dataclass
class FoldFit:
    """One fold model seen by the scheduler.

    step : trains one more epoch and returns the summed loss over the fold's held-out rows.
    snapshot, restore : read and load back the fold model's weights.
    """

    step: Callable[[], float]
    snapshot: Callable[[], Any]
    restore: Callable[[Any], None]


def cross_validated_epochs(
    folds: list[FoldFit],
    refit_step: Callable[[], None] | None,
    n_rows: int,
    patience: int,
    max_epochs: int,
    workers: int = 1,
    min_delta: float = 1e-4,
) -> int:
    """Train the fold models epoch by epoch until the mean out-of-fold loss (summed fold losses
    / ``n_rows``) has not improved by ``min_delta`` for ``patience`` epochs (or ``max_epochs``
    ran); meanwhile call ``refit_step`` (one refit epoch) up to the best epoch so far. With
    ``refit_step=None`` there is no refit (the fold models are the result).

    Returns the best epoch (at least 1). On return every fold model holds its weights of that
    epoch and ``refit_step`` has run exactly that many times.
    """
    if workers <= 1:
        best, best_loss, stale = 0, math.inf, 0
        kept: list[Any] = []
        refit_done = 0
        for epoch in range(1, max_epochs + 1):
            loss = sum(f.step() for f in folds) / max(n_rows, 1)
            if epoch == 1 or loss < best_loss - min_delta:
                best, best_loss, stale = epoch, loss, 0
                kept = [f.snapshot() for f in folds]
                while refit_step is not None and refit_done < best:
                    refit_step()
                    refit_done += 1
            else:
                stale += 1
                if stale >= patience:
                    break
        for f, state in zip(folds, kept, strict=True):
            f.restore(state)
        return best
    return _unsynchronised(folds, refit_step, n_rows, patience, max_epochs, workers, min_delta)


def _unsynchronised(
    folds: list[FoldFit],
    refit_step: Callable[[], None] | None,
    n_rows: int,
    patience: int,
    max_epochs: int,
    workers: int,
    min_delta: float,
) -> int:
    """``cross_validated_epochs`` on ``workers`` threads.

    The folds do not wait for each other at the end of an epoch: each fold's next epoch is queued
    as soon as its last one is scored, so a worker never idles while another finishes the last
    fold of an epoch (three folds on two workers would otherwise leave one idle for a third of
    the time). An epoch is judged once every fold has scored it, in epoch order; a fold that is
    ahead keeps the snapshots of its epochs not yet judged.
    """
    best, best_loss, stale, judged, stop = 0, math.inf, 0, 0, False
    losses: list[dict[int, float]] = [{} for _ in folds]
    snaps: list[dict[int, Any]] = [{} for _ in folds]
    refit_done = 0
    with ThreadPoolExecutor(max_workers=workers) as ex:
        running: dict[Future, int] = {ex.submit(f.step): i for i, f in enumerate(folds)}
        refit: Future | None = None
        while running:
            # Keep one refit epoch queued behind the fold epochs while it may run.
            if refit is None and refit_step is not None and refit_done < best:
                refit = ex.submit(refit_step)
            done, _ = wait(
                set(running) | ({refit} if refit else set()), return_when=FIRST_COMPLETED
            )
            if refit is not None and refit in done:
                refit.result()
                refit_done, refit = refit_done + 1, None
            for fut in [f for f in running if f in done]:
                i = running.pop(fut)
                epoch = len(losses[i]) + 1
                losses[i][epoch] = fut.result()
                snaps[i][epoch] = folds[i].snapshot()
                while not stop and all(judged + 1 in done_i for done_i in losses):
                    judged += 1
                    # Summed in fold order: the same float whatever order the epochs finished in.
                    loss = sum(lo[judged] for lo in losses) / max(n_rows, 1)
                    if judged == 1 or loss < best_loss - min_delta:
                        best, best_loss, stale = judged, loss, 0
                    else:
                        stale += 1
                        stop = stale >= patience
                    for kept in snaps:
                        for e in [e for e in kept if e <= judged and e != best]:
                            del kept[e]
                if not stop and epoch < max_epochs:
                    running[ex.submit(folds[i].step)] = i
        if refit is not None:
            refit.result()
            refit_done += 1
    while refit_step is not None and refit_done < best:
        refit_step()
        refit_done += 1
    for f, kept in zip(folds, snaps, strict=True):
        f.restore(kept[best])
    return best
