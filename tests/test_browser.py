"""Browser tests: the Gradio chat and the embeddable widget as visitors use them, at desktop and phone sizes.

The real app runs as one subprocess over an index of the seed document plus a small hostile one (markup in its
title and text); examples/host.html is served (its script src pointed at the app) from two other origins, one of
them in QA_ALLOWED_ORIGINS. Debian's Chromium is driven with Playwright; axe-core (npm, installed by .ci/run into
build/npm) audits accessibility. Screenshots land in artifacts/ (look at them after a UI change), and the time from
Enter to the question shown and to the first answer text, measured in the page, in artifacts/ui-latency.jsonl.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .conftest import free_port, wait_until_ready

CHROMIUM = os.environ.get("QA_CHROMIUM", "/usr/bin/chromium")
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed (pip install playwright)")
if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
    pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set QA_CHROMIUM)", allow_module_level=True)
expect = sync_api.expect

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
HOST_PAGE = ROOT / "examples" / "host.html"
SEED = ROOT / "seeds" / "optics-photonics-provence.txt"
AXE = Path(os.environ.get("QA_AXE", ROOT / "build" / "npm" / "node_modules" / "axe-core" / "axe.min.js"))
PLACEHOLDER = "http://127.0.0.1:7860"  # the app address written in examples/host.html
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SIZES = {"desktop": (1280, 900), "phone": (390, 844)}
QUESTION = "What share of the workforce are engineers?"
CITED = "Engineers make up 80% of the workforce"
SOURCE = "optics-photonics-provence.txt"
DOC_TITLE = "The optics and photonics industry is witnessing remarkable growth in France"  # its first sentence
FOLLOW_UP = "Which competitiveness cluster supports optics in Provence?"
PAYLOAD = '<img src=x onerror="window.__pwned=1">'
UNANSWERABLE = "What does a ticket to the Moon cost?"
# a document whose title and text hold markup: it must show as typed, never as an image, a link or bold text
HOSTILE = """# Staff canteen <b>notice</b>

