"""Report writers: number checking, the OpenAI-compatible writer against a real local HTTP server,
and the HF writer on a tiny LLaMA model built here."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chronoken.agent.writers import (
    HFWriter,
    OpenAIWriter,
    TemplateWriter,
    check_prose,
    get_writer,
    numbers_in,
)
from chronoken.errors import WriterError

TEMPLATE = """# where does the flow change?

Selected model: **mean shift (1 change point)**.

| segment | start | end | mean |
|---|---|---|---|
| 1 | 1871 | 1898 | 1097.75 |
| 2 | 1899 | 1970 | 849.97 |

Interval level 0.95; BIC 1234.5.
"""
PAYLOAD = {
    "question": "where does the flow change?",
    "result": {
        "change_points": ["1898"],
        "means": [1097.75, 849.97],
        "fit": {"bic": 1234.5},
        "level": 0.95,
    },
}


# ----------------------------------------------------------------- a chat-completions server
class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"path": self.path, "body": body})  # type: ignore[attr-defined]
        if self.path != "/v1/chat/completions":
            self.send_response(404)
            self.end_headers()
            return
        reply = {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", "test"),
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": self.server.respond(body)},
                }
            ],  # type: ignore[attr-defined]
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
        }
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def chat_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.requests = []  # type: ignore[attr-defined]
    server.content = ""  # type: ignore[attr-defined]
    server.respond = lambda body: server.content  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------- number checks
def test_numbers_in_reads_separators_decimals_percent_and_dates():
    found = {n.text: n for n in numbers_in("flow 1,120.5 fell 25% in 1898-01-01, p=.03, 2.5e-3")}
    assert found["1,120.5"].value == 1120.5 and found["1,120.5"].tol == pytest.approx(0.05)
    assert found["25%"].percent and found["25%"].value == 25
    assert found["1898"].value == 1898 and "-01" not in found  # a date is not a negative number
    assert found[".03"].value == pytest.approx(0.03)
    assert found["2.5e-3"].value == pytest.approx(0.0025)


def test_check_prose_accepts_rounding_and_rejects_invented_numbers():
    ok = "The flow dropped after 1898, from about 1098 to 850; a 95% interval is used."
    assert check_prose(ok, TEMPLATE, PAYLOAD) == []
    bad = "The flow dropped by 23.4% after 1898, with 3 change points."
    assert check_prose(bad, TEMPLATE, PAYLOAD) == ["23.4%", "3"]


# ----------------------------------------------------------------- openai-compatible endpoint
def test_openai_writer_returns_checked_prose_and_sends_the_result(chat_server):
    server, url = chat_server
    server.content = "In 1898 the mean flow fell from 1097.75 to about 850."
    written = OpenAIWriter(base_url=url, model="local-test", api_key="k").write(TEMPLATE, PAYLOAD)
    assert written.notice is None
    assert written.writer == "openai (local-test)"
    assert written.report.startswith(server.content)
    assert "checked against the result" in written.report
    (req,) = server.requests
    assert req["path"] == "/v1/chat/completions" and req["body"]["model"] == "local-test"
    user = req["body"]["messages"][-1]["content"]
    assert json.dumps(PAYLOAD["result"]) in user and TEMPLATE in user


def test_openai_writer_falls_back_on_an_invented_number(chat_server):
    server, url = chat_server
    server.content = "The flow fell by 31.7% in 1898."
    written = OpenAIWriter(base_url=url, model="m").write(TEMPLATE, PAYLOAD)
    assert written.report == TEMPLATE and written.writer == "template"
    assert "31.7%" in written.notice
    with pytest.raises(WriterError, match=r"31\.7%"):
        OpenAIWriter(base_url=url, model="m", strict=True).write(TEMPLATE, PAYLOAD)


def test_openai_writer_unreachable_endpoint_falls_back_or_raises_when_strict(monkeypatch):
    url = f"http://127.0.0.1:{_free_port()}/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", url)  # taken from the standard variable
    written = get_writer("openai").write(TEMPLATE, PAYLOAD)
    assert written.report == TEMPLATE and "unreachable" in written.notice and url in written.notice
    with pytest.raises(WriterError, match="unreachable"):
        get_writer({"kind": "openai", "strict": True}).write(TEMPLATE, PAYLOAD)


def test_get_writer_resolution():
    assert isinstance(get_writer(None), TemplateWriter)
    assert get_writer(None).write(TEMPLATE, PAYLOAD).report == TEMPLATE
    w = get_writer({"kind": "openai", "base_url": "http://x/v1", "model": "m"})
    assert isinstance(w, OpenAIWriter) and w.base_url == "http://x/v1" and w.model == "m"
    with pytest.raises(WriterError, match="unknown writer"):
        get_writer("shakespeare")
    with pytest.raises(WriterError, match="generative backbone"):
        get_writer("hf", backbone=None)


# ----------------------------------------------------------------- hf writer
class _Echo:
    """A generative stand-in that records its prompt."""

    def __init__(self, reply: str) -> None:
        self.reply, self.prompts = reply, []

    def generate(self, text: str, max_new_tokens: int = 256) -> str:
        self.prompts.append(text)
        return self.reply


def test_hf_writer_checks_the_generated_numbers():
    good = _Echo("The mean flow fell from 1097.75 to 849.97 after 1898.")
    written = HFWriter(good).write(TEMPLATE, PAYLOAD)
    assert written.writer == "hf" and written.report.startswith(good.reply)
    assert "1097.75" in good.prompts[0]  # the template went into the prompt
    bad = HFWriter(_Echo("It fell 40% in 1901.")).write(TEMPLATE, PAYLOAD)
    assert bad.report == TEMPLATE and "40%" in bad.notice


def test_hf_writer_on_a_real_tiny_model_is_deterministic_and_checked(tiny_llama):
    from chronoken.toolkens.backbone import load_backbone

    backbone = load_backbone(f"hf:{tiny_llama}")
    writer = get_writer({"kind": "hf", "backbone": backbone, "max_new_tokens": 24})
    assert isinstance(writer, HFWriter)
    first = writer.write(TEMPLATE, PAYLOAD)
    second = writer.write(TEMPLATE, PAYLOAD)
    assert first == second  # greedy decoding: same input, same report
    generated = backbone.generate(writer.prompt(TEMPLATE), max_new_tokens=writer.max_new_tokens)
    bad = check_prose(generated, TEMPLATE, PAYLOAD)
    if bad or not generated.strip():  # an untrained model: its numbers must be caught
        assert first.report == TEMPLATE and first.notice
    else:
        assert first.writer == "hf" and first.report.startswith(generated.strip())


def test_ask_with_the_openai_writer(chat_server):
    """ask() end to end: the endpoint receives the Result JSON and its prose becomes the report."""
    import chronoken

    server, url = chat_server

    def respond(body):
        user = body["messages"][-1]["content"]
        payload = json.loads(user.split("Result JSON:\n", 1)[1].split("\n\nReport:\n", 1)[0])
        result = payload["result"]
        name, value = next(iter(result["fit"].items()))
        return f"The {payload['tool']} tool's model is {result['model']}; its {name} is {value}."

    server.respond = respond
    answer = chronoken.ask(
        "nile", "where does the flow change?", writer=OpenAIWriter(base_url=url, model="local")
    )
    assert answer.writer == "openai (local)" and not any("writer" in n for n in answer.notes)
    assert answer.report.startswith(f"The {answer.tool} tool's model is {answer.result.model}")
    assert "checked against the result" in answer.report
