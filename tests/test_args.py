"""Prompt -> Args: the generic rule-based filler, notes for what cannot be honoured, and the
backbone's JSON tool mode with its fallback."""

from __future__ import annotations

from typing import Literal

import pytest

from chronoken.agent.args import fill_args, fill_rules, first_json_object, normalize
from chronoken.tools.base import Tool, ToolArgs, ToolResult, arg


class FakeArgs(ToolArgs):
    horizon: int = arg(
        6, "Steps to forecast.", cues=[r"next (\d+)", r"(\d+) (?:steps|months) ahead"], ge=1, le=500
    )
    level: float = arg(
        0.8, "Interval coverage.", cues=[r"(\d+(?:\.\d+)?)\s*%?\s*interval"], gt=0, lt=1
    )
    kernel: Literal["rbf", "matern"] | None = arg(
        None,
        "Kernel.",
        synonyms={"rbf": [r"\brbf\b", r"squared exponential"], "matern": [r"mat[eé]rn"]},
    )
    damped: bool = arg(
        False, "Damped trend.", synonyms={"true": [r"\bdamped\b"], "false": [r"undamped"]}
    )
    lags: list[int] = arg([1], "Lags.", cues=[r"lags? ([\d ,]+)"])
    smooth: float | None = arg(None, "Smoothing.", cues=[r"smoothing (\S+)"])


class Fake(Tool):
    name = "fake"
    summary = "a test tool"
    doc = "A test tool."
    Args = FakeArgs
    Result = ToolResult

    def run(self, series, args):  # pragma: no cover - never run
        raise NotImplementedError

    def plot(self, series, result):  # pragma: no cover
        raise NotImplementedError

    def report(self, series, result):  # pragma: no cover
        raise NotImplementedError


FAKE = Fake()


def test_normalize_writes_number_words_as_digits():
    assert normalize("Forecast the next Twelve months") == "forecast the next 12 months"
    assert normalize("twenty-four steps, a dozen lags, thirty") == "24 steps, 12 lags, 30"
    assert normalize("someone") == "someone"  # whole words only


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("forecast the next twelve months with a 95% interval", {"horizon": 12, "level": 0.95}),
        (
            "30 steps ahead using an RBF kernel, damped",
            {"horizon": 30, "kernel": "rbf", "damped": True},
        ),
        (
            "a Matérn kernel, undamped, 0.9 interval",
            {"kernel": "matern", "damped": False, "level": 0.9},
        ),
        ("lags 1, 2, 12 and smoothing 0.5", {"lags": [1, 2, 12], "smooth": 0.5}),
        ("smoothing none", {"smooth": None}),
    ],
)
def test_rules_read_typed_values(prompt, expected):
    filled = fill_rules(FAKE, prompt)
    assert filled.stated == expected
    for key, value in expected.items():
        assert getattr(filled.args, key) == value
    assert filled.not_honoured == [] or all(
        "fake has no such setting" in n for n in filled.not_honoured
    )


def test_unstated_fields_take_defaults():
    filled = fill_rules(FAKE, "what happens here?")
    assert filled.stated == {}
    assert filled.args == FakeArgs()


def test_rejected_value_becomes_a_note_and_the_default():
    filled = fill_rules(FAKE, "predict the next 9000 values with a 95% interval")
    assert filled.args.horizon == 6 and filled.args.level == 0.95
    assert "horizon" not in filled.stated
    (note,) = [n for n in filled.not_honoured if "horizon" in n]
    assert "9000" in note and "default 6" in note


class OtherArgs(ToolArgs):
    penalty: float = arg(3.0, "Penalty per change point.", cues=[r"penalty (\d+(?:\.\d+)?)"])
    horizon: int = arg(1, "Steps to forecast.", cues=[r"next (\d+)"])


class Other(Fake):
    name = "other"
    Args = OtherArgs


def test_settings_of_other_tools_are_noted(monkeypatch):
    import chronoken.agent.args as args_module

    monkeypatch.setattr(args_module, "registry", lambda: {"fake": FAKE, "other": Other()})
    filled = fill_rules(FAKE, "the next 5 steps with penalty 10")
    assert filled.args.horizon == 5  # a setting both have is simply used
    (note,) = filled.not_honoured
    assert "penalty = 10" in note and "other" in note and "fake has no such setting" in note
    # and the other way round: 'other' is told that fake's kernel was asked
    filled = fill_rules(Other(), "penalty 2 and an rbf kernel")
    assert filled.args.penalty == 2
    (note,) = filled.not_honoured
    assert "kernel = 'rbf'" in note and "other has no such setting" in note


def test_first_json_object():
    assert first_json_object('sure: {"horizon": 3, "kernel": {"a": 1}} done') == {
        "horizon": 3,
        "kernel": {"a": 1},
    }
    assert first_json_object("no json {here") is None


class _Model:
    def __init__(self, reply: str) -> None:
        self.reply, self.prompts = reply, []

    def __call__(self, text: str, max_new_tokens: int = 128) -> str:
        self.prompts.append(text)
        return self.reply


def test_model_mode_uses_valid_json_against_the_schema():
    model = _Model('{"horizon": 24, "kernel": "matern"}')
    filled = fill_args(FAKE, "forecast two years of monthly data", generate=model)
    assert filled.source == "model"
    assert filled.args.horizon == 24 and filled.args.kernel == "matern"
    assert '"horizon"' in model.prompts[0] and "forecast two years" in model.prompts[0]


@pytest.mark.parametrize(
    "reply", ['{"horizon": "soon"}', '{"colour": "red"}', "I cannot help", "[1, 2]"]
)
def test_model_mode_falls_back_to_rules_when_invalid(reply):
    filled = fill_args(FAKE, "the next 9 steps", generate=_Model(reply))
    assert filled.source == "rules" and filled.args.horizon == 9
    assert filled.log and "rules" in filled.log[0]


def test_calendar_units_become_steps_of_a_dated_series():
    import numpy as np
    import pandas as pd

    from chronoken.series import Series

    monthly = Series(np.arange(48.0), time=pd.date_range("2000-01-01", periods=48, freq="MS"))
    filled = fill_rules(FAKE, "the next 2 years", monthly)
    assert filled.args.horizon == 24 and filled.log == [
        "'2 years' was read as 24 steps of this series."
    ]
    assert fill_rules(FAKE, "12 months ahead", monthly).args.horizon == 12  # already in steps
    assert (
        fill_rules(FAKE, "the next 2 years", Series(np.arange(48.0))).args.horizon == 2
    )  # no dates


def test_a_tool_with_a_unit_field_converts_units_itself():
    import numpy as np
    import pandas as pd

    from chronoken.series import Series

    class UnitArgs(FakeArgs):
        horizon_unit: str | None = arg(None, "Unit of horizon.", cues=[r"next \d+ (year|month)s?"])

    class Unit(Fake):
        Args = UnitArgs

    monthly = Series(np.arange(48.0), time=pd.date_range("2000-01-01", periods=48, freq="MS"))
    filled = fill_rules(Unit(), "the next 2 years", monthly)
    assert filled.stated == {"horizon": 2, "horizon_unit": "year"} and filled.log == []


def test_a_choice_named_none_stays_a_string():
    from chronoken.tools import get

    filled = fill_rules(get("neural_ode"), "learn the dynamics with no prior")
    assert filled.stated["prior"] == "none" and filled.args.prior == "none"
