"""The ``chronoken`` command line.

    chronoken ask FILE_OR_EXAMPLE "prompt" [--column C] [--time T] [--json] [--report out.md]
                  [--figure out.png] [--backbone B] [--writer W] [--writer-strict]
    chronoken run TOOL FILE_OR_EXAMPLE [--arg key=value ...] [--json] [--figure out.png]
    chronoken chat FILE_OR_EXAMPLE            interactive: prompt after prompt on one series
    chronoken tools | examples               what the agent can do / the bundled series
    chronoken train [--backbone B] [--out DIR] [--lora] [--seed N] [--epochs N]
    chronoken eval [FILE] [--router toolken|toolken+|similarity|keyword] [--backbone B] [--json]

Every user mistake prints ``error: <what, and what to do>`` on stderr and exits 2 (``--debug``
shows the traceback instead). A language-model writer that fails (unreachable endpoint, invented
numbers) falls back to the template report with a notice and exit 0; with ``--writer-strict`` the
failure is an error (exit 2).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

from chronoken.errors import ArgsError, ChronokenError


def _load(args: argparse.Namespace) -> Any:
    from chronoken.agent.examples import resolve

    columns = getattr(args, "column", None)
    return resolve(args.source, time=getattr(args, "time", None), columns=columns or None)


def _write_text(path: str, text: str) -> None:
    try:
        Path(path).write_text(text)
    except OSError as exc:
        raise ChronokenError(
            f"cannot write {path} ({exc.strerror}). Check the folder exists."
        ) from None


def cmd_ask(args: argparse.Namespace) -> int:
    from chronoken.agent.ask import ask

    series = _load(args)
    writer: Any = args.writer
    if writer is not None and args.writer_strict:
        writer = {"kind": writer, "strict": True}
    answer = ask(
        series, args.prompt, backbone=args.backbone, writer=writer, figure_path=args.figure
    )
    if args.report:
        _write_text(args.report, answer.report)
    print(answer.to_json() if args.json else answer.report)
    return 0


def parse_kv(items: list[str]) -> dict[str, Any]:
    """``["horizon=12", "kernel=rbf"]`` -> {"horizon": 12, "kernel": "rbf"} (JSON values when
    they parse as JSON, else strings); a malformed item is an ArgsError."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ArgsError(f"bad --arg '{item}': write key=value, e.g. --arg horizon=12.")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


def cmd_run(args: argparse.Namespace) -> int:
    from chronoken.tools import get

    tool = get(args.tool)
    parsed = tool.parse_args(parse_kv(args.arg or []))
    series = _load(args)
    series.require(tool.name, tool.min_samples)
    result = tool.run(series, parsed)
    if args.figure:
        fig = tool.plot(series, result)
        try:
            fig.savefig(args.figure, dpi=120, bbox_inches="tight")
        except (OSError, ValueError) as exc:
            raise ChronokenError(f"cannot save the figure to {args.figure} ({exc}).") from None
    if args.json:
        payload = {
            "tool": tool.name,
            "args": parsed.model_dump(mode="json"),
            "result": result.model_dump(mode="json"),
        }
        print(json.dumps(payload, indent=2))
    else:
        print(f"# {tool.name}: {result.model}\n")
        print(tool.report(series, result).strip())
        if result.notes:
            print("\n## Notes\n\n" + "\n".join(f"- {n}" for n in result.notes))
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from chronoken.agent.repl import Repl

    series = _load(args)
    writer: Any = args.writer
    return Repl(series, backbone=args.backbone, writer=writer).loop()


def cmd_tools(args: argparse.Namespace) -> int:
    from chronoken.tools import registry

    for tool in registry().values():
        print(f"{tool.name} — {tool.summary}")
        print(textwrap.indent(textwrap.fill(" ".join(tool.doc.split()), 92), "    "))
        print(f"    Needs at least {tool.min_samples} observations. Arguments:")
        for name, info in tool.Args.model_fields.items():
            default = info.get_default(call_default_factory=True)
            print(f"      {name} (default {default!r}): {info.description or ''}")
        print()
    return 0


