"""Query translation for the WordLlama router: words of 28 languages -> English concept words.

WordLlama's token codebook and the router's learned word weights are, in effect, English: a
Hebrew or Greek request shares no feature with the English requests that teach the router what
"forecast" or "change point" mean. The glossary (``glossary/<language>.json``, written by hand,
one file per language) maps each of 200 English concept keys ("forecast", "change point",
"uncertainty", "since when", "poem", ...) to the terms that express it in that language.
``expand`` appends the key of every concept whose term occurs in a request, so "haz un
pronóstico de los próximos meses" is read as "... forecast future month" as well.

Matching is on a normalised text: lower-cased, every character that is not a letter, mark or
digit replaced by a space, whitespace collapsed, one space at each end. A term matches as a
substring of it, so stems cover inflections and compounds; a term's leading (trailing) space
anchors it at a word start (end). All terms of all languages are matched in one Aho-Corasick
pass (``pyahocorasick``), a few microseconds per request.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from chronoken.errors import RouterError

GLOSSARY_DIR = Path(__file__).resolve().parent / "glossary"

#: English function words that no other language of the glossary spells the same way: a request
#: holding one is read as English and left as it is. Terms of other languages that are also
#: English words ("an" is French for year, "tell" Norwegian for count) would otherwise add
#: wrong concepts to English requests, which the router reads well already.
ENGLISH_MARKERS = frozenset(
    [
        "the",
        "this",
        "that",
        "these",
        "those",
        "what",
        "which",
        "how",
        "why",
        "please",
        "you",
        "your",
        "with",
        "and",
        "does",
        "would",
        "could",
        "should",
        "there",
        "their",
        "they",
        "them",
        "from",
        "into",
        "about",
    ]
)


class _Normaliser(dict):
    """``str.translate`` table: letters, marks and digits map to themselves, anything else to a
    space; each character's category is looked up once, on first sight."""

    def __missing__(self, code: int) -> int:
        keep = unicodedata.category(chr(code))[0] in "LMN"
        self[code] = code if keep else 32
        return self[code]


_TABLE = _Normaliser()


def normalise(text: str) -> str:
    """Lower-cased NFC text with non-word characters as single spaces, padded by one space."""
    # NFC splits Devanagari nukta letters (U+0958..U+095F) into letter + nukta; the nukta is
    # dropped so that text typed with or without it matches the same terms.
    t = unicodedata.normalize("NFC", text).lower().replace("\u093c", "").translate(_TABLE)
    return " " + " ".join(t.split()) + " "


class Glossary:
    """Terms of every language file in ``folder`` -> English concept keys.

    Attributes
    ----------
    keys : list of str
        The concept keys, sorted; an expansion lists the keys it found in this order.
    digest : str
        sha256 of the files' names and bytes: a store records it, so a store trained with
        another glossary is refused.
    fold : bool
        Whether each term also matches without its marks (``fold``); a store records it as
        ``glossary_fold``.
    """

    def __init__(
        self, folder: str | Path = GLOSSARY_DIR, english_gate: bool = True, fold: bool = False
    ) -> None:
        import ahocorasick

        self.english_gate = english_gate
        self.fold = fold

        files = sorted(Path(folder).glob("*.json"))
        if not files:
            raise RouterError(f"no glossary files (*.json) in {folder}")
        raws = [path.read_bytes() for path in files]
        # pattern -> {(language, key)}
        entries: dict[str, set[tuple[int, str]]] = {}
        self.languages = [path.stem for path in files]
        for lang, (path, raw) in enumerate(zip(files, raws, strict=True)):
            try:
                data = json.loads(raw.decode("utf-8"))
                if not isinstance(data, dict):
                    raise ValueError("not a JSON object")
                for key, terms in data.items():
                    if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
                        raise ValueError(f"the terms of '{key}' are not a list of strings")
                    for term in terms:
                        entries.setdefault(_pattern(term), set()).add((lang, key))
            except (UnicodeDecodeError, ValueError) as exc:
                raise RouterError(f"the glossary file {path} is corrupt ({exc})") from None
        entries.pop("", None)
        if fold:
            _add_folded(entries, self.languages)
        self.digest = _digest(zip((path.name for path in files), raws, strict=True))
        self.keys = sorted({k for pairs in entries.values() for _, k in pairs})
        index = {k: i for i, k in enumerate(self.keys)}
        self._automaton = ahocorasick.Automaton()
        # Insertion order does not change what matches; most patterns have one (language, key).
        for pattern, pairs in entries.items():
            ids = [(lang, index[k]) for lang, k in pairs]
            value = (len(pattern.strip()), tuple(sorted(ids)) if len(ids) > 1 else tuple(ids))
            self._automaton.add_word(pattern, value)
        self._automaton.make_automaton()

    def __len__(self) -> int:
        return len(self._automaton)

    def concepts(self, text: str) -> list[str]:
        """The concept keys found in ``text``, each once, in ``keys`` order.

        Only the terms of the language(s) whose matches cover the most characters count: a
        word of one language is often a word of another ("meses", Spanish for months, holds
        Hungarian "mese", a tale). Left out are requests that read as English
        (``ENGLISH_MARKERS``) and keys whose words all stand in the text already (an English
        loanword: appending it again would add nothing).
        """
        norm = normalise(text)
        words = set(norm.split())
        if self.english_gate and not words.isdisjoint(ENGLISH_MARKERS):
            return []
        cover: dict[int, int] = {}
        found: list[tuple[int, int]] = []
        for _, (length, pairs) in self._automaton.iter(norm):
            for lang, _key in pairs:
                cover[lang] = cover.get(lang, 0) + length
            found.extend(pairs)
        if not found:
            return []
        top = max(cover.values())
        ids = sorted({key for lang, key in found if cover[lang] == top})
        return [k for k in (self.keys[i] for i in ids) if not words.issuperset(k.split())]

    def expand(self, text: str) -> str:
        """``text`` followed by the concept keys found in it (unchanged when none are)."""
        keys = self.concepts(text)
        return f"{text} {' '.join(keys)}" if keys else text


