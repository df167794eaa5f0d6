"""Negation scopes that the reranker scores against each candidate's documentation."""

from __future__ import annotations

import pytest

from chronoken.toolkens.negation import MAX_SCOPE, POST_SCOPE, split_negated


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


@pytest.mark.parametrize(
    ("text", "negated"),
    [
        # cues before their scope, in more languages
        ("Udglat kurven, bare én ren linje, ingen usikkerhed.", "usikkerhed"),
        ("rapihin garisnya aja, tanpa bayangan ketidakpastian.", "bayangan ketidakpastian"),
        ("Lọc nhiễu đường nhiệt độ, không cần khoảng tin cậy.", "khoảng tin cậy"),
        ("لا SSA، تهيئة ARIMA", "SSA"),
        ("Κάνε την καμπύλη πιο ομαλή χωρίς ζώνες αβεβαιότητας", "ζώνες αβεβαιότητας"),
        ("nu vreau benzi de incertitudine", "benzi de incertitudine"),
        # scripts without spaces: the cue touches its scope
        ("把这条线弄顺一点，不用画什么区间。", "画什么区间"),
        ("ใช้ ARIMA ต่อเส้นออกไป ไม่เอา Gaussian process", "Gaussian"),
        # cues after their scope
        ("温度のグラフを滑らかにして、帯はいらない", "帯は"),
        ("区间就不用了，平滑一下", "区间"),
        ("불확실성 밴드 없이 부드럽게 해줘", "불확실성 밴드"),
        ("belirsizlik bandı olmadan yumuşat", "belirsizlik bandı"),
        ("az előrejelzést most sáv nélkül kérem", "most sáv"),
        ("मुझे भविष्यवाणी नहीं चाहिए, बस ट्रेंड", "मुझे भविष्यवाणी"),
        ("پیش\u200cبینی نمی\u200cخوام؛ معادله رو پیدا کن", "پیش\u200cبینی"),
    ],
)
def test_negations_in_other_languages(text: str, negated: str) -> None:
    assert split_negated(text)[1] == negated


@pytest.mark.parametrize(
    "text",
    [
        "कीमत का अनुमान लगाओ",  # "मत" (don't) inside "कीमत" (price)
        "Kan du nu göra en prognos för nästa vecka",  # Swedish "nu" is "now"
        "特别是最近的数据，预测一下",  # "别" (don't) inside "特别" (especially)
        "dự báo chất lượng không khí tuần tới",  # "không khí" is "air"
        "この系列を予測して",
    ],
)
def test_words_that_contain_a_cue_negate_nothing(text: str) -> None:
    assert split_negated(text)[1] == ""


def test_a_cue_after_its_scope_reaches_back_at_most_post_scope_words() -> None:
    words = " ".join(f"w{i}" for i in range(10))
    assert split_negated(words + " olmadan")[1].split() == [
        f"w{i}" for i in range(10 - POST_SCOPE, 10)
    ]
    assert split_negated("bir şey, bant olmadan")[1] == "bant"


def test_a_cue_must_start_with_a_literal_character() -> None:
    # The lookahead gate is built from each cue's first characters; a class or group there
    # would silently disable the cue.
    from chronoken.toolkens.negation import _first_chars

    assert _first_chars("(?:an)?statt") == "as" and _first_chars("就?不用了") == "就不"
    with pytest.raises(ValueError, match="literal"):
        _first_chars("[iî]mi")
