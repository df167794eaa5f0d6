"""Change point searches over a vectorised :class:`~chronoken.tools._cp_cost.SegmentCost`.

Every search returns change points as the 0-based index of the first observation of each new
segment, sorted, without 0 and without ``n_samples`` (ruptures returns ``bkps + [n_samples]``).
Candidate positions are the multiples of ``jump`` that leave ``min_size`` points on each side,
as in ruptures, so for the same cost and penalty these give ruptures' answers.

- :func:`pelt`: optimal partition for a penalty per change (Killick, Fearnhead & Eckley 2012),
  with PELT pruning; each step scores all admissible last change points in one numpy call.
- :func:`binseg`: binary segmentation, stopping at ``n_bkps`` or when the best split gains
  less than the penalty.
- :func:`optimal_k`: the optimal partition with exactly ``k`` changes (dynamic programming,
  O(k P^2) for P candidate positions).
- :func:`refine`: moves each change point to the best position within ``jump`` of it, holding
  its neighbours fixed (undoes the grid after a search with ``jump > 1``).
"""

from __future__ import annotations

import heapq
from typing import Protocol

import numpy as np


class Cost(Protocol):
    n_samples: int

    def __call__(self, start: object, end: object) -> np.ndarray: ...

    def to_end(self, starts: np.ndarray, end: int) -> np.ndarray: ...


