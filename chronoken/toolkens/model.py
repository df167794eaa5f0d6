"""The trainable router on top of a frozen backbone: toolken head (stage 1) + reranker (stage 2).

``scores(prompts, descriptions)`` returns stage-1 probabilities of shape (n, n_classes) and
stage-2 probabilities of the same shape (NaN where a class was not reranked). Classes are the
tools in registry order, then REJECT (last).

On WordLlama, stage 1 adds two learned lexical priors to the toolken logits: a per-class weight
for each tokenizer token and one for each hashed character n-gram (3 and 5 characters, fastText
style). The n-grams carry what the LLaMA token codebook lacks: misspellings and inflections
share most of their n-grams with the right word, and scripts the tokenizer splits into shared
byte tokens (much CJK, Thai, Hebrew...) keep one feature per character sequence. The layer was
adopted by 4-fold cross-validation on train + validation (2-4-grams: accuracy 0.894 -> 0.904 on
the 1,895-prompt corpus; adding unigrams: 0.866 -> 0.868 on the 3,105-prompt corpus; adding
5-grams: 0.871 -> 0.876 on the 5,605-prompt corpus; the last two better in every fold). Once the
glossary below was in, unigrams no longer paid their way: dropping them gave 0.8995 -> 0.9002
(REJECT F1 0.8801 -> 0.8807) on the 13,398-prompt corpus, and stage 1 trains about 15% faster.
The 2-grams followed on the 24,330-prompt corpus (0.9284 -> 0.9293, REJECT F1 0.9142 -> 0.9148),
and the time they took pays for twice the buckets, 262,144 (0.9310, REJECT F1 0.9165, better in
every fold than with the 2-grams and 131,072 buckets). With corpus round 36, the 4-grams went
too (0.9328 -> 0.9338, REJECT F1 0.9187 -> 0.9213 and better in every fold, accuracy lower in 2
of 4), which leaves a third fewer character ids to hash and train. Hashed pairs of consecutive
words share the n-gram table (``word_ns``): word order is what a bag loses, and pairs such as
"don't run", "next year" or "these numbers" tell a request about the series from a question
about the world (0.9105 -> 0.9114, REJECT F1 0.8924 -> 0.8947, accuracy better in every fold, on
the 15,369-prompt corpus; adding word triples: 0.9091).

Every text is read with the glossary's English concept words appended (``glossary``: "haz un
pronóstico" also reads "forecast"), so what English requests teach reaches the other 28
languages (4-fold CV with the first 90 concepts: accuracy 0.874 -> 0.898, REJECT F1 0.858 ->
0.878, better in every fold, requests not in English 0.822 -> 0.868; 38 more concepts later:
0.902 -> 0.912, REJECT F1 0.883 -> 0.895; a third pass of missing forms, chat phrasing and
romanised spellings: 0.906 -> 0.911, REJECT F1 0.886 -> 0.892; 34 concepts more, on how a
request points at the user's own data, jargon and REJECT topics: 0.912 -> 0.920, REJECT F1
0.896 -> 0.906; 13 more: 0.920 -> 0.922, REJECT F1 0.907 -> 0.910; a pass of missing forms for
those 47: 0.9248 -> 0.9258, REJECT F1 0.9133 -> 0.9147; each better in every fold; 7 more,
with the principal-component terms moved from SSA to their own key: 0.9258 -> 0.9266, REJECT F1
0.9147 -> 0.9152, equal or better in every fold; 9 more, on calendar questions, exercises solved
by hand, whether a result is real, supplies running out and calm against turbulent periods, on
the 18,033-prompt corpus: 0.9258 -> 0.9280, REJECT F1 0.9135 -> 0.9172, better in every fold;
9 more, on chart styling, the lowest value, decisions, causes, layers and quantities that pull on
each other, on the 21,081-prompt corpus: 0.9370 -> 0.9375, REJECT F1 0.9272 -> 0.9282). Terms
are also matched without their marks (``glossary_fold``, ``glossary.fold``): people typing in a
hurry leave out accents and tone marks ("predpoved" for "předpověď"), and the hand-written files
hold such forms for only some of their terms (on the 25,231-prompt corpus: 0.93170 -> 0.93205,
REJECT F1 0.91768 -> 0.91828, accuracy better in 3 of 4 folds).
"""

