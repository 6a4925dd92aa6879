"""Generator backends: the registry, the OpenAI-compatible HTTP backend against a real local server, Gemma's stream."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from qa import generators
from qa.errors import GeneratorError, QAError


class FakeOpenAI(BaseHTTPRequestHandler):
    """A minimal OpenAI-compatible chat endpoint that streams a fixed reply and records the request."""

    requests: list = []
    reply = ["Engineers make up ", "80% of the workforce [1]."]

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeOpenAI.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        if body.get("model") == "broken":
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b"boom")
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for piece in self.reply:
            self.wfile.write(f"data: {json.dumps({'choices': [{'delta': {'content': piece}}]})}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def endpoint():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_registry_names_and_unknown_backend():
    assert {"gemma-270m", "openai"} <= set(generators.names())
    with pytest.raises(QAError, match="Unknown generator"):
        generators.create("nope")


def test_openai_backend_streams_and_keeps_the_system_message_apart(endpoint):
    gen = generators.create("openai", openai_base_url=endpoint, openai_model="m", openai_api_key="k")
    assert not gen.small
    out = list(gen.stream("Passages: ...\nQuestion: q", max_new_tokens=50, stop=(), system="rules"))
    assert "".join(out) == "Engineers make up 80% of the workforce [1]."
    req = FakeOpenAI.requests[-1]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer k"
    assert req["body"]["messages"] == [{"role": "system", "content": "rules"}, {"role": "user", "content": "Passages: ...\nQuestion: q"}]
    assert req["body"]["max_tokens"] == 50 and req["body"]["temperature"] == 0 and req["body"]["stream"] is True


def test_openai_backend_errors_are_one_sentence(endpoint):
    with pytest.raises(GeneratorError, match="answered 500"):
        list(generators.create("openai", openai_base_url=endpoint, openai_model="broken").stream("x"))
    with pytest.raises(GeneratorError, match="cannot be reached"):
        list(generators.create("openai", openai_base_url="http://127.0.0.1:9/v1", openai_timeout_s=2).stream("x"))


def test_assistant_with_the_openai_backend_verifies_the_answer(endpoint, seed_index):
    from qa.config import Config
    from qa.service import Assistant

    FakeOpenAI.reply = ["Engineers make up 80% of the workforce [1]. ", "OPTITEC has 9000 members [1]."]
    try:
        a = Assistant(Config.load(index_dir=seed_index, generator="openai", openai_base_url=endpoint), rerank=False)
        answer = a.ask("What share of the workforce are engineers?")
    finally:
        FakeOpenAI.reply = ["Engineers make up ", "80% of the workforce [1]."]
    assert "80%" in answer.answer and "9000" not in answer.answer  # the invented sentence is dropped
    assert answer.citations and "Engineers make up 80% of the workforce." in answer.citations[0].passage


def test_gemma_stream_is_bounded_stops_and_stays_in_the_allowed_text(assistant):
    gen = assistant.generator
    allowed = "Engineers make up 80% of the workforce."
    out = "".join(gen.stream("Engineers make up 80% of the workforce.\n\nQuestion: What share are engineers?\nShort answer:",
                             max_new_tokens=8, stop=("\n",), allowed_text=allowed))
    assert out.strip() and "\n" not in out
    ids = set(gen.tokenizer.encode(out, add_special_tokens=False))
    assert ids <= set(gen._allowed(allowed).tolist())
    assert len(gen.tokenizer.encode(out, add_special_tokens=False)) <= 8
    scores = gen.score(["Engineers make up 80% of the workforce.\nQuestion: ", "Bananas are yellow.\nQuestion: "], "What share are engineers?")
    assert scores[0] > scores[1]