The staff canteen of the cluster serves bouillabaisse every Friday ![](https://evil.example/pixel.png) at noon.

Tables are booked at [login](https://evil.example/login) before ten o'clock in the morning.
"""
HOSTILE_QUESTION = "Where are canteen tables booked?"
ANSWER_TIMEOUT = 120_000  # ms: an answer takes 1-3 s on 2 cores, far more when the machine is busy
START_TIMEOUT = 180  # s: loading the models


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
def corpus(tmp_path_factory) -> tuple[Path, Path]:
    """(seeds, index): the seed document and the hostile one, indexed."""
    from qa import index
    from qa.config import Config

    base = tmp_path_factory.mktemp("browser-corpus")
    seeds = base / "seeds"
    seeds.mkdir()
    shutil.copy(SEED, seeds / SEED.name)
    (seeds / "canteen.md").write_text(HOSTILE, "utf-8")
    index.build(Config.load(seeds_dir=seeds, index_dir=base / "index"), log=lambda m: None)
    return seeds, base / "index"


@pytest.fixture(scope="module")
def app(corpus, ports, tmp_path_factory):
    """The real app (python app.py, this checkout's code) over the corpus; the "host" origin may embed it, the "other" may not."""
    base = tmp_path_factory.mktemp("browser-app")
    # the environment the rest of the suite sees (QA_CACHE_DIR, qa.toml...), but GRADIO_SERVER_* would override QA_PORT
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADIO_SERVER_")}
    env.update({
        "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "QA_SEEDS_DIR": str(corpus[0]),
        "QA_INDEX_DIR": str(corpus[1]),
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
    def healthy() -> bool:
        status, _, body = get(url + "/api/health")
        if status == 503 and json.loads(body or b"{}").get("status") == "error":
            pytest.fail(f"the app could not load: {body.decode()}\n{tail(log)}")
        return status == 200

    try:
        wait_until_ready(healthy, START_TIMEOUT, "the app", proc, log)
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
            wait_until_ready(lambda url=url: get(url)[0] == 200, 20, f"the static server for {url}", every=0.1)
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

    def make(width: int = 1280, height: int = 900, locale: str = "en-US"):
        ctx = browser.new_context(viewport={"width": width, "height": height}, locale=locale)
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


def feedback_records(app, answer_id: str | None = None, question: str | None = None) -> list[dict]:
    path = app["data_dir"] / "feedback.jsonl"
    records = [json.loads(line) for line in path.read_text("utf-8").splitlines()] if path.exists() else []
    return [r for r in records if (answer_id is None or r.get("id") == answer_id) and (question is None or r["question"] == question)]


def audit(target, include: str | None = None) -> list[str]:
    """The serious and critical axe-core violations in a page or frame (only inside `include` when given)."""
    target.evaluate(AXE.read_text("utf-8"))  # evaluated by the browser's debugger: not subject to the page's CSP
    result = target.evaluate("sel => axe.run(sel ? {include: [[sel]]} : document, {resultTypes: ['violations']})", include)
    return [f"{v['impact']} {v['id']}: {v['help']} at {[n['target'] for n in v['nodes'][:3]]}"
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


def need_axe() -> None:
    if not AXE.is_file():
        pytest.skip(f"axe-core not found at {AXE} (npm install --prefix build/npm axe-core, as .ci/run does)")


# In-page probe: times from Enter to the question shown and to the first answer text (performance.now), and every
# state the answer bubble went through (a status placeholder, a draft, the final answer).
PROBE = """
([surface, box]) => {
  const sel = surface === "chat"
    ? {user: '#qa-chat [data-testid="user"]', bot: '#qa-chat [data-testid="bot"]', status: '.qa-status', draft: '.qa-draft', final: '.qa-answer'}
    : {user: '.qa-user .qa-bubble', bot: '.qa-assistant .qa-bubble', status: '.qa-pending', draft: '.qa-draft', final: '.qa-final'};
  const probe = window.__qaProbe = {question: null, times: {}, seen: [], finals: 0};
  const kind = el => (el.matches(sel.status) || el.querySelector(sel.status)) ? "status"
    : (el.matches(sel.final) || el.querySelector(sel.final)) ? "final"
    : (el.matches(sel.draft) || el.querySelector(sel.draft)) ? "draft" : "other";
  const shownText = el => { const c = el.cloneNode(true); c.querySelectorAll('.qa-visually-hidden').forEach(h => h.remove()); return c.textContent.trim(); };
  probe.arm = q => { probe.question = q; probe.times = {}; probe.seen = []; probe.finals = document.querySelectorAll(sel.final).length; };
  document.addEventListener("keydown", e => {
    if (e.key === "Enter" && probe.question !== null && probe.times.enter === undefined && e.target.closest(box)) probe.times.enter = performance.now();
  }, true);
  new MutationObserver(() => {
    const t = probe.times;
    if (t.enter === undefined) return;
    if (t.shown === undefined && [...document.querySelectorAll(sel.user)].some(u => shownText(u) === probe.question)) t.shown = performance.now();
    if (t.shown === undefined) return;
    const bots = document.querySelectorAll(sel.bot);
    const last = bots[bots.length - 1];
    if (!last) return;
    const state = {kind: kind(last), text: shownText(last)};
    const prev = probe.seen[probe.seen.length - 1];
    if (!prev || prev.kind !== state.kind || prev.text !== state.text) probe.seen.push(state);
    if (t.answer === undefined && (state.kind === "draft" || document.querySelectorAll(sel.final).length > probe.finals)) t.answer = performance.now();
  }).observe(document.documentElement, {subtree: true, childList: true, characterData: true});
}
"""


def probe_result(target, surface: str, size: str) -> dict:
    """The probe's figures for the last question, appended to artifacts/ui-latency.jsonl; the states must never contradict the answer."""
    p = target.evaluate("() => ({times: window.__qaProbe.times, seen: window.__qaProbe.seen})")
    t, seen = p["times"], p["seen"]
    final = [s for s in seen if s["kind"] == "final"]
    assert final, f"no final answer was seen: {seen}"
    for s in seen:  # a placeholder, or text that stays: nothing shown before the answer can be contradicted by it
        assert s["kind"] in ("status", "final") or (s["kind"] == "draft" and final[-1]["text"].startswith(s["text"].rstrip(" …"))), seen
    row = {"surface": surface, "size": size, "enter_to_question_ms": round(t["shown"] - t["enter"], 1),
           "enter_to_first_answer_text_ms": round(t["answer"] - t["enter"], 1), "load": os.getloadavg()[0]}
    ARTIFACTS.mkdir(exist_ok=True)
    with open(ARTIFACTS / "ui-latency.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
    print(f"\n{surface} {size}: Enter -> question shown {row['enter_to_question_ms']} ms, "
          f"-> first answer text {row['enter_to_first_answer_text_ms']} ms (load {row['load']:.1f})")
    return row


# --- the Gradio chat on "/" ------------------------------------------------------------------------------------

def chat_page(context, app, size: str, locale: str = "en-US"):
    page = context(*SIZES[size], locale=locale).new_page()
    page.goto(app["url"] + "/")
    expect(page.locator("#qa-input textarea")).to_be_visible()
    page.wait_for_function("() => !!window.qaChat")  # the page script has run (an Enter before it only gets a "still loading" notice)
    page.evaluate(PROBE, ["chat", "#qa-input"])
    return page


def ask_chat(page, question: str, press: bool = True):
    """Type and send a question; the locator of its answer's bubble (once final)."""
    bots = page.locator("#qa-chat [data-testid='bot']")
    before = page.locator("#qa-chat .qa-answer").count()
    page.evaluate("q => window.__qaProbe.arm(q)", question)
    box = page.locator("#qa-input textarea")
    box.fill(question)
    if press:
        box.press("Enter")
    expect(page.locator("#qa-chat .qa-answer")).to_have_count(before + 1, timeout=ANSWER_TIMEOUT)
    return bots.nth(bots.count() - 1)  # this answer's bubble, even after more questions


def entry_of(page, answer_index: int, n: int):
    """The source entry holding citation n of the answer that is bubble number answer_index (0-based) of the chat."""
    aid = page.locator("#qa-chat [data-testid='bot']").nth(answer_index).locator("a.qa-cite").first.get_attribute("href").split("-")[2]
    return page.locator(f"#qa-sources .qa-group[data-aid='{aid}'] .qa-entry[data-ns~='{n}']")


@pytest.mark.parametrize("size", SIZES)
def test_chat_page(app, context, size):
    """Points 1-4, 6, 7 and 9 on the chat page: the question shows at once, no draft is contradicted, each answer keeps
    its own sources, the source panel, HTML shown as typed, one changeable vote per answer, no Gradio API."""
    page = chat_page(context, app, size)
    requests = []
    page.on("request", lambda r: requests.append((r.method, r.url)))

    # 1, 2: the question shows at once; the answer bubble shows a status, then the final answer, never a raw draft
    first = ask_chat(page, QUESTION)
    probe_result(page, "chat", size)
    expect(first).to_contain_text("80%")
    expect(first.locator("a.qa-cite", has_text="[1]")).to_be_visible()

    # 4: the document's own title, the cited sentence in context, one entry per passage, no developer metadata
    panel = page.locator("#qa-sources")
    entry = entry_of(page, 0, 1)
    expect(entry.locator(".qa-doc")).to_have_text(DOC_TITLE)
    expect(entry.locator("mark", has_text=CITED)).to_be_visible()
    quote = entry.locator(".qa-quote").inner_text()
    assert len(quote) > len(CITED) + 40 and len(quote) < 1200, quote  # a little context, not the whole passage
    text = panel.inner_text()
    assert SOURCE not in text and "characters" not in text and ":1:" not in text, text
    quotes = panel.locator(".qa-entry .qa-quote").all_inner_texts()
    assert len(quotes) == len(set(quotes)), quotes  # [1] and [2] of one passage share one entry
    for n in first.locator("a.qa-cite").all_inner_texts():
        expect(entry_of(page, 0, int(n.strip("[]")))).to_have_count(1)
    # the copy button copies the answer as shown, not its HTML
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=app["url"])
    page.locator("#qa-chat .message-buttons-left").first.locator("button[aria-label='Copy message']").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith(first.inner_text().strip()[:30]) and "<" not in copied and "[1]" in copied, copied

    # 1 under load: while the server is not reached (its queue held here), the question and a status already show
    held = []
    page.route("**/gradio_api/queue/join*", lambda route: held.append(route))
    page.evaluate("q => window.__qaProbe.arm(q)", FOLLOW_UP)
    page.locator("#qa-input textarea").fill(FOLLOW_UP)
    page.locator("#qa-input textarea").press("Enter")
    expect(page.locator("#qa-chat [data-testid='user']").last).to_have_text(FOLLOW_UP)
    expect(page.locator("#qa-chat [data-testid='bot']").last.locator(".qa-status")).to_contain_text("Searching the documents")
    expect(page.locator("#qa-input textarea")).to_have_value("")
    shot(page, f"chat-{size}-waiting.png")
    expect(page.get_by_text(re.compile(r"processing \|"))).to_have_count(0)  # no Gradio overlay over the chat
    for route in held:
        route.continue_()
    page.unroute("**/gradio_api/queue/join*")
    expect(page.locator("#qa-chat .qa-answer")).to_have_count(2, timeout=ANSWER_TIMEOUT)
    expect(page.locator("#qa-chat [data-testid='bot']").nth(1).locator(".qa-answer")).not_to_be_empty()
    shot(page, f"chat-{size}.png", full_page=True)

    # 3: [1] of the FIRST answer still opens the first answer's source, visibly (and with a way back on a phone)
    first.locator("a.qa-cite", has_text="[1]").click()
    entry = entry_of(page, 0, 1)
    expect(entry).to_have_class(re.compile(r"\bqa-current\b"))
    expect(entry.locator("mark.qa-current")).to_contain_text(CITED)
    expect(entry).to_be_in_viewport()
    assert entry.evaluate("e => getComputedStyle(e).outlineStyle") != "none"  # visible feedback on a click
    expect(page.locator("#qa-sources .qa-current mark, #qa-sources .qa-entry.qa-current")).not_to_have_count(0)
    back = entry.locator(".qa-back")
    expect(back).to_be_visible()
    shot(page, f"chat-{size}-source.png")
    back.click()
    expect(first.locator("a.qa-cite", has_text="[1]")).to_be_in_viewport()
    expect(first.locator("a.qa-cite", has_text="[1]")).to_be_focused()

    # 6: HTML typed in a question is shown as typed; 3: after an unanswerable question older markers still work
    third = ask_chat(page, f"{PAYLOAD} {UNANSWERABLE}")
    expect(page.locator("#qa-chat [data-testid='user']").last).to_have_text(f"{PAYLOAD} {UNANSWERABLE}")
    assert page.locator("#qa-chat img, #qa-sources img").count() == 0
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert not [u for _, u in requests if u.endswith("/x")], "the typed <img> was fetched"
    expect(third.locator(".qa-answer")).not_to_be_empty()
    first.locator("a.qa-cite", has_text="[1]").click()
    expect(entry_of(page, 0, 1)).to_have_class(re.compile(r"\bqa-current\b"))
    expect(entry_of(page, 0, 1).locator("mark.qa-current")).to_contain_text(CITED)
    if third.locator("a.qa-cite").count():  # a refusal that keeps its closest passage shows it too
        third.locator("a.qa-cite").first.click()
        expect(page.locator("#qa-sources .qa-entry.qa-current")).to_have_count(1)

    # 4: the whole document opens at the cited place
    entry = entry_of(page, 0, 1)
    with page.context.expect_page() as opened:
        entry.locator("a.qa-open").click()
    doc = opened.value
    mark = doc.locator("mark#cited")
    expect(mark).to_contain_text(CITED)
    expect(doc.locator("h1")).to_have_text(DOC_TITLE)
    expect(mark).to_be_in_viewport()
    shot(doc, f"chat-{size}-document.png")
    doc.close()

    # 7: one vote per answer, acknowledged, changeable: like then dislike leaves one record, the latest; again withdraws it
    buttons = page.locator("#qa-chat .message-buttons-left").first  # under the first answer
    like, dislike = buttons.locator("button[aria-label^='Like']"), buttons.locator("button[aria-label^='Dislike']")
    like.click()
    expect(page.locator("[data-testid='toast-text']").last).to_have_text("Thank you! Your rating is saved: helpful.")
    deadline = time.monotonic() + 30
    while not feedback_records(app, question=QUESTION) and time.monotonic() < deadline:
        time.sleep(0.2)
    records = [r for r in feedback_records(app, question=QUESTION) if r.get("id")]
    assert len(records) == 1 and records[0]["rating"] == "up", records
    answer_id = records[0]["id"]
    dislike.click()
    expect(page.locator("[data-testid='toast-text']").last).to_have_text("Thank you! Your rating is saved: not helpful.")
    page.wait_for_timeout(300)
    records = feedback_records(app, answer_id)
    assert len(records) == 1 and records[0]["rating"] == "down" and records[0]["citations"], records
    dislike.click()
    expect(page.locator("[data-testid='toast-text']").last).to_have_text("Your rating is withdrawn.")
    page.wait_for_timeout(300)
    assert feedback_records(app, answer_id) == []

    # 9: the page reaches the model only through Gradio's queue, and no other Gradio API answers
    posts = {u.split("?")[0].replace(app["url"], "") for m, u in requests if m == "POST"}
    assert posts == {"/gradio_api/queue/join"}, posts
    statuses = page.evaluate("""async () => Promise.all([
        fetch('/gradio_api/info').then(r => r.status), fetch('/gradio_api/openapi.json').then(r => r.status),
        fetch('/gradio_api/call/respond', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{"data": ["q"]}'}).then(r => r.status),
        fetch('/gradio_api/run/respond', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{"data": ["q"]}'}).then(r => r.status),
        fetch('/gradio_api/upload', {method: 'POST', body: new FormData()}).then(r => r.status)])""")
    assert statuses == [404] * 5, statuses
    expect(page.get_by_text("Use via API")).to_have_count(0)
    if size == "phone":
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390 + 1, f"the page scrolls sideways on a phone ({width} px wide)"


@pytest.mark.parametrize("size", SIZES)
def test_chat_page_in_french(app, context, size):
    """Point 5: French labels and messages; an empty question adds nothing; a too-long one keeps what was typed."""
    page = chat_page(context, app, size, locale="fr-FR")
    box = page.locator("#qa-input textarea")
    expect(box).to_have_attribute("placeholder", "Posez une question sur les documents…")
    expect(page.locator("#qa-title")).to_contain_text("Optique & photonique en Provence")
    expect(page.locator("#qa-chat [role='log']")).to_have_attribute("aria-label", "Conversation")
    assert "Chatbot" not in page.locator("body").inner_text()
    labels = page.locator("#qa-chat [aria-label]").evaluate_all("els => els.map(e => e.getAttribute('aria-label'))")
    assert not [a for a in labels if "Chatbot" in a or "chatbot" in a], labels
    messages = page.locator("#qa-chat [data-testid='user'], #qa-chat [data-testid='bot']")
    alert = page.locator("#qa-notice [role='alert']")
    rounds = page.evaluate("window.qaChat.rounds()")
    box.fill("   ")
    box.press("Enter")
    expect(alert).to_have_text("La question est vide.")
    page.wait_for_function("n => window.qaChat.rounds() > n", arg=rounds)  # and once the server has been asked too
    expect(alert).to_have_text("La question est vide.")
    expect(messages).to_have_count(0)
    long = "Quelle part des effectifs est constituée d'ingénieurs ? " * 40
    box.fill(long)
    box.press("Enter")
    expect(alert).to_contain_text("La question est trop longue")
    page.wait_for_function("n => window.qaChat.rounds() > n + 1", arg=rounds)
    expect(alert).to_contain_text("2000 au plus")
    expect(box).to_have_value(long)
    expect(messages).to_have_count(0)
    # a name typed alone hardly says its language: the interface's decides (the letters of "OPTITEC" lean French too)
    reply = ask_chat(page, "Airbus")
    expect(reply).to_contain_text("D'après les documents")
    shot(page, f"chat-{size}-fr.png")


def test_chat_page_keeps_a_question_sent_before_its_script_has_run(app, context):
    """Enter pressed before Gradio has run the page's script (a slow host) keeps the question in the box with a notice."""
    page = chat_page(context, app, "desktop")
    page.evaluate("() => { window.__qaSaved = window.qaChat; delete window.qaChat; }")  # as before the script has run
    box = page.locator("#qa-input textarea")
    box.fill(QUESTION)
    box.press("Enter")
    expect(page.locator("#qa-notice")).to_contain_text("still loading")
    expect(box).to_have_value(QUESTION)
    page.wait_for_function("() => window.qaEarly === 1")  # that round is over
    shot(page, "chat-desktop-early-enter.png")
    expect(page.locator("#qa-chat [data-testid='user']")).to_have_count(0)
    page.evaluate("() => { window.qaChat = window.__qaSaved; }")
    box.press("Enter")  # once the script is there, the same question is asked as usual
    expect(page.locator("#qa-chat .qa-answer")).to_have_count(1, timeout=ANSWER_TIMEOUT)
    expect(page.locator("#qa-notice")).to_have_text("")


@pytest.mark.parametrize("size", SIZES)
def test_chat_page_shows_document_markup_as_text(app, context, size):
    """Point 6: a document's markdown and HTML (a link, an image, <b>) show as text, never live."""
    page = chat_page(context, app, size)
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    answer = ask_chat(page, HOSTILE_QUESTION)
    expect(answer).to_contain_text("[login](https://evil.example/login)")
    expect(page.locator("#qa-sources .qa-doc", has_text="Staff canteen <b>notice</b>").first).to_be_visible()
    live = "#qa-chat img, #qa-chat b, #qa-chat a[href*='evil'], #qa-sources img, #qa-sources b, #qa-sources a[href*='evil']"
    assert page.locator(live).count() == 0
    assert not [u for u in requests if "evil.example" in u]
    shot(page, f"chat-{size}-markup.png", full_page=True)


@pytest.mark.parametrize("size", SIZES)
def test_chat_page_by_keyboard_and_audit(app, context, size):
    """Point 10 on the chat page: ask, read a source and come back with the keyboard only; axe finds nothing serious."""
    page = chat_page(context, app, size)
    for _ in range(30):
        if page.evaluate("document.activeElement.closest('#qa-input') !== null"):
            break
        page.keyboard.press("Tab")
    page.evaluate("q => window.__qaProbe.arm(q)", QUESTION)
    page.keyboard.type(QUESTION)
    page.keyboard.press("Enter")
    expect(page.locator("#qa-chat .qa-answer")).to_have_count(1, timeout=ANSWER_TIMEOUT)
    for _ in range(30):
        if page.evaluate("document.activeElement.matches('a.qa-cite')"):
            break
        page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.matches('a.qa-cite')"), "no marker reached with Shift+Tab"
    page.keyboard.press("Enter")
    expect(page.locator("#qa-sources .qa-entry.qa-current")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator("#qa-sources .qa-entry.qa-current .qa-back")).to_be_focused()
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.matches('a.qa-cite')"), "Back to the answer did not return to the marker"
    shot(page, f"chat-{size}-keyboard.png")
    need_axe()
    problems = audit(page)
    assert not problems, "\n".join(problems)


# --- the widget on an allowed site -----------------------------------------------------------------------------

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


@pytest.mark.parametrize("size", SIZES)
def test_widget_on_allowed_origin(app, hosts, context, size):
    """The widget on an allowed site: points 1-4 and 7 (question at once, no contradicted draft, each answer's own
    sources with title, context and the document link, a changeable vote), full screen on a phone."""
    page = context(*SIZES[size]).new_page()
    page.goto(hosts["host"])
    launcher = page.locator("qa-chat-widget .launcher")
    expect(launcher).to_be_visible()
    # the host's CSS (button {border: 4px dashed red}) does not reach into the widget's shadow root
    assert launcher.evaluate("b => getComputedStyle(b).borderTopStyle") == "none"
    frame = open_widget(page, hosts["host"])
    if size == "phone":
        box = page.locator("qa-chat-widget .panel").bounding_box()
        assert box["width"] == 390 and box["height"] == 844, box
    expect(frame.locator(".qa-assistant").first).to_contain_text("Ask me about the optics")  # data-greeting
    inner = widget_frame(page)
    inner.evaluate(PROBE, ["widget", "#qa-question"])
    inner.evaluate("q => window.__qaProbe.arm(q)", QUESTION)
    reply = ask_widget(frame, QUESTION)
    probe_result(inner, "widget", size)
    final = reply.locator(".qa-final")
    expect(final).to_contain_text("80%")
    cite = final.locator("a.qa-cite", has_text="[1]")
    expect(cite).to_be_visible()

    # 4: the document's own title (no file name), one entry per passage, the cited sentence in context, a document link
    expect(reply.locator(".qa-src-title").first).to_have_text(DOC_TITLE)
    assert SOURCE not in reply.locator(".qa-sources").inner_text()
    quotes = reply.locator(".qa-src-text").all_text_contents()
    assert len(quotes) == len(set(quotes)), quotes
    cite.click()  # reveals the cited passage
    opened = reply.locator("details.qa-source[open]")
    expect(opened.locator("mark.qa-current")).to_contain_text(CITED)
    expect(opened.locator(".qa-src-text")).to_be_in_viewport()
    link = opened.locator("a.qa-src-open")
    expect(link).to_have_attribute("href", re.compile(r"/doc\?source=optics-photonics-provence\.txt&start=\d+&end=\d+"))
    with page.context.expect_page() as popup:
        link.click()
    expect(popup.value.locator("mark#cited")).to_contain_text(CITED)
    popup.value.close()

    # 7: one vote per answer, changeable and acknowledged
    reply.locator(".qa-rate-up").click()
    expect(reply.locator(".qa-feedback-note")).to_have_text("Thanks for your feedback.")
    expect(reply.locator(".qa-rate-up")).to_have_attribute("aria-pressed", "true")
    up = [r for r in feedback_records(app, question=QUESTION) if r.get("id")]
    answer_id = up[-1]["id"]
    assert up[-1]["rating"] == "up" and up[-1]["citations"]
    reply.locator(".qa-rate-down").click()
    expect(reply.locator(".qa-rate-down")).to_have_attribute("aria-pressed", "true")
    expect(reply.locator(".qa-rate-up")).to_have_attribute("aria-pressed", "false")
    records = feedback_records(app, answer_id)
    assert len(records) == 1 and records[0]["rating"] == "down", records
    shot(page, f"widget-{size}.png")

    # a follow-up carries the conversation; 3: the first answer's markers still open the first answer's sources
    with page.expect_request(lambda r: r.url.endswith("/api/ask/stream")) as req:
        follow = ask_widget(frame, "Which cluster fosters this collaboration?")
    sent = json.loads(req.value.post_data)
    assert sent["lang"] == "en"  # the widget's data-lang: the language a name typed alone is answered in
    assert [t["role"] for t in sent["history"]] == ["user", "assistant"]
    assert sent["history"][0]["content"] == QUESTION and "80%" in sent["history"][1]["content"]
    expect(follow.locator(".qa-final")).to_contain_text("OPTITEC")
    reply.locator(".qa-final a.qa-cite", has_text="[1]").click()
    expect(reply.locator("details.qa-source[open] mark.qa-current")).to_contain_text(CITED)
    expect(follow.locator("details.qa-source[open]")).to_have_count(0)
    if size == "phone":
        width = inner.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the chat scrolls sideways on a phone ({width} px wide)"
    shot(page, f"widget-{size}-sources.png")

    # the allowed site may call the API from the browser too
    status = page.evaluate(f"fetch('{app['url']}/api/health').then(r => r.status, e => String(e))")
    assert status == 200

    # Escape (focus in the chat) closes the panel and gives the focus back to the button
    frame.locator("#qa-question").press("Escape")
    expect(page.locator("qa-chat-widget .panel")).to_be_hidden()
    expect(launcher).to_have_attribute("aria-expanded", "false")


@pytest.mark.parametrize("size", SIZES)
def test_widget_by_keyboard_and_audit(app, hosts, context, size):
    """Point 10 in the widget: open, ask, read a source and close with the keyboard only; axe finds nothing serious."""
    page = context(*SIZES[size]).new_page()
    page.goto(hosts["host"])
    launcher = page.locator("qa-chat-widget .launcher")
    expect(launcher).to_be_visible()
    for _ in range(40):
        if page.evaluate("document.activeElement && document.activeElement.shadowRoot && "
                         "document.activeElement.shadowRoot.activeElement === document.activeElement.shadowRoot.querySelector('.launcher')"):
            break
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.locator("qa-chat-widget .panel")).to_be_visible()
    frame = page.frame_locator("qa-chat-widget iframe")
    expect(frame.locator("#qa-question")).to_be_focused()
    page.keyboard.type(QUESTION)
    page.keyboard.press("Enter")
    expect(frame.locator(".qa-final")).to_have_count(1, timeout=ANSWER_TIMEOUT)
    inner = widget_frame(page)
    for _ in range(30):
        if inner.evaluate("document.activeElement.matches('a.qa-cite')"):
            break
        page.keyboard.press("Shift+Tab")
    assert inner.evaluate("document.activeElement.matches('a.qa-cite')"), "no marker reached with Shift+Tab"
    page.keyboard.press("Enter")
    expect(frame.locator("details.qa-source[open] summary")).to_be_focused()
    expect(frame.locator("details.qa-source[open] .qa-src-text")).to_be_visible()
    shot(page, f"widget-{size}-keyboard.png")
    need_axe()
    problems = audit(inner) + audit(page, "qa-chat-widget")
    assert not problems, "\n".join(problems)
    page.keyboard.press("Escape")
    expect(page.locator("qa-chat-widget .panel")).to_be_hidden()
    assert page.evaluate("document.activeElement.shadowRoot.activeElement.classList.contains('launcher')")


# --- the widget on a site that is not allowed ------------------------------------------------------------------

@pytest.mark.parametrize("size", SIZES)
def test_widget_refused_on_other_origin(app, hosts, context, size):
    """Point 8: on a site missing from the allowed origins visitors see nothing; the console tells the site's owner why."""
    other = hosts["other"].rsplit("/", 1)[0]
    page = context(*SIZES[size]).new_page()
    messages = []
    page.on("console", lambda m: messages.append((m.type, m.text)))
    page.goto(hosts["other"])
    expect(page.locator("qa-chat-widget")).to_have_count(0, timeout=30_000)  # removed once the frame is refused
    explained = [text for kind, text in messages if kind == "error" and "qa widget" in text]
    assert explained and "QA_ALLOWED_ORIGINS" in explained[0] and other in explained[0], messages
    expect(page.locator("qa-chat-widget .launcher")).to_have_count(0)
    page.evaluate("window.QAWidget.open()")  # the page's own API opens nothing either
    expect(page.locator("qa-chat-widget")).to_have_count(0)
    for f in page.frames[1:]:
        assert not f.url.startswith(app["url"] + "/widget"), f"the chat loaded in a refused site: {f.url}"
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
    shot(page, f"widget-{size}-refused.png")


# --- injection and errors in the widget --------------------------------------------------------------------------

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
                             "text": "<script>window.__pwned=6</script>", "passage": "<i>p</i> ![](https://evil.example/x.png) [login](https://evil.example)",
                             "passage_start": 0}]}
    body = (f"event: sources\ndata: {json.dumps({'query': 'q', 'passages': []})}\n\n"
            f"event: token\ndata: {json.dumps({'text': 'See <img src=x onerror=window.__pwned=7>'})}\n\n"
            f"event: answer\ndata: {json.dumps(answer)}\n\n")
    page.context.route(app["url"] + "/api/ask/stream",
                       lambda route: route.fulfill(status=200, content_type="text/event-stream", body=body))
    reply = ask_widget(frame, "anything")
    final = reply.locator(".qa-final")
    expect(final).to_contain_text('<img src=x onerror="window.__pwned=2">')
    expect(final.locator("strong")).to_have_text("bold <b>b</b>")
    expect(final.locator("a.qa-cite")).to_have_text("[1]")
    expect(reply.locator(".qa-src-title")).to_have_text("<img src=x onerror=window.__pwned=5>")
    expect(reply.locator(".qa-src-text")).to_contain_text("![](https://evil.example/x.png) [login](https://evil.example)")
    page.wait_for_timeout(300)
    assert f.evaluate("typeof window.__pwned") == "undefined"
    assert f.locator("#qa-log img, #qa-log script, #qa-log b, #qa-log i, #qa-log [onerror], #qa-log [onload], "
                     "#qa-log a[href*='evil']").count() == 0
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