def grid(n_samples: int, min_size: int, jump: int) -> np.ndarray:
    """Candidate change points: multiples of ``jump`` in [min_size, n_samples - min_size]."""
    first = -(-min_size // jump) * jump
    return np.arange(first, n_samples - min_size + 1, jump, dtype=np.int64)


def pelt(cost: Cost, pen: float, min_size: int, jump: int = 1) -> list[int]:
    """Change points minimising ``sum of segment costs + pen * n_changes``."""
    n = cost.n_samples
    ends = np.append(grid(n, min_size, jump), n)
    f = np.full(n + 1, np.inf)
    f[0] = -pen
    last = np.zeros(n + 1, dtype=np.int64)
    starts = np.zeros(1, dtype=np.int64)  # admissible last change points, ascending
    for e in ends:
        n_ok = int(np.searchsorted(starts, e - min_size, side="right"))  # starts is sorted
        cand = starts[:n_ok]
        vals = f[cand] + cost.to_end(cand, int(e))
        i = int(vals.argmin())
        best = vals[i] + pen
        f[e] = best
        last[e] = cand[i]
        # PELT pruning: a start that cannot beat the optimum now never will (cost additive).
        if e < n:
            starts = np.concatenate([cand[vals <= best], starts[n_ok:], [e]])
    return _backtrack(last, n)


def _backtrack(last: np.ndarray, n: int) -> list[int]:
    out = []
    e = n
    while e > 0:
        e = int(last[e])
        if e > 0:
            out.append(e)
    return sorted(out)


def binseg(
    cost: Cost,
    min_size: int,
    jump: int = 1,
    pen: float | None = None,
    n_bkps: int | None = None,
) -> list[int]:
    """Greedy binary segmentation: split the segment whose best split gains most, until
    ``n_bkps`` changes are placed or the best gain is at most ``pen``."""
    n = cost.n_samples
    positions = grid(n, min_size, jump)
    heap: list[tuple[float, int, int, int]] = []

    def push(s: int, e: int) -> None:
        lo = np.searchsorted(positions, s + min_size)
        hi = np.searchsorted(positions, e - min_size, side="right")
        cand = positions[lo:hi]
        if cand.size == 0:
            return
        gains = cost(s, e) - cost(s, cand) - cost(cand, e)
        i = int(np.argmax(gains))
        heapq.heappush(heap, (-float(gains[i]), int(cand[i]), s, e))

    push(0, n)
    bkps: list[int] = []
    while heap:
        if n_bkps is not None and len(bkps) >= n_bkps:
            break
        neg_gain, b, s, e = heapq.heappop(heap)
        if n_bkps is None and -neg_gain <= (pen or 0.0):
            break
        bkps.append(b)
        push(s, b)
        push(b, e)
    return sorted(bkps)


def optimal_k(cost: Cost, k: int, min_size: int, jump: int = 1) -> list[int]:
    """The partition with exactly ``k`` changes that minimises the sum of segment costs."""
    n = cost.n_samples
    pos = np.concatenate([[0], grid(n, min_size, jump), [n]]).astype(np.int64)
    if k == 0:
        return []
    p = len(pos)
    f = np.full((k + 1, p), np.inf)  # f[j, i]: best cost of pos[i] points with j changes
    arg = np.zeros((k + 1, p), dtype=np.int64)
    for i in range(1, p):
        e = pos[i]
        s_idx = np.arange(i)
        s_idx = s_idx[e - pos[s_idx] >= min_size]
        if s_idx.size == 0:
            continue
        c = cost.to_end(pos[s_idx], int(e))
        if s_idx[0] == 0:
            f[0, i] = c[0]
        prev = f[:k, s_idx] + c[None, :]  # (k, n_starts): j changes before, one more at s
        best = np.argmin(prev, axis=1)
        f[1:, i] = prev[np.arange(k), best]
        arg[1:, i] = s_idx[best]
    if not np.isfinite(f[k, p - 1]):
        return []
    out = []
    i = p - 1
    for j in range(k, 0, -1):
        i = int(arg[j, i])
        out.append(int(pos[i]))
    return sorted(out)


def refine(cost: Cost, bkps: list[int], min_size: int, jump: int) -> list[int]:
    """Move each change point to its best position within ``jump - 1`` of it."""
    if jump <= 1 or not bkps:
        return list(bkps)
    edges = [0, *bkps, cost.n_samples]
    for i in range(1, len(edges) - 1):
        lo = max(edges[i - 1] + min_size, edges[i] - jump + 1)
        hi = min(edges[i + 1] - min_size, edges[i] + jump - 1)
        if hi <= lo:
            continue
        cand = np.arange(lo, hi + 1)
        vals = cost(edges[i - 1], cand) + cost(cand, edges[i + 1])
        edges[i] = int(cand[int(np.argmin(vals))])
    return edges[1:-1]


def refine_kinks(y: np.ndarray, bkps: list[int], min_size: int, radius: int) -> list[int]:
    """Move each change point to the best kink of a *continuous* piecewise linear fit.

    ``y`` has shape (n_samples, n_channels). For change point ``k`` between neighbours ``a``
    and ``b``, every candidate vertex ``v`` within ``radius`` is scored by the residual sum of
    squares of ``y[a:b]`` on ``[1, u, max(u - v, 0)]`` (a line that bends at ``v``); the scores
    of all candidates come from suffix sums in one batched 3x3 solve. Returns the vertices
    (0-based index of the first observation on the new slope's line after the bend).
    """
    if not bkps:
        return []
    n = y.shape[0]
    edges = [0, *bkps, n]
    for i in range(1, len(edges) - 1):
        a, b = edges[i - 1], edges[i + 1]
        lo = max(a + min_size, edges[i] - radius)
        hi = min(b - min_size, edges[i] + radius)
        if hi <= lo:
            continue
        seg = y[a:b]
        length = b - a
        u = np.arange(length, dtype=float) / length  # scaled time keeps the 3x3 systems sane
        seg = seg - seg.mean(axis=0)

        # suffix sums over u >= v for every v in the window
        def suffix(v: np.ndarray) -> np.ndarray:
            return np.concatenate([np.cumsum(v[::-1], axis=0)[::-1], np.zeros((1, *v.shape[1:]))])

        c0 = suffix(np.ones(length))
        c1 = suffix(u)
        c2 = suffix(u * u)
        cy = suffix(seg)
        cuy = suffix(u[:, None] * seg)
        v_idx = np.arange(lo, hi + 1) - a
        kappa = u[v_idx]
        cnt, s1, s2 = c0[v_idx], c1[v_idx], c2[v_idx]
        sh = s1 - kappa * cnt
        shh = s2 - 2 * kappa * s1 + kappa**2 * cnt
        suh = s2 - kappa * s1
        syh = cuy[v_idx] - kappa[:, None] * cy[v_idx]  # (n_cand, n_channels)
        g = np.empty((len(v_idx), 3, 3))
        g[:, 0, 0], g[:, 0, 1], g[:, 1, 1] = length, u.sum(), (u * u).sum()
        g[:, 1, 0] = g[:, 0, 1]
        g[:, 0, 2] = g[:, 2, 0] = sh
        g[:, 1, 2] = g[:, 2, 1] = suh
        g[:, 2, 2] = shh
        rhs = np.empty((len(v_idx), 3, y.shape[1]))
        rhs[:, 0] = seg.sum(axis=0)
        rhs[:, 1] = (u[:, None] * seg).sum(axis=0)
        rhs[:, 2] = syh
        g[:, 2, 2] += 1e-12
        beta = np.linalg.solve(g, rhs)
        explained = np.einsum("kcj,kcj->k", beta, rhs)
        edges[i] = int(lo + int(np.argmax(explained)))
    return edges[1:-1]
