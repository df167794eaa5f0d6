"""Frozen backbones: WordLlama token embeddings (default, offline) or any Hugging Face causal LM.

No backbone weight ever changes: every tensor is loaded with ``requires_grad=False`` and only the
toolken head and reranker (and optional LoRA adapters, kept outside the base weights) train.

- ``"wordllama"`` (default): the LLaMA-2 token-embedding codebook distilled to 256 dimensions
  that ships inside the ``wordllama`` wheel, read straight from the package files with
  safetensors and tokenizers (nothing touches the network).
- ``"hf:<hub id or local path>"``: a causal LM loaded with ``local_files_only=True``; the
  context feature is the final hidden state at the end of the context, and the LM's vocabulary
  logits are available for the ToolkenGPT concatenation.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from chronoken.errors import RouterError

if TYPE_CHECKING:
    import torch

DEFAULT_BACKBONE = "wordllama"
#: Tokens kept from a very long text: the first and last half of this many.
MAX_TOKENS = 512

_CACHE: dict[str, Backbone] = {}
_LOCK = threading.Lock()


_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean_text(text: str) -> str:
    """Text safe for any tokenizer: lone surrogates replaced, control characters blanked."""
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8", "replace")
    return _CONTROLS.sub(" ", text)


@contextmanager
def torch_threads(n: int = 1) -> Iterator[None]:
    """Run torch with ``n`` intra-op threads, then restore the setting.

    The router's tensors are tiny; on a busy 2-core machine torch's thread pool makes each
    small op 10-30x slower than one thread does.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _clip(ids: list[int], limit: int = MAX_TOKENS) -> list[int]:
    if len(ids) <= limit:
        return ids
    half = limit // 2
    return ids[:half] + ids[-(limit - half) :]


class Backbone:
    """A frozen text encoder. Subclasses set ``id`` and ``kind``."""

    id: str
    kind: str

    def generate(self, text: str, max_new_tokens: int = 256) -> str:
        """Greedy continuation of ``text`` (HF backbones only)."""
        raise RouterError(
            f"text generation needs an HF backbone; '{self.id}' is an embedding codebook. "
            "Use --backbone hf:<model id or path>."
        )

    def frozen_tensors(self) -> list[Any]:
        """Every base weight tensor (for checks that training leaves them unchanged)."""
        raise NotImplementedError


