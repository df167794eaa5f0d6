"""The training shortcuts give the same numbers as the plain torch operations they replace."""

from __future__ import annotations

import random

import numpy as np
import torch
from torch.nn import functional as F

from chronoken.toolkens.backbone import load_backbone
from chronoken.toolkens.head import BagEncoder
from chronoken.toolkens.model import _scaled_bag, build_model
from chronoken.toolkens.train import NoisyCopies


def _packed(rng: np.random.Generator, vocab: int, lengths: list[int]) -> tuple:
    flat = torch.from_numpy(rng.integers(0, vocab, sum(lengths)))
    offsets = torch.tensor([0, *np.cumsum(lengths)[:-1].tolist()], dtype=torch.long)
    return flat, offsets


def test_scatter_add_backward_matches_embedding_bag() -> None:
    rng = np.random.default_rng(0)
    # Repeated ids, an empty text in the middle and one at the end.
    flat, offsets = _packed(rng, 50, [7, 0, 30, 1, 12, 0])
    g = torch.from_numpy(rng.normal(size=(len(offsets), 4)).astype(np.float32))
    table = torch.randn(50, 4, requires_grad=True)

    out = _scaled_bag(flat, offsets, table)
    (out * g).sum().backward()
    ours = table.grad.clone()

    table.grad = None
    lengths = torch.diff(offsets, append=torch.tensor([len(flat)]))
    w = torch.repeat_interleave(lengths.clamp(min=1).float().rsqrt(), lengths)
    ref = F.embedding_bag(flat, table, offsets, mode="sum", per_sample_weights=w)
    (ref * g).sum().backward()

    assert torch.allclose(out, ref, atol=1e-6)
    assert torch.allclose(ours, table.grad, atol=1e-6)
    assert ours.abs().sum() > 0


def test_encoder_with_precomputed_order_statistics_is_unchanged() -> None:
    rng = np.random.default_rng(1)
    enc = BagEncoder(torch.randn(40, 8), "mean+max+min", token_weights=True)
    with torch.no_grad():
        enc.token_weight.copy_(torch.randn(40))
    flat, offsets = _packed(rng, 40, [5, 1, 9, 3])
    full = enc(flat, offsets)
    fast = enc(flat, offsets, enc.fixed_parts(flat, offsets))
    assert full.shape == (4, 24)
    assert torch.allclose(full, fast)


def test_noisy_copies_keep_each_copy_s_pooled_features() -> None:
    bb = load_backbone(None)
    model = build_model(bb, ["forecast the series", "find change points", "reject"], {})
    prompts = ["forecast twelve months ahead", "when did the level shift", "hello there"]
    copies = NoisyCopies(model, prompts, 3, random.Random(0))
    assert copies.fixed.shape == (3, 3, bb.dim)
    rows = np.array([2, 0, 1, 0])
    tokens, grams, fixed = copies.draw(rows, random.Random(5))
    expected = model.encoder.fixed_parts(*model.pack(tokens))
    assert grams is not None and len(grams) == 4
    assert torch.allclose(fixed, expected)
