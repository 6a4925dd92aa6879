"""The web app: the Gradio chat on "/", the HTTP API on /api/, the embeddable widget on /widget.js.

Run with `python app.py` (or `make run`). Host and port come from qa.toml / QA_HOST, QA_PORT, or
GRADIO_SERVER_NAME and GRADIO_SERVER_PORT.

The chat shows everything as plain text: questions, answers and document text are HTML-escaped here and the
Chatbot renders no Markdown; only the answer's **bold** phrase and its markers [n] become markup. Each answer keeps
its own sources in the panel (markers point at "qa-src-<answer>-<n>"); qa/static/chat.js shows the question at once
(before the server is reached), checks it, and moves between markers and sources.
"""

from __future__ import annotations

import html
import json
import re
import uuid
from pathlib import Path
from urllib.parse import urlencode

import gradio as gr

from qa.answer import validate
from qa.config import Config
from qa.errors import InputError, QAError
from qa.server import Busy, create_api, limit_malloc_arenas
from qa.service import Assistant

STATIC = Path(__file__).resolve().parent / "qa" / "static"
TEXT = gr.I18n(
    en={"title": "# Optics & Photonics in Provence: cited answers", "placeholder": "Ask a question about the documents…",
        "sources": "## Sources", "clear": "Clear conversation", "examples": "Examples", "chat": "Conversation",
        "question": "Your question", "intro": "Answers quote the indexed documents; every marker [n] opens its source."},
    fr={"title": "# Optique & photonique en Provence : réponses sourcées", "placeholder": "Posez une question sur les documents…",
        "sources": "## Sources", "clear": "Effacer la conversation", "examples": "Exemples", "chat": "Conversation",
        "question": "Votre question", "intro": "Les réponses citent les documents indexés ; chaque renvoi [n] ouvre sa source."},
)
MESSAGES = {
    "en": {
        "loading": "The model is still loading; please ask again in a few seconds.",
        "busy": "Many people are asking right now; please retry in a few seconds.",
        "rate": "You have asked many questions in a short time; please wait {s} s and try again.",
        "empty": "The question is empty.",
        "too_long": "The question is too long ({n} characters; at most {max}).",
        "wait": "Please wait for the answer to the previous question.",
        "page_loading": "The page is still loading; press Enter again in a moment.",
        "searching": "Searching the documents…",
        "writing": "Writing the answer…",
        "draft": "Draft",
        "answer_n": "Answer {k}:",
        "source_n": "Source {n}",
        "open": "Open the document at this place",
        "back": "Back to the answer",
        "rated_up": "Thank you! Your rating is saved: helpful.",
        "rated_down": "Thank you! Your rating is saved: not helpful.",
        "withdrawn": "Your rating is withdrawn.",
        "not_rated": "Only answers can be rated.",
        "not_saved": "The feedback could not be saved ({why}).",
        "chat_label": "Conversation",
        "feedback": "Feedback",
        "you": "You asked:",
        "assistant": "The assistant answered:",
    },
    "fr": {
        "loading": "Le modèle est en cours de chargement ; reposez votre question dans quelques secondes.",
        "busy": "Beaucoup de questions en ce moment ; réessayez dans quelques secondes.",
        "rate": "Vous avez posé beaucoup de questions en peu de temps ; attendez {s} s puis réessayez.",
        "empty": "La question est vide.",
        "too_long": "La question est trop longue ({n} caractères ; {max} au plus).",
        "wait": "Attendez la réponse à la question précédente.",
        "page_loading": "La page finit de se charger ; appuyez de nouveau sur Entrée dans un instant.",
        "searching": "Recherche dans les documents…",
        "writing": "Rédaction de la réponse…",
        "draft": "Brouillon",
        "answer_n": "Réponse {k} :",
        "source_n": "Source {n}",
        "open": "Ouvrir le document à cet endroit",
        "back": "Retour à la réponse",
        "rated_up": "Merci ! Votre avis est enregistré : utile.",
        "rated_down": "Merci ! Votre avis est enregistré : pas utile.",
        "withdrawn": "Votre avis est retiré.",
        "not_rated": "Seules les réponses peuvent être évaluées.",
        "not_saved": "Votre avis n'a pas pu être enregistré ({why}).",
        "chat_label": "Conversation",
        "feedback": "Votre avis",
        "you": "Vous avez demandé :",
        "assistant": "L'assistant a répondu :",
    },
}
EXAMPLES = [
    "What share of the workforce are engineers?",
    "Which competitiveness cluster supports optics in Provence?",
    "Quelle part des effectifs est constituée d'ingénieurs ?",
    "Quelles grandes entreprises sont présentes dans l'industrie optique ?",
]
CONTEXT_CHARS = 140  # characters of the passage shown before and after the cited sentences
CSS = (STATIC / "chat.css").read_text("utf-8")


