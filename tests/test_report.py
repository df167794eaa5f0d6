"""The deterministic report: every section is written from the data it is given."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from chronoken.agent.args import fill_rules
from chronoken.agent.report import build_report, failed_diagnostics, fmt, reject_report
from chronoken.series import Series
from chronoken.tools import registry
from chronoken.tools.base import Candidate, Tool, ToolArgs, ToolResult, arg


@dataclass
class Cand:
    tool: str
    toolken_score: float
    rerank_score: float | None


@dataclass
class Decision:
    tool: str | None
    candidates: list[Cand] = field(default_factory=list)
    router: str = "toolken+"
    backbone: str = "wordllama:test"
    latency_ms: float = 12.5


class DemoArgs(ToolArgs):
    horizon: int = arg(4, "Steps to forecast.", cues=[r"next (\d+)"])


class Demo(Tool):
    name = "demo"
    summary = "a demonstration tool"
    doc = "Demonstration."
    Args = DemoArgs
    Result = ToolResult
    min_samples = 20

    def run(self, series, args):  # pragma: no cover
        raise NotImplementedError

    def plot(self, series, result):  # pragma: no cover
        raise NotImplementedError

    def report(self, series, result):
        return f"The demo found a level of {result.params['level']:.3f}."


def _result(**diag) -> ToolResult:
    return ToolResult(
        tool="demo",
        model="AR(2)",
        params={"level": 4.56789, "phi": [0.5, -0.25]},
        fit={"aicc": 101.25, "rmse": 0.4321},
        diagnostics=diag,
        selection=[
            Candidate(name="AR(1)", score=110.5, criterion="AICc (lower is better)"),
            Candidate(
                name="AR(2)", score=101.25, criterion="AICc (lower is better)", selected=True
            ),
            Candidate(name="AR(3)", score=None, criterion="AICc (lower is better)"),
        ],
        notes=["the last 2 values were interpolated."],
    )


def _series(n: int = 30, gap: bool = True) -> Series:
    y = np.sin(np.arange(n) / 3.0) + np.arange(n) * 0.1
    if gap:
        y[5] = np.nan
    s = Series(y, names=["demand"])
    s.source = "demo.csv"
    return s


def test_report_sections_come_from_the_data():
    decision = Decision(
        "demo", [Cand("demo", 0.91, 0.873), Cand("arima", 0.05, 0.1), Cand("reject", 0.04, None)]
    )
    tool, series = Demo(), _series()
    filled = fill_rules(tool, "what comes in the next 7 steps?")
    text = build_report(
        question="what comes in the next 7 steps?",
        series=series,
        decision=decision,
        tool=tool,
        result=_result(ljung_box_p=0.2),
        filled=filled,
        figure_path="fig.png",
    )
    assert text.startswith("# what comes in the next 7 steps?")
    assert series.describe().splitlines()[0] in text  # the series description
    assert "| 1 | demo | 0.91 | 0.873 |" in text and "| 3 | reject | 0.04 | - |" in text
    assert "toolken+ router on backbone wordllama:test in 12.5 ms" in text
    assert "Selected model: **AR(2)**" in text
    assert "horizon = 7 (from the request)" in text
    assert "| AR(1) | 110.5 |  |" in text and "| AR(3) | failed to fit |  |" in text
    assert "preferred over 1 other candidate(s) by AICc (lower is better): AR(1)." in text
    assert "| aicc | 101.2 |" in text or "| aicc | 101.25 |" in text
    assert "The demo found a level of 4.568." in text  # the tool's own findings
    assert "1 missing value(s)" in text
    assert "The series is short (30 observations" in text  # 30 < 2 x min_samples
    assert "- The last 2 values were interpolated." in text
    assert "![demo figure](fig.png)" in text
    assert "ljung_box_p" in text and "residual check fails" not in text


def test_findings_are_not_repeated():
    """Candidates and notes the tool's own report already lists are not written twice."""

    class Verbose(Demo):
        def report(self, series, result):
            names = ", ".join(f"{c.name} ({c.score})" for c in result.selection)
            return f"Candidates: {names}. Notes: {' '.join(result.notes)}"

    text = build_report(
        question="q", series=_series(), decision=Decision("demo"), tool=Verbose(), result=_result()
    )
    assert "| AR(1) | 110.5 |" not in text and "(scores in the findings)" in text
    assert text.lower().count("the last 2 values were interpolated") == 1


def test_caveats_for_failed_diagnostics():
    found = failed_diagnostics(
        _result(
            ljung_box_p=0.012, residuals={"jarque_bera_pvalue": 0.5}, converged=False, adf_p=0.001
        )
    )
    assert len(found) == 2
    assert "ljung_box_p = 0.012 < 0.05" in found[0]
    assert "converged is False" in found[1]  # adf_p is not a residual test: no caveat
    nested = failed_diagnostics(_result(residuals={"ljung_box": {"p_value": 0.003}}))
    assert nested and "residuals.ljung_box.p_value = 0.003" in nested[0]


def test_report_without_caveats_says_so():
    series = _series(n=80, gap=False)
    result = _result(ljung_box_p=0.4).model_copy(update={"notes": []})
    text = build_report(
        question="q", series=series, decision=Decision("demo"), tool=Demo(), result=result
    )
    assert "## Caveats\n\nNone noted." in text and "## Figure" not in text


def test_reject_report_lists_what_the_tools_can_do():
    decision = Decision(None, [Cand("reject", 0.2, 0.95), Cand("arima", 0.3, 0.02)])
    text = reject_report(question="tell me a joke", series=_series(), decision=decision)
    assert "No analysis tool fits this request" in text
    assert "| 1 | reject | 0.2 | 0.95 |" in text
    for tool in registry().values():
        assert f"**{tool.name}**: {tool.summary}" in text


def test_fmt():
    assert fmt(3) == "3" and fmt(0.123456) == "0.1235" and fmt(1234.56) == "1234.6"
    assert fmt(2.5e-6) == "2.500e-06" and fmt(float("nan")) == "NaN" and fmt([1, 2.5]) == "[1, 2.5]"
