"""``chronoken chat``: keep one series loaded and answer prompt after prompt.

Lines starting with ``:`` are commands (``:help``); every other line is a question passed to
:func:`chronoken.agent.ask.ask` as text. Nothing typed is ever evaluated as code. With a terminal,
readline gives line editing and a history (~/.chronoken_history); without one (a pipe) the loop
reads lines from stdin and prints no prompt.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from chronoken.errors import ChronokenError

HELP = """Type a question about the series, e.g. "forecast the next 12 steps", or a command:
  :help            this help
  :tools           what the tools do
  :examples        the bundled example series
  :load FILE       load another series (a file or an example name)
  :save FILE.md    save the last report
  :quit            leave (also :q, :exit, Ctrl-D)"""

HISTORY = Path.home() / ".chronoken_history"


class Repl:
    """A question loop over one series.

    series: the loaded Series. ask_fn: the agent (``ask``; injectable for tests). backbone,
    writer: passed to ask_fn. stdin/stdout/stderr: the streams to use.
    """

    def __init__(
        self,
        series: Any,
        *,
        backbone: Any = None,
        writer: Any = None,
        ask_fn: Callable[..., Any] | None = None,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.series = series
        self.backbone = backbone
        self.writer = writer
        self.ask_fn = ask_fn
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.last: Any = None
        self.interactive = self.stdin is sys.stdin and _isatty(self.stdin)

    # ------------------------------------------------------------------ io
    def say(self, text: str) -> None:
        print(text, file=self.stdout, flush=True)

    def error(self, text: str) -> None:
        print(f"error: {text}", file=self.stderr, flush=True)

    def lines(self) -> Any:
        if self.interactive:
            _enable_history()
            while True:
                try:
                    yield input("chronoken> ")
                except EOFError:
                    self.say("")
                    return
        else:
            yield from self.stdin

    # ------------------------------------------------------------------ commands
    def handle(self, line: str) -> bool:
        """Act on one line; False means leave the loop."""
        line = line.strip()
        if not line or line.startswith("#"):
            return True
        if not line.startswith(":"):
            self.question(line)
            return True
        cmd, _, rest = line[1:].partition(" ")
        cmd, rest = cmd.lower(), rest.strip()
        if cmd in ("q", "quit", "exit"):
            return False
        if cmd in ("h", "help", "?"):
            self.say(HELP)
        elif cmd == "tools":
            from chronoken.tools import registry

            for tool in registry().values():
                self.say(f"  {tool.name}: {tool.summary}")
        elif cmd == "examples":
            from chronoken.agent.examples import catalog

            for name, entry in catalog().items():
                self.say(f"  {name}: {entry['description']}")
        elif cmd == "load":
            self.load(rest)
        elif cmd == "save":
            self.save(rest)
        else:
            self.error(f"unknown command ':{cmd}'. Type :help for the commands.")
        return True

    def load(self, source: str) -> None:
        from chronoken.agent.examples import resolve

        if not source:
            self.error("give a file or example name, e.g. :load nile")
            return
        try:
            self.series = resolve(source)
        except ChronokenError as exc:
            self.error(str(exc))
            return
        self.say(f"loaded {source}: {self.series.describe().splitlines()[0]}")

    def save(self, path: str) -> None:
        if self.last is None:
            self.error("no report yet: ask a question first.")
            return
        if not path:
            self.error("give a file name, e.g. :save report.md")
            return
        try:
            Path(path).write_text(self.last.report)
        except OSError as exc:
            self.error(f"cannot write {path} ({exc.strerror}).")
            return
        self.say(f"saved the last report to {path}")

    def question(self, prompt: str) -> None:
        ask_fn = self.ask_fn
        if ask_fn is None:
            from chronoken.agent.ask import ask as ask_fn
        try:
            answer = ask_fn(self.series, prompt, backbone=self.backbone, writer=self.writer)
        except ChronokenError as exc:
            self.error(str(exc))
            return
        self.last = answer
        self.say(answer.report)

    def loop(self) -> int:
        """Run until :quit or end of input; returns the exit status (0)."""
        first = self.series.describe().splitlines()[0]
        self.say(
            f"chronoken chat on {self.series.source or 'a series'}: {first}\nType :help for commands."
        )
        for line in self.lines():
            if not self.handle(line):
                break
        return 0


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _enable_history() -> None:
    """Line editing and a persistent history when readline exists; silently nothing otherwise."""
    try:
        import atexit
        import readline
    except ImportError:
        return
    with contextlib.suppress(OSError):
        readline.read_history_file(HISTORY)
    readline.set_history_length(1000)

    def save() -> None:
        with contextlib.suppress(OSError):
            readline.write_history_file(HISTORY)

    atexit.register(save)
