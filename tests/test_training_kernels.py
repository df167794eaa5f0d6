"""The training shortcuts give the same numbers as the plain torch operations they replace."""

from __future__ import annotations

import random

import numpy as np
import torch
from torch.nn import functional as F

from chronoken.toolkens.backbone import clean_text, load_backbone
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


def test_stage_two_reads_the_encoded_copies_as_the_router_reads_the_prompts() -> None:
    from chronoken.toolkens.train import _bag_stage2_data, _copy_logp

    bb = load_backbone(None)
    model = build_model(bb, ["forecast the series", "find change points", "reject"], {})
    with torch.no_grad():
        model.head.weight.copy_(torch.randn(model.head.weight.shape))
        model.chars.weight.copy_(torch.randn(model.chars.weight.shape) * 0.1)
    prompts = ["forecast twelve months, not with ARIMA", "when did the level shift", "hi", "x"]
    descs = ["", "Series of 120 points, monthly.", "", "Series of 120 points, monthly."]
    copies = NoisyCopies(model, prompts, 2, random.Random(0))
    rows = np.array([3, 1, 0, 2])
    for copy in (0, 1):
        texts = [copies.texts[copy][r] for r in rows]
        got = _copy_logp(model, copies, copy, rows, [descs[r] for r in rows])
        p1, _ = model.scores(texts, [descs[r] for r in rows], rerank=False)
        assert np.allclose(got, np.log(np.clip(p1, 1e-9, 1.0)), atol=1e-5), copy
        feats, q, cand = _bag_stage2_data(model, copies, copy, rows, got)
        flat, offsets = model.tensors(texts)
        ref, ref_q = model.pair_features(
            flat, offsets, torch.from_numpy(got.astype(np.float32)), model.negated_tensors(texts)
        )
        assert torch.allclose(feats, ref) and torch.allclose(q, ref_q)
        assert cand[:, -1].all()  # REJECT is always a candidate
    assert copies.texts[0] == prompts


def test_batched_hashing_gives_each_text_its_own_ngram_ids() -> None:
    from chronoken.toolkens.model import char_ngrams, gram_ids_batch, word_ngrams

    texts = ["Forecast 12 months", "", "日本語のテキスト", "one two three four", "a"] * 3
    for n in (1, 5, 9, len(texts)):  # the per-text path below 9 texts, one vectorised pass above
        batch = gram_ids_batch(texts[:n], 1 << 17, (2, 3, 4, 5), (2,))
        for text, ids in zip(texts[:n], batch, strict=True):
            want = np.concatenate(
                [char_ngrams(text, 1 << 17, (2, 3, 4, 5)), word_ngrams(text, 1 << 17, (2,))]
            )
            assert np.array_equal(ids, want), (n, text)
    # A bucket count that is not a power of two takes the modulo path: ids stay in range.
    ids = gram_ids_batch(texts, 1000, (2, 3), (2,))
    assert all(((a >= 0) & (a < 1000)).all() for a in ids)
    assert gram_ids_batch([], 4096, (2,), (2,)) == []


def test_fast_tokenizer_path_gives_the_full_encoding_ids() -> None:
    bb = load_backbone(None)
    texts = ["Forecast the next 12 months", "Найди точки изменения", "予測して", "", "x\x00y"]
    full = bb.tokenizer.encode_batch([clean_text(t) for t in texts], add_special_tokens=False)
    assert bb.token_ids(texts) == [e.ids for e in full]
