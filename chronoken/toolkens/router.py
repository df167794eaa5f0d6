"""Route a request to a tool (or REJECT): ``load_router(...).route(prompt, description)``.

Modes, all over the same classes (the registry's tools, then REJECT):

- ``toolken+`` (default): toolken head top-k, then the reranker reads the docs of those
  candidates plus REJECT; REJECT ranked first means no tool.
- ``toolken``: the toolken head alone.
- ``similarity``: zero-shot prompt/doc cosine similarity on the backbone, REJECT threshold.
- ``keyword``: keyword rules read from the docs.

The decision keeps both stages' scores, so a report can say why a tool was chosen and what the
runners-up were.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from chronoken.errors import RouterError

MODES = ("toolken+", "toolken", "similarity", "keyword")
REJECT = "reject"

_CACHE: dict[tuple, Router] = {}
_LOCK = threading.Lock()


class RouteCandidate(BaseModel):
    """One class as the router ranked it."""

    tool: str = Field(description="A tool name, or 'reject'.")
    toolken_score: float = Field(
        description="Stage-1 score: the toolken probability (toolken routers), the cosine "
        "similarity or REJECT threshold (similarity), the keyword hits (keyword)."
    )
    rerank_score: float | None = Field(
        None, description="Stage-2 (reranker) probability; None when not reranked."
    )


class RoutingDecision(BaseModel):
    """Where a request goes and why."""

    tool: str | None = Field(description="The chosen tool; None means REJECT (no tool fits).")
    candidates: list[RouteCandidate] = Field(description="Every class, final order, best first.")
    router: str = Field(description="'toolken+', 'toolken', 'similarity' or 'keyword'.")
    backbone: str = Field(description="The backbone id ('none' for keyword rules).")
    latency_ms: float = Field(description="Routing time of this request in milliseconds.")


class Router:
    """A routing mode over a scorer (toolken model or baseline).

    Parameters
    ----------
    scorer : object
        Has ``scores(prompts, descriptions, rerank) -> (p1 (n, C), p2 (n, C) or None)``.
    classes : list of str
        Tool names, then ``"reject"``.
    mode : str
        One of MODES.
    backbone_id : str
        Reported in each decision.
    metadata : dict, optional
        The store's metadata (split, metrics, threshold).
    """

    def __init__(
        self,
        scorer: Any,
        classes: list[str],
        mode: str,
        backbone_id: str,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.scorer = scorer
        self.classes = list(classes)
        self.mode = mode
        self.backbone_id = backbone_id
        self.metadata = metadata or {}
        self.k = int(getattr(scorer, "k", 3))
        self._lock = threading.Lock()

    def route(self, prompt: str, description: str = "") -> RoutingDecision:
        """Route one request; ``description`` is ``Series.describe()`` of the data (or "")."""
        return self.route_batch([prompt], [description])[0]

    def route_batch(
        self, prompts: list[str], descriptions: list[str] | None = None
    ) -> list[RoutingDecision]:
        """Route many requests at once (vectorised); latency_ms is the batch time per request."""
        prompts = [_check_prompt(p) for p in prompts]
        if descriptions is None:
            descriptions = [""] * len(prompts)
        if len(descriptions) != len(prompts):
            raise RouterError(
                f"{len(descriptions)} descriptions for {len(prompts)} prompts; give one per prompt."
            )
        descriptions = [d if isinstance(d, str) else "" for d in descriptions]
        if not prompts:
            return []
        t0 = time.perf_counter()
        with self._lock:
            p1, p2 = self.scorer.scores(prompts, descriptions, self.mode == "toolken+")
        per = 1000.0 * (time.perf_counter() - t0) / len(prompts)
        return [
            self._decision(p1[i], None if p2 is None else p2[i], per) for i in range(len(prompts))
        ]

    def _decision(self, p1: np.ndarray, p2: np.ndarray | None, latency: float) -> RoutingDecision:
        if p2 is not None:
            done = ~np.isnan(p2)
            first = sorted(np.where(done)[0], key=lambda c: (-p2[c], c))
            rest = sorted(np.where(~done)[0], key=lambda c: (-p1[c], c))
            order = [*first, *rest]
        else:
            order = sorted(range(len(p1)), key=lambda c: (-p1[c], c))
        # model_construct: the values are the router's own floats and names, so pydantic's
        # validation (a third of the batched routing time) has nothing to catch.
        cands = [
            RouteCandidate.model_construct(
                tool=self.classes[c],
                toolken_score=float(p1[c]),
                rerank_score=None if p2 is None or np.isnan(p2[c]) else float(p2[c]),
            )
            for c in order
        ]
        best = self.classes[order[0]]
        return RoutingDecision.model_construct(
            tool=None if best == REJECT else best,
            candidates=cands,
            router=self.mode,
            backbone=self.backbone_id,
            latency_ms=latency,
        )

    def next_token_logits(self, prompt: str, description: str = "") -> Any:
        """ToolkenGPT's concatenated logits (1, vocab_size + n_classes) (HF backbones only)."""
        fn = getattr(self.scorer, "next_token_logits", None)
        if fn is None:
            raise RouterError("next-token logits need an HF backbone with a toolken router.")
        return fn([_check_prompt(prompt)], [description or ""])


