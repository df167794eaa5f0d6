"""Baseline routers measured against the toolkens on the same data.

- ``similarity``: zero-shot cosine similarity between the prompt and each tool's documentation
  on the same backbone; REJECT when the best similarity is under a threshold chosen on the
  validation split (stored in the toolken store's metadata).
- ``keyword``: rules read from the documentation: the words that appear in one class's doc
  (tools and REJECT) and in no other; the class with most distinct hits wins, none -> REJECT.

Both expose ``scores(prompts, descriptions, rerank)`` like the toolken models: an array of
shape (n, n_classes) whose last column is REJECT, and None for stage 2.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

DEFAULT_SIMILARITY_THRESHOLD = 0.3

_STOP = set(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "being",
        "but",
        "by",
        "can",
        "could",
        "do",
        "does",
        "for",
        "from",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "may",
        "more",
        "most",
        "no",
        "not",
        "of",
        "on",
        "one",
        "or",
        "other",
        "over",
        "same",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "up",
        "use",
        "used",
        "uses",
        "using",
        "very",
        "was",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "will",
        "with",
        "would",
        "you",
        "your",
        "also",
        "each",
        "only",
        "any",
        "all",
        "both",
        "either",
        "every",
        "per",
        "via",
        "within",
        "without",
        "between",
        "after",
        "before",
        "about",
        "against",
    ]
)


class SimilarityScorer:
    """Cosine similarity of prompt and doc embeddings on a frozen backbone.

    Parameters
    ----------
    backbone : Backbone
        WordLlama (mean token embedding) or HF (hidden state at the end of the text).
    docs : list of str
        Documentation of each class, tools first, REJECT last (REJECT's doc is not used).
    threshold : float
        A prompt whose best tool similarity is below it is REJECTed.
    """

    def __init__(self, backbone: Any, docs: list[str], threshold: float) -> None:
        self.backbone = backbone
        self.threshold = float(threshold)
        self.doc = self._embed(docs[:-1])

    def _embed(self, texts: list[str]) -> np.ndarray:
        if hasattr(self.backbone, "mean_embed"):
            return self.backbone.mean_embed(texts)
        h = self.backbone.hidden(texts).numpy()
        return h / np.maximum(np.linalg.norm(h, axis=1, keepdims=True), 1e-8)

    def similarities(self, prompts: list[str]) -> np.ndarray:
        """Cosine similarities of shape (n, n_tools)."""
        return self._embed(prompts) @ self.doc.T

    def fit_threshold(self, prompts: list[str], labels: list[int]) -> float:
        """Choose (and keep) the threshold with the best accuracy on labelled prompts
        (validation split); labels index the classes, REJECT = n_tools."""
        if not prompts:
            return self.threshold
        sims = self.similarities(prompts)
        best, top = sims.max(1), sims.argmax(1)
        y = np.asarray(labels)
        reject = sims.shape[1]
        grid = np.unique(np.concatenate([best, [best.min() - 1e-3, best.max() + 1e-3]]))
        cands = (grid[:-1] + grid[1:]) / 2
        acc = [np.mean(np.where(best < t, reject, top) == y) for t in cands]
        self.threshold = round(float(cands[int(np.argmax(acc))]), 6)
        return self.threshold

    def scores(
        self, prompts: list[str], descriptions: list[str], rerank: bool = False
    ) -> tuple[np.ndarray, None]:
        """(n, n_tools + 1): similarity per tool, the threshold in the REJECT column."""
        sims = self.similarities(prompts)
        return np.column_stack([sims, np.full(len(prompts), self.threshold)]), None


def _stem(word: str) -> str:
    for suffix in ("ations", "ation", "ings", "ing", "ies", "ed", "es", "ly", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def keywords(text: str) -> set[str]:
    """Stemmed content words of a text."""
    words = re.findall(r"[a-z][a-z0-9]+(?:-[a-z0-9]+)*", text.lower())
    return {_stem(w) for w in words if w not in _STOP and len(w) > 2}


class KeywordScorer:
    """Keyword rules derived from the documentation (no training, no backbone).

    Parameters
    ----------
    docs : list of str
        Documentation of each class, tools first, REJECT last.
    """

    def __init__(self, docs: list[str]) -> None:
        words = [keywords(d) for d in docs]
        self.rules = [
            w - set().union(*(o for j, o in enumerate(words) if j != i))
            for i, w in enumerate(words)
        ]

    def scores(
        self, prompts: list[str], descriptions: list[str], rerank: bool = False
    ) -> tuple[np.ndarray, None]:
        """(n, n_classes): distinct keyword hits per class; REJECT gets +0.5 so that no hit
        (or a tie with it) rejects."""
        out = np.zeros((len(prompts), len(self.rules)))
        for i, p in enumerate(prompts):
            found = keywords(p)
            out[i] = [len(found & r) for r in self.rules]
        out[:, -1] += 0.5
        return out, None