def _pattern(term: str) -> str:
    """A term as matched: normalised inside, keeping its anchors (a leading or trailing space
    means a word boundary), or "" for a term with no word character."""
    core = normalise(term).strip()
    if not core:
        return ""
    lead = " " if term[:1].isspace() else ""
    trail = " " if term[-1:].isspace() else ""
    return f"{lead}{core}{trail}"


#: Languages whose marks stay when people type in a hurry: Devanagari, Thai and kana marks are
#: part of the letter ("が" is not "か"), and zh and ko have none to drop. Russian and Ukrainian
#: keep theirs too ("й" is not "и"), but lose the dots of "ё".
UNFOLDED_LANGUAGES = frozenset(["hi", "ja", "ko", "th", "zh"])
LETTERS_ONLY = frozenset(["ru", "uk"])

#: Letters whose mark NFD does not split off ("đ", "ł", "ø", "ı"; "ß" and "æ" as typed without
#: them), and "ё", the one Cyrillic letter folded in Russian and Ukrainian.
_FOLD_LETTERS = str.maketrans(
    {"đ": "d", "ł": "l", "ø": "o", "ı": "i", "ß": "ss", "æ": "ae", "ё": "е"}
    | {"Đ": "D", "Ł": "L", "Ø": "O", "Æ": "AE", "Ё": "Е"}
)


#: Shortest folded term kept, in characters: a short stem without its marks is inside too
#: many other words.
FOLD_MIN_LETTERS = 3


def fold(text: str, marks: bool = True) -> str:
    """``text`` without its combining marks ("dự báo" -> "du bao", "předpověď" ->
    "predpoved") and with the letters of ``_FOLD_LETTERS`` plain ("ł" -> "l", "ё" -> "е"), as
    people type when they skip accents; only the letters when not ``marks``."""
    text = text.translate(_FOLD_LETTERS)
    if not marks:
        return text
    decomposed = unicodedata.normalize("NFD", text)
    kept = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", kept)


def _add_folded(entries: dict[str, set[tuple[int, str]]], languages: list[str]) -> None:
    """Add each term's form without marks (``fold``) under the same key, for every language
    but ``UNFOLDED_LANGUAGES`` (only the letters in ``LETTERS_ONLY``).

    A folded form is left out where, anchors aside, it is a term of another key of that
    language or two keys of it fold to it: it would read one concept as another (Vietnamese
    "bán hàng", selling, and "bạn hàng", a trading partner, are both "ban hang"). So is a
    Vietnamese syllable on its own ("tháng", month, and "thắng", to win, are both "thang").
    """
    skip = {i for i, code in enumerate(languages) if code in UNFOLDED_LANGUAGES}
    letters_only = {i for i, code in enumerate(languages) if code in LETTERS_ONLY}
    vi = languages.index("vi") if "vi" in languages else -1
    folded: dict[str, set[tuple[int, str]]] = {}
    for pattern, pairs in entries.items():
        if pattern.isascii():  # nothing to fold (most Latin-script terms)
            continue
        for lang, key in pairs:
            if lang in skip:
                continue
            form = fold(pattern, marks=lang not in letters_only)
            core = form.strip()
            # A Vietnamese syllable without its tone mark stands for many words.
            if form != pattern and len(core) >= FOLD_MIN_LETTERS and (lang != vi or " " in core):
                folded.setdefault(form, set()).add((lang, key))
    # The keys each (core, language) of a folded form stands for, in folded forms and terms.
    keys_of: dict[tuple[str, int], set[str]] = {}
    for form, pairs in folded.items():
        for lang, key in pairs:
            keys_of.setdefault((form.strip(), lang), set()).add(key)
    for core in {core for core, _ in keys_of}:
        for pattern in (core, f" {core}", f"{core} ", f" {core} "):
            for lang, key in entries.get(pattern, ()):
                if (core, lang) in keys_of:
                    keys_of[(core, lang)].add(key)
    for form, pairs in folded.items():
        for lang, key in pairs:
            if keys_of[(form.strip(), lang)] == {key}:
                entries.setdefault(form, set()).add((lang, key))


def glossary_digest(folder: str | Path = GLOSSARY_DIR) -> str:
    """``Glossary(folder).digest`` without building the matcher: sha256 of the files' names and
    bytes, for checking a store against the installed glossary."""
    return _digest((path.name, path.read_bytes()) for path in sorted(Path(folder).glob("*.json")))


def _digest(files: Iterable[tuple[str, bytes]]) -> str:
    """sha256 of (file name, file bytes) pairs, in the order given."""
    sha = hashlib.sha256()
    for name, raw in files:
        sha.update(name.encode() + b"\0" + raw + b"\0")
    return sha.hexdigest()


@lru_cache(maxsize=4)
def load_glossary(folder: str | Path = GLOSSARY_DIR, fold: bool = False) -> Glossary:
    """The glossary in ``folder`` (the shipped one by default), built once per process; with
    ``fold``, each term is also matched without its marks (``fold``)."""
    return Glossary(folder, fold=fold)
