"""Checks that an answer's sentences say only what their cited passages say (pure functions, no model)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .text import Lang, fold, sentence_spans, tokenize

_MARKER = re.compile(r"\s*\[(\d+)\]")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NAME = re.compile(r"\b[A-ZÀ-Ý][\w’'-]*(?:\s+[A-ZÀ-Ý][\w’'-]*)*")


@dataclass
class Claim:
    text: str  # the sentence without its markers
    cites: list[int]  # marker numbers, in order


def parse_claims(answer: str, lang: Lang) -> list[Claim]:
    """Split an answer into sentences, each with the [n] markers that follow or end it."""
    claims: list[Claim] = []
    for a, b in sentence_spans(answer, lang):
        sentence = answer[a:b]
        cites = [int(n) for n in _MARKER.findall(sentence)]
        body = _MARKER.sub("", sentence).strip()
        if not re.search(r"\w", body):  # a lone marker split off by the sentence splitter
            if claims:
                claims[-1].cites.extend(cites)
            continue
        claims.append(Claim(body, cites))
    return claims


def key_terms(sentence: str, lang: Lang) -> tuple[set[str], set[str], set[str]]:
    """(numbers, names, content stems) of a sentence: what its source must contain."""
    numbers = {n.replace(",", "") for n in _NUMBER.findall(sentence)}
    names = set()  # capitalised words, the first one too: strict on purpose, a wrong name is the worst claim
    for m in _NAME.finditer(sentence):
        names.update(w for w in tokenize(m.group(), lang))
    return numbers, names, set(tokenize(sentence, lang))


def support(sentence: str, passage: str, lang: Lang) -> float:
    """Share of the sentence's content stems found in the passage; 0 if a number or a name is missing."""
    numbers, names, stems = key_terms(sentence, lang)
    if not stems and not numbers:
        return 0.0
    p_numbers = {n.replace(",", "") for n in _NUMBER.findall(passage)}
    p_stems = set(tokenize(passage, lang)) | set(tokenize(passage, "en" if lang == "fr" else "fr"))
    if not numbers <= p_numbers or not names <= p_stems:
        return 0.0
    return len(stems & p_stems) / len(stems) if stems else 1.0


def best_quote(sentence: str, passage: str, lang: Lang) -> tuple[int, int, float]:
    """The passage sentence sharing most content stems with sentence: (start, end, overlap)."""
    want = set(tokenize(sentence, lang))
    best = (0, 0, 0.0)
    for a, b in sentence_spans(passage, lang):
        have = set(tokenize(passage[a:b], lang))
        overlap = len(want & have) / len(want) if want else 0.0
        if overlap > best[2]:
            best = (a, b, overlap)
    return best


def contains(haystack: str, needle: str) -> bool:
    """Case- and accent-insensitive containment, spaces normalised."""
    return _norm(needle) in _norm(haystack) if needle.strip() else False


def find(haystack: str, needle: str) -> tuple[int, int] | None:
    """(start, end) of needle in haystack, ignoring case, accents and runs of spaces; None if absent."""
    n = _norm(needle)
    if not n:
        return None
    folded, index = [], []
    for i, ch in enumerate(haystack):
        f = fold(ch)
        if f.isspace():
            if folded and folded[-1] == " ":
                continue
            f = " "
        for c in f:
            folded.append(c)
            index.append(i)
    at = "".join(folded).find(n)
    if at < 0:
        return None
    return index[at], index[at + len(n) - 1] + 1


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", fold(text)).strip()
