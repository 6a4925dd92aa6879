"""Accents a visitor left out, put back: "quelles atrocites ont ete commises" is read as "quelles atrocités ont été commises".

A French question typed without accents loses the vectors' and the reader's grip on its words (held out, PIAF questions
folded are answered 3 points less often, French questions over English documents 10 points less). Each plain word is
given the accented spelling the documents' French passages mostly use, or else the one a lexicon counted on a French
word list uses (shipped in qa/models/accents.npz, with the share that makes a spelling dominant, chosen on questions;
refit with `python -m qa.fit_accents`); a word the documents mostly write plain is kept, and so are "a", "ou" and
"trouve", which French uses plain as often, and words English uses far more often than French their accented spelling
("the" is not "thé").
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from functools import lru_cache
from pathlib import Path

import numpy as np

from .errors import ModelError
from .saved import load_npz, save_npz
from .text import cased_like, fold

FORMAT = "qa-accents"
VERSION = 1  # bump when the layout changes; loading refuses another version
MODEL_FILE = Path(__file__).resolve().parent / "models" / "accents.npz"
_WORD = re.compile(r"\w+", re.UNICODE)


class Lexicon:
    """Fitted on French text: plain spelling -> its dominant accented spelling, and the plain words French mostly writes
    plain although an accented spelling exists ("a", "ou", "marche")."""

    def __init__(self, forms: Mapping[str, str], kept: Iterable[str] = (), meta: dict | None = None) -> None:
        self.forms = dict(forms)
        self.kept = frozenset(kept)
        self.meta = meta or {}

    def save(self, path: Path) -> None:
        """Write the file atomically: each list as UTF-8 lines (the plain spellings of forms are their folds)."""
        lines = {"accented": sorted(self.forms.values()), "kept": sorted(self.kept)}
        save_npz(path, FORMAT, VERSION, self.meta, {k: np.frombuffer("\n".join(v).encode("utf-8"), np.uint8) for k, v in lines.items()})

    @classmethod
    def load(cls, path: Path) -> "Lexicon":
        meta, arrays = load_npz(path, FORMAT, VERSION, "accent lexicon", "refit it with `python -m qa.fit_accents`")
        try:
            accented, kept = (arrays[k].tobytes().decode("utf-8").split("\n") for k in ("accented", "kept"))
        except (KeyError, UnicodeDecodeError) as exc:
            raise ModelError(f"The accent lexicon file {path} is damaged ({exc}): refit it with `python -m qa.fit_accents`.") from None
        return cls({fold(w): w for w in accented if w}, [w for w in kept if w], meta)

    @classmethod
    def fit(cls, counts: Mapping[str, int], share: float, min_count: int, meta: dict | None = None,
            drop: Collection[str] = ()) -> "Lexicon":
        """The lexicon of these word counts (share and min_count as in lexicon_forms, kept in meta), less the plain
        words in drop (left as written, not kept plain)."""
        forms = lexicon_forms(counts, share, min_count)
        accentable = {fold(w) for w in counts if fold(w) != w}
        kept = {w for w in counts if w in accentable and w not in forms}
        return cls({p: a for p, a in forms.items() if p not in drop}, kept, {**(meta or {}), "share": share, "min_count": min_count})


@lru_cache(maxsize=None)
def shipped() -> Lexicon:
    """The shipped lexicon, loaded once."""
    return Lexicon.load(MODEL_FILE)


def lexicon_forms(counts: Mapping[str, int], share: float, min_count: int) -> dict[str, str]:
    """Plain word -> its most frequent accented spelling, where that spelling is at least share of the word's uses
    (the plain spelling's included) and seen at least min_count times."""
    uses: dict[str, dict[str, int]] = {}
    for w, c in counts.items():
        uses.setdefault(fold(w), {})[w] = c
    forms = {}
    for plain, spellings in uses.items():
        best = max(sorted(spellings), key=spellings.get)
        if best != plain and plain.isalpha() and spellings[best] >= min_count and spellings[best] >= share * sum(spellings.values()):
            forms[plain] = best
    return forms


def forms_for(counts: Mapping[str, int], lexicon: Lexicon, written: Collection[str] = ()) -> dict[str, str]:
    """The spellings to restore for documents whose French passages use each word counts times and which write the
    words written (in any language): their own dominant spellings (by the lexicon's share) except for words French
    mostly writes plain, then the lexicon's for the plain words the documents never write ("conference" in an
    English passage stays)."""
    own = lexicon_forms(counts, lexicon.meta["share"], lexicon.meta["min_count"])
    lexicon_part = {p: a for p, a in lexicon.forms.items() if p not in counts and p not in written}
    return lexicon_part | {p: a for p, a in own.items() if p not in lexicon.kept}


def word_counts(texts: Iterable[str]) -> Counter:
    """Uses of each lowercase alphabetic word in texts."""
    counts: Counter = Counter()
    for t in texts:
        counts.update(w for w in _WORD.findall(t.casefold()) if w.isalpha())
    return counts


def restore(text: str, forms: Mapping[str, str]) -> str:
    """text with each plain word found in forms spelled as forms says (its capitals kept); other words untouched."""

    def one(m: re.Match) -> str:
        w = m.group(0)
        r = forms.get(w.casefold()) if w.isascii() else None
        return w if r is None else cased_like(r, w)

    return _WORD.sub(one, text)
