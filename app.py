"""The web app: the Gradio chat on "/", the HTTP API on /api/, the embeddable widget on /widget.js.

Run with `python app.py` (or `make run`). Host and port come from qa.toml / QA_HOST, QA_PORT, or
GRADIO_SERVER_NAME and GRADIO_SERVER_PORT.
"""

from __future__ import annotations

import html
import re

import gradio as gr

from qa.answer import validate
from qa.config import Config
from qa.errors import InputError, QAError
from qa.server import Busy, create_api, limit_malloc_arenas
from qa.service import Assistant

TEXT = gr.I18n(
    en={"title": "## Optics & Photonics in Provence: cited answers", "placeholder": "Ask a question about the documents…",
        "sources": "### Sources", "clear": "Clear conversation", "examples": "Examples", "send": "Ask",
        "intro": "Answers quote the indexed documents; every marker [n] points at the passage below."},
    fr={"title": "## Optique & photonique en Provence : réponses sourcées", "placeholder": "Posez une question sur les documents…",
        "sources": "### Sources", "clear": "Effacer la conversation", "examples": "Exemples", "send": "Demander",
        "intro": "Les réponses citent les documents indexés ; chaque renvoi [n] désigne le passage ci-dessous."},
)
MESSAGES = {
    "loading": {"en": "The model is still loading; please ask again in a few seconds.",
                "fr": "Le modèle est en cours de chargement ; reposez votre question dans quelques secondes."},
    "busy": {"en": "Many people are asking right now; please retry in a few seconds.",
             "fr": "Beaucoup de questions en ce moment ; réessayez dans quelques secondes."},
}
EXAMPLES = [
    "What share of the workforce are engineers?",
    "Which competitiveness cluster supports optics in Provence?",
    "Quelle part des effectifs est constituée d'ingénieurs ?",
    "Quelles grandes entreprises sont présentes dans l'industrie optique ?",
]
CSS = """
.qa-sources .src{border-left:3px solid #3b82f6;padding:.4rem .7rem;margin:.5rem 0;background:#f8fafc;border-radius:4px}
.qa-sources mark{background:#fde68a;padding:0 .1rem} .qa-sources .meta{color:#475569;font-size:.85em}
@media (max-width: 640px){.qa-sources .src{font-size:.9em}}
"""


def sources_html(citations: list[dict]) -> str:
    """The cited passages, each with its cited span highlighted; every text is escaped (never live HTML)."""
    if not citations:
        return ""
    blocks = []
    for c in citations:
        a, b = c["start"] - c["passage_start"], c["end"] - c["passage_start"]
        p = c["passage"]
        body = f"{html.escape(p[:a])}<mark>{html.escape(p[a:b])}</mark>{html.escape(p[b:])}"
        blocks.append(
            f'<div class="src" id="src-{c["n"]}"><b>[{c["n"]}] {html.escape(c["title"])}</b> '
            f'<span class="meta">{html.escape(c["source"])} · {html.escape(c["chunk_id"])} · '
            f'characters {c["start"]}–{c["end"]}</span><div>{body}</div></div>'
        )
    return "\n".join(blocks)


def shown(answer: str) -> str:
    """The answer as the chat shows it: escaped, markers linked to their source."""
    return re.sub(r"\[(\d+)\]", r"[[\1]](#src-\1)", html.escape(answer, quote=False))


def plain(message: str) -> str:
    """A chat message back to plain text for the conversation history."""
    return html.unescape(re.sub(r"\[\[(\d+)\]\]\(#src-\d+\)", r"[\1]", str(message)))


