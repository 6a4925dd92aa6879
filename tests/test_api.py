"""The HTTP API through a real client against a running server: answers, streaming, bad input, origins, limits."""

import errno
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from qa.config import Config

from .conftest import free_port, wait_until_ready


def serve(cfg, assistant):
    """Start the app (API + widget + Gradio chat) with uvicorn in a thread; return its base URL and server."""
    import uvicorn

    from app import build_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(build_app(cfg, assistant), host="127.0.0.1", port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    wait_until_ready(lambda: httpx.get(url + "/api/health", timeout=5).status_code == 200, 120, "the server", every=0.2)
    return url, server


@pytest.fixture(scope="module")
def api(assistant, seed_index, tmp_path_factory):
    cfg = Config.load(index_dir=seed_index, seeds_dir=seed_index.parent / "seeds", data_dir=tmp_path_factory.mktemp("data"),
                      allowed_origins=["http://cluster.example"], rate_limit_per_minute=1000)
    url, server = serve(cfg, assistant)
    yield url, cfg
    server.should_exit = True


def test_health_reports_readiness(api):
    r = httpx.get(api[0] + "/api/health")
    assert r.status_code == 200 and r.json()["index_loaded"] and r.json()["model_loaded"] and r.json()["status"] == "ok"


def test_ask_returns_the_cli_json(api):
    r = httpx.post(api[0] + "/api/ask", json={"question": "What share of the workforce are engineers?"}, timeout=60)
    assert r.status_code == 200
    a = r.json()
    assert set(a) >= {"question", "answer", "refused", "citations", "timings"} and "80%" in a["answer"]
    assert set(a["citations"][0]) >= {"n", "source", "chunk_id", "start", "end", "text"}


def test_ask_with_history(api):
    history = [{"role": "user", "content": "Which competitiveness cluster supports optics in Provence?"},
               {"role": "assistant", "content": "A major force behind this synergy is the OPTITEC competitiveness cluster [1]."}]
    r = httpx.post(api[0] + "/api/ask", json={"question": "And what is its flagship initiative?", "history": history}, timeout=60)
    assert r.status_code == 200 and "Opti’Pass" in r.json()["answer"]


def test_stream_sends_sources_then_the_answer_and_no_draft_that_could_change(api):
    events, tokens = [], ""
    with httpx.stream("POST", api[0] + "/api/ask/stream", json={"question": "Which cluster fosters collaboration?"}, timeout=60) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("event: "):
                events.append(line[7:])
            elif line.startswith("data: ") and events[-1] == "token":
                tokens += json.loads(line[6:])["text"]
            elif line.startswith("data: ") and events[-1] == "answer":
                answer = json.loads(line[6:])
    assert events[0] == "sources" and events[-1] == "answer" and "OPTITEC" in answer["answer"]
    # token events carry only text that stays: together, the start of the final answer
    assert answer["answer"].startswith(tokens) and events.index("sources") < events.index("answer")


def test_a_name_alone_is_answered_in_the_language_of_the_interface(api):
    said = {}
    for lang in ("en", "fr"):
        r = httpx.post(api[0] + "/api/ask", json={"question": "OPTITEC", "lang": lang}, timeout=60)
        assert r.status_code == 200
        said[lang] = r.json()["lang"]
    assert said == {"en": "en", "fr": "fr"}
    r = httpx.post(api[0] + "/api/ask", json={"question": "Quelle part des effectifs sont des ingénieurs ?", "lang": "en"}, timeout=60)
    assert r.json()["lang"] == "fr"  # a question says its own language


@pytest.mark.parametrize("body,status,message", [
    (b'{"question": "ok?", "lang": "de"}', 400, "interface language"),
    (b"{not json", 400, "JSON"),
    (b"[1, 2]", 400, "JSON object"),
    (b'{"question": 3}', 400, "string"),
    (b'{"question": "   "}', 400, "empty"),
    (b'{"question": "ok?", "history": "x"}', 400, "history"),
    (b'{"question": "ok?", "history": [{"role": "root", "content": "x"}]}', 400, "role"),
    (b'{"question": "\xff\xfe bad utf8"}', 400, "UTF-8"),
    (json.dumps({"question": "q" * 100_000}).encode(), 413, "larger"),
    (json.dumps({"question": "q", "history": [{"role": "user", "content": "x" * 500}] * 500}).encode(), 413, "larger"),
])
def test_bad_input_gets_a_clear_4xx(api, body, status, message):
    r = httpx.post(api[0] + "/api/ask", content=body, headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == status and message in r.json()["error"]


def test_html_in_a_question_is_returned_as_text(api):
    r = httpx.post(api[0] + "/api/ask", json={"question": "<script>alert(1)</script> What share are engineers?"}, timeout=60)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")


def test_origins_outside_the_allowlist_are_refused(api):
    url = api[0] + "/api/ask"
    ok = httpx.post(url, json={"question": "What is OPTITEC?"}, headers={"Origin": "http://cluster.example"}, timeout=60)
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "http://cluster.example"
    bad = httpx.post(url, json={"question": "What is OPTITEC?"}, headers={"Origin": "http://evil.example"}, timeout=60)
    assert bad.status_code == 403 and "access-control-allow-origin" not in bad.headers
    pre = httpx.options(url, headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    assert pre.status_code == 403 and "access-control-allow-origin" not in pre.headers


def test_a_withheld_or_opaque_origin_does_not_bypass_the_allowlist(api, assistant, seed_index, tmp_path):
    url, body = api[0] + "/api/ask", {"question": "What is OPTITEC?"}
    cross = httpx.post(url, json=body, headers={"Sec-Fetch-Site": "cross-site"}, timeout=60)  # a browser hiding its origin
    opaque = httpx.post(url, json=body, headers={"Origin": "null"}, timeout=60)  # a sandboxed frame or a data: page
    assert cross.status_code == 403 and opaque.status_code == 403
    assert httpx.post(url, json=body, timeout=60).status_code == 200  # curl and scripts, by default
    strict = Config.load(index_dir=seed_index, data_dir=tmp_path, allowed_origins=["http://cluster.example"],
                         allow_clients_without_origin=False)
    strict_url, server = serve(strict, assistant)
    try:
        assert httpx.post(strict_url + "/api/ask", json=body, timeout=60).status_code == 403
        assert httpx.post(strict_url + "/api/feedback", json={"rating": "up", "question": "q", "answer": "a"}).status_code == 403
        ok = httpx.post(strict_url + "/api/ask", json=body, headers={"Origin": "http://cluster.example"}, timeout=60)
        assert ok.status_code == 200
    finally:
        server.should_exit = True


def test_served_host_names_follow_the_bind_address_and_the_setting():
    from qa.server import host_name, served_hosts

    assert [host_name(h) for h in ("LocalHost:7860", "[::1]:80", "::1", "qa.example")] == ["localhost", "::1", "::1", "qa.example"]
    assert served_hosts(Config(host="127.0.0.1")) == {"localhost", "127.0.0.1", "::1"}
    assert served_hosts(Config(host="0.0.0.0")) is None  # a public bind: set trusted_hosts to pin the names
    assert "qa.cluster.example" in served_hosts(Config(host="0.0.0.0", trusted_hosts=["qa.cluster.example:443"]))


def test_a_rebound_dns_name_cannot_reach_a_loopback_app(api):
    """DNS rebinding: a page on attacker.example whose name now resolves to 127.0.0.1 sends Host = Origin = its name."""
    port = api[0].rsplit(":", 1)[1]
    rebound = {"Host": f"attacker.example:{port}", "Origin": f"http://attacker.example:{port}"}
    for path in ("/", "/widget", "/api/health"):
        assert httpx.get(api[0] + path, headers=rebound).status_code == 400
    r = httpx.post(api[0] + "/api/ask", json={"question": "What is OPTITEC?"}, headers=rebound, timeout=60)
    assert r.status_code == 400 and "host" in r.json()["error"]
    same = {"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"}
    assert httpx.post(api[0] + "/api/ask", json={"question": "What is OPTITEC?"}, headers=same, timeout=60).status_code == 200


def test_widget_framing_is_limited_to_the_allowlist_and_headers_are_everywhere(api):
    w = httpx.get(api[0] + "/widget")
    assert w.status_code == 200 and "frame-ancestors 'self' http://cluster.example" in w.headers["content-security-policy"]
    for path in ["/", "/api/health", "/widget.js", "/widget-app.js"]:
        r = httpx.get(api[0] + path)
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert "frame-ancestors" in r.headers["content-security-policy"], path
    assert "frame-ancestors 'self'" == httpx.get(api[0] + "/").headers["content-security-policy"]


def test_no_file_outside_what_the_app_serves(api):
    for path in ["/widget.js/../../config.py", "/../pyproject.toml", "/static/../../app.py", "/file=/etc/passwd", "/gradio_api/file=/etc/passwd"]:
        r = httpx.get(api[0] + path)
        assert "root:" not in r.text and "[project]" not in r.text and "def build_app" not in r.text, path


def test_feedback_is_stored_whole(api):
    record = {"rating": "up", "question": "What?", "answer": "80% [1]", "citations": [{"n": 1, "source": "s"}]}
    assert httpx.post(api[0] + "/api/feedback", json=record).json() == {"saved": True}
    assert httpx.post(api[0] + "/api/feedback", json={**record, "rating": "meh"}).status_code == 400
    lines = (api[1].data_dir / "feedback.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["rating"] == "up" and json.loads(lines[-1])["question"] == "What?"


def test_one_rating_per_answer_id_the_latest_and_withdrawable(api):
    url, path = api[0] + "/api/feedback", api[1].data_dir / "feedback.jsonl"
    record = {"id": "answer-0001", "rating": "up", "question": "Which cluster?", "answer": "OPTITEC [1]", "citations": []}
    other = {**record, "id": "answer-0002"}
    for r in (record, other, {**record, "rating": "down"}):
        assert httpx.post(url, json=r).json() == {"saved": True}
    mine = [json.loads(line) for line in path.read_text().splitlines() if json.loads(line).get("id") == "answer-0001"]
    assert [r["rating"] for r in mine] == ["down"]  # like then dislike: one record, the latest
    assert httpx.post(url, json={"id": "answer-0001", "rating": "none"}).json() == {"saved": True, "removed": True}
    ids = [json.loads(line).get("id") for line in path.read_text().splitlines()]
    assert "answer-0001" not in ids and "answer-0002" in ids
    for bad in ({**record, "id": "../x"}, {**record, "id": 7}, {"rating": "none"}):
        r = httpx.post(url, json=bad)
        assert r.status_code == 400 and r.json()["error"].endswith(".")


def test_feedback_on_a_full_disk_is_a_clear_error_and_no_half_record(tmp_path, monkeypatch):
    from qa.server import FeedbackStore

    store = FeedbackStore(tmp_path)
    store.add({"rating": "up", "question": "a", "answer": "b"})
    before = (tmp_path / "feedback.jsonl").read_bytes()
    real_write = os.write

    def half_then_full(fd, data):
        real_write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(OSError):
        store.add({"rating": "down", "question": "c", "answer": "d"})
    monkeypatch.undo()
    assert (tmp_path / "feedback.jsonl").read_bytes() == before
    # a replacement (same id) is written beside the file and renamed: a full disk leaves the old file whole
    store.add({"id": "answer-0001", "rating": "up", "question": "e", "answer": "f"})
    before = (tmp_path / "feedback.jsonl").read_bytes()
    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(OSError):
        store.add({"id": "answer-0001", "rating": "down", "question": "e", "answer": "f"})
    monkeypatch.undo()
    assert (tmp_path / "feedback.jsonl").read_bytes() == before and not list(tmp_path.glob("*.tmp-*"))


def test_rate_limit_and_busy_queue(assistant, seed_index, tmp_path):
    cfg = Config.load(index_dir=seed_index, data_dir=tmp_path, rate_limit_per_minute=3, max_queue=0)
    url, server = serve(cfg, assistant)
    try:
        codes = [httpx.post(url + "/api/feedback", json={"rating": "up", "question": "q", "answer": "a"}).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
    finally:
        server.should_exit = True
    cfg = Config.load(index_dir=seed_index, data_dir=tmp_path, rate_limit_per_minute=100, max_queue=0)
    url, server = serve(cfg, assistant)
    try:
        with ThreadPoolExecutor(4) as pool:
            codes = list(pool.map(lambda _: httpx.post(url + "/api/ask", json={"question": "What is OPTITEC?"}, timeout=120).status_code, range(4)))
        assert 200 in codes and 503 in codes and set(codes) <= {200, 503}
    finally:
        server.should_exit = True


def test_short_load_test_loses_nothing(seed_index):
    """The load-test script, short form: 6 clients, 12 requests, against a real app process."""
    import subprocess
    import sys

    from .conftest import ROOT

    out = subprocess.run([sys.executable, str(ROOT / "scripts/load_test.py"), "--clients", "6", "--requests", "12",
                          "--index", str(seed_index), "--max-seconds", "600"], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["answered"] == 12 and r["errors"] == 0 and r["lost"] == 0


def test_the_gate_runs_all_model_work_on_one_thread_in_arrival_order():
    from qa.server import Busy, Gate

    gate, order, threads = Gate(max_queue=8), [], set()

    def work(i):
        threads.add(threading.get_ident())
        time.sleep(0.02)
        order.append(i)
        return i

    def tokens(n):
        for i in range(n):
            threads.add(threading.get_ident())
            yield i

    with ThreadPoolExecutor(6) as pool:
        futures = []
        for i in range(6):
            futures.append(pool.submit(gate.call, lambda i=i: work(i)))
            time.sleep(0.005)  # arrival order
        assert [f.result() for f in futures] == list(range(6))
        assert list(pool.submit(lambda: list(gate.stream(lambda: tokens(3)))).result()) == [0, 1, 2]
    assert order == list(range(6)) and len(threads) == 1 and threading.get_ident() not in threads

    def failing():
        yield 1
        raise Busy("raised on the model thread")

    with pytest.raises(Busy, match="model thread"):
        list(gate.stream(failing))
    early = gate.stream(lambda: tokens(1000))
    assert next(early) == 0
    early.close()  # a client that left frees the model at once
    assert gate.call(lambda: "free") == "free" and gate.waiting == 0

    full = Gate(max_queue=0)
    blocker = threading.Thread(target=full.call, args=(lambda: time.sleep(0.5),))
    blocker.start()
    time.sleep(0.1)
    with pytest.raises(Busy):
        full.call(lambda: None)
    blocker.join()


# --- the chat page's Gradio routes: the same protections as /api/, and no Gradio API beyond what the page uses -----

def gradio_event(url: str, api_name: str, data: list, session: str) -> list:
    """Call one of the page's events the way the page does (queue/join, then its event stream); its outputs."""
    fn = next(d for d in httpx.get(url + "/config").json()["dependencies"] if d.get("api_name") == api_name)
    r = httpx.post(url + "/gradio_api/queue/join", json={"data": data, "fn_index": fn["id"], "session_hash": session,
                                                         "event_data": None, "trigger_id": None})
    assert r.status_code == 200, r.text
    with httpx.stream("GET", url + "/gradio_api/queue/data", params={"session_hash": session}, timeout=120) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:") and json.loads(line[5:]).get("msg") == "process_completed":
                return json.loads(line[5:])["output"]["data"]
    raise AssertionError("the event did not complete")


def test_gradio_exposes_no_api_beyond_the_page(api):
    url = api[0]
    for path in ("/gradio_api/info", "/gradio_api/openapi.json", "/monitoring", "/gradio_api/runs", "/gradio_api/file=/etc/passwd"):
        assert httpx.get(url + path).status_code == 404, path
    for path in ("/gradio_api/call/respond", "/gradio_api/run/respond", "/gradio_api/api/respond", "/gradio_api/upload"):
        assert httpx.post(url + path, json={"data": ["What is OPTITEC?"]}).status_code == 404, path
    big = httpx.post(url + "/gradio_api/queue/join", content=b"{" + b" " * 70_000 + b"}", headers={"content-type": "application/json"})
    assert big.status_code == 413 and "larger" in big.json()["error"]
    chunked = httpx.post(url + "/gradio_api/queue/join", content=iter([b'{"data": []}']), headers={"content-type": "application/json"})
    assert chunked.status_code == 411
    assert all(d.get("api_visibility") == "private" for d in httpx.get(url + "/config").json()["dependencies"])


def test_gradio_questions_share_the_api_rate_limit_and_queue(assistant, seed_index, tmp_path):
    cfg = Config.load(index_dir=seed_index, data_dir=tmp_path, rate_limit_per_minute=2, max_queue=0)
    url, server = serve(cfg, assistant)
    try:
        for _ in range(2):  # the client's two requests of this minute, spent on the API
            assert httpx.post(url + "/api/feedback", json={"rating": "up", "question": "q", "answer": "a"}).status_code == 200
        out = gradio_event(url, "respond", ["What is OPTITEC?", None, None, None], "limited")
        assert "many questions in a short time" in out[5] and out[6] == "What is OPTITEC?"  # told why, the question kept
    finally:
        server.should_exit = True
    cfg = Config.load(index_dir=seed_index, data_dir=tmp_path, rate_limit_per_minute=100, max_queue=0)
    url, server = serve(cfg, assistant)
    try:
        gate = server.config.app.state.qa["gate"]
        holder = threading.Thread(target=gate.call, args=(lambda: time.sleep(4),))
        holder.start()  # an API question holds the one model; with no queue, a question from the page is told to retry
        time.sleep(0.5)
        out = gradio_event(url, "respond", ["What is OPTITEC?", None, None, None], "busy")
        holder.join()
        assert "Many people are asking right now" in out[5] and out[6] == "What is OPTITEC?"
    finally:
        server.should_exit = True


# --- the cited document, whole ----------------------------------------------------------------------------------

def test_a_cited_document_opens_at_the_cited_place(api):
    url = api[0] + "/doc"
    a = httpx.post(api[0] + "/api/ask", json={"question": "What share of the workforce are engineers?"}, timeout=60).json()
    c = a["citations"][0]
    r = httpx.get(url, params={"source": c["source"], "start": c["start"], "end": c["end"]})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert f'<mark id="cited">{c["text"]}</mark>' in r.text and "<h1>The optics and photonics industry" in r.text
    assert "script-src" not in r.headers["content-security-policy"] and "default-src 'none'" in r.headers["content-security-policy"]
    for params, status in [({"source": "../pyproject.toml", "start": 0, "end": 1}, 404),
                           ({"source": "/etc/passwd", "start": 0, "end": 1}, 404),
                           ({"source": "nope.txt", "start": 0, "end": 1}, 404),
                           ({"source": c["source"], "start": 10, "end": 5}, 400),
                           ({"source": c["source"], "start": 0, "end": 10**9}, 400),
                           ({"source": c["source"], "start": "x", "end": 1}, 400)]:
        r = httpx.get(url, params=params)
        assert r.status_code == status and "root:" not in r.text and "[project]" not in r.text, params
    assert "Ce document ne fait pas partie" in httpx.get(url, params={"source": "nope.txt", "lang": "fr"}).text


def test_a_document_changed_since_indexing_is_not_shown_with_wrong_offsets(assistant, seed_index, tmp_path):
    import shutil

    seeds = tmp_path / "seeds"
    shutil.copytree(seed_index.parent / "seeds", seeds)
    cfg = Config.load(index_dir=seed_index, seeds_dir=seeds, data_dir=tmp_path)
    url, server = serve(cfg, assistant)
    try:
        doc = next(seeds.iterdir())
        doc.write_text("Changed.\n" + doc.read_text("utf-8"), "utf-8")
        r = httpx.get(url + "/doc", params={"source": doc.name, "start": 0, "end": 5})
        assert r.status_code == 409 and "changed since it was indexed" in r.text
    finally:
        server.should_exit = True
