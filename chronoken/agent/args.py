"""Prompt -> the chosen tool's Args, read generically from each field's cues, synonyms and type.

No tool is named here. Every Args field made with :func:`chronoken.tools.base.arg` carries
``cues`` (regexes whose group 1 is the value, e.g. ``next (\\d+) months`` -> horizon) and
``synonyms`` (value -> regexes, e.g. ``{"rbf": [r"\\brbf\\b"]}``); the field's type (int, float,
bool, Literal, optional, list of numbers) says how to read the text. What the prompt does not state
takes the default; what it states but cannot be honoured is returned as a note (a value pydantic
rejects, or a setting of another tool that the chosen tool does not have), never dropped silently.

With a generative backbone the model fills the arguments as JSON against the Args schema
(ToolkenGPT's tool mode); invalid JSON or values fall back to the rules.
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Union, get_args, get_origin

from pydantic import ValidationError
from pydantic.fields import FieldInfo

from chronoken.tools import registry
from chronoken.tools.base import Tool, ToolArgs

if TYPE_CHECKING:
    from chronoken.series import Series

_UNITS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_MISSING = object()  # "the text states no readable value"
_NUMBER = re.compile(r"[-+]?(?:\d+(?:,\d{3})*(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?")


@dataclass
class FilledArgs:
    """The validated Args plus what the prompt stated and what could not be honoured.

    args: the tool's Args instance (defaults where the prompt said nothing).
    stated: field -> value read from the prompt and kept.
    not_honoured: sentences for the report's caveats.
    source: "rules" or "model" (the backbone wrote the JSON).
    log: how the filling went (e.g. the model's JSON was invalid and the rules were used).
    """

    args: ToolArgs
    stated: dict[str, Any] = field(default_factory=dict)
    not_honoured: list[str] = field(default_factory=list)
    source: str = "rules"
    log: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- text
def normalize(prompt: str) -> str:
    """Lower-case and write number words as digits ("next twelve months" -> "next 12 months")."""
    text = prompt.lower()
    units = "|".join(_UNITS[1:10])

    def tens(m: re.Match[str]) -> str:
        return str(_TENS[m.group(1)] + (_UNITS.index(m.group(2)) if m.group(2) else 0))

    text = re.sub(rf"\b({'|'.join(_TENS)})(?:[\s-]({units}))?\b", tens, text)
    text = re.sub(rf"\b({'|'.join(_UNITS)})\b", lambda m: str(_UNITS.index(m.group(1))), text)
    return re.sub(r"\ba dozen\b", "12", text)


def _extra(info: FieldInfo) -> dict[str, Any]:
    extra = info.json_schema_extra
    return extra if isinstance(extra, dict) else {}


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(inner type, optional?) with Optional / ``X | None`` removed."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        inner = [a for a in get_args(annotation) if a is not type(None)]
        optional = len(inner) < len(get_args(annotation))
        return (inner[0] if len(inner) == 1 else Union[tuple(inner)]), optional  # noqa: UP007
    return annotation, False


def _upper_bound(info: FieldInfo) -> float | None:
    for m in info.metadata:
        for attr in ("le", "lt"):
            v = getattr(m, attr, None)
            if v is not None:
                return float(v)
    return None


def _number(text: str) -> float | None:
    m = _NUMBER.search(text.replace(" ", ""))
    if not m:
        return None
    try:
        return float(m.group(0).replace(",", ""))
    except ValueError:
        return None


def _convert(text: str | None, info: FieldInfo, percent: bool) -> Any:
    """Read one value of the field's type from captured text (_MISSING = could not read it)."""
    kind, optional = _unwrap(info.annotation)
    origin = get_origin(kind)
    if text is None:
        return True if kind is bool else _MISSING
    raw = text.strip()
    if optional and raw in ("none", "null", "auto", "automatic"):
        return None
    if origin is Literal:
        for v in get_args(kind):
            if str(v).lower() == raw:
                return v
        return raw  # pydantic rejects it -> a note
    if kind is bool:
        return raw not in ("no", "false", "off", "without", "not", "0")
    if origin in (list, tuple):
        return [_as_int_if_whole(float(x.replace(",", ""))) for x in _NUMBER.findall(raw)]
    if kind in (int, float):
        value = _number(raw)
        if value is None:
            return _MISSING  # e.g. a cue that caught a word: try the next cue
        bound = _upper_bound(info)
        if percent or (kind is float and bound is not None and bound <= 1 and 1 < value <= 100):
            value = value / 100.0
        return _as_int_if_whole(value) if kind is int else value
    return raw


def _as_int_if_whole(v: float) -> float | int:
    return int(v) if float(v).is_integer() else v


def _literal_key(key: str, info: FieldInfo) -> Any:
    """A synonyms key converted to the field's type ("true" -> True, "3" -> 3 for int fields)."""
    kind, _ = _unwrap(info.annotation)
    if kind is bool:
        return key.lower() in ("true", "yes", "1", "on")
    if get_origin(kind) is Literal:  # a choice literally named "none" stays a string
        for v in get_args(kind):
            if str(v) == key:
                return v
    if key.lower() in ("none", "null"):
        return None
    if kind is int:
        try:
            return int(key)
        except ValueError:
            return key
    if kind is float:
        try:
            return float(key)
        except ValueError:
            return key
    return key


#: Seconds per calendar unit, to turn "the next 2 years" into steps of a dated series.
_UNIT_SECONDS = {
    "minute": 60.0,
    "hour": 3600.0,
    "day": 86400.0,
    "week": 604800.0,
    "month": 2629800.0,
    "quarter": 7889400.0,
    "year": 31557600.0,
}
_UNIT = re.compile(r"\s*(?:more\s+|further\s+)?(minute|hour|day|week|month|quarter|year)s?\b")


@dataclass
class _Match:
    value: Any
    span: tuple[int, int]
    text: str
    unit: str | None = None


def read_field(text: str, info: FieldInfo) -> _Match | None:
    """The value a prompt (normalized) states for one field, from its cues then its synonyms."""
    extra = _extra(info)
    for cue in extra.get("cues", []):
        m = re.search(cue, text)
        if not m:
            continue
        has_group = m.re.groups >= 1 and m.group(1) is not None
        captured = m.group(1) if has_group else None
        end = m.end(1) if has_group else m.end()
        percent = bool(re.match(r"\s*(?:%|percent\b|per cent\b)", text[end:])) or "%" in (
            captured or ""
        )
        value = _convert(captured, info, percent)
        if value is _MISSING:
            continue
        unit = _UNIT.match(text, m.end(1)) if has_group else None
        return _Match(value, m.span(), m.group(0), unit.group(1) if unit else None)
    best: _Match | None = None
    for key, patterns in extra.get("synonyms", {}).items():
        for pat in patterns:
            m = re.search(pat, text)
            if m and (best is None or m.start() < best.span[0]):
                best = _Match(_literal_key(key, info), m.span(), m.group(0))
    return best


def _overlaps(span: tuple[int, int], spans: list[tuple[int, int]]) -> bool:
    return any(span[0] < b and a < span[1] for a, b in spans)


def _fmt(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else str(value)


# ----------------------------------------------------------------------------- filling
def step_seconds(series: Series | None) -> float | None:
    """The mean time step of a dated series in seconds (None without dates)."""
    if series is None or not series.is_datetime or series.n_samples < 2:
        return None
    span = (series.time[-1] - series.time[0]).astype("timedelta64[s]").astype(float)
    return float(span) / (series.n_samples - 1)  # the mean step: months and years vary in length


def _in_steps(found: _Match, info: FieldInfo, step: float | None) -> tuple[Any, str | None]:
    """A count stated in calendar units ("2 years") as steps of the series, with a note."""
    kind, _ = _unwrap(info.annotation)
    if step is None or found.unit is None or kind is not int or not isinstance(found.value, int):
        return found.value, None
    ratio = _UNIT_SECONDS[found.unit] / step
    if abs(ratio - 1) < 0.05:
        return found.value, None
    steps = max(1, round(found.value * ratio))
    unit = found.unit + ("s" if found.value != 1 else "")
    return steps, f"'{found.value} {unit}' was read as {steps} steps of this series."


def fill_rules(tool: Tool, prompt: str, series: Series | None = None) -> FilledArgs:
    """Fill ``tool.Args`` from the prompt by the fields' cues, synonyms and types.

    series: when given and dated, counts stated in calendar units ("the next 2 years") are
        converted to steps of the series (24 for monthly data), unless the tool's Args has a
        ``<field>_unit`` field, in which case the tool converts.
    """
    text = normalize(prompt)
    stated: dict[str, Any] = {}
    spans: list[tuple[int, int]] = []
    log: list[str] = []
    step = step_seconds(series)
    for name, info in tool.Args.model_fields.items():
        found = read_field(text, info)
        if found is not None:
            # a tool with a `<name>_unit` field converts calendar units itself
            own_unit = f"{name}_unit" in tool.Args.model_fields
            stated[name], converted = _in_steps(found, info, None if own_unit else step)
            log += [converted] if converted else []
            spans.append(found.span)
    args, notes = validate(tool, stated)
    for name in list(stated):
        if name not in args.model_fields_set:
            stated.pop(name)
    notes += foreign_settings(tool, text, spans)
    return FilledArgs(args=args, stated=stated, not_honoured=notes, log=log)


def validate(tool: Tool, stated: dict[str, Any]) -> tuple[ToolArgs, list[str]]:
    """Validate stated values; each value pydantic rejects becomes a note and takes the default."""
    values = dict(stated)
    notes: list[str] = []
    for _ in range(len(values) + 1):
        try:
            return tool.Args.model_validate(values), notes
        except ValidationError as exc:
            bad = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
            bad &= set(values)
            if not bad:
                msg = "; ".join(e["msg"].lower() for e in exc.errors())
                stated_txt = ", ".join(f"{k} = {_fmt(v)}" for k, v in values.items())
                notes.append(
                    f"{stated_txt} was asked but {tool.name} rejects that combination ({msg}); "
                    "the defaults were used."
                )
                break
            for e in exc.errors():
                key = str(e["loc"][0]) if e["loc"] else ""
                if key in bad and key in values:
                    default = tool.Args.model_fields[key].get_default(call_default_factory=True)
                    notes.append(
                        f"{key} = {_fmt(values.pop(key))} was asked but {tool.name} cannot use it "
                        f"({e['msg'].lower()}); the default {_fmt(default)} was used."
                    )
    return tool.Args(), notes


def foreign_settings(tool: Tool, text: str, taken: list[tuple[int, int]]) -> list[str]:
    """Settings the prompt states that other tools have but ``tool`` has not, as notes.

    text: the normalized prompt; taken: spans the chosen tool's own fields already read.
    """
    own = set(tool.Args.model_fields)
    # Words of the chosen tool's own vocabulary ("gaussian" for a Gaussian process) do not ask
    # for another tool's setting even when that tool lists them as a synonym.
    vocabulary = normalize(f"{tool.summary} {tool.doc}")
    found: dict[str, dict[str, Any]] = {}
    for other in registry().values():
        if other.name == tool.name:
            continue
        for name, info in other.Args.model_fields.items():
            if name in own:
                continue
            m = read_field(text, info)
            if m is None or _overlaps(m.span, taken) or m.text.strip() in vocabulary:
                continue
            entry = found.setdefault(
                name, {"value": m.value, "tools": [], "info": info, "span": m.span}
            )
            entry["tools"].append(other.name)
    # one note per stated phrase: fields of different tools read from the same words are merged
    groups: list[list[str]] = []
    for name, entry in found.items():
        for group in groups:
            if _overlaps(entry["span"], [found[g]["span"] for g in group]):
                group.append(name)
                break
        else:
            groups.append([name])
    notes = []
    for group in groups:
        first = found[group[0]]
        what = re.split(r"\.(?:\s|$)|[;:(]|,\s*e\.g|\s-\s", first["info"].description or "")[
            0
        ].strip()
        what = (what[0].lower() + what[1:]) if what else group[0]
        asked = " / ".join(f"{n} = {_fmt(found[n]['value'])}" for n in group)
        others = sorted({t for n in group for t in found[n]["tools"]})
        notes.append(
            f"the request asks for {asked} ({what}), but {tool.name} has no such setting "
            f"({', '.join(others)} {'has' if len(others) == 1 else 'have'} it), so it was not "
            "applied."
        )
    return notes


def model_prompt(tool: Tool, prompt: str) -> str:
    """The instruction given to a generative backbone to write the Args JSON."""
    schema = json.dumps(tool.Args.model_json_schema(), separators=(",", ":"))
    return (
        f"Tool: {tool.name} - {tool.summary}\n"
        f"Arguments JSON schema: {schema}\n"
        f"Request: {prompt}\n"
        "Write one JSON object with only the arguments the request states (omit the others).\n"
        "JSON: "
    )


def first_json_object(text: str) -> dict[str, Any] | None:
    """The first balanced ``{...}`` in ``text`` parsed as JSON, or None."""
    start = text.find("{")
    while start != -1:
        depth = 0
        for i in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                try:
                    obj = json.loads(text[start : i + 1])
                except json.JSONDecodeError:
                    break
                return obj if isinstance(obj, dict) else None
        start = text.find("{", start + 1)
    return None


def fill_args(
    tool: Tool,
    prompt: str,
    *,
    series: Series | None = None,
    generate: Callable[..., str] | None = None,
) -> FilledArgs:
    """Fill ``tool.Args`` from ``prompt``.

    generate: a backbone's ``generate(text, max_new_tokens=...) -> str``; when given, the model
        writes the arguments as JSON first, and the rules are used when that JSON is missing or
        invalid. Settings of other tools stated in the prompt are noted either way.
    """
    rules = fill_rules(tool, prompt, series)
    if generate is None:
        return rules
    try:
        reply = generate(model_prompt(tool, prompt), max_new_tokens=128)
    except Exception as exc:  # a model failure must not stop the analysis
        rules.log.append(f"the backbone could not write arguments ({exc}); read by rules.")
        return rules
    obj = first_json_object(reply)
    if obj is None:
        rules.log.append("the backbone wrote no JSON arguments; read from the prompt by rules.")
        return rules
    try:
        args = tool.Args.model_validate(obj)
    except ValidationError as exc:
        rules.log.append(
            f"the backbone's arguments were invalid ({exc.error_count()} error(s)); read from the "
            "prompt by rules."
        )
        return rules
    foreign = [n for n in rules.not_honoured if n.startswith("the request asks for")]
    return FilledArgs(
        args=args,
        stated={k: getattr(args, k) for k in args.model_fields_set},
        not_honoured=foreign,
        source="model",
        log=["arguments written by the backbone as JSON against the Args schema."],
    )
