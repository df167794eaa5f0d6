"""The deterministic report: markdown written from the routing decision and the tool's Result.

Every number comes from the data (the series, the decision, the Result); nothing is invented.
Sections: question, series, tool and why, model selection, fit and diagnostics, findings (the
tool's own ``report()``), caveats, figure. A rejected request gets a short report that says so
and lists what the tools can do.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from chronoken.tools import registry

if TYPE_CHECKING:
    from chronoken.agent.args import FilledArgs
    from chronoken.series import Series
    from chronoken.tools.base import Tool, ToolResult

#: Significance level below which a residual / goodness-of-fit test counts as failed.
ALPHA = 0.05
#: Diagnostics whose small p-value means the fitted model is inadequate (residual tests).
_FAIL_WHEN_SMALL = re.compile(r"ljung|box|portmanteau|jarque|normal|hetero|arch|white|resid", re.I)
_P_VALUE = re.compile(r"(^p$|p_?value|_p$|^p_|pval)", re.I)


def fmt(value: Any) -> str:
    """A number for prose and tables: integers as is, floats to 4 significant digits."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.3e}"
        if abs(value) >= 1000:
            return f"{value:.1f}"
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(fmt(v) for v in value[:8])
        return f"[{inner}{', ...' if len(value) > 8 else ''}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {fmt(v)}" for k, v in list(value.items())[:8]) + "}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += [
        "| " + " | ".join(fmt(c) if not isinstance(c, str) else c for c in r) + " |" for r in rows
    ]
    return "\n".join(lines)


