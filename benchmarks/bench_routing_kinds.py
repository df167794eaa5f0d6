"""Routing accuracy on the corpus's held-out split, by language and by kind of prompt.

    python benchmarks/bench_routing_kinds.py            # shipped store, every router mode
    python benchmarks/bench_routing_kinds.py --by-kind  # also one row per corpus "kind"

The held-out split is the one the store recorded (never trained on). "English" is every prompt
whose corpus kind is not "foreign"; "other languages" is the rest. The table shows where each
router stage wins or loses, which one overall accuracy hides.
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

    from chronoken.eval.harness import _heldout
    from chronoken.toolkens.router import REJECT, load_router

    kind_of = kinds()
    modes = ("toolken+", "toolken", "similarity", "keyword")
    table: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for mode in modes:
        r = load_router(args.backbone, None, mode)
        examples = _heldout(r, None)
        decisions = r.route_batch([e.prompt for e in examples])
        for ex, dec in zip(examples, decisions, strict=True):
            kind = kind_of.get(ex.prompt, "")
            groups = ["all", "other languages" if kind == "foreign" else "English"]
            if args.by_kind:
                groups.append(f"  {kind or '?'}")
            for g in groups:
                cell = table[g][mode]
                cell[0] += (dec.tool or REJECT) == ex.label
                cell[1] += 1
    print(f"{'held-out prompts':<20}{'n':>6}" + "".join(f"{m:>12}" for m in modes))
    for group, cells in table.items():
        n = cells[modes[0]][1]
        accs = "".join(f"{cells[m][0] / max(1, cells[m][1]):>12.3f}" for m in modes)
        print(f"{group:<20}{n:>6}{accs}")


if __name__ == "__main__":
    main()
