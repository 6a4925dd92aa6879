"""One-letter typos corrected to the documents' words: "britnnique" is read as "britannique" when the documents write it.

A question word that no passage in the question's language writes (accents aside) and that the language's word list
(qa/words.py) does not know, of at least MIN_LENGTH letters, becomes the passages' word one edit away (a letter dropped,
added, replaced, or two neighbours swapped) when it is the only one, or makes at least SHARE of the uses of those one
edit away. Held out, one typo cost 10 points of answers: the word matches nothing, and the decision reads a word no
passage holds as a sign that the documents lack the answer.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

from .text import cased_like, fold

MIN_LENGTH = 5  # shorter words are too often other real words one edit away
SHARE = 0.85  # the corrected spelling must make this share of the uses of the document words one edit away
_WORD = re.compile(r"\w+", re.UNICODE)
_LETTERS = "abcdefghijklmnopqrstuvwxyz"  # words are compared folded: lower case, no accents


def edits(w: str) -> set[str]:
    """Every string one edit from w: a letter dropped, two neighbours swapped, a letter replaced or added."""
    splits = [(w[:i], w[i:]) for i in range(len(w) + 1)]
    return ({a + b[1:] for a, b in splits if b} | {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
            | {a + c + b[1:] for a, b in splits if b for c in _LETTERS} | {a + c + b for a, b in splits for c in _LETTERS}) - {w}


class Corrector:
    """The documents' words (folded, with their uses), to find the word a typo was meant to be; known: the folded words of
    the language, which are never typos (held out, a word list cut the words changed in questions as written by 60%)."""

    def __init__(self, counts: Mapping[str, int], known: Collection[str] = frozenset(), min_length: int = MIN_LENGTH,
                 share: float = SHARE) -> None:
        self.min_length, self.share, self.known = min_length, share, known
        self.uses: dict[str, int] = {}
        spelling: dict[str, tuple[int, str]] = {}
        for w, c in counts.items():
            f = fold(w)
            self.uses[f] = self.uses.get(f, 0) + c
            if c > spelling.get(f, (0, ""))[0]:
                spelling[f] = (c, w)
        self.spelling = {f: w for f, (_, w) in spelling.items()}  # folded word -> its most used spelling

    def correct(self, word: str) -> str | None:
        """The document word this word was meant to be, or None (a document word or a known word itself, too short, or no
        clear one)."""
        f = fold(word)
        if len(f) < self.min_length or f in self.uses or f in self.known or not f.isascii() or not f.isalpha():
            return None
        near = sorted(v for v in edits(f) if v in self.uses)
        if not near:
            return None
        best = max(near, key=self.uses.__getitem__)
        if self.uses[best] < self.share * sum(self.uses[v] for v in near):
            return None
        return self.spelling[best]

    def fix(self, text: str) -> str:
        """text with each typo corrected (capitals kept); every other word untouched."""

        def one(m: re.Match) -> str:
            r = self.correct(m.group(0))
            return m.group(0) if r is None else cased_like(r, m.group(0))

        return _WORD.sub(one, text)
