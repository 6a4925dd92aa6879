"""The assistant the CLI, the app and the HTTP API share: index, retriever, reranker and generator, loaded once."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from . import answer as A
from . import embedders, generators
from .config import Config
from .errors import QAError
from .index import Index, current_generation
from .search import Passage, Query, Searcher
from .verify import complete_sentences, parse_claims


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
            if self._searcher is not None and newest is None:
                self.index_error = f"The index in {index_dir} has disappeared; serving the copy in memory until `qa index` rebuilds it."
                return self._searcher
            if self._searcher is not None and self._searcher.index.generation == newest:
                return self._searcher
            try:
                index = Index.load(index_dir, model_id=embedders.spec(self.cfg.embedder).model_id)
            except QAError as exc:
                if self._searcher is None:
                    raise
                self.index_error = str(exc)  # keep serving the index already in memory
                return self._searcher
            self._searcher = Searcher(index, self.embedder, self.cfg.dense_weight, self.cfg.candidates, self.cfg.dense_weight_foreign)
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
    def retrieve(self, query: str, k: int | None = None, rerank: bool | None = None, lang=None) -> list[Passage]:
        """The top k passages for query: hybrid search, then reranked by the language model (if on)."""
        searcher = self.searcher()
        return self._retrieve(searcher, searcher.query(query, lang), k or self.cfg.top_k, rerank)

    def _retrieve(self, searcher: Searcher, q: Query, k: int, rerank: bool | None, rerank_text: str | None = None) -> list[Passage]:
        passages = searcher.search_query(q, max(k, self.cfg.rerank_depth))
        if (self.use_rerank if rerank is None else rerank) and len(passages) > 1:
            passages = self.rerank(rerank_text or q.text, passages)
        return passages[:k]

    def rerank(self, query: str, passages: list[Passage]) -> list[Passage]:
        """Reorder the top passages by how likely the language model finds the question given each one."""
        depth = min(self.cfg.rerank_depth, len(passages))
        head = passages[:depth]
        texts = [f"{p.chunk.title}\n{p.chunk.text[slice(*A.window(p))]}\n\nQuestion about this passage: " for p in head]
        scores = self.scorer.score(texts, query)
        order = np.argsort(-np.array(scores), kind="stable")
        ranked = [head[i] for i in order] + passages[depth:]
        return [dataclasses.replace(p, rank=r) for r, p in enumerate(ranked, 1)]

    def translate(self, text: str, src, dst) -> str:
        """The question in the documents' language, by the generator (few-shot); the original if that fails."""
        out = "".join(self.generator.stream(A.translation_prompt(text, src, dst), max_new_tokens=48, stop=("\n",))).strip()
        return A.keep_names(text, out) if out and len(out) < 3 * len(text) + 20 else text

    def documents_language(self, index: Index, lang):
        """The language to search in: the question's if enough documents are in it, else the documents' main one."""
        shares = index.languages
        if not shares or shares.get(lang, 0.0) >= 0.2:
            return lang
        return max(shares, key=shares.get)

    # --- answering ---
    def prepare(self, question: object, history: object = None) -> tuple[A.Prepared, list[Passage], A.Evidence, dict]:
        """Everything before generation: validate, rewrite, translate, retrieve, pick evidence, score answerability."""
        cfg = self.cfg
        text, turns = A.validate(question, history, cfg)
        prepared = A.preprocess(text, turns)
        searcher = self.searcher()
        index = searcher.index
        target = self.documents_language(index, prepared.lang)
        if target != prepared.lang:
            prepared.focus = self.translate(prepared.focus, prepared.lang, target)
            if prepared.context:
                prepared.context = self.translate(prepared.context, prepared.lang, target)
            prepared.search_lang = target
        q = searcher.query(prepared.query, prepared.search_lang)
        focus = searcher.query(prepared.focus, prepared.search_lang) if prepared.context else q
        passages = self._retrieve(searcher, q, cfg.top_k, None, rerank_text=prepared.focus)
        top = passages[: cfg.evidence_passages]
        spans = [[tuple(int(v) for v in x) for x in index.chunk_sentences(p.row)] for p in top]
        sims = [(index.sentence_embeddings[index.first_sentence[p.row] : index.first_sentence[p.row + 1]] @ focus.vector).tolist() for p in top]
        chosen = A.select_sentences(prepared, top, spans, sims, index.idf)
        features = A.evidence_features(prepared, chosen, top, index.idf) if chosen else {}
        evidence = A.Evidence(top, chosen, A.evidence_score(features) if chosen else float("-inf"))
        return prepared, passages, evidence, features

    def stream(self, question: object, history: object = None) -> Iterator[dict]:
        """Events: "sources", "evidence", then "token" pieces, then "answer" (verified)."""
        t0 = time.perf_counter()
        prepared, passages, evidence, features = self.prepare(question, history)
        timings = {"retrieve_s": time.perf_counter() - t0}
        yield {"type": "sources", "query": prepared.query, "passages": [p.to_dict() for p in passages]}
        yield {"type": "evidence", "score": evidence.score, "features": features}
        if evidence.score < self.cfg.answerable_threshold:
            now = time.perf_counter() - t0
            yield {"type": "answer", "answer": A.refusal(prepared, {**timings, "first_token_s": now, "total_s": now})}
            return
        gen = self.generator
        prompt, system = A.build_prompt(prepared, evidence, gen.small)
        if not gen.small:
            yield from self._stream_large(prepared, evidence, prompt, system, timings, t0)
            return
        pieces: list[str] = []
        for piece in gen.stream(prompt, **self.generation_options(evidence, system)):
            if not pieces:
                timings["first_token_s"] = time.perf_counter() - t0
            pieces.append(piece)
            yield {"type": "token", "text": piece}
        timings.setdefault("first_token_s", time.perf_counter() - t0)
        ans = A.postprocess(prepared, evidence, "".join(pieces), gen.small, self.cfg)
        timings["total_s"] = time.perf_counter() - t0
        ans.timings = timings
        yield {"type": "answer", "answer": ans}

    def _stream_large(self, prepared: A.Prepared, evidence: A.Evidence, prompt: str, system: str | None,
                      timings: dict[str, float], t0: float) -> Iterator[dict]:
        """Large model: each complete sentence is checked against the span it will cite before any of it is shown; only
        verified (possibly re-cited) sentences become "token" events, and the answer is exactly what they showed."""
        checker = A.ClaimChecker(prepared, evidence, self.cfg)
        shown: list[str] = []

        def show(text: str) -> Iterator[dict]:
            for claim in parse_claims(text, prepared.lang):
                sentence = checker.add(claim)
                if sentence:
                    timings.setdefault("first_token_s", time.perf_counter() - t0)
                    shown.append(sentence if not shown else " " + sentence)
                    yield {"type": "token", "text": shown[-1]}

        pending = ""
        stream = self.generator.stream(prompt, **self.generation_options(evidence, system))
        try:
            for piece in stream:
                pending += piece
                done, pending = complete_sentences(pending, prepared.lang)
                for sentence in done:
                    yield from show(sentence)
                if checker.full:
                    break  # the answer is long enough: stop the model
        finally:
            close = getattr(stream, "close", None)
            if close:
                close()  # ends the HTTP request when the answer is full or the client has gone
        if not checker.full:
            yield from show(pending)  # the stream has ended: its last sentence is complete
        ans = checker.answer()
        if ans.refused:
            yield {"type": "token", "text": ans.answer}
        timings.setdefault("first_token_s", time.perf_counter() - t0)
        timings["total_s"] = time.perf_counter() - t0
        ans.timings = timings
        yield {"type": "answer", "answer": ans}

    def generation_options(self, evidence: A.Evidence, system: str | None) -> dict:
        """Bounds and stops: a small model writes one short line from the evidence's tokens; a large one, cited sentences."""
        if self.generator.small:
            return {"max_new_tokens": self.cfg.max_new_tokens, "stop": ("\n",), "allowed_text": A.evidence_text(evidence), "system": system}
        return {"max_new_tokens": 200, "stop": (), "allowed_text": None, "system": system}

    def ask(self, question: object, history: object = None) -> A.Answer:
        for event in self.stream(question, history):
            if event["type"] == "answer":
                return event["answer"]
        raise QAError("No answer was produced.")  # unreachable: stream always ends with an answer
