"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny randomly initialised Llama saved with save_pretrained (no download): WordLlama's
    tokenizer file is a ready LLaMA tokenizer."""
    transformers = pytest.importorskip("transformers")
    import torch
    import wordllama

    tok_file = Path(wordllama.__file__).parent / "tokenizers" / "l2_supercat_tokenizer_config.json"
    tok = transformers.PreTrainedTokenizerFast(
        tokenizer_file=str(tok_file), bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
    cfg = transformers.LlamaConfig(
        vocab_size=len(tok),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=2048,
    )
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny-llama")
    transformers.LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out