def cmd_examples(args: argparse.Namespace) -> int:
    from chronoken.agent.examples import catalog, load_example

    for name, entry in catalog().items():
        s = load_example(name)
        extra = ", with sensor coordinates" if s.coords is not None else ""
        print(f"{name}: {s.n_samples} observations, channels {', '.join(s.names)}{extra}")
        print(textwrap.indent(textwrap.fill(entry["description"], 92), "    "))
    print('\nUse one by name, e.g. `chronoken ask nile "where does the flow change?"`.')
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from chronoken.toolkens.train import train

    kwargs: dict[str, Any] = {"lora": args.lora, "seed": args.seed}
    if args.epochs is not None:
        kwargs["epochs"] = args.epochs
    info = train(backbone=args.backbone, out=args.out, **kwargs)
    print(json.dumps(info, indent=2, default=str))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from chronoken.eval.harness import evaluate, format_table

    metrics = evaluate(args.file, router=args.router, backbone=args.backbone)
    print(json.dumps(metrics, indent=2, default=str) if args.json else format_table(metrics))
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks")
    parser = argparse.ArgumentParser(
        prog="chronoken",
        description="Ask a time series a question in plain English.",
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def source_opts(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "source", metavar="FILE_OR_EXAMPLE", help="series file or bundled example name"
        )
        p.add_argument(
            "--column", action="append", help="channel(s) to use (repeat or comma-separate)"
        )
        p.add_argument("--time", help="name of the time column")

    p = sub.add_parser("ask", parents=[common], help="answer one question about a series")
    source_opts(p)
    p.add_argument("prompt", help="the question, in quotes")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    p.add_argument("--report", metavar="OUT.md", help="also write the markdown report there")
    p.add_argument("--figure", metavar="OUT.png", help="save the figure there")
    p.add_argument("--backbone", help="router backbone (default: WordLlama; or an HF model path)")
    p.add_argument("--writer", help="report writer: template (default), openai or hf")
    p.add_argument(
        "--writer-strict",
        action="store_true",
        help="fail (exit 2) instead of falling back to the template when the writer fails",
    )
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("run", parents=[common], help="run one tool directly")
    p.add_argument("tool", help="tool name (see `chronoken tools`)")
    source_opts(p)
    p.add_argument("--arg", action="append", metavar="KEY=VALUE", help="a tool argument (repeat)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--figure", metavar="OUT.png", help="save the figure there")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("chat", parents=[common], help="ask question after question about a series")
    source_opts(p)
    p.add_argument("--backbone", help="router backbone")
    p.add_argument("--writer", help="report writer: template (default), openai or hf")
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("tools", parents=[common], help="list the tools and their documentation")
    p.set_defaults(func=cmd_tools)
    p = sub.add_parser("examples", parents=[common], help="list the bundled example series")
    p.set_defaults(func=cmd_examples)

    p = sub.add_parser("train", parents=[common], help="train the toolkens (and reranker)")
    p.add_argument("--backbone", help="backbone to train on (default: WordLlama)")
    p.add_argument("--out", help="folder for the trained store")
    p.add_argument("--lora", action="store_true", help="also train LoRA adapters (HF backbones)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=None)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", parents=[common], help="evaluate routing on a labelled prompt file")
    p.add_argument(
        "file", nargs="?", default=None, help="JSONL of prompts (default: the held-out set)"
    )
    p.add_argument(
        "--router", default="toolken+", choices=["toolken", "toolken+", "similarity", "keyword"]
    )
    p.add_argument("--backbone")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)
    return parser


_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def limit_blas_threads() -> None:
    """One BLAS/OpenMP thread for ask, run and chat unless the user chose otherwise (any of
    _THREAD_VARS set).

    The CLI's linear algebra is small (series of thousands of points); there a BLAS thread pool
    costs more than it gives, badly so on a busy 2-core machine (describe() of a 1,000-point
    series: 0.75 s with one thread, 2.8 s with two). The environment variables reach BLAS
    libraries loaded later (scipy's); threadpoolctl limits the ones already loaded (numpy's).
    """
    if any(v in os.environ for v in _THREAD_VARS):
        return
    for v in _THREAD_VARS:
        os.environ[v] = "1"
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(limits=1, user_api="blas")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 user error)."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    args = build_parser().parse_args(argv)
    if args.command in ("ask", "run", "chat"):  # training and evaluation keep their threads
        limit_blas_threads()
    try:
        return int(args.func(args) or 0)
    except ChronokenError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
