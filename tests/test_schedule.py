"""Cross-validated early stopping with the refit trained beside the fold models."""

from __future__ import annotations

import threading
import time

import pytest

from chronoken.toolkens.schedule import FoldFit, cross_validated_epochs


class _Fold:
    """A fold "model" whose weights are its epoch count and whose held-out loss follows a
    given curve."""

    def __init__(self, losses: list[float], delay: float = 0.0) -> None:
        self.losses, self.delay = losses, delay
        self.epoch = 0
        self.scored: list[int] = []
        self.restored: int | None = None

    def step(self) -> float:
        self.train()
        self.scored.append(self.epoch)
        return self.losses[self.epoch - 1]

    def train(self) -> None:
        time.sleep(self.delay)
        self.epoch += 1

    def snapshot(self) -> int:
        return self.epoch

    def restore(self, epoch: int) -> None:
        self.restored = epoch
        self.epoch = epoch


def _run(
    curves: list[list[float]],
    workers: int,
    patience: int = 2,
    delay: float = 0.0,
    min_epochs: int = 1,
):
    folds = [_Fold(c, delay) for c in curves]
    lock = threading.Lock()
    refit_log: list[tuple[int, list[int]]] = []  # (refit epoch, fold epochs when it ran)

    def refit_step() -> None:
        with lock:
            refit_log.append((len(refit_log) + 1, [f.epoch for f in folds]))
        time.sleep(delay)

    best = cross_validated_epochs(
        [FoldFit(f.step, f.snapshot, f.restore, f.train) for f in folds],
        refit_step,
        n_rows=10,
        patience=patience,
        max_epochs=len(curves[0]),
        workers=workers,
        min_epochs=min_epochs,
    )
    return best, folds, refit_log


# Summed loss per epoch: 9, 7, 5, 6, 5.5, 8, ... -> best epoch 3, stop after epoch 5.
CURVES = [[5, 4, 3, 3, 3, 5, 5], [4, 3, 2, 3, 2.5, 3, 3]]


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_stops_on_the_summed_out_of_fold_loss(workers: int) -> None:
    best, folds, refit_log = _run(CURVES, workers, delay=0.01)
    assert best == 3
    assert all(f.restored == 3 for f in folds)  # weights of the best epoch are back
    assert len(refit_log) == 3  # the refit trained exactly the chosen count


def test_refit_never_runs_past_the_best_epoch_so_far() -> None:
    # Loss falls every epoch: the refit may follow the fold models one epoch behind.
    curves = [[10 - e for e in range(8)], [10 - e for e in range(8)]]
    best, _, refit_log = _run(curves, workers=2, delay=0.01)
    assert best == 8 and len(refit_log) == 8
    for k, fold_epochs in refit_log:
        # Refit epoch k ran only once some fold epoch >= k had been scored as the best.
        assert max(fold_epochs) >= k


@pytest.mark.parametrize("workers", [1, 2])
def test_epochs_before_min_epochs_are_trained_but_not_scored(workers: int) -> None:
    # Scored from epoch 2 on: the same choice as scoring every epoch (best 3, stop after 5).
    best, folds, refit_log = _run(CURVES, workers, delay=0.01, min_epochs=2)
    assert best == 3 and all(f.restored == 3 for f in folds) and len(refit_log) == 3
    assert all(f.scored == [2, 3, 4, 5] for f in folds)
    # A loss that only rises would stop at epoch 1; unscored epochs count as the best so far,
    # so the count is min_epochs, and the refit follows the fold models there.
    rising = [[1.0 + e for e in range(9)], [2.0 + e for e in range(9)]]
    best, folds, refit_log = _run(rising, workers, delay=0.01, min_epochs=4)
    assert best == 4 and all(f.restored == 4 for f in folds) and len(refit_log) == 4
    assert all(f.scored == [4, 5, 6] for f in folds)  # patience 2 after epoch 4
    # min_epochs past max_epochs: the last epoch is the one scored.
    best, folds, _ = _run([[3.0, 2.0, 1.0]], workers, min_epochs=10)
    assert best == 3 and folds[0].scored == [3]


def test_min_delta_and_first_epoch() -> None:
    # A loss that never improves keeps epoch 1; an improvement below min_delta does not count.
    best, folds, refit_log = _run([[1.0, 1.0, 1.0, 0.99999]], workers=1, patience=3)
    assert best == 1 and folds[0].restored == 1 and len(refit_log) == 1


def test_a_failing_fold_raises() -> None:
    def boom() -> float:
        raise RuntimeError("fold failed")

    for workers in (1, 2):
        with pytest.raises(RuntimeError, match="fold failed"):
            cross_validated_epochs(
                [FoldFit(boom, lambda: 0, lambda s: None)], lambda: None, 1, 2, 5, workers
            )
