"""The Hugging Face backbone path on a tiny Llama the test builds (no download, no hub).

Trains toolkens + reranker (and a LoRA adapter) for a few steps, routes, checks ToolkenGPT's
concatenated logits and that no base weight changed.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import pytest

pytest.importorskip("transformers")

import torch

from chronoken.errors import RouterError
from chronoken.toolkens import router as router_mod
from chronoken.toolkens.backbone import HFBackbone, load_backbone
from chronoken.toolkens.router import load_router
from chronoken.toolkens.train import train

TOOLS = {
    "forecaster": "forecaster: predict future values, forecast the next months.",
    "breaks": "breaks: find change points where the level of a series shifts.",
}
PROMPTS = {
    "forecaster": [
        "forecast the next {n} months",
        "predict {x} ahead",
        "what will {x} be next year",
    ],
    "breaks": ["find change points in {x}", "when did {x} shift", "detect breaks in {x}"],
    "reject": ["tell me a joke about {x}", "send an email", "hello there {n}"],
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hf-corpus")
    rng = random.Random(0)
    for label, templates in PROMPTS.items():
        with open(folder / f"{label}.jsonl", "w") as f:
            for i in range(14):
                p = rng.choice(templates).format(n=i, x=rng.choice(["sales", "traffic", "rain"]))
                f.write(json.dumps({"prompt": f"{p} {i}"}) + "\n")
    return folder


def _snapshot(bb: HFBackbone) -> list[torch.Tensor]:
    return [t.detach().clone() for t in bb.frozen_tensors()]


def _unchanged(bb: HFBackbone, snap: list[torch.Tensor]) -> bool:
    return all(torch.equal(a, b) for a, b in zip(bb.frozen_tensors(), snap, strict=True))


def test_tiny_hf_train_route_and_concat_logits(
    tiny_llama: Path, corpus: Path, tmp_path: Path
) -> None:
    spec = f"hf:{tiny_llama}"
    bb = load_backbone(spec)
    assert isinstance(bb, HFBackbone) and bb.id.startswith("hf:")
    assert all(not t.requires_grad for t in bb.frozen_tensors())
    snap = _snapshot(bb)
    metrics = train(
        backbone=spec, out=tmp_path, tools=TOOLS, corpus=corpus, epochs=2, progress=False
    )
    assert _unchanged(bb, snap)
    assert metrics["backbone"] == bb.id
    r = load_router(backbone=spec, store=tmp_path, tools=TOOLS)
    d = r.route("forecast the next 3 months", "Length 24 observations, 1 channel (y).")
    assert d.tool in (*TOOLS, None) and d.backbone == bb.id
    assert {c.tool for c in d.candidates} == {*TOOLS, "reject"}
    logits = r.next_token_logits("forecast the next 3 months")
    assert tuple(logits.shape) == (1, bb.vocab_size + len(TOOLS) + 1)
    assert tuple(logits.shape) == (1, 32000 + 3)
    toolken_part = r.scorer.head(bb.hidden([r.scorer.context("forecast the next 3 months", "")]))
    assert torch.allclose(logits[:, -3:], toolken_part, atol=1e-5)
    # a store trained for the tiny model is refused for WordLlama
    with pytest.raises(RouterError, match="trained for backbone"):
        load_router(store=tmp_path, tools=TOOLS)


def test_tiny_hf_lora_keeps_base_weights(tiny_llama: Path, corpus: Path, tmp_path: Path) -> None:
    spec = f"hf:{tiny_llama}"
    bb = load_backbone(spec)
    snap = _snapshot(bb)
    train(
        backbone=spec, out=tmp_path, tools=TOOLS, corpus=corpus, epochs=1, lora=True, progress=False
    )
    assert _unchanged(bb, snap)
    from safetensors.torch import load_file

    tensors = load_file(str(tmp_path / "toolkens.safetensors"))
    lora = {k: v for k, v in tensors.items() if k.startswith("lora::")}
    assert lora and any("lora_B" in k for k in lora)
    # lora_B starts at zero, so a non-zero one shows the adapter trained
    assert any(v.abs().sum() > 0 for k, v in lora.items() if "lora_B" in k)
    router_mod.clear_cache()
    d = load_router(backbone=spec, store=tmp_path, tools=TOOLS).route("when did sales shift")
    assert sum(c.rerank_score is not None for c in d.candidates) == len(TOOLS) + 1
    # generation runs without the adapter and returns text
    assert isinstance(bb.generate("hello", max_new_tokens=3), str)


def test_missing_hf_model_is_a_clear_error_without_download(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    with pytest.raises(RouterError, match="cannot load the Hugging Face model"):
        load_backbone("hf:chronoken-test/definitely-not-a-model")
    with pytest.raises(RouterError, match="not a Hugging Face model folder"):
        load_backbone(f"hf:{tmp_path}")
    assert time.perf_counter() - t0 < 30
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
