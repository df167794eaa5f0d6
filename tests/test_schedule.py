"""Followers that train beside a leader fit until it chooses their epoch count."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from chronoken.toolkens.schedule import EpochGate, follow


def _run(
    leader_losses: list[float], followers: int, workers: int, patience: int = 2
) -> tuple[int, list[dict], list[tuple[int, int, int]], tuple[int, int]]:
    """A leader that early-stops on ``leader_losses`` and followers whose "weights" after k
    epochs are {"epoch": k}. Returns (chosen epoch, follower results, (follower, its epoch, the
    leader's epoch when it ran) for every follower epoch, (most followers running at once, the
    same while the leader still ran))."""
    gate = EpochGate(followers, workers)
    lock = threading.Lock()
    log: list[tuple[int, int, int]] = []
    running = [0, 0, 0]  # now, most at once, most at once while the leader still ran

    def run(i: int) -> dict:
        state = {"epoch": 0}

        def fit(after_epoch: Callable[[int, int], bool]) -> None:
            for epoch in range(1, len(leader_losses) + 1):
                with lock:
                    running[0] += 1
                    running[1] = max(running[1], running[0])
                    if gate.final is None:
                        running[2] = max(running[2], running[0])
                    log.append((i, epoch, gate.leader_epoch))
                time.sleep(0.002 * (1 + i))  # followers of different speeds
                state["epoch"] = epoch
                with lock:
                    running[0] -= 1
                if after_epoch(epoch, epoch):
                    return

        return follow(gate, i, fit, lambda: dict(state))

    with ThreadPoolExecutor(max_workers=followers) as ex:
        futures = [ex.submit(run, i) for i in range(followers)]
        best, best_loss, stale = 0, float("inf"), 0
        for epoch, loss in enumerate(leader_losses, 1):
            time.sleep(0.01)
            if loss < best_loss:
                best, best_loss, stale = epoch, loss, 0
            else:
                stale += 1
            gate.lead(epoch, best)
            if stale >= patience:
                break
        gate.decide(max(best, 1))
        results = [f.result() for f in futures]
    return best, results, log, (running[1], running[2])


def test_followers_end_with_the_weights_of_the_chosen_epoch() -> None:
    losses = [5.0, 4.0, 3.0, 2.5, 2.6, 2.7, 2.8, 2.9, 3.0, 3.1]
    best, results, log, _ = _run(losses, followers=4, workers=2)
    assert best == 4
    assert results == [{"epoch": 4}] * 4
    # Each follower ran its epochs in order, and none past the leader's epoch at the time.
    for i in range(4):
        epochs = [e for j, e, _ in log if j == i]
        assert epochs == list(range(1, len(epochs) + 1))
    assert all(epoch <= leader for _, epoch, leader in log)


def test_followers_use_only_the_cores_left() -> None:
    losses = [5.0 - 0.1 * k for k in range(12)] + [9.0] * 3
    for workers in (2, 3):
        _, results, _, (most, most_leading) = _run(losses, followers=4, workers=workers)
        # The leader keeps one core until it stops; then the followers get all of them.
        assert most_leading <= workers - 1
        assert most <= workers
        assert results == [{"epoch": 12}] * 4


def test_a_leader_that_stops_at_once_still_gives_one_epoch() -> None:
    best, results, _, _ = _run([1.0, 2.0, 3.0], followers=2, workers=2)
    assert best == 1 and results == [{"epoch": 1}] * 2


def test_a_failing_follower_frees_its_core() -> None:
    gate = EpochGate(2, 2)

    def broken(after_epoch: Callable[[int, int], bool]) -> None:
        after_epoch(1, 1)
        raise RuntimeError("boom")

    def fine(after_epoch: Callable[[int, int], bool]) -> None:
        for epoch in range(1, 10):
            if after_epoch(epoch, epoch):
                return

    with ThreadPoolExecutor(max_workers=2) as ex:
        bad = ex.submit(follow, gate, 0, broken, dict)
        good = ex.submit(follow, gate, 1, fine, lambda: {"ok": True})
        for epoch in range(1, 4):
            time.sleep(0.01)
            gate.lead(epoch, epoch)
        gate.decide(3)
        assert good.result(timeout=10) == {"ok": True}
        with pytest.raises(RuntimeError, match="boom"):
            bad.result(timeout=10)
