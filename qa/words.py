"""Each language's words and how often each spelling is used: the word lists pyspellchecker ships (PyPI, MIT).

The typo corrector leaves a real word alone ("voleur" is not a typo of the documents' "valeur"), and the accent lexicon
learns from them which spelling French uses ("atrocites" is written "atrocités").
"""

from __future__ import annotations

import gzip
import json
from functools import lru_cache
from importlib import resources

from .errors import ModelError
from .language import Lang
from .text import fold


@lru_cache(maxsize=None)
def frequencies(lang: Lang) -> dict[str, int]:
    """Each word of the language (lower case, accents as written) and its count in pyspellchecker's list (0.3 s, once)."""
    try:
        data = (resources.files("spellchecker") / "resources" / f"{lang}.json.gz").read_bytes()
        return json.loads(gzip.decompress(data))
    except (ModuleNotFoundError, OSError, ValueError) as exc:
        raise ModelError(f"The {lang} word list (package pyspellchecker) cannot be read ({exc}): reinstall the project "
                         "with `make install`.") from None


@lru_cache(maxsize=None)
def folded_frequencies(lang: Lang) -> tuple[dict[str, int], int]:
    """Each folded word of the language (lower case, no accents) with the uses of all its spellings, and the total."""
    counts: dict[str, int] = {}
    for w, c in frequencies(lang).items():
        f = w if w.isascii() else fold(w)  # the lists are lower case: only accented words change
        counts[f] = counts.get(f, 0) + c
    return counts, sum(counts.values())


@lru_cache(maxsize=None)
def known(lang: Lang) -> frozenset[str]:
    """The language's words, folded (lower case, no accents)."""
    return frozenset(fold(w) for w in frequencies(lang))
