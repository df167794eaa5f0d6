"""Routing evaluation: accuracy, macro-F1, per-tool and REJECT precision/recall, stage-1 top-k
recall, confusion matrix and routing latency, for any of the four routers on the same data.

Input: a JSONL file of ``{"prompt": str, "tool": "<tool name>" | "reject"}`` lines (optional
``"series"``: a path whose ``describe()`` joins the context; relative to the file's folder), or
nothing: the corpus's held-out split recorded in the toolken store (never seen in training).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chronoken.errors import ChronokenError, RouterError
from chronoken.eval.metrics import classification, percentile_ms

KEYS = (
    "accuracy",
    "macro_f1",
    "reject_precision",
    "reject_recall",
    "topk_recall",
    "per_tool",
    "confusion",
    "latency_ms_p50",
    "latency_ms_p95",
    "n",
)


def heldout_examples(router: Any, corpus: str | Path | None) -> list[Any]:
    """The held-out split: prompts whose hash the store recorded, else the seed-0 split."""
    from chronoken.toolkens.corpus import load_corpus, prompt_hash, split
    from chronoken.toolkens.store import default_store, read_metadata

    examples, _ = load_corpus(router.classes, corpus)
    meta = router.metadata
    if not meta.get("split"):
        try:
            meta = read_metadata(default_store("wordllama"))
        except RouterError:
            meta = {}
    hashes = set(meta.get("split", {}).get("heldout_hashes", []))
    if hashes:
        return [e for e in examples if prompt_hash(e.prompt) in hashes]
    return split(examples, int(meta.get("split", {}).get("seed", 0)))[2]


def _descriptions(examples: list[Any], base: Path | None) -> list[str]:
    from chronoken.series import Series

    cache: dict[str, str] = {}
    out = []
    for ex in examples:
        if not ex.series:
            out.append("")
            continue
        p = Path(ex.series)
        if not p.is_absolute() and base is not None and (base / p).exists():
            p = base / p
        key = str(p)
        if key not in cache:
            try:
                cache[key] = Series.load(p).describe()
            except ChronokenError as exc:
                raise RouterError(
                    f"cannot describe the series {ex.series} of an eval line: {exc}"
                ) from None
        out.append(cache[key])
    return out


def evaluate(
    path: str | Path | None = None,
    *,
    router: str = "toolken+",
    backbone: str | None = None,
    store: str | Path | None = None,
    tools: dict[str, str] | None = None,
    corpus: str | Path | None = None,
) -> dict[str, Any]:
    """Route every prompt one at a time and score the decisions.

    Returns one JSON-able dict with exactly the keys accuracy, macro_f1, reject_precision,
    reject_recall, topk_recall (share of tool-labelled prompts whose tool is in stage 1's top-k,
    k = 3), per_tool ({tool: {precision, recall, f1, support}}), confusion ({true: {predicted:
    n}}), latency_ms_p50, latency_ms_p95 (per-prompt ``route`` time), n.
    """
    from chronoken.toolkens.corpus import REJECT, read_jsonl
    from chronoken.toolkens.router import load_router

    r = load_router(backbone, store, router, tools=tools)
    if path is None:
        examples, base = heldout_examples(r, corpus), None
    else:
        p = Path(path)
        if not p.exists():
            raise RouterError(f"eval file not found: {p}.")
        examples, base = read_jsonl(p), p.parent
        unknown = sorted({e.label for e in examples} - set(r.classes))
        if unknown:
            raise RouterError(
                f"{p} has labels {unknown} that are not tools; use one of {r.classes}."
            )
    if not examples:
        raise RouterError("nothing to evaluate: the eval set is empty.")
    descs = _descriptions(examples, base)
    r.route(examples[0].prompt, descs[0])  # warm-up: lazy tables and caches
    truth, pred, lat, hits, n_tool = [], [], [], 0, 0
    for ex, d in zip(examples, descs, strict=True):
        dec = r.route(ex.prompt, d)
        truth.append(ex.label)
        pred.append(dec.tool or REJECT)
        lat.append(dec.latency_ms)
        if ex.label != REJECT:
            n_tool += 1
            stage1 = sorted(
                (c for c in dec.candidates if c.tool != REJECT), key=lambda c: -c.toolken_score
            )
            hits += ex.label in [c.tool for c in stage1[: r.k]]
    m = classification(truth, pred, r.classes, REJECT)
    out = {
        "accuracy": m["accuracy"],
        "macro_f1": m["macro_f1"],
        "reject_precision": m["reject_precision"],
        "reject_recall": m["reject_recall"],
        "topk_recall": hits / n_tool if n_tool else 1.0,
        "per_tool": m["per_tool"],
        "confusion": m["confusion"],
        "latency_ms_p50": percentile_ms(lat, 50),
        "latency_ms_p95": percentile_ms(lat, 95),
        "n": m["n"],
    }
    return {k: out[k] for k in KEYS}


def format_table(metrics: dict[str, Any]) -> str:
    """The metrics as a plain-text report: summary, per-tool table, confusion matrix."""
    lines = [
        f"n={metrics['n']}  accuracy={metrics['accuracy']:.3f}  macro-F1={metrics['macro_f1']:.3f}  "
        f"top-k recall={metrics['topk_recall']:.3f}",
        f"REJECT precision={metrics['reject_precision']:.3f}  recall={metrics['reject_recall']:.3f}",
        f"latency p50={metrics['latency_ms_p50']:.2f} ms  p95={metrics['latency_ms_p95']:.2f} ms",
        "",
        f"{'tool':<14}{'precision':>10}{'recall':>10}{'f1':>8}{'n':>6}",
    ]
    for tool, row in metrics["per_tool"].items():
        lines.append(
            f"{tool:<14}{row['precision']:>10.3f}{row['recall']:>10.3f}{row['f1']:>8.3f}{row['support']:>6}"
        )
    conf = metrics["confusion"]
    cols = list(next(iter(conf.values())).keys()) if conf else []
    short = [c[:8] for c in cols]
    lines += [
        "",
        "confusion (rows: true, columns: predicted)",
        f"{'':<14}" + "".join(f"{c:>9}" for c in short),
    ]
    for t, row in conf.items():
        lines.append(f"{t:<14}" + "".join(f"{row.get(c, 0):>9}" for c in cols))
    return "\n".join(lines)
