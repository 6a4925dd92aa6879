"""Hybrid search: candidates from FAISS and BM25, scored on the chunk and on its best sentence, fused."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .chunking import Chunk
from .embedders import Embedder
from .index import Index
from .text import Lang, detect_language, tokenize


@dataclass(frozen=True)
class Passage:
    rank: int  # 1 = best
    score: float  # fused score (relative: comparable within one search only)
    chunk: Chunk
    dense: float  # cosine similarity of the question with the chunk
    best_sentence: tuple[int, int]  # offsets, in chunk.text, of the sentence closest to the question
    sentence_dense: float  # cosine similarity of the question with that sentence
    keyword: float  # BM25 score of the chunk
    row: int  # the chunk's row in the index (for its vectors and sentences)

    def to_dict(self) -> dict:
        c = self.chunk
        return {"rank": self.rank, "score": round(self.score, 4), "source": c.source, "chunk_id": c.id,
                "title": c.title, "start": c.start, "end": c.end, "text": c.text}


@dataclass(frozen=True)
class Query:
    text: str
    lang: Lang
    vector: np.ndarray  # (dim,) float32 unit vector
    tokens: list[str]  # BM25 tokens


class Searcher:
    """search(query, k) over one loaded Index."""

    def __init__(self, index: Index, embedder: Embedder, dense_weight: float = 0.5, candidates: int = 100,
                 dense_weight_foreign: float = 0.2) -> None:
        import faiss

        faiss.omp_set_num_threads(1)  # one query at a time: threads cost more to wake than the search itself
        self.index, self.embedder = index, embedder
        self.dense_weight, self.candidates, self.dense_weight_foreign = dense_weight, candidates, dense_weight_foreign

    def query(self, text: str, lang: Lang | None = None) -> Query:
        lang = lang or detect_language(text)
        return Query(text, lang, self.embedder.encode([text])[0], tokenize(text, lang))

    def search(self, text: str, k: int = 5, lang: Lang | None = None) -> list[Passage]:
        if not self.index.chunks or not text.strip():
            return []
        return self.search_query(self.query(text, lang), k)

    def search_query(self, q: Query, k: int) -> list[Passage]:
        ix = self.index
        n = len(ix.chunks)
        c = min(self.candidates, n)
        _, dense_ids = ix.dense.search(q.vector[None, :], c)
        pools = [dense_ids[0][dense_ids[0] >= 0]]
        keyword = ix.bm25.get_scores(q.tokens) if q.tokens else np.zeros(n, np.float32)
        sent_kw = ix.sentence_bm25.get_scores(q.tokens) if q.tokens and len(ix.sentences) else np.zeros(len(ix.sentences), np.float32)
        pools.append(_top(keyword, c))
        pools.append(ix.sentences[_top(sent_kw, c), 0])
        ids = np.unique(np.concatenate(pools).astype(np.int64))
        # Per candidate: cosine with the chunk, best cosine and best BM25 among its sentences.
        cos = ix.embeddings[ids] @ q.vector
        starts, ends = ix.first_sentence[ids], ix.first_sentence[ids + 1]
        rows = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)]) if len(ids) else np.zeros(0, np.int64)
        owner = np.repeat(np.arange(len(ids)), ends - starts)
        s_cos = ix.sentence_embeddings[rows] @ q.vector
        best_cos = np.full(len(ids), -1.0, np.float32)
        np.maximum.at(best_cos, owner, s_cos)
        best_kw = np.zeros(len(ids), np.float32)
        np.maximum.at(best_kw, owner, sent_kw[rows])
        w = self.dense_weight if q.lang in self.embedder.languages or not self.embedder.languages else self.dense_weight_foreign
        fused = w * (_z(cos) + _z(best_cos)) / 2 + (1 - w) * (0.7 * _z(keyword[ids]) + 0.3 * _z(best_kw))
        order = np.argsort(-fused, kind="stable")[:k]
        passages = []
        for r, i in enumerate(order, start=1):
            mine = owner == i
            best = rows[mine][np.argmax(s_cos[mine])] if mine.any() else None
            span = tuple(int(x) for x in ix.sentences[best, 1:]) if best is not None else (0, len(ix.chunks[ids[i]].text))
            passages.append(Passage(r, float(fused[i]), ix.chunks[ids[i]], float(cos[i]), span, float(best_cos[i]), float(keyword[ids[i]]), int(ids[i])))
        return passages


def _top(scores: np.ndarray, c: int) -> np.ndarray:
    """Indices of the c highest positive scores (unordered)."""
    if len(scores) == 0:
        return np.zeros(0, np.int64)
    top = np.argpartition(-scores, c - 1)[:c] if c < len(scores) else np.arange(len(scores))
    return top[scores[top] > 0]


def _z(x: np.ndarray) -> np.ndarray:
    """Standardise over the candidates (zeros when they are all equal)."""
    sd = float(x.std())
    return (x - x.mean()) / sd if sd > 1e-9 else np.zeros_like(x)