from __future__ import annotations

import re
import zlib
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from chronoken.toolkens.backbone import HFBackbone, WordLlamaBackbone, torch_threads
from chronoken.toolkens.glossary import load_glossary
from chronoken.toolkens.head import BagEncoder, ToolkenHead
from chronoken.toolkens.negation import RULES_SHA256, split_negated
from chronoken.toolkens.rerank import (
    CROSS_TEMPLATE,
    BagReranker,
    DocBank,
    HFReranker,
    bag_pair_features,
    candidate_mask,
)

BAG_DEFAULTS: dict[str, Any] = {
    "pooling": "mean+max",
    "k": 3,
    "rank": 16,
    "features": ["cos", "sent", "tok", "toolken", "neg_cos", "neg_tok"],
    "lexical": True,
    "token_weights": True,
    # 2- to 5-grams in 131,072 buckets until the 24,330-prompt corpus (module docstring).
    "char_ngrams": 262144,
    "char_ns": [3, 5],
    "word_ns": [2],
    "glossary": True,
    "glossary_fold": True,
}
#: Settings added after stores were first written, with the value a store that does not record
#: them was trained with: such a store is read as it was trained, not with today's defaults.
STORED_BEFORE: dict[str, Any] = {"word_ns": [], "glossary_fold": False}
HF_DEFAULTS: dict[str, Any] = {"k": 3, "lora": False, "lora_rank": 8}
CONTEXT_TEMPLATE = "Time series: {description}\nRequest: {prompt}\nTool:"
_BATCH = 512
_WORD = re.compile(r"\w+")


def _padded(text: str) -> str:
    """Lower-cased, runs of whitespace collapsed, one space at each end."""
    return " " + " ".join(text.lower().split()) + " "


def _codes(s: str) -> np.ndarray:
    """Code points of s as uint64, shape (len(s),) (lone surrogates kept as they are)."""
    return np.frombuffer(s.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.uint64)


def _ngram_hashes(c: np.ndarray, n: int) -> np.ndarray:
    """Hash of every n-gram of the code points c (uint64, shape (len(c) - n + 1,)): a fixed
    polynomial, wrapping modulo 2**64 by design, then an xor-shift to mix the high bits down."""
    m = len(c) - n + 1
    h = np.full(m, n, dtype=np.uint64)
    for j in range(n):
        h = h * np.uint64(1000003) + c[j : j + m]
    return h ^ (h >> np.uint64(31))


def _buckets(h: np.ndarray, buckets: int) -> np.ndarray:
    """Bucket ids (int64) of uint64 hashes: h mod buckets, as a bit mask when buckets is a
    power of two (the same ids without a 64-bit division per n-gram)."""
    if buckets & (buckets - 1) == 0:
        return (h & np.uint64(buckets - 1)).astype(np.int64)
    return (h % np.uint64(buckets)).astype(np.int64)


def char_ngrams(text: str, buckets: int, ns: tuple[int, ...] = (1, 2, 3, 4, 5)) -> np.ndarray:
    """Hashed character n-grams (n in ``ns``) of a text: int64 bucket ids of shape (m,).

    The text is lower-cased with runs of whitespace collapsed and padded by a space, so word
    starts and ends are n-grams of their own. The hash is a fixed polynomial over code points
    (deterministic across processes, unlike ``hash``): typos, inflections and scripts whose
    characters the tokenizer splits into shared byte tokens (CJK) still get their own features.
    """
    c = _codes(_padded(text))
    out = [_ngram_hashes(c, n) for n in ns if len(c) >= n]
    if not out:
        return np.zeros(0, dtype=np.int64)
    return _buckets(np.concatenate(out), buckets)


def word_ngrams(text: str, buckets: int, ns: tuple[int, ...]) -> np.ndarray:
    """Hashed word n-grams (n in ``ns``, n >= 2) of a text: int64 bucket ids of shape (m,).

    Words are the runs of word characters of the lower-cased text; each word is hashed with
    crc32 (deterministic across processes) and consecutive hashes are mixed into one id per
    n-gram, so "don't run" and "run it" are features of their own.
    """
    return word_ngrams_batch([text], buckets, ns)[0]


