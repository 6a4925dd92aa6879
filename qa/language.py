"""Language identification, English or French: a logistic model over a text's hashed character n-grams and words, and
how much more French than English uses its words (pyspellchecker's word lists, qa/words.py).

Fitted on data by `python -m qa.fit_language` (questions and sentences of the fitting articles and one- to three-word
pieces of them, also without accents, as visitors often type them) and shipped in qa/models/language.npz; its
held-out figures are in the file's metadata.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np

from .saved import load_npz, save_npz

FORMAT = "qa-language"
VERSION = 2  # bump when the features or the layout change; loading refuses another version
MODEL_FILE = Path(__file__).resolve().parent / "models" / "language.npz"
BUCKETS = 1 << 16  # n-grams are hashed into this many weights
ORDERS = (1, 2, 3, 4)  # character n-gram lengths, over the words padded by spaces
WORD_WEIGHT = 3  # each whole word is also a feature, counted this many times (function words tell the languages apart)
MAX_CHARS = 3000  # a long text is judged on its beginning
LEXICON_CLIP = 8.0  # a word's log-ratio of French to English uses is clipped to this (a word one list lacks: about ±10)
LEXICON_SCALE = 0.25  # the mean log-ratio enters at this scale: its weight is fitted, the scale sets how much L2 holds it
HINT_LOGIT = 2.0  # prior log-odds (7 to 1) that a visitor writes in the language of their interface or of their last question
_LETTERS = re.compile(r"[^\W\d_]+")

Lang = Literal["en", "fr"]


def ngram_ids(text: str) -> np.ndarray:
    """Hashed ids of the character n-grams and the words of text (lowercased, accents kept, digits and punctuation
    dropped)."""
    words = _LETTERS.findall(text[:MAX_CHARS].casefold())
    if not words:
        return np.zeros(0, np.int64)
    padded = " " + " ".join(words) + " "
    grams = [padded[i : i + n] for n in ORDERS for i in range(len(padded) - n + 1)] + [f"w:{w}" for w in words] * WORD_WEIGHT
    return np.array([zlib.crc32(g.encode("utf-8")) & (BUCKETS - 1) for g in grams], np.int64)


def lexicon_ratio(text: str) -> float:
    """Mean over the words of text of log(share of French uses / share of English uses) in the word lists (folded,
    smoothed by one use, clipped), times LEXICON_SCALE; 0 for a text without letters."""
    from . import words  # imported here: qa.words and qa.text import this module
    from .text import fold

    (fr, fr_total), (en, en_total) = words.folded_frequencies("fr"), words.folded_frequencies("en")
    folded = [fold(w) for w in _LETTERS.findall(text[:MAX_CHARS].casefold())]
    if not folded:
        return 0.0
    ratios = np.log([(fr.get(w, 0) + 1) / fr_total for w in folded]) - np.log([(en.get(w, 0) + 1) / en_total for w in folded])
    return float(np.clip(ratios, -LEXICON_CLIP, LEXICON_CLIP).mean() * LEXICON_SCALE)


class LanguageModel:
    """The fitted weights: a text's logit of French is the mean weight of its n-grams, plus the lexicon weight times
    its lexicon_ratio, plus the bias."""

    def __init__(self, weights: np.ndarray, lexicon: float, bias: float, meta: dict | None = None) -> None:
        self.weights = np.asarray(weights, np.float32)
        self.lexicon = float(lexicon)
        self.bias = float(bias)
        self.meta = meta or {}

    def logit(self, text: str) -> float:
        """Log-odds that text is French (0 for a text without letters)."""
        ids = ngram_ids(text)
        return float(self.weights[ids].mean() + self.lexicon * lexicon_ratio(text) + self.bias) if len(ids) else 0.0

    def guess(self, text: str, hint: Lang | None = None) -> Lang:
        """French when the model finds it more likely; English otherwise (and for a text without letters). A hint (the
        language the visitor is likely to write in) adds HINT_LOGIT of prior odds: it decides a name typed alone, not a
        question (held out, whole questions asked against the hint stay 0.97-1.00 right)."""
        prior = 0.0 if hint is None else (HINT_LOGIT if hint == "fr" else -HINT_LOGIT)
        return "fr" if self.logit(text) + prior > 0 else "en"

    def save(self, path: Path) -> None:
        """Write the file atomically (float16 weights)."""
        meta = {**self.meta, "buckets": BUCKETS, "orders": list(ORDERS), "word_weight": WORD_WEIGHT,
                "lexicon_clip": LEXICON_CLIP, "lexicon_scale": LEXICON_SCALE}
        save_npz(path, FORMAT, VERSION, meta, {"weights": self.weights.astype(np.float16), "lexicon": np.float32(self.lexicon),
                                               "bias": np.float32(self.bias)})

    @classmethod
    def load(cls, path: Path) -> "LanguageModel":
        meta, arrays = load_npz(path, FORMAT, VERSION, "language model", "refit it with `python -m qa.fit_language`")
        return cls(arrays["weights"].astype(np.float32), float(arrays["lexicon"]), float(arrays["bias"]), meta)


@lru_cache(maxsize=None)
def shipped() -> LanguageModel:
    """The shipped model, loaded once."""
    return LanguageModel.load(MODEL_FILE)


@lru_cache(maxsize=None)
def digest() -> str:
    """A short digest of the shipped model's weights: part of the index settings (other weights re-detect every
    document's language; the same weights refitted change nothing)."""
    m = shipped()
    return hashlib.sha1(m.weights.astype(np.float16).tobytes() + np.float32(m.lexicon).tobytes()
                        + np.float32(m.bias).tobytes()).hexdigest()[:12]
