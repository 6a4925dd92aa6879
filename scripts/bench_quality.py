"""Every quality figure of issue 11 in one run, through the real pipeline, on data the fit never saw.

    .venv/bin/python scripts/bench_quality.py [--limit 200] [--json] [--save DIR] [--skip-build] [--sets NAME,...]

Sets (held-out articles are those of the decision file's seed; indexes come from `python -m qa.fit`'s cache):
  squad_held            held-out ../shared/train/squad articles
  piaf_held             held-out ../shared/train/piaf articles (French)
  french_over_english_held   tests/eval/squad_held_fr.jsonl: held-out squad questions translated by hand
  english_over_french_held   tests/eval/piaf_held_en.jsonl: held-out piaf questions translated by hand
  paraphrases_*_held    tests/eval/{squad,piaf}_held_paraphrases.jsonl: 40 held-out questions each, reworded by hand as
                        a visitor might ask them; *_paraphrased_originals_held: the same 40 as the corpus wrote them
  reworded_*_held       300 held-out questions each, reworded by machine (words swapped for near words: a stress test)
  small_across_held     small English corpora asked in French, like the seed (one held-out article each, near misses
                        among its questions); off_topic_small_across_held: French questions of other articles asked of
                        them (nothing there answers: counted as unanswerable)
  near_miss_*_held      held-out articles with the answering paragraph deleted (half answerable; the false refusals
                        are also given over the answerable questions whose own paragraph was not deleted with another's);
                        near_miss_*_held_translated: its questions asked in the other language (hand translations:
                        tests/eval/squad_held_fr.jsonl + near_miss_squad_held_fr.jsonl, piaf_held_en + near_miss_piaf_held_en)
  near_miss_cut_*_held  held-out articles where only the sentences holding the answer were cut from its paragraph (the
                        rest kept: same subject and names, as near misses written by hand are); half answerable
  off_topic_held, off_topic_french_held, off_topic_english_held   held-out questions asked of another corpus (squad of
                        squad_a, piaf of squad, squad of piaf): nothing there answers, counted as unanswerable
  squad_a, squad_a_fr, near_miss_squad_a   the public development set (tuned freely, so reported apart)
  piaf_held_unaccented, french_over_english_held_unaccented   the same questions typed lower case without accents
  squad_held_typo, piaf_held_typo   the same questions with one typo each (a letter dropped, doubled, swapped or replaced)
  seed_en, seed_fr, seed_all   tests/eval/seed_questions.jsonl by language (written with the project: not held out);
                        seed_fr_unaccented: its French questions typed lower case without accents
  fr_corpus             tests/eval/fr_corpus: 8 French documents written for the project, 80 questions and 15 near
                        misses (asked of the documents' subjects; nothing there answers), never fitted on;
                        fr_corpus_unaccented: the same typed lower case without accents
Only the seed and fr_corpus sets asked for (--sets): no index of `python -m qa.fit` is needed, so nothing is built for it.
Then the latency on the seed questions (first token and full answer, p50/p95) and the index build throughput.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import re
import shutil
import sys
import tempfile
import time
import warnings
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore")

from qa import evaluate, fit, index  # noqa: E402
from qa.config import Config  # noqa: E402
from qa.decide import Decider  # noqa: E402
from qa.reader import digest  # noqa: E402
from qa.service import Assistant  # noqa: E402
from qa.text import detect_language, fold, vector_words  # noqa: E402

SHARED = ROOT.parent / "shared"
LOCAL_SETS = ("seed_en", "seed_fr", "seed_all", "seed_fr_unaccented", "fr_corpus", "fr_corpus_unaccented")  # sets that need no index of qa.fit


def run_group(cfg: Config, parts: list[tuple[Path, Path]], limit: int | None, keep=lambda c: True,
              off_topic: bool = False) -> tuple[dict, list[dict]]:
    """One figure over (index, questions) parts, at most limit questions in all (off_topic: each counted unanswerable)."""
    cases = [(ix, c) for ix, questions in parts for c in evaluate.load_cases(questions) if keep(c)]
    if off_topic:
        cases = [(ix, dataclasses.replace(c, answers=[], unanswerable=True)) for ix, c in cases]
    if limit and len(cases) > limit:
        rng = np.random.default_rng(0)
        cases = [cases[i] for i in sorted(rng.choice(len(cases), limit, replace=False))]
    rows = []
    for ix in dict.fromkeys(ix for ix, _ in cases):
        assistant = Assistant(Config(**{**cfg.__dict__, "index_dir": ix}))
        assistant.warm_up()
        rows += evaluate.run(assistant, [c for i, c in cases if i == ix])
    return evaluate.summarize(rows), rows


def rewritten(questions: Path, out: Path, question: Callable[[dict], str]) -> Path:
    """A copy of a question file with each row's question replaced by question(row)."""
    return fit._write_questions(out, [{**r, "question": question(r)} for r in fit._read_rows(questions)])


