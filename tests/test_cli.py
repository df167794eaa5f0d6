"""The `chronoken` command line: a few real subprocesses (exit codes, no tracebacks, files written,
import cost) and the rest through ``main()`` in-process (same code path, no import cost)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from chronoken.agent import cli
from chronoken.agent.cli import main, parse_kv
from chronoken.agent.examples import names
from chronoken.errors import ArgsError
from chronoken.tools import registry

ENV = {**os.environ, "MPLBACKEND": "Agg"}
_REAL_LIMIT = cli.limit_blas_threads


@pytest.fixture(autouse=True)
def _keep_threads(monkeypatch):
    """main() in-process must not change this test process's thread settings for other tests."""
    monkeypatch.setattr(cli, "limit_blas_threads", lambda: None)


def _cli(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chronoken.agent.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=ENV,
        timeout=timeout,
    )


# ----------------------------------------------------------------- subprocesses
def test_import_is_light():
    code = (
        "import sys, time; t = time.perf_counter(); import chronoken; chronoken.ask; "
        "chronoken.Answer; dt = time.perf_counter() - t; "
        "heavy = [m for m in ('torch', 'statsmodels', 'matplotlib', 'transformers', 'ruptures', "
        "'sklearn') if m in sys.modules]; print(heavy, dt)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    heavy, seconds = out.stdout.rsplit(" ", 1)
    assert heavy == "[]"
    assert float(seconds) < 1.0


def test_ask_subprocess_writes_json_report_and_figure(tmp_path):
    proc = _cli(
        "ask",
        "nile",
        "where does the flow change?",
        "--json",
        "--report",
        "r.md",
        "--figure",
        "f.png",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["tool"] == "changepoints"
    assert set(answer["timings"]) == {"describe", "route", "args", "fit", "report", "total"}
    assert "figure" not in answer and answer["figure_path"] == "f.png"
    report = (tmp_path / "r.md").read_text()
    assert report == answer["report"] and "![changepoints figure](f.png)" in report
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_user_error_subprocess_exits_2_without_traceback(tmp_path):
    proc = _cli("ask", "no_such_file.csv", "forecast 3 steps", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: file not found: no_such_file.csv")
    assert "Traceback" not in proc.stderr and proc.stdout == ""


# ----------------------------------------------------------------- in-process
def test_tools_and_examples_listings(capsys):
    assert main(["tools"]) == 0
    out = capsys.readouterr().out
    for tool in registry().values():
        assert f"{tool.name} — {tool.summary}" in out
        assert all(f"      {field} (default" in out for field in tool.Args.model_fields)
    assert main(["examples"]) == 0
    out = capsys.readouterr().out
    assert set(names()) >= {"nile", "co2", "sunspots", "oscillator", "sensors"}
    assert all(f"{n}: " in out for n in names())
    assert "with sensor coordinates" in out


def test_run_one_tool_with_args(capsys):
    assert main(["run", "changepoints", "nile", "--arg", "n_bkps=2", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["tool"] == "changepoints" and payload["args"]["n_bkps"] == 2
    assert len(payload["result"]["change_points"]) == 2
    assert main(["run", "changepoints", "nile", "--arg", "n_bkps=1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# changepoints: ")


def test_parse_kv():
    assert parse_kv(["horizon=12", "kernel=rbf", "robust=false", "lags=[1, 2]", "x=none"]) == {
        "horizon": 12,
        "kernel": "rbf",
        "robust": False,
        "lags": [1, 2],
        "x": "none",
    }
    with pytest.raises(ArgsError, match="key=value"):
        parse_kv(["horizon"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def files(tmp_path):
    (tmp_path / "bad.csv").write_text('a,b\n1,"x\n2,3\n')
    (tmp_path / "short.csv").write_text("y\n1\n2\n3\n")
    (tmp_path / "words.csv").write_text("y\nfoo\nbar\n")
    return tmp_path


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ask", "{d}/missing.csv", "forecast"], "file not found"),
        (["ask", "{d}/words.csv", "forecast"], "no numeric column"),
        (["ask", "{d}/bad.csv", "forecast"], "cannot read"),
        (["ask", "nile", "forecast", "--column", "rain"], "unknown column"),
        (["run", "prophet", "nile"], "unknown tool 'prophet'"),
        (["run", "changepoints", "nile", "--arg", "n_bkps"], "bad --arg 'n_bkps'"),
        (
            ["run", "changepoints", "nile", "--arg", "n_bkps=-3"],
            "invalid arguments for changepoints",
        ),
        (
            ["run", "changepoints", "nile", "--arg", "colour=red"],
            "invalid arguments for changepoints",
        ),
        (["run", "changepoints", "{d}/short.csv"], "needs at least"),
        (
            ["ask", "nile", "find change points", "--backbone", "gpt-17"],
            "unknown backbone 'gpt-17'",
        ),
        (["ask", "nile", "   "], "prompt is empty"),
        (
            ["ask", "nile", "where does the flow change?", "--writer", "openai", "--writer-strict"],
            "unreachable",
        ),
        (["ask", "nile", "where does the flow change?", "--writer", "poet"], "unknown writer"),
    ],
)
def test_user_errors_exit_2_with_a_message(argv, message, files, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{_free_port()}/v1")
    argv = [a.replace("{d}", str(files)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err


def test_unreachable_writer_without_strict_falls_back(capsys, monkeypatch):
    url = f"http://127.0.0.1:{_free_port()}/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    assert main(["ask", "nile", "where does the flow change?", "--writer", "openai"]) == 0
    out = capsys.readouterr().out
    assert "# where does the flow change?" in out
    assert f"Writer notice: the writer endpoint {url} is unreachable" in out


def test_debug_shows_the_traceback():
    with pytest.raises(ArgsError):
        main(["run", "changepoints", "nile", "--arg", "oops", "--debug"])


def test_eval_prints_metrics(capsys):
    assert main(["eval", "--router", "keyword", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    for key in ("accuracy", "macro_f1", "reject_precision", "reject_recall", "topk_recall"):
        assert 0.0 <= metrics[key] <= 1.0
    assert main(["eval", "--router", "keyword"]) == 0
    assert capsys.readouterr().out.startswith(
        f"n={metrics['n']}  accuracy={metrics['accuracy']:.3f}"
    )


def test_blas_threads_limited_unless_the_user_chose(monkeypatch):
    calls = []
    monkeypatch.setattr("threadpoolctl.threadpool_limits", lambda **kw: calls.append(kw))
    for var in cli._THREAD_VARS:
        monkeypatch.setenv(var, "x")  # recorded, so the test's changes are undone afterwards
        monkeypatch.delenv(var)
    _REAL_LIMIT()
    assert all(os.environ[v] == "1" for v in cli._THREAD_VARS)
    assert calls == [{"limits": 1, "user_api": "blas"}]
    for var in cli._THREAD_VARS:
        monkeypatch.delenv(var)
    monkeypatch.setenv("OMP_NUM_THREADS", "4")  # the user's choice wins
    _REAL_LIMIT()
    assert "OPENBLAS_NUM_THREADS" not in os.environ and len(calls) == 1
