"""Browser tests: the Gradio chat, the embeddable widget on an allowed and on a refused origin, and HTML injection.

The real app runs as a subprocess over the seed index; examples/host.html is served (its script src pointed at the
app) from two other origins, one of them in QA_ALLOWED_ORIGINS. Debian's Chromium is driven with Playwright.
Screenshots land in artifacts/ (look at them after a UI change).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("QA_CHROMIUM", "/usr/bin/chromium")
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed (pip install playwright)")
if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
    pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set QA_CHROMIUM)", allow_module_level=True)
expect = sync_api.expect

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
HOST_PAGE = ROOT / "examples" / "host.html"
PLACEHOLDER = "http://127.0.0.1:7860"  # the app address written in examples/host.html
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
QUESTION = "What share of the workforce are engineers?"
CITED = "Engineers make up 80% of the workforce"
SOURCE = "optics-photonics-provence.txt"
ANSWER_TIMEOUT = 120_000  # ms: an answer takes 1-3 s on 2 cores, far more when the machine is busy
START_TIMEOUT = 180  # s: loading the models


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def tail(path: Path, n: int = 3000) -> str:
    try:
        return path.read_text("utf-8", errors="replace")[-n:]
    except OSError:
        return ""


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="module")
def ports() -> dict[str, int]:
    return {"app": free_port(), "host": free_port(), "other": free_port()}


@pytest.fixture(scope="module")
def app(seed_index, ports, tmp_path_factory):
    """The real app (python app.py) over the seed index; the "host" origin may embed it, the "other" may not."""
    base = tmp_path_factory.mktemp("browser-app")
    # the environment the rest of the suite sees (QA_CACHE_DIR, qa.toml...), but GRADIO_SERVER_* would override QA_PORT
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADIO_SERVER_")}
    env.update({
        "QA_INDEX_DIR": str(seed_index),
        "QA_HOST": "127.0.0.1",
        "QA_PORT": str(ports["app"]),
        "QA_DATA_DIR": str(base / "data"),
        "QA_ALLOWED_ORIGINS": f"http://127.0.0.1:{ports['host']}",
        "QA_RATE_LIMIT_PER_MINUTE": "1000",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "PYTHONUNBUFFERED": "1",
    })
    log = base / "app.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{ports['app']}"
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the app exited with code {proc.returncode}:\n{tail(log)}")
            try:
                status, _, body = get(url + "/api/health")
            except OSError:
                status, body = 0, b""
            if status == 200:
                break
            if status == 503 and json.loads(body or b"{}").get("status") == "error":
                pytest.fail(f"the app could not load: {body.decode()}\n{tail(log)}")
            if time.monotonic() > deadline:
                pytest.fail(f"the app was not ready after {START_TIMEOUT} s:\n{tail(log)}")
            time.sleep(0.5)
        yield {"url": url, "data_dir": base / "data", "log": log}
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def hosts(app, ports, tmp_path_factory):
    """examples/host.html, its script pointed at the app, served from the allowed and from a refused origin."""
    site = tmp_path_factory.mktemp("host-site")
    page = HOST_PAGE.read_text("utf-8")
    assert PLACEHOLDER + "/widget.js" in page, "examples/host.html must load the widget from " + PLACEHOLDER
    (site / "host.html").write_text(page.replace(PLACEHOLDER, app["url"]), "utf-8")
    procs, urls = [], {}
    try:
        for name in ("host", "other"):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "http.server", str(ports[name]), "--bind", "127.0.0.1", "--directory", str(site)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            urls[name] = f"http://127.0.0.1:{ports[name]}/host.html"
        for url in urls.values():
            deadline = time.monotonic() + 20
            while True:
                try:
                    if get(url)[0] == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"the static server for {url} did not start")
                time.sleep(0.1)
        yield urls
    finally:
        for p in procs:
            stop(p)


@pytest.fixture(scope="module")
def browser():
    pw = sync_api.sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    except Exception as exc:  # noqa: BLE001 (any launch failure means: no usable browser here)
        pw.stop()
        pytest.skip(f"Chromium at {CHROMIUM} could not start: {exc}")
    yield b
    b.close()
    pw.stop()


@pytest.fixture
def context(browser):
    """A fresh browser profile per test (no shared history, routes or storage)."""
    made = []

    def make(width: int = 1280, height: int = 860):
        ctx = browser.new_context(viewport={"width": width, "height": height}, locale="en-US")
        ctx.set_default_timeout(30_000)
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        ctx.close()


def shot(page, name: str, **kw) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.wait_for_timeout(400)  # let transitions and smooth scrolling settle
    page.screenshot(path=str(ARTIFACTS / name), **kw)


def open_widget(page, url: str):
    page.goto(url)
    launcher = page.locator("qa-chat-widget .launcher")
    expect(launcher).to_be_visible()
    expect(launcher).to_have_attribute("aria-expanded", "false")
    launcher.click()
    expect(launcher).to_have_attribute("aria-expanded", "true")
    expect(page.locator("qa-chat-widget .panel")).to_be_visible()
    return page.frame_locator("qa-chat-widget iframe")


def ask_widget(frame, question: str):
    """Type and send a question in the widget; the locator of its (final or failed) reply."""
    before = frame.locator(".qa-assistant").count()
    box = frame.locator("#qa-question")
    box.fill(question)
    box.press("Enter")
    reply = frame.locator(".qa-assistant").nth(before)
    expect(reply.locator(".qa-final, .qa-error")).to_be_visible(timeout=ANSWER_TIMEOUT)
    return reply


def widget_frame(page):
    return next(f for f in page.frames if "/widget?" in f.url)


# --- the Gradio chat on "/" ------------------------------------------------------------------------------------

def test_chat_page_answers_with_citations(app, context):
    page = context().new_page()
    page.goto(app["url"] + "/")
    box = page.locator("#qa-input textarea")
    box.fill(QUESTION)
    box.press("Enter")
    bot = page.locator("#qa-chat [data-testid='bot']").last
    expect(bot).to_contain_text("80%", timeout=ANSWER_TIMEOUT)
    expect(bot.locator("a", has_text="[1]")).to_be_visible()  # the marker [1] is a link to its source
    expect(page.locator("#qa-sources mark").first).to_contain_text(CITED)
    shot(page, "chat.png", full_page=True)


def test_chat_page_on_a_phone(app, context):
    page = context(390, 844).new_page()
    page.goto(app["url"] + "/")
    box = page.locator("#qa-input textarea")
    expect(box).to_be_in_viewport()  # the input is on the first screen, without scrolling
    box.fill(QUESTION)
    box.press("Enter")
    expect(page.locator("#qa-chat [data-testid='bot']").last).to_contain_text("80%", timeout=ANSWER_TIMEOUT)
    box.scroll_into_view_if_needed()
    expect(box).to_be_in_viewport()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1, f"the page scrolls sideways on a phone ({width} px wide)"
    shot(page, "chat-phone.png")


# --- the widget on an allowed site -----------------------------------------------------------------------------

def test_widget_on_allowed_origin(app, hosts, context):
    page = context().new_page()
    page.goto(hosts["host"])
    launcher = page.locator("qa-chat-widget .launcher")
    # the host's CSS (button {border: 4px dashed red}) does not reach into the widget's shadow root
    assert launcher.evaluate("b => getComputedStyle(b).borderTopStyle") == "none"
    frame = open_widget(page, hosts["host"])
    expect(frame.locator(".qa-assistant").first).to_contain_text("Ask me about the optics")  # data-greeting
    reply = ask_widget(frame, QUESTION)
    final = reply.locator(".qa-final")
    expect(final).to_contain_text("80%")
    cite = final.locator("a.qa-cite", has_text="[1]")
    expect(cite).to_be_visible()
    expect(reply.locator(".qa-src-file").first).to_have_text(SOURCE)
    cite.click()  # reveals the cited passage
    expect(reply.locator("details.qa-source[open] .qa-src-text").first).to_contain_text(CITED)
    expect(reply.locator("details.qa-source[open] .qa-src-text").first).to_be_in_viewport()

    reply.locator(".qa-rate-up").click()
    expect(reply.locator(".qa-feedback-note")).to_have_text("Thanks for your feedback.")
    records = [json.loads(line) for line in (app["data_dir"] / "feedback.jsonl").read_text("utf-8").splitlines()]
    assert records[-1]["rating"] == "up" and records[-1]["question"] == QUESTION and records[-1]["citations"]
    shot(page, "widget.png")

    # a follow-up carries the conversation
    with page.expect_request(lambda r: r.url.endswith("/api/ask/stream")) as req:
        follow = ask_widget(frame, "Which cluster fosters this collaboration?")
    sent = json.loads(req.value.post_data)
    assert [t["role"] for t in sent["history"]] == ["user", "assistant"]
    assert sent["history"][0]["content"] == QUESTION and "80%" in sent["history"][1]["content"]
    expect(follow.locator(".qa-final")).to_contain_text("OPTITEC")

    # the allowed site may call the API from the browser too
    status = page.evaluate(f"fetch('{app['url']}/api/health').then(r => r.status, e => String(e))")
    assert status == 200

    # Escape (focus in the chat) closes the panel and gives the focus back to the button
    frame.locator("#qa-question").press("Escape")
    expect(page.locator("qa-chat-widget .panel")).to_be_hidden()
    expect(launcher).to_have_attribute("aria-expanded", "false")


def test_widget_full_screen_on_a_phone(app, hosts, context):
    page = context(390, 844).new_page()
    frame = open_widget(page, hosts["host"])
    expect(frame.locator("#qa-question")).to_be_visible()
    box = page.locator("qa-chat-widget .panel").bounding_box()
    assert box["width"] == 390 and box["height"] == 844, box
    reply = ask_widget(frame, QUESTION)
    expect(reply.locator(".qa-final a.qa-cite").first).to_be_visible()
    width = widget_frame(page).evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the chat scrolls sideways on a phone ({width} px wide)"
    shot(page, "widget-phone.png")
    page.locator("qa-chat-widget .x").click()  # the close button of the panel
    expect(page.locator("qa-chat-widget .panel")).to_be_hidden()


# --- the widget on a site that is not allowed ------------------------------------------------------------------

def test_widget_refused_on_other_origin(app, hosts, context):
    other = hosts["other"].rsplit("/", 1)[0]
    page = context().new_page()
    page.goto(hosts["other"])
    page.locator("qa-chat-widget .launcher").click()
    # Chromium refuses to frame /widget (frame-ancestors): the frame holds its error page, the widget says why
    expect(page.locator("qa-chat-widget .notice")).to_be_visible(timeout=15_000)
    children = [f for f in page.frames if f is not page.main_frame]
    assert children, "the panel has no frame"
    for f in children:
        assert not f.url.startswith(app["url"]), f"the chat loaded in a refused site: {f.url}"
        try:
            assert f.locator("#qa-question").count() == 0
        except sync_api.Error:
            pass  # an error page that cannot be inspected is fine too
    # a script of that site cannot use the API: the server answers 403 without CORS headers, the browser fails
    result = page.evaluate(
        """url => fetch(url, {method: "POST", headers: {"Content-Type": "application/json"},
                              body: JSON.stringify({question: "What share of the workforce are engineers?"})})
              .then(r => "status " + r.status, e => "error: " + e)""",
        app["url"] + "/api/ask")
    assert result.startswith("error"), result
    status, headers, body = get(app["url"] + "/api/health", {"Origin": other})
    assert status == 403 and "access-control-allow-origin" not in {k.lower() for k in headers}
    status, headers, _ = get(app["url"] + "/widget")
    assert "frame-ancestors 'self' " + hosts["host"].rsplit("/", 1)[0] in headers["content-security-policy"]
    shot(page, "widget-refused.png")


# --- injection ------------------------------------------------------------------------------------------------

PAYLOAD = '<img src=x onerror="window.__pwned=1">'


def test_widget_shows_html_as_text(app, hosts, context):
    page = context().new_page()
    frame = open_widget(page, hosts["host"])
    reply = ask_widget(frame, f"{PAYLOAD} {QUESTION}")
    expect(frame.locator(".qa-user .qa-bubble").last).to_have_text(f"{PAYLOAD} {QUESTION}")
    expect(reply.locator(".qa-bubble")).not_to_be_empty()
    f = widget_frame(page)
    assert f.evaluate("typeof window.__pwned") == "undefined"
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert f.locator("#qa-log img").count() == 0

    # documents may hold markup too: an answer whose every field is hostile is shown as text
    answer = {"question": "q", "answer": 'See <img src=x onerror="window.__pwned=2"> **bold <b>b</b>** [1] <script>window.__pwned=3</script>',
              "refused": False, "query": "q", "lang": "en", "timings": {},
              "citations": [{"n": 1, "source": "<svg onload=window.__pwned=4>.html", "chunk_id": "x:1:1",
                             "title": "<img src=x onerror=window.__pwned=5>", "start": 0, "end": 9,
                             "text": "<script>window.__pwned=6</script>", "passage": "<i>p</i>", "passage_start": 0}]}
    body = (f"event: sources\ndata: {json.dumps({'query': 'q', 'passages': []})}\n\n"
            f"event: token\ndata: {json.dumps({'text': '<img src=x onerror=window.__pwned=7>'})}\n\n"
            f"event: answer\ndata: {json.dumps(answer)}\n\n")
    page.context.route(app["url"] + "/api/ask/stream",
                       lambda route: route.fulfill(status=200, content_type="text/event-stream", body=body))
    reply = ask_widget(frame, "anything")
    final = reply.locator(".qa-final")
    expect(final).to_contain_text('<img src=x onerror="window.__pwned=2">')
    expect(final.locator("strong")).to_have_text("bold <b>b</b>")
    expect(final.locator("a.qa-cite")).to_have_text("[1]")
    expect(reply.locator(".qa-src-title")).to_have_text("<img src=x onerror=window.__pwned=5>")
    expect(reply.locator(".qa-src-file")).to_have_text("<svg onload=window.__pwned=4>.html")
    page.wait_for_timeout(300)
    assert f.evaluate("typeof window.__pwned") == "undefined"
    assert f.locator("#qa-log img, #qa-log script, #qa-log b, #qa-log i, #qa-log [onerror], #qa-log [onload]").count() == 0
    shot(page, "widget-xss.png")


def fulfill_with(response: dict):
    return lambda route: route.fulfill(**response)


def test_widget_explains_errors(app, hosts, context):
    page = context().new_page()
    frame = open_widget(page, hosts["host"])
    url = app["url"] + "/api/ask/stream"
    cases = [
        (dict(status=429, json={"error": "Too many questions; retry in 7 s."}, headers={"Retry-After": "7"}), "wait 7 s"),
        (dict(status=503, json={"error": "The assistant is busy; please retry in a few seconds."}, headers={"Retry-After": "5"}),
         "retry in a few seconds"),
        (dict(status=503, json={"error": "No index found in /srv/index: run qa index."}), "No index found"),
        (dict(status=400, json={"error": "The question is too long (2500 characters; at most 2000)."}), "too long"),
        (dict(status=200, content_type="text/event-stream",
              body='event: error\ndata: {"error": "The model failed.", "busy": false}\n\n'), "The model failed."),
        (dict(status=200, content_type="text/event-stream", body='event: token\ndata: {"text": "half"}\n\n'), "interrupted"),
    ]
    for response, message in cases:
        page.context.unroute(url)
        page.context.route(url, fulfill_with(response))
        reply = ask_widget(frame, "What share of the workforce are engineers?")
        expect(reply.locator(".qa-error")).to_contain_text(message)
        expect(reply.locator(".qa-retry")).to_be_visible()
    page.context.unroute(url)
    page.context.route(url, lambda route: route.abort())
    reply = ask_widget(frame, "What share of the workforce are engineers?")
    expect(reply.locator(".qa-error")).to_contain_text("could not be reached")
    # the failed questions were not added to the conversation
    with page.expect_request(lambda r: r.url == url) as req:
        reply.locator(".qa-retry").click()
    assert json.loads(req.value.post_data)["history"] == []
