"""The HTTP side: JSON and streaming API, the widget files, and the protections every route shares.

Routes: GET /api/health, POST /api/ask, POST /api/ask/stream (server-sent events), POST /api/feedback,
GET /widget.js (the embed script), GET /widget (the chat panel it frames), GET /doc (a cited document, the cited span
highlighted). app.py mounts the Gradio chat on "/"; of Gradio's own routes only those the page uses are served.
"""

from __future__ import annotations

import collections
import functools
import html
import json
import os
import queue
import re
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from .answer import interface_language, validate
from .config import Config
from .documents import Document, file_hash
from .documents import load as load_document
from .errors import DocumentError, InputError, QAError
from .service import Assistant

STATIC = Path(__file__).parent / "static"
T = TypeVar("T")


class Busy(QAError):
    """Too many questions are waiting for the model."""


class Gate:
    """One question at a time on the model, the others wait in arrival order, at most max_queue of them.

    The work itself runs on one dedicated thread: torch keeps per-thread pools and caches, so a model driven from a
    web server's many threads grows by hundreds of MB, and from one thread it stays flat.
    """

    def __init__(self, max_queue: int) -> None:
        self.max_queue = max_queue
        self._cond = threading.Condition()
        self._tickets: collections.deque[int] = collections.deque()
        self._next = 0
        self._busy = False
        self._model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qa-model")

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """Run fn on the model thread outside the queue (warm-up)."""
        return self._model_thread.submit(fn)

    def call(self, fn: Callable[[], T]) -> T:
        """fn() on the model thread, after the questions that came first (Busy if too many wait)."""
        with self:
            return self._model_thread.submit(fn).result()

    def stream(self, make: Callable[[], Iterable[T]]) -> Iterator[T]:
        """The items of make() produced on the model thread and yielded here as they come, queued like call()."""
        with self:
            items: queue.Queue = queue.Queue()
            stop = threading.Event()

            def work() -> None:
                try:
                    for item in make():
                        items.put((True, item))
                        if stop.is_set():  # the reader left (a closed connection): free the model
                            break
                    items.put((False, None))
                except BaseException as exc:  # noqa: BLE001 (re-raised in the reader's thread)
                    items.put((False, exc))

            done = self._model_thread.submit(work)
            try:
                while True:
                    more, value = items.get()
                    if not more:
                        if value is not None:
                            raise value
                        return
                    yield value
            finally:
                stop.set()
                done.result()

    def __enter__(self) -> "Gate":
        with self._cond:
            if len(self._tickets) >= self.max_queue + (0 if self._busy else 1):
                raise Busy("The assistant is busy; please retry in a few seconds.")
            ticket = self._next
            self._next += 1
            self._tickets.append(ticket)
            while self._busy or self._tickets[0] != ticket:
                self._cond.wait()
            self._tickets.popleft()
            self._busy = True
        return self

    def __exit__(self, *exc) -> None:
        with self._cond:
            self._busy = False
            self._cond.notify_all()
        trim_memory()

    @property
    def waiting(self) -> int:
        return len(self._tickets)


def limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives each thread its own malloc arena; with a thread pool serving requests, memory then creeps up."""
    if _LIBC is not None:
        _LIBC.mallopt(-8, arenas)  # -8 is M_ARENA_MAX


def trim_memory() -> None:
    """Give the heap's free pages back to the system after each answer (glibc), so memory stays flat under load."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


try:
    import ctypes

    _LIBC = ctypes.CDLL("libc.so.6")
    _LIBC.malloc_trim  # noqa: B018 (present on glibc only)
except (OSError, AttributeError):
    _LIBC = None


