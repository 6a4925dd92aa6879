"""The assistant the CLI, the app and the HTTP API share: index, retriever, reranker and generator, loaded once."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from . import answer as A
from . import embedders, generators
from .config import Config
from .errors import IndexMissingError, QAError
from .index import Index, current_generation
from .search import Passage, Searcher


class Assistant:
    """Loads what it needs lazily; reloads the index when `qa index` publishes a new generation."""

    def __init__(self, cfg: Config, rerank: bool = True) -> None:
        self.cfg = cfg
        self.use_rerank = rerank
        self._lock = threading.Lock()
        self._searcher: Searcher | None = None
        self._embedder = None
        self._generator = None
        self._scorer = None
        self.index_error: str | None = None  # why the newest index could not be loaded (the previous one serves)

    # --- loading ---
    @property
    def embedder(self):
        if self._embedder is None:
            self._embedder = embedders.create(self.cfg.embedder, cache_dir=self.cfg.cache_dir)
        return self._embedder

    @property
    def generator(self) -> generators.Generator:
        if self._generator is None:
            self._generator = generators.create(self.cfg.generator, **self.cfg.__dict__)
        return self._generator

    @property
    def scorer(self):
        """The local language model used to rerank passages (None when reranking is off)."""
        if self._scorer is None and self.use_rerank:
            gen = self.generator if self.cfg.generator == "gemma-270m" else generators.create("gemma-270m", **self.cfg.__dict__)
            self._scorer = gen
        return self._scorer

    def searcher(self) -> Searcher:
        """The searcher over the newest loadable index (checked on every call: a stat of CURRENT)."""
        with self._lock:
            index_dir = Path(self.cfg.index_dir)
            newest = current_generation(index_dir)
            if self._searcher is not None and (newest is None or self._searcher.index.generation == newest):
                return self._searcher
            try:
                index = Index.load(index_dir, model_id=embedders.spec(self.cfg.embedder).model_id)
            except QAError as exc:
                if self._searcher is None:
                    raise
                self.index_error = str(exc)  # keep serving the index already in memory
                return self._searcher
            self._searcher = Searcher(index, self.embedder, self.cfg.dense_weight, self.cfg.candidates)
            self.index_error = None
            return self._searcher

    def warm_up(self) -> None:
        """Load the index and the models now rather than on the first question."""
        self.searcher()
        _ = self.generator
        _ = self.scorer

    def health(self) -> dict:
        s = self._searcher
        return {
            "index_loaded": s is not None,
            "index_generation": s.index.generation if s else None,
            "chunks": len(s.index.chunks) if s else 0,
            "model_loaded": self._generator is not None,
            "index_error": self.index_error,
        }

    # --- retrieval ---
    def retrieve(self, query: str, k: int | None = None, rerank: bool | None = None) -> list[Passage]:
        searcher = self.searcher()
        passages = searcher.search(query, k=max(k or self.cfg.top_k, self.cfg.rerank_depth))
        if (self.use_rerank if rerank is None else rerank) and len(passages) > 1:
            passages = self.rerank(query, passages)
        return passages[: k or self.cfg.top_k]

    def rerank(self, query: str, passages: list[Passage]) -> list[Passage]:
        """Reorder the top passages by how likely the language model finds the question given each one."""
        depth = min(self.cfg.rerank_depth, len(passages))
        head = passages[:depth]
        texts = [f"{p.chunk.title}\n{p.chunk.text[slice(*A.window(p))]}\n\nQuestion about this passage: " for p in head]
        scores = self.scorer.score(texts, query)
        order = np.argsort(-np.array(scores), kind="stable")
        ranked = [head[i] for i in order] + passages[depth:]
        return [Passage(r, p.score, p.chunk, p.dense, p.best_sentence, p.sentence_dense, p.keyword) for r, p in enumerate(ranked, 1)]

    # --- answering ---
    def stream(self, question: object, history: object = None) -> Iterator[dict]:
        """Events: {"type": "sources"}, then {"type": "token"} pieces, then {"type": "answer"} (verified)."""
        t0 = time.perf_counter()
        cfg = self.cfg
        text, turns = A.validate(question, history, cfg)
        prepared = A.preprocess(text, turns)
        passages = self.retrieve(prepared.query, k=cfg.evidence_passages)
        timings = {"retrieve_s": time.perf_counter() - t0}
        if not passages:
            yield {"type": "sources", "query": prepared.query, "passages": []}
            ans = A.refusal(prepared, {**timings, "first_token_s": 0.0, "total_s": time.perf_counter() - t0})
            yield {"type": "answer", "answer": ans}
            return
        span = A.window(passages[0])
        score = A.evidence_score(prepared, passages[0], span, self.searcher().index.idf)
        evidence = A.Evidence(passages, span, score)
        yield {"type": "sources", "query": prepared.query, "passages": [p.to_dict() for p in passages]}
        if score < cfg.answerable_threshold:
            ans = A.refusal(prepared, {**timings, "first_token_s": time.perf_counter() - t0, "total_s": time.perf_counter() - t0})
            yield {"type": "answer", "answer": ans}
            return
        gen = self.generator
        prompt, system = A.build_prompt(prepared, evidence, gen.small)
        allowed = passages[0].chunk.text[span[0] : span[1]] if gen.small else None
        pieces: list[str] = []
        for piece in gen.stream(prompt, max_new_tokens=cfg.max_new_tokens if gen.small else 200, stop=("\n",) if gen.small else (),
                                allowed_text=allowed, system=system):
            if not pieces:
                timings["first_token_s"] = time.perf_counter() - t0
            pieces.append(piece)
            yield {"type": "token", "text": piece}
        timings.setdefault("first_token_s", time.perf_counter() - t0)
        ans = A.postprocess(prepared, evidence, "".join(pieces), gen.small, cfg)
        timings["total_s"] = time.perf_counter() - t0
        ans.timings = timings
        yield {"type": "answer", "answer": ans}

    def ask(self, question: object, history: object = None) -> A.Answer:
        for event in self.stream(question, history):
            if event["type"] == "answer":
                return event["answer"]
        raise QAError("No answer was produced.")  # unreachable: stream always ends with an answer
