"""Train the toolkens (stage 1) and the reranker (stage 2) on the routing corpus.

Only the toolken head and reranker parameters (and, for an HF backbone with ``lora=True``, a
LoRA adapter) train; the backbone stays frozen. The corpus is split once (held-out test 15%,
stratified, fixed seed, recorded by prompt hash; validation 15%; the rest trains). Training is
class-balanced, seeded and augmented (word dropout, typos, case, descriptions mixed in from a
pool of ``Series.describe()`` outputs, or none).

WordLlama: stage 1 trains K fold models on train + validation, each on the rows outside its
fold, and early-stops them on their summed out-of-fold loss (``schedule``); stage 1 is then
the refit on all rows for that epoch count, averaged with the fold models. Stage 2 learns from
the fold models' out-of-fold probabilities of the training rows, so it sees stage 1 as it
behaves on prompts it was not trained on, not as over-confident training-set fits, and
early-stops on those of the validation rows.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from chronoken.toolkens.corpus import (
    REJECT,
    REJECT_DOC,
    Example,
    description_pool,
    load_corpus,
    prompt_hash,
    sha256_text,
    split,
    tool_docs,
)

#: Training hyper-parameters of the WordLlama router, each chosen by 4-fold cross-validation on
#: train + validation (never on the held-out split or the benchmark sets). ``max_epochs`` bounds
#: the training time (early stopping picked 28 to 44 epochs on the 14,294-prompt corpus; capped
#: at 30, CV accuracy 0.9015 -> 0.9020, equal or better in every fold; on the 16,064-prompt
#: corpus with the word pairs, 25 instead of 30 left accuracy where it was (0.9200) and took
#: REJECT F1 0.9064 -> 0.9071, for a sixth less training; with corpus round 17, 20 instead of 25
#: cost 0.9237 -> 0.9226 and REJECT F1 0.9104 -> 0.9092, and keeps training under a minute).
#: Stage 2 steps through batches of 256 with twice the learning rates of its former batches of
#: 64: CV 0.9280 -> 0.9280, REJECT F1 0.9172 -> 0.9175, and about 1.3 s less training. On the
#: 18,660-prompt corpus, 10 noisy copies of each prompt instead of 12: 0.9270 -> 0.9277, REJECT
#: F1 0.9164 -> 0.9168 (lower in 1 of 4 folds), and about 2 s less encoding. On the
#: 23,029-prompt corpus, 19 epochs at most instead of 20: 0.9301 -> 0.9304, REJECT F1
#: 0.9171 -> 0.9178, for a twentieth less stage-1 training. ``min_epochs``: the fold models'
#: held-out loss is first computed after epoch 10 (early stopping chose 16 to 20 epochs in all
#: 73 CV folds of this model run on the 21,081- to 24,330-prompt corpora); it saves 9 of the
#: scorings of each fold model, about 2 s, and gave the same store byte for byte (checked on the
#: 23,029-prompt corpus). On the 24,979-prompt corpus with the larger n-gram table (3- and
#: 5-grams in 262,144 buckets), at most 18 epochs and 9 noisy copies instead of 19 and 10 pay
#: for that table within the 60 s target: 0.9328 -> 0.9324, REJECT F1 0.9199 -> 0.9195, where
#: going back to 131,072 buckets for the same time gave 0.9308 (0.9174); each change alone,
#: 0.9327 / 0.9198 (18 epochs) and 0.9327 / 0.9194 (9 copies). On the 27,273-prompt corpus
#: (rounds 41 to 45, 8% more prompts), at most 17 epochs keep training under a minute with some
#: margin: 0.93817 -> 0.93752, REJECT F1 0.92615 -> 0.92555.
BAG_TRAIN: dict[str, Any] = {
    "max_epochs": 17,
    "min_epochs": 10,
    "patience": 5,
    "batch": 512,
    "lr": 2.8e-2,
    "weight_decay": 1e-3,
    "dropout": 0.4,
    "p_description": 0.6,
    "folds": 3,
    "rerank_epochs": 60,
    "rerank_batch": 256,
    "rerank_lr": 2e-4,
    "rerank_weight_decay": 1e-2,
    "aug_variants": 2,
    "lex_lr": 2.8e-2,
    "lex_weight_decay": 1e-2,
    "alpha_lr": 1e-2,
    "doc_examples": True,
    "average_folds": True,
    "noisy_copies": 9,
    "threads": 2,
}
HF_TRAIN: dict[str, Any] = {
    "max_epochs": 40,
    "patience": 6,
    "batch": 16,
    "lr": 5e-3,
    "weight_decay": 1e-3,
    "dropout": 0.1,
    "folds": 3,
    "rerank_epochs": 20,
    "lora_epochs": 2,
    "rerank_lr": 1e-2,
    "lora_lr": 5e-4,
    "rerank_max_prompts": 600,
    "validation_max": 200,
}


# ----------------------------------------------------------------- augmentation
_KEYS = "qwertyuiopasdfghjklzxcvbnm"


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(len(word) - 1)
    op = rng.randrange(4)
    if op == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if op == 1:
        return word[:i] + word[i + 1 :]
    if op == 2:
        return word[:i] + word[i] + word[i:]
    return word[:i] + rng.choice(_KEYS) + word[i + 1 :]


def augment(text: str, rng: random.Random) -> str:
    """A noisy copy of a prompt: word dropout, typos, case and end-punctuation changes."""
    words = text.split()
    out = []
    for w in words:
        r = rng.random()
        if r < 0.08 and len(words) > 3:
            continue
        if r < 0.14 and len(w) > 3:
            w = _typo(w, rng)
        out.append(w)
    t = " ".join(out) or text
    r = rng.random()
    if r < 0.25:
        t = t.lower()
    elif r < 0.28:
        t = t.upper()
    if rng.random() < 0.2:
        t = t.rstrip("?.! ")
    return t or text


def _pick_descriptions(n: int, pool: list[str], p: float, rng: random.Random) -> list[str]:
    return [rng.choice(pool) if pool and rng.random() < p else "" for _ in range(n)]


def _class_weights(labels: np.ndarray, n_classes: int) -> Any:
    import torch

    counts = np.bincount(labels, minlength=n_classes).astype(float)
    w = len(labels) / (n_classes * np.maximum(counts, 1.0))
    return torch.tensor(w, dtype=torch.float32)


class EarlyStopping:
    """Keeps the trainable state with the lowest validation loss and says when to stop.

    ``update(loss, epoch)`` returns True once ``patience`` epochs passed without an improvement
    of at least 1e-4; ``restore()`` loads the best state back and returns its epoch.
    """

    def __init__(self, model: Any, patience: int, loss: float = float("inf")) -> None:
        self.model = model
        self.patience = patience
        self.loss = loss
        self.epoch = 0
        self.state = model.trainable_state()
        self.stale = 0

    def update(self, loss: float, epoch: int = 0) -> bool:
        if loss < self.loss - 1e-4:
            self.loss, self.epoch, self.stale = loss, epoch, 0
            self.state = self.model.trainable_state()
            return False
        self.stale += 1
        return self.stale >= self.patience

    def restore(self) -> int:
        self.model.load_trainable(self.state)
        return self.epoch


# ----------------------------------------------------------------- WordLlama
class NoisyCopies:
    """Token ids, character n-grams and the parameter-free pooled features of ``n`` copies of
    each prompt, computed once.

    Copy 0 is the prompt itself, the others are ``augment``-ed; an epoch draws one copy per
    prompt, so tokenising, hashing and max-pooling happen once per training run rather than
    every epoch. Stage 2 reads its first copies too (``_copy_logp``, ``_bag_stage2_data``), so
    no text is encoded twice.
    """

    def __init__(
        self, model: Any, prompts: list[str], n: int, rng: random.Random, threads: int = 1
    ) -> None:
        import torch

        texts = [list(prompts)] + [[augment(p, rng) for p in prompts] for _ in range(max(1, n) - 1)]
        # About a quarter of the noisy copies come out identical to another copy of the same
        # prompt (short prompts, no typo drawn): encode each distinct text once.
        unique = list(dict.fromkeys(t for copy in texts for t in copy))
        where = {t: k for k, t in enumerate(unique)}
        # Chunks of about 2,000 texts: the n-gram hashing of one chunk stays in cache (about
        # half the time per text of 10,000-text chunks).
        parts = max(2 * max(1, threads), -(-len(unique) // 2000))
        step = -(-len(unique) // parts)
        chunks = [unique[i : i + step] for i in range(0, len(unique), step)] or [[]]

        def encode(chunk: list[str]) -> tuple[list[np.ndarray], list[np.ndarray] | None, Any]:
            # Arrays, so that a batch packs with one np.concatenate rather than a Python loop.
            token_lists, grams = model.encode_texts(chunk)
            tokens = [np.asarray(t, dtype=np.int64) for t in token_lists]
            with torch.no_grad():
                fixed = model.encoder.fixed_parts(*model.pack_arrays(tokens))
            return tokens, grams, fixed

        # The chunks are independent: encode them in threads (tokenizer, numpy and torch
        # release the GIL), same result in the same order.
        done = _parallel(encode, chunks, {"threads": threads})
        tokens = [t for d in done for t in d[0]]
        grams = None if done[0][1] is None else [g for d in done for g in d[1]]
        fixed = torch.cat([d[2] for d in done])
        ids = [[where[t] for t in copy] for copy in texts]
        self.tokens: list[list[np.ndarray]] = [[tokens[k] for k in row] for row in ids]
        self.grams: list[list[np.ndarray] | None] = [
            None if grams is None else [grams[k] for k in row] for row in ids
        ]
        self.fixed = fixed[torch.tensor(ids, dtype=torch.long)]  # (copies, prompts, dim * parts)
        self.texts = texts

    def __len__(self) -> int:
        return len(self.tokens)

    def draw(
        self, rows: np.ndarray, rng: random.Random
    ) -> tuple[list[np.ndarray], list[np.ndarray] | None, Any]:
        """Token id arrays, n-gram arrays and fixed pooled features (len(rows), d) of one
        random copy of each prompt in ``rows``."""
        import torch

        pick = [rng.randrange(len(self)) for _ in rows]
        tokens = [self.tokens[v][r] for v, r in zip(pick, rows, strict=True)]
        fixed = self.fixed[torch.tensor(pick), torch.from_numpy(np.asarray(rows))]
        if self.grams[0] is None:
            return tokens, None, fixed
        grams = [self.grams[v][r] for v, r in zip(pick, rows, strict=True)]  # type: ignore[index]
        return tokens, grams, fixed


class Stage1Fit:
    """Encoder + toolken head of ``model`` trained on the prompts ``rows`` of ``copies``
    (``labels``: one per row), one epoch per call of ``epoch()``.

    Each epoch re-draws the noisy copy and the description paired with each prompt, from this
    fit's own generators: the weights after k epochs do not depend on how many epochs follow,
    nor on the thread that runs them.
    """

    def __init__(
        self,
        model: Any,
        copies: NoisyCopies,
        rows: np.ndarray,
        labels: np.ndarray,
        pool: list[str],
        cfg: dict[str, Any],
        seed: int,
    ) -> None:
        import torch

        self.model, self.copies, self.rows, self.pool, self.cfg = model, copies, rows, pool, cfg
        self.rng = random.Random(seed)
        self.gen = torch.Generator().manual_seed(seed)
        groups = [{"params": [*model.encoder.parameters(), *model.head.parameters()]}]
        lexical = [m for m in (model.lex, model.chars) if m is not None]
        if lexical:
            groups.append(
                {
                    "params": [p for m in lexical for p in m.parameters()],
                    "lr": cfg["lex_lr"],
                    "weight_decay": cfg["lex_weight_decay"],
                }
            )
        # The fused kernel updates the large per-token tables in one pass (several times faster).
        self.opt = torch.optim.AdamW(
            groups, lr=cfg["lr"], weight_decay=cfg["weight_decay"], fused=True
        )
        self.weights = _class_weights(labels, model.n_classes)
        self.y = torch.from_numpy(labels)
        self.pool_feats = model.describe_features(["", *pool])  # row 0: no description
        self.pooled_once = not any(True for _ in model.encoder.parameters())

    def epoch(self) -> None:
        import torch
        from torch.nn import functional as F

        model, cfg, rng, gen = self.model, self.cfg, self.rng, self.gen
        model.train()
        lists, gram_lists, fixed = self.copies.draw(self.rows, rng)
        didx = torch.tensor(
            [
                1 + rng.randrange(len(self.pool))
                if self.pool and rng.random() < cfg["p_description"]
                else 0
                for _ in lists
            ]
        )
        desc = self.pool_feats[didx]
        if self.pooled_once:
            with torch.no_grad():
                feats = torch.cat([model.encoder(*model.pack_arrays(lists), fixed), desc], dim=-1)
        order = torch.randperm(len(lists), generator=gen)
        for i in range(0, len(order), cfg["batch"]):
            b = order[i : i + cfg["batch"]]
            flat, offsets = model.pack_arrays([lists[j] for j in b.tolist()])
            if self.pooled_once:
                h = feats[b]
            else:
                h = torch.cat([model.encoder(flat, offsets, fixed[b]), desc[b]], dim=-1)
            # Dropout from this fit's own generator: fits run in parallel threads.
            keep = torch.rand(h.shape, generator=gen) >= cfg["dropout"]
            h = h * keep / (1.0 - cfg["dropout"])
            grams = model.pack_arrays(
                None if gram_lists is None else [gram_lists[j] for j in b.tolist()]
            )
            logits = model.head(h) + model.lexical(flat, offsets, grams)
            loss = F.cross_entropy(logits, self.y[b], weight=self.weights)
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()


class HeldOutLoss:
    """Summed stage-1 loss -log p(label) of a model over the prompts ``rows`` of ``copies``, as
    written (copy 0, already encoded) and read with the given descriptions."""

    def __init__(
        self,
        model: Any,
        copies: NoisyCopies,
        rows: np.ndarray,
        labels: np.ndarray,
        descs: list[str],
    ) -> None:
        import torch

        self.model = model
        self.flat, self.offsets = model.pack_arrays([copies.tokens[0][i] for i in rows])
        grams = copies.grams[0]
        self.grams = model.pack_arrays(None if grams is None else [grams[i] for i in rows])
        self.desc = model.describe_features(descs) if len(rows) else None
        self.y = torch.from_numpy(labels)

    def __call__(self) -> float:
        import torch

        if len(self.y) == 0:
            return 0.0
        self.model.eval()
        with torch.no_grad():
            logits = self.model.stage1(self.flat, self.offsets, self.desc, self.grams)
            logp = torch.log_softmax(logits, -1)
        return float(-logp[torch.arange(len(self.y)), self.y].sum())


def _copy_logp(
    model: Any, copies: NoisyCopies, copy: int, rows: np.ndarray, descs: list[str]
) -> np.ndarray:
    """Stage-1 log-probabilities (len(rows), C) of copy ``copy`` of the prompts ``rows`` (already
    encoded), read with the descriptions ``descs``: ``model.scores`` without re-encoding."""
    import torch

    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(rows), 512):
            b = rows[i : i + 512]
            flat, offsets = model.pack_arrays([copies.tokens[copy][r] for r in b])
            grams = copies.grams[copy]
            grams = model.pack_arrays(None if grams is None else [grams[r] for r in b])
            desc = model.describe_features(descs[i : i + 512])
            out.append(torch.log_softmax(model.stage1(flat, offsets, desc, grams), -1))
    if not out:
        return np.zeros((0, model.n_classes))
    return np.maximum(torch.cat(out).double().numpy(), np.log(1e-9))


def _bag_stage2_data(
    model: Any, copies: NoisyCopies, copy: int, rows: np.ndarray, logp1: np.ndarray
) -> tuple[Any, Any, Any]:
    """Reranker features, request embeddings and candidate masks of copy ``copy`` of the
    prompts ``rows`` (already encoded), given their stage-1 log-probabilities."""
    import torch

    from chronoken.toolkens.rerank import candidate_mask

    model.eval()
    with torch.no_grad():
        ids, mask = model.pack_arrays([copies.tokens[copy][r] for r in rows])
        lp = torch.from_numpy(logp1.astype(np.float32))
        texts = [copies.texts[copy][r] for r in rows]
        feats, q = model.pair_features(ids, mask, lp, model.negated_tensors(texts))
        cand = candidate_mask(lp.exp(), model.k, model.reject)
    return feats, q, cand


def _fit_bag_stage2(
    model: Any,
    train: tuple[Any, Any, Any, np.ndarray],
    val: tuple[Any, Any, Any, np.ndarray],
    cfg: dict[str, Any],
    seed: int,
    bar: Any = None,
) -> None:
    import torch
    from torch.nn import functional as F

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    feats, q, cand, y = train
    y_t = torch.from_numpy(y)
    cand = cand.clone()
    cand[torch.arange(len(y)), y_t] = True  # the right answer is always among the candidates
    vf, vq, vc, vy = val
    rr = model.reranker
    opt = torch.optim.AdamW(
        [
            {"params": [rr.alpha, rr.bias], "weight_decay": 0.0, "lr": cfg["alpha_lr"]},
            {"params": [rr.u, rr.v], "weight_decay": cfg["rerank_weight_decay"]},
        ],
        lr=cfg["rerank_lr"],
    )

    def val_loss() -> float:
        model.eval()
        with torch.no_grad():
            s = model.stage2(vf, vq).masked_fill(~vc, float("-inf"))
            lp = torch.log_softmax(s, -1)[torch.arange(len(vy)), torch.from_numpy(vy)]
            return float(-lp.clamp(min=-20).mean())

    # The untrained reranker equals stage 1: it is the state to beat.
    stopper = EarlyStopping(model, cfg["patience"], val_loss())
    for _ in range(cfg["rerank_epochs"]):
        model.train()
        order = torch.randperm(len(y), generator=gen)
        for i in range(0, len(order), cfg["rerank_batch"]):
            b = order[i : i + cfg["rerank_batch"]]
            qb = F.dropout(q[b], cfg["dropout"], training=True)
            s = model.stage2(feats[b], qb).masked_fill(~cand[b], float("-inf"))
            # Unweighted, like the validation loss: stage 2 sees the classes at their corpus
            # frequencies (class-balanced stage-2 training biased it against REJECT and it
            # never beat stage 1 on validation).
            loss = F.cross_entropy(s, y_t[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
        if bar is not None:
            bar.update(1)
        if stopper.update(val_loss()):
            break
    stopper.restore()


def _sub_model(model: Any) -> Any:
    """A fresh stage-1 model sharing ``model``'s backbone, docs, token table and caches."""
    from chronoken.toolkens.model import BagRouterModel

    sub = BagRouterModel(model.backbone, model.docs, model.config)
    model.token_table()
    sub.tok_table.copy_(model.tok_table)
    sub._desc_cache = dict(model._desc_cache)
    return sub


