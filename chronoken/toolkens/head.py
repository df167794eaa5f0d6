"""Stage 1: the toolken head (ToolkenGPT's W_tau, one vector per tool plus REJECT).

For WordLlama the context feature is ``[pool(prompt), pool(description)]``: the prompt and the
series description are pooled separately so that a 60-token description cannot drown a
10-token request. For an HF backbone it is the final hidden state at the end of the context,
and the toolken logits are concatenated with the LM's vocabulary logits.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

#: First part of a pooling spec; extra parts ("+max", "+min") append order statistics.
POOL_BASES = ("mean", "attn")
POOL_EXTRAS = ("max", "min")


class BagEncoder(nn.Module):
    """Pools frozen token embeddings of a text into one feature vector.

    Texts come packed: ``flat`` (total_tokens,) token ids and ``offsets`` (n,) where each text
    starts, so no compute is spent on padding (``torch.nn.functional.embedding_bag``).

    Parameters
    ----------
    embedding : Tensor of shape (vocab_size, dim)
        The frozen codebook (kept as a plain attribute, never a parameter).
    pooling : str
        ``"mean"`` (WordLlama's own mean) or ``"attn"`` (a learned weight per token computed
        from its embedding, so unseen words get weights too), optionally followed by ``+max``
        and/or ``+min`` (element-wise max/min over the tokens, appended). Each part is
        L2-normalised, so the output has shape (n, dim * n_parts).
    """

    def __init__(
        self, embedding: torch.Tensor, pooling: str = "mean", token_weights: bool = False
    ) -> None:
        super().__init__()
        parts = pooling.split("+")
        if parts[0] not in POOL_BASES or any(p not in POOL_EXTRAS for p in parts[1:]):
            raise ValueError(
                f"pooling must be one of {POOL_BASES} optionally followed by +max/+min, got {pooling!r}"
            )
        self.embedding = embedding
        self.pooling = pooling
        self.parts = parts
        d = int(embedding.shape[1])
        self.attn = nn.Parameter(torch.zeros(d)) if parts[0] == "attn" else None
        # One learned log-weight per vocabulary token (0 = WordLlama's plain mean).
        self.token_weight = (
            nn.Parameter(torch.zeros(int(embedding.shape[0]))) if token_weights else None
        )
        self.out_dim = d * len(parts)
        self._neg: torch.Tensor | None = None

    def forward(
        self, flat: torch.Tensor, offsets: torch.Tensor, fixed: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Features of shape (n, out_dim) of n packed texts; an empty text gives zeros.

        ``fixed``: the parameter-free parts (``fixed_parts`` of the same texts), when the caller
        has them already (training re-reads the same texts every epoch).
        """
        if self.attn is None and self.token_weight is None:
            mean = F.embedding_bag(flat, self.embedding, offsets, mode="mean")
        else:
            score = torch.zeros(len(flat))
            if self.attn is not None:
                score = score + F.normalize(F.embedding(flat, self.embedding), dim=-1) @ self.attn
            if self.token_weight is not None:
                score = score + self.token_weight[flat]
            w = torch.exp(score.clamp(-10.0, 10.0))
            total = F.embedding_bag(flat, self.embedding, offsets, mode="sum", per_sample_weights=w)
            lengths = torch.diff(offsets, append=torch.tensor([len(flat)]))
            bag = torch.repeat_interleave(torch.arange(len(offsets)), lengths)
            wsum = torch.zeros(len(offsets)).index_add(0, bag, w)
            mean = total / wsum.clamp(min=1e-6).unsqueeze(1)
        feats = [F.normalize(mean, dim=-1)]
        if fixed is not None:
            return torch.cat([feats[0], fixed], dim=-1)
        return torch.cat([feats[0], self.fixed_parts(flat, offsets)], dim=-1)

    def fixed_parts(self, flat: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """The order-statistic parts ("+max", "+min"), which have no trainable parameter:
        shape (n, dim * (n_parts - 1)), each part L2-normalised."""
        feats = [torch.zeros(len(offsets), 0)]
        for part in self.parts[1:]:
            if part == "max":
                v = F.embedding_bag(flat, self.embedding, offsets, mode="max")
            else:
                if self._neg is None:
                    self._neg = -self.embedding
                v = -F.embedding_bag(flat, self._neg, offsets, mode="max")
            feats.append(F.normalize(v, dim=-1))
        return torch.cat(feats, dim=-1)


class ToolkenHead(nn.Module):
    """One trainable vector per class (tools, then REJECT): logits = h W^T + b.

    Parameters
    ----------
    in_dim : int
        Size of the context feature h.
    n_classes : int
        Number of tools plus one for REJECT.
    bias : bool
        ToolkenGPT has none for an LM backbone (the toolkens live in the output-embedding space).
    """

    def __init__(self, in_dim: int, n_classes: int, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_classes, in_dim))
        self.bias = nn.Parameter(torch.zeros(n_classes)) if bias else None

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Toolken logits of shape (n, n_classes) from features h of shape (n, in_dim)."""
        return F.linear(h, self.weight, self.bias)

    def concat_logits(self, h: torch.Tensor, lm_logits: torch.Tensor) -> torch.Tensor:
        """ToolkenGPT's next-token logits: [vocabulary logits, toolken logits], shape
        (n, vocab_size + n_classes); the model either writes a word or calls a tool."""
        return torch.cat([lm_logits, self(h)], dim=-1)
