"""Features of a question's candidate answer sentences: pure numpy, what the fitted decision reads.

Each candidate is a sentence of one of the first passages. Its features say how close it is to the question (e5
cosine, query terms it covers, BM25), what kind of content it holds (numbers, years, names the question does not
give) and where it comes from (passage rank and score, same language as the question or not). Which of these matter,
and how, is learned (qa/fit.py); nothing here knows any particular question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from .index import Index
from .reader import Reading
from .search import Passage, Query
from .text import content_words, fold, tokenize

SENTENCE_FEATURES = (
    "cos",  # e5 cosine of question and sentence
    "cos_gap",  # cos minus the best cos among the candidates
    "chunk_cos",  # cosine of question and the sentence's passage
    "passage_score",  # first-stage fused score of the passage
    "passage_rr",  # 1 / rank of the passage
    "cover",  # IDF-weighted share of the query terms the sentence holds
    "cover_gap",  # cover minus the best cover among the candidates
    "cover_window",  # the same for the sentence with its neighbours
    "cover_passage",  # the same for the passage and its title
    "bm25",  # log(1 + BM25 of the sentence)
    "bm25_share",  # BM25 over the best BM25 among the candidates
    "novelty",  # share of the sentence's terms that are not query terms (an answer brings something new)
    "length",  # log(1 + words)
    "first",  # first sentence of its passage
    "same_lang",  # sentence in the question's language (lexical features mean little otherwise)
    "new_number",  # a number the question does not give
    "year",  # a year (1000-2099)
    "percent",
    "money",  # a currency sign or word
    "month",  # a month name (English or French)
    "new_name",  # a capitalised word (not the first) the question does not give
    "prev_cos",  # cosine of question and the sentence before (the answer often follows the sentence that names the topic)
    "prev_cover",  # query terms the sentence before covers
    "next_cover",  # query terms the sentence after covers
    "word_match",  # mean over the question's words of the best e5 word-vector cosine with the sentence's words (any language)
    "word_share",  # share of the question's words with a near-exact match there (cosine >= WORD_MATCH: a translation, a cognate)
    "reader",  # the reader's best answer span inside the sentence over its passage's "no answer" score (READER_FLOOR: not read)
    "reader_gap",  # reader minus the best reader among the candidates
    "read",  # the sentence's passage was read by the reader
)
CROSS_LANGUAGE = ("cos", "cos_gap", "chunk_cos", "passage_score", "passage_rr", "length", "new_number", "year", "new_name",
                  "prev_cos", "word_match", "word_share", "reader", "reader_gap", "read")
READER_FLOOR, READER_CEILING = -12.0, 12.0  # reader scores are clipped to this range; an unread sentence gets the floor
WORD_MATCH = 0.93  # e5 cosine of two words alone at which they count as the same word (ingénieurs/engineers 0.96)
QUESTION_FEATURES = (
    "top",  # logit of the best sentence
    "second",  # logit of the second best
    "top_cos",  # cosine of question and best sentence
    "best_chunk_cos",  # best cosine of question and passage
    "top_cover",  # query terms covered by the best sentence
    "top_cover_passage",  # by its passage
    "unknown",  # share of query terms that no indexed passage holds (0 across languages: it means nothing there)
    "names_missing",  # share of the question's names and numbers that the best sentence's document (as retrieved) lacks
    "has_names",  # the question gives a name or a number
    "same_lang",  # best sentence in the question's language
    "reader_top",  # the best reader score among the candidates
    "reader_best",  # the reader score of the best sentence
)
PHRASE_FEATURES = (
    "logit",  # the sentence's logit
    "words",  # log(1 + words of the phrase)
    "share",  # its length over the sentence's
    "echo",  # share of its terms that the question holds
    "new_number",  # a number the question does not give
    "year",
    "new_name",  # a capitalised word the question does not give
    "starts",  # the phrase opens the sentence
    "ends",  # the phrase closes it
    "same_lang",  # sentence in the question's language
    "reader",  # the sentence's reader score (its best span over "no answer")
)

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_YEAR = re.compile(r"\b(1[0-9]{3}|20[0-9]{2})\b")
_MONEY = re.compile(r"[$€£¥]|\b(dollars?|euros?|pounds?|francs?|usd|eur|gbp)\b", re.IGNORECASE)
_MONTH = re.compile(
    r"\b(january|february|march|april|may|june|july|august|september|october|november|december|janvier|f[ée]vrier|"
    r"mars|avril|mai|juin|juillet|ao[uû]t|septembre|octobre|novembre|d[ée]cembre)\b", re.IGNORECASE)
_CAPITAL = re.compile(r"(?<=[\s(«\"'’-])[A-ZÀ-Ý][\w’'-]+")


@dataclass
class Candidates:
    """The candidate sentences of one question, each once (overlapping passages repeat sentences)."""

    passage: np.ndarray  # (m,) index of the sentence's passage in the passages list
    start: np.ndarray  # (m,) offsets of the sentence in that passage's chunk text
    end: np.ndarray
    vectors: np.ndarray  # (m, dim) float32 e5 vectors of the sentences
    features: np.ndarray  # (m, len(SENTENCE_FEATURES)) float32
    texts: list[str] = field(default_factory=list)  # the sentences
    sources: list[str] = field(default_factory=list)  # each one's document
    titles: list[str] = field(default_factory=list)  # each one's document title
    spans: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))  # (m, 2) the reader's best span in the sentence, offsets in its chunk's text ((-1, -1): not read)

    def __len__(self) -> int:
        return len(self.passage)

    def reader_span(self, i: int) -> tuple[int, int] | None:
        """The reader's best span in sentence i, offsets in the sentence; None when it was not read."""
        if not len(self.spans) or self.spans[i][0] < 0:
            return None
        return int(self.spans[i][0] - self.start[i]), int(self.spans[i][1] - self.start[i])