def _check_prompt(prompt: Any) -> str:
    if not isinstance(prompt, str):
        raise RouterError(f"the prompt must be text, got {type(prompt).__name__}.")
    if not prompt.strip():
        raise RouterError("the prompt is empty. Say what you want to know about the series.")
    return prompt


def clear_cache() -> None:
    """Forget loaded routers (after training a store)."""
    with _LOCK:
        _CACHE.clear()


def load_router(
    backbone: str | None = None,
    store: str | Path | None = None,
    mode: str = "toolken+",
    *,
    tools: dict[str, str] | None = None,
) -> Router:
    """The router for a backbone, store and mode, loaded once and cached.

    Parameters
    ----------
    backbone : str, optional
        ``"wordllama"`` (default) or ``"hf:<id or path>"``.
    store : path, optional
        Toolken store folder; default: the one for the backbone (shipped for WordLlama).
    mode : str
        ``"toolken+"``, ``"toolken"``, ``"similarity"`` or ``"keyword"``.
    tools : dict, optional
        name -> documentation, to route over tools other than the registry's (tests).
    """
    from chronoken.toolkens.backbone import canonical

    key_mode = (mode or "toolken+").strip().lower()
    if key_mode not in MODES:
        raise RouterError(f"unknown router '{mode}'. Choose one of: {', '.join(MODES)}.")
    spec = canonical(backbone)
    tools_key = None if tools is None else tuple(sorted(tools.items()))
    key = (spec, None if store is None else str(Path(store).resolve()), key_mode, tools_key)
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = _build(spec, store, key_mode, tools)
        return _CACHE[key]


def _build(spec: str, store: str | Path | None, mode: str, tools: dict[str, str] | None) -> Router:
    from chronoken.eval.baselines import (
        DEFAULT_SIMILARITY_THRESHOLD,
        KeywordScorer,
        SimilarityScorer,
    )
    from chronoken.toolkens.corpus import REJECT_DOC, tool_docs
    from chronoken.toolkens.store import check_compatible, default_store, load_store, read_metadata

    docs = tool_docs(tools)
    classes = [*docs, REJECT]
    texts = [docs[c] for c in docs] + [REJECT_DOC]
    if mode == "keyword":
        meta = _try_metadata(store if store is not None else default_store("wordllama"))
        return Router(KeywordScorer(texts), classes, mode, "none", meta)

    from chronoken.toolkens.backbone import load_backbone

    bb = load_backbone(spec)
    folder = Path(store) if store is not None else default_store(bb.id)
    if mode == "similarity":
        meta = _try_metadata(folder)
        ok = meta.get("backbone") == bb.id
        threshold = meta.get("similarity_threshold") if ok else None
        scorer = SimilarityScorer(
            bb, texts, DEFAULT_SIMILARITY_THRESHOLD if threshold is None else threshold
        )
        return Router(scorer, classes, mode, bb.id, meta if ok else {})

    from chronoken.toolkens.model import STORED_BEFORE, build_model

    read_metadata(folder, bb.id)
    tensors, meta = load_store(folder, bb.id)
    check_compatible(meta, bb.id, docs, folder)
    try:
        legacy = STORED_BEFORE if bb.kind == "wordllama" else {}
        model = build_model(bb, texts, {**legacy, **meta["config"]})
        model.load_trainable(tensors)
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        raise RouterError(
            f"the toolken store {folder} does not fit this router ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:200]}). Rebuild it with `chronoken train"
            f"{'' if bb.kind == 'wordllama' else ' --backbone ' + bb.id}`."
        ) from None
    model.eval()
    return Router(model, classes, mode, bb.id, meta)


def _try_metadata(folder: str | Path) -> dict[str, Any]:
    from chronoken.toolkens.store import read_metadata

    try:
        return read_metadata(folder)
    except RouterError:
        return {}
