"""Generator backends: the registry, the OpenAI-compatible HTTP backend against a real local server, Gemma's stream."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from qa import generators
from qa.errors import GeneratorError, QAError


def event(obj) -> bytes:
    return f"data: {json.dumps(obj)}\n\n".encode()


def delta(content=None, role=None, finish=None) -> bytes:
    d = {k: v for k, v in (("role", role), ("content", content)) if v is not None}
    return event({"choices": [{"index": 0, "delta": d, "finish_reason": finish}]})


# What the scripted server sends, by the model name a test asks for: the protocol details real servers differ on.
SCRIPTS = {
    "chunked": [delta(role="assistant"), delta(""), delta("Engin"), delta("eers make up 8"), event({"choices": []}),
                b": keep-alive\n\n", b"event: message\n", delta("0% of the work"), delta("force [1]."),
                delta(finish="stop"), b"data: [DONE]\n\n"],
    "no-done": [delta("Engineers make up "), delta("80% of the workforce [1].")],  # closes without [DONE]
    "finish-first": [delta("Engineers make up 80% of the workforce [1].", finish="length"), delta("never read")],
    "legacy": [event({"choices": [{"text": "Engineers make up 80%", "finish_reason": None}]}), b"data: [DONE]\n\n"],
    "malformed": [delta("Engineers "), b"data: {not json\n\n"],
    "midstream-error": [delta("Engineers "), event({"error": {"message": "CUDA out of memory", "type": "server_error"}})],
    "stall": [delta("Engineers make up "), ("sleep", 3.0), delta("80%.")],
}


class FakeOpenAI(BaseHTTPRequestHandler):
    """A minimal OpenAI-compatible chat endpoint that streams a scripted reply and records the request."""

    requests: list = []
    reply = ["Engineers make up ", "80% of the workforce [1]."]

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeOpenAI.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        model = body.get("model")
        if model in ("broken", "json-400", "html-502"):
            status, kind, payload = {
                "broken": (500, "text/plain", b"boom"),
                "json-400": (400, "application/json", json.dumps({"error": {"message": "max_tokens is too large", "type": "invalid_request_error"}}).encode()),
                "html-502": (502, "text/html", b"<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"),
            }[model]
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        if model == "whole":  # ignores "stream": one JSON completion
            payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": "Engineers make up 80% [1]."}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        script = SCRIPTS.get(model) or [delta(piece) for piece in self.reply] + [b"data: [DONE]\n\n"]
        for chunk in script:
            if isinstance(chunk, tuple):
                time.sleep(chunk[1])
                continue
            try:
                self.wfile.write(chunk)
                self.wfile.flush()
            except OSError:
                return
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def endpoint():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    server.daemon_threads = True
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
    with pytest.raises(GeneratorError, match="answered HTTP 500: boom"):
        list(generators.create("openai", openai_base_url=endpoint, openai_model="broken").stream("x"))
    with pytest.raises(GeneratorError, match="cannot be reached"):
        list(generators.create("openai", openai_base_url="http://127.0.0.1:9/v1", openai_timeout_s=2).stream("x"))


@pytest.mark.parametrize("model,text", [
    ("chunked", "Engineers make up 80% of the workforce [1]."),  # role-only and empty deltas, mid-word pieces, usage event
    ("no-done", "Engineers make up 80% of the workforce [1]."),  # a server that closes without [DONE]
    ("finish-first", "Engineers make up 80% of the workforce [1]."),  # finish_reason ends the answer
    ("legacy", "Engineers make up 80%"),  # completions-style "text" pieces
    ("whole", "Engineers make up 80% [1]."),  # a server that ignores "stream"
])
def test_openai_backend_reads_the_stream_variants_real_servers_send(endpoint, model, text):
    gen = generators.create("openai", openai_base_url=endpoint, openai_model=model)
    assert "".join(gen.stream("q", max_new_tokens=50, stop=())) == text


@pytest.mark.parametrize("model,message", [
    ("json-400", r"answered HTTP 400: max_tokens is too large\.$"),
    ("html-502", r"answered HTTP 502: an HTML error page \(502 Bad Gateway\)\.$"),
    ("malformed", r"sent an event that is not JSON"),
    ("midstream-error", r"failed mid-answer: CUDA out of memory\.$"),
    ("stall", r"stopped sending within 0\.5 s\.$"),
])
def test_openai_backend_failures_are_one_clear_sentence(endpoint, model, message):
    gen = generators.create("openai", openai_base_url=endpoint, openai_model=model, openai_timeout_s=0.5)
    t0 = time.perf_counter()
    with pytest.raises(GeneratorError, match=message) as info:
        list(gen.stream("q", max_new_tokens=50, stop=()))
    assert "\n" not in str(info.value) and str(info.value).count(". ") == 0
    if model == "stall":
        assert time.perf_counter() - t0 < 2.5  # no hang: the silence ends it, not the server


def test_streamed_large_model_answer_shows_only_verified_sentences(endpoint, seed_index):
    """The issue's example, streamed: the contradicted sentence never reaches the user, even for a moment."""
    from qa.config import Config
    from qa.service import Assistant
    from qa.verify import check, parse_claims

    FakeOpenAI.reply = ["Optics and photonics businesses fav", "our the Aix-Marseille region [1]. Engin", "eers make up 25% ",
                        "of the workforce [2]. The region does not host any advanced research projects [1]. ",
                        "Engineers make up 80% of the work", "force [2]."]
    try:
        a = Assistant(Config.load(index_dir=seed_index, generator="openai", openai_base_url=endpoint), rerank=False)
        events = list(a.stream("Which part of Provence do optics and photonics businesses favour?"))
    finally:
        FakeOpenAI.reply = ["Engineers make up ", "80% of the workforce [1]."]
    tokens = [e["text"] for e in events if e["type"] == "token"]
    answer = next(e["answer"] for e in events if e["type"] == "answer")
    assert "".join(tokens) == answer.answer
    assert "25%" not in "".join(tokens) and "does not host" not in "".join(tokens)
    assert "favour the Aix-Marseille region" in answer.answer and "80%" in answer.answer
    by_n = {c.n: c for c in answer.citations}
    for claim in parse_claims(answer.answer, "en"):
        assert claim.cites and all(check(claim.text, by_n[n].text).supported for n in claim.cites)


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


@pytest.mark.parametrize("backend", ["openai", "default"])
def test_with_the_openai_backend_or_by_default_nothing_loads_gemma(endpoint, seed_index, tmp_path, backend):
    """A new process, an empty model cache: `qa ask` answers (through the endpoint, or with the reader's short answer by
    default) and never converts or loads Gemma."""
    import os
    import subprocess
    import sys

    from .conftest import ROOT

    env = {**os.environ, "QA_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    if backend == "openai":
        env |= {"QA_GENERATOR": "openai", "QA_OPENAI_BASE_URL": endpoint}
    out = subprocess.run([sys.executable, "-c", "import sys; from qa.cli import main; code = main(sys.argv[1:]); "
                          "print('GEMMA_LOADED', 'transformers' in sys.modules); sys.exit(code)",
                          "ask", "What share of the workforce are engineers?", "--index", str(seed_index), "--json"],
                         env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "80%" in out.stdout and "GEMMA_LOADED False" in out.stdout
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").glob("gemma*"))


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
