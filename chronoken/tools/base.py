"""The Tool contract: one model class per module, typed Args and Result, run() and plot().

A tool module defines exactly one subclass of :class:`Tool`; the registry finds it by
scanning this package, so adding a tool is adding a file (and its prompts).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chronoken.errors import ArgsError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from chronoken.series import Series


def arg(
    default: Any,
    description: str,
    *,
    cues: list[str] | None = None,
    synonyms: dict[str, list[str]] | None = None,
    **kwargs: Any,
) -> Any:
    """A pydantic Field that also tells the rule-based argument filler how to read a prompt.

    cues: regular expressions matched on the lower-cased prompt; the first capture group is the
        value (e.g. ``r"(\\d+)\\s*(?:steps|months|days)\\s+ahead"`` for a horizon).
    synonyms: for choice or boolean fields, value -> regular expressions that select it
        (e.g. ``{"rbf": [r"\\brbf\\b", r"squared exponential"]}``).
    """
    extra: dict[str, Any] = {}
    if cues:
        extra["cues"] = list(cues)
    if synonyms:
        extra["synonyms"] = {k: list(v) for k, v in synonyms.items()}
    return Field(default, description=description, json_schema_extra=extra or None, **kwargs)


class ToolArgs(BaseModel):
    """Base of every tool's Args: unknown fields are an error, every field has a default."""

    model_config = ConfigDict(extra="forbid")


class Candidate(BaseModel):
    """One model tried during selection inside the tool's class."""

    name: str = Field(
        description="The candidate model, e.g. 'ARIMA(1,1,1)' or 'RBF + WhiteKernel'."
    )
    score: float | None = Field(
        description="Its score under `criterion` (None when it failed to fit)."
    )
    criterion: str = Field(description="What the score is, e.g. 'AICc (lower is better)'.")
    selected: bool = Field(False, description="True for the model the tool chose.")


class Forecast(BaseModel):
    """A forecast of one channel, `horizon` steps past the last observation."""

    channel: str = Field(description="Channel name.")
    steps: list[str] = Field(description="Label of each forecast step (time stamp or index).")
    mean: list[float] = Field(description="Point forecast, one value per step.")
    lower: list[float] | None = Field(None, description="Lower bound of the prediction interval.")
    upper: list[float] | None = Field(None, description="Upper bound of the prediction interval.")
    level: float | None = Field(None, description="Coverage of the interval, e.g. 0.95.")

    def markdown(self, band: str = "interval", max_rows: int = 24) -> list[str]:
        """Markdown lines: a heading and a table of the first ``max_rows`` steps."""
        n = min(max_rows, len(self.mean))
        cover = f", {self.level:.0%} {band}" if self.level is not None else ""
        lines = [
            "",
            f"### Forecast: {self.channel} ({len(self.mean)} steps{cover})",
            "",
            "| step | mean | lower | upper |",
            "|---|---|---|---|",
        ]
        for i in range(n):
            lo = f"{self.lower[i]:.4g}" if self.lower is not None else ""
            hi = f"{self.upper[i]:.4g}" if self.upper is not None else ""
            lines.append(f"| {self.steps[i]} | {self.mean[i]:.4g} | {lo} | {hi} |")
        if len(self.mean) > n:
            lines.append(f"| ... | ({len(self.mean) - n} more steps in the result) | | |")
        return lines


class ToolResult(BaseModel):
    """Fields every Result has; each tool's Result adds its own (segments, components, ...)."""

    model_config = ConfigDict(extra="forbid")

    tool: str = Field(description="Name of the tool that produced this result.")
    model: str = Field(description="The selected model in words.")
    params: dict[str, Any] = Field(
        default_factory=dict, description="Parameters of the selected model."
    )
    fit: dict[str, float] = Field(
        default_factory=dict,
        description="Fit quality measures of the selected model (name -> value).",
    )
    diagnostics: dict[str, Any] = Field(
        default_factory=dict, description="Checks on the fit (residual tests, convergence, ...)."
    )
    selection: list[Candidate] = Field(
        default_factory=list, description="The candidates tried with their scores; one is selected."
    )
    notes: list[str] = Field(
        default_factory=list,
        description="Caveats: missing values handled, limits applied, arguments not honoured.",
    )


class Tool(ABC):
    """A model-class tool. Subclasses set the class attributes and implement run/plot/report."""

    name: ClassVar[str]
    summary: ClassVar[str]
    doc: ClassVar[str]
    Args: ClassVar[type[ToolArgs]]
    Result: ClassVar[type[ToolResult]]
    min_samples: ClassVar[int] = 10

    def parse_args(self, args: ToolArgs | dict[str, Any] | None = None, **kwargs: Any) -> ToolArgs:
        """Validate arguments into ``self.Args``; a bad value raises ArgsError naming the field."""
        if isinstance(args, self.Args) and not kwargs:
            return args
        data = dict(args.model_dump() if isinstance(args, BaseModel) else (args or {}))
        data.update(kwargs)
        try:
            return self.Args.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'args'}: {e['msg']}" for e in exc.errors()
            )
            fields = ", ".join(self.Args.model_fields)
            raise ArgsError(
                f"invalid arguments for {self.name}: {problems}. Valid arguments: {fields} "
                f"(see `chronoken tools`)."
            ) from None

    @abstractmethod
    def run(self, series: Series, args: ToolArgs) -> ToolResult:
        """Select a model inside the class, fit it to ``series`` and return the Result."""

    @abstractmethod
    def plot(self, series: Series, result: ToolResult) -> Figure:
        """A matplotlib Figure of the data and the fitted model."""

    @abstractmethod
    def report(self, series: Series, result: ToolResult) -> str:
        """Markdown of the tool's findings (segments, forecasts, components), numbers from result."""

    def spec(self) -> dict[str, Any]:
        """Name, summary, documentation and JSON schemas: what routers and writers read."""
        return {
            "name": self.name,
            "summary": self.summary,
            "doc": " ".join(self.doc.split()),
            "args_schema": self.Args.model_json_schema(),
            "result_schema": self.Result.model_json_schema(),
        }


def words(text: str) -> str:
    """Collapse whitespace (docs are written as indented triple-quoted strings)."""
    return re.sub(r"\s+", " ", text).strip()