def ui_lang(request: gr.Request | None) -> str:
    """The interface language, as the browser asks for it (Accept-Language): "fr" or "en"."""
    accept = (request.headers.get("accept-language", "") if request is not None else "") or "en"
    return "fr" if accept.strip().lower().startswith("fr") else "en"


def esc(text: str) -> str:
    return html.escape(str(text), quote=True)


def user_html(question: str) -> str:
    """A question as the chat shows it: the text as typed, never markup."""
    return f'<div class="qa-text">{esc(question)}</div>'


def status_html(message: str) -> str:
    """The placeholder of an answer being prepared: a status, never model text."""
    return f'<div class="qa-status" role="status"><span class="qa-dots" aria-hidden="true"></span>{esc(message)}</div>'


def draft_html(text: str, lang: str) -> str:
    """Streamed text (the start of the final answer), marked as unfinished; an unclosed ** waits for its pair."""
    if text.count("**") % 2:
        head, _, tail = text.rpartition("**")
        text = head + tail
    return (f'<div class="qa-text qa-draft"><span class="qa-visually-hidden">{esc(MESSAGES[lang]["draft"])}: </span>'
            f'{rich_html(_glue_markers(text.lstrip()), set(), 0, lang)}</div>')


def rich_html(text: str, cited: set[int], aid: int, lang: str) -> str:
    """text escaped, with its **bold** phrases as <strong> and its markers [n] of cited as links to answer aid's sources."""
    out, last = [], 0
    for m in re.finditer(r"\*\*([^*\n]+?)\*\*|\[(\d{1,3})\]", text):
        out.append(esc(text[last:m.start()]))
        if m.group(1) is not None:
            out.append(f"<strong>{rich_html(m.group(1), cited, aid, lang)}</strong>")
        elif int(m.group(2)) in cited:
            n = int(m.group(2))
            label = esc(MESSAGES[lang]["source_n"].format(n=n))
            out.append(f'<a class="qa-cite" href="#qa-src-{aid}-{n}" aria-label="{label}">[{n}]</a>')
        else:
            out.append(esc(m.group(0)))
        last = m.end()
    out.append(esc(text[last:]))
    return "".join(out)


def _glue_markers(text: str) -> str:
    """A marker never starts a line: the space before [n] becomes a non-breaking one."""
    return re.sub(r" (?=\[\d{1,3}\])", "\u00a0", text)


def answer_html(answer: dict, aid: int, lang: str = "en") -> str:
    """The answer as plain text with only its **bold** phrase and its markers [n] as markup (links to its own sources)."""
    cited = {c["n"] for c in answer.get("citations") or []}
    text = _glue_markers(str(answer.get("answer", "")))
    kind = "qa-text qa-answer qa-refused" if answer.get("refused") else "qa-text qa-answer"
    return f'<div class="{kind}">{rich_html(text, cited, aid, lang)}</div>'


def _cut(text: str, limit: int, keep_end: bool) -> str:
    """text shortened to about limit characters at a word boundary, "…" where it was cut."""
    if len(text) <= limit:
        return text
    if keep_end:
        part = text[-limit:]
        return "…" + (part.split(" ", 1)[1] if " " in part else part)
    part = text[:limit]
    return (part.rsplit(" ", 1)[0] if " " in part else part) + "…"