def _runs(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenated ranges [starts[i], starts[i] + counts[i]) over i: int64, (counts.sum(),)."""
    total = int(counts.sum())
    return np.repeat(starts, counts) + (
        np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    )


def _per_text(blocks: list[tuple[np.ndarray, np.ndarray]], n_texts: int) -> list[np.ndarray]:
    """Regroup id blocks by text: ``blocks`` holds, per n-gram kind, (ids of all texts in text
    order, count per text (n_texts,)); text i gets its ids of block 0, then block 1, ... (one
    scatter and one split, not a split per block and a concatenate per text)."""
    if not blocks:
        return [np.zeros(0, dtype=np.int64) for _ in range(n_texts)]
    per_text = np.sum([counts for _, counts in blocks], axis=0)
    first = np.cumsum(per_text) - per_text  # where each text's ids start in the output
    out = np.empty(int(per_text.sum()), dtype=np.int64)
    before = np.zeros(n_texts, dtype=np.int64)
    for ids, counts in blocks:
        out[_runs(first + before, counts)] = ids
        before = before + counts
    return np.split(out, np.cumsum(per_text)[:-1])


def _word_blocks(
    texts: list[str], buckets: int, ns: tuple[int, ...]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Word n-gram ids of all texts, one (ids, count per text) block per n."""
    words = [_WORD.findall(t.lower()) for t in texts]
    counts = np.array([len(w) for w in words], dtype=np.int64)
    h = np.fromiter(
        (zlib.crc32(w.encode("utf-8", "surrogatepass")) for ws in words for w in ws),
        dtype=np.uint64,
        count=int(counts.sum()),
    )
    starts = np.cumsum(counts) - counts
    blocks = []
    for n in ns:
        m = np.maximum(counts - n + 1, 0)
        pos = _runs(starts, m)  # start (in h) of every n-gram that lies inside one text
        g = np.full(len(pos), 7919 * n, dtype=np.uint64)
        for j in range(n):
            g = g * np.uint64(0x100000001B3) + h[pos + j]
        blocks.append((_buckets(g ^ (g >> np.uint64(29)), buckets), m))
    return blocks


def _char_blocks(
    texts: list[str], buckets: int, ns: tuple[int, ...]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Character n-gram ids of all texts, one (ids, count per text) block per n: the texts are
    hashed as one code-point array and n-grams that would cross into the next text dropped."""
    strings = [_padded(t) for t in texts]
    lengths = np.array([len(s) for s in strings], dtype=np.int64)
    starts = np.cumsum(lengths) - lengths
    c = _codes("".join(strings))
    blocks = []
    for n in ns:
        counts = np.maximum(lengths - n + 1, 0)
        if counts.sum() == 0:
            blocks.append((np.zeros(0, dtype=np.int64), counts))
            continue
        blocks.append((_buckets(_ngram_hashes(c, n)[_runs(starts, counts)], buckets), counts))
    return blocks


def word_ngrams_batch(texts: list[str], buckets: int, ns: tuple[int, ...]) -> list[np.ndarray]:
    """``[word_ngrams(t, buckets, ns) for t in texts]`` with one numpy pass over all words."""
    if not texts:
        return []
    return _per_text(_word_blocks(texts, buckets, ns), len(texts))


def gram_ids_batch(
    texts: list[str], buckets: int, char_ns: tuple[int, ...], word_ns: tuple[int, ...]
) -> list[np.ndarray]:
    """Character n-grams then word n-grams of each text, as ``char_ngrams`` and
    ``word_ngrams`` concatenated: one int64 array per text."""
    if not texts:
        return []
    if len(texts) <= 8:  # routing one prompt: the batched pass only pays off over many texts
        return [
            np.concatenate(
                [char_ngrams(t, buckets, char_ns)]
                + [ids for ids, _ in _word_blocks([t], buckets, word_ns)]
            )
            for t in texts
        ]
    blocks = _char_blocks(texts, buckets, char_ns)
    if word_ns:
        blocks += _word_blocks(texts, buckets, word_ns)
    return _per_text(blocks, len(texts))


class _SumBag(torch.autograd.Function):
    """``embedding_bag(mode="sum")`` with a scatter-add backward.

    The stock dense backward sorts every id to build the table's gradient; for a 131,072-row
    n-gram table that sort was the largest single cost of a training step. Adding each bag's
    gradient row straight into a zero gradient gives the same sums (up to float order) in about
    half the time.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        flat: torch.Tensor,
        offsets: torch.Tensor,
        lengths: torch.Tensor,
        table: torch.Tensor,
    ) -> torch.Tensor:
        ctx.save_for_backward(flat, lengths)
        ctx.rows = table.shape[0]
        return F.embedding_bag(flat, table.detach(), offsets, mode="sum")

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, None, None, torch.Tensor]:  # type: ignore[override]
        flat, lengths = ctx.saved_tensors
        rows = torch.repeat_interleave(grad, lengths, dim=0)
        table_grad = grad.new_zeros(ctx.rows, grad.shape[1]).index_add_(0, flat, rows)
        return None, None, None, table_grad


