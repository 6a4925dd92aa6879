"""The index: chunks, their vectors (FAISS) and keywords (BM25), built incrementally and written atomically.

On disk, index_dir holds numbered generations and a CURRENT file naming the complete one:

    index/CURRENT            "gen-000004-9f2c01ab"  (replaced atomically once a generation is complete)
    index/gen-000004-9f2c01ab/  manifest.json, chunks.jsonl, embeddings.npy, bm25/, dense.faiss (HNSW only),
                                sentences.npy, sentence_embeddings.npy, sentence_bm25/,
                                terms.json, term_embeddings.npy (a vector per content word, float16)

A build writes a new generation beside the old one and switches CURRENT last, so an interrupted
build (even kill -9) leaves the previous index in use.
"""

from __future__ import annotations

import contextlib
import functools
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from . import accents, embedders, language, typos, words
from .chunking import Chunk, chunk_document
from .config import Config
from .documents import PARSER_VERSION, discover, file_hash, load
from .errors import DocumentError, IndexCorruptError, IndexMismatchError, IndexMissingError, QAError, SeedsError
from .text import sentence_spans, tokenize, vector_words

FORMAT_VERSION = 1  # bump when the saved layout changes; loading refuses another version
TERMS_VERSION = 1  # the word vectors (terms.json, term_embeddings.npy): an index without them is rebuilt, its vectors reused
_TERM_MEMO: dict[tuple[str, str], np.ndarray] = {}  # (model, word) -> vector: builds in one process embed a word once
CURRENT = "CURRENT"


