"""The toolken store: trained router weights (safetensors) plus JSON metadata, in one folder.

``toolkens.safetensors`` holds the toolken head, reranker (and LoRA adapter) tensors;
``metadata.json`` the backbone id, the tool names with the sha256 of their documentation, the
corpus hash, the split (seed and held-out prompt hashes), the training configuration and the
validation and held-out metrics. A store trained for another backbone or tool set is refused
with a RouterError that says how to rebuild it (``chronoken train``).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from chronoken.errors import RouterError

WEIGHTS = "toolkens.safetensors"
METADATA = "metadata.json"
FORMAT_VERSION = 1
SHIPPED = Path(__file__).resolve().parent / "store"


def default_store(backbone_id: str) -> Path:
    """Where the store of a backbone lives: the shipped folder for WordLlama, else
    ``$CHRONOKEN_HOME/toolkens/<backbone>`` (default ``~/.cache/chronoken``)."""
    if backbone_id.startswith("wordllama"):
        return SHIPPED
    home = Path(os.environ.get("CHRONOKEN_HOME", Path.home() / ".cache" / "chronoken"))
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", backbone_id).strip("_")[-120:]
    return home / "toolkens" / slug


def _rebuild_hint(backbone_id: str | None) -> str:
    flag = (
        ""
        if not backbone_id or backbone_id.startswith("wordllama")
        else f" --backbone {backbone_id}"
    )
    return f"Rebuild it with `chronoken train{flag}`."


def save_store(folder: str | Path, tensors: dict[str, Any], metadata: dict[str, Any]) -> Path:
    """Write ``tensors`` (name -> torch tensor) and ``metadata`` into ``folder``."""
    from safetensors.torch import save_file

    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    meta = {"format_version": FORMAT_VERSION, **metadata}
    tmp = path / (WEIGHTS + ".tmp")
    save_file({k: v.contiguous() for k, v in sorted(tensors.items())}, str(tmp))
    tmp.replace(path / WEIGHTS)
    (path / WEIGHTS).chmod(0o644)  # safetensors writes 0600; the shipped store must be readable
    (path / METADATA).write_text(
        json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    return path


def read_metadata(folder: str | Path, backbone_id: str | None = None) -> dict[str, Any]:
    """The metadata of a store; missing or corrupt -> RouterError naming the file."""
    path = Path(folder) / METADATA
    if not path.exists():
        raise RouterError(
            f"no toolken store at {Path(folder)} ({METADATA} missing). {_rebuild_hint(backbone_id)}"
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
            raise ValueError("unknown format")
        for key in ("backbone", "classes", "tools", "config"):
            if key not in meta:
                raise ValueError(f"missing '{key}'")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RouterError(
            f"the toolken store file {path} is corrupt or from another version ({exc}). "
            f"{_rebuild_hint(backbone_id)}"
        ) from None
    return meta


def load_store(
    folder: str | Path, backbone_id: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(tensors, metadata) of a store; missing or corrupt files -> RouterError."""
    from safetensors.torch import load_file

    meta = read_metadata(folder, backbone_id)
    path = Path(folder) / WEIGHTS
    if not path.exists():
        raise RouterError(
            f"the toolken store {Path(folder)} has no {WEIGHTS}. {_rebuild_hint(backbone_id)}"
        )
    try:
        tensors = load_file(str(path))
    except Exception as exc:  # safetensors raises several types on a damaged header
        raise RouterError(
            f"the toolken store file {path} is corrupt ({type(exc).__name__}: {exc}). "
            f"{_rebuild_hint(backbone_id)}"
        ) from None
    return tensors, meta


def check_compatible(
    meta: dict[str, Any], backbone_id: str, docs: dict[str, str], folder: str | Path
) -> None:
    """Refuse a store trained for another backbone or another tool set (names or docs)."""
    from chronoken.toolkens.corpus import sha256_text

    where = Path(folder) / METADATA
    if meta["backbone"] != backbone_id:
        raise RouterError(
            f"the toolken store {where} was trained for backbone '{meta['backbone']}', not "
            f"'{backbone_id}'. {_rebuild_hint(backbone_id)}"
        )
    stored = {t["name"]: t["doc_sha256"] for t in meta["tools"]}
    now = {name: sha256_text(doc) for name, doc in docs.items()}
    if list(stored) != list(now):
        raise RouterError(
            f"the toolken store {where} was trained for the tools {list(stored)}, but the "
            f"installed tools are {list(now)}. {_rebuild_hint(backbone_id)}"
        )
    config = meta["config"]
    if backbone_id.startswith("wordllama") and config.get("glossary", True):
        from chronoken.toolkens.glossary import GLOSSARY_DIR, glossary_digest

        if config.get("glossary_sha256") != glossary_digest():
            raise RouterError(
                f"the glossary in {GLOSSARY_DIR} changed since the toolken store {where} was "
                f"trained (or the store predates it). {_rebuild_hint(backbone_id)}"
            )
    if backbone_id.startswith("wordllama") and any(
        f.startswith("neg_") for f in config.get("features", [])
    ):
        from chronoken.toolkens.negation import RULES_SHA256

        if config.get("negation_sha256") != RULES_SHA256:
            raise RouterError(
                "the negation cues in chronoken/toolkens/negation.py changed since the toolken "
                f"store {where} was trained (or the store predates them). "
                f"{_rebuild_hint(backbone_id)}"
            )
    changed = [n for n in now if stored[n] != now[n]]
    if changed:
        raise RouterError(
            f"the documentation of {', '.join(changed)} changed since the toolken store {where} "
            f"was trained. {_rebuild_hint(backbone_id)}"
        )
