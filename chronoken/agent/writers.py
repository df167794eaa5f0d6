"""Report writers: the deterministic template (default), an OpenAI-compatible endpoint, or the
HF backbone. A language-model writer turns the template and the Result JSON into prose; every
number in that prose is checked against the numbers of the Result and the template, and on any
mismatch or error the template is used with a notice saying why.

Choose one with ``writer=``: None or "template"; "openai" (base URL, model and key from
OPENAI_BASE_URL / OPENAI_MODEL / OPENAI_API_KEY) or a dict ``{"kind": "openai", "base_url": ...,
"model": ..., "api_key": ..., "strict": bool}`` or an :class:`OpenAIWriter`; "hf" (the HF
backbone's ``generate()``) or :class:`HFWriter`. A *strict* writer raises WriterError instead of
falling back (the CLI's ``--writer-strict``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any, Protocol

from chronoken.errors import WriterError

SYSTEM = (
    "You are a careful statistician writing for a non-specialist. Rewrite the analysis report "
    "you are given as a short, clear narrative in markdown: the answer to the question first, "
    "then the evidence and the caveats. Use only numbers that appear in the report or the result "
    "JSON, written the same way or rounded; never compute or invent a number."
)

_NUM = re.compile(
    r"(?<![\w.])(?P<sign>-)?(?P<int>\d+(?:,\d{3})*)(?:\.(?P<frac>\d+))?(?:[eE](?P<exp>[-+]?\d+))?"
    r"(?P<pct>\s*%)?|(?<![\w.\d])(?P<sign2>-)?\.(?P<frac2>\d+)"
)


@dataclass
class Written:
    """A writer's output: the report text, who wrote it, and a notice when it fell back."""

    report: str
    writer: str
    notice: str | None = None


class Writer(Protocol):
    name: str

    def write(self, template: str, payload: dict[str, Any]) -> Written: ...


# ------------------------------------------------------------------ number check
@dataclass(frozen=True)
class Number:
    text: str
    value: float
    tol: float
    percent: bool


def numbers_in(text: str) -> list[Number]:
    """Every number written in ``text``, with the rounding tolerance its digits imply."""
    out = []
    for m in _NUM.finditer(text):
        if m.group("frac2") is not None:
            frac = m.group("frac2")
            value = float("." + frac) * (-1 if m.group("sign2") else 1)
            out.append(Number(m.group(0), value, 0.5 * 10.0 ** -len(frac), False))
            continue
        frac = m.group("frac") or ""
        exp = int(m.group("exp") or 0)
        value = float(m.group("int").replace(",", "") + ("." + frac if frac else "")) * 10.0**exp
        if m.group("sign"):
            value = -value
        tol = 0.5 * 10.0 ** (exp - len(frac))
        out.append(Number(m.group(0).strip(), value, tol, bool(m.group("pct"))))
    return out


def values_in(obj: Any) -> list[float]:
    """Every number in a JSON-like object (numbers, and numbers written inside strings)."""
    out: list[float] = []
    if isinstance(obj, bool) or obj is None:
        return out
    if isinstance(obj, (int, float)):
        out.append(float(obj))
    elif isinstance(obj, str):
        out += [n.value for n in numbers_in(obj)]
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out += values_in(k) + values_in(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            out += values_in(v)
    return out


def unsupported_numbers(prose: str, allowed: list[float]) -> list[str]:
    """Numbers in ``prose`` that match no allowed value within the rounding their digits imply
    (a percentage may also be an allowed fraction x 100)."""
    import numpy as np

    pool = np.asarray([v for v in allowed if np.isfinite(v)] or [np.nan])
    pool = np.concatenate([pool, np.abs(pool), 100.0 * pool])
    bad = []
    for n in numbers_in(prose):
        tol = n.tol + 1e-9 * abs(n.value)
        if not np.any(np.abs(pool - n.value) <= tol):
            bad.append(n.text)
    return bad


def check_prose(prose: str, template: str, payload: dict[str, Any]) -> list[str]:
    """Numbers of ``prose`` found neither in the template nor in the payload (Result etc.)."""
    allowed = [n.value for n in numbers_in(template)] + values_in(payload)
    return unsupported_numbers(prose, allowed)


def _checked(prose: str | None, template: str, payload: dict[str, Any], who: str) -> Written:
    if not prose or not prose.strip():
        return Written(
            template,
            "template",
            f"the {who} writer returned no text; the template report is shown.",
        )
    bad = check_prose(prose, template, payload)
    if bad:
        shown = ", ".join(bad[:5]) + (" ..." if len(bad) > 5 else "")
        return Written(
            template,
            "template",
            f"the {who} writer's text had {len(bad)} number(s) not found in the result ({shown}); "
            "the template report is shown instead.",
        )
    n = len(numbers_in(prose))
    footer = f"\n\n---\n*Narrative by the {who} writer; all {n} number(s) in it were checked against the result.*\n"
    return Written(prose.strip() + footer, who)


def _fallback(template: str, who: str, why: str, strict: bool) -> Written:
    if strict:
        raise WriterError(why)
    return Written(template, "template", why + " The template report is shown instead.")


# ------------------------------------------------------------------ writers
class TemplateWriter:
    """The deterministic markdown report, unchanged."""

    name = "template"

    def write(self, template: str, payload: dict[str, Any]) -> Written:
        return Written(template, self.name)


class OpenAIWriter:
    """Prose from any OpenAI-compatible chat-completions endpoint (the ``openai`` client).

    base_url, model, api_key default to OPENAI_BASE_URL, OPENAI_MODEL (else "gpt-4o-mini") and
    OPENAI_API_KEY (else a placeholder, which local servers accept). strict: raise WriterError on
    failure instead of falling back to the template. timeout in seconds.
    """

    name = "openai"

    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        *,
        strict: bool = False,
        timeout: float = 60.0,
    ) -> None:
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        self.model = model or os.environ.get("OPENAI_MODEL") or "gpt-4o-mini"
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY") or "not-needed"
        self.strict = strict
        self.timeout = timeout

    def messages(self, template: str, payload: dict[str, Any]) -> list[dict[str, str]]:
        body = json.dumps(payload, default=str)
        return [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Result JSON:\n{body}\n\nReport:\n{template}"},
        ]

    def write(self, template: str, payload: dict[str, Any]) -> Written:
        where = self.base_url or "https://api.openai.com/v1 (the default; set OPENAI_BASE_URL)"
        try:
            import openai
        except ImportError:
            return _fallback(
                template, self.name, "the openai writer needs `pip install openai`.", self.strict
            )
        try:
            client = openai.OpenAI(
                base_url=self.base_url, api_key=self.api_key, timeout=self.timeout, max_retries=0
            )
            reply = client.chat.completions.create(
                model=self.model, messages=self.messages(template, payload), temperature=0
            )
            prose = reply.choices[0].message.content
        except openai.APIConnectionError:
            return _fallback(
                template,
                self.name,
                f"the writer endpoint {where} is unreachable; start the server or set "
                "OPENAI_BASE_URL, or use the default template writer.",
                self.strict,
            )
        except (openai.OpenAIError, AttributeError, IndexError, TypeError) as exc:
            return _fallback(
                template, self.name, f"the writer endpoint {where} failed ({exc}).", self.strict
            )
        written = _checked(prose, template, payload, f"openai ({self.model})")
        if written.notice and self.strict:
            raise WriterError(
                written.notice.replace("the template report is shown instead.", "")
                + "Drop --writer-strict to fall back to the template."
            )
        return written


