"""The `qa` command: index documents, search them, ask questions, evaluate. Every command speaks --json."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from pathlib import Path

from . import __version__
from .config import Config
from .errors import QAError

EPILOG = """Settings come from qa.toml and QA_* environment variables (see README.md); the flags override them."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="qa",
        description="Cited-answer assistant: index the documents of a folder, then search and question them.",
        epilog=EPILOG,
    )
    p.add_argument("--version", action="version", version=f"qa {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    s = sub.add_parser("index", help="build or update the index from the seeds folder",
                       description="Index the documents (.txt, .md, .html, .pdf) of the seeds folder. Only new or changed "
                       "documents are embedded; deleted ones leave the index. The new index replaces the old one atomically.")
    s.add_argument("--seeds", type=Path, metavar="DIR", help="folder of documents (default: seeds/)")
    s.add_argument("--index", type=Path, metavar="DIR", help="index folder (default: index/)")
    s.add_argument("--json", action="store_true", help="print a JSON report instead of text")

    s = sub.add_parser("search", help="show the passages that best match a question",
                       description="Print the top passages for QUESTION from the hybrid (dense + BM25) index, "
                       "reordered by their best sentence's fitted score unless --no-rerank.")
    s.add_argument("question", metavar="QUESTION")
    s.add_argument("--index", type=Path, metavar="DIR", help="index folder (default: index/)")
    s.add_argument("-k", type=int, default=None, metavar="N", help="number of passages (default: 5)")
    s.add_argument("--no-rerank", action="store_true", help="first stage only: skip the reordering by sentence scores")
    s.add_argument("--json", action="store_true",
                   help='print a JSON list of {"rank", "score", "source", "chunk_id", "start", "end", "text"}')

    s = sub.add_parser("ask", help="answer a question with cited sources",
                       description="Answer QUESTION from the indexed documents with inline citations [n] and the cited "
                       "passages below: the short answer first (bold) when the model's phrase is accepted, then the quoted "
                       "sentence. When the documents do not answer, it says so, quoting the closest passage when one is on "
                       "the subject (refused either way).")
    s.add_argument("question", metavar="QUESTION")
    s.add_argument("--index", type=Path, metavar="DIR", help="index folder (default: index/)")
    s.add_argument("--history", type=Path, metavar="FILE",
                   help='JSON file with earlier turns: [{"role": "user"|"assistant", "content": "..."}]')
    s.add_argument("--lang", choices=["en", "fr"], default=None,
                   help="the language to answer a name typed alone in (a question says its own language)")
    s.add_argument("--json", action="store_true",
                   help='print one JSON object {"question", "answer", "refused", "outcome", "short", "citations", "query", "timings"}')

    s = sub.add_parser("eval", help="evaluate retrieval, answers, citations and refusals on a question file",
                       description="Run every question of FILE (JSONL: {\"question\", \"answers\": [...]} or {\"question\", "
                       "\"unanswerable\": true}, optional \"source\" and \"history\") through the real pipeline and print "
                       "the metrics: retrieval_hit@1/@5, retrieval_mrr, answer_accuracy, answer_f1, citation_precision/recall, "
                       "refusal_accuracy, false_refusal_rate, closest_share (refusals that quote the closest passage), latency_p50/p95_s, "
                       "first_token_p50_s. An answer is correct when the text before its first marker [1] holds a gold answer.")
    s.add_argument("file", type=Path, metavar="FILE")
    s.add_argument("--index", type=Path, metavar="DIR", help="index folder (default: index/)")
    s.add_argument("--limit", type=int, metavar="N", help="only the first N questions")
    s.add_argument("--save", type=Path, metavar="REPORT.jsonl", help="write one line per question (answer, citations, metrics, timings)")
    s.add_argument("--report", type=Path, metavar="REPORT.html", help="write a self-contained HTML page with metrics and plots")
    s.add_argument("--json", action="store_true", help="print one JSON object of metrics")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    try:
        return COMMANDS[args.command](args)
    except QAError as exc:
        if getattr(args, "json", False):
            print(json.dumps({"error": str(exc)}))
        print(f"qa: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("qa: interrupted", file=sys.stderr)
        return 130


def _config(args: argparse.Namespace) -> Config:
    return Config.load(seeds_dir=getattr(args, "seeds", None), index_dir=getattr(args, "index", None))


def _progress(enabled: bool):
    """A factory of tqdm progress bars on stderr, or None."""
    if not enabled:
        return None
    from tqdm import tqdm

    def start(label: str, total: int):
        bar = tqdm(total=total, desc=label, unit="text", file=sys.stderr, leave=False)
        return bar.update

    return start


def cmd_index(args: argparse.Namespace) -> int:
    from . import index

    cfg = _config(args)
    report = index.build(cfg, progress=_progress(not args.json), log=lambda m: print(m, file=sys.stderr))
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    elif report.generation is None:
        print(f"Index up to date: {report.documents} documents, {report.chunks} chunks in {cfg.index_dir}.")
    else:
        changes = ", ".join(f"{len(v)} {k}" for k, v in (("added", report.added), ("changed", report.changed), ("removed", report.removed)) if v)
        print(f"Indexed {report.documents} documents ({changes or 'rebuilt'}): {report.chunks} chunks, "
              f"{report.embedded} texts embedded, in {report.seconds:.1f} s -> {cfg.index_dir}/{report.generation}.")
    if report.skipped:
        print(f"{len(report.skipped)} file(s) skipped; see the warnings above.", file=sys.stderr)
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from .service import Assistant

    cfg = _config(args)
    if args.k is not None and not 1 <= args.k <= 100:
        raise QAError("-k must be between 1 and 100.")
    assistant = Assistant(cfg, rerank=cfg.rerank and not args.no_rerank)
    passages = assistant.retrieve(_question(args.question, cfg), k=args.k or cfg.top_k)
    if args.json:
        print(json.dumps([p.to_dict() for p in passages], ensure_ascii=False, indent=1))
        return 0
    if not passages:
        print("No passage matches this question.")
    for p in passages:
        print(f"[{p.rank}] {p.chunk.source} ({p.chunk.id}, chars {p.chunk.start}-{p.chunk.end}, score {p.score:.3f})")
        print("    " + p.chunk.text.replace("\n", "\n    ") + "\n")
    return 0


def _question(text: str, cfg: Config) -> str:
    from .answer import validate

    return validate(text, None, cfg)[0]


def cmd_ask(args: argparse.Namespace) -> int:
    from .service import Assistant

    cfg = _config(args)
    history = None
    if args.history:
        try:
            history = json.loads(args.history.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise QAError(f"The history file {args.history} cannot be read as JSON ({exc}).") from None
    assistant = Assistant(cfg, rerank=cfg.rerank)
    live = sys.stdout.isatty() and not args.json
    final = None
    for event in assistant.stream(_question(args.question, cfg), history, args.lang):
        if event["type"] == "token" and live:
            print(f"\x1b[2m{event['text']}\x1b[0m", end="", flush=True)
        elif event["type"] == "answer":
            final = event["answer"]
    if live:
        print("\r\x1b[2K", end="")
    if args.json:
        print(json.dumps(final.to_dict(), ensure_ascii=False, indent=1))
        return 0
    print(final.answer)
    if final.query != final.question:
        print(f"\n(searched for: {final.query})")
    for c in final.citations:
        print(f"\n[{c.n}] {c.source} ({c.chunk_id}, chars {c.start}-{c.end})\n    {c.text}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from . import evaluate
    from .service import Assistant

    cfg = _config(args)
    cases = evaluate.load_cases(args.file)[: args.limit] if args.limit else evaluate.load_cases(args.file)
    assistant = Assistant(cfg, rerank=cfg.rerank)
    assistant.warm_up()
    bar = _progress(True)("Evaluating", len(cases))
    rows = evaluate.run(assistant, cases, progress=bar)
    metrics = evaluate.summarize(rows)
    if args.save:
        with open(args.save, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    if args.report:
        from .report import render

        args.report.write_text(render(metrics, rows, title=f"qa eval: {args.file.name}"), "utf-8")
    print(json.dumps(metrics) if args.json else evaluate.table(metrics))
    return 0


COMMANDS = {"index": cmd_index, "search": cmd_search, "ask": cmd_ask, "eval": cmd_eval}

if __name__ == "__main__":
    sys.exit(main())
