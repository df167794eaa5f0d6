"""Negation scopes that the reranker scores against each candidate's documentation."""

from __future__ import annotations

import pytest

from chronoken.toolkens.negation import MAX_SCOPE, split_negated


@pytest.mark.parametrize(
    ("text", "negated"),
    [
        ("Forecast 12 months with a Gaussian process, not ARIMA.", "ARIMA"),
        (
            "Rather than decomposing the series, tell me where its mean jumps.",
            "decomposing the series",
        ),
        (
            "Don't decompose or smooth anything; tell me when it shrank.",
            "decompose or smooth anything",
        ),
        ("Forget the dynamics, I only need the switch dates.", "the dynamics"),
        ("No seasonal component, d = 1, forecast 20.", "seasonal component"),
        ("Glätte die Kurve ohne Unsicherheitsbänder.", "Unsicherheitsbänder"),
        ("Lisse la courbe sans bandes d'incertitude.", "bandes d'incertitude"),
        ("Suaviza la serie sin intervalos.", "intervalos"),
        ("Сгладь ряд без доверительных интервалов.", "доверительных интервалов"),
    ],
)
def test_negated_words_are_split_off(text: str, negated: str) -> None:
    kept, neg = split_negated(text)
    assert neg == negated
    assert negated not in kept


@pytest.mark.parametrize(
    "text",
    [
        "Fit a non-stationary model to the series.",
        "Now forecast the next 12 months.",
        "预测未来12个月。",
        "",
    ],
)
def test_no_cue_means_nothing_negated(text: str) -> None:
    assert split_negated(text) == (" ".join(text.split()), "")


def test_scope_stops_at_a_contrast_word_and_at_the_length_cap() -> None:
    assert split_negated("no bands but give me the trend")[1] == "bands"
    words = " ".join(f"w{i}" for i in range(20))
    assert len(split_negated("without " + words)[1].split()) == MAX_SCOPE


def test_a_long_run_of_cues_is_parsed_in_one_pass() -> None:
    # Each scope looks only a bounded window ahead; an unbounded search made this quadratic
    # (about 30 s for a 100,000-character prompt).
    text = "no " * 33_000
    kept, negated = split_negated(text)
    words = negated.split()
    assert kept == "" and set(words) == {"no"}
    assert 33_000 * MAX_SCOPE // (MAX_SCOPE + 1) <= len(words) < 33_000