def _scaled_bag(flat: torch.Tensor, offsets: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Rows of ``table`` summed per packed text and divided by sqrt(its length): (n, C)."""
    lengths = torch.diff(offsets, append=torch.tensor([len(flat)]))
    # The weight 1/sqrt(length) is the same for every id of a text: scale the (n, C) sums
    # once rather than each of the many n-gram rows.
    scale = lengths.clamp(min=1).float().rsqrt().unsqueeze(1)
    if table.requires_grad and torch.is_grad_enabled():
        return _SumBag.apply(flat, offsets, lengths, table) * scale
    return F.embedding_bag(flat, table, offsets, mode="sum") * scale


class BagRouterModel(nn.Module):
    """Toolken head and reranker over WordLlama token embeddings.

    Parameters
    ----------
    backbone : WordLlamaBackbone
        Frozen codebook and tokenizer.
    docs : list of str
        Documentation text of each class (tools, then REJECT).
    config : dict
        pooling, k (stage-1 candidates), rank (bilinear rank), features (reranker features).
    """

    def __init__(
        self, backbone: WordLlamaBackbone, docs: list[str], config: dict[str, Any]
    ) -> None:
        super().__init__()
        self.config = {**BAG_DEFAULTS, **config}
        self.backbone = backbone
        self.docs = list(docs)
        self.n_classes = len(docs)
        self.reject = self.n_classes - 1
        self.k = int(self.config["k"])
        self.encoder = BagEncoder(
            backbone.torch_embedding(), self.config["pooling"], bool(self.config["token_weights"])
        )
        self.head = ToolkenHead(self.encoder.out_dim + backbone.dim, self.n_classes)
        # Learned token weights per class: a lexical prior over the tokenizer's vocabulary.
        self.lex = (
            nn.Embedding(backbone.vocab_size, self.n_classes) if self.config["lexical"] else None
        )
        if self.lex is not None:
            nn.init.zeros_(self.lex.weight)
        # Learned per-class weights of hashed character n-grams (0 buckets: off).
        n_buckets = int(self.config["char_ngrams"])
        self.chars = nn.Embedding(n_buckets, self.n_classes) if n_buckets > 0 else None
        if self.chars is not None:
            nn.init.zeros_(self.chars.weight)
        self.reranker = BagReranker(
            backbone.dim, self.n_classes, int(self.config["rank"]), tuple(self.config["features"])
        )
        self.bank = DocBank(backbone, docs)
        self.norms = torch.from_numpy(np.array(backbone.norms))
        self.register_buffer(
            "tok_table", torch.full((backbone.vocab_size, self.n_classes), float("nan"))
        )
        self._desc_cache: dict[str, torch.Tensor] = {}
        self._tok_table_ready = False
        # Query translation: the English concept words of the terms a request contains.
        self.glossary = (
            load_glossary(fold=bool(self.config["glossary_fold"]))
            if self.config["glossary"]
            else None
        )
        if self.glossary is not None:
            self.config["glossary_sha256"] = self.glossary.digest
        # The reranker learns from the words the negation cues rule out: a store is only
        # valid with the cues it was trained with.
        if any(f.startswith("neg_") for f in self.config["features"]):
            self.config["negation_sha256"] = RULES_SHA256

    # ------------------------------------------------------------- encoding
    def expanded(self, texts: list[str]) -> list[str]:
        """Texts with the glossary's English concept words appended (as they are when off)."""
        if self.glossary is None:
            return list(texts)
        # Most negated spans are empty: skip the matcher for them.
        return [self.glossary.expand(t) if t else t for t in texts]

    def token_lists(self, texts: list[str]) -> list[list[int]]:
        """Backbone token ids of each (glossary-expanded) text."""
        return self.backbone.token_ids(self.expanded(texts))

    @staticmethod
    def pack(lists: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Packed ids: flat (total_tokens,) and offsets (n,) where each text starts."""
        lengths = [len(x) for x in lists]
        offsets = torch.tensor([0, *np.cumsum(lengths)[:-1].tolist()], dtype=torch.long)
        flat = torch.tensor([t for x in lists for t in x], dtype=torch.long)
        return flat, offsets[: len(lists)]

    def tensors(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Packed token ids (flat, offsets) of texts."""
        return self.pack(self.token_lists(texts))

    def gram_lists(self, texts: list[str]) -> list[np.ndarray] | None:
        """Hashed character and word n-grams of each (glossary-expanded) text, or None when
        the layer is off."""
        return self._grams(self.expanded(texts))

    def encode_texts(self, texts: list[str]) -> tuple[list[list[int]], list[np.ndarray] | None]:
        """``(token_lists(texts), gram_lists(texts))``, expanding each text once."""
        texts = self.expanded(texts)
        return self.backbone.token_ids(texts), self._grams(texts)

    def _grams(self, texts: list[str]) -> list[np.ndarray] | None:
        if self.chars is None:
            return None
        ns = tuple(int(n) for n in self.config["char_ns"])
        buckets = self.chars.num_embeddings
        wns = tuple(int(n) for n in self.config["word_ns"])
        return gram_ids_batch(texts, buckets, ns, wns)

    @staticmethod
    def pack_arrays(ids: list[np.ndarray] | None) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Packed int64 id arrays (n-gram or token ids, one array per text): (flat, offsets),
        or None for None."""
        if ids is None:
            return None
        lengths = [len(g) for g in ids]
        offsets = torch.tensor([0, *np.cumsum(lengths)[:-1].tolist()], dtype=torch.long)
        flat = torch.from_numpy(np.concatenate(ids)) if ids else torch.zeros(0, dtype=torch.long)
        return flat, offsets[: len(ids)]

    def describe_features(self, descriptions: list[str]) -> torch.Tensor:
        """Plain-mean features (n, dim) of descriptions (fixed pooling, no trainable part), each
        distinct text encoded once and cached; "" -> zeros."""
        missing = [d for d in dict.fromkeys(descriptions) if d not in self._desc_cache]
        if missing:
            if len(self._desc_cache) > 512:
                self._desc_cache.clear()
            feats = self.backbone.mean_embed(missing)
            for d, row in zip(missing, feats, strict=True):
                self._desc_cache[d] = torch.from_numpy(row) if d.strip() else torch.zeros(len(row))
        return torch.stack([self._desc_cache[d] for d in descriptions])

    def stage1(
        self,
        flat: torch.Tensor,
        offsets: torch.Tensor,
        desc: torch.Tensor,
        grams: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Toolken logits (n, C) of packed prompts, description features (n, dim) and packed
        character n-grams (when the layer is on)."""
        h = torch.cat([self.encoder(flat, offsets), desc], dim=-1)
        return self.head(h) + self.lexical(flat, offsets, grams)

    def lexical(
        self,
        flat: torch.Tensor,
        offsets: torch.Tensor,
        grams: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor | float:
        """Learned per-class token (and hashed n-gram) weights summed over a prompt and divided
        by sqrt(count): (n, C)."""
        out: torch.Tensor | float = 0.0
        if self.lex is not None:
            out = _scaled_bag(flat, offsets, self.lex.weight)
        if self.chars is not None and grams is not None:
            out = out + _scaled_bag(*grams, self.chars.weight)
        return out

    def query(self, flat: torch.Tensor, offsets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unit plain-mean embedding q (n, dim) and token-level doc similarity (n, C)."""
        q = F.normalize(F.embedding_bag(flat, self.encoder.embedding, offsets, mode="mean"), dim=-1)
        table = self.token_table()
        w = self.norms[flat]
        tok = F.embedding_bag(flat, table, offsets, mode="sum", per_sample_weights=w)
        wsum = F.embedding_bag(flat, self.norms.unsqueeze(1), offsets, mode="sum")
        return q, tok / wsum.clamp(min=1e-6)

    def token_table(self) -> torch.Tensor:
        """(vocab, C): each token's best cosine to any token of each class doc.

        Computed once for the whole vocabulary (about 0.5 s) and saved in the store with the
        weights, so routing only looks rows up.
        """
        if self._tok_table_ready:  # skips a NaN check that costs more than the lookup
            return self.tok_table
        if torch.isnan(self.tok_table[0, 0]):
            unit_docs = self.bank.tok
            masks = [self.bank.tok_mask[c] for c in range(self.n_classes)]
            block = 4096
            with torch.no_grad():
                for i in range(0, self.tok_table.shape[0], block):
                    sims = F.normalize(self.encoder.embedding[i : i + block], dim=-1) @ unit_docs.T
                    self.tok_table[i : i + block] = torch.stack(
                        [sims[:, m].max(-1).values for m in masks], dim=1
                    )
        self._tok_table_ready = True
        return self.tok_table

    def pair_features(
        self,
        flat: torch.Tensor,
        offsets: torch.Tensor,
        logp1: torch.Tensor,
        negated: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Reranker features (n, C, 6) and the unit request embedding q (n, dim); ``negated``
        is the packed token ids of the words each request rules out (``negated_tensors``)."""
        q, tok = self.query(flat, offsets)
        q_neg, tok_neg = None, None  # zeros: what query() gives for texts without a negation
        if negated is not None and len(negated[0]):
            q_neg, tok_neg = self.query(*negated)
        return bag_pair_features(q, tok, logp1, self.bank, q_neg, tok_neg), q

    def negated_tensors(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Packed token ids (flat, offsets) of the negated words of each text ("" if none)."""
        negated = [split_negated(t)[1] for t in texts]
        if not any(negated):  # the common case: skip the tokenizer
            return torch.zeros(0, dtype=torch.long), torch.zeros(len(texts), dtype=torch.long)
        return self.tensors(negated)

    def stage2(self, feats: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """Reranker scores (n, C)."""
        return self.reranker(feats, q, self.bank.mean)

    # ------------------------------------------------------------ inference
    @torch.inference_mode()
    def scores(
        self, prompts: list[str], descriptions: list[str], rerank: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Stage-1 probabilities (n, C) and stage-2 probabilities (n, C) (NaN: not reranked)."""
        with torch_threads(1):
            return self._scores(prompts, descriptions, rerank)

    def _scores(
        self, prompts: list[str], descriptions: list[str], rerank: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        self.eval()
        p1s, p2s = [], []
        for i in range(0, len(prompts), _BATCH):
            tokens, gram_ids = self.encode_texts(prompts[i : i + _BATCH])
            flat, offsets = self.pack(tokens)
            grams = self.pack_arrays(gram_ids)
            desc = self.describe_features(descriptions[i : i + _BATCH])
            logits = self.stage1(flat, offsets, desc, grams)
            p1 = torch.softmax(logits, -1)
            p1s.append(p1)
            if rerank:
                negated = self.negated_tensors(prompts[i : i + _BATCH])
                feats, q = self.pair_features(flat, offsets, torch.log_softmax(logits, -1), negated)
                cand = candidate_mask(p1, self.k, self.reject)
                s2 = self.stage2(feats, q).masked_fill(~cand, float("-inf"))
                p2s.append(torch.softmax(s2, -1).masked_fill(~cand, float("nan")))
        p1 = torch.cat(p1s).numpy() if p1s else np.zeros((0, self.n_classes))
        return p1, (torch.cat(p2s).numpy() if rerank and p2s else None)

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone().contiguous() for k, v in self.state_dict().items()}

    def load_trainable(self, state: dict[str, torch.Tensor]) -> None:
        self.load_state_dict(state, strict=True)
        self._tok_table_ready = False  # the state may hold a table not computed yet


class HFRouterModel(nn.Module):
    """Toolken head and cross-encoding reranker on a frozen HF causal LM.

    Stage 1 reads the hidden state at the end of ``CONTEXT_TEMPLATE``; its toolken logits are
    concatenated with the vocabulary logits (ToolkenGPT). Stage 2 reads the hidden state at the
    end of ``CROSS_TEMPLATE`` (the candidate's doc in context), through the LoRA adapter if any.
    """

    def __init__(self, backbone: HFBackbone, docs: list[str], config: dict[str, Any]) -> None:
        super().__init__()
        self.config = {**HF_DEFAULTS, **config}
        self.backbone = backbone
        self.docs = list(docs)
        self.n_classes = len(docs)
        self.reject = self.n_classes - 1
        self.k = int(self.config["k"])
        self.head = ToolkenHead(backbone.dim, self.n_classes, bias=False)
        self.reranker = HFReranker(backbone.dim, self.n_classes)
        self.adapter: str | None = self.config.get("adapter") if self.config["lora"] else None
        self.lora_params: list[nn.Parameter] = []
        if self.adapter:
            self.lora_params = backbone.add_lora(self.adapter, rank=int(self.config["lora_rank"]))

    @staticmethod
    def context(prompt: str, description: str) -> str:
        return CONTEXT_TEMPLATE.format(description=description or "(none)", prompt=prompt)

    def features(self, prompts: list[str], descriptions: list[str]) -> torch.Tensor:
        """Stage-1 context states (n, hidden) (frozen backbone, no adapter)."""
        return self.backbone.hidden(
            [self.context(p, d) for p, d in zip(prompts, descriptions, strict=True)]
        )

    def pair_states(
        self, prompts: list[str], classes: list[int], grad: bool = False
    ) -> torch.Tensor:
        """Hidden states (m, hidden) at the end of doc + request for each (prompt, class) pair."""
        texts = [
            CROSS_TEMPLATE.format(doc=self.docs[c], prompt=p)
            for p, c in zip(prompts, classes, strict=True)
        ]
        return self.backbone.hidden(texts, adapter=self.adapter, grad=grad)

    def next_token_logits(self, prompts: list[str], descriptions: list[str]) -> torch.Tensor:
        """ToolkenGPT logits (n, vocab_size + n_classes) at the end of the context."""
        with torch.no_grad():
            h = self.features(prompts, descriptions)
            return self.head.concat_logits(h, self.backbone.lm_logits(h))

    @torch.no_grad()
    def scores(
        self, prompts: list[str], descriptions: list[str], rerank: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None]:
        self.eval()
        h = self.features(prompts, descriptions)
        logits = self.head(h)
        p1 = torch.softmax(logits, -1)
        if not rerank:
            return p1.numpy(), None
        cand = candidate_mask(p1, self.k, self.reject)
        pairs = [(b, c) for b in range(len(prompts)) for c in range(self.n_classes) if cand[b, c]]
        hs = self.pair_states([prompts[b] for b, _ in pairs], [c for _, c in pairs])
        full = torch.zeros(len(prompts), self.n_classes, hs.shape[-1])
        for (b, c), row in zip(pairs, hs, strict=True):
            full[b, c] = row
        s2 = self.reranker(full, torch.log_softmax(logits, -1)).masked_fill(~cand, float("-inf"))
        p2 = torch.softmax(s2, -1).masked_fill(~cand, float("nan"))
        return p1.numpy(), p2.numpy()

    def trainable_state(self) -> dict[str, torch.Tensor]:
        state = {k: v.detach().clone().contiguous() for k, v in self.state_dict().items()}
        if self.adapter:
            for name, t in self.backbone.lora_state(self.adapter).items():
                state[f"lora::{name}"] = t.contiguous()
        return state

    def load_trainable(self, state: dict[str, torch.Tensor]) -> None:
        own = {k: v for k, v in state.items() if not k.startswith("lora::")}
        self.load_state_dict(own, strict=True)
        if self.adapter:
            params = dict(self.backbone.model.named_parameters())
            lora = {k[6:]: v for k, v in state.items() if k.startswith("lora::")}
            expected = set(self.backbone.lora_state(self.adapter))
            if set(lora) != expected:
                raise KeyError("LoRA tensors do not match the adapter")
            with torch.no_grad():
                for name, t in lora.items():
                    params[name].copy_(t)


def build_model(backbone: Any, docs: list[str], config: dict[str, Any]) -> nn.Module:
    """The router model matching the backbone kind."""
    if isinstance(backbone, WordLlamaBackbone):
        return BagRouterModel(backbone, docs, config)
    return HFRouterModel(backbone, docs, config)