def _coverage(wanted: dict[str, float], have: set[str]) -> float:
    total = sum(wanted.values())
    return sum(w for t, w in wanted.items() if t in have) / total if total else 0.0


def _terms(text: str) -> set[str]:
    """Stems of text in both languages: a French query term still meets its English cognate's stem."""
    return set(tokenize(text, "en")) | set(tokenize(text, "fr"))


def word_matches(q: Query, index: Index, sentence: str, lang: str) -> tuple[float, float]:
    """(mean best cosine, share >= WORD_MATCH) of the question's words against the sentence's words' vectors."""
    rows = [index.terms[w] for w in set(content_words(sentence, lang)) if w in index.terms]
    if not rows or not len(q.words) or q.word_vectors.shape[1] != index.term_vectors.shape[1]:
        return 0.0, 0.0
    best = (q.word_vectors @ index.term_vectors[rows].T).max(1)
    return float(best.mean()), float((best >= WORD_MATCH).mean())


def candidates(q: Query, passages: list[Passage], index: Index, sentence_bm25: np.ndarray,
               readings: list[Reading] | None = None) -> Candidates:
    """Every sentence of the passages with its features (sentence_bm25: BM25 of the query for every index sentence;
    readings: the reader's readings of the first passages, in order)."""
    readings = readings or []
    idf = index.idf
    top_idf = max(idf.values(), default=1.0)
    wanted = {t: idf.get(t, top_idf) for t in set(q.tokens)}
    q_numbers = set(_NUMBER.findall(q.text))
    q_words = {w.casefold() for w in re.findall(r"[\w’'-]+", q.text)}
    rows, rec, seen = [], [], set()
    for i, p in enumerate(passages):
        text = p.chunk.text
        spans = index.chunk_sentences(p.row)
        first = int(index.first_sentence[p.row])
        terms = [_terms(text[a:b]) for a, b in spans]
        passage_terms = _terms(p.chunk.title + "\n" + text)
        for k, (a, b) in enumerate(spans):
            key = (p.chunk.source, p.chunk.start + int(a))
            if key in seen:
                continue
            seen.add(key)
            s = text[a:b]
            window = terms[k] | (terms[k - 1] if k else set()) | (terms[k + 1] if k + 1 < len(spans) else set())
            own = terms[k]
            new_numbers = set(_NUMBER.findall(s)) - q_numbers
            names = {m.casefold() for m in _CAPITAL.findall(" " + s[1:])} - q_words
            rows.append(first + k)
            prev_cover = _coverage(wanted, terms[k - 1]) if k else 0.0
            next_cover = _coverage(wanted, terms[k + 1]) if k + 1 < len(spans) else 0.0
            prev_cos = float(index.sentence_embeddings[first + k - 1] @ q.vector) if k else 0.0
            read, span = reader_score(readings[i], int(a), int(b)) if i < len(readings) else (READER_FLOOR, (-1, -1))
            rec.append((i, int(a), int(b), [
                0.0, 0.0, p.dense, p.score, 1.0 / p.rank,
                _coverage(wanted, own), 0.0, _coverage(wanted, window), _coverage(wanted, passage_terms),
                float(np.log1p(sentence_bm25[first + k])), 0.0,
                len(own - set(q.tokens)) / max(1, len(own)), float(np.log1p(len(s.split()))), float(k == 0),
                float(p.chunk.lang == q.lang), float(bool(new_numbers)), float(bool(_YEAR.search(s))), float("%" in s),
                float(bool(_MONEY.search(s))), float(bool(_MONTH.search(s))), float(bool(names)), prev_cos, prev_cover,
                next_cover, *word_matches(q, index, s, p.chunk.lang), read, 0.0, float(i < len(readings)),
            ], span))
    if not rec:
        dim = index.sentence_embeddings.shape[1]
        return Candidates(*(np.zeros(0, np.int64) for _ in range(3)), np.zeros((0, dim), np.float32),
                          np.zeros((0, len(SENTENCE_FEATURES)), np.float32))
    vectors = index.sentence_embeddings[rows]
    feats = np.array([r[3] for r in rec], dtype=np.float32)
    col = SENTENCE_FEATURES.index
    feats[:, col("cos")] = vectors @ q.vector
    feats[:, col("cos_gap")] = feats[:, col("cos")] - feats[:, col("cos")].max()
    feats[:, col("cover_gap")] = feats[:, col("cover")] - feats[:, col("cover")].max()
    bm = feats[:, col("bm25")]
    feats[:, col("bm25_share")] = bm / bm.max() if bm.max() > 0 else 0.0
    feats[:, col("reader_gap")] = feats[:, col("reader")] - feats[:, col("reader")].max()
    chunks = [passages[r[0]].chunk for r in rec]
    return Candidates(np.array([r[0] for r in rec]), np.array([r[1] for r in rec]), np.array([r[2] for r in rec]), vectors, feats,
                      [c.text[r[1] : r[2]] for c, r in zip(chunks, rec)], [c.source for c in chunks], [c.title for c in chunks],
                      np.array([r[4] for r in rec], dtype=np.int64).reshape(-1, 2))


