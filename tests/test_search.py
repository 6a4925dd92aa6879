"""Search: FAISS against brute-force exact search, fusion, and seed questions finding their passage."""

import numpy as np
import pytest

from qa import index
from qa.index import Index
from qa.search import Searcher

from .conftest import make_config

pytest.importorskip("faiss")


def test_flat_faiss_equals_exact_inner_product():
    import faiss

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 384)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = x[:50] + 0.1 * rng.standard_normal((50, 384)).astype(np.float32)
    flat = faiss.IndexFlatIP(384)
    flat.add(x)
    _, got = flat.search(q, 10)
    want = np.argsort(-(q @ x.T), axis=1)[:, :10]
    assert (got == want).all()


def test_hnsw_recall_against_exact_search():
    import faiss

    rng = np.random.default_rng(1)
    x = rng.standard_normal((5000, 384)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = x[rng.choice(5000, 100)] + 0.3 * rng.standard_normal((100, 384)).astype(np.float32)
    hnsw = faiss.IndexHNSWFlat(384, 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 80
    hnsw.add(x)
    hnsw.hnsw.efSearch = 128
    _, got = hnsw.search(q, 10)
    want = np.argsort(-(q @ x.T), axis=1)[:, :10]
    recall = np.mean([len(set(g) & set(w)) / 10 for g, w in zip(got, want)])
    assert recall >= 0.95


def test_index_above_the_hnsw_threshold_searches_like_the_exact_one(tmp_path, embedder):
    texts = {f"doc{i}.txt": f"Document {i}\n\n" + f"Topic number {i} concerns {w} and its applications in optics. " * 3
             for i, w in enumerate(["lasers", "fibres", "lenses", "mirrors", "prisms", "detectors", "cameras", "telescopes"])}
    results = {}
    for mode, above in (("flat", 10_000), ("hnsw", 0)):
        seeds = tmp_path / mode / "seeds"
        seeds.mkdir(parents=True)
        for name, text in texts.items():
            (seeds / name).write_text(text)
        cfg = make_config(tmp_path / mode, hnsw_above=above)
        index.build(cfg, log=lambda m: None)
        ix = Index.load(cfg.index_dir)
        assert ix.manifest["dense_index"] == mode
        s = Searcher(ix, embedder)
        results[mode] = [[p.chunk.id for p in s.search(q, 3)] for q in ("lenses in optics", "telescopes", "laser applications")]
    assert results["flat"] == results["hnsw"]


SEED_QUESTIONS = [
    ("What share of the workforce are engineers?", "Engineers make up 80% of the workforce."),
    ("Which cluster fosters collaboration between research and industry?", "OPTITEC competitiveness cluster"),
    ("Which big companies are present in France's optics industry?", "Airbus Helicopters, Dassault Aviation, and Thales Alenia Space"),
    ("Quelle est la part des investissements nationaux en R&D optique ?", "25% of France’s national R&D investments"),
]


@pytest.mark.parametrize("question,expected", SEED_QUESTIONS)
def test_seed_questions_find_their_passage(seed_index, embedder, question, expected):
    s = Searcher(Index.load(seed_index), embedder)
    top = s.search(question, 2)
    assert any(expected in p.chunk.text for p in top)


def test_fused_ranking_matches_a_brute_force_computation(seed_index, embedder):
    """The candidate pools never drop a chunk that would rank in the top k over the whole index."""
    ix = Index.load(seed_index)
    s = Searcher(ix, embedder, candidates=len(ix.chunks))
    small = Searcher(ix, embedder, candidates=2)
    for q in ("engineers workforce", "OPTITEC Opti’Pass", "aerospace defense and healthcare"):
        full = [p.chunk.id for p in s.search(q, 1)]
        assert full == [p.chunk.id for p in small.search(q, 1)]


def test_empty_query_returns_nothing(seed_index, embedder):
    assert Searcher(Index.load(seed_index), embedder).search("   ", 5) == []


def test_e5_reads_queries_and_passages_apart_and_across_french_and_english(embedder):
    passages = embedder.encode(["Engineers make up 80% of the workforce.", "The OPTITEC cluster fosters collaboration.",
                                "Les ingénieurs représentent 80 % des effectifs."])
    assert passages.dtype == np.float32 and np.allclose(np.linalg.norm(passages, axis=1), 1, atol=1e-4)
    q = embedder.encode(["Quelle part des effectifs sont des ingénieurs ?"], kind="query")[0]
    assert not np.allclose(q, embedder.encode(["Quelle part des effectifs sont des ingénieurs ?"], kind="passage")[0])
    scores = passages @ q
    assert scores[0] > scores[1] and scores[2] > scores[1]  # the French question finds the English sentence too
