"""Language-aware text helpers: language guess, accent-folding, BM25 tokens, sentence spans."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Literal

import pysbd
import Stemmer
from bm25s.stopwords import STOPWORDS_EN_PLUS, STOPWORDS_FRENCH

Lang = Literal["en", "fr"]
LANGS: tuple[Lang, ...] = ("en", "fr")
_STEMMER_NAMES = {"en": "english", "fr": "french"}
_WORD = re.compile(r"\w+", re.UNICODE)
_APOSTROPHE = re.compile(r"\b[cdjlmnst]['’](?=\w)|\bqu['’](?=\w)", re.IGNORECASE)  # French elisions: l'œil -> œil


def fold(text: str) -> str:
    """Lowercase and strip accents, so 'Électricité' and 'electricite' compare equal."""
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return text.replace("œ", "oe").replace("æ", "ae")


_STOP = {  # function words and question words: they say how something is asked, not what
    "en": frozenset(fold(w) for w in STOPWORDS_EN_PLUS) | {"s", "t", "whose", "could", "would", "may", "might", "also"},
    "fr": frozenset(fold(w) for w in STOPWORDS_FRENCH)
    | {"a", "d", "l", "c", "qu", "n", "s", "j", "m", "y", "t", "quel", "quelle", "quels", "quelles", "quoi", "ou", "quand",
       "comment", "pourquoi", "combien", "lequel", "laquelle", "lesquels", "lesquelles", "dont"},
}
# Words that tell the languages apart best (frequent in one, rare in the other).
_MARKERS = {
    "en": frozenset("the of and to is was what which who how are with for that this by from in on".split()),
    "fr": frozenset("le la les des du de et est sont une un qui que quel quelle quels pour dans sur avec au aux".split()),
}


def detect_language(text: str) -> Lang:
    """Guess English or French from marker words (enough for whole documents and for questions)."""
    words = [fold(w) for w in _WORD.findall(text[:5000])]
    en = sum(w in _MARKERS["en"] for w in words)
    fr = sum(w in _MARKERS["fr"] for w in words)
    if fr > en or (fr == en and re.search(r"[éèêàçùôî]", text)):
        return "fr"
    return "en"


@lru_cache(maxsize=None)
def _stemmer(lang: Lang) -> Stemmer.Stemmer:
    return Stemmer.Stemmer(_STEMMER_NAMES[lang])


def words(text: str) -> list[str]:
    """Folded word tokens (no stemming, stop words kept)."""
    return _WORD.findall(fold(_APOSTROPHE.sub(" ", text)))


def content_words(text: str, lang: Lang) -> list[str]:
    """Lowercase words (accents kept) minus the stop words of the language."""
    raw = _WORD.findall(_APOSTROPHE.sub(" ", text).casefold())
    return [w for w in raw if fold(w) not in _STOP[lang] and (len(w) > 1 or w.isdigit())]


def vector_words(text: str, lang: Lang) -> list[str]:
    """The content words that get a word vector (index vocabulary, question words): no numbers, each once, in order."""
    return list(dict.fromkeys(w for w in content_words(text, lang) if not any(ch.isdigit() for ch in w)))


def tokenize(text: str, lang: Lang) -> list[str]:
    """BM25 tokens: content words stemmed in the text's language, then accent-folded."""
    return [fold(w) for w in _stemmer(lang).stemWords(content_words(text, lang))]


@lru_cache(maxsize=None)
def _segmenter(lang: Lang) -> pysbd.Segmenter:
    return pysbd.Segmenter(language=lang, clean=False, char_span=True)


def sentence_spans(text: str, lang: Lang) -> list[tuple[int, int]]:
    """(start, end) of each sentence in text, trailing spaces excluded, covering all non-space text."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for piece in _segmenter(lang).segment(text):
        # pysbd's offsets can drift on odd input: locate the sentence ourselves from pos.
        sent = piece.sent.strip()
        if not sent:
            continue
        start = text.find(sent, pos)
        if start < 0:
            continue
        end = start + len(sent)
        spans.append((start, end))
        pos = end
    if not spans and text.strip():
        start = len(text) - len(text.lstrip())
        spans.append((start, len(text.rstrip())))
    return spans
