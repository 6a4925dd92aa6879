"""Retrieval quality against the usual baselines, on one corpus, in one run.

    .venv/bin/python scripts/bench_retrieval.py DOCS_DIR QUESTIONS.jsonl

Rows: BM25 alone, e5 dense alone, their reciprocal rank fusion (k=60), our hybrid first stage (fitted fusion), and
our second stage (passages reordered by their best sentence's fitted score: what `qa search` returns). All on the same
chunks; a hit is a passage of the question's source that contains a gold answer (case- and accent-insensitive).
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore")

from qa import index  # noqa: E402
from qa.config import Config  # noqa: E402
from qa.evaluate import load_cases, passage_hit  # noqa: E402
from qa.service import Assistant  # noqa: E402
from qa.text import detect_language, tokenize  # noqa: E402


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    docs, questions = Path(sys.argv[1]), Path(sys.argv[2])
    cases = [c for c in load_cases(questions) if c.answers]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Config.load(seeds_dir=docs, index_dir=Path(tmp) / "index")
        index.build(cfg, log=lambda m: None)
        assistant = Assistant(cfg, rerank=True)
        searcher = assistant.searcher()
        ix = searcher.index
        rows: dict[str, list[list[int]]] = {k: [] for k in ("BM25", "dense (e5)", "RRF k=60", "hybrid", "hybrid + sentences")}
        for c in cases:
            lang = detect_language(c.question)
            q = searcher.query(c.question, lang)
            bm25 = ix.bm25.get_scores(tokenize(c.question, lang))
            dense = ix.embeddings @ q.vector
            r_b, r_d = np.argsort(-bm25, kind="stable"), np.argsort(-dense, kind="stable")
            rrf = np.zeros(len(ix.chunks))
            for ranking in (r_b, r_d):
                rrf[ranking] += 1 / (60 + np.arange(1, len(ranking) + 1))
            rows["BM25"].append(list(r_b[:5]))
            rows["dense (e5)"].append(list(r_d[:5]))
            rows["RRF k=60"].append(list(np.argsort(-rrf, kind="stable")[:5]))
            rows["hybrid"].append([p.row for p in searcher.search_query(q, 5)])
            rows["hybrid + sentences"].append([p.row for p in assistant.retrieve(c.question, k=5, lang=lang)])
    print(f"{docs} ({len(ix.chunks)} chunks), {len(cases)} questions")
    print(f"{'retriever':<22} hit@1  hit@5")
    for name, ranked in rows.items():
        hits = [[passage_hit({"source": ix.chunks[i].source, "text": ix.chunks[i].text}, c) for i in r] for r, c in zip(ranked, cases)]
        print(f"{name:<22} {np.mean([h[0] for h in hits]):.3f}  {np.mean([any(h) for h in hits]):.3f}")


if __name__ == "__main__":
    main()
