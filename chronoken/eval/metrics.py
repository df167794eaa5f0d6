"""Routing metrics: accuracy, macro-F1, per-class precision/recall, confusion, latency."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _safe(num: float, den: float) -> float:
    return float(num / den) if den else 0.0


def per_class(
    y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str]
) -> dict[str, dict]:
    """precision, recall, f1 and support of each class."""
    out = {}
    for c in classes:
        tp = sum(1 for t, p in zip(y_true, y_pred, strict=True) if t == c and p == c)
        n_pred = sum(1 for p in y_pred if p == c)
        n_true = sum(1 for t in y_true if t == c)
        prec, rec = _safe(tp, n_pred), _safe(tp, n_true)
        f1 = _safe(2 * prec * rec, prec + rec)
        out[c] = {"precision": prec, "recall": rec, "f1": f1, "support": n_true}
    return out


def confusion(
    y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str]
) -> dict[str, dict[str, int]]:
    """Counts as {true class: {predicted class: n}} over ``classes`` (rows and columns)."""
    table = {t: dict.fromkeys(classes, 0) for t in classes}
    for t, p in zip(y_true, y_pred, strict=True):
        table.setdefault(t, dict.fromkeys(classes, 0))
        table[t][p] = table[t].get(p, 0) + 1
    return table


def classification(
    y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str], reject: str = "reject"
) -> dict:
    """accuracy, macro_f1 (over classes with support), per_tool, reject P/R, confusion, n."""
    pc = per_class(y_true, y_pred, classes)
    present = [c for c in classes if pc[c]["support"] > 0]
    n = len(y_true)
    return {
        "accuracy": _safe(sum(t == p for t, p in zip(y_true, y_pred, strict=True)), n),
        "macro_f1": float(np.mean([pc[c]["f1"] for c in present])) if present else 0.0,
        "reject_precision": pc.get(reject, {}).get("precision", 0.0),
        "reject_recall": pc.get(reject, {}).get("recall", 0.0),
        "reject_f1": pc.get(reject, {}).get("f1", 0.0),
        "per_tool": {c: pc[c] for c in classes if c != reject},
        "confusion": confusion(y_true, y_pred, classes),
        "n": n,
    }


def percentile_ms(latencies_ms: Sequence[float], q: float) -> float:
    """The q-th percentile of latencies in milliseconds (0 when there are none)."""
    return (
        float(np.percentile(np.asarray(latencies_ms, dtype=float), q)) if len(latencies_ms) else 0.0
    )
