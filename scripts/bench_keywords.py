"""A name typed alone ("OPTITEC", "Notre Dame"), through the whole pipeline: is the passage quoted one that speaks of it?

    .venv/bin/python scripts/bench_keywords.py [READER.npz ...] [--limit 120] [--json]

The names are those the held-out questions give (`qa.train_reader.keyword_names`: runs of capitalised words), each
once per article and only where its article's text holds it, asked alone of the whole corpus (`python -m qa.fit`'s
indexes of ../shared/train/squad and piaf; a quarter typed lower case), and the seed's names asked of the seed index.
Per set and reader file:
- holds_name: the first quoted sentence holds the name (what a reader sees first speaks of what was typed);
- own_article: it comes from the name's article (the name may appear elsewhere too);
- answered: the outcome is "answer" (else "closest": the documents do not state this, or "none");
- p50_s: the full answer's median seconds.
Default reader: the configured one.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore")

from qa.config import Config  # noqa: E402
from qa.decide import Decider  # noqa: E402
from qa.fit import split_articles  # noqa: E402
from qa.service import Assistant  # noqa: E402
from qa.text import fold  # noqa: E402
from qa.train_reader import KEYWORD_LOWER, _read_rows, keyword_names  # noqa: E402

SHARED = ROOT.parent / "shared"


def names_of(rows: list[dict], docs: Path, limit: int | None, seed: int) -> list[dict]:
    """Each question's names once per article, kept where the article holds them, sampled (fixed seed)."""
    rng, out, seen, texts = random.Random(seed), [], set(), {}
    for r in rows:
        source = r.get("source") or ""
        if source not in texts:  # each article read once
            texts[source] = (docs / source).read_text("utf-8") if (docs / source).is_file() else ""
        text = texts[source]
        for name in keyword_names(r["question"]):
            if (source, name) not in seen and name in text:
                seen.add((source, name))
                out.append({"name": name, "source": source})
    if limit and len(out) > limit:
        out = [out[i] for i in sorted(rng.sample(range(len(out)), limit))]
    for row in out:
        row["query"] = row["name"].lower() if rng.random() < KEYWORD_LOWER else row["name"]
    return out


def run(assistant: Assistant, rows: list[dict]) -> dict:
    holds, own, answered, seconds = [], [], [], []
    for r in rows:
        ans = assistant.ask(r["query"])
        first = ans.citations[0] if ans.citations else None
        holds.append(bool(first) and fold(r["name"]) in fold(first.text))
        own.append(bool(first) and Path(first.source).name == r["source"])
        answered.append(ans.outcome == "answer")
        seconds.append(ans.timings.get("total_s", 0.0))
    n = max(1, len(rows))
    return {"n": len(rows), "holds_name": round(sum(holds) / n, 3), "own_article": round(sum(own) / n, 3),
            "answered": round(sum(answered) / n, 3), "p50_s": round(statistics.median(seconds), 3) if seconds else None}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("readers", nargs="*", type=Path, help="reader files to compare (default: the configured one)")
    p.add_argument("--limit", type=int, default=120, help="names per corpus")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args()
    cfg = Config.load()
    seed = Decider.load(cfg.decision_file).meta["seed"]
    sets = {}
    for corpus in ("squad", "piaf"):
        docs = SHARED / "train" / corpus / "docs"
        held = split_articles(docs, seed)[1]
        rows = [r for r in _read_rows(SHARED / "train" / corpus / "questions.jsonl") if r["source"] in held]
        ix = Path(cfg.cache_dir) / "fit" / "index" / corpus
        if not (ix / "CURRENT").exists():
            sys.exit(f"{ix} is missing: run `python -m qa.fit` first (it builds the held-out indexes).")
        sets[corpus] = (ix, names_of(rows, docs, args.limit, seed))
    seed_rows = _read_rows(ROOT / "tests" / "eval" / "seed_questions.jsonl")
    sets["seed"] = (Path(cfg.index_dir), names_of(seed_rows, Path(cfg.seeds_dir), None, seed))
    results: dict[str, dict[str, dict]] = {}
    for f in args.readers or [Path(cfg.reader_file)]:
        for name, (ix, rows) in sets.items():
            assistant = Assistant(Config(**{**cfg.__dict__, "index_dir": ix, "reader_file": f}))
            assistant.warm_up()
            results.setdefault(name, {})[str(f)] = run(assistant, rows)
            print(f"{name:<6} {f.name:<28} {results[name][str(f)]}", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    cols = ["n", "holds_name", "own_article", "answered", "p50_s"]
    print(f"{'set':<8}{'reader':<30}" + "".join(f"{c:>13}" for c in cols))
    for name, by_file in results.items():
        for f, vals in by_file.items():
            print(f"{name:<8}{Path(f).name[:29]:<30}" + "".join(f"{vals[c]!s:>13}" for c in cols))
    return 0


if __name__ == "__main__":
    sys.exit(main())
