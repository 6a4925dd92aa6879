"""The assistant the CLI, the app and the HTTP API share: index, retriever, reader, decision and generator, loaded once."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Iterator

from . import answer as A
from . import embedders, generators
from . import features as F
from .config import Config
from .decide import Decider, reorder
from .errors import QAError
from .index import Index, current_generation
from .reader import Reader
from .search import Passage, Searcher
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
        self._decider = None
        self._reader: Reader | None = None
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
    def decider(self) -> Decider:
        """The fitted decision (the decision_file setting)."""
        if self._decider is None:
            self._decider = Decider.load(self.cfg.decision_file)
        return self._decider

    @property
    def reader(self) -> Reader:
        """The fine-tuned reader (the reader_file setting)."""
        if self._reader is None:
            self._reader = Reader(self.cfg.reader_file)
        return self._reader

    @property
    def large(self) -> bool:
        """Whether the generator is a large model that writes the answer's sentences (known without loading it)."""
        return not generators.spec(self.cfg.generator).small

    @property
    def writes(self) -> bool:
        """Whether the generator writes any of the answer: a large model its sentences, a small one the short answer only
        when short_answer is "generator" (otherwise the reader's span is the short answer and the generator is not loaded)."""
        return self.large or self.cfg.short_answer == "generator"

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
            self._searcher = Searcher(index, self.embedder, self.decider.fusion, self.cfg.candidates)
            self.index_error = None
            return self._searcher

    def warm_up(self) -> None:
        """Load the index and the models now rather than on the first question."""
        index = self.searcher().index
        _ = index.accents, index.typos
        _ = self.reader
        if self.writes:
            _ = self.generator

    def health(self) -> dict:
        s = self._searcher
        return {
            "index_loaded": s is not None,
            "index_generation": s.index.generation if s else None,
            "chunks": len(s.index.chunks) if s else 0,
            "model_loaded": self._reader is not None and (self._generator is not None or not self.writes),
            "index_error": self.index_error,
        }

    # --- retrieval ---
    def retrieve(self, query: str, k: int | None = None, rerank: bool | None = None, lang=None) -> list[Passage]:
        """The top k passages for query: hybrid search, then (rerank) reordered by their best sentence's score."""
        searcher = self.searcher()
        q = searcher.query(query, lang)
        k = k or self.cfg.top_k
        pool = searcher.pool(q)
        if not (self.use_rerank if rerank is None else rerank):
            return searcher.rank(pool, k)
        passages = searcher.rank(pool, max(k, self.cfg.sentence_passages))
        cands = F.candidates(q, passages, searcher.index, pool.sentence_keyword, self.read(q.text, passages))
        return reorder(passages, cands, self.decider.sentence_logits(cands))[0][:k]

    def read(self, question: str, passages: list[Passage]):
        """The reader's readings of the first reader_passages passages."""
        return self.reader.read(question, [(p.chunk.title, p.chunk.text) for p in passages[: self.cfg.reader_passages]])

    # --- answering ---
    def prepare(self, question: object, history: object = None, lang: object = None) -> tuple[A.Prepared, A.Evidence]:
        """Everything before generation: validate, rewrite a follow-up, retrieve, score the sentences, decide."""
        cfg = self.cfg
        text, turns = A.validate(question, history, cfg)
        prepared = A.preprocess(text, turns, A.interface_language(lang))
        searcher = self.searcher()
        index = searcher.index
        q = searcher.query(prepared.query, prepared.lang)
        pool = searcher.pool(q)
        passages = searcher.rank(pool, cfg.sentence_passages)
        focus, keyword = q, pool.sentence_keyword
        if prepared.context:  # a follow-up: the sentences answer its focus, the context only helped find them
            focus = searcher.query(prepared.focus, prepared.lang)
            keyword = index.sentence_bm25.get_scores(focus.tokens) if focus.tokens else keyword * 0
        cands = F.candidates(focus, passages, index, keyword, self.read(focus.text, passages))
        decision = self.decider.decide(cands, F.unknown_share(focus, index), focus.text)
        passages, cands = reorder(passages, cands, decision.logits)
        return prepared, A.Evidence(passages, cands, decision)

    def stream(self, question: object, history: object = None, lang: object = None) -> Iterator[dict]:
        """Events: "sources", "decision", then "token" (text that stays: a prefix of the answer), then "answer". lang: the
        visitor's interface language, a hint where the question alone hardly tells its language."""
        t0 = time.perf_counter()
        prepared, evidence = self.prepare(question, history, lang)
        timings = {"retrieve_s": time.perf_counter() - t0}
        d = evidence.decision
        yield {"type": "sources", "query": prepared.query, "passages": [p.to_dict() for p in evidence.passages[: self.cfg.top_k]]}
        yield {"type": "decision", "outcome": d.outcome, "p_answer": d.p_answer, "p_relevant": d.p_relevant}
        if d.outcome != "none" and self.large:  # a large model reads the passages itself; its sentences are verified
            prompt, system = A.build_prompt(prepared, evidence, False)
            yield from self._stream_large(prepared, evidence, prompt, system, timings, t0)
            return
        short = None
        if d.outcome == "answer":
            best = evidence.best()
            span = self._phrase(prepared, evidence, best)
            if span and self.decider.accept_phrase(evidence.candidates, best, float(d.logits[best]), evidence.text(best), span,
                                                   prepared.focus):
                short = span
        ans = A.compose(prepared, evidence, short, self.cfg)
        timings["first_token_s"] = time.perf_counter() - t0
        yield {"type": "token", "text": ans.answer}
        timings["total_s"] = time.perf_counter() - t0
        ans.timings = timings
        yield {"type": "answer", "answer": ans}

    def _phrase(self, prepared: A.Prepared, evidence: A.Evidence, best: int) -> tuple[int, int] | None:
        """The short answer's span in the best sentence: the reader's, or (short_answer = "generator") the small model's."""
        sentence = evidence.text(best)
        if self.cfg.short_answer == "reader":
            span = evidence.candidates.reader_span(best)
            return A.reader_phrase(sentence, span, prepared.focus, prepared.lang) if span else None
        prompt, _ = A.build_prompt(prepared, evidence, True)
        generated = "".join(self.generator.stream(prompt, max_new_tokens=self.cfg.max_new_tokens, stop=("\n",), allowed_text=sentence))
        return A.phrase_span(generated, sentence, prepared.focus, prepared.lang)

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
        stream = self.generator.stream(prompt, **self.generation_options(system))
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
        if ans.refused:  # nothing verified: the closest passage, quoted as a refusal
            ans = A.compose(prepared, evidence, None, self.cfg, outcome="closest")
            yield {"type": "token", "text": ans.answer}
        timings.setdefault("first_token_s", time.perf_counter() - t0)
        timings["total_s"] = time.perf_counter() - t0
        ans.timings = timings
        yield {"type": "answer", "answer": ans}

    def generation_options(self, system: str | None) -> dict:
        """Bounds for a large model writing cited sentences."""
        return {"max_new_tokens": 200, "stop": (), "allowed_text": None, "system": system}

    def ask(self, question: object, history: object = None, lang: object = None) -> A.Answer:
        for event in self.stream(question, history, lang):
            if event["type"] == "answer":
                return event["answer"]
        raise QAError("No answer was produced.")  # unreachable: stream always ends with an answer