def _workers(cfg: dict[str, Any]) -> int:
    """Worker threads for parallel fits: ``cfg["threads"]``, at most one per core."""
    return max(1, min(int(cfg["threads"]), os.cpu_count() or 1))


def _parallel(fit: Any, jobs: list, cfg: dict[str, Any]) -> list:
    """``[fit(job) for job in jobs]`` in ``_workers(cfg)`` threads.

    Each fit is seeded by its own generators, so the result is the same as one after another;
    torch ops release the GIL, so the threads really run at once.
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=_workers(cfg)) as ex:
        return list(ex.map(fit, jobs))


def _stage1_fits(
    model: Any,
    copies: NoisyCopies,
    y: np.ndarray,
    descs: list[str],
    pool: list[str],
    cfg: dict[str, Any],
    seed: int,
    bar: Any,
) -> tuple[int, list, np.ndarray]:
    """Stage 1 on every row of ``copies`` (labels ``y``): K fold models whose summed
    out-of-fold loss (prompts as written, with ``descs``) early-stops them, and the refit of
    ``model`` on all rows for the epoch count they choose (``schedule``).

    Returns (epochs, the fold models at that epoch, the fold of each row).
    """
    from chronoken.toolkens.schedule import FoldFit, cross_validated_epochs

    folds = np.arange(len(y)) % cfg["folds"]
    np.random.default_rng(seed).shuffle(folds)
    subs = [_sub_model(model) for _ in range(cfg["folds"])]
    members = []
    for f, sub in enumerate(subs):
        inside, outside = np.where(folds == f)[0], np.where(folds != f)[0]
        fit = Stage1Fit(sub, copies, outside, y[outside], pool, cfg, seed + 100 + f)
        loss = HeldOutLoss(sub, copies, inside, y[inside], [descs[i] for i in inside])
        members.append(
            FoldFit(
                _counted(fit.epoch, loss, bar),
                sub.trainable_state,
                sub.load_trainable,
                _counted(fit.epoch, None, bar),
            )
        )
    refit = Stage1Fit(model, copies, np.arange(len(y)), y, pool, cfg, seed)
    best = cross_validated_epochs(
        members,
        _counted(refit.epoch, None, bar),
        len(y),
        cfg["patience"],
        cfg["max_epochs"],
        _workers(cfg),
        min_epochs=cfg["min_epochs"],
    )
    return best, subs, folds


def _counted(epoch: Callable[[], None], loss: Callable[[], float] | None, bar: Any) -> Any:
    """One epoch, then the bar ticks; returns ``loss()`` after it when given."""

    def step() -> Any:
        epoch()
        if bar is not None:
            bar.update(1)
        return loss() if loss is not None else None

    return step


def _train_bag(
    model: Any,
    tr: list[Example],
    va: list[Example],
    classes: list[str],
    pool: list[str],
    seed: int,
    epochs: int | None,
    progress: bool,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    import torch
    from tqdm.auto import tqdm

    from chronoken.eval.metrics import classification

    cfg = {**BAG_TRAIN, **(overrides or {})}
    if epochs is not None:
        cfg["max_epochs"] = int(epochs)
    index = {c: i for i, c in enumerate(classes)}
    prompts = [e.prompt for e in tr]
    labels = [index[e.label] for e in tr]
    if cfg["doc_examples"]:
        from chronoken.toolkens.rerank import positive, sentences

        for c, doc in enumerate(model.docs):
            for sent in sentences(positive(doc)):
                prompts.append(sent)
                labels.append(c)
    n_tr = len(prompts)
    vprompts = [e.prompt for e in va]
    vy = np.array([index[e.label] for e in va], dtype=np.int64)
    # Stage 1 trains on every row; the validation rows are kept apart for stage 2 only.
    rows = prompts + vprompts
    y = np.concatenate([np.array(labels, dtype=np.int64), vy])
    # The description each row is read with when it is held out (half of them none).
    hdesc = _pick_descriptions(len(rows), pool, 0.5, random.Random(seed + 7))
    total = cfg["max_epochs"] * (1 + cfg["folds"]) + cfg["rerank_epochs"]
    bar = tqdm(total=total, desc="training toolkens", disable=not progress, leave=False)

    torch.manual_seed(seed)
    copies = NoisyCopies(model, rows, cfg["noisy_copies"], random.Random(seed + 11), cfg["threads"])
    # Stage 2 reads each prompt as written and as the first ``aug_variants - 1`` noisy copies.
    variants = list(range(min(cfg["aug_variants"], len(copies))))
    arng = random.Random(seed + 3)
    vdescs = [_pick_descriptions(len(rows), pool, cfg["p_description"], arng) for _ in variants]
    oof = [np.zeros((len(rows), len(classes)), np.float64) for _ in variants]
    voof = np.zeros((len(vprompts), len(classes)), np.float64)

    best_epoch, subs, folds = _stage1_fits(model, copies, y, hdesc, pool, cfg, seed, bar)
    bar.update(bar.total - cfg["rerank_epochs"] - bar.n)

    def score_out_of_fold(f: int) -> None:
        # Each fold writes only its own rows, so the fold threads never touch the same cells.
        out_idx = np.where(folds == f)[0]
        for v, descs in zip(variants, vdescs, strict=True):
            oof[v][out_idx] = _copy_logp(subs[f], copies, v, out_idx, [descs[i] for i in out_idx])
        vo = out_idx[out_idx >= n_tr]
        voof[vo - n_tr] = _copy_logp(subs[f], copies, 0, vo, [hdesc[i] for i in vo])

    _parallel(score_out_of_fold, list(range(len(subs))), cfg)
    truth = [classes[i] for i in y]
    m = classification(truth, [classes[i] for i in oof[0].argmax(1)], classes)
    validation = {"toolken": {k: round(m[k], 4) for k in ("accuracy", "macro_f1", "reject_f1")}}
    members = [model.trainable_state()] + [sub.trainable_state() for sub in subs]
    if cfg["average_folds"]:
        # Stage 1 is (nearly) linear in its parameters, so the parameter average is close to
        # the average of the member models' logits: a free bagged ensemble.
        keys = [k for k in members[0] if not k.startswith("reranker.") and k != "tok_table"]
        avg = {k: torch.stack([s[k] for s in members]).mean(0) for k in keys}
        model.load_trainable({**model.trainable_state(), **avg})

    # Stage 2 trains on the training rows and early-stops on the validation rows, both
    # scored by fold models that never saw them.
    train_rows = np.arange(n_tr)
    parts = [_bag_stage2_data(model, copies, v, train_rows, oof[v][:n_tr]) for v in variants]
    feats = torch.cat([p[0] for p in parts])
    q = torch.cat([p[1] for p in parts])
    cand = torch.cat([p[2] for p in parts])
    y2 = np.concatenate([y[:n_tr]] * len(variants))
    vf, vq, vc = _bag_stage2_data(model, copies, 0, np.arange(n_tr, len(rows)), voof)
    _fit_bag_stage2(model, (feats, q, cand, y2), (vf, vq, vc, vy), cfg, seed, bar)
    bar.close()
    return {"stage1_epochs": best_epoch, "train": cfg, "validation": validation}


# ----------------------------------------------------------------- HF backbone
def _fit_hf_stage1(
    model: Any,
    h: Any,
    lse: Any,
    y: np.ndarray,
    cfg: dict[str, Any],
    seed: int,
    epochs: int,
    val: tuple[Any, np.ndarray] | None = None,
) -> int:
    """Train the toolken head on cached context states h (n, hidden).

    The loss is ToolkenGPT's cross-entropy over [vocabulary logits, toolken logits]; the
    vocabulary part enters through its log-sum-exp ``lse`` (n,), which is exact.
    """
    import torch
    from torch.nn import functional as F

    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.head.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    y_t = torch.from_numpy(y)
    weights = torch.cat([torch.zeros(1), _class_weights(y, model.n_classes)])
    stopper = EarlyStopping(model, cfg["patience"])
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(y), generator=gen)
        for i in range(0, len(order), cfg["batch"]):
            b = order[i : i + cfg["batch"]]
            tool = model.head(F.dropout(h[b], cfg["dropout"], training=True))
            logits = torch.cat([lse[b].unsqueeze(1), tool], dim=1)
            loss = F.cross_entropy(logits, y_t[b] + 1, weight=weights)
            opt.zero_grad()
            loss.backward()
            opt.step()
        if val is None:
            continue
        vh, vy = val
        with torch.no_grad():
            lp = torch.log_softmax(model.head(vh), -1)[torch.arange(len(vy)), torch.from_numpy(vy)]
        if stopper.update(float(-lp.mean()), epoch):
            break
    return epochs if val is None else stopper.restore()


def _hf_pairs(model: Any, prompts: list[str], logp1: Any, y: np.ndarray | None) -> tuple[Any, list]:
    """Candidate mask (n, C) (top-k + REJECT, plus the answer when given) and its pairs."""
    import torch

    from chronoken.toolkens.rerank import candidate_mask

    cand = candidate_mask(logp1.exp(), model.k, model.reject)
    if y is not None:
        cand[torch.arange(len(y)), torch.from_numpy(y)] = True
    pairs = [(b, c) for b in range(len(prompts)) for c in range(model.n_classes) if cand[b, c]]
    return cand, pairs


def _hf_pair_tensor(model: Any, prompts: list[str], pairs: list, n: int, grad: bool = False) -> Any:
    import torch

    hs = model.pair_states([prompts[b] for b, _ in pairs], [c for _, c in pairs], grad=grad)
    full = torch.zeros(n, model.n_classes, hs.shape[-1])
    idx_b = torch.tensor([b for b, _ in pairs])
    idx_c = torch.tensor([c for _, c in pairs])
    return full.index_put((idx_b, idx_c), hs)


def _train_hf(
    model: Any,
    tr: list[Example],
    va: list[Example],
    classes: list[str],
    pool: list[str],
    seed: int,
    epochs: int | None,
    progress: bool,
) -> dict[str, Any]:
    import torch
    from torch.nn import functional as F
    from tqdm.auto import tqdm

    cfg = dict(HF_TRAIN)
    if epochs is not None:
        cfg["max_epochs"] = int(epochs)
        cfg["rerank_epochs"] = min(cfg["rerank_epochs"], int(epochs))
        cfg["lora_epochs"] = min(cfg["lora_epochs"], int(epochs))
    index = {c: i for i, c in enumerate(classes)}
    prompts = [e.prompt for e in tr]
    y = np.array([index[e.label] for e in tr], dtype=np.int64)
    vprompts = [e.prompt for e in va]
    vy = np.array([index[e.label] for e in va], dtype=np.int64)
    rng = random.Random(seed)
    bar = tqdm(total=4, desc="training toolkens (HF)", disable=not progress, leave=False)

    # Stage 1 on cached states: every prompt without and with a sampled description.
    ctx_p = prompts + prompts
    ctx_d = [""] * len(prompts) + _pick_descriptions(len(prompts), pool, 1.0, rng)
    y1 = np.concatenate([y, y])
    with torch.no_grad():
        h = model.features(ctx_p, ctx_d)
        lse = torch.logsumexp(model.backbone.lm_logits(h), dim=-1)
        vdesc = _pick_descriptions(len(vprompts), pool, 0.5, rng)
        vh = model.features(vprompts, vdesc)
    bar.update(1)
    torch.manual_seed(seed)
    best_epoch = _fit_hf_stage1(model, h, lse, y1, cfg, seed, cfg["max_epochs"], (vh, vy))
    bar.update(1)

    # Out-of-fold stage-1 log-probabilities of the plain prompts.
    n = len(prompts)
    folds = np.arange(n) % cfg["folds"]
    np.random.default_rng(seed).shuffle(folds)
    oof = torch.zeros(n, model.n_classes)
    head_state = {k: v.clone() for k, v in model.head.state_dict().items()}
    for f in range(cfg["folds"]):
        torch.manual_seed(seed + 100 + f)
        torch.nn.init.zeros_(model.head.weight)
        inside = np.concatenate([folds != f, folds != f])
        _fit_hf_stage1(
            model, h[inside], lse[inside], y1[inside], cfg, seed + 100 + f, max(best_epoch, 1)
        )
        with torch.no_grad():
            out = np.where(folds == f)[0]
            oof[out] = torch.log_softmax(model.head(h[out]), -1)
    model.head.load_state_dict(head_state)
    with torch.no_grad():
        vlogp = torch.log_softmax(model.head(vh), -1)
    bar.update(1)

    # Stage 2: the doc of each candidate in context (one LM pass per prompt and candidate,
    # so at most rerank_max_prompts training prompts and validation_max of validation).
    rs = np.random.default_rng(seed)
    keep = np.arange(n)
    if n > cfg["rerank_max_prompts"]:
        keep = np.sort(rs.choice(n, cfg["rerank_max_prompts"], replace=False))
    vkeep = np.arange(len(vprompts))
    if len(vkeep) > cfg["validation_max"]:
        vkeep = np.sort(rs.choice(len(vkeep), cfg["validation_max"], replace=False))
    prompts, oof, y, n = [prompts[i] for i in keep], oof[torch.from_numpy(keep)], y[keep], len(keep)
    vprompts, vlogp, vy = [vprompts[i] for i in vkeep], vlogp[torch.from_numpy(vkeep)], vy[vkeep]
    cand, pairs = _hf_pairs(model, prompts, oof, y)
    vcand, vpairs = _hf_pairs(model, vprompts, vlogp, None)
    rr = model.reranker
    params = [rr.v, rr.alpha, rr.bias]
    y_t, vy_t = torch.from_numpy(y), torch.from_numpy(vy)
    weights = _class_weights(y, model.n_classes)
    gen = torch.Generator().manual_seed(seed + 1)
    if not model.adapter:
        with torch.no_grad():
            ph = _hf_pair_tensor(model, prompts, pairs, n)
            vph = _hf_pair_tensor(model, vprompts, vpairs, len(vprompts))
        opt = torch.optim.AdamW(params, lr=cfg["rerank_lr"], weight_decay=cfg["weight_decay"])
        stopper = EarlyStopping(model, cfg["patience"])
        for _ in range(cfg["rerank_epochs"]):
            model.train()
            order = torch.randperm(n, generator=gen)
            for i in range(0, n, cfg["batch"]):
                b = order[i : i + cfg["batch"]]
                s = model.reranker(F.dropout(ph[b], cfg["dropout"], training=True), oof[b])
                s = s.masked_fill(~cand[b], float("-inf"))
                loss = F.cross_entropy(s, y_t[b], weight=weights)
                opt.zero_grad()
                loss.backward()
                opt.step()
            with torch.no_grad():
                s = model.reranker(vph, vlogp).masked_fill(~vcand, float("-inf"))
                vloss = float(
                    -torch.log_softmax(s, -1)[torch.arange(len(vy)), vy_t].clamp(min=-20).mean()
                )
            if stopper.update(vloss):
                break
        stopper.restore()
    else:
        opt = torch.optim.AdamW(
            [
                {"params": params, "lr": cfg["rerank_lr"]},
                {"params": model.lora_params, "lr": cfg["lora_lr"]},
            ],
            weight_decay=cfg["weight_decay"],
        )
        by_prompt: dict[int, list] = {}
        for b, c in pairs:
            by_prompt.setdefault(b, []).append((b, c))
        for _ in range(cfg["lora_epochs"]):
            order = torch.randperm(n, generator=gen).tolist()
            for i in range(0, n, 4):
                chunk = order[i : i + 4]
                local = [(j, c) for j, b in enumerate(chunk) for _, c in by_prompt[b]]
                sub_p = [prompts[b] for b in chunk]
                ph = _hf_pair_tensor(model, sub_p, local, len(chunk), grad=True)
                bidx = torch.tensor(chunk)
                s = model.reranker(ph, oof[bidx]).masked_fill(~cand[bidx], float("-inf"))
                loss = F.cross_entropy(s, y_t[bidx], weight=weights)
                opt.zero_grad()
                loss.backward()
                opt.step()
    bar.update(1)
    bar.close()
    return {"stage1_epochs": best_epoch, "train": cfg}


# ----------------------------------------------------------------- entry point
def _quick_metrics(
    model: Any, examples: list[Example], classes: list[str], descs: list[str]
) -> dict:
    from chronoken.eval.metrics import classification

    if not examples:
        return {}
    p1, p2 = model.scores([e.prompt for e in examples], descs, rerank=True)
    truth = [e.label for e in examples]
    out = {}
    for name, p in (("toolken", p1), ("toolken+", np.nan_to_num(p2, nan=-1.0))):
        pred = [classes[i] for i in p.argmax(1)]
        m = classification(truth, pred, classes)
        out[name] = {k: round(m[k], 4) for k in ("accuracy", "macro_f1", "reject_f1")}
    return out


def train(
    backbone: str | None = None,
    out: str | Path | None = None,
    *,
    lora: bool = False,
    seed: int = 0,
    epochs: int | None = None,
    progress: bool = True,
    tools: dict[str, str] | None = None,
    corpus: str | Path | None = None,
) -> dict[str, Any]:
    """Train the toolkens and reranker for ``backbone`` and write the store to ``out``.

    Parameters
    ----------
    backbone : str, optional
        ``"wordllama"`` (default) or ``"hf:<id or path>"``.
    out : path, optional
        Store folder; default: the shipped store for WordLlama, ``~/.cache/chronoken/toolkens/...``
        for other backbones.
    lora : bool
        Also train a LoRA adapter for the reranking pass (HF backbones only).
    seed : int
        Seeds the split, initialisation, augmentation and batch order (same seed -> same weights).
    epochs : int, optional
        Maximum stage-1 epochs (early stopping still applies).
    progress : bool
        Show a tqdm progress bar.
    tools, corpus :
        Route over other tools (name -> doc) with prompts from another folder (tests).

    Returns
    -------
    dict
        Validation and held-out metrics of toolken and toolken+, split sizes, similarity
        threshold, training time and the store path.
    """
    import torch

    from chronoken.errors import RouterError
    from chronoken.eval.baselines import SimilarityScorer
    from chronoken.toolkens.backbone import load_backbone, torch_threads
    from chronoken.toolkens.model import build_model
    from chronoken.toolkens.store import default_store, save_store

    t0 = time.perf_counter()
    bb = load_backbone(backbone)
    if lora and bb.kind != "hf":
        raise RouterError(
            "LoRA trains an adapter inside an HF backbone; use --backbone hf:<model>."
        )
    docs = tool_docs(tools)
    classes = [*docs, REJECT]
    doc_texts = [docs[c] for c in docs] + [REJECT_DOC]
    examples, corpus_hash = load_corpus(classes, corpus)
    tr, va, te = split(examples, seed)
    empty = [c for c in classes if not any(e.label == c for e in tr)]
    if empty:
        raise RouterError(f"no training prompts left for {empty} after the split; add prompts.")
    pool = description_pool()
    folder = Path(out) if out is not None else default_store(bb.id)
    config: dict[str, Any] = {}
    if bb.kind == "hf":
        config = {"lora": lora, "adapter": "chronoken_" + sha256_text(str(folder.resolve()))[:8]}
    torch.manual_seed(seed)
    model = build_model(bb, doc_texts, config)
    if bb.kind == "wordllama":
        with torch_threads(1):
            fit = _train_bag(model, tr, va, classes, pool, seed, epochs, progress)
    else:
        fit = _train_hf(model, tr, va, classes, pool, seed, epochs, progress)
    seconds = time.perf_counter() - t0

    vdesc = _pick_descriptions(len(va), pool, 0.5, random.Random(seed + 7))
    sim = SimilarityScorer(bb, doc_texts, threshold=0.0)
    threshold = sim.fit_threshold([e.prompt for e in va], [classes.index(e.label) for e in va])
    metrics = {
        "backbone": bb.id,
        "n_train": len(tr),
        "n_validation": len(va),
        "n_heldout": len(te),
        # WordLlama: out-of-fold stage-1 scores of the train + validation prompts (stage 1 is
        # refit on all of them). HF: the validation prompts, which it does not train on.
        "validation": fit.get("validation") or _quick_metrics(model, va, classes, vdesc),
        "heldout": _quick_metrics(model, te, classes, [""] * len(te)),
        "similarity_threshold": threshold,
        "train_seconds": round(seconds, 2),
        "stage1_epochs": fit["stage1_epochs"],
    }
    metadata = {
        "backbone": bb.id,
        "classes": classes,
        "tools": [{"name": n, "doc_sha256": sha256_text(d)} for n, d in docs.items()],
        "reject_doc_sha256": sha256_text(REJECT_DOC),
        "corpus_sha256": corpus_hash,
        "split": {
            "seed": seed,
            "test_fraction": 0.15,
            "validation_fraction": 0.15,
            "heldout_hashes": sorted(prompt_hash(e.prompt) for e in te),
        },
        "config": {k: v for k, v in model.config.items()},
        "train": fit["train"],
        "metrics": metrics,
        "similarity_threshold": threshold,
    }
    save_store(folder, model.trainable_state(), metadata)
    from chronoken.toolkens.router import clear_cache

    clear_cache()
    metrics["store"] = str(folder)
    return metrics