def _flatten(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out += _flatten(v, key + ".")
        else:
            out.append((key, v))
    return out


# ------------------------------------------------------------------------ sections
def series_section(series: Series, description: str | None = None) -> str:
    """The series' source and description (``series.describe()`` unless given)."""
    source = f" ({series.source})" if series.source else ""
    text = series.describe() if description is None else description
    return f"## Series{source}\n\n" + "\n".join(f"- {line}" for line in text.splitlines())


def routing_section(decision: Any, tool: Tool | None, top: int = 3) -> str:
    """Why the tool was chosen: the router's top candidates with both stages' scores."""
    cands = list(getattr(decision, "candidates", []) or [])[:top]
    rows = [
        [str(i + 1), str(c.tool), _score(c.toolken_score), _score(getattr(c, "rerank_score", None))]
        for i, c in enumerate(cands)
    ]
    router = getattr(decision, "router", "router")
    backbone = getattr(decision, "backbone", None)
    latency = getattr(decision, "latency_ms", None)
    head = f"Routed by the {router} router"
    if backbone:
        head += f" on backbone {backbone}"
    if latency is not None:
        head += f" in {fmt(float(latency))} ms"
    chosen = tool.name if tool is not None else "reject"
    lines = [f"## Tool: {chosen}", ""]
    if tool is not None:
        lines += [f"{tool.summary}", ""]
    lines += [
        head + ". Top candidates (toolken score from the frozen backbone's toolken head; "
        "rerank score from the reranker that reads each tool's documentation):",
        "",
    ]
    if rows:
        lines.append(_table(["rank", "tool", "toolken score", "rerank score"], rows))
    return "\n".join(lines)


def _score(v: Any) -> str:
    return "-" if v is None else fmt(float(v))


def model_section(result: ToolResult, filled: FilledArgs | None, findings: str = "") -> str:
    """Selected model, arguments, parameters and the candidates it beat (the table is left out
    when the tool's findings already list every candidate)."""
    lines = ["## Model", "", f"Selected model: **{result.model}**."]
    if filled is not None:
        used = filled.args.model_dump()
        stated = set(filled.stated)
        parts = [
            f"{k} = {fmt(v)}{' (from the request)' if k in stated else ''}" for k, v in used.items()
        ]
        if parts:
            lines += ["", "Arguments: " + "; ".join(parts) + "."]
        if filled.log:
            lines += ["", *(f"- {_sentence(n)}" for n in filled.log)]
    if result.params:
        lines += [
            "",
            "Parameters: " + "; ".join(f"{k} = {fmt(v)}" for k, v in _flatten(result.params)) + ".",
        ]
    listed = bool(result.selection) and all(c.name in findings for c in result.selection)
    if result.selection and not listed:
        # candidates scored under different criteria (e.g. an approximate screen, then the exact
        # criterion) are ranked within their criterion only
        crits = list(dict.fromkeys(c.criterion for c in result.selection))
        ranked = sorted(
            result.selection,
            key=lambda c: (
                crits.index(c.criterion),
                c.score is None,
                c.score if c.score is not None else 0,
            ),
        )
        if len(crits) == 1:
            rows = [[c.name, _cand_score(c), "selected" if c.selected else ""] for c in ranked]
            table = _table(["model", "score", ""], rows)
            lines += ["", f"Candidates compared ({crits[0]}):", "", table]
        else:
            rows = [
                [c.name, c.criterion, _cand_score(c), "selected" if c.selected else ""]
                for c in ranked
            ]
            table = _table(["model", "criterion", "score", ""], rows)
            lines += ["", "Candidates compared (ranked within each criterion):", "", table]
    chosen = [c for c in result.selection if c.selected]
    crit = (
        chosen[0].criterion
        if chosen
        else (result.selection[0].criterion if result.selection else "")
    )
    beaten = list(
        dict.fromkeys(
            c.name
            for c in result.selection
            if not c.selected and c.score is not None and c.criterion == crit
        )
    )
    if beaten:
        lines += [
            "",
            f"It was preferred over {len(beaten)} other candidate(s) by {crit}: "
            f"{'; '.join(beaten)}{' (scores in the findings)' if listed else ''}.",
        ]
    return "\n".join(lines)


def _cand_score(c: Any) -> str:
    return "failed to fit" if c.score is None else fmt(c.score)


def fit_section(result: ToolResult) -> str:
    lines = ["## Fit and diagnostics", ""]
    if result.fit:
        lines.append(_table(["measure", "value"], [[k, v] for k, v in result.fit.items()]))
    if result.diagnostics:
        lines += ["", _table(["check", "value"], [[k, v] for k, v in _flatten(result.diagnostics)])]
    if not result.fit and not result.diagnostics:
        lines.append("The tool reported no fit measures.")
    return "\n".join(lines)


def failed_diagnostics(result: ToolResult) -> list[str]:
    """Caveats from the diagnostics: residual tests with p < ALPHA, checks that are False."""
    out = []
    for key, value in _flatten(result.diagnostics):
        leaf = key.split(".")[-1]
        if isinstance(value, bool):
            if not value and re.search(r"converge|ok|pass|stable|valid|success", leaf, re.I):
                out.append(f"diagnostic {key} is False: the check did not pass.")
        elif (
            isinstance(value, (int, float))
            and _P_VALUE.search(leaf)
            and _FAIL_WHEN_SMALL.search(key)
            and value < ALPHA
        ):
            out.append(
                f"{key} = {fmt(float(value))} < {ALPHA}: the residual check fails at the 5% "
                "level, so the model leaves structure unexplained; treat intervals with care."
            )
    return out


def caveats(
    series: Series,
    tool: Tool,
    result: ToolResult,
    filled: FilledArgs | None,
    extra: list[str] | None = None,
    findings: str = "",
) -> list[str]:
    """Every caveat: short series, missing values, failed diagnostics, the result's notes (those
    the tool's findings do not already state), arguments not honoured."""
    out: list[str] = []
    short = max(2 * tool.min_samples, 30)
    if series.n_samples < short:
        out.append(
            f"the series is short ({series.n_samples} observations; {tool.name} needs at least "
            f"{tool.min_samples}): estimates are uncertain."
        )
    if series.n_missing:
        pct = 100.0 * series.n_missing / series.values.size
        out.append(f"{series.n_missing} missing value(s) ({pct:.1f}%) were present in the data.")
    out += failed_diagnostics(result)
    out += [n for n in result.notes if n.strip() not in findings]
    if filled is not None:
        out += filled.not_honoured
    out += list(extra or [])
    return out


def build_report(
    *,
    question: str,
    series: Series,
    decision: Any,
    tool: Tool,
    result: ToolResult,
    filled: FilledArgs | None = None,
    figure_path: str | None = None,
    extra_caveats: list[str] | None = None,
    description: str | None = None,
) -> str:
    """The full markdown report of one answered request (``description``: the series'
    ``describe()`` text when already computed)."""
    # the tool's headings go one level under "## Findings"
    findings = re.sub(r"^(#{1,5}) ", r"#\1 ", tool.report(series, result).strip(), flags=re.M)
    parts = [
        f"# {question.strip()}",
        series_section(series, description),
        routing_section(decision, tool),
        model_section(result, filled, findings),
        fit_section(result),
        "## Findings\n\n" + findings,
    ]
    cav = caveats(series, tool, result, filled, extra_caveats, findings)
    parts.append(
        "## Caveats\n\n" + ("\n".join(f"- {_sentence(c)}" for c in cav) if cav else "None noted.")
    )
    if figure_path:
        parts.append(f"## Figure\n\n![{tool.name} figure]({figure_path})")
    return "\n\n".join(parts) + "\n"


def reject_report(
    *, question: str, series: Series, decision: Any, description: str | None = None
) -> str:
    """The report of a rejected request: no tool fits; what the agent can do instead."""
    tools = registry()
    lines = [
        f"# {question.strip()}",
        "",
        "**No analysis tool fits this request**, so no model was fitted. The router chose to "
        "reject it rather than force a tool that does not answer the question.",
        "",
        routing_section(decision, None),
        "",
        "## What chronoken can do with a series",
        "",
    ]
    lines += [f"- **{t.name}**: {t.summary}" for t in tools.values()]
    lines += [
        "",
        "Ask one of these (e.g. name a horizon to forecast, or ask where the behaviour "
        "changes), or run a tool directly with `chronoken run TOOL FILE`.",
    ]
    return "\n".join(lines) + "\n\n" + series_section(series, description) + "\n"


def _sentence(text: str) -> str:
    text = text.strip()
    return text[0].upper() + text[1:] if text else text
