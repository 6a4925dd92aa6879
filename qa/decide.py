"""The decision, fitted on data: which sentence answers, whether the documents answer at all, what to show first.

First-stage weights and four small models, fitted by qa/fit.py on ../shared/train (split by article) and shipped in qa/models/decision.npz:
- fusion: the first-stage weights of search.FUSION_FEATURES;
- sentence: the logit that a candidate sentence answers the question (features.SENTENCE_FEATURES);
- answerable: the probability that the best sentence answers (features.QUESTION_FEATURES);
- relevant: the probability that the best passage is at least on the question's subject, which separates "the
  documents do not state this; the closest passage says..." from "the documents do not say";
- phrase: the probability that the language model's short answer phrase is the answer (features.PHRASE_FEATURES).
The thresholds were chosen on the fitting articles; the held-out figures are in the file's metadata.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from .errors import ModelError
from .features import (CROSS_LANGUAGE, PHRASE_FEATURES, QUESTION_FEATURES, SENTENCE_FEATURES, Candidates, phrase_features,
                       question_features)
from .saved import load_npz, save_npz
from .search import FUSION_FEATURES, Passage

FORMAT = "qa-decision"
VERSION = 2  # bump when the features or the layout change; loading refuses another version
THRESHOLDS = ("answer", "answer_foreign", "relevant", "relevant_foreign", "also", "phrase")  # what decide() compares with
Outcome = Literal["answer", "closest", "none"]


@dataclass
class Linear:
    """A standardised linear score: ((x - mean) / scale) @ weights + bias."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.scale) @ self.weights + self.bias


def sentence_inputs(features: np.ndarray) -> np.ndarray:
    """What the sentence model reads: every feature for a sentence in the question's language; for one in another
    language only those that mean something across languages (its lexical overlap is then mostly names and numbers)."""
    same = features[:, SENTENCE_FEATURES.index("same_lang")][:, None]
    cross = features[:, [SENTENCE_FEATURES.index(c) for c in CROSS_LANGUAGE]]
    return np.hstack([features * same, cross * (1 - same), 1 - same]).astype(np.float32)


def question_inputs(features: np.ndarray) -> np.ndarray:
    """What the answerable and relevant models read: the question features, apart for a best sentence in another
    language (its scores run lower across languages, and its own intercept says so)."""
    same = features[:, QUESTION_FEATURES.index("same_lang")][:, None]
    return np.hstack([features * same, features * (1 - same), 1 - same]).astype(np.float32)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30, 30)))


@dataclass
class Decision:
    outcome: Outcome
    order: np.ndarray  # candidate indices, best first
    logits: np.ndarray  # per candidate
    p_answer: float  # probability that the best sentence answers
    p_relevant: float  # probability that the best passage is on the question's subject
    also: list[int] = field(default_factory=list)  # further candidates scored as answering too


