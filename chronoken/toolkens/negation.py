"""Find the words a request rules out ("not ARIMA", "no uncertainty bands", "ohne Glättung",
"帯はいらない", "sávok nélkül").

A bag of token embeddings reads "forecast with a Gaussian process, not ARIMA" as a vote for
ARIMA. The reranker therefore scores the negated words against each candidate's documentation
separately, and learns how much a candidate loses when its own words are ruled out.

Three kinds of cue, each a list per language:

- a cue before its scope, between word boundaries ("without", "ohne", "bez", "بدون", "không
  cần"): the scope runs from the cue to the next clause boundary (punctuation or a contrastive
  word such as "but", "just", "only") and at most ``MAX_SCOPE`` words;
- a cue before its scope in a script written without spaces (Chinese "不用", Thai "ไม่ต้อง"):
  the cue may touch the words around it, and the scope is the rest of that run of characters,
  up to the next space or clause boundary;
- a cue after its scope, in languages that put the negation after what it rules out (Japanese
  "いらない", Korean "없이", Turkish "olmadan", Hungarian "nélkül", Hindi "नहीं", Persian
  "نمی‌خوام"): the scope runs back from the cue to the previous clause boundary, at most
  ``POST_SCOPE`` words.
"""

from __future__ import annotations

import hashlib
import re

MAX_SCOPE = 8
#: Words a cue that follows its scope reaches back: these languages put the object right before
#: the negated verb or postposition, and the words before it are often the rest of the request.
POST_SCOPE = 2
_WINDOW = 40 * MAX_SCOPE  # characters searched for the end (or start) of a scope

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
    r"uten",
    r"ingen",
    r"inga",
    r"inget",
    r"istället\s+för",
    r"i\s+stedet\s+for",
    # French, Spanish, Italian, Portuguese, Romanian
    r"ne",
    r"n'",
    r"pas",
    r"sans",
    r"aucune?",
    r"plutôt\s+que",
    r"au\s+lieu\s+de",
    r"sin",
    r"nada\s+de",
    r"en\s+lugar\s+de",
    r"en\s+vez\s+de",
    r"non",
    r"senza",
    r"niente",
    r"nessuna?",
    r"invece\s+di",
    r"sem",
    r"não",
    r"nenhuma?",
    r"em\s+vez\s+de",
    r"nu\s+(?:vreau|am\s+nevoie\s+de|e\s+nevoie\s+de|este\s+nevoie\s+de|trebuie|[iî]mi\s+trebuie)",
    r"fără",
    r"fara",
    r"niciun(?:a)?",
    r"nicio",
    r"în\s+loc\s+de",
    # Slavic
    r"не",
    r"без",
    r"вместо",
    r"нет",
    r"никаких",
    r"ні",
    r"жодних",
    r"замість",
    r"nie",
    r"bez",
    r"żadnych",
    r"zamiast",
    r"místo",
    r"nechci",
    r"nepotřebuj[iu]",
    # Greek, Finnish, Hungarian (cues before their scope)
    r"δεν",
    r"χωρίς",
    r"χωρις",
    r"όχι",
    r"μην?",
    r"αντί(?:\s+για)?",
    r"ilman",
    r"ei",
    r"älä",
    r"eikä",
    r"nem",
    # Hebrew, Arabic, Persian
    r"לא",
    r"ו?בלי",
    r"ללא",
    r"במקום",
    r"لا",
    r"و?بدون",
    r"بلا",
    r"من\s+غير",
    r"مش",
    r"دون",
    r"بدل(?:اً|ا)?(?:\s+من)?",
    r"بی",
    r"به\s*جای",
    # Hindi (and Hinglish), Indonesian, Vietnamese
    r"बिना",
    r"bina",
    r"tidak",
    r"tdk",
    r"tanpa",
    r"jangan",
    r"nggak",
    r"enggak",
    r"gak",
    r"ga",
    r"gausah",
    r"bukan",
    r"daripada",
    r"alih-alih",
    r"không\s+cần",
    r"không(?!\s+(?:khí|gian))",
    r"đừng",
    r"chẳng",
    r"khỏi",
    r"thay\s+vì",
]
#: Cues in scripts written without spaces: no word boundary around them.
_JOINED_CUES = [
    # Chinese
    r"不用",
    r"不要",
    r"不需要",
    r"无需",
    r"無需",
    r"不必",
    r"而不是",
    r"不加",
    # Thai
    r"ไม่ต้อง",
    r"ไม่เอา",
    r"ไม่ใช้",
    r"ไม่ใช่",
    r"โดยไม่",
]
#: Cues after their scope, between word boundaries (Turkish, Hungarian, Finnish, Hindi and
#: Hinglish, romanised Japanese, Persian): "tahmin değil", "sávok nélkül", "बैंड नहीं चाहिए", "باند نمی‌خوام".
_POST_CUES = [
    r"olmadan",
    r"değil",
    r"yok",
    r"istemiyorum",
    r"hariç",
    r"yerine",
    r"nélkül",
    r"helyett",
    r"sijaan",
    r"नहीं",
    r"मत",
    r"के\s+बिना",
    r"nahi[n]?",
    r"ke\s+bina",
    r"iranai",
    r"irimasen",
    r"nashi(?:\s*de)?",
    r"نمی\u200c?خوا(?:م|هم|د)",
    r"لازم\s+نیست",
    r"نکن",
]
#: Cues after their scope in Japanese, Korean and Chinese, which may touch the words around
#: them: "帯はいらない", "밴드 없이", "区间就不用了". Japanese "不要" only where it cannot be
#: Chinese "不要" (don't), which comes before its scope.
_POST_JOINED_CUES = [
    r"いらない",
    r"要らない",
    r"いりません",
    r"要りません",
    r"(?<=は)不要",
    r"不要(?=です|でしょ|。|、|$)",
    r"なしで",
    r"無しで",
    r"なし",
    r"無し",
    r"抜きで",
    r"ではなく",
    r"じゃなくて?",
    r"しないで",
    r"せずに",
    r"없이",
    r"말고",
    r"빼고",
    r"필요\s*없",
    r"대신",
    r"就?不用了",
    r"就?免了",
    r"就?不要了",
]
# A spaced cue is a whole word: "non" in "non-stationary" or "no" in "now" is not a negation.
# Combining marks count as part of a word (Python's \w leaves out the vowel signs of Indic
# scripts): "मत" inside "कीमत" (price) is not a cue.
_MARKS = "\u0300-\u036f\u064b-\u065f\u0900-\u0dff\u0e31\u0e34-\u0e3a\u0e47-\u0e4e"
_EDGE_BEFORE, _EDGE_AFTER = rf"(?<![\w{_MARKS}'-])", rf"(?![\w{_MARKS}-])"


