"""K-fold cross-validation of the WordLlama router on train + validation: how corpus and
training changes were chosen (the held-out split and the benchmark sets are never read).

    python benchmarks/cv_routing.py                                   # the shipped settings
    python benchmarks/cv_routing.py --train '{"noisy_copies": 10}'    # a training change
    python benchmarks/cv_routing.py --extra /path/to/round        # a candidate round

The train + validation prompts of the store's split are cut into K folds, stratified by label
and ordered by prompt hash, so a prompt stays in its fold whatever else changes. Each fold is
scored by a router trained on the other folds (plus, with ``--extra``, the candidate prompts:
new prompts only ever train, so the folds being scored stay the same). A change is adopted when
the mean toolken+ accuracy rises and its REJECT F1 does not fall. Each fold takes about a
minute on two cores.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train", default="{}", help="JSON overrides of BAG_TRAIN")
    ap.add_argument("--model", default="{}", help="JSON overrides of the model config")
    ap.add_argument("--extra", default=None, help="folder of <label>.jsonl training-only prompts")
    ap.add_argument("--errors", default=None, help="write the out-of-fold errors to this JSON")
    ap.add_argument("--only", type=int, default=None, help="run this fold only")
    args = ap.parse_args()
    if args.folds < 2 or (args.only is not None and not 0 <= args.only < args.folds):
        ap.error(f"--folds must be at least 2 and --only one of 0..{args.folds - 1}")
    try:
        train_overrides, model_overrides = json.loads(args.train), json.loads(args.model)
    except json.JSONDecodeError as e:
        ap.error(f"--train and --model take a JSON object, like '{{\"noisy_copies\": 10}}': {e}")

    import torch

    from chronoken.eval.metrics import classification
    from chronoken.toolkens import train as T
    from chronoken.toolkens.backbone import load_backbone, torch_threads
    from chronoken.toolkens.corpus import (
        REJECT,
        REJECT_DOC,
        description_pool,
        load_corpus,
        prompt_hash,
        read_jsonl,
        sha256_text,
        split,
        tool_docs,
    )
    from chronoken.toolkens.model import build_model

    bb = load_backbone(None)
    docs = tool_docs(None)
    classes = [*docs, REJECT]
    doc_texts = [docs[c] for c in docs] + [REJECT_DOC]
    examples, _ = load_corpus(classes, None)
    tr, va, _ = split(examples, args.seed)
    pool_ex = tr + va
    extra = []
    if args.extra:
        for path in sorted(Path(args.extra).glob("*.jsonl")):
            if path.stem not in classes:
                ap.error(f"{path.name} in --extra is not <label>.jsonl for a label in {classes}")
            extra += read_jsonl(path, path.stem)
    pool = description_pool()
    k = args.folds
    fold_of: dict[str, int] = {}
    for label in classes:
        items = sorted(
            (e for e in pool_ex if e.label == label),
            key=lambda e: sha256_text(f"cv{args.seed}:{prompt_hash(e.prompt)}"),
        )
        for i, e in enumerate(items):
            fold_of[e.prompt] = i % k

    rows, errors = [], []
    print(
        f"{'fold':>4}{'toolken':>10}{'toolken+':>10}{'REJECT F1':>11}{'(toolken)':>11}"
        f"{'epochs':>8}{'seconds':>9}"
    )
    for f in range(k) if args.only is None else [args.only]:
        held_in = [e for e in pool_ex if fold_of[e.prompt] != f]
        left = [e for e in pool_ex if fold_of[e.prompt] == f]
        itr, iva, ite = split(held_in, args.seed + 1 + f, test=0.0, val=0.15 / 0.85)
        torch.manual_seed(args.seed)
        model = build_model(bb, doc_texts, model_overrides)
        t0 = time.perf_counter()
        with torch_threads(1):
            fit = T._train_bag(
                model,
                itr + ite + extra,
                iva,
                classes,
                pool,
                args.seed,
                None,
                False,
                train_overrides,
            )
        seconds = time.perf_counter() - t0
        p1, p2 = model.scores([e.prompt for e in left], [""] * len(left), rerank=True)
        truth = [e.label for e in left]
        pred1 = [classes[c] for c in p1.argmax(1)]
        pred2 = [classes[c] for c in np.nan_to_num(p2, nan=-1.0).argmax(1)]
        stage1 = classification(truth, pred1, classes, REJECT)
        full = classification(truth, pred2, classes, REJECT)
        row = (stage1["accuracy"], full["accuracy"], full["reject_f1"], stage1["reject_f1"])
        rows.append(row)
        errors += [
            {"prompt": e.prompt, "tool": t, "pred": p}
            for e, t, p in zip(left, truth, pred2, strict=True)
            if t != p
        ]
        print(
            f"{f:>4}{row[0]:>10.4f}{row[1]:>10.4f}{row[2]:>11.4f}{row[3]:>11.4f}"
            f"{fit['stage1_epochs']:>8}{seconds:>9.1f}",
            flush=True,
        )
    m = np.mean(rows, axis=0)
    print(f"{'mean':>4}{m[0]:>10.4f}{m[1]:>10.4f}{m[2]:>11.4f}{m[3]:>11.4f}")
    if args.errors:
        Path(args.errors).write_text(json.dumps(errors, ensure_ascii=False, indent=0))


if __name__ == "__main__":
    main()