class WordLlamaBackbone(Backbone):
    """WordLlama: token embeddings of shape (vocab_size, 256), bag-of-tokens pooling.

    Parameters
    ----------
    weights : Path
        ``l2_supercat_256.safetensors`` (tensor ``embedding.weight``, float16).
    tokenizer : Path
        ``l2_supercat_tokenizer_config.json`` (a LLaMA-2 tokenizer for ``tokenizers``).
    """

    kind = "wordllama"

    def __init__(self, weights: Path, tokenizer: Path) -> None:
        from safetensors import safe_open
        from tokenizers import Tokenizer

        try:
            with safe_open(str(weights), "np") as f:
                emb = f.get_tensor("embedding.weight")
            self.tokenizer = Tokenizer.from_file(str(tokenizer))
        except Exception as exc:  # corrupt or missing package files
            raise RouterError(
                f"cannot read the WordLlama weights ({weights}) or tokenizer ({tokenizer}): {exc}. "
                "Reinstall the package: pip install --force-reinstall wordllama."
            ) from None
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.embedding = np.ascontiguousarray(emb.astype(np.float32))
        self.embedding.setflags(write=False)
        self.norms = np.linalg.norm(self.embedding, axis=1)
        self.norms.setflags(write=False)
        self.id = f"wordllama:{Path(weights).stem}"
        self._torch: Any = None

    @property
    def dim(self) -> int:
        return int(self.embedding.shape[1])

    @property
    def vocab_size(self) -> int:
        return int(self.embedding.shape[0])

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text (no special tokens), long texts clipped to their head and tail."""
        # The fast variant skips the character offsets, which nothing here reads (same ids,
        # about half the time).
        enc = self.tokenizer.encode_batch_fast(
            [clean_text(t) for t in texts], add_special_tokens=False
        )
        return [_clip(e.ids) for e in enc]

    def mean_embed(self, texts: list[str]) -> np.ndarray:
        """Plain mean of token embeddings, L2-normalised: array of shape (n, dim)."""
        rows = []
        for ids in self.token_ids(texts):
            v = self.embedding[ids].mean(axis=0) if ids else np.zeros(self.dim, np.float32)
            rows.append(v)
        m = np.stack(rows) if rows else np.zeros((0, self.dim), np.float32)
        return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-8)

    def torch_embedding(self) -> torch.Tensor:
        """The codebook as a frozen torch tensor of shape (vocab_size, dim) (shares memory)."""
        if self._torch is None:
            import torch

            self._torch = torch.from_numpy(np.array(self.embedding))
            self._torch.requires_grad_(False)
        return self._torch

    def frozen_tensors(self) -> list[Any]:
        return [self.embedding, self.torch_embedding()]


class HFBackbone(Backbone):
    """A frozen Hugging Face causal LM.

    ``hidden(texts)`` gives the final-layer hidden state at the last token, shape (n, hidden);
    ``lm_logits(h)`` the vocabulary logits of those states, shape (n, vocab_size).
    """

    kind = "hf"

    def __init__(self, ref: str) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(ref).expanduser()
        local = path.exists()
        if local and not (path / "config.json").exists():
            raise RouterError(
                f"'{ref}' is not a Hugging Face model folder (no config.json in it). "
                "Point hf: at a folder written by save_pretrained, or at a hub id."
            )
        source = str(path.resolve()) if local else ref
        allow_download = os.environ.get("CHRONOKEN_HF_DOWNLOAD") == "1"
        try:
            tok = AutoTokenizer.from_pretrained(source, local_files_only=not allow_download)
            model = AutoModelForCausalLM.from_pretrained(
                source, local_files_only=not allow_download, dtype=torch.float32
            )
        except Exception as exc:
            hint = (
                "Check the folder"
                if local
                else f"Download it first (huggingface-cli download {ref}) or pass a local path; "
                "chronoken never downloads at run time"
            )
            raise RouterError(
                f"cannot load the Hugging Face model '{ref}' ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}). {hint}."
            ) from None
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
        tok.padding_side = "right"
        model.eval()
        model.requires_grad_(False)
        self.tokenizer = tok
        self.model = model
        self.id = f"hf:{source}"
        self.peft: Any = None  # a PeftModel once a LoRA adapter is attached
        self._base = list(model.parameters())

    @property
    def dim(self) -> int:
        return int(self.model.get_output_embeddings().weight.shape[1])

    @property
    def vocab_size(self) -> int:
        return int(self.model.get_output_embeddings().weight.shape[0])

    def hidden(
        self, texts: list[str], *, adapter: str | None = None, grad: bool = False, batch: int = 8
    ) -> torch.Tensor:
        """Final hidden state at the end of each text: tensor of shape (n, hidden).

        adapter: name of a LoRA adapter to use for this pass (None: the plain frozen model).
        """
        import torch

        outs = []
        ctx = torch.enable_grad() if grad else torch.no_grad()
        with ctx, self._adapter(adapter):
            for i in range(0, len(texts), batch):
                chunk = [clean_text(t) or " " for t in texts[i : i + batch]]
                enc = self.tokenizer(
                    chunk, return_tensors="pt", padding=True, truncation=True, max_length=MAX_TOKENS
                )
                out = self.model.base_model(
                    input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]
                )
                last = enc["attention_mask"].sum(dim=1) - 1
                hs = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
                outs.append(hs[torch.arange(hs.shape[0]), last.clamp(min=0)])
        return torch.cat(outs) if outs else torch.zeros(0, self.dim)

    def lm_logits(self, h: torch.Tensor) -> torch.Tensor:
        """Vocabulary logits of hidden states ``h`` (n, hidden): shape (n, vocab_size)."""
        return self.model.get_output_embeddings()(h)

    def generate(self, text: str, max_new_tokens: int = 256) -> str:
        """Greedy continuation of ``text`` (the chat template is applied when the model has one)."""
        import torch

        prompt = clean_text(text)
        if getattr(self.tokenizer, "chat_template", None):
            prompt = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
            )
        enc = self.tokenizer(prompt, return_tensors="pt")
        with torch.no_grad(), self._adapter(None):
            out = self.model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        return self.tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)

    # ----------------------------------------------------------------- LoRA
    def add_lora(self, name: str, rank: int = 8, alpha: int = 16) -> list[Any]:
        """Attach a LoRA adapter called ``name`` (base weights stay frozen); its parameters."""
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError:
            raise RouterError("LoRA needs peft: pip install 'chronoken[hf]'.") from None
        cfg = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules="all-linear")
        if self.peft is None:
            self.peft = get_peft_model(self.model, cfg, adapter_name=name)
        elif name not in self.peft.peft_config:
            self.peft.add_adapter(name, cfg)
        for p in self._base:
            p.requires_grad_(False)
        return [p for n, p in self.model.named_parameters() if f".{name}." in n]

    def lora_state(self, name: str) -> dict[str, Any]:
        """The adapter's tensors by parameter name."""
        return {n: p.detach().clone() for n, p in self.model.named_parameters() if f".{name}." in n}

    def _adapter(self, name: str | None) -> Any:
        import contextlib

        if self.peft is None:
            return contextlib.nullcontext()
        if name is None:
            return self.peft.disable_adapter()
        self.peft.set_adapter(name)
        return contextlib.nullcontext()

    def frozen_tensors(self) -> list[Any]:
        return list(self._base)


def _wordllama_files() -> tuple[Path, Path]:
    try:
        import wordllama
    except ImportError:
        raise RouterError(
            "the default backbone needs the wordllama package: pip install wordllama."
        ) from None
    root = Path(wordllama.__file__).parent
    return (
        root / "weights" / "l2_supercat_256.safetensors",
        root / "tokenizers" / "l2_supercat_tokenizer_config.json",
    )


def canonical(spec: str | None) -> str:
    """The spec in one spelling: ``"wordllama"`` or ``"hf:<id or path>"``; unknown -> RouterError."""
    s = (spec or DEFAULT_BACKBONE).strip()
    if s.lower() in ("wordllama", "default") or s.lower().startswith("wordllama:"):
        return DEFAULT_BACKBONE
    if s.lower().startswith("hf:") and len(s) > 3:
        return "hf:" + s[3:].strip()
    raise RouterError(
        f"unknown backbone '{spec}'. Use 'wordllama' (default) or 'hf:<hub id or local path>', "
        "e.g. hf:Qwen/Qwen2.5-0.5B-Instruct."
    )


def load_backbone(spec: str | None = None) -> Backbone:
    """The backbone named by ``spec`` (None or "wordllama": the default), loaded once and cached."""
    key = canonical(spec)
    with _LOCK:
        if key not in _CACHE:
            if key == DEFAULT_BACKBONE:
                _CACHE[key] = WordLlamaBackbone(*_wordllama_files())
            else:
                _CACHE[key] = HFBackbone(key[3:])
        return _CACHE[key]