def _spaced(cues: list[str]) -> str:
    return _EDGE_BEFORE + _gated(cues) + _EDGE_AFTER


def _first_chars(cue: str) -> str:
    """The characters a cue's pattern can start with (its optional prefixes included)."""
    cue = re.sub(r"^\(\?<=[^)]*\)", "", cue)  # a lookbehind is not part of the match
    optional = re.match(r"\(\?:([^)]*)\)\?", cue)
    if optional:
        return optional.group(1)[0] + _first_chars(cue[optional.end() :])
    if cue[0] in "[(\\.^$|*+?{":
        # Any other pattern start would make the gate drop the cue without a word.
        raise ValueError(f"negation cue {cue!r} must start with a literal character")
    if len(cue) > 1 and cue[1] == "?":
        return cue[0] + _first_chars(cue[2:])
    return cue[0]


def _gated(cues: list[str]) -> str:
    """Alternatives behind a lookahead on the characters they can start with: most positions of
    a request fail it at once, before the alternatives are tried one by one."""
    starts = "".join(sorted({c for cue in cues for c in _first_chars(cue)}))
    return f"(?=[{re.escape(starts)}])(?:" + "|".join(cues) + ")"


# Alternatives are tried in this order at each position: a cue after its scope ("不用了")
# before a shorter cue before its scope ("不用").
_CUE = re.compile(
    f"(?P<post>{_spaced(_POST_CUES)}|{_gated(_POST_JOINED_CUES)})"
    f"|(?P<joined>{_gated(_JOINED_CUES)})"
    f"|(?P<pre>{_spaced(_CUES)})",
    re.IGNORECASE,
)
_BOUNDARY = re.compile(
    r"[,.;:!?()\[\]\n，。、；：！？（）「」،؛؟]"
    r"|(?<!\w)(?:but|just|only|aber|nur|sondern|mais|seulement|juste|pero|solo|sólo|ma|mas|só"
    r"|apenas|dar|doar|maar|alleen|men|bara|kun|но|а|только|лишь|але|лише|тільки|ale|tylko|jen"
    r"|jenom|pouze|αλλά|μόνο|vaan|mutta|vain|csak|hanem|ama|sadece|yalnızca|אבל|אלא|רק|لكن"
    r"|بس|فقط|ولی|اما|लेकिन|बस|सिर्फ|tapi|cuma|hanya|aja|saja|nhưng|chỉ|mà)(?!\w)",
    re.IGNORECASE,
)

#: sha256 of the cues, boundaries and scope lengths, recorded in a store (see ``store``).
_RULES = [*_CUES, *_JOINED_CUES, *_POST_CUES, *_POST_JOINED_CUES, _BOUNDARY.pattern]
RULES_SHA256 = hashlib.sha256(
    "\n".join([*_RULES, f"{MAX_SCOPE} {POST_SCOPE}"]).encode("utf-8")
).hexdigest()


def _forward_scope(text: str, start: int, words_cap: int) -> int:
    """End of the scope that starts at ``start``: the next boundary, at most ``words_cap``
    runs of non-space characters later."""
    window = text[start : start + _WINDOW]
    stop = _BOUNDARY.search(window)
    words = list(re.finditer(r"\S+", window[: stop.start() if stop else len(window)]))
    end = start + (stop.start() if stop else len(window))
    if len(words) > words_cap:
        end = start + words[words_cap - 1].end()
    return end


def _backward_scope(text: str, lo: int, end: int) -> int:
    """Start of the scope that ends at ``end`` (a cue after its scope): the previous boundary,
    at most ``POST_SCOPE`` words earlier, never before ``lo``."""
    start = max(lo, end - _WINDOW)
    window = text[start:end]
    cut = max((m.end() for m in _BOUNDARY.finditer(window)), default=0)
    start += cut
    window = window[cut:]
    words = list(re.finditer(r"\S+", window))
    if len(words) > POST_SCOPE:
        start += words[-POST_SCOPE].start()
    return start


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
        if cue.lastgroup == "post":
            begin = _backward_scope(text, pos, cue.start())
            span = text[begin : cue.start()].strip()
            if not span:
                continue
            kept.append(text[pos:begin])
            negated.append(span)
            pos = cue.end()
            continue
        # Look no further than a bounded window ahead, so a long text costs linear time.
        cap = 1 if cue.lastgroup == "joined" else MAX_SCOPE
        end = _forward_scope(text, cue.end(), cap)
        span = text[cue.end() : end].strip()
        if not span:
            continue
        kept.append(text[pos : cue.start()])
        negated.append(span)
        pos = end
    kept.append(text[pos:])
    return " ".join(" ".join(kept).split()), " ".join(negated)