def can_generate(backbone: Any) -> bool:
    """True when ``backbone`` really generates text (an HF causal LM), not an embedding codebook
    whose ``generate`` only raises."""
    gen = getattr(backbone, "generate", None)
    if not callable(gen):
        return False
    from chronoken.toolkens.backbone import Backbone

    return not isinstance(backbone, Backbone) or type(backbone).generate is not Backbone.generate


class HFWriter:
    """Prose from a generative (HF) backbone's ``generate(text, max_new_tokens)``.

    max_chars: how much of the template goes into the prompt (small models have short contexts).
    """

    name = "hf"

    def __init__(
        self,
        backbone: Any,
        *,
        strict: bool = False,
        max_chars: int = 2000,
        max_new_tokens: int = 256,
    ) -> None:
        if not can_generate(backbone):
            raise WriterError(
                "the hf writer needs a generative backbone (an HF causal LM); pass --backbone "
                "with a Hugging Face model path, or use the template writer."
            )
        self.backbone = backbone
        self.strict = strict
        self.max_chars = max_chars
        self.max_new_tokens = max_new_tokens

    def prompt(self, template: str) -> str:
        """The text given to ``generate``: instructions, the (clipped) template, a cue."""
        return SYSTEM + "\n\nReport:\n" + template[: self.max_chars] + "\n\nNarrative:\n"

    def write(self, template: str, payload: dict[str, Any]) -> Written:
        try:
            prose = self.backbone.generate(
                self.prompt(template), max_new_tokens=self.max_new_tokens
            )
        except Exception as exc:  # any model failure falls back to the template
            return _fallback(template, self.name, f"the hf writer failed ({exc}).", self.strict)
        written = _checked(prose, template, payload, "hf")
        if written.notice and self.strict:
            raise WriterError(written.notice)
        return written


def get_writer(writer: Any = None, *, backbone: Any = None, strict: bool = False) -> Writer:
    """Resolve ``writer`` (None, a name, a config dict, or a writer object) to a Writer.

    backbone: the loaded backbone, needed by the "hf" writer.
    """
    if writer is None or writer == "template":
        return TemplateWriter()
    if hasattr(writer, "write"):
        return writer
    if isinstance(writer, dict):
        cfg = dict(writer)
        kind = cfg.pop("kind", "openai")
        cfg.setdefault("strict", strict)
        if kind == "openai":
            return OpenAIWriter(**cfg)
        if kind == "hf":
            return HFWriter(cfg.pop("backbone", backbone), **cfg)
        raise WriterError(f"unknown writer kind '{kind}'. Use 'template', 'openai' or 'hf'.")
    if isinstance(writer, str):
        key = writer.strip().lower()
        if key == "openai":
            return OpenAIWriter(strict=strict)
        if key == "hf":
            return HFWriter(backbone, strict=strict)
    raise WriterError(f"unknown writer {writer!r}. Use 'template', 'openai' or 'hf'.")
