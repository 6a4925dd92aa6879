"""One-letter typos corrected to the documents' words, and nothing else changed."""

from qa import words
from qa.accents import word_counts
from qa.typos import Corrector, edits

DOCS = word_counts(["La colonie britannique de Tasmanie. Les ingénieurs de Thales ; the engineers and the engine."])


def test_edits_are_one_edit_away():
    assert {"tst", "etst", "tets", "tast", "tests"} <= edits("test") and "test" not in edits("test")
    assert "tset" in edits("test")  # two neighbours swapped


def test_a_typo_becomes_the_documents_word():
    c = Corrector(DOCS)
    assert c.fix("En quelle année fut créée la colonie britnnique ?") == "En quelle année fut créée la colonie britannique ?"
    assert c.fix("Combien d'ingenieurs chez THLAES ?") == "Combien d'ingenieurs chez THALES ?"  # capitals kept, accents aside
    assert c.fix("Quel metier ?") == "Quel metier ?"  # no document word one edit away
    assert c.fix("the enginers") == "the engineers"


def test_document_words_and_short_words_are_kept():
    c = Corrector(DOCS)
    assert c.fix("the engine and the engineers") == "the engine and the engineers"
    assert c.fix("Tasmanie, thes, 1803") == "Tasmanie, thes, 1803"  # "thes" is shorter than MIN_LENGTH


def test_no_clear_word_no_change():
    c = Corrector({"cable": 5, "table": 5})
    assert c.correct("cxble") == "cable"
    assert c.correct("xable") is None  # cable and table are both one edit away, neither dominates
    assert Corrector({"cable": 9, "table": 1}).correct("xable") == "cable"


def test_known_words_are_not_typos():
    # "voleur" (thief) is one edit from the documents' "valeur" but a French word: left alone; "officille" is no word.
    docs = word_counts(["La valeur officielle de la valeur."])
    assert Corrector(docs).fix("qui est le voleur ?") == "qui est le valeur ?"  # without a word list
    known = words.known("fr")
    assert {"voleur", "valeur", "evolua", "officielle"} <= known and "officille" not in known  # folded: évolua
    c = Corrector(docs, known)
    assert c.fix("qui est le voleur ?") == "qui est le voleur ?"
    assert c.fix("la valeur officille") == "la valeur officielle"
    assert "thief" in words.known("en") and "betwen" not in words.known("en")


def test_search_corrects_within_the_question_language(assistant):
    # The seed is English: an English question's typos become its words; a French question is never turned into English.
    searcher = assistant.searcher()
    assert searcher.query("What share of the workforse are enginers?").text == "What share of the workforce are engineers?"
    assert "entreprises" in searcher.query("Quelles grandes entreprises sont présentes ?").text  # "enterprises" is one edit away
