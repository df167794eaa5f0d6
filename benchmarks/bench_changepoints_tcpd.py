"""The changepoints tool on real annotated series: the Turing Change Point Dataset (TCPD).

Reads a folder in TCPD's layout (``DIR/annotations.json`` and ``DIR/<name>/<name>.json`` or, in
a clone of the TCPD repository, ``DIR/datasets/<name>/<name>.json``; see
benchmarks/data/tcpd_README.md for how to get it; the data is not in this repository) and scores
four detectors with TCPD's own metrics (F1 with a 5-point margin and segmentation covering, over
all annotators, as in TCPDBench ``analysis/scripts/metrics.py``):

- chronoken: the changepoints tool with default arguments (every channel of a multi-dimensional
  series at once);
- l2-BIC PELT: ruptures ``Pelt(model="l2", min_size=2, jump=1)`` with penalty
  ``pen = (d + 1) * sigma**2 * log(T)`` (``2 sigma^2 log T`` for one channel: a mean and a
  location per change), on each channel standardised as TCPD does (mean 0, sd 1, ddof=1);
  ``--sigma sd`` (default): sigma^2 = the mean over channels of the sample variance of the
  standardised series (= 1, so pen = 2 log T for one channel); ``--sigma mad``: sigma^2 = the
  mean over channels of (MAD(diff(z)) / (0.6745 sqrt 2))^2, a noise-only estimate (MAD: median
  absolute deviation from the median);
- l2-BIC Binseg: ruptures ``Binseg(model="l2", min_size=2, jump=1)`` with the same penalty;
- zero: no change point (TCPD's ``zero`` method).

Missing values (null) are linearly interpolated for the ruptures baselines; the tool gets them
as NaN and interpolates them itself.

    python benchmarks/bench_changepoints_tcpd.py --tcpd /tmp/tcpd
    python benchmarks/bench_changepoints_tcpd.py --tcpd /tmp/tcpd --sigma mad --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from itertools import pairwise
from pathlib import Path

import numpy as np

MARGIN = 5
METHODS = ("chronoken", "l2bic_pelt", "l2bic_binseg", "zero")


# ------------------------------------------------------------------ TCPD metrics
# Re-implemented from TCPDBench analysis/scripts/metrics.py (van den Burg & Williams, 2020).
def true_positives(truth: set[int], pred: set[int], margin: int = MARGIN) -> set[int]:
    """True change points matched to a distinct prediction within ``margin`` (no double count)."""
    left = set(pred)
    tp = set()
    for tau in truth:
        close = sorted((abs(tau - x), x) for x in left if abs(tau - x) <= margin)
        if not close:
            continue
        tp.add(tau)
        left.remove(close[0][1])
    return tp


def f_measure(annotations: dict[str, list[int]], pred: list[int], margin: int = MARGIN) -> float:
    """TCPD F1: precision against the union of all annotators' sets, recall averaged over
    annotators; index 0 is added to every set (so the zero detector is not scored 0)."""
    tks = [{*a, 0} for a in annotations.values()]
    x = {*pred, 0}
    tstar = set().union(*tks)
    p = len(true_positives(tstar, x, margin)) / len(x)
    r = sum(len(true_positives(tk, x, margin)) / len(tk) for tk in tks) / len(tks)
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def partition_from_cps(locations: list[int], n_obs: int) -> list[set[int]]:
    """The segments of 0..n_obs-1 cut at ``locations`` (a location starts a new segment)."""
    cuts = sorted({c for c in locations if 0 < c < n_obs})
    edges = [0, *cuts, n_obs]
    return [set(range(a, b)) for a, b in pairwise(edges)]


def cover_single(pred: list[set[int]], truth: list[set[int]]) -> float:
    """Covering of segmentation ``truth`` by ``pred`` (Arbelaez et al. 2010, eq. 8)."""
    n = sum(map(len, pred))
    return sum(len(r) * max(len(r & rp) / len(r | rp) for rp in pred) for r in truth) / n


def covering(annotations: dict[str, list[int]], pred: list[int], n_obs: int) -> float:
    """Segmentation covering averaged over annotators."""
    px = partition_from_cps(pred, n_obs)
    cs = [cover_single(px, partition_from_cps(a, n_obs)) for a in annotations.values()]
    return sum(cs) / len(cs)


# ------------------------------------------------------------------ data
def load_tcpd(root: Path) -> list[tuple[str, np.ndarray, list[str], dict[str, list[int]]]]:
    """(name, values (T, d) with NaN for null, labels, annotations) for every annotated series
    found under ``root``, sorted by name; series without a JSON file are skipped."""
    annotations = json.loads((root / "annotations.json").read_text())
    out = []
    for name in sorted(annotations):
        # DIR/<name>/<name>.json, or a TCPD clone's DIR/datasets/<name>/<name>.json
        found = [
            p for p in (root / name, root / "datasets" / name) if (p / f"{name}.json").exists()
        ]
        if not found:
            continue
        path = found[0] / f"{name}.json"
        data = json.loads(path.read_text())
        t, d = data["n_obs"], data["n_dim"]
        x = np.full((t, d), np.nan)
        for j, s in enumerate(data["series"]):
            x[:, j] = [np.nan if v is None else float(v) for v in s["raw"]]
        labels = [s.get("label", f"V{j + 1}") for j, s in enumerate(data["series"])]
        out.append((name, x, labels, annotations[name]))
    return out


def _interp(x: np.ndarray) -> np.ndarray:
    out = x.copy()
    idx = np.arange(len(x))
    for j in range(x.shape[1]):
        bad = np.isnan(out[:, j])
        if bad.any():
            out[bad, j] = np.interp(idx[bad], idx[~bad], out[~bad, j])
    return out


def _standardise(x: np.ndarray) -> np.ndarray:
    sd = np.nanstd(x, axis=0, ddof=1)
    return (x - np.nanmean(x, axis=0)) / np.where(sd > 0, sd, 1.0)


# ------------------------------------------------------------------ detectors
def bic_penalty(z: np.ndarray, sigma: str) -> float:
    """(d + 1) sigma^2 log T on the standardised series ``z`` of shape (T, d)."""
    t, d = z.shape
    if sigma == "sd":
        s2 = float(np.mean(np.std(z, axis=0, ddof=1) ** 2))
    else:
        dz = np.diff(z, axis=0)
        mad = np.median(np.abs(dz - np.median(dz, axis=0)), axis=0) / (0.6745 * math.sqrt(2))
        s2 = float(np.mean(mad**2)) or 1e-12
    return (d + 1) * s2 * math.log(t)


def detect(method: str, x: np.ndarray, labels: list[str], sigma: str) -> list[int]:
    """Change point indices (first index of each new segment) of ``method`` on ``x`` (T, d)."""
    if method == "zero":
        return []
    if method == "chronoken":
        from chronoken.series import Series
        from chronoken.tools import run_tool

        names = [f"{i}_{lab}" for i, lab in enumerate(labels)]
        return list(run_tool("changepoints", Series(x, names=names)).change_points)
    import ruptures as rpt

    z = _standardise(_interp(x))
    pen = bic_penalty(z, sigma)
    algo = rpt.Pelt if method == "l2bic_pelt" else rpt.Binseg
    bkps = algo(model="l2", min_size=2, jump=1).fit(z).predict(pen=pen)
    return [int(b) for b in bkps[:-1]]


# ------------------------------------------------------------------ report
def run(root: Path, sigma: str) -> tuple[list[dict], dict[str, float]]:
    rows, seconds = [], dict.fromkeys(METHODS, 0.0)
    for name, x, labels, ann in load_tcpd(root):
        row = {"name": name, "T": len(x), "d": x.shape[1], "annotations": ann}
        for m in METHODS:
            t0 = time.perf_counter()
            try:
                cps, err = detect(m, x, labels, sigma), None
            except Exception as e:  # a failure is scored like TCPD scores a failed run: no CPs
                cps, err = [], f"{type(e).__name__}: {e}"
            seconds[m] += time.perf_counter() - t0
            row[m] = {
                "cps": cps,
                "f1": f_measure(ann, cps),
                "cover": covering(ann, cps, len(x)),
                "error": err,
            }
        rows.append(row)
    return rows, seconds


def table(rows: list[dict], seconds: dict[str, float], sigma: str) -> str:
    show = ("chronoken", "l2bic_pelt", "l2bic_binseg", "zero")
    head = f"{'series':<20}{'T':>6}{'d':>3} " + "".join(f"{m[:14]:>16}" for m in show)
    sub = f"{'':<29} " + "".join(f"{'F1   cover':>16}" for _ in show)
    lines = [f"TCPD, margin {MARGIN}, BIC sigma={sigma}", head, sub]
    for r in rows:
        cells = "".join(f"{r[m]['f1']:>9.3f}{r[m]['cover']:>7.3f}" for m in show)
        flag = " !" if any(r[m]["error"] for m in show) else ""
        lines.append(f"{r['name']:<20}{r['T']:>6}{r['d']:>3} {cells}{flag}")
    n = len(rows)
    means = "".join(
        f"{np.mean([r[m]['f1'] for r in rows]):>9.3f}{np.mean([r[m]['cover'] for r in rows]):>7.3f}"
        for m in show
    )
    lines.append(f"{'MEAN (' + str(n) + ' series)':<29} {means}")
    for other in ("zero", "l2bic_pelt", "l2bic_binseg"):
        for metric in ("f1", "cover"):
            a = np.array([r["chronoken"][metric] for r in rows])
            b = np.array([r[other][metric] for r in rows])
            w, t = int(np.sum(a > b + 1e-12)), int(np.sum(np.abs(a - b) <= 1e-12))
            lo = n - w - t
            lines.append(f"chronoken vs {other:<13} {metric:<5}: win {w}, tie {t}, loss {lo}")
    lines.append("seconds: " + ", ".join(f"{m} {seconds[m]:.2f}" for m in METHODS))
    errors = [(r["name"], m, r[m]["error"]) for r in rows for m in show if r[m]["error"]]
    lines += [f"! {nm} {m}: {e}" for nm, m, e in errors]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tcpd", required=True, type=Path, help="folder in TCPD's layout")
    ap.add_argument("--sigma", choices=("sd", "mad"), default="sd", help="sigma of the BIC penalty")
    ap.add_argument("--json", type=Path, help="write per-series predictions and scores here")
    a = ap.parse_args(argv)
    if not (a.tcpd / "annotations.json").exists():
        print(
            f"{a.tcpd / 'annotations.json'} not found: point --tcpd at a folder in TCPD's layout "
            "(see benchmarks/data/tcpd_README.md)",
            file=sys.stderr,
        )
        return 2
    t0 = time.perf_counter()
    rows, seconds = run(a.tcpd, a.sigma)
    if not rows:
        print(f"no annotated series found under {a.tcpd}", file=sys.stderr)
        return 1
    print(table(rows, seconds, a.sigma))
    print(f"total wall time {time.perf_counter() - t0:.1f} s")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
