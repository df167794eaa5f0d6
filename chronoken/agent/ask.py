"""The agent loop: describe the series, route the prompt, fill the arguments, fit, report.

>>> answer = ask("nile", "where does the flow change?")   # doctest: +SKIP
>>> answer.tool, answer.timings["total"]                   # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SerializeAsAny

from chronoken.errors import ChronokenError, RouterError
from chronoken.tools.base import ToolResult


class Answer(BaseModel):
    """Everything the agent did for one request. ``to_json()`` excludes the figure."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    question: str = Field(description="The prompt as asked.")
    series: str = Field(description="Where the series came from (file, example or 'in memory').")
    description: str = Field(description="The series description the router read.")
    tool: str | None = Field(
        description="The tool that answered; None when the request was rejected."
    )
    args: dict[str, Any] = Field(
        default_factory=dict, description="The arguments used (all fields)."
    )
    args_stated: dict[str, Any] = Field(
        default_factory=dict,
        description="The arguments read from the prompt (the rest are defaults).",
    )
    args_source: str = Field(
        "rules", description="'rules' or 'model' (the backbone wrote the JSON)."
    )
    result: SerializeAsAny[ToolResult] | None = Field(None, description="The tool's Result.")
    decision: Any = Field(
        None, description="The routing decision: candidates with both stages' scores."
    )
    report: str = Field(description="The report in markdown.")
    writer: str = Field("template", description="Who wrote the report.")
    notes: list[str] = Field(
        default_factory=list, description="What could not be honoured, and writer notices."
    )
    figure_path: str | None = Field(None, description="Where the figure was saved, if it was.")
    timings: dict[str, float] = Field(
        default_factory=dict, description="Milliseconds: describe, route, args, fit, report, total."
    )

    _figure: Any = PrivateAttr(None)
    _plot: Any = PrivateAttr(None)

    @property
    def figure(self) -> Any:
        """The tool's matplotlib Figure (None when rejected); drawn on first access unless it was
        already drawn to be saved, so answers that are never plotted skip matplotlib."""
        if self._figure is None and self._plot is not None:
            self._figure = self._plot()
        return self._figure

    def to_json(self, indent: int | None = 2) -> str:
        """The answer as JSON (the figure excluded)."""
        return self.model_dump_json(indent=indent)

    def _repr_markdown_(self) -> str:
        return self.report

    def __str__(self) -> str:
        return self.report


def get_router(backbone: str | None = None) -> Any:
    """The default (toolken+) router for a backbone spec (None = WordLlama), cached by the router."""
    from chronoken.toolkens.router import load_router

    return load_router(backbone=backbone)


def backbone_of(router: Any) -> Any:
    """The loaded backbone object a router runs on (None when it has none, e.g. keyword rules)."""
    for owner in (router, getattr(router, "scorer", None)):
        bb = getattr(owner, "backbone", None)
        if bb is not None and not isinstance(bb, str):
            return bb
    return None


def _generator(backbone: Any) -> Any:
    """The backbone's ``generate`` when it is a generative (HF) model, else None."""
    from chronoken.agent.writers import can_generate

    return backbone.generate if can_generate(backbone) else None


def _dump(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    return obj


def _with_notice(text: str, notice: str | None) -> str:
    return text if not notice else text.rstrip() + f"\n\n> Writer notice: {notice}\n"


def ask(
    series: Any,
    prompt: str,
    *,
    backbone: Any = None,
    writer: Any = None,
    router: Any = None,
    figure_path: str | Path | None = None,
) -> Answer:
    """Answer ``prompt`` about ``series``.

    series: anything ``Series.load`` accepts (array of shape (n_samples,) or (n_samples,
        n_channels), DataFrame, file path) or a bundled example name such as "nile".
    backbone: backbone spec for the router (None = the default WordLlama backbone); with a
        generative HF backbone the backbone also writes the tool arguments as JSON.
    writer: None/"template", "openai", "hf", a config dict or a writer object (see writers).
    router: a router object with ``route(prompt, description)`` (tests inject one).
    figure_path: save the figure there (png, svg, pdf by extension) and link it in the report.
    """
    from chronoken.agent import report as rep
    from chronoken.agent.args import fill_args
    from chronoken.agent.examples import resolve
    from chronoken.agent.writers import get_writer
    from chronoken.tools import get

    if not isinstance(prompt, str):
        raise RouterError(f"the prompt must be text, got {type(prompt).__name__}.")
    if not prompt.strip():
        raise RouterError("the prompt is empty. Ask a question, e.g. 'forecast the next 12 steps'.")
    t0 = time.perf_counter()
    marks: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        marks[name] = round(1000.0 * (now - since), 2)
        return now

    s = resolve(series)
    description = s.describe()
    t = lap("describe", t0)
    router = router if router is not None else get_router(backbone)
    decision = router.route(prompt, description)
    bb = backbone_of(router)
    t = lap("route", t)
    write = get_writer(writer, backbone=bb).write  # a bad writer fails before the fit
    source = s.source or "in memory"

    if decision.tool is None:
        marks["args"] = marks["fit"] = 0.0
        template = rep.reject_report(
            question=prompt, series=s, decision=decision, description=description
        )
        payload = {
            "question": prompt,
            "series": description,
            "tool": None,
            "routing": _dump(decision),
        }
        written = write(template, payload)
        lap("report", t)
        marks["total"] = round(1000.0 * (time.perf_counter() - t0), 2)
        return Answer(
            question=prompt,
            series=source,
            description=description,
            tool=None,
            decision=decision,
            report=_with_notice(written.report, written.notice),
            writer=written.writer,
            notes=[written.notice] if written.notice else [],
            timings=marks,
        )

    tool = get(decision.tool)
    filled = fill_args(tool, prompt, series=s, generate=_generator(bb))
    t = lap("args", t)
    s.require(tool.name, tool.min_samples)
    result = tool.run(s, filled.args)
    t = lap("fit", t)

    figure = None
    saved = None
    if figure_path is not None:
        figure = tool.plot(s, result)
        saved = str(figure_path)
        try:
            figure.savefig(saved, dpi=120, bbox_inches="tight")
        except (OSError, ValueError) as exc:
            raise ChronokenError(
                f"cannot save the figure to {saved} ({exc}). Check the path and extension."
            ) from None
    template = rep.build_report(
        question=prompt,
        series=s,
        decision=decision,
        tool=tool,
        result=result,
        filled=filled,
        figure_path=saved,
        description=description,
    )
    payload = {
        "question": prompt,
        "series": description,
        "tool": tool.name,
        "args": filled.args.model_dump(mode="json"),
        "result": result.model_dump(mode="json"),
        "routing": _dump(decision),
    }
    written = write(template, payload)
    text = written.report
    if saved and saved not in text:
        text = text.rstrip() + f"\n\n![{tool.name} figure]({saved})\n"
    text = _with_notice(text, written.notice)
    lap("report", t)
    marks["total"] = round(1000.0 * (time.perf_counter() - t0), 2)
    answer = Answer(
        question=prompt,
        series=source,
        description=description,
        tool=tool.name,
        args=filled.args.model_dump(mode="json"),
        args_stated=filled.stated,
        args_source=filled.source,
        result=result,
        decision=decision,
        report=text,
        writer=written.writer,
        notes=filled.not_honoured + filled.log + ([written.notice] if written.notice else []),
        figure_path=saved,
        timings=marks,
    )
    answer._figure = figure
    answer._plot = lambda: tool.plot(s, result)
    return answer
