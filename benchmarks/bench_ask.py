"""Cold-start latency of `chronoken ask` and of `import chronoken`.

For each of changepoints, arima, ssa and gpr a 1,000-point series (seeded, written to a temporary
CSV) and a prompt meant for that tool are given to a fresh `chronoken ask ... --json` process; the
wall time from process start to the printed report is measured (target <= 5 s each on a 2-core
CPU), with the tool the router chose and the agent's own stage timings. `import chronoken` is
timed in fresh processes (target <= 1 s).

    python benchmarks/bench_ask.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

N = 1000
TARGET_ASK_S = 5.0
TARGET_IMPORT_S = 1.0


def scenarios(rng: np.random.Generator) -> dict[str, tuple[np.ndarray, str]]:
    """tool -> (values of shape (N,), prompt)."""
    t = np.arange(N)
    steps = np.repeat([0.0, 3.0, 1.0, 4.0], N // 4)
    ar = np.zeros(N)
    for i in range(1, N):
        ar[i] = 0.7 * ar[i - 1] + rng.normal()
    return {
        "changepoints": (
            steps + rng.normal(0, 1, N),
            "find the change points where the level shifts",
        ),
        "arima": (np.cumsum(ar) * 0.1 + 50, "forecast the next 24 steps with a 95% interval"),
        "ssa": (
            0.01 * t + np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.3, N),
            "decompose the series into trend and seasonal components with singular spectrum analysis",
        ),
        "gpr": (
            np.sin(t / 40.0) + rng.normal(0, 0.2, N),
            "fit a gaussian process with an RBF kernel and show the uncertainty band",
        ),
    }


def command() -> list[str]:
    exe = shutil.which("chronoken")
    return [exe] if exe else [sys.executable, "-m", "chronoken.agent.cli"]


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_ask(path: Path, prompt: str) -> tuple[float, float, dict]:
    """(wall seconds, CPU seconds of the child, its JSON answer) of one cold `chronoken ask`."""
    cpu0, t0 = _child_cpu(), time.perf_counter()
    proc = subprocess.run(
        [*command(), "ask", str(path), prompt, "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    wall, cpu = time.perf_counter() - t0, _child_cpu() - cpu0
    if proc.returncode != 0:
        raise SystemExit(f"chronoken ask failed ({proc.returncode}): {proc.stderr.strip()}")
    return wall, cpu, json.loads(proc.stdout)


def time_import() -> tuple[float, float]:
    """(wall of `python -c "import chronoken"` minus a bare interpreter, in-process import time)."""
    code = "import time; t=time.perf_counter(); import chronoken; print(time.perf_counter()-t)"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    bare = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    full = time.perf_counter() - t0
    return full - bare, float(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median kept)")
    repeat = parser.parse_args().repeat
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for tool, (values, prompt) in scenarios(rng).items():
            path = Path(tmp) / f"{tool}.csv"
            np.savetxt(path, values, header="y", comments="", fmt="%.6f")
            runs = [time_ask(path, prompt) for _ in range(repeat)]
            wall = statistics.median(w for w, _, _ in runs)
            cpu = statistics.median(c for _, c, _ in runs)
            ans = runs[0][2]
            tm = ans["timings"]
            rows.append(
                (
                    tool,
                    ans["tool"] or "reject",
                    wall,
                    cpu,
                    tm["describe"],
                    tm["route"],
                    tm["fit"],
                    tm["total"],
                )
            )
    imports = [time_import() for _ in range(repeat)]
    imp_wall = statistics.median(w for w, _ in imports)
    imp_in = statistics.median(i for _, i in imports)

    load = os.getloadavg()[0]
    print(
        f"chronoken ask, {N}-point series, cold start (median of {repeat}), {os.cpu_count()} CPUs, "
        f"load average {load:.1f}"
    )
    print(
        f"{'meant for':<13} {'routed to':<13} {'wall s':>7} {'cpu s':>6} {'describe ms':>11} "
        f"{'route ms':>9} {'fit ms':>7} {'ask() ms':>9}  target {TARGET_ASK_S:g} s wall"
    )
    for tool, routed, wall, cpu, desc, route, fit, total in rows:
        ok = "ok" if wall <= TARGET_ASK_S else "OVER"
        print(
            f"{tool:<13} {routed:<13} {wall:7.2f} {cpu:6.2f} {desc:11.0f} {route:9.0f} {fit:7.0f} "
            f"{total:9.0f}  {ok}"
        )
    print(
        "(cpu s: user + system CPU time of the process; the run is mostly single-threaded, so "
        "this approximates the wall time on an idle machine. route includes loading the router.)"
    )
    ok = "ok" if imp_wall <= TARGET_IMPORT_S else "OVER"
    print(
        f"\nimport chronoken: {imp_wall:.3f} s wall over a bare interpreter, {imp_in:.3f} s "
        f"in-process (target {TARGET_IMPORT_S:g} s) {ok}"
    )


if __name__ == "__main__":
    main()
