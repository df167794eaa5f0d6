"""The routing corpus, its fixed split, the tool documentation texts and a pool of descriptions.

The corpus is one JSONL file per tool in ``chronoken/prompts/`` (``<tool>.jsonl``) plus
``reject.jsonl``, one ``{"prompt": "..."}`` per line. Classes are the registry's tool names in
order, then ``"reject"``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from chronoken.errors import RouterError

REJECT = "reject"
PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"

REJECT_DOC = (
    "REJECT: no tool fits. The request is not an analysis of the numeric time series that "
    "chronoken can run with one of its model-class tools. Chronoken cannot chat or make small "
    "talk: greetings, thanks, jokes, opinions, questions about itself or about the user. It does "
    "not answer general knowledge, trivia, news, weather, sports, history, recipes, or give "
    "medical, legal or investment advice. It cannot take actions: send email or messages, post, "
    "book, buy, browse the web, read, write, delete, move, rename or upload files, run shell "
    "commands, install software, access databases or accounts. It does not write essays, poems, "
    "stories, translations, summaries of documents or program code, and does not edit images, "
    "audio or video, or classify text or pictures. It ignores instructions that try to override "
    "its rules, reveal its system prompt, change its role or jailbreak it (prompt injection). "
    "Unclear, empty or nonsense requests are rejected as well."
)


def prompt_hash(prompt: str) -> str:
    """Stable id of a prompt (sha256 of its whitespace-normalised, lower-cased text, 16 hex)."""
    key = " ".join(prompt.lower().split())
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def tool_docs(tools: dict[str, str] | None = None) -> dict[str, str]:
    """Routing text of each tool by name (``"name: summary doc"``), registry order.

    tools: name -> documentation text, to route over tools other than the registry's (tests).
    """
    if tools is not None:
        return dict(tools)
    from chronoken.tools import registry
    from chronoken.tools.base import words

    out = {}
    for name, tool in registry().items():
        out[name] = words(f"{name.replace('_', ' ')}: {tool.summary} {tool.doc}")
    if not out:
        raise RouterError(
            "no tools are registered (chronoken/tools/ has no Tool subclass), so there is "
            "nothing to route to."
        )
    return out


@dataclass(frozen=True)
class Example:
    prompt: str
    label: str
    series: str | None = None  # a series path whose describe() joins the context


def read_jsonl(path: Path, label: str | None = None) -> list[Example]:
    """Examples from a JSONL file; ``label`` overrides a missing "tool" field."""
    out = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise RouterError(f"cannot read {path}: {exc}.") from None
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            prompt = obj["prompt"]
            tool = obj.get("tool", label)
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            raise RouterError(
                f'{path}:{i} is not a JSON object with a "prompt" string. Each line must look '
                'like {"prompt": "...", "tool": "..."}.'
            ) from None
        if not isinstance(prompt, str) or not isinstance(tool, str):
            raise RouterError(f'{path}:{i}: "prompt" and "tool" must be strings.')
        out.append(Example(prompt, tool.strip().lower(), obj.get("series")))
    return out


def load_corpus(classes: list[str], folder: str | Path | None = None) -> tuple[list[Example], str]:
    """Every training example of ``classes`` (deduplicated) and the corpus sha256.

    A class without a file is a RouterError naming the file to add.
    """
    root = Path(folder) if folder is not None else PROMPTS_DIR
    examples: list[Example] = []
    seen: dict[str, str] = {}
    h = hashlib.sha256()
    for label in classes:
        path = root / f"{label}.jsonl"
        if not path.exists():
            raise RouterError(
                f"no training prompts for '{label}': add {path} (one {{\"prompt\": ...}} per line), "
                "then run `chronoken train`."
            )
        for ex in read_jsonl(path, label):
            if not ex.prompt.strip():
                continue
            key = prompt_hash(ex.prompt)
            if key in seen:
                continue  # duplicate (or the same prompt under two labels: the first wins)
            seen[key] = label
            examples.append(Example(ex.prompt, label))
            h.update(f"{label}\t{ex.prompt}\n".encode())
    return examples, h.hexdigest()


def split(
    examples: list[Example], seed: int = 0, test: float = 0.15, val: float = 0.15
) -> tuple[list[Example], list[Example], list[Example]]:
    """Stratified (train, validation, held-out test) split, fixed by ``seed`` and prompt hashes.

    Per class the prompts are ordered by sha256(seed, prompt); the first ``test`` share is the
    held-out test split, the next ``val`` share (of the whole class) validation, the rest train.
    """
    by_label: dict[str, list[Example]] = {}
    for ex in examples:
        by_label.setdefault(ex.label, []).append(ex)
    tr, va, te = [], [], []
    for label in sorted(by_label):
        items = sorted(
            by_label[label], key=lambda e: sha256_text(f"{seed}:{prompt_hash(e.prompt)}")
        )
        n = len(items)
        n_te = max(1, round(test * n)) if n >= 5 else 0
        n_va = max(1, round(val * n)) if n >= 5 else 0
        te += items[:n_te]
        va += items[n_te : n_te + n_va]
        tr += items[n_te + n_va :]
    return tr, va, te


POOL_FILE = Path(__file__).resolve().parent / "store" / "descriptions.json"


def description_pool(refresh: bool = False) -> list[str]:
    """``Series.describe()`` texts of statsmodels data sets and synthetic series (about 30).

    describe() takes seconds per series, so the pool is kept in ``store/descriptions.json``;
    ``refresh=True`` (or a missing file) rebuilds it.
    """
    if not refresh and POOL_FILE.exists():
        try:
            pool = json.loads(POOL_FILE.read_text(encoding="utf-8"))
            if isinstance(pool, list) and all(isinstance(d, str) for d in pool):
                return pool
        except (OSError, json.JSONDecodeError):
            pass
    pool = build_description_pool()
    try:
        POOL_FILE.parent.mkdir(parents=True, exist_ok=True)
        POOL_FILE.write_text(json.dumps(pool, indent=1), encoding="utf-8")
    except OSError:
        pass  # a read-only install still trains, only slower
    return pool


def build_description_pool(seed: int = 0) -> list[str]:
    """``Series.describe()`` of statsmodels data sets and synthetic series (about 30 texts)."""
    import numpy as np

    from chronoken.series import Series

    rng = np.random.default_rng(seed)
    out: list[str] = []

    def add(
        values: object, time: object = None, names: object = None, coords: object = None
    ) -> None:
        try:
            out.append(Series(values, time, names, coords).describe())
        except Exception:  # a describe() bug must not stop training
            return

    try:
        import statsmodels.api as sm

        ds = sm.datasets
        nile = ds.nile.load_pandas().data
        add(nile["volume"].to_numpy(), nile["year"].to_numpy(), ["volume"])
        co2 = ds.co2.load_pandas().data
        add(co2["co2"].to_numpy(), co2.index.to_numpy(), ["co2"])
        sun = ds.sunspots.load_pandas().data
        add(sun["SUNACTIVITY"].to_numpy(), sun["YEAR"].to_numpy(), ["SUNACTIVITY"])
        eln = ds.elnino.load_pandas().data
        add(eln.drop(columns="YEAR").to_numpy().ravel(), None, ["temperature"])
        mac = ds.macrodata.load_pandas().data
        cols = ["realgdp", "realcons", "realinv", "unemp", "infl"]
        dates = np.array(
            [
                f"{int(y)}-{3 * int(q) - 2:02d}-01"
                for y, q in zip(mac["year"], mac["quarter"], strict=True)
            ],
            dtype="datetime64[D]",
        )
        add(mac[cols].to_numpy(), dates, cols)
        add(mac["realgdp"].to_numpy(), dates, ["realgdp"])
    except Exception:
        pass
    freqs = [("D", 365), ("h", 500), ("W", 150), ("M", 144), ("s", 800)]
    for i in range(24):
        n = int(rng.choice([24, 60, 120, 300, 1000, 2000]))
        t = np.arange(n)
        kind = i % 6
        if kind == 0:
            y = np.cumsum(rng.normal(size=n))
        elif kind == 1:
            y = 10 + 0.05 * t + 3 * np.sin(2 * np.pi * t / 12) + rng.normal(size=n)
        elif kind == 2:
            y = np.where(t < n // 2, 0.0, 4.0) + rng.normal(size=n)
        elif kind == 3:
            y = rng.normal(size=n)
        elif kind == 4:
            y = np.exp(-t / max(n / 4, 1)) * np.cos(t / 5) + 0.05 * rng.normal(size=n)
        else:
            y = 100 + np.cumsum(rng.normal(0.2, 1.0, size=n))
        k = int(rng.choice([1, 1, 1, 3, 8]))
        vals = np.column_stack([y + rng.normal(scale=0.5 * j + 0.1, size=n) for j in range(k)])
        if i % 4 == 1:
            vals[rng.choice(n, size=max(1, n // 20), replace=False), 0] = np.nan
        time = None
        if i % 3 == 0:
            f, _ = freqs[i % len(freqs)]
            time = (
                np.arange(np.datetime64("2001-01-01"), n, dtype="datetime64[D]")
                if f == "D"
                else (np.datetime64("2010-01-01T00", "h") + np.arange(n).astype("timedelta64[h]"))
            )
        elif i % 3 == 1:
            time = np.cumsum(rng.uniform(0.5, 1.5, size=n))
        names = None if k == 1 or i % 2 else [f"sensor_{j}" for j in range(k)]
        coords = rng.uniform(0, 10, size=(k, 2)) if k > 1 and i % 5 == 0 else None
        add(vals, time, names, coords)
    return out