def excerpt_html(passage: str, spans: list[tuple[int, int, list[int]]]) -> str:
    """The cited spans of one passage (offsets in it) highlighted, with a little of the passage around them."""
    merged: list[list] = []
    for a, b, ns in sorted(spans):
        if merged and a < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
            merged[-1][2] = sorted(set(merged[-1][2]) | set(ns))
        else:
            merged.append([a, b, list(ns)])
    out = [esc(_cut(passage[: merged[0][0]], CONTEXT_CHARS, keep_end=True))]
    for i, (a, b, ns) in enumerate(merged):
        out.append(f'<mark data-n="{" ".join(map(str, ns))}">{esc(passage[a:b])}</mark>')
        gap = passage[b: merged[i + 1][0]] if i + 1 < len(merged) else passage[b:]
        if i + 1 < len(merged):
            out.append(esc(gap if len(gap) <= 2 * CONTEXT_CHARS else
                           _cut(gap, CONTEXT_CHARS, False) + " " + _cut(gap, CONTEXT_CHARS, True)))
        else:
            out.append(esc(_cut(gap, CONTEXT_CHARS, keep_end=False)))
    return "".join(out)


def sources_html(answers: dict, lang: str = "en") -> str:
    """Each answer's sources, newest first: per cited passage its title, cited sentences in context, a document link."""
    t = MESSAGES[lang]
    groups = []
    for k, (aid, entry) in enumerate(sorted(((int(a), e) for a, e in answers.items())), start=1):
        citations = entry["answer"].get("citations") or []
        if not citations:
            continue
        passages: dict[tuple, list[dict]] = {}
        for c in citations:
            passages.setdefault((c["source"], c["passage_start"]), []).append(c)
        items = []
        for cs in passages.values():
            first, ns = cs[0], [c["n"] for c in cs]
            spans = [(c["start"] - c["passage_start"], c["end"] - c["passage_start"], [c["n"]]) for c in cs]
            start, end = min(c["start"] for c in cs), max(c["end"] for c in cs)
            link = "doc?" + urlencode({"source": first["source"], "start": start, "end": end, "lang": lang}) + "#cited"
            items.append(
                f'<li class="qa-entry" id="qa-src-{aid}-{ns[0]}" data-ns="{" ".join(map(str, ns))}" tabindex="-1">'
                f'<div class="qa-entry-head"><span class="qa-ns">{" ".join(f"[{n}]" for n in ns)}</span> '
                f'<cite class="qa-doc">{esc(first["title"])}</cite></div>'
                f'<blockquote class="qa-quote">{excerpt_html(first["passage"], spans)}</blockquote>'
                f'<div class="qa-entry-actions"><button type="button" class="qa-back" hidden>{esc(t["back"])}</button>'
                f'<a class="qa-open" href="{esc(link)}" target="_blank" rel="noopener">{esc(t["open"])}</a></div></li>'
            )
        question = _cut(" ".join(str(entry["answer"].get("question", "")).split()), 70, keep_end=False)
        groups.append(
            f'<section class="qa-group" data-aid="{aid}" aria-labelledby="qa-g-{aid}">'
            f'<h3 class="qa-group-title" id="qa-g-{aid}">{esc(t["answer_n"].format(k=k))} <q>{esc(question)}</q></h3>'
            f'<ol class="qa-entries">{"".join(items)}</ol></section>'
        )
    return "".join(reversed(groups))


def notice_html(message: str) -> str:
    return f'<div class="qa-alert" role="alert">{esc(message)}</div>' if message else ""


def page_script(cfg: Config) -> str:
    """qa/static/chat.js with the texts and limits it needs."""
    settings = {"max_chars": cfg.max_question_chars, "user_html": user_html("{text}"),
                "text": {lang: {k: t[k] for k in ("empty", "too_long", "wait", "chat_label", "you", "assistant")} | {"status_html": status_html(t["searching"])}
                         for lang, t in MESSAGES.items()}}
    return (STATIC / "chat.js").read_text("utf-8").replace("__QA_CHAT_SETTINGS__", json.dumps(settings, ensure_ascii=False))