def one_typo(question: str) -> str:
    """The question with one typo (a letter dropped, doubled, swapped with the next or replaced) in one of its content
    words of 5+ letters, drawn from the question's own hash (the same typo on every run)."""
    rng = random.Random(zlib.crc32(question.encode("utf-8")))
    words = [w for w in vector_words(question, detect_language(question)) if len(w) >= 5 and w.isalpha()]
    if not words:
        return question
    m = re.search(rf"(?i)\b{re.escape(rng.choice(words))}\b", question)
    if not m:
        return question
    w = m.group(0)
    i, kind = rng.randrange(1, len(w) - 1), rng.randrange(4)
    typo = (w[:i] + w[i + 1 :], w[:i] + w[i] + w[i:], w[:i] + w[i + 1] + w[i] + w[i + 2 :], w[:i] + rng.choice("aeioustrnl") + w[i + 1 :])[kind]
    return question[: m.start()] + typo + question[m.end() :]


def build_throughput(cfg: Config) -> dict:
    """Seconds and texts per second to index the public development articles from scratch (e5, 2 threads)."""
    with tempfile.TemporaryDirectory() as tmp:
        c = Config(**{**cfg.__dict__, "seeds_dir": SHARED / "eval" / "squad_a" / "docs", "index_dir": Path(tmp) / "index"})
        t = time.perf_counter()
        report = index.build(c, log=lambda m: None)
        s = time.perf_counter() - t
    return {"documents": report.documents, "chunks": report.chunks, "texts_embedded": report.embedded, "seconds": round(s, 1),
            "texts_per_s": round(report.embedded / s, 1)}