@dataclass
class Decider:
    fusion: np.ndarray
    sentence: Linear
    answerable: Linear
    relevant: Linear
    phrase: Linear
    thresholds: dict[str, float]  # THRESHOLDS
    meta: dict  # how and on what it was fitted, and its held-out figures

    def sentence_logits(self, cands: Candidates) -> np.ndarray:
        """The logit that each candidate sentence answers the question."""
        return self.sentence(sentence_inputs(cands.features)) if len(cands) else np.zeros(0, np.float32)

    def accept_phrase(self, cands: Candidates, best: int, logit: float, sentence: str, span: tuple[int, int], question: str) -> bool:
        """Whether the model's short answer phrase (span of the best sentence) is shown first, in bold."""
        x = phrase_features(cands.features, best, logit, sentence, span, question)[None, :]
        return bool(sigmoid(self.phrase(x))[0] >= self.thresholds["phrase"])

    def decide(self, cands: Candidates, unknown: float, question: str) -> Decision:
        """Score the candidates; answer, point at the closest passage, or say the documents do not say."""
        if not len(cands):
            return Decision("none", np.zeros(0, np.int64), np.zeros(0, np.float32), 0.0, 0.0)
        logits = self.sentence_logits(cands)
        order = np.argsort(-logits, kind="stable")
        x = question_inputs(question_features(cands, logits, unknown, question)[None, :])
        p_answer = float(sigmoid(self.answerable(x))[0])
        p_relevant = float(sigmoid(self.relevant(x))[0])
        t = self.thresholds
        foreign = cands.features[order[0], SENTENCE_FEATURES.index("same_lang")] == 0
        if p_answer >= t["answer_foreign" if foreign else "answer"]:
            outcome: Outcome = "answer"
        else:
            outcome = "closest" if p_relevant >= t["relevant_foreign" if foreign else "relevant"] else "none"
        also = [int(i) for i in order[1:2] if outcome == "answer" and sigmoid(logits[i]) >= t["also"]]
        return Decision(outcome, order, logits, p_answer, p_relevant, also)

    # --- the file ---
    @classmethod
    def load(cls, path: Path | str) -> "Decider":
        """Read a fitted decision file; ModelError (one sentence) when it is missing, damaged or of another version."""
        meta, arrays = load_npz(path, FORMAT, VERSION, "decision", "refit it with `python -m qa.fit`")
        want = _feature_names()
        if any(meta.get("features", {}).get(k) != v for k, v in want.items()):
            raise ModelError(f"The decision file {path} was fitted on other features: refit it with `python -m qa.fit`.")
        lacking = sorted(set(THRESHOLDS) - set(meta.get("thresholds", {})))
        if lacking:
            raise ModelError(f"The decision file {path} lacks the threshold {lacking[0]!r}: refit it with `python -m qa.fit`.")
        try:
            return cls(
                fusion=arrays["fusion"],
                sentence=_linear(arrays, "sentence"),
                answerable=_linear(arrays, "answerable"),
                relevant=_linear(arrays, "relevant"),
                phrase=_linear(arrays, "phrase"),
                thresholds={k: float(v) for k, v in meta["thresholds"].items()},
                meta=meta,
            )
        except KeyError as exc:
            raise ModelError(f"The decision file {path} lacks {exc}: refit it with `python -m qa.fit`.") from None

    def save(self, path: Path | str) -> None:
        """Write the file atomically (a temporary file renamed over the old one)."""
        arrays = {"fusion": self.fusion}
        for name, m in (("sentence", self.sentence), ("answerable", self.answerable), ("relevant", self.relevant), ("phrase", self.phrase)):
            arrays.update({f"{name}.{k}": np.asarray(v, np.float32) for k, v in m.__dict__.items()})
        save_npz(path, FORMAT, VERSION, {**self.meta, "thresholds": self.thresholds, "features": _feature_names()}, arrays)


def _linear(arrays: dict, name: str) -> Linear:
    return Linear(arrays[f"{name}.mean"], arrays[f"{name}.scale"], arrays[f"{name}.weights"], float(arrays[f"{name}.bias"]))


def _feature_names() -> dict[str, list[str]]:
    return {"fusion": list(FUSION_FEATURES), "sentence": list(SENTENCE_FEATURES), "cross": list(CROSS_LANGUAGE),
            "question": list(QUESTION_FEATURES), "phrase": list(PHRASE_FEATURES)}


def reorder(passages: list[Passage], cands: Candidates, logits: np.ndarray) -> tuple[list[Passage], Candidates]:
    """Passages by their best sentence's logit (ties and sentence-less passages keep their order), candidates remapped."""
    best = np.full(len(passages), -np.inf)
    np.maximum.at(best, cands.passage, logits)
    order = sorted(range(len(passages)), key=lambda i: (-best[i], i))
    new = {old: pos for pos, old in enumerate(order)}
    ranked = [dataclasses.replace(passages[i], rank=r) for r, i in enumerate(order, start=1)]
    return ranked, dataclasses.replace(cands, passage=np.array([new[int(p)] for p in cands.passage], dtype=np.int64))
