"""ask() end to end with the real router: each bundled example with a prompt for a tool, REJECT,
the Answer API, and a request the chosen tool cannot fully honour."""

from __future__ import annotations

import json

import pytest

import chronoken
from chronoken.agent.ask import get_router
from chronoken.agent.examples import load_example
from chronoken.agent.report import fmt
from chronoken.tools import registry


@pytest.fixture(scope="module")
def answers() -> dict[str, chronoken.Answer]:
    """One answer per case, computed once (each runs the real router and a real fit)."""
    return {}


def _ask(answers, key, example, prompt, **kw):
    if key not in answers:
        answers[key] = chronoken.ask(example, prompt, **kw)
    return answers[key]


def _top_scores(answer):
    top = answer.decision.candidates[0]
    return top.tool, top.toolken_score, top.rerank_score


def test_nile_change_points(answers, tmp_path):
    fig = tmp_path / "nile.png"
    a = _ask(answers, "nile", "nile", "Where does the Nile's flow change?", figure_path=fig)
    assert a.tool == "changepoints"
    tool, s1, s2 = _top_scores(a)
    assert tool == "changepoints" and 0 <= s1 <= 1 and s2 is not None
    (label,) = a.result.change_labels[:1]
    assert 1895 <= int(label) <= 1902  # the Aswan dam / climate shift, documented near 1898
    assert label in a.report and "## Findings" in a.report and "## Caveats" in a.report
    assert f"| 1 | changepoints | {fmt(s1)} |" in a.report
    assert fig.read_bytes()[:4] == b"\x89PNG" and a.figure_path == str(fig)
    assert type(a.figure).__name__ == "Figure"


def test_co2_forecast(answers):
    a = _ask(answers, "co2", "co2", "Forecast the next 12 months with a 95% interval")
    assert a.tool == "arima"
    assert a.args_stated["horizon"] == 12 and a.args_stated["level"] == 0.95
    (fc,) = a.result.forecasts
    assert len(fc.mean) == 12 and fc.level == 0.95
    assert fc.steps[0] == "2002-01-01"  # the month after the last observation (2001-12)
    assert all(lo < m < hi for lo, m, hi in zip(fc.lower, fc.mean, fc.upper, strict=True))
    assert fc.steps[0] in a.report


def test_sunspots_decomposition(answers):
    a = _ask(
        answers,
        "sunspots",
        "sunspots",
        "Decompose the sunspot numbers into trend and cycles with singular spectrum analysis, "
        "window length 48",
    )
    assert a.tool == "ssa"
    assert a.args_stated["window"] == 48 and a.result.params["window"] == 48
    periods = a.result.params["periods"]
    assert any(9 <= p <= 12 for p in periods)  # the ~11-year solar cycle
    assert "window L = 48" in a.report or "window 48" in a.report


def test_oscillator_dynamics(answers):
    a = _ask(
        answers,
        "oscillator",
        "oscillator",
        "Learn the continuous-time dynamics with a neural ODE and a damped oscillator prior, "
        "train for 20 epochs and extrapolate 30 steps",
    )
    assert a.tool == "neural_ode"
    assert a.args_stated == {"prior": "damped_oscillator", "epochs": 20, "horizon": 30}
    assert [f.channel for f in a.result.forecasts] == ["position", "velocity"]
    assert all(len(f.mean) == 30 for f in a.result.forecasts)
    assert a.result.forecasts[0].steps[0] == "20"  # t continues 19.9 -> 20 s


def test_nile_gaussian_process(answers):
    a = _ask(
        answers,
        "gpr",
        "nile",
        "Smooth the flow with a Gaussian process using an RBF kernel and a 90% uncertainty band",
    )
    assert a.tool == "gpr"
    assert a.args_stated == {"kernel": "rbf", "level": 0.9}
    (ch,) = a.result.channels
    assert ch.family == "rbf" and a.result.level == 0.9
    assert all(lo <= m <= hi for lo, m, hi in zip(ch.lower, ch.mean, ch.upper, strict=True))
    assert ch.kernel in a.report and not a.notes  # nothing asked that gpr cannot do


def test_spatial_sensors(answers):
    s = load_example("sensors")
    assert s.coords is not None and s.coords.shape == (6, 2)
    a = _ask(answers, "sensors", "sensors", "When did the level change across the sensors?")
    assert a.tool == "changepoints"
    assert "2023-05-31" in a.result.change_labels  # the simulated source switches on that day
    assert "2023-05-31" in a.report and "Spatial: 6 sensors" in a.report


def test_reject(answers):
    a = _ask(answers, "reject", "nile", "Write me a short poem about the sea")
    assert a.tool is None and a.result is None and a.args == {}
    assert a.decision.candidates[0].tool == "reject"
    assert "No analysis tool fits this request" in a.report
    assert all(t.summary in a.report for t in registry().values())
    assert json.loads(a.to_json())["tool"] is None


def test_answer_api(answers):
    a = _ask(answers, "nile", "nile", "Where does the Nile's flow change?")
    data = json.loads(a.to_json())
    assert "figure" not in data and data["result"]["change_labels"] == a.result.change_labels
    assert (
        data["decision"]["candidates"][0]["rerank_score"] == a.decision.candidates[0].rerank_score
    )
    assert set(data["timings"]) == {"describe", "route", "args", "fit", "report", "total"}
    assert data["timings"]["total"] >= data["timings"]["fit"] > 0
    assert a._repr_markdown_() == a.report
    again = chronoken.ask("nile", "Where does the Nile's flow change?")
    assert again.result == a.result and again.tool == a.tool  # same input, same answer


def test_settings_the_tool_lacks_are_reported():
    """Routing is fixed here (to test argument notes, not the router)."""
    real = get_router()

    class Fixed:
        def route(self, prompt, description=""):
            d = real.route(prompt, description)
            return d.model_copy(update={"tool": "changepoints"})

    a = chronoken.ask("nile", "split the flow into regimes and forecast 12 years", router=Fixed())
    (note,) = [n for n in a.notes if "horizon = 12" in n]
    assert "changepoints has no such setting" in note and "arima" in note
    assert "horizon = 12" in a.report.split("## Caveats")[1]


def test_a_generative_backbone_writes_the_arguments():
    """With a backbone that generates text, the arguments come from its JSON (tool mode)."""
    real = get_router()

    class Generative:
        def __init__(self) -> None:
            self.prompts: list[str] = []

        def generate(self, text, max_new_tokens=256):
            self.prompts.append(text)
            return 'Arguments: {"n_bkps": 2}'

    class WithBackbone:
        backbone = Generative()

        def route(self, prompt, description=""):
            return real.route(prompt, description)

    router = WithBackbone()
    a = chronoken.ask("nile", "Where does the Nile's flow change?", router=router)
    assert a.tool == "changepoints" and a.args_source == "model"
    assert a.args_stated == {"n_bkps": 2} and len(a.result.change_points) == 2
    assert '"n_bkps"' in router.backbone.prompts[0]  # the Args schema was in the prompt
