"""Evaluation: run questions through the real pipeline and measure retrieval, answers, citations and refusals."""

from __future__ import annotations

import json
import re
import string
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .answer import answer_text, word_count
from .errors import QAError
from .text import fold

ANSWER_MAX_WORDS = 60  # an answer longer than this does not count as correct


@dataclass
class Case:
    question: str
    answers: list[str]  # empty for an unanswerable question
    unanswerable: bool
    source: str | None = None
    history: list[dict] | None = None


def load_cases(path: Path) -> list[Case]:
    """Read a JSONL evaluation file; raise QAError naming the first bad line."""
    try:
        lines = Path(path).read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise QAError(f"The evaluation file {path} cannot be read ({exc}).") from None
    cases = []
    for no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            question = obj["question"]
            answers = list(obj.get("answers") or [])
            unanswerable = bool(obj.get("unanswerable", False))
            if not isinstance(question, str) or not all(isinstance(a, str) for a in answers) or (not answers and not unanswerable):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            raise QAError(f"{path}, line {no}: expected {{\"question\": str, \"answers\": [str, ...]}} or {{\"question\": str, \"unanswerable\": true}}.") from None
        cases.append(Case(question, answers, unanswerable, obj.get("source"), obj.get("history")))
    if not cases:
        raise QAError(f"The evaluation file {path} holds no question.")
    return cases


# --- metric functions (pure) ---

def normalize(text: str) -> str:
    """Lowercase, accents and punctuation removed, spaces collapsed (for containment)."""
    text = fold(text).replace("’", "'")
    return re.sub(r"\s+", " ", text.translate(str.maketrans({c: " " for c in string.punctuation + "«»“”"}))).strip()


def contains_answer(text: str, answers: list[str]) -> bool:
    padded = f" {normalize(text)} "
    return any(f" {normalize(a)} " in padded for a in answers if normalize(a))


def passage_hit(passage: dict, case: Case) -> bool:
    if case.source and passage.get("source") != case.source:
        return False
    return contains_answer(passage["text"], case.answers)


def retrieval_ranks(passages: list[dict], case: Case) -> int | None:
    """Rank (1-based) of the first passage holding a gold answer, None if none does."""
    return next((i for i, p in enumerate(passages, start=1) if passage_hit(p, case)), None)


def lead(answer: str) -> str:
    """What a reader sees first: the answer up to its first citation marker."""
    return re.split(r"\[\d+\]", answer, maxsplit=1)[0]


def answer_correct(answer: str, refused: bool, case: Case, max_words: int = ANSWER_MAX_WORDS) -> bool:
    """Not refused, at most max_words, and the text before the first marker holds a gold answer."""
    return not refused and word_count(answer) <= max_words and contains_answer(answer_text(lead(answer)), case.answers)


_ARTICLES = {"a", "an", "the", "le", "la", "les", "l", "un", "une", "des", "du", "de"}


def f1(prediction: str, truth: str) -> float:
    """SQuAD token F1 (articles dropped)."""
    p = [w for w in normalize(prediction).split() if w not in _ARTICLES]
    t = [w for w in normalize(truth).split() if w not in _ARTICLES]
    common = sum((Counter(p) & Counter(t)).values())
    if not p or not t or not common:
        return float(p == t)
    precision, recall = common / len(p), common / len(t)
    return 2 * precision * recall / (precision + recall)


_OPENING = re.compile(r"[«“]")


def cited_pieces(answer: str) -> list[tuple[str, list[int]]]:
    """The answer cut at its markers: (claims a group of markers closes, marker numbers). A piece that quotes the
    document claims its bold short answer and its quote, not the frame around them ("According to the documents: ")."""
    parts = re.split(r"((?:\s*\[\d+\])+)", answer)  # text, markers, text, markers, ...
    pieces = []
    for text, marks in zip(parts[::2], parts[1::2]):
        opening = _OPENING.search(text)
        if opening:  # a frame, then the quote (closed here or after the markers)
            quote = text[opening.end() :].replace("**", "").strip(" «»“”")
            claims = re.findall(r"\*\*(.+?)\*\*", text[: opening.start()]) + [quote]
        else:
            claims = [text.replace("**", "").strip(" «»“”")]
        pieces.append((claims, [int(n) for n in re.findall(r"\d+", marks)]))
    return pieces


def piece_supported(claims: list[str], span: str) -> bool:
    """Whether what a marker closes says only what its span says: each claim (a short answer, a quote, a sentence) is
    entailed by the span on its own."""
    from .verify import check

    claims = [c.strip(" .;:") for c in claims if c.strip(" .;:")]
    return bool(claims) and bool(span.strip()) and all(check(c, span).supported for c in claims)


def citations_supported(answer: str, citations: list[dict]) -> list[bool]:
    """For each [n] in the answer: does citation n's span entail the text its marker closes (qa.verify.check)?"""
    texts = {c["n"]: c.get("text", "") for c in citations}
    return [piece_supported(text, texts.get(n, "")) for text, cites in cited_pieces(answer) for n in cites]


