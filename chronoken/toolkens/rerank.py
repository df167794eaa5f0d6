"""Stage 2 (Toolken+): score the request against each candidate's documentation.

For the top-k tools of stage 1 plus REJECT, the reranker reads each candidate's documentation
and scores the pair; REJECT ranked first means no tool. Documentation encodings are computed
once and cached.

- WordLlama (bag of embeddings, no attention): zero-shot similarity features between the
  request and the documentation (whole doc, best sentence, token-level late interaction) act as
  a prior that generalises; the words the request rules out ("..., not ARIMA") are scored
  against each doc on their own, so a bag of words can learn that naming a tool in a negation
  counts against it; a trained low-rank bilinear term, per-feature weights, the stage-1
  log-probability and a per-class bias sit on top.
- HF backbone: the documentation is literally in context ("doc + request"), the hidden state
  at the end is scored by a trained vector (optionally through a LoRA adapter).
"""

from __future__ import annotations

import re

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from chronoken.toolkens.backbone import WordLlamaBackbone

BAG_FEATURES = ("cos", "sent", "tok", "toolken", "neg_cos", "neg_tok")
CROSS_TEMPLATE = (
    "Tool documentation: {doc}\n\nRequest: {prompt}\nDoes this tool fit the request? Answer:"
)


_NEGATIVE = re.compile(r"(?i)^(not for|not suited|it does not|does not|it is not|never)\b")


def sentences(doc: str) -> list[str]:
    """The documentation split into sentences (and clauses after a colon)."""
    parts = re.split(r"(?<=[.;:!?])\s+", doc)
    return [p.strip() for p in parts if len(p.strip()) > 3] or [doc]


def positive(doc: str) -> str:
    """The doc without its "Not for ..." sentences: a bag of embeddings cannot read negation,
    so "Not for change points" would otherwise pull change-point requests towards this doc."""
    kept = [s for s in sentences(doc) if not _NEGATIVE.match(s)]
    return " ".join(kept) or doc


class DocBank:
    """Cached WordLlama encodings of the class documentation texts (tools, then REJECT).

    Attributes
    ----------
    mean : Tensor of shape (n_classes, dim)
        L2-normalised mean embedding of each doc.
    sent : Tensor of shape (n_sentences, dim)
        L2-normalised mean embedding of each doc sentence; ``sent_mask`` (n_classes,
        n_sentences) says which class owns which.
    tok : Tensor of shape (n_tokens, dim)
        Unit embeddings of the distinct tokens of all docs; ``tok_mask`` (n_classes, n_tokens).
    """

    def __init__(self, backbone: WordLlamaBackbone, docs: list[str]) -> None:
        docs = [positive(d) for d in docs]
        self.mean = torch.from_numpy(backbone.mean_embed(docs))
        sents, owner = [], []
        for c, doc in enumerate(docs):
            for s in sentences(doc):
                sents.append(s)
                owner.append(c)
        self.sent = torch.from_numpy(backbone.mean_embed(sents))
        own = torch.tensor(owner)
        self.sent_mask = own.unsqueeze(0) == torch.arange(len(docs)).unsqueeze(1)
        ids = backbone.token_ids(docs)
        vocab = sorted({t for row in ids for t in row})
        index = {t: i for i, t in enumerate(vocab)}
        emb = backbone.embedding[vocab] if vocab else np.zeros((1, backbone.dim), np.float32)
        self.tok = F.normalize(torch.from_numpy(np.array(emb)), dim=-1)
        self.tok_mask = torch.zeros(len(docs), max(1, len(vocab)), dtype=torch.bool)
        for c, row in enumerate(ids):
            self.tok_mask[c, [index[t] for t in row]] = True


def bag_pair_features(
    q: torch.Tensor,
    tok: torch.Tensor,
    logp1: torch.Tensor,
    bank: DocBank,
    q_neg: torch.Tensor | None = None,
    tok_neg: torch.Tensor | None = None,
) -> torch.Tensor:
    """Request/doc features of shape (n, n_classes, 6) in BAG_FEATURES order.

    q: (n, dim) unit mean embedding of the request; tok: (n, n_classes) token-level late
    interaction (weighted mean over request tokens of their best cosine to a doc token);
    logp1: (n, n_classes) stage-1 log-probabilities; q_neg, tok_neg: the same two for the words
    the request rules out (``negation.split_negated``; zeros when it rules nothing out).
    """
    cos = q @ bank.mean.T
    s = q @ bank.sent.T  # (n, S)
    sent = s.unsqueeze(1).masked_fill(~bank.sent_mask.unsqueeze(0), -2.0).max(-1).values
    neg_cos = torch.zeros_like(cos) if q_neg is None else q_neg @ bank.mean.T
    neg_tok = torch.zeros_like(cos) if tok_neg is None else tok_neg
    return torch.stack([cos, sent, tok, logp1, neg_cos, neg_tok], dim=-1)


class BagReranker(nn.Module):
    """score(request, class c) = a . features(c) + q^T U V^T doc_c + b_c.

    Parameters
    ----------
    dim : int
        Embedding size of the backbone.
    n_classes : int
        Tools plus REJECT.
    rank : int
        Rank of the bilinear request/doc term.
    features : tuple of str
        Which of BAG_FEATURES are used (the others get weight 0 and no gradient).
    """

    def __init__(
        self, dim: int, n_classes: int, rank: int = 16, features: tuple[str, ...] = BAG_FEATURES
    ) -> None:
        super().__init__()
        self.register_buffer(
            "use", torch.tensor([float(f in features) for f in BAG_FEATURES]), persistent=False
        )
        # Starts as stage 1 exactly (doc weights 0); training adds the docs where validation agrees.
        self.alpha = nn.Parameter(torch.tensor([0.0, 0.0, 0.0, 1.0, 0.0, 0.0]))
        self.bias = nn.Parameter(torch.zeros(n_classes))
        g = torch.Generator().manual_seed(0)
        self.u = nn.Parameter(torch.randn(dim, rank, generator=g) * 0.05)
        self.v = nn.Parameter(torch.zeros(dim, rank))

    def forward(self, feats: torch.Tensor, q: torch.Tensor, doc: torch.Tensor) -> torch.Tensor:
        """Scores of shape (n, n_classes) from feats (n, C, 6), q (n, dim), doc (C, dim)."""
        lin = (feats * (self.alpha * self.use)).sum(-1)
        return lin + (q @ self.u) @ (doc @ self.v).T + self.bias


class HFReranker(nn.Module):
    """score(request, c) = v . h(doc_c + request) + a * log p1(c) + b_c on an HF backbone."""

    def __init__(self, hidden: int, n_classes: int) -> None:
        super().__init__()
        self.v = nn.Parameter(torch.zeros(hidden))
        self.alpha = nn.Parameter(torch.tensor(1.0))
        self.bias = nn.Parameter(torch.zeros(n_classes))

    def forward(self, h: torch.Tensor, logp1: torch.Tensor) -> torch.Tensor:
        """Scores (n, C) from pair states h (n, C, hidden) and stage-1 log-probs (n, C)."""
        return h @ self.v + self.alpha * logp1 + self.bias


def candidate_mask(p1: torch.Tensor, k: int, reject: int) -> torch.Tensor:
    """Bool (n, C): the top-k tools of stage 1 plus REJECT."""
    tools_only = p1.clone()
    tools_only[:, reject] = -1.0
    top = tools_only.topk(min(k, p1.shape[1] - 1), dim=1).indices
    mask = torch.zeros_like(p1, dtype=torch.bool)
    mask.scatter_(1, top, True)
    mask[:, reject] = True
    return mask
