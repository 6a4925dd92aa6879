"""The reader alone, held out: reader files side by side on questions reworded by hand, as written, across languages.

    .venv/bin/python scripts/bench_reader.py [READER.npz ...] [--json]

For each question set, each question is read with the passage of its article that answers it and with the passages
that look most like one without holding its answer (two of its own article, one of another: as
`python -m qa.train_reader` builds them, on the held-out articles of its split). Rows per set and reader file:
- span_holds_answer: the best span over the question's passages holds the gold answer;
- auc_answer_vs_not: how well the reader's score (best span over "no answer") puts answering passages above the rest;
- answers_here: share of answering passages scored above "no answer" (the reader says "the answer is here");
- answers_elsewhere: the same for the passages that do not answer (lower is better);
- median_margin: the median score over "no answer" of the answering passages.
The sets: the 40 + 40 held-out SQuAD / PIAF questions reworded by hand and the same questions as written, the held-out
SQuAD questions asked in French, the held-out PIAF questions asked in English, and the seed's answerable questions;
"cut": 300 held-out SQuAD / PIAF questions, each read with its answering passage and with that passage less the
sentences holding the answer (a near miss on the same subject); "near misses": the unanswerable questions of
the seed and of tests/eval/fr_corpus (written for them, on the documents' subjects) and the near misses written by hand
for the held-out articles (tests/eval/hand_near_miss_*_held.jsonl), each read with the 3 passages that share the most
with it (only answers_elsewhere). Default reader: the configured one.
"""

from __future__ import annotations

import json
import random
import sys
import warnings
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore")

from qa import reader as R  # noqa: E402
from qa import train_reader as T  # noqa: E402
from qa.config import Config  # noqa: E402
from qa.fit import split_articles  # noqa: E402


Kind = Literal["questions", "cut", "near"]  # how a set's questions meet passages (see the module's docstring)


def question_sets(cfg: Config, train: Path) -> dict[str, tuple]:
    """name -> (rows, chunks of the articles they ask about[, kind])."""
    chunks = {}
    for corpus in ("squad", "piaf"):
        docs = train / corpus / "docs"
        chunks[corpus] = T._chunks(docs, split_articles(docs, 0)[1], cfg)
    chunks["seed"] = T._chunks(cfg.seeds_dir, {p.name for p in Path(cfg.seeds_dir).glob("*.txt")}, cfg)
    sets = {}
    for corpus in ("squad", "piaf"):
        reworded = T._read_rows(T.EVAL / f"{corpus}_held_paraphrases.jsonl")
        sets[f"{corpus} reworded"] = (reworded, chunks[corpus])
        sets[f"{corpus} as written"] = ([{**r, "question": r["original"]} for r in reworded], chunks[corpus])
    for corpus, name in (("squad", "squad in French"), ("piaf", "piaf in English")):
        sets[name] = ([r for f, _, _ in T.TRANSLATED[(corpus, "held")] for r in T._read_rows(T.EVAL / f)], chunks[corpus])
    sets["seed"] = ([r for r in T._read_rows(T.EVAL / "seed_questions.jsonl") if r.get("answers")], chunks["seed"])
    for corpus in ("squad", "piaf"):
        rows = [r for r in T._read_rows(train / corpus / "questions.jsonl") if r["source"] in chunks[corpus]]
        sets[f"{corpus} cut"] = (T.spread(rows, T.CUT_HELD), chunks[corpus], "cut")
    fr_docs = T.EVAL / "fr_corpus" / "docs"
    hand = [r for r in T._read_rows(T.EVAL / "seed_questions.jsonl") if r.get("unanswerable")]
    sets["seed near misses"] = (hand, chunks["seed"], "near")
    fr_chunks = T._chunks(fr_docs, {p.name for p in fr_docs.glob("*.txt")}, cfg)
    sets["fr_corpus near misses"] = (T._read_rows(T.EVAL / "fr_corpus" / "unanswerable.jsonl"), fr_chunks, "near")
    for corpus in ("squad", "piaf"):
        sets[f"{corpus} hand near misses"] = (T._read_rows(T.EVAL / f"hand_near_miss_{corpus}_held.jsonl"), chunks[corpus], "near")
    return sets


def figures(net, tokenizer: R.Tokenizer, rows: list[dict], chunks: dict, kind: Kind = "questions") -> dict:
    if kind == "cut":
        examples = T.cut_examples(rows, chunks, "set", with_answer=True)
    elif kind == "near":
        examples = T.answerless_examples(rows, chunks, "set")
    else:
        examples = T.make_examples(rows, chunks, "set", random.Random(0))
    out = T.evaluate(net, tokenizer, examples).get("set", {})
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}


def main() -> None:
    import torch

    args = [a for a in sys.argv[1:] if a != "--json"]
    if any(a.startswith("-") for a in args):
        sys.exit(__doc__)
    torch.set_num_threads(2)
    cfg = Config.load()
    files = [Path(a) for a in args] or [Path(cfg.reader_file)]
    sets = question_sets(cfg, ROOT.parent / "shared" / "train")
    base = R.read_base(R.base_path())
    tokenizer = R.Tokenizer(base)
    results: dict[str, dict[str, dict]] = {}
    for f in files:
        meta, arrays = R.load_updates(f)
        net = R.build_network(base, meta["rank"], meta["alpha"])
        R.load_into(net, f, arrays)
        net.eval()
        for name, (rows, chunks, *kind) in sets.items():
            results.setdefault(name, {})[str(f)] = figures(net, tokenizer, rows, chunks, *kind)
    if "--json" in sys.argv:
        print(json.dumps(results, indent=1))
        return
    cols = ["questions", "span_holds_answer", "auc_answer_vs_not", "answers_here", "answers_elsewhere", "median_margin"]
    print(f"{'set':<18}{'reader':<34}" + "".join(f"{c:>19}" for c in cols))
    for name, by_file in results.items():
        for f, vals in by_file.items():
            print(f"{name:<18}{Path(f).name[:33]:<34}" + "".join(f"{vals.get(c, ''):>19}" for c in cols))


if __name__ == "__main__":
    main()