def citation_ok(citation: dict, answer: str, case: Case) -> bool:
    """A citation is right when its passage holds a gold answer (or, with no gold, its span entails what cites it)."""
    text = citation.get("passage") or citation.get("text", "")
    if case.answers:
        return contains_answer(text, case.answers)
    cited = [piece for piece, cites in cited_pieces(answer) if citation.get("n") in cites]
    return bool(cited) and all(piece_supported(piece, citation.get("text", "")) for piece in cited)


def summarize(rows: list[dict]) -> dict:
    """The metrics of a list of per-question rows (as produced by run())."""
    answerable = [r for r in rows if not r["unanswerable"]]
    unanswerable = [r for r in rows if r["unanswerable"]]
    ranks = [r["retrieval_rank"] for r in answerable]
    citations = [ok for r in rows for ok in r["citations_ok"]]
    correct = [r for r in answerable if r["correct"]]
    latencies = [r["timings"].get("total_s", 0.0) for r in rows]
    first = [r["timings"].get("first_token_s", 0.0) for r in rows]
    mean = lambda xs: float(np.mean(xs)) if xs else 0.0  # noqa: E731
    return {
        "n": len(rows),
        "n_unanswerable": len(unanswerable),
        "retrieval_hit@1": mean([x == 1 for x in ranks]),
        "retrieval_hit@5": mean([x is not None and x <= 5 for x in ranks]),
        "retrieval_mrr": mean([1 / x if x else 0.0 for x in ranks]),
        "answer_accuracy": mean([r["correct"] for r in answerable]),
        "answer_f1": mean([r["f1"] for r in answerable]),
        "citation_precision": mean(citations),
        "citation_recall": mean([any(r["citations_ok"]) for r in correct]),
        "citation_support": mean([ok for r in rows for ok in r.get("citations_supported", [])]),
        "refusal_accuracy": mean([r["refused"] for r in unanswerable]),
        "false_refusal_rate": mean([r["refused"] for r in answerable]),
        "closest_share": mean([r.get("outcome") == "closest" for r in rows if r["refused"]]),  # refusals quoting the closest passage
        "latency_p50_s": float(np.percentile(latencies, 50)) if latencies else 0.0,
        "latency_p95_s": float(np.percentile(latencies, 95)) if latencies else 0.0,
        "first_token_p50_s": float(np.percentile(first, 50)) if first else 0.0,
    }


# --- running ---

def evaluate_case(assistant, case: Case) -> dict:
    """Ask one question through the real pipeline and score it."""
    passages: list[dict] = []
    answer = None
    t0 = time.perf_counter()
    for event in assistant.stream(case.question, case.history):
        if event["type"] == "sources":
            passages = event["passages"]
        elif event["type"] == "answer":
            answer = event["answer"].to_dict()
    wall = time.perf_counter() - t0
    cites = [citation_ok(c, answer["answer"], case) for c in answer["citations"]]
    return {
        "question": case.question,
        "unanswerable": case.unanswerable,
        "gold": case.answers,
        "answer": answer["answer"],
        "refused": answer["refused"],
        "outcome": answer["outcome"],
        "query": answer["query"],
        "citations": [{k: c[k] for k in ("n", "source", "chunk_id", "start", "end", "text")} for c in answer["citations"]],
        "citations_ok": cites,
        "citations_supported": citations_supported(answer["answer"], answer["citations"]),
        "retrieval_rank": retrieval_ranks(passages, case) if case.answers else None,
        "correct": answer_correct(answer["answer"], answer["refused"], case) if case.answers else False,
        "f1": max((f1(answer_text(answer["answer"]), g) for g in case.answers), default=0.0) if not answer["refused"] else 0.0,
        "words": word_count(answer["answer"]),
        "timings": {**answer["timings"], "wall_s": round(wall, 4)},
    }


def run(assistant, cases: list[Case], progress: Callable[[int], None] | None = None) -> list[dict]:
    rows = []
    for case in cases:
        rows.append(evaluate_case(assistant, case))
        if progress:
            progress(1)
    return rows


METRIC_ORDER = [
    "retrieval_hit@1", "retrieval_hit@5", "retrieval_mrr", "answer_accuracy", "answer_f1", "citation_precision",
    "citation_recall", "citation_support", "refusal_accuracy", "false_refusal_rate", "closest_share", "latency_p50_s", "latency_p95_s", "first_token_p50_s",
    "n", "n_unanswerable",
]


def table(metrics: dict) -> str:
    width = max(map(len, METRIC_ORDER))
    lines = [f"{'metric':<{width}}  value", f"{'-' * width}  -----"]
    for k in METRIC_ORDER:
        v = metrics[k]
        lines.append(f"{k:<{width}}  {v if isinstance(v, int) else f'{v:.3f}'}")
    return "\n".join(lines)