def fit_runs(cfg: Config, originals: Path) -> dict[str, list[tuple[Path, Path]]]:
    """The held-out sets of `python -m qa.fit` (its indexes taken from its cache, else built: hours) and their variants
    (question files written under originals)."""
    meta = Decider.load(cfg.decision_file).meta
    work = Path(cfg.cache_dir) / "fit"
    sets = fit.prepare_sets(SHARED / "train", SHARED / "eval", work, cfg, meta["seed"], lambda m: print(m, file=sys.stderr))
    squad_a = work / "index" / "squad_a"
    runs = {name: [(s.index, s.questions)] for name, s in sets.items()
            if s.role == "held" and s.kind in ("answers", "cross_language", "near_miss", "reworded", "off_topic")}
    runs |= {"squad_a": [(squad_a, SHARED / "eval" / "squad_a" / "questions.jsonl")],
             "squad_a_fr": [(squad_a, SHARED / "eval" / "squad_a_fr" / "questions.jsonl")],
             "near_miss_squad_a": [(sets["near_miss_squad_a"].index, sets["near_miss_squad_a"].questions)]}
    for corpus in ("squad", "piaf"):  # reworded by hand, and the same questions as the corpus wrote them
        written = rewritten(ROOT / "tests" / "eval" / f"{corpus}_held_paraphrases.jsonl", originals / f"{corpus}.jsonl", lambda r: r["original"])
        runs[f"{corpus}_paraphrased_originals_held"] = [(sets[f"{corpus}_held"].index, written)]
    for name in ("piaf_held", "french_over_english_held"):  # typed as visitors often do: lower case, no accents
        plain = rewritten(sets[name].questions, originals / f"{name}_unaccented.jsonl", lambda r: fold(r["question"]))
        runs[f"{name}_unaccented"] = [(sets[name].index, plain)]
    for name in ("squad_held", "piaf_held"):  # one typo per question, as visitors make them
        typed = rewritten(sets[name].questions, originals / f"{name}_typo.jsonl", lambda r: one_typo(r["question"]))
        runs[f"{name}_typo"] = [(sets[name].index, typed)]
    for name, prefix in (("small_across_held", ""), ("off_topic_small_across_held", "off_topic_")):
        runs[name] = [(s.index, s.questions) for n, s in sets.items() if n.startswith(f"{prefix}nm_small_across_held_")]
    return runs


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--limit", type=int, default=200, help="at most this many questions per set (0: all)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--save", type=Path, help="write each set's per-question rows there")
    p.add_argument("--skip-build", action="store_true", help="skip the index build throughput")
    p.add_argument("--sets", help="only these sets, comma-separated (default: every set)")
    args = p.parse_args()
    cfg = Config.load()
    fitted_with = Decider.load(cfg.decision_file).meta.get("reader")
    if fitted_with and fitted_with != digest(cfg.reader_file):
        print(f"warning: {cfg.decision_file} was fitted with another reader than {cfg.reader_file}: its thresholds may not suit it",
              file=sys.stderr)
    originals = Path(tempfile.mkdtemp())
    runs = fit_runs(cfg, originals) if not args.sets or set(args.sets.split(",")) - set(LOCAL_SETS) else {}
    seed_index = Path(tempfile.mkdtemp()) / "index"  # built below when a seed set is run
    seed = ROOT / "tests" / "eval" / "seed_questions.jsonl"
    seed_runs = {f"seed_{lang}": lambda c, lang=lang: detect_language(c.question) == lang for lang in ("en", "fr")}
    seed_runs["seed_all"] = lambda c: True
    runs |= {name: [(seed_index, seed)] for name in seed_runs}
    seed_plain = rewritten(seed, originals / "seed_unaccented.jsonl", lambda r: fold(r["question"]))
    seed_runs["seed_fr_unaccented"] = lambda c: detect_language(c.question) == "fr"
    runs["seed_fr_unaccented"] = [(seed_index, seed_plain)]
    fr_corpus = ROOT / "tests" / "eval" / "fr_corpus"
    fr_index = seed_index.parent / "fr_corpus"
    runs["fr_corpus"] = [(fr_index, fr_corpus / f) for f in ("questions.jsonl", "unanswerable.jsonl")]
    runs["fr_corpus_unaccented"] = [(fr_index, rewritten(fr_corpus / f, originals / f"fr_corpus_unaccented_{f}", lambda r: fold(r["question"])))
                                    for f in ("questions.jsonl", "unanswerable.jsonl")]
    if args.sets:
        unknown = set(args.sets.split(",")) - set(runs)
        if unknown:
            p.error(f"unknown set(s): {', '.join(sorted(unknown))}; the sets are: {', '.join(runs)}")
        runs = {n: parts for n, parts in runs.items() if n in args.sets.split(",")}
    limit = args.limit or None
    results: dict[str, dict] = {}
    for name, parts in runs.items():
        print(f"running {name}", file=sys.stderr, flush=True)
        if name in seed_runs:
            if not seed_index.is_dir():
                index.build(Config(**{**cfg.__dict__, "index_dir": seed_index}), log=lambda m: None)
            results[name], rows = run_group(cfg, parts, None, seed_runs[name])
        elif name.startswith("fr_corpus"):
            if not fr_index.is_dir():
                index.build(Config(**{**cfg.__dict__, "seeds_dir": fr_corpus / "docs", "index_dir": fr_index}), log=lambda m: None)
            results[name], rows = run_group(cfg, parts, None)
        else:
            results[name], rows = run_group(cfg, parts, limit, off_topic=name.startswith("off_topic"))
        if name.startswith("near_miss") or name == "small_across_held":  # answerable questions whose answering paragraph was not deleted with another's
            lost = set().union(*(fit.lost_answers(questions) for _, questions in parts))
            intact = [r["refused"] for r in rows if not r["unanswerable"] and r["question"] not in lost]
            results[name] |= {"n_intact": len(intact), "false_refusal_rate_intact": float(np.mean(intact)) if intact else 0.0}
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            with open(args.save / f"{name}.jsonl", "w", encoding="utf-8") as f:
                f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    shutil.rmtree(seed_index.parent, ignore_errors=True)
    shutil.rmtree(originals, ignore_errors=True)
    if not args.skip_build:
        results["index_build"] = build_throughput(cfg)
    keys = ("n", "n_unanswerable", "retrieval_hit@1", "retrieval_hit@5", "answer_accuracy", "refusal_accuracy", "false_refusal_rate",
            "citation_support", "first_token_p50_s", "latency_p50_s", "latency_p95_s")
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    heads = [k.replace("retrieval_", "").replace("_rate", "") for k in keys]
    widths = [max(8, len(h) + 2) for h in heads]
    print(f"{'set':<34}" + "".join(f"{h:>{w}}" for h, w in zip(heads, widths)))
    for name, m in results.items():
        if name == "index_build":
            continue
        print(f"{name:<34}" + "".join(f"{m[k]:>{w}}" if isinstance(m[k], int) else f"{m[k]:>{w}.3f}" for k, w in zip(keys, widths)))
    for name, m in results.items():
        if "n_intact" in m:
            print(f"{name}: false refusals {m['false_refusal_rate']:.3f} of all answerable, {m['false_refusal_rate_intact']:.3f} of "
                  f"the {m['n_intact']} whose answering paragraph was not deleted along with another question's")
    if "index_build" in results:
        print("index build:", json.dumps(results["index_build"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
