"""Run fits that must train for an epoch count another fit has not chosen yet.

Stage 1 trains one *leader* fit, early-stopped on the validation split, and several
*followers* that must train for exactly the epoch count the leader picks: the refit on train +
validation and the K fold models. A follower's weights after k epochs do not depend on how
long it will run (each fit draws from its own generators), so followers need not wait for the
leader: they run one epoch at a time on the cores the leader leaves free, never past the
leader's current epoch, and keep their weights after every epoch that can still be chosen (the
leader's best epoch so far only grows). When the leader stops, every core goes to the
followers' remaining epochs, the follower with the most epochs left first, so no core idles
while one fold finishes alone. The weights equal those of running the leader and then each
follower for the chosen count, one after another.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class EpochGate:
    """Hands out cores to follower fits one epoch at a time.

    Parameters
    ----------
    followers : int
        Number of follower fits, numbered 0..followers-1.
    workers : int
        Cores in all; the leader holds one until ``decide`` is called.
    """

    def __init__(self, followers: int, workers: int) -> None:
        self._cv = threading.Condition()
        self._free = max(0, workers - 1)
        self._done = [0] * followers
        self._waiting: set[int] = set()
        self.leader_epoch = 0
        self.best = 0
        self.final: int | None = None

    # ---- the leader's side
    def lead(self, epoch: int, best: int) -> None:
        """The leader finished ``epoch``; its best epoch so far is ``best``."""
        with self._cv:
            self.leader_epoch, self.best = epoch, best
            self._cv.notify_all()

    def decide(self, final: int) -> None:
        """The leader stopped and chose ``final`` epochs; its core goes to the followers."""
        with self._cv:
            self.final = final
            self.best = max(self.best, final)
            self._free += 1
            self._cv.notify_all()

    # ---- the followers' side
    def _limit(self) -> int:
        return self.final if self.final is not None else self.leader_epoch

    def next_epoch(self, i: int, done: int) -> bool:
        """Block until follower ``i`` (with ``done`` epochs behind it) may run its next epoch on
        a core (True; it must ``release`` it afterwards), or until it has all the epochs it
        needs (False)."""
        with self._cv:
            self._done[i] = done
            self._waiting.add(i)
            try:
                while True:
                    if self.final is not None and done >= self.final:
                        return False
                    if self._free > 0 and done < self._limit() and self._first_in_line(i):
                        self._free -= 1
                        return True
                    self._cv.wait()
            finally:
                self._waiting.discard(i)
                # Whoever is next in line must re-check now that this follower left the queue.
                self._cv.notify_all()

    def _first_in_line(self, i: int) -> bool:
        limit = self._limit()
        ready = [j for j in self._waiting if self._done[j] < limit]
        # The follower with the most epochs left goes first (then the lower number).
        return min(ready, key=lambda j: (self._done[j], j)) == i

    def release(self) -> None:
        """Give back the core held for one epoch."""
        with self._cv:
            self._free += 1
            self._cv.notify_all()

    @contextmanager
    def core(self) -> Iterator[None]:
        """Hold a core for work outside the epochs (scoring a finished fold)."""
        with self._cv:
            while self._free <= 0:
                self._cv.wait()
            self._free -= 1
        try:
            yield
        finally:
            self.release()


def follow(
    gate: EpochGate,
    i: int,
    fit: Callable[[Callable[[int, int], bool]], Any],
    state: Callable[[], dict],
) -> dict:
    """Run follower ``i``: ``fit(after_epoch)`` trains with ``after_epoch(epoch, _)`` called after
    every epoch (True stops it); ``state()`` returns the fit's current weights. Returns the
    weights after ``gate.final`` epochs."""
    kept: dict[int, dict] = {}
    holding = False

    def after_epoch(epoch: int, _: int) -> bool:
        nonlocal holding
        best, final = gate.best, gate.final
        if epoch >= best and (final is None or epoch <= final):
            kept[epoch] = state()
        for e in [e for e in kept if e < gate.best]:
            del kept[e]
        gate.release()
        holding = False
        holding = gate.next_epoch(i, epoch)
        return not holding

    try:
        holding = gate.next_epoch(i, 0)
        if holding:
            fit(after_epoch)
    finally:
        if holding:
            gate.release()
    assert gate.final is not None
    return kept[gate.final]