def reader_score(reading: Reading, a: int, b: int) -> tuple[float, tuple[int, int]]:
    """(clipped score of the reader's best span inside chunk characters a..b over "no answer", that span)."""
    score, i, j = reading.best_span(a, b)
    if i < 0:
        return READER_FLOOR, (-1, -1)
    return float(np.clip(score - reading.null, READER_FLOOR, READER_CEILING)), reading.span_chars(i, j)


def unknown_share(q: Query, index: Index) -> float:
    """Share of the query's terms that no indexed passage holds (a question about what no document mentions)."""
    terms = set(q.tokens)
    return sum(t not in index.idf for t in terms) / len(terms) if terms else 0.0


def _names(text: str) -> set[str]:
    """Capitalised words (not a sentence's first) and numbers of a text, folded."""
    return {fold(m) for m in _CAPITAL.findall(" " + text[1:])} | set(_NUMBER.findall(text))


def question_features(c: Candidates, logits: np.ndarray, unknown: float, question: str) -> np.ndarray:
    """What the answerability decision reads, from the candidates, their sentence logits, unknown_share and the question."""
    col = SENTENCE_FEATURES.index
    f = c.features
    order = np.argsort(-logits, kind="stable")
    best = order[0]
    same = f[best, col("same_lang")]
    names = _names(question)
    context = fold(c.titles[best] + " " + " ".join(t for t, s in zip(c.texts, c.sources) if s == c.sources[best]))
    missing = sum(n not in context for n in names) / len(names) if names else 0.0
    return np.array([
        logits[best], logits[order[1]] if len(order) > 1 else logits[best] - 10.0, f[best, col("cos")], f[:, col("chunk_cos")].max(),
        f[best, col("cover")], f[best, col("cover_passage")], unknown * same, missing, float(bool(names)), same,
        f[:, col("reader")].max(), f[best, col("reader")],
    ], dtype=np.float32)


def phrase_features(f: np.ndarray, best: int, logit: float, sentence: str, span: tuple[int, int], question: str) -> np.ndarray:
    """What the short-answer check reads: how long the phrase is, whether it repeats the question, what it holds."""
    phrase = sentence[span[0] : span[1]]
    own = _terms(phrase)
    asked = _terms(question)
    q_numbers = set(_NUMBER.findall(question))
    q_words = {w.casefold() for w in re.findall(r"[\w’'-]+", question)}
    words = phrase.split()
    return np.array([
        logit, np.log1p(len(words)), len(phrase) / max(1, len(sentence)), len(own & asked) / max(1, len(own)),
        float(bool(set(_NUMBER.findall(phrase)) - q_numbers)), float(bool(_YEAR.search(phrase))),
        float(any(w[:1].isupper() and w.casefold() not in q_words for w in words)),
        float(span[0] == 0), float(span[1] >= len(sentence.rstrip(".!?…")) - 1),
        f[best, SENTENCE_FEATURES.index("same_lang")], f[best, SENTENCE_FEATURES.index("reader")],
    ], dtype=np.float32)