class RateLimiter:
    """At most `per_minute` questions per client in any 60-second window."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._hits: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str) -> float:
        """0 when allowed, else the seconds to wait."""
        now = time.monotonic()
        with self._lock:
            if len(self._hits) > 10_000:  # forget idle clients so memory stays flat
                self._hits = {k: v for k, v in self._hits.items() if v and now - v[-1] < 60}
            hits = self._hits.setdefault(client, collections.deque())
            while hits and now - hits[0] >= 60:
                hits.popleft()
            if len(hits) >= self.per_minute:
                return 60 - (now - hits[0])
            hits.append(now)
            return 0.0


class FeedbackStore:
    """One JSON line per rating, written whole or not at all; a rating with an "id" replaces the earlier one with that id."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / "feedback.jsonl"
        self._lock = threading.Lock()

    def add(self, record: dict) -> None:
        """Store a rating: appended, or (with an "id" already stored) in place of that answer's earlier rating."""
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:
            kept = self._without(record.get("id"))
            if kept is None:
                self._append(line)
            else:
                self._rewrite(kept + [line])

    def remove(self, answer_id: str) -> bool:
        """Withdraw the rating of one answer; False when there was none."""
        with self._lock:
            kept = self._without(answer_id)
            if kept is not None:
                self._rewrite(kept)
            return kept is not None

    def records(self) -> list[dict]:
        try:
            return [json.loads(line) for line in self.path.read_text("utf-8").splitlines() if line.strip()]
        except FileNotFoundError:
            return []

    def _without(self, answer_id: str | None) -> list[bytes] | None:
        """The stored lines except those of answer_id, or None when answer_id has none (nothing to replace)."""
        if not answer_id or not self.path.exists():
            return None
        lines = self.path.read_bytes().splitlines(keepends=True)
        kept = [line for line in lines if _record_id(line) != answer_id]
        return kept if len(kept) < len(lines) else None

    def _append(self, line: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        size = os.fstat(fd).st_size
        try:
            written = os.write(fd, line)
            if written != len(line):
                raise OSError(28, "short write")
            os.fsync(fd)
        except OSError:
            try:
                os.ftruncate(fd, size)  # take back a partial line (disk full)
            except OSError:
                pass
            raise
        finally:
            os.close(fd)

    def _rewrite(self, lines: list[bytes]) -> None:
        """Replace the file by a complete new copy (written beside it, then renamed): never half of one."""
        tmp = self.path.with_name(f"{self.path.name}.tmp-{os.getpid()}")
        data = b"".join(lines)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            if os.write(fd, data) != len(data):
                raise OSError(28, "short write")
            os.fsync(fd)
        except OSError:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        os.replace(tmp, self.path)


def _record_id(line: bytes) -> str | None:
    try:
        return json.loads(line).get("id")
    except (ValueError, AttributeError):
        return None


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def security_headers(frame_ancestors: str) -> dict[str, str]:
    return {
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Content-Security-Policy": f"frame-ancestors {frame_ancestors}",
    }


DOC_STYLE = """
body{margin:0;background:#f5f6f8;color:#111827;font:17px/1.6 system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif}
main{max-width:46rem;margin:0 auto;padding:1.5rem 1.25rem 50vh;background:#fff;min-height:100vh}
h1{font-size:1.4rem;line-height:1.3;margin:0 0 1rem}
.doc{white-space:pre-wrap;overflow-wrap:anywhere}
mark{background:#fde68a;color:inherit;padding:.1em 0;scroll-margin-top:30vh;outline:2px solid #b45309;outline-offset:1px}
.note{color:#4b5563;font-size:.9rem;margin:0 0 1rem}
"""
DOC_TEXT = {
    "en": {"note": "The highlighted passage is the one the answer cites.", "missing": "This document is not in the index.",
           "changed": "This document has changed since it was indexed; ask again once the index is updated.",
           "span": "The cited place must be two numbers within the document (start and end).",
           "unavailable": "The documents cannot be shown right now; please try again in a moment."},
    "fr": {"note": "Le passage surligné est celui que cite la réponse.", "missing": "Ce document ne fait pas partie de l'index.",
           "changed": "Ce document a changé depuis son indexation ; reposez la question une fois l'index mis à jour.",
           "span": "L'endroit cité doit être deux nombres dans les limites du document (début et fin).",
           "unavailable": "Les documents ne peuvent pas être affichés pour le moment ; réessayez dans un instant."},
}


@functools.lru_cache(maxsize=8)
def _parsed(path: Path, seeds_dir: Path, sha256: str) -> Document:
    """A document of the index, parsed once per version (sha256 is part of the key)."""
    return load_document(path, seeds_dir)


def document_page(cfg: Config, assistant: Assistant, query) -> tuple[int, str]:
    """(status, HTML): an indexed document (read inside seeds_dir) as escaped text, start:end highlighted and scrolled to."""
    lang = "fr" if query.get("lang") == "fr" else "en"
    t = DOC_TEXT[lang]

    def page(status: int, title: str, body: str, doc_lang: str = lang) -> tuple[int, str]:
        return status, (f'<!doctype html><html lang="{doc_lang}"><head><meta charset="utf-8">'
                        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{html.escape(title)}</title>'
                        f'<style>{DOC_STYLE}</style></head><body><main>{body}</main></body></html>')

    source = query.get("source", "")
    try:
        documents = assistant.searcher().index.manifest["documents"]
    except QAError:
        return page(503, t["unavailable"], f"<p>{html.escape(t['unavailable'])}</p>")
    seeds = Path(cfg.seeds_dir).resolve()
    path = (seeds / source).resolve()
    if source not in documents or not path.is_relative_to(seeds) or not path.is_file():
        return page(404, t["missing"], f"<p>{html.escape(t['missing'])}</p>")
    try:
        if file_hash(path.read_bytes()) != documents[source]["sha256"]:
            return page(409, t["changed"], f"<p>{html.escape(t['changed'])}</p>")
        doc = _parsed(path, seeds, documents[source]["sha256"])
    except (OSError, DocumentError):
        return page(404, t["missing"], f"<p>{html.escape(t['missing'])}</p>")
    start, end = query.get("start", ""), query.get("end", "")
    if not (start.isdigit() and end.isdigit() and int(start) <= int(end) <= len(doc.text)):
        return page(400, t["span"], f"<p>{html.escape(t['span'])}</p>")
    a, b = int(start), int(end)
    text = (f"{html.escape(doc.text[:a])}<mark id=\"cited\">{html.escape(doc.text[a:b])}</mark>"
            f"{html.escape(doc.text[b:])}")
    return page(200, doc.title, f'<h1>{html.escape(doc.title)}</h1><p class="note">{html.escape(t["note"])}</p>'
                                f'<div class="doc">{text}</div>', doc.lang)


LOOPBACK = {"localhost", "127.0.0.1", "::1"}


def host_name(host: str) -> str:
    """The name in a Host header, without port or IPv6 brackets, lowercased."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]")[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def served_hosts(cfg: Config) -> set[str] | None:
    """Host names the app answers to (None = any): a page on a rebound DNS name cannot reach a loopback-only app."""
    if cfg.trusted_hosts:
        return {host_name(h) for h in cfg.trusted_hosts} | LOOPBACK
    return LOOPBACK if host_name(cfg.host) in LOOPBACK else None


PAGE_GET = {"/", "/config", "/theme.css", "/favicon.ico", "/robots.txt", "/gradio_api/queue/data",
            "/widget", "/widget.js", "/widget-app.js", "/widget.css", "/doc"}
PAGE_GET_PREFIXES = ("/assets/", "/static/", "/gradio_api/heartbeat/")
PAGE_POST = {"/gradio_api/queue/join"}


def page_route(method: str, path: str) -> bool:
    """Whether a route outside /api/ is one the chat page or the widget uses; Gradio's others (its API, uploads, files) are not served."""
    if method in ("GET", "HEAD"):
        return path in PAGE_GET or path.startswith(PAGE_GET_PREFIXES)
    return method == "POST" and path in PAGE_POST


def create_api(cfg: Config, assistant: Assistant, app: FastAPI | None = None) -> FastAPI:
    """Add the API and widget routes (and their protections) to app (a new FastAPI app if None)."""
    app = app or FastAPI(title="qa", docs_url=None, redoc_url=None, openapi_url=None)
    gate = Gate(cfg.max_queue)
    limiter = RateLimiter(cfg.rate_limit_per_minute)
    feedback = FeedbackStore(cfg.data_dir)
    allowed = {o.rstrip("/") for o in cfg.allowed_origins}
    hosts = served_hosts(cfg)
    embedders = " ".join(["'self'", *sorted(allowed)])
    state = {"loading_error": None}
    app.state.qa = {"gate": gate, "assistant": assistant, "feedback": feedback, "state": state, "limiter": limiter}

    def load() -> None:
        try:
            assistant.warm_up()
        except QAError as exc:
            state["loading_error"] = str(exc)

    gate.submit(load)  # on the model thread, like every later use of the model

    def same_origin(request: Request, origin: str) -> bool:
        host = request.headers.get("host", "")
        return origin in (f"http://{host}", f"https://{host}")

    def origin_allowed(request: Request, origin: str) -> bool:
        """A browser always names its origin on cross-site calls (Origin, Sec-Fetch-Site); only the allowlist passes."""
        if origin:
            return origin in allowed or same_origin(request, origin)
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return True
        if request.headers.get("sec-fetch-site", "") in ("cross-site", "same-site"):
            return False  # a browser on another site that withheld its origin
        return cfg.allow_clients_without_origin

    @app.middleware("http")
    async def protect(request: Request, call_next):
        path = request.url.path
        origin = request.headers.get("origin", "").rstrip("/")
        is_api = path.startswith("/api/")
        length = request.headers.get("content-length")
        if hosts is not None and host_name(request.headers.get("host", "")) not in hosts:
            response = JSONResponse({"error": "This host name is not served here."}, status_code=400)
        elif not is_api and not page_route(request.method, path):
            response = JSONResponse({"error": "There is nothing to see at this address."}, status_code=404)
        elif is_api and not origin_allowed(request, origin):
            response = JSONResponse({"error": "This origin is not allowed to use the API."}, status_code=403)
        elif is_api and request.method == "OPTIONS":
            response = Response(status_code=204)
        elif length and (not length.isdigit() or int(length) > cfg.max_request_bytes):
            response = JSONResponse({"error": f"The request is larger than {cfg.max_request_bytes} bytes."}, status_code=413)
        elif request.method == "POST" and not is_api and length is None:
            response = JSONResponse({"error": "The request must state its length (Content-Length)."}, status_code=411)
        else:
            response = await call_next(request)
        frame = embedders if path == "/widget" else "'self'"
        for k, v in security_headers(frame).items():
            response.headers.setdefault(k, v)
        if is_api and origin and origin_allowed(request, origin):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = "Content-Type"
        return response

    async def read_json(request: Request) -> dict:
        body = b""
        async for part in request.stream():
            body += part
            if len(body) > cfg.max_request_bytes:
                raise InputError(f"The request is larger than {cfg.max_request_bytes} bytes.")
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise InputError("The request body must be JSON (UTF-8).") from None
        if not isinstance(data, dict):
            raise InputError('The request body must be a JSON object like {"question": "..."}.')
        return data

    async def read_question(request: Request) -> tuple[object, object, object]:
        """The request's question, history and interface language, checked (InputError otherwise); the pipeline
        normalises them again."""
        data = await read_json(request)
        question, history, lang = data.get("question"), data.get("history"), data.get("lang")
        validate(question, history, cfg)
        interface_language(lang)
        return question, history, lang

    def client_id(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def limited(request: Request) -> JSONResponse | None:
        wait = limiter.allow(client_id(request))
        if wait:
            return JSONResponse({"error": f"Too many questions; retry in {int(wait) + 1} s."}, status_code=429,
                                headers={"Retry-After": str(int(wait) + 1)})
        return None

    def not_ready() -> JSONResponse | None:
        if state["loading_error"]:
            return JSONResponse({"error": state["loading_error"]}, status_code=503)
        return None

    @app.get("/api/health")
    def health() -> JSONResponse:
        h = assistant.health()
        h["status"] = "error" if state["loading_error"] else ("ok" if h["index_loaded"] and h["model_loaded"] else "loading")
        h["error"] = state["loading_error"] or h.get("index_error")
        h["queue"] = gate.waiting
        return JSONResponse(h, status_code=200 if h["status"] == "ok" else 503)

    @app.post("/api/ask")
    async def ask(request: Request) -> JSONResponse:
        if (r := limited(request)) or (r := not_ready()):
            return r
        try:
            question, history, lang = await read_question(request)
            answer = await run_in_threadpool(gate.call, lambda: assistant.ask(question, history, lang))
        except Busy as exc:
            return JSONResponse({"error": str(exc)}, status_code=503, headers={"Retry-After": "5"})
        except InputError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        except QAError as exc:
            return JSONResponse({"error": str(exc)}, status_code=503)
        return JSONResponse(answer.to_dict())

    @app.post("/api/ask/stream")
    async def ask_stream(request: Request):
        if (r := limited(request)) or (r := not_ready()):
            return r
        try:
            question, history, lang = await read_question(request)
        except InputError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return StreamingResponse(_sse(gate, assistant, question, history, lang, cfg.stream_tokens), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @app.post("/api/feedback")
    async def add_feedback(request: Request) -> JSONResponse:
        if r := limited(request):
            return r
        try:
            data = await read_json(request)
            withdrawn = data.get("rating") == "none"  # {"id": ..., "rating": "none"} withdraws that answer's rating
            record = feedback_record({**data, "rating": "up", "question": "-", "answer": ""} if withdrawn else data)
            if withdrawn and "id" not in record:
                raise InputError("Withdrawing a rating needs the answer's id.")
        except InputError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        try:
            if withdrawn:
                return JSONResponse({"saved": True, "removed": feedback.remove(record["id"])})
            feedback.add(record)
        except OSError as exc:
            return JSONResponse({"error": f"The feedback could not be saved ({exc.strerror or exc})."}, status_code=507)
        return JSONResponse({"saved": True})

    @app.get("/widget.js")
    @app.get("/widget-app.js")
    @app.get("/widget.css")
    def widget_asset(request: Request) -> FileResponse:
        name = request.url.path.lstrip("/")  # only these three fixed names: nothing else of the disk is reachable
        kind = "text/css" if name.endswith(".css") else "text/javascript"
        return FileResponse(STATIC / name, media_type=kind, headers={"Cache-Control": "no-cache"})

    @app.get("/doc")
    def document(request: Request) -> Response:
        status, page = document_page(cfg, assistant, request.query_params)
        return Response(page, status_code=status, media_type="text/html; charset=utf-8", headers={
            "Cache-Control": "no-cache",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'",
        })

    @app.get("/widget")
    def widget_page() -> FileResponse:
        return FileResponse(STATIC / "widget.html", media_type="text/html", headers={
            "Cache-Control": "no-cache",
            "Content-Security-Policy": f"default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors {embedders}",
        })

    return app


def _sse(gate: Gate, assistant: Assistant, question, history, lang, tokens: bool) -> Iterator[bytes]:
    """The answer as server-sent events; token events only when `tokens` (the stream_tokens setting) is on."""

    def event(kind: str, data) -> bytes:
        return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode("utf-8")

    try:
        for e in gate.stream(lambda: assistant.stream(question, history, lang)):
            if e["type"] == "sources":
                yield event("sources", {"query": e["query"], "passages": e["passages"]})
            elif e["type"] == "token" and tokens:
                yield event("token", {"text": e["text"]})
            elif e["type"] == "answer":
                yield event("answer", e["answer"].to_dict())
    except QAError as exc:
        yield event("error", {"error": str(exc), "busy": isinstance(exc, Busy)})


RATINGS = {"up", "down"}
ANSWER_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")


def feedback_record(data: dict) -> dict:
    """A validated feedback record (question, answer, citations, rating, and the answer's id if given)."""
    answer_id = data.get("id")
    if answer_id is not None and not (isinstance(answer_id, str) and ANSWER_ID.fullmatch(answer_id)):
        raise InputError("The answer id must be 8 to 64 letters, digits, - or _.")
    rating = data.get("rating")
    if rating not in RATINGS:
        raise InputError('The rating must be "up" or "down".')
    question, answer = data.get("question"), data.get("answer")
    if not isinstance(question, str) or not isinstance(answer, str) or not question.strip():
        raise InputError("Feedback needs the question and the answer as strings.")
    citations = data.get("citations") or []
    if not isinstance(citations, list) or len(citations) > 50:
        raise InputError("The citations must be a list.")
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rating": rating, "question": question[:4000],
              "answer": answer[:8000], "citations": citations, "refused": bool(data.get("refused", False))}
    return {"id": answer_id, **record} if answer_id else record
