"""Router speed: single-prompt latency p50/p95, batched throughput, training time.

    python benchmarks/bench_router.py                 # shipped store, default backbone
    python benchmarks/bench_router.py --no-train      # skip the (re)training timing
    python benchmarks/bench_router.py --n 5000 --repeat 3

Single latency is ``Router.route`` per prompt (tokenise, both stages, decision objects);
throughput is ``Router.route_batch`` over --n prompts (corpus prompts, cycled). Training is
``chronoken.toolkens.train.train`` into a temporary folder (the shipped store is untouched).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--backbone", default=None)
    ap.add_argument("--n", type=int, default=5000, help="prompts in the batched run")
    ap.add_argument("--repeat", type=int, default=3, help="batched runs (the best is kept)")
    ap.add_argument("--no-train", action="store_true", help="skip timing a training run")
    args = ap.parse_args()

    from chronoken.toolkens.corpus import REJECT, load_corpus, tool_docs
    from chronoken.toolkens.router import load_router

    classes = [*tool_docs(), REJECT]
    examples, _ = load_corpus(classes)
    prompts = [e.prompt for e in examples]
    rows = []
    for mode in ("toolken+", "toolken", "similarity", "keyword"):
        r = load_router(args.backbone, None, mode)
        r.route_batch(prompts[:64])  # warm-up: lazy tables, caches
        lat = []
        for p in prompts[:1000]:
            t0 = time.perf_counter()
            r.route(p)
            lat.append(1000.0 * (time.perf_counter() - t0))
        batch = [prompts[i % len(prompts)] for i in range(args.n)]
        best = float("inf")
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            r.route_batch(batch)
            best = min(best, time.perf_counter() - t0)
        rows.append((mode, np.percentile(lat, 50), np.percentile(lat, 95), args.n / best))

    train_s = None
    if not args.no_train:
        from chronoken.toolkens.train import train

        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            train(args.backbone, tmp, progress=False)
            train_s = time.perf_counter() - t0

    print(f"{'router':<12}{'p50 ms':>9}{'p95 ms':>9}{'batched prompts/s':>20}")
    for mode, p50, p95, tput in rows:
        print(f"{mode:<12}{p50:>9.3f}{p95:>9.3f}{tput:>20,.0f}")
    if train_s is not None:
        print(f"\ntrain time ({args.backbone or 'wordllama'}): {train_s:.1f} s")


if __name__ == "__main__":
    main()
