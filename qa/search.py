"""Hybrid search: candidates from FAISS and BM25, scored on the chunk and on its best sentence, fused by fitted weights."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .accents import restore
from .chunking import Chunk
from .embedders import Embedder
from .index import Index
from .text import Lang, detect_language, tokenize, vector_words

# What the first stage fuses, each standardised over one question's candidates. BM25 of a question in one language
# over a passage in another matches little but names and numbers, so it gets weights of its own ("_foreign").
FUSION_FEATURES = ("dense", "sentence_dense", "keyword", "sentence_keyword", "keyword_foreign", "sentence_keyword_foreign")
DEFAULT_FUSION = (0.25, 0.25, 0.35, 0.15, 0.05, 0.0)  # before any fit: dense and keywords alike


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
    words: tuple[str, ...] = ()  # its content words (features match them to a sentence's words, across languages too)
    word_vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))  # (len(words), dim)


@dataclass
class Pool:
    """One question's first-stage candidates: chunk rows and what fusion reads about each."""

    ids: np.ndarray  # (n,) chunk rows
    features: np.ndarray  # (n, len(FUSION_FEATURES)) float32, standardised over the candidates
    dense: np.ndarray  # (n,) cosine with the chunk
    sentence_dense: np.ndarray  # (n,) best cosine with one of its sentences
    best_sentence: np.ndarray  # (n,) index row of that sentence
    keyword: np.ndarray  # (n,) BM25 of the chunk
    sentence_keyword: np.ndarray  # (m,) BM25 of every index sentence (the second stage reads it too)


class Searcher:
    """search(query, k) over one loaded Index."""

    def __init__(self, index: Index, embedder: Embedder, weights=DEFAULT_FUSION, candidates: int = 100) -> None:
        import faiss

        faiss.omp_set_num_threads(1)  # one query at a time: threads cost more to wake than the search itself
        self.index, self.embedder, self.candidates = index, embedder, candidates
        self.weights = np.asarray(weights, dtype=np.float32)

    def query(self, text: str, lang: Lang | None = None) -> Query:
        lang = lang or detect_language(text)
        if lang == "fr":  # typed without accents: spelled as the documents spell it, for the vectors and the reader
            text = restore(text, self.index.accents)
        if lang in self.index.typos:  # "britnnique": the word of the documents in the question's language, "britannique"
            text = self.index.typos[lang].fix(text)
        words = tuple(vector_words(text, lang)) if self.index.terms else ()  # an index without word vectors: nothing to match
        vectors = self.embedder.encode([text, *words], kind="query", batch_size=16)
        return Query(text, lang, vectors[0], tokenize(text, lang), words, vectors[1:])

    def search(self, text: str, k: int = 5, lang: Lang | None = None) -> list[Passage]:
        if not self.index.chunks or not text.strip():
            return []
        return self.search_query(self.query(text, lang), k)

    def search_query(self, q: Query, k: int) -> list[Passage]:
        return self.rank(self.pool(q), k)

    def pool(self, q: Query) -> Pool:
        """The union of the dense, chunk BM25 and sentence BM25 candidates, with their scores."""
        ix = self.index
        n = len(ix.chunks)
        c = min(self.candidates, n)
        _, dense_ids = ix.dense.search(q.vector[None, :], c)
        keyword = ix.bm25.get_scores(q.tokens) if q.tokens else np.zeros(n, np.float32)
        sent_kw = ix.sentence_bm25.get_scores(q.tokens) if q.tokens and len(ix.sentences) else np.zeros(len(ix.sentences), np.float32)
        pools = [dense_ids[0][dense_ids[0] >= 0], _top(keyword, c), ix.sentences[_top(sent_kw, c), 0]]
        ids = np.unique(np.concatenate(pools).astype(np.int64))
        cos = ix.embeddings[ids] @ q.vector
        starts, ends = ix.first_sentence[ids], ix.first_sentence[ids + 1]
        rows = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)]) if len(ids) else np.zeros(0, np.int64)
        owner = np.repeat(np.arange(len(ids)), ends - starts)
        s_cos = ix.sentence_embeddings[rows] @ q.vector
        best_cos = np.full(len(ids), -1.0, np.float32)
        np.maximum.at(best_cos, owner, s_cos)
        best_row = np.full(len(ids), -1, np.int64)
        for j in np.argsort(s_cos, kind="stable"):  # ascending: the best sentence of each chunk is written last
            best_row[owner[j]] = rows[j]
        best_kw = np.zeros(len(ids), np.float32)
        np.maximum.at(best_kw, owner, sent_kw[rows])
        same = np.array([ix.chunks[i].lang == q.lang for i in ids], dtype=np.float32)
        kw, skw = _z(keyword[ids]), _z(best_kw)
        features = np.stack([_z(cos), _z(best_cos), kw * same, skw * same, kw * (1 - same), skw * (1 - same)], axis=1)
        return Pool(ids, features.astype(np.float32), cos, best_cos, best_row, keyword[ids], sent_kw)

    def rank(self, pool: Pool, k: int) -> list[Passage]:
        """The k best candidates of the pool by fused score."""
        fused = pool.features @ self.weights
        order = np.argsort(-fused, kind="stable")[:k]
        ix = self.index
        passages = []
        for r, i in enumerate(order, start=1):
            chunk = ix.chunks[pool.ids[i]]
            b = pool.best_sentence[i]
            span = tuple(int(x) for x in ix.sentences[b, 1:]) if b >= 0 else (0, len(chunk.text))
            passages.append(Passage(r, float(fused[i]), chunk, float(pool.dense[i]), span, float(pool.sentence_dense[i]),
                                    float(pool.keyword[i]), int(pool.ids[i])))
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
