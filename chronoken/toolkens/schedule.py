"""Cross-validated early stopping, with the refit trained alongside the fold models.

Stage 1 fits K fold models, each on the rows outside its fold, and after every epoch each one
scores the rows inside its fold: the summed out-of-fold loss covers every row once and picks
the epoch count (early stopping on K validation splits at once). The fold models are needed
anyway (their out-of-fold scores train the reranker), so choosing the epoch count costs no fit
of its own. A refit on all rows then trains for that count.

The first ``min_epochs - 1`` epochs are not scored (scoring a fold costs about a fifth of its
epoch, and the loss still falls steeply there): the chosen count is at least ``min_epochs``.

The refit need not wait for the choice: the chosen count is never below the best epoch so far,
which only grows, so the refit trains up to it while the fold models go on. Each fit draws from
its own generators, so its weights after k epochs do not depend on which thread ran which
epoch, or when: any number of workers gives the weights of one fit after another.
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
    train : trains one more epoch without scoring (None: ``step`` with its loss unused).
    """

    step: Callable[[], float]
    snapshot: Callable[[], Any]
    restore: Callable[[Any], None]
    train: Callable[[], None] | None = None

    def run(self, scored: bool) -> float:
        """One more epoch; its held-out loss when ``scored``, else NaN."""
        if scored or self.train is None:
            loss = self.step()
            return loss if scored else math.nan
        self.train()
        return math.nan


def cross_validated_epochs(
    folds: list[FoldFit],
    refit_step: Callable[[], None],
    n_rows: int,
    patience: int,
    max_epochs: int,
    workers: int = 1,
    min_delta: float = 1e-4,
    min_epochs: int = 1,
) -> int:
    """Train the fold models epoch by epoch until the mean out-of-fold loss (summed fold losses
    / ``n_rows``) has not improved by ``min_delta`` for ``patience`` epochs (or ``max_epochs``
    ran); meanwhile call ``refit_step`` (one refit epoch) up to the best epoch so far. Epochs
    before ``min_epochs`` are trained but not scored, and count as the best so far.

    Returns the best epoch (at least ``min(min_epochs, max_epochs)``, and at least 1). On return
    every fold model holds its weights of that epoch and ``refit_step`` has run exactly that
    many times.
    """
    best, best_loss, stale = 0, math.inf, 0
    kept: list[Any] = []
    refit_done = 0
    start = max(1, min(min_epochs, max_epochs))  # the first scored epoch

    if workers <= 1:
        for epoch in range(1, max_epochs + 1):
            loss = sum(f.run(epoch >= start) for f in folds) / max(n_rows, 1)
            if epoch < start:
                best = epoch
            elif epoch == start or loss < best_loss - min_delta:
                best, best_loss, stale = epoch, loss, 0
                kept = [f.snapshot() for f in folds]
                while refit_done < best:
                    refit_step()
                    refit_done += 1
            else:
                stale += 1
                if stale >= patience:
                    break
    else:
        with ThreadPoolExecutor(max_workers=workers) as ex:
            refit: Future | None = None
            for epoch in range(1, max_epochs + 1):
                steps = [ex.submit(f.run, epoch >= start) for f in folds]
                pending = set(steps)
                while pending:
                    # Keep one refit epoch queued behind the fold epochs while it may run.
                    if refit is None and refit_done < best:
                        refit = ex.submit(refit_step)
                    done, _ = wait(
                        pending | ({refit} if refit else set()), return_when=FIRST_COMPLETED
                    )
                    if refit is not None and refit in done:
                        refit.result()
                        refit_done, refit = refit_done + 1, None
                    pending -= done
                # Summed in fold order: the same float whatever order the epochs finished in.
                loss = sum(s.result() for s in steps) / max(n_rows, 1)
                if epoch < start:
                    best = epoch
                elif epoch == start or loss < best_loss - min_delta:
                    best, best_loss, stale = epoch, loss, 0
                    kept = [f.snapshot() for f in folds]
                else:
                    stale += 1
                    if stale >= patience:
                        break
            if refit is not None:
                refit.result()
                refit_done += 1
        while refit_done < best:
            refit_step()
            refit_done += 1
    for f, state in zip(folds, kept, strict=True):
        f.restore(state)
    return best
