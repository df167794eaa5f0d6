"""Fit time and peak memory of each tool with default arguments.

Each case runs in a fresh subprocess so peak RSS is that case's own. Prints a table.

    python benchmarks/bench_tools.py            # all tools, issue sizes
    python benchmarks/bench_tools.py ssa gpr    # a subset

Targets (2-core CPU): changepoints <= 1 s at 10,000; ssa <= 1 s at 10,000;
arima <= 30 s at 10,000; gpr <= 5 s at 10,000; neural_ode <= 30 s at 1,000.
"""

from __future__ import annotations

import json
import subprocess
import sys

SIZES = {
    "changepoints": [1_000, 10_000, 100_000],
    "arima": [1_000, 10_000],
    "ssa": [1_000, 10_000],
    "gpr": [1_000, 10_000],
    "neural_ode": [1_000],
}
TARGETS = {
    ("changepoints", 10_000): 1.0,
    ("ssa", 10_000): 1.0,
    ("arima", 10_000): 30.0,
    ("gpr", 10_000): 5.0,
    ("neural_ode", 1_000): 30.0,
}

CASE = r"""
import json, resource, sys, time
import numpy as np
from chronoken.series import Series
from chronoken.tools import get

name, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
t = np.arange(n)
if name == "neural_ode":
    tt = np.linspace(0, 20, n)
    x = np.exp(-0.1 * tt) * np.cos(2 * tt)
    v = np.gradient(x, tt)
    values = np.c_[x, v] + 0.01 * rng.normal(size=(n, 2))
    series = Series(values, time=tt, names=["position", "velocity"])
else:
    y = 0.002 * t + np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.3, n)
    y[n // 2:] += 2.0
    series = Series(y)
tool = get(name)
args = tool.parse_args()
tool.run(Series(series.values[:50], series.time[:50] if series.time is not None else None,
                series.names), args) if name != "neural_ode" else None  # warm imports
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
result = tool.run(series, args)
dt = time.perf_counter() - t0
rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": dt, "peak_rss_mb": rss1 / 1024, "delta_mb": (rss1 - rss0) / 1024,
                  "model": result.model}))
"""


def main(argv: list[str]) -> None:
    names = argv or list(SIZES)
    print(f"{'tool':<13}{'T':>9}{'fit s':>9}{'target s':>10}{'peak RSS MB':>13}  model")
    for name in names:
        for n in SIZES[name]:
            proc = subprocess.run(
                [sys.executable, "-c", CASE, name, str(n)],
                capture_output=True,
                text=True,
                timeout=900,
            )
            if proc.returncode != 0:
                print(f"{name:<13}{n:>9}  FAILED: {proc.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            target = TARGETS.get((name, n))
            tgt = f"{target:.0f}" if target else "-"
            print(
                f"{name:<13}{n:>9}{r['seconds']:>9.2f}{tgt:>10}{r['peak_rss_mb']:>13.0f}  "
                f"{r['model'][:60]}"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
