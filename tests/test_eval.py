"""Evaluation harness: the JSON object, the four routers on the same data, bad eval files."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from chronoken.errors import RouterError
from chronoken.eval.harness import KEYS, evaluate, format_table
from chronoken.eval.metrics import classification
from chronoken.toolkens.train import train

TOOLS = {
    "forecaster": "forecaster: predict future values of a series, forecast the next months.",
    "breaks": "breaks: find change points where the level of a series shifts, structural breaks.",
}
TEMPLATES = {
    "forecaster": [
        "forecast the next {n} {u}",
        "predict {x} for the coming {u}",
        "what will {x} be in {n} {u}",
    ],
    "breaks": ["find the change points in {x}", "when did {x} shift", "detect breaks in {x}"],
    "reject": ["tell me a joke about {x}", "send an email to my boss", "book a flight to {u}"],
}


def _fill(t: str, rng: random.Random) -> str:
    return t.format(
        n=rng.choice([3, 6, 12]),
        u=rng.choice(["months", "weeks", "Lima"]),
        x=rng.choice(["sales", "traffic", "rain", "demand"]),
    )


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("eval")
    rng = random.Random(0)
    corpus = root / "corpus"
    corpus.mkdir()
    for label, templates in TEMPLATES.items():
        seen: set[str] = set()
        while len(seen) < 30:
            seen.add(
                _fill(rng.choice(templates), rng) + rng.choice(["", " please", " now", " asap"])
            )
        (corpus / f"{label}.jsonl").write_text(
            "".join(json.dumps({"prompt": p}) + "\n" for p in sorted(seen))
        )
    store = root / "store"
    train(out=store, tools=TOOLS, corpus=corpus, epochs=20, progress=False)
    series = root / "s.csv"
    series.write_text("t,y\n" + "".join(f"{i},{np.sin(i / 3):.4f}\n" for i in range(40)))
    lines = [
        {"prompt": "forecast the next 6 weeks", "tool": "forecaster", "series": "s.csv"},
        {"prompt": "when did demand shift", "tool": "breaks"},
        {"prompt": "tell me a joke about rain", "tool": "reject", "series": str(series)},
        {"prompt": "predict sales for the coming months", "tool": "forecaster"},
    ]
    file = root / "eval.jsonl"
    file.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return {"corpus": corpus, "store": store, "file": file, "n": len(lines)}


@pytest.mark.parametrize("router", ["toolken+", "toolken", "similarity", "keyword"])
def test_eval_json_has_exactly_the_keys(setup: dict, router: str) -> None:
    m = evaluate(setup["file"], router=router, store=setup["store"], tools=TOOLS)
    assert tuple(m) == KEYS
    assert m["n"] == setup["n"]
    assert set(m["per_tool"]) == set(TOOLS)
    assert set(m["confusion"]) == {*TOOLS, "reject"}
    assert sum(sum(row.values()) for row in m["confusion"].values()) == setup["n"]
    assert 0.0 <= m["accuracy"] <= 1.0 and 0.0 <= m["topk_recall"] <= 1.0
    assert m["latency_ms_p95"] >= m["latency_ms_p50"] > 0
    json.dumps(m)  # serialisable as one JSON object
    table = format_table(m)
    assert "accuracy" in table and "forecaster" in table


def test_eval_without_file_uses_the_recorded_heldout_split(setup: dict) -> None:
    meta = json.loads((setup["store"] / "metadata.json").read_text())
    m = evaluate(router="toolken+", store=setup["store"], tools=TOOLS, corpus=setup["corpus"])
    assert m["n"] == len(meta["split"]["heldout_hashes"])
    assert m["accuracy"] >= 0.9  # templated corpus: its held-out part is easy


def test_eval_rejects_unknown_labels_and_missing_file(setup: dict, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "hi", "tool": "astrology"}) + "\n")
    with pytest.raises(RouterError, match="astrology"):
        evaluate(bad, store=setup["store"], tools=TOOLS)
    with pytest.raises(RouterError, match="not found"):
        evaluate(tmp_path / "nope.jsonl", store=setup["store"], tools=TOOLS)
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{oops\n")
    with pytest.raises(RouterError, match=r"broken\.jsonl:1"):
        evaluate(broken, store=setup["store"], tools=TOOLS)


def test_classification_metrics_by_hand() -> None:
    truth = ["a", "a", "b", "reject", "reject"]
    pred = ["a", "b", "b", "reject", "a"]
    m = classification(truth, pred, ["a", "b", "reject"])
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["per_tool"]["a"]["precision"] == pytest.approx(1 / 2)
    assert m["per_tool"]["a"]["recall"] == pytest.approx(1 / 2)
    assert m["per_tool"]["b"]["precision"] == pytest.approx(1 / 2)
    assert m["reject_precision"] == pytest.approx(1.0)
    assert m["reject_recall"] == pytest.approx(1 / 2)
    f1 = [0.5, 2 * 0.5 * 1 / 1.5, 2 * 1 * 0.5 / 1.5]
    assert m["macro_f1"] == pytest.approx(np.mean(f1))
    assert m["confusion"]["reject"]["a"] == 1
