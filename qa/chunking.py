"""Chunks: a document cut along paragraphs and sentences into short, overlapping, citable spans."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from .documents import Document
from .text import Lang, sentence_spans

_PARAGRAPH = re.compile(r"\n[ \t]*\n+")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Chunk:
    id: str  # "source:paragraph:piece", e.g. "guide.md:3:2", stable while the document is unchanged
    source: str  # document path relative to the seeds folder
    title: str  # document title
    start: int  # character offsets into the document text
    end: int
    text: str  # == document.text[start:end]
    lang: Lang

    def to_dict(self) -> dict:
        return asdict(self)


def _paragraphs(text: str) -> list[tuple[int, int]]:
    """(start, end) of each paragraph (blocks separated by blank lines), surrounding spaces excluded."""
    spans, pos = [], 0
    for m in list(_PARAGRAPH.finditer(text)) + [None]:
        end = m.start() if m else len(text)
        block = text[pos:end]
        if block.strip():
            lead = len(block) - len(block.lstrip())
            spans.append((pos + lead, pos + len(block.rstrip())))
        if m:
            pos = m.end()
    return spans


def _word_count(text: str) -> int:
    return len(_WORD.findall(text))


def _units(text: str, start: int, end: int, lang: Lang, max_words: int) -> list[tuple[int, int]]:
    """Sentence spans of text[start:end]; a sentence longer than max_words is cut at word boundaries."""
    units = []
    for s, e in sentence_spans(text[start:end], lang):
        s, e = s + start, e + start
        words = list(_WORD.finditer(text, s, e))
        if len(words) <= max_words:
            units.append((s, e))
            continue
        for i in range(0, len(words), max_words):
            group = words[i : i + max_words]
            units.append((group[0].start(), group[-1].end()))
    return units


def chunk_document(doc: Document, max_words: int = 120, overlap_words: int = 30, min_words: int = 8) -> list[Chunk]:
    """Cut a document into chunks of at most max_words, packing whole sentences, paragraphs kept apart."""
    text, chunks = doc.text, []
    pending: int | None = None  # start of short paragraphs (headings) carried into the next chunk
    pending_no = 0
    paragraphs = _paragraphs(text)
    for no, (p_start, p_end) in enumerate(paragraphs, start=1):
        if _word_count(text[p_start:p_end]) < min_words and no < len(paragraphs):
            if pending is None:
                pending, pending_no = p_start, no
            if _word_count(text[pending:p_end]) < max_words // 2:
                continue
        head, head_no = (pending, pending_no) if pending is not None else (p_start, no)
        pending = None
        units = _units(text, p_start, p_end, doc.lang, max_words)
        if head < p_start and _word_count(text[head:p_start]) + _word_count(text[units[0][0] : units[0][1]]) > max_words:
            chunks.append(_make(doc, head, _last_nonspace(text, head, p_start), head_no, 1))
            head, head_no = p_start, no
        piece, i = 1, 0
        while i < len(units):
            first = i
            words = _word_count(text[units[i][0] : units[i][1]])
            i += 1
            while i < len(units) and words + _word_count(text[units[i][0] : units[i][1]]) <= max_words:
                words += _word_count(text[units[i][0] : units[i][1]])
                i += 1
            start = head if piece == 1 else units[first][0]
            chunks.append(_make(doc, start, units[i - 1][1], head_no, piece))
            piece += 1
            if i < len(units):  # step back over trailing sentences for the overlap, keeping progress
                back, overlap = i, 0
                while back - 1 > first and overlap + _word_count(text[units[back - 1][0] : units[back - 1][1]]) <= overlap_words:
                    back -= 1
                    overlap += _word_count(text[units[back][0] : units[back][1]])
                i = back
    if pending is not None:  # the document ends with short paragraphs
        chunks.append(_make(doc, pending, paragraphs[-1][1], pending_no, 1))
    return chunks


def _last_nonspace(text: str, start: int, end: int) -> int:
    return start + len(text[start:end].rstrip())


def _make(doc: Document, start: int, end: int, paragraph: int, piece: int) -> Chunk:
    return Chunk(
        id=f"{doc.source}:{paragraph}:{piece}",
        source=doc.source,
        title=doc.title,
        start=start,
        end=end,
        text=doc.text[start:end],
        lang=doc.lang,
    )
