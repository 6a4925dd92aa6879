"""Fit the language model (qa/language.py) on the fitting articles and report it on the held-out ones.

    python -m qa.fit_language [--out FILE] [--json]

Fitting texts: the questions of the fitting articles of ../shared/train (SQuAD in English, PIAF in French, the same
article split as `python -m qa.fit`), their hand translations, and sentences of those articles; each also folded (lower
case, no accents), as visitors type; and a piece of one, two and three words of each (a visitor may type "engineers" or
"pôle optique"). Held out: the other articles' questions and translations, as written and folded, pieces of one and two
words of them, and the public squad_a set in both languages. The marker-word rule the model replaced is reported beside it.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from pathlib import Path

import numpy as np

from . import language as L
from .fit import EVAL, ROOT, _read_rows, split_articles
from .text import fold, sentence_spans
from .train_reader import TRANSLATED

_WORDS = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")  # words, with their inner apostrophes and hyphens
SENTENCES = 4000  # sentences of the fitting articles taken per language (documents are judged as well as questions)
PIECES = (1, 2, 3)  # a piece of this many words is taken from each fitting text of 2 to 40 words (short questions, keywords)
L2 = 1e-5  # L2 penalty on the n-gram weights, per fitting text (1e-6 to 1e-4 tried on a quarter of the fitting articles: 0, 0, 1 errors in 4,326)


def marker_guess(text: str) -> str:
    """The rule before the model: more French than English marker words (ties: French when accented)."""
    markers = {"en": set("the of and to is was what which who how are with for that this by from in on".split()),
               "fr": set("le la les des du de et est sont une un qui que quel quelle quels pour dans sur avec au aux".split())}
    words = [fold(w) for w in re.findall(r"\w+", text[:5000])]
    en, fr = (sum(w in markers[k] for w in words) for k in ("en", "fr"))
    return "fr" if fr > en or (fr == en and re.search(r"[éèêàçùôî]", text)) else "en"


def pieces(texts: list[tuple[str, int]], sizes: tuple[int, ...], rng: random.Random) -> list[tuple[str, int]]:
    """A run of n consecutive words of each text longer than n words (2 to 40 words), for each n in sizes, with its label."""
    out = []
    for t, y in texts:
        words = _WORDS.findall(t)
        for n in sizes:
            if n < len(words) <= 40:
                i = rng.randrange(len(words) - n + 1)
                out.append((" ".join(words[i : i + n]), y))
    return out


def texts_of(train: Path, dev: Path, seed: int) -> tuple[list[tuple[str, int]], dict[str, list[tuple[str, int]]]]:
    """(fitting texts, held-out sets by name), each text with its label (1: French)."""
    fit: list[tuple[str, int]] = []
    held: dict[str, list[tuple[str, int]]] = {}
    rng = random.Random(seed)
    for corpus, lang in (("squad", "en"), ("piaf", "fr")):
        docs = train / corpus / "docs"
        fit_articles, held_articles = split_articles(docs, seed)
        rows = _read_rows(train / corpus / "questions.jsonl")
        y = int(lang == "fr")
        fit += [(r["question"], y) for r in rows if r["source"] in fit_articles]
        held[f"{corpus}_held"] = [(r["question"], y) for r in rows if r["source"] in held_articles]
        sentences = []
        for name in sorted(fit_articles):
            text = (docs / name).read_text("utf-8")
            sentences += [text[a:b] for a, b in sentence_spans(text, lang) if len(text[a:b].split()) >= 4]
        fit += [(s, y) for s in rng.sample(sentences, min(SENTENCES, len(sentences)))]
        for part in ("fit", "held"):
            for name, other, _ in TRANSLATED[(corpus, part)]:
                rows = [(r["question"], int(other == "fr")) for r in _read_rows(EVAL / name)]
                if part == "fit":
                    fit += rows
                else:
                    held[f"{corpus}_held_in_{other}"] = rows
    held["squad_a"] = [(r["question"], 0) for r in _read_rows(dev / "squad_a" / "questions.jsonl")]
    held["squad_a_fr"] = [(r["question"], 1) for r in _read_rows(dev / "squad_a_fr" / "questions.jsonl")]
    for name in list(held):  # as visitors type: lower case, no accents
        held[f"{name}_folded"] = [(fold(t), y) for t, y in held[name]]
    for name in ("squad_held", "piaf_held", "squad_held_in_fr", "piaf_held_in_en"):  # keywords and short questions
        for n in (1, 2):
            held[f"{name}_{n}_word{'s' if n > 1 else ''}"] = pieces(held[name], (n,), random.Random(seed))
    fit += [(fold(t), y) for t, y in fit]
    return fit + pieces(fit, PIECES, rng), held


def fit_model(texts: list[tuple[str, int]], l2: float = L2) -> L.LanguageModel:
    """Logistic regression over the n-gram shares and the lexicon ratio (scipy L-BFGS, deterministic), each language
    weighing the same."""
    from scipy import sparse
    from scipy.optimize import minimize

    rows, cols, vals = [], [], []
    for i, (t, _) in enumerate(texts):
        ids = L.ngram_ids(t)
        rows += [i] * (len(ids) + 1)
        cols += ids.tolist() + [L.BUCKETS]
        vals += [1.0 / max(1, len(ids))] * len(ids) + [L.lexicon_ratio(t)]
    x = sparse.csr_matrix((vals, (rows, cols)), shape=(len(texts), L.BUCKETS + 1))
    y = np.array([lab for _, lab in texts], np.float64)
    w = np.where(y == 1, 0.5 / y.mean(), 0.5 / (1 - y.mean()))
    n = len(y)

    def loss(theta):
        s = x @ theta[:-1] + theta[-1]
        p = 1 / (1 + np.exp(-s))
        g = w * (p - y)
        value = np.sum(w * (np.logaddexp(0, s) - y * s)) + 0.5 * l2 * n * theta[:-1] @ theta[:-1]
        return value, np.append(x.T @ g + l2 * n * theta[:-1], g.sum())

    theta = minimize(loss, np.zeros(L.BUCKETS + 2), jac=True, method="L-BFGS-B", options={"maxiter": 2000}).x
    return L.LanguageModel(theta[: L.BUCKETS].astype(np.float32), float(theta[L.BUCKETS]), float(theta[-1]))


def figures(model: L.LanguageModel, held: dict[str, list[tuple[str, int]]]) -> dict[str, dict]:
    """Accuracy of the model and of the marker rule on each held-out set."""
    out = {}
    for name, rows in held.items():
        truth = ["fr" if y else "en" for _, y in rows]
        out[name] = {"n": len(rows), "model": float(np.mean([model.guess(t) == g for (t, _), g in zip(rows, truth)])),
                     "markers": float(np.mean([marker_guess(t) == g for (t, _), g in zip(rows, truth)]))}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m qa.fit_language", description=__doc__.split("\n\n")[0])
    p.add_argument("--train", type=Path, default=ROOT.parent / "shared" / "train", help="the training sets (squad/, piaf/)")
    p.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval", help="the public development sets")
    p.add_argument("--out", type=Path, default=L.MODEL_FILE, help="the model file to write")
    p.add_argument("--seed", type=int, default=0, help="article split (as qa.fit) and sentence sample")
    p.add_argument("--json", action="store_true", help="print the held-out figures as JSON")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    fit, held = texts_of(args.train, args.eval, args.seed)
    model = fit_model(fit)
    figs = figures(model, held)
    model.meta = {"seed": args.seed, "fitting_texts": len(fit), "held_out": figs, "seconds": round(time.perf_counter() - t0)}
    model.save(args.out)
    print(f"wrote {args.out} ({len(fit)} fitting texts)", file=sys.stderr)
    if args.json:
        print(json.dumps(figs, indent=1))
    else:
        for name, f in figs.items():
            print(f"{name:<28} n {f['n']:>5}  model {f['model']:.3f}  markers {f['markers']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
