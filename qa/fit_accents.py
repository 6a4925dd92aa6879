"""Fit the accent lexicon (qa/accents.py) on French word counts and report it on held-out questions.

    python -m qa.fit_accents [--out FILE] [--json]

The lexicon counts pyspellchecker's French word list (qa/words.py: 134,000 spellings with their uses). Two settings
are chosen together on the questions of the fitting PIAF articles (the same article split as `python -m qa.fit`) and
the hand-translated French questions of fitting SQuAD articles, which quote English names: the share an accented
spelling must have among a word's uses, and how many times more often the English word list must use a plain word
than French uses its accented spelling for the plain word to be left as written ("the" is not "thé", "College" not
"Collège"). Each pair scores accented words spelled back right once typed without accents, minus wrong spellings,
minus the words changed in the questions as written (a visitor who typed "trouve" meant it).
Held out: the other articles' questions and the hand-translated French questions of held-out SQuAD articles (English
documents: the lexicon alone), folded then restored, and as written.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from importlib.metadata import version
from pathlib import Path

from . import accents as A
from . import words
from .fit import EVAL, ROOT, _read_rows, split_articles
from .text import fold

SHARES = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99)  # candidate shares of the dominant accented spelling
ENGLISH_RATIOS = (math.inf, 100.0, 30.0, 10.0, 3.0, 1.0)  # candidate English/French use ratios past which a plain word stays (inf: none)
MIN_COUNT = 1  # least uses of it (the word list counts each word 50 times or more, so only documents' own counts can fall below)
_WORD = re.compile(r"\w+", re.UNICODE)


def restoration(questions: list[str], forms: dict[str, str]) -> dict[str, float]:
    """Each question folded then restored, word by word against the question as written: accented words spelled back
    right (recall), and words changed into another spelling than the written one (wrong)."""
    accented = right = changed = wrong = 0
    for q in questions:
        written = _WORD.findall(q.casefold())
        back = _WORD.findall(A.restore(fold(q), forms))
        for w, b in zip(written, back):
            accented += w != fold(w)
            right += w != fold(w) and b == w
            changed += b != fold(w)
            wrong += b != fold(w) and b != w
    return {"words_accented": accented, "restored": right, "recall": right / max(accented, 1), "changed": changed,
            "wrong": wrong, "precision": (changed - wrong) / max(changed, 1)}


def changed_as_written(questions: list[str], forms: dict[str, str]) -> int:
    """Words of the questions as written that restoring changes (each one wrong: the writer chose that spelling)."""
    return sum(w != b for q in questions for w, b in zip(_WORD.findall(q), _WORD.findall(A.restore(q, forms))))


def english_words(forms: dict[str, str], ratio: float) -> set[str]:
    """The plain words of forms that the English word list uses more than ratio times as often (per word counted) as
    the French one uses their accented spelling."""
    en, fr = words.frequencies("en"), words.frequencies("fr")
    en_total, fr_total = sum(en.values()), sum(fr.values())
    return {p for p, a in forms.items() if en.get(p, 0) / en_total > ratio * fr.get(a, 0) / fr_total}


def score(questions: list[str], forms: dict[str, str]) -> int:
    """What the settings are chosen by: accented words spelled back right, minus wrong ones, minus words changed as written."""
    r = restoration(questions, forms)
    return r["restored"] - r["wrong"] - changed_as_written(questions, forms)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m qa.fit_accents", description=__doc__.split("\n\n")[0])
    p.add_argument("--train", type=Path, default=ROOT.parent / "shared" / "train", help="the training sets (piaf/docs, piaf/questions.jsonl)")
    p.add_argument("--out", type=Path, default=A.MODEL_FILE, help="where to write the lexicon")
    p.add_argument("--seed", type=int, default=0, help="the article split (the decision's)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args(argv)
    docs = args.train / "piaf" / "docs"
    fit, held = split_articles(docs, args.seed)
    rows = _read_rows(args.train / "piaf" / "questions.jsonl")
    counts = {w: c for w, c in words.frequencies("fr").items() if w.isalpha()}
    fit_q = [r["question"] for r in rows if r["source"] in fit]
    fit_across = [r["question"] for f in ("squad_fit_fr.jsonl", "squad_fit_fr_more.jsonl") for r in _read_rows(EVAL / f)]
    grid = []
    for share in SHARES:
        forms = A.lexicon_forms(counts, share, MIN_COUNT)
        for ratio in ENGLISH_RATIOS:
            drop = english_words(forms, ratio)
            kept = {p: a for p, a in forms.items() if p not in drop}
            grid.append((score(fit_q, kept) + score(fit_across, kept), -share, ratio))  # ties: the lower share, the fewer words dropped
    _, share, ratio = max(grid)
    share = -share
    lexicon = A.Lexicon.fit(counts, share, MIN_COUNT, drop=english_words(A.lexicon_forms(counts, share, MIN_COUNT), ratio))
    held_counts = A.word_counts(docs.joinpath(a).read_text("utf-8") for a in sorted(held))
    held_q = [r["question"] for r in rows if r["source"] in held]
    across = [r["question"] for r in _read_rows(EVAL / "squad_held_fr.jsonl")]
    figures = {
        "share": share, "min_count": MIN_COUNT, "english_ratio": ratio, "entries": len(lexicon.forms),
        "counted_words": sum(counts.values()),
        "piaf_held_lexicon": restoration(held_q, lexicon.forms),
        "piaf_held_documents": restoration(held_q, A.lexicon_forms(held_counts, share, MIN_COUNT)),
        "piaf_held_both": restoration(held_q, A.forms_for(held_counts, lexicon)),
        "french_over_english_held_lexicon": restoration(across, lexicon.forms),
        "piaf_held_as_written_changed": changed_as_written(held_q, A.forms_for(held_counts, lexicon)),
        "french_over_english_held_as_written_changed": changed_as_written(across, lexicon.forms),
    }
    lexicon.meta |= {"english_ratio": ratio,
                     "counted_on": f"pyspellchecker {version('pyspellchecker')} French and English word lists",
                     "chosen_on": "PIAF fitting questions and French questions of fitting SQuAD articles",
                     "seed": args.seed, "figures": figures}
    lexicon.save(args.out)
    if args.json:
        print(json.dumps(figures, indent=1))
    else:
        print(f"chosen on {len(fit_q)} + {len(fit_across)} fitting questions: share >= {share}, uses >= {MIN_COUNT}, plain when "
              f"English uses it {ratio:g}x more; {len(lexicon.forms)} entries -> {args.out}")
        for k, v in figures.items():
            if isinstance(v, dict):
                print(f"{k:<34} accented words {v['words_accented']:>5}  restored {v['recall']:.3f}  changed {v['changed']:>5}  "
                      f"precision {v['precision']:.3f}")
            elif k.endswith("as_written_changed"):
                print(f"{k:<34} {v} words")
    return 0


if __name__ == "__main__":
    sys.exit(main())