# Enter can come before Gradio has run the page's script (a slow host): the question then stays in the box, a notice
# says why, and nothing is asked (an empty pending question changes nothing on the server); qaEarly counts such rounds.
ASK_JS = ("(question, chat) => window.qaChat ? window.qaChat.ask(question, chat) : [question, chat, '', "
          + json.dumps({lang: notice_html(t["page_loading"]) for lang, t in MESSAGES.items()}, ensure_ascii=False)
          + "[(navigator.language || 'en').slice(0, 2).toLowerCase() === 'fr' ? 'fr' : 'en']]")
DONE_JS = "() => window.qaChat ? window.qaChat.done() : (window.qaEarly = (window.qaEarly || 0) + 1, [])"


def build_ui(cfg: Config, assistant: Assistant, gate, feedback, limiter) -> gr.Blocks:
    """The chat page: every event private (no API); questions and ratings under the API's rate limit, questions on its queue."""

    def respond(question: str, log: list, turns: list, answers: dict, request: gr.Request):
        lang = ui_lang(request)
        t = MESSAGES[lang]
        if not question:  # the page refused it (empty, too long, or an answer still pending): change nothing
            yield (gr.skip(),) * 7  # (returning no value at all would empty every output, the typed question too)
            return
        log, answers = list(log or []), dict(answers or {})
        shown = log + [{"role": "user", "content": user_html(question)}, {"role": "assistant", "content": status_html(t["searching"])}]
        aid = len(shown) - 1

        def failed(message: str):
            """The question goes back into the box and the reason shows under the chat (no bubble without an answer)."""
            return log, log, gr.skip(), gr.skip(), gr.skip(), notice_html(message), question

        wait = limiter.allow(request.client.host if request is not None and request.client else "unknown")
        if wait:
            yield failed(t["rate"].format(s=int(wait) + 1))
            return
        try:
            question, history = validate(question, turns, cfg)
        except InputError as exc:
            too_long = len(question.strip()) > cfg.max_question_chars
            yield failed(t["too_long"].format(n=len(question.strip()), max=cfg.max_question_chars) if too_long
                         else t["empty"] if not question.strip() else str(exc))
            return
        if assistant.health()["model_loaded"] is False:
            yield failed(t["loading"])
            return
        yield shown, gr.skip(), gr.skip(), gr.skip(), gr.skip(), "", gr.skip()
        draft = ""
        try:
            for event in gate.stream(lambda: assistant.stream(question, history, lang)):
                if event["type"] == "sources":
                    shown[aid] = {"role": "assistant", "content": status_html(t["writing"])}
                elif event["type"] == "token" and cfg.stream_tokens:
                    draft += event["text"]
                    if not draft.strip():
                        continue
                    shown[aid] = {"role": "assistant", "content": draft_html(draft, lang)}
                elif event["type"] == "answer":
                    answer = event["answer"].to_dict()
                    shown[aid] = {"role": "assistant", "content": answer_html(answer, aid, lang)}
                    answers[str(aid)] = {"id": uuid.uuid4().hex, "answer": answer}
                    turns = list(turns or []) + [{"role": "user", "content": question}, {"role": "assistant", "content": answer["answer"]}]
                    yield shown, shown, turns, answers, sources_html(answers, lang), "", gr.skip()
                    return
                else:
                    continue
                yield shown, gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        except Busy:
            yield failed(t["busy"])
        except QAError as exc:
            yield failed(str(exc))

    def rate(answers: dict, data: gr.LikeData, request: gr.Request):
        t = MESSAGES[ui_lang(request)]
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        entry = (answers or {}).get(str(index))
        if not entry:
            gr.Info(t["not_rated"], duration=4, title=t["feedback"])
            return
        if limiter.allow(request.client.host if request is not None and request.client else "unknown"):
            gr.Warning(t["rate"].format(s=60), duration=6, title=t["feedback"])
            return
        answer = entry["answer"]
        try:
            if data.liked in (True, False):
                feedback.add({"id": entry["id"], "rating": "up" if data.liked else "down", "question": answer["question"],
                              "answer": answer["answer"], "refused": answer["refused"],
                              "citations": [{k: c[k] for k in ("n", "source", "chunk_id", "start", "end", "text")} for c in answer["citations"]]})
                gr.Info(t["rated_up"] if data.liked else t["rated_down"], duration=4, title=t["feedback"])
            else:  # the same thumb clicked again: the vote is withdrawn
                feedback.remove(entry["id"])
                gr.Info(t["withdrawn"], duration=4, title=t["feedback"])
        except OSError as exc:
            gr.Warning(esc(t["not_saved"].format(why=exc.strerror or exc)), duration=6, title=t["feedback"])

    def reset():
        return [], [], [], {}, "", "", ""

    with gr.Blocks(title="Optics & Photonics Q&A", fill_height=True) as ui:
        gr.Markdown(TEXT("title"), elem_id="qa-title")
        gr.Markdown(TEXT("intro"))
        log = gr.State([])  # the messages shown, as the server rendered them
        turns = gr.State([])  # the conversation in plain text, as the model reads it
        answers = gr.State({})  # chat index of each answer -> {"id": for its rating, "answer": Answer.to_dict()}
        pending = gr.Textbox(visible="hidden", elem_id="qa-pending")  # the question the page accepted
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=300, elem_id="qa-chat-col"):
                chat = gr.Chatbot(label=TEXT("chat"), show_label=False, elem_id="qa-chat", height=460, sanitize_html=True,
                                  render_markdown=False, latex_delimiters=[], allow_tags=False, buttons=["copy"],
                                  feedback_options=("Like", "Dislike"), layout="bubble")
                notice = gr.HTML(elem_id="qa-notice")
                box = gr.Textbox(label=TEXT("question"), placeholder=TEXT("placeholder"), show_label=False, max_lines=4,
                                 elem_id="qa-input", submit_btn=True, autofocus=True)
                clear = gr.Button(TEXT("clear"), variant="secondary", size="sm", elem_id="qa-clear")
                gr.Examples(EXAMPLES, inputs=box, label=TEXT("examples"), api_visibility="private")
            with gr.Column(scale=2, min_width=280, elem_id="qa-sources-col"):
                gr.Markdown(TEXT("sources"), elem_id="qa-sources-title")
                panel = gr.HTML(elem_classes=["qa-sources"], elem_id="qa-sources")
        outputs = [chat, log, turns, answers, panel, notice, box]
        private = {"api_visibility": "private", "show_progress": "hidden"}
        (box.submit(None, [box, chat], [box, chat, pending, notice], js=ASK_JS, **private)
            .then(respond, [pending, log, turns, answers], outputs, concurrency_limit=cfg.max_queue + 1, **private)
            .then(None, None, None, js=DONE_JS, **private))
        chat.like(rate, [answers], None, **private)
        clear.click(reset, None, outputs, **private)
        chat.clear(reset, None, outputs, **private)
    ui.queue(api_open=False, max_size=4 * (cfg.max_queue + 1))
    return ui


def build_app(cfg: Config | None = None, assistant: Assistant | None = None):
    cfg = cfg or Config.load()
    assistant = assistant or Assistant(cfg, rerank=cfg.rerank)
    api = create_api(cfg, assistant)
    parts = api.state.qa
    ui = build_ui(cfg, assistant, parts["gate"], parts["feedback"], parts["limiter"])
    return gr.mount_gradio_app(api, ui, path="/", css=CSS, js=page_script(cfg), i18n=TEXT, footer_links=[], run_history=False)


def main() -> None:
    import uvicorn

    limit_malloc_arenas()
    cfg = Config.load()
    print(f"qa: serving on http://{cfg.host}:{cfg.port} (chat on /, API on /api/, widget on /widget.js)", flush=True)
    uvicorn.run(build_app(cfg), host=cfg.host, port=cfg.port, log_level="warning")


if __name__ == "__main__":
    main()