def build_ui(cfg: Config, assistant: Assistant, gate, feedback) -> gr.Blocks:
    def respond(message: str, chat: list[dict], cites: dict):
        lang = "fr" if re.search(r"[éèàçùâêîôû]|\b(le|la|les|quel|quelle|est|des)\b", message or "", re.I) else "en"
        chat = list(chat or [])
        history = [{"role": m["role"], "content": plain(m["content"])} for m in chat if isinstance(m.get("content"), str)]
        chat.append({"role": "user", "content": message})
        try:
            validate(message, history, cfg)
        except InputError as exc:
            chat.append({"role": "assistant", "content": str(exc)})
            yield chat, "", cites, ""
            return
        if assistant.health()["model_loaded"] is False:
            chat.append({"role": "assistant", "content": MESSAGES["loading"][lang]})
            yield chat, "", cites, ""
            return
        chat.append({"role": "assistant", "content": "…"})
        draft = ""
        try:
            for event in gate.stream(lambda: assistant.stream(message, history)):
                if event["type"] == "token":
                    draft += event["text"]
                    chat[-1] = {"role": "assistant", "content": html.escape(draft.strip() or "…") + " …"}
                    yield chat, "", cites, gr.skip()
                elif event["type"] == "answer":
                    answer = event["answer"].to_dict()
                    chat[-1] = {"role": "assistant", "content": shown(answer["answer"])}
                    cites = {**cites, str(len(chat) - 1): answer}
                    yield chat, "", cites, sources_html(answer["citations"])
        except Busy:
            chat[-1] = {"role": "assistant", "content": MESSAGES["busy"][lang]}
            yield chat, "", cites, ""
        except QAError as exc:
            chat[-1] = {"role": "assistant", "content": str(exc)}
            yield chat, "", cites, ""

    def rate(cites: dict, data: gr.LikeData):
        answer = cites.get(str(data.index[0] if isinstance(data.index, (list, tuple)) else data.index))
        if answer:
            try:
                feedback.add({"rating": "up" if data.liked else "down", "question": answer["question"], "answer": answer["answer"],
                              "citations": [{k: c[k] for k in ("n", "source", "chunk_id", "start", "end", "text")} for c in answer["citations"]],
                              "refused": answer["refused"]})
            except OSError as exc:
                gr.Warning(f"The feedback could not be saved ({exc.strerror or exc}).")

    with gr.Blocks(title="Optics & Photonics Q&A", fill_height=True) as ui:
        gr.Markdown(TEXT("title"), elem_id="qa-title")
        gr.Markdown(TEXT("intro"))
        cites = gr.State({})
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=300):
                chat = gr.Chatbot(elem_id="qa-chat", height=460, sanitize_html=True, render_markdown=True,
                                  feedback_options=("Like", "Dislike"), buttons=["copy"], layout="bubble")
                box = gr.Textbox(placeholder=TEXT("placeholder"), show_label=False, max_lines=4, elem_id="qa-input", submit_btn=True)
                with gr.Row():
                    clear = gr.Button(TEXT("clear"), variant="secondary", size="sm", elem_id="qa-clear")
                gr.Examples(EXAMPLES, inputs=box, label=TEXT("examples"))
            with gr.Column(scale=2, min_width=280):
                gr.Markdown(TEXT("sources"), elem_id="qa-sources-title")
                panel = gr.HTML(elem_classes=["qa-sources"], elem_id="qa-sources")
        box.submit(respond, [box, chat, cites], [chat, box, cites, panel], concurrency_limit=cfg.max_queue)
        chat.like(rate, [cites], None)
        clear.click(lambda: ([], "", {}, ""), None, [chat, box, cites, panel])
    return ui


def build_app(cfg: Config | None = None, assistant: Assistant | None = None):
    cfg = cfg or Config.load()
    assistant = assistant or Assistant(cfg, rerank=cfg.rerank)
    api = create_api(cfg, assistant)
    parts = api.state.qa
    ui = build_ui(cfg, assistant, parts["gate"], parts["feedback"])
    return gr.mount_gradio_app(api, ui, path="/", css=CSS, i18n=TEXT, footer_links=[])


def main() -> None:
    import uvicorn

    limit_malloc_arenas()
    cfg = Config.load()
    print(f"qa: serving on http://{cfg.host}:{cfg.port} (chat on /, API on /api/, widget on /widget.js)", flush=True)
    uvicorn.run(build_app(cfg), host=cfg.host, port=cfg.port, log_level="warning")


if __name__ == "__main__":
    main()
