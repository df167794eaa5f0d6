"""Routing accuracy on the corpus's held-out split, by language and by kind of prompt.

    python benchmarks/bench_routing_kinds.py            # shipped store, every router mode
    python benchmarks/bench_routing_kinds.py --by-kind  # also one row per corpus "kind"

The held-out split is the one the store recorded (never trained on). "English" is every prompt
whose corpus kind is not "foreign"; "other languages" is the rest. The tables (accuracy, then
REJECT F1) show where each router stage wins or loses, which one overall figure hides.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path


def kinds() -> dict[str, str]:
    """Prompt -> its corpus kind ("" when the line has none)."""
    folder = Path(__file__).resolve().parents[1] / "chronoken" / "prompts"
    out = {}
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                obj = json.loads(line)
                out[obj["prompt"]] = obj.get("kind", "")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--backbone", default=None)
    ap.add_argument("--by-kind", action="store_true", help="one row per corpus kind as well")
    args = ap.parse_args()

    from chronoken.eval.harness import heldout_examples
    from chronoken.eval.metrics import classification
    from chronoken.toolkens.router import REJECT, load_router

    kind_of = kinds()
    modes = ("toolken+", "toolken", "similarity", "keyword")
    # Per group and mode: (true labels, predicted labels).
    table: dict[str, dict[str, tuple[list[str], list[str]]]] = defaultdict(
        lambda: defaultdict(lambda: ([], []))
    )
    for mode in modes:
        r = load_router(args.backbone, None, mode)
        examples = heldout_examples(r, None)
        decisions = r.route_batch([e.prompt for e in examples])
        for ex, dec in zip(examples, decisions, strict=True):
            kind = kind_of.get(ex.prompt, "")
            groups = ["all", "other languages" if kind == "foreign" else "English"]
            if args.by_kind:
                groups.append(f"  {kind or '?'}")
            for g in groups:
                truth, pred = table[g][mode]
                truth.append(ex.label)
                pred.append(dec.tool or REJECT)
    classes = sorted(
        {label for cells in table.values() for t, p in cells.values() for label in t + p}
    )
    scores = {
        g: {m: classification(t, p, classes, REJECT) for m, (t, p) in cells.items()}
        for g, cells in table.items()
    }
    for title, key in (("accuracy", "accuracy"), ("REJECT F1", "reject_f1")):
        print(f"{title + ' (held-out)':<24}{'n':>6}" + "".join(f"{m:>12}" for m in modes))
        for group, cells in scores.items():
            row = "".join(f"{cells[m][key]:>12.3f}" for m in modes)
            print(f"{group:<24}{cells[modes[0]]['n']:>6}{row}")
        print()


if __name__ == "__main__":
    main()