@dataclass
class BuildReport:
    generation: str | None  # None when the index was already up to date
    documents: int
    chunks: int
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # source -> reason
    embedded: int = 0  # chunks embedded by this build (the rest reused)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Index:
    """A loaded generation: everything search needs, in memory."""

    path: Path
    manifest: dict
    chunks: list[Chunk]
    embeddings: np.ndarray  # (n, dim) float32, unit rows, row i belongs to chunks[i]
    dense: "faiss.Index"  # noqa: F821
    bm25: "bm25s.BM25"  # noqa: F821
    sentences: np.ndarray  # (m, 3) int64: chunk row, start, end (offsets into that chunk's text), by chunk
    sentence_embeddings: np.ndarray  # (m, dim) float32, unit rows
    sentence_bm25: "bm25s.BM25"  # noqa: F821
    first_sentence: np.ndarray  # (n + 1,) int64: sentences of chunk i are rows first_sentence[i]:first_sentence[i+1]
    terms: dict[str, int] = field(default_factory=dict)  # content word (lowercase) -> its row in term_vectors
    term_vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))  # (t, dim) e5 vectors of the words alone

    @property
    def generation(self) -> str:
        return self.path.name

    @functools.cached_property
    def word_counts(self) -> dict[str, Counter]:
        """Per language, the uses of each word of the passages in it (counted on first use: 0.15 s for 1,768 chunks)."""
        counts: dict[str, Counter] = {}
        for c in self.chunks:
            counts.setdefault(c.lang, Counter()).update(accents.word_counts([c.text]))
        return counts

    @functools.cached_property
    def accents(self) -> dict[str, str]:
        """Plain words -> the accented spelling a French question's words are read with: the French passages' own, else
        the shipped lexicon's for words no passage writes plain."""
        other = set().union(*(c for lang, c in self.word_counts.items() if lang != "fr"))
        return accents.forms_for(self.word_counts.get("fr", Counter()), accents.shipped(), other)

    @functools.cached_property
    def typos(self) -> dict[str, typos.Corrector]:
        """Per language, the corrector of a question's one-letter typos by the passages in that language (a French
        question is not corrected into English: "université" is not a typo of "university"), the language's known words
        left alone."""
        return {lang: typos.Corrector(c, words.known(lang)) for lang, c in self.word_counts.items()}

    @classmethod
    def load(cls, index_dir: Path, model_id: str | None = None) -> "Index":
        """Load the current generation; raise IndexMissing/Corrupt/MismatchError with what to do."""
        gen = current_generation(index_dir)
        if gen is None:
            raise IndexMissingError(f"There is no index in {index_dir}: run `qa index` to build it.")
        path = index_dir / gen
        try:
            manifest = json.loads((path / "manifest.json").read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise IndexCorruptError(f"The index in {index_dir} is damaged ({_why(exc)}): run `qa index` to rebuild it.") from None
        if manifest.get("version") != FORMAT_VERSION:
            raise IndexMismatchError(
                f"The index in {index_dir} has format {manifest.get('version')!r}, this version reads {FORMAT_VERSION}: run `qa index` to rebuild it."
            )
        built_with = manifest.get("embedder", {}).get("model")
        if model_id and built_with != model_id:
            raise IndexMismatchError(f"The index in {index_dir} was built with {built_with}, not {model_id}: run `qa index` to rebuild it.")
        try:
            import bm25s
            import faiss

            with open(path / "chunks.jsonl", encoding="utf-8") as f:
                chunks = [Chunk(**json.loads(line)) for line in f]
            embeddings = np.load(path / "embeddings.npy", allow_pickle=False)
            if embeddings.dtype != np.float32 or embeddings.shape != (len(chunks), manifest["embedder"]["dim"]) or len(chunks) != manifest["n_chunks"]:
                raise ValueError("chunks, vectors and manifest disagree")
            if (path / "dense.faiss").exists():
                dense = faiss.read_index(str(path / "dense.faiss"))
                dense.hnsw.efSearch = manifest.get("hnsw_ef_search", 128)
            else:
                dense = faiss.IndexFlatIP(embeddings.shape[1])
                dense.add(embeddings)
            if dense.ntotal != len(chunks):
                raise ValueError("the vector index does not match the chunks")
            bm25 = bm25s.BM25.load(str(path / "bm25"), show_progress=False, verbosity=0)
            sentences = np.load(path / "sentences.npy", allow_pickle=False)
            sentence_embeddings = np.load(path / "sentence_embeddings.npy", allow_pickle=False)
            sentence_bm25 = bm25s.BM25.load(str(path / "sentence_bm25"), show_progress=False, verbosity=0)
            if bm25.scores["num_docs"] != len(chunks) or sentence_bm25.scores["num_docs"] != len(sentences):
                raise ValueError("the keyword index does not match the chunks")
            if sentence_embeddings.shape != (len(sentences), embeddings.shape[1]) or (len(sentences) and sentences[:, 0].max() >= len(chunks)):
                raise ValueError("the sentence vectors do not match the sentences")
            first_sentence = np.searchsorted(sentences[:, 0], np.arange(len(chunks) + 1)) if len(sentences) else np.zeros(len(chunks) + 1, np.int64)
            words, term_vectors = [], np.zeros((0, embeddings.shape[1]), np.float32)
            if manifest.get("terms"):
                words = json.loads((path / "terms.json").read_text("utf-8"))
                term_vectors = np.load(path / "term_embeddings.npy", allow_pickle=False).astype(np.float32)
                if term_vectors.shape != (len(words), embeddings.shape[1]):
                    raise ValueError("the word vectors do not match the words")
        except Exception as exc:
            raise IndexCorruptError(f"The index in {index_dir} is damaged ({_why(exc)}): run `qa index` to rebuild it.") from None
        return cls(path, manifest, chunks, embeddings, dense, bm25, sentences, sentence_embeddings, sentence_bm25, first_sentence,
                   {w: i for i, w in enumerate(words)}, term_vectors)

    @functools.cached_property
    def idf(self) -> dict[str, float]:
        """Inverse document frequency of each BM25 token over the chunks."""
        df = np.diff(self.bm25.scores["indptr"])
        n = len(self.chunks)
        return {t: float(np.log(1 + (n - df[i] + 0.5) / (df[i] + 0.5))) for t, i in self.bm25.vocab_dict.items() if i < len(df)}

    @functools.cached_property
    def languages(self) -> dict[str, float]:
        """Share of the chunks in each language."""
        counts: dict[str, int] = {}
        for c in self.chunks:
            counts[c.lang] = counts.get(c.lang, 0) + 1
        return {k: v / len(self.chunks) for k, v in counts.items()}

    def chunk_sentences(self, row: int) -> np.ndarray:
        """The (start, end) offsets, in the chunk's text, of chunk row's sentences."""
        return self.sentences[self.first_sentence[row] : self.first_sentence[row + 1], 1:]


def _why(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.filename:
        return f"{Path(exc.filename).name}: {exc.strerror}"
    return str(exc) or type(exc).__name__


def current_generation(index_dir: Path) -> str | None:
    """Name of the complete generation CURRENT points at, or None if there is none."""
    try:
        name = (index_dir / CURRENT).read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return name if name.startswith("gen-") and (index_dir / name).is_dir() else None


def embed_text(chunk: Chunk, with_title: bool) -> str:
    """What is embedded for a chunk: its text, after its document's title when configured."""
    return f"{chunk.title}\n{chunk.text}" if with_title and chunk.title else chunk.text


def _key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


@contextlib.contextmanager
def _build_lock(index_dir: Path) -> Iterator[None]:
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise QAError(f"Another `qa index` is already writing {index_dir}; wait for it to finish.") from None
        yield


def _settings(cfg: Config, model_id: str, dim: int) -> dict:
    return {
        "embedder": {"model": model_id, "dim": dim, "embed_title": cfg.embed_title},
        "chunking": {"max_words": cfg.chunk_max_words, "overlap_words": cfg.chunk_overlap_words, "min_words": cfg.chunk_min_words},
        "tokenizer": "snowball+fold-v2",
        "parser": PARSER_VERSION,
        "terms": TERMS_VERSION,
        "language": language.digest(),  # each document's language comes from this model
    }


def build(cfg: Config, progress: Callable[[str, int], Callable[[int], None]] | None = None, log: Callable[[str], None] = print) -> BuildReport:
    """Bring the index up to date with the seeds folder, embedding only chunks not embedded before."""
    t0 = time.perf_counter()
    index_dir, seeds_dir = Path(cfg.index_dir), Path(cfg.seeds_dir)
    with _build_lock(index_dir):
        files = discover(seeds_dir)
        spec = embedders.spec(cfg.embedder)
        previous = _previous(index_dir)
        settings = _settings(cfg, spec.model_id, spec.dim)
        reuse = previous is not None and {k: previous.manifest.get(k) for k in settings} == settings
        old_docs = previous.manifest["documents"] if reuse else {}
        report = BuildReport(generation=None, documents=0, chunks=0)

        chunks: list[Chunk] = []
        documents: dict[str, dict] = {}
        old_chunks: dict[str, list[Chunk]] = {}
        if reuse:
            for c in previous.chunks:
                old_chunks.setdefault(c.source, []).append(c)
        for path in files:
            source = path.relative_to(seeds_dir).as_posix()
            try:
                data = path.read_bytes()
            except OSError as exc:
                report.skipped[source] = f"cannot be read ({exc.strerror})"
                continue
            digest = file_hash(data)
            if source in old_docs and old_docs[source]["sha256"] == digest:
                documents[source] = old_docs[source]
                chunks.extend(old_chunks.get(source, []))
                continue
            try:
                doc = load(path, seeds_dir, data)
            except DocumentError as exc:
                report.skipped[source] = str(exc)
                continue
            doc_chunks = chunk_document(doc, cfg.chunk_max_words, cfg.chunk_overlap_words, cfg.chunk_min_words)
            documents[source] = {"sha256": digest, "title": doc.title, "lang": doc.lang, "chunks": len(doc_chunks), "chars": len(doc.text)}
            chunks.extend(doc_chunks)
            (report.changed if source in old_docs else report.added).append(source)
        for source, reason in report.skipped.items():
            log(f"warning: skipped {reason}" if reason.startswith(source) else f"warning: skipped {source}: {reason}")
        if not documents:
            raise SeedsError(f"No document in {seeds_dir} could be read, so there is nothing to index.")
        report.removed = sorted(set(old_docs) - set(documents))
        report.documents, report.chunks = len(documents), len(chunks)
        if reuse and not (report.added or report.changed or report.removed):
            report.seconds = time.perf_counter() - t0
            return report  # up to date: nothing is written

        # Sentences of each chunk: scored on their own by search, quoted by answers.
        sentences = np.array(
            [(row, a, b) for row, c in enumerate(chunks) for a, b in sentence_spans(c.text, c.lang)], dtype=np.int64
        ).reshape(-1, 3)
        # Vectors: every text embedded before by the same model is reused (inside changed documents too, and after a
        # change of chunking or parsing settings: a vector depends only on the model and the text).
        texts = [embed_text(c, cfg.embed_title) for c in chunks] + [chunks[r].text[a:b] for r, a, b in sentences]
        known: dict[str, np.ndarray] = {}
        if previous is not None and previous.manifest["embedder"].get("model") == spec.model_id:
            old = [embed_text(c, cfg.embed_title) for c in previous.chunks]
            old += [previous.chunks[r].text[a:b] for r, a, b in previous.sentences]
            known = dict(zip(map(_key, old), np.concatenate([previous.embeddings, previous.sentence_embeddings])))
        keys = [_key(t) for t in texts]
        todo = [i for i, k in enumerate(keys) if k not in known]
        vectors = np.zeros((len(texts), spec.dim), dtype=np.float32)
        for i, k in enumerate(keys):
            if k in known:
                vectors[i] = known[k]
        if todo:
            embedder = embedders.create(cfg.embedder, cache_dir=cfg.cache_dir)
            tick = progress("Embedding", len(todo)) if progress else None
            vectors[todo] = embedder.encode([texts[i] for i in todo], batch_size=cfg.embed_batch_size, progress=tick)
        report.embedded = len(todo)
        words, term_vectors = _term_vectors(cfg, spec.model_id, spec.dim, chunks, previous, progress)
        report.generation = _write(index_dir, cfg, settings, documents, chunks, vectors[: len(chunks)], sentences, vectors[len(chunks) :],
                                   words, term_vectors)
        report.seconds = time.perf_counter() - t0
        return report


def vocabulary(chunks: list[Chunk]) -> list[str]:
    """The content words of the chunks (lowercase, accents kept, no numbers), sorted: what gets a word vector."""
    return sorted({w for c in chunks for w in vector_words(c.text, c.lang)})


def _term_vectors(cfg: Config, model_id: str, dim: int, chunks: list[Chunk], previous: Index | None,
                  progress: Callable[[str, int], Callable[[int], None]] | None) -> tuple[list[str], np.ndarray]:
    """A vector per vocabulary word (the word alone, in the query form): features match a question's words to a
    sentence's through them, across languages too. Words embedded before (previous index, this process) are reused."""
    words = vocabulary(chunks)
    if previous is not None and previous.manifest["embedder"].get("model") == model_id:
        for w, i in previous.terms.items():
            _TERM_MEMO.setdefault((model_id, w), previous.term_vectors[i].astype(np.float16))
    todo = [w for w in words if (model_id, w) not in _TERM_MEMO]
    if todo:
        embedder = embedders.create(cfg.embedder, cache_dir=cfg.cache_dir)
        tick = progress("Embedding words", len(todo)) if progress else None
        for w, v in zip(todo, embedder.encode(todo, batch_size=64, progress=tick, kind="query")):
            _TERM_MEMO[(model_id, w)] = v.astype(np.float16)  # as stored: 0.75 kB a word
    out = np.zeros((len(words), dim), np.float32)
    for i, w in enumerate(words):
        out[i] = _TERM_MEMO[(model_id, w)]
    return words, out


def _previous(index_dir: Path) -> Index | None:
    try:
        return Index.load(index_dir)
    except IndexMissingError:
        return None
    except QAError as exc:
        print(f"warning: the previous index is not reused ({exc})")
        return None


def _write(
    index_dir: Path, cfg: Config, settings: dict, documents: dict, chunks: list[Chunk], vectors: np.ndarray,
    sentences: np.ndarray, sentence_vectors: np.ndarray, words: list[str], term_vectors: np.ndarray,
) -> str:
    import bm25s
    import faiss

    numbers = [int(p.name.split("-")[1]) for p in index_dir.glob("gen-*") if p.is_dir() and p.name.split("-")[1].isdigit()]
    name = f"gen-{max(numbers, default=0) + 1:06d}-{secrets.token_hex(4)}"  # unique even if the folder was wiped
    tmp = index_dir / f".{name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        with open(tmp / "chunks.jsonl", "w", encoding="utf-8") as f:
            for c in chunks:
                f.write(json.dumps(c.to_dict(), ensure_ascii=False) + "\n")
        np.save(tmp / "embeddings.npy", vectors)
        if os.environ.get("QA_TEST_KILL_WHILE_WRITING"):  # lets the tests simulate kill -9 in the middle of a write
            os.kill(os.getpid(), 9)
        retriever = bm25s.BM25()
        retriever.index([tokenize(f"{c.title}\n{c.text}", c.lang) for c in chunks], show_progress=False)
        retriever.save(str(tmp / "bm25"), show_progress=False)
        np.save(tmp / "sentences.npy", sentences)
        np.save(tmp / "sentence_embeddings.npy", sentence_vectors)
        retriever = bm25s.BM25()
        retriever.index([tokenize(chunks[r].text[a:b], chunks[r].lang) for r, a, b in sentences], show_progress=False)
        retriever.save(str(tmp / "sentence_bm25"), show_progress=False)
        (tmp / "terms.json").write_text(json.dumps(words, ensure_ascii=False), "utf-8")
        np.save(tmp / "term_embeddings.npy", term_vectors.astype(np.float16))
        hnsw = len(chunks) > cfg.hnsw_above
        if hnsw:
            dense = faiss.IndexHNSWFlat(vectors.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
            dense.hnsw.efConstruction = 80
            dense.add(vectors)
            faiss.write_index(dense, str(tmp / "dense.faiss"))
        manifest = {
            "format": "qa-index",
            "version": FORMAT_VERSION,
            **settings,
            "dense_index": "hnsw" if hnsw else "flat",
            "hnsw_ef_search": cfg.hnsw_ef_search,
            "n_chunks": len(chunks),
            "documents": documents,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False), "utf-8")
        _fsync_tree(tmp)
        os.replace(tmp, index_dir / name)
        _atomic_write(index_dir / CURRENT, name + "\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for old in index_dir.iterdir():  # older generations and leftovers of interrupted builds
        if old.name != name and (old.name.startswith("gen-") or old.name.startswith(".gen-")):
            shutil.rmtree(old, ignore_errors=True)
    return name


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
