"""Chunking: offsets round-trip, sentence boundaries, bounded size, overlap, stable ids."""

import re

from qa.chunking import chunk_document
from qa.documents import Document, load

from .conftest import SEED


def doc(text: str, lang="en") -> Document:
    return Document(source="d.txt", title="T", text=text, sha256="x", lang=lang)


def test_seed_chunks_round_trip_and_stay_short():
    d = load(SEED, SEED.parent)
    chunks = chunk_document(d, max_words=120, overlap_words=30)
    assert len(chunks) >= 3
    for c in chunks:
        assert c.text == d.text[c.start : c.end]
        assert len(c.text.split()) <= 120
        assert c.text[-1] in ".!?" and c.text[0].isupper()  # whole sentences
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    assert all(i in covered for i, ch in enumerate(d.text) if not ch.isspace())  # nothing lost
    assert chunks[1].start < chunks[0].end  # consecutive chunks overlap


def test_ids_are_readable_and_unique():
    text = "Title\n\n" + "\n\n".join(" ".join(f"Sentence {p}.{i} is here." for i in range(40)) for p in range(3))
    chunks = chunk_document(doc(text), max_words=50, overlap_words=10)
    ids = [c.id for c in chunks]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"d\.txt:\d+:\d+", i) for i in ids)
    assert ids[0] == "d.txt:1:1"  # the short title paragraph joins the first chunk
    assert chunks[0].text.startswith("Title\n\nSentence 0.0")


def test_ids_survive_a_change_later_in_the_document():
    base = "First paragraph has enough words to stand alone as a chunk here.\n\nSecond paragraph also has enough words in it."
    before = chunk_document(doc(base + "\n\nThird paragraph talks about lasers and their many uses today."))
    after = chunk_document(doc(base + "\n\nThird paragraph now talks about optical fibres instead of lasers."))
    assert [c.id for c in before[:2]] == [c.id for c in after[:2]]
    assert [c.text for c in before[:2]] == [c.text for c in after[:2]]


def test_a_very_long_sentence_is_cut_at_word_boundaries():
    words = " ".join(f"w{i}" for i in range(300)) + "."
    chunks = chunk_document(doc(words), max_words=100, overlap_words=0)
    assert all(len(c.text.split()) <= 100 for c in chunks)
    assert " ".join(c.text for c in chunks).split() == words.split()


def test_french_text_is_split_on_french_sentences():
    text = " ".join("L'œil humain perçoit la lumière visible. Il distingue environ un million de couleurs !" for _ in range(20))
    d = doc(text, "fr")
    for c in chunk_document(d, max_words=40, overlap_words=10):
        assert c.text == d.text[c.start : c.end] and c.lang == "fr"
        assert c.text.endswith(("visible.", "couleurs !"))
