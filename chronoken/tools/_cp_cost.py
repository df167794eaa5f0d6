"""Segment costs for change point search, vectorised with cumulative sums.

A cost maps a segment ``[start, end)`` of a signal of shape (n_samples, n_channels) to a
number (lower is a better fit); channels add up. Unlike ruptures' costs, which take one
segment per call, :class:`SegmentCost` takes arrays of starts and ends, so a search can score
every candidate split in one numpy call. The values equal ruptures' ``CostL2``, ``CostNormal``
(diagonal covariance) and ``CostLinear`` on ``[1, t]`` up to the variance floor.

- ``l2``: residual sum of squares around the segment mean (Gaussian, known variance).
- ``normal``: ``n * sum_j log(var_j)``, a change in mean and/or variance (Gaussian, unknown
  variance per segment and channel); ``var_j`` is floored at ``var_floor``.
- ``linear``: residual sum of squares around the segment's least-squares line in time.
"""

from __future__ import annotations

from typing import Any

import numpy as np

KINDS = ("l2", "normal", "linear")
MIN_SIZE = {"l2": 1, "normal": 2, "linear": 3}


class SegmentCost:
    """Cost of segments of ``signal`` (array of shape (n_samples, n_channels))."""

    def __init__(self, signal: np.ndarray, kind: str = "l2", var_floor: float = 1e-4) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown cost {kind!r}; expected one of {KINDS}")
        x = np.asarray(signal, dtype=float)
        if x.ndim == 1:
            x = x[:, None]
        self.kind = kind
        self.var_floor = float(var_floor)
        self.n_samples = int(x.shape[0])
        self.min_size = MIN_SIZE[kind]
        x = x - np.median(x, axis=0)  # fewer digits lost in the cumulative sums
        self._uni = x.shape[1] == 1
        if self._uni:  # 1-D arrays: half the numpy overhead per call in the searches
            x = x[:, 0]
        zero = np.zeros((1, *x.shape[1:]))
        self._s1 = np.concatenate([zero, np.cumsum(x, axis=0)])
        self._s2 = np.concatenate([zero, np.cumsum(x * x, axis=0)])
        if kind == "linear":
            t = np.arange(self.n_samples) - self.n_samples / 2.0
            tx = t * x if self._uni else t[:, None] * x
            self._st = np.concatenate([zero, np.cumsum(tx, axis=0)])

    def __call__(self, start: Any, end: Any) -> np.ndarray:
        """Costs of segments ``[start, end)``; ``start`` and ``end`` broadcast (ints or arrays)."""
        s = np.asarray(start)
        e = np.asarray(end)
        n = np.subtract(e, s, dtype=float)
        if not self._uni:
            n = n[..., None]
        sy = self._s1[e] - self._s1[s]
        syy = self._s2[e] - self._s2[s]
        syy -= sy * sy / np.maximum(n, 1.0)
        if self.kind == "linear":
            tbar = np.add(s, e - 1, dtype=float) / 2.0 - self.n_samples / 2.0
            if not self._uni:
                tbar = tbar[..., None]
            stt = n * (n * n - 1.0) / 12.0
            sty = self._st[e] - self._st[s] - tbar * sy
            syy -= sty * sty / np.maximum(stt, 0.5)  # stt is 0 only for 1-point segments
        syy = np.maximum(syy, 0.0)
        if self.kind == "normal":
            out = n * np.log(np.maximum(syy / np.maximum(n, 1.0), self.var_floor))
        else:
            out = syy
        return out if self._uni else out.sum(axis=-1)

    def to_end(self, starts: np.ndarray, end: int) -> np.ndarray:
        """Costs of ``[s, end)`` for every s in ``starts`` (int array): the searches' inner loop,
        with as few numpy calls as possible (same values as ``self(starts, end)``)."""
        if not self._uni or self.kind == "linear":
            return self(starts, end)
        n = end - starts
        sy = self._s1[end] - self._s1[starts]
        syy = self._s2[end] - self._s2[starts] - sy * sy / n
        if self.kind == "normal":
            syy /= n
            np.maximum(syy, self.var_floor, out=syy)
            return n * np.log(syy)
        return np.maximum(syy, 0.0, out=syy)

    def total(self, bkps: list[int]) -> float:
        """Sum of segment costs for change points ``bkps`` (first index of each new segment)."""
        edges = [0, *bkps, self.n_samples]
        return float(np.sum(self(edges[:-1], edges[1:])))


def ruptures_cost(kind: str, var_floor: float = 1e-4) -> Any:
    """A ``ruptures.base.BaseCost`` wrapping :class:`SegmentCost`, for ruptures' searches
    (Window, Dynp): same values, one segment per call, O(1) each."""
    from ruptures.base import BaseCost
    from ruptures.exceptions import NotEnoughPoints

    class _Cost(BaseCost):
        model = kind

        def __init__(self) -> None:
            self.min_size = MIN_SIZE[kind]
            self.signal: np.ndarray | None = None
            self._cost: SegmentCost | None = None

        def fit(self, signal: np.ndarray) -> _Cost:
            self.signal = signal.reshape(-1, 1) if signal.ndim == 1 else signal
            self._cost = SegmentCost(self.signal, kind, var_floor)
            return self

        def error(self, start: int, end: int) -> float:
            if end - start < self.min_size:
                raise NotEnoughPoints
            assert self._cost is not None
            return float(self._cost(start, end))

    return _Cost()
