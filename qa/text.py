"""Language-aware text helpers: language guess, accent-folding, BM25 tokens, sentence spans."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import pysbd
import Stemmer
from bm25s.stopwords import STOPWORDS_EN_PLUS, STOPWORDS_FRENCH

from .language import Lang, shipped

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


def cased_like(spelling: str, typed: str) -> str:
    """spelling with the capitals of typed: all capitals, a capital first, or none."""
    if typed.isupper() and len(typed) > 1:
        return spelling.upper()
    return spelling[0].upper() + spelling[1:] if typed[:1].isupper() else spelling


def detect_language(text: str, hint: Lang | None = None) -> Lang:
    """Guess English or French (qa/language.py: a model fitted on questions and sentences, accented or not); a hint
    tips the balance where the text alone hardly tells (a name typed alone)."""
    return shipped().guess(text, hint)


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
