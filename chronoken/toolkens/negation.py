"""Find the words a request rules out ("not ARIMA", "no uncertainty bands", "ohne Glättung").

A bag of token embeddings reads "forecast with a Gaussian process, not ARIMA" as a vote for
ARIMA. The reranker therefore scores the negated words against each candidate's documentation
separately, and learns how much a candidate loses when its own words are ruled out.

The scope of a negation cue runs from the cue to the next clause boundary (punctuation or a
contrastive word such as "but", "just", "only") and at most ``MAX_SCOPE`` words. Cues cover
English and the space-delimited languages of the corpus; scripts without spaces (CJK, Thai)
are not parsed.
"""

from __future__ import annotations

import re

MAX_SCOPE = 8
_WINDOW = 40 * MAX_SCOPE  # characters searched for the end of a scope

_CUES = [
    # English
    r"not",
    r"no",
    r"without",
    r"rather\s+than",
    r"instead\s+of",
    r"other\s+than",
    r"except",
    r"never",
    r"nor",
    r"neither",
    r"don'?t",
    r"do\s+not",
    r"doesn'?t",
    r"isn'?t",
    r"aren'?t",
    r"won'?t",
    r"forget(?:\s+about)?",
    r"skip",
    r"avoid",
    r"ignore",
    # German, Dutch, Swedish, Danish, Norwegian
    r"nicht",
    r"kein(?:e|en|em|er|es)?",
    r"ohne",
    r"(?:an)?statt",
    r"niet",
    r"geen",
    r"zonder",
    r"in\s+plaats\s+van",
    r"inte",
    r"ikke",
    r"utan",
    r"uden",
    r"istället\s+för",
    r"i\s+stedet\s+for",
    # French, Spanish, Italian, Portuguese, Romanian
    r"ne",
    r"n'",
    r"pas",
    r"sans",
    r"plutôt\s+que",
    r"au\s+lieu\s+de",
    r"sin",
    r"en\s+lugar\s+de",
    r"en\s+vez\s+de",
    r"non",
    r"senza",
    r"invece\s+di",
    r"sem",
    r"não",
    r"em\s+vez\s+de",
    r"fără",
    r"în\s+loc\s+de",
    # Slavic
    r"не",
    r"без",
    r"вместо",
    r"нет",
    r"nie",
    r"bez",
    r"zamiast",
    r"místo",
    r"замість",
]
# A cue is a whole word: "non" in "non-stationary" or "no" in "now" is not a negation.
_CUE = re.compile(r"(?<![\w'-])(?:" + "|".join(_CUES) + r")(?![\w-])", re.IGNORECASE)
_BOUNDARY = re.compile(
    r"[,.;:!?()\[\]\n]|(?<!\w)(?:but|just|only|aber|mais|pero|ma|mas|но|а|ale|men|maar)(?!\w)",
    re.IGNORECASE,
)


def split_negated(text: str) -> tuple[str, str]:
    """(kept, negated): the request without its negated spans, and those spans joined by spaces.

    Example: "Forecast 12 months with a Gaussian process, not ARIMA." ->
    ("Forecast 12 months with a Gaussian process, .", "ARIMA").
    """
    kept, negated = [], []
    pos = 0
    for cue in _CUE.finditer(text):
        if cue.start() < pos:
            continue
        # Look no further than MAX_SCOPE words ahead, so a long text costs linear time.
        window = text[cue.end() : cue.end() + _WINDOW]
        stop = _BOUNDARY.search(window)
        words = list(re.finditer(r"\S+", window[: stop.start() if stop else len(window)]))
        end = cue.end() + (stop.start() if stop else len(window))
        if len(words) > MAX_SCOPE:
            end = cue.end() + words[MAX_SCOPE - 1].end()
        span = text[cue.end() : end].strip()
        if not span:
            continue
        kept.append(text[pos : cue.start()])
        negated.append(span)
        pos = end
    kept.append(text[pos:])
    return " ".join(" ".join(kept).split()), " ".join(negated)
