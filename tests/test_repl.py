"""The chat REPL: commands, questions, errors that do not end the session, nothing evaluated."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from chronoken.agent.repl import Repl
from chronoken.errors import RouterError
from chronoken.series import Series
from chronoken.tools import registry


def _run(lines: list[str], ask_fn, series=None):
    out, err = io.StringIO(), io.StringIO()
    repl = Repl(
        series or Series(np.arange(50.0)),
        ask_fn=ask_fn,
        stdin=io.StringIO("\n".join(lines) + "\n"),
        stdout=out,
        stderr=err,
    )
    assert repl.loop() == 0
    return repl, out.getvalue(), err.getvalue()


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[object, str]] = []

    def __call__(self, series, prompt, **kwargs):
        self.calls.append((series, prompt))
        if "fail" in prompt:
            raise RouterError("the router broke. Try again.")
        return SimpleNamespace(report=f"REPORT for {prompt!r} on {series.n_samples} points")


def test_questions_commands_and_save(tmp_path):
    rec = Recorder()
    target = tmp_path / "r.md"
    lines = [
        "forecast 3 steps",
        ":help",
        ":tools",
        ":bogus",
        "please fail",
        ":save " + str(target),
        ":load nile",
        "and now?",
        ":quit",
        "never reached",
    ]
    _, out, err = _run(lines, rec)
    assert [p for _, p in rec.calls] == ["forecast 3 steps", "please fail", "and now?"]
    assert "REPORT for 'forecast 3 steps' on 50 points" in out
    assert ":load FILE" in out  # help
    assert all(f"{t.name}: {t.summary}" in out for t in registry().values())
    assert "error: unknown command ':bogus'" in err and "error: the router broke" in err
    assert (
        target.read_text() == "REPORT for 'forecast 3 steps' on 50 points"
    )  # the last good report
    assert "loaded nile" in out and rec.calls[-1][0].n_samples == 100  # the new series is used
    assert "never reached" not in [p for _, p in rec.calls]


def test_errors_keep_the_session_alive(tmp_path):
    rec = Recorder()
    _, _, err = _run([":save x.md", ":load no/such/file.csv", ":load", "still here"], rec)
    assert "error: no report yet" in err
    assert "error: file not found" in err
    assert "error: give a file or example name" in err
    assert rec.calls[-1][1] == "still here"


def test_input_is_never_evaluated(tmp_path):
    rec = Recorder()
    marker = tmp_path / "pwned"
    code = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    _run([code, f":load {code}"], rec)
    assert not marker.exists()
    assert rec.calls[0][1] == code  # passed on as a question, as text


def test_chat_subprocess_with_the_real_agent(tmp_path):
    """`chronoken chat` driven through stdin: questions answered, :save writes, exit 0."""
    report = tmp_path / "chat.md"
    script = f"where does the flow change?\n:save {report}\n:quit\n"
    proc = subprocess.run(
        [sys.executable, "-m", "chronoken.agent.cli", "chat", "nile"],
        input=script,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    saved = Path(report).read_text()
    assert "# where does the flow change?" in saved and saved.strip() in proc.stdout
