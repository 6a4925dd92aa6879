"""Accents put back on French questions typed without them: the documents' spellings, the fitted lexicon, the saved format."""

import json
from pathlib import Path

import numpy as np
import pytest

from qa import accents as A
from qa.errors import ModelError
from qa.fit_accents import changed_as_written, restoration
from qa.text import fold

EVAL = Path(__file__).parent / "eval"


def _questions(name: str) -> list[str]:
    return [json.loads(x)["question"] for x in (EVAL / name).read_text("utf-8").splitlines() if x.strip()]


LEXICON = A.Lexicon.fit({"école": 4, "été": 9, "ete": 1, "à": 9, "a": 8, "où": 2, "ou": 7, "cote": 3, "côte": 2}, share=0.85, min_count=1)


def test_lexicon_keeps_dominant_spellings_and_plain_words():
    assert LEXICON.forms == {"ecole": "école", "ete": "été"}
    assert LEXICON.kept == {"a", "ou", "cote"}  # French writes these plain too: never accented
    assert A.lexicon_forms({"été": 9, "ete": 1}, share=0.95, min_count=1) == {}
    assert A.lexicon_forms({"été": 3}, share=0.85, min_count=4) == {}


def test_documents_spelling_comes_first():
    docs = A.word_counts(["Les atrocités commises à la côte ; l'œuvre ; INGÉNIEURS. On y marche, le marché. Où ?"])
    forms = A.forms_for(docs, LEXICON)
    assert A.restore("Quelles atrocites ont ete commises a l'ecole ?", forms) == "Quelles atrocités ont été commises a l'école ?"
    assert A.restore("INGENIEURS et Ingenieurs, l'oeuvre", forms) == "INGÉNIEURS et Ingénieurs, l'œuvre"  # capitals kept
    # "marche" is written plain by the documents, "cote" and "ou" by French: kept; accented words are left alone.
    assert A.restore("la marche ou la cote est écrite", forms) == "la marche ou la cote est écrite"
    # An English passage writes "conference": a French question quoting it keeps it, other words are still restored.
    forms = A.forms_for(docs, A.Lexicon.fit({"conférence": 5, "ecole": 1, "école": 9}, 0.85, 1), written={"conference"})
    assert A.restore("la General Conference de l'ecole", forms) == "la General Conference de l'école"


def test_shipped_lexicon_on_held_out_questions():
    # Hand-translated French questions of held-out SQuAD articles (the lexicon alone, without the English documents that
    # keep "General" and "Conference" as written), typed without accents. Measured: 0.696 of the accented words spelled
    # back, 0.967 of the changes right (without the English guard 0.696 / 0.956; counted on PIAF's articles 0.614 / 0.973).
    questions = _questions("squad_held_fr.jsonl") + _questions("near_miss_squad_held_fr.jsonl")
    figures = restoration(questions, A.shipped().forms)
    assert figures["recall"] >= 0.65 and figures["precision"] >= 0.95, figures
    # As written, a word is rarely changed (measured 15 of 4,321, English names such as "General"; 21 without the guard,
    # which also turned "the" into "thé").
    assert changed_as_written(questions, A.shipped().forms) <= 0.006 * sum(len(q.split()) for q in questions)
    held = A.shipped().meta["figures"]
    assert held["piaf_held_both"]["recall"] > held["piaf_held_lexicon"]["recall"]


def test_english_words_stay_as_written():
    # English uses "the" far more than French uses "thé": a French question quoting an English title keeps it, even over
    # French documents that never write it; French words English also uses rarely are still restored.
    forms = A.forms_for(A.word_counts(["Les élèves de l'école."]), A.shipped())
    assert "the" not in A.shipped().forms and "the" not in forms
    assert A.restore("The Conversation et les eleves de l'ecole", forms) == "The Conversation et les élèves de l'école"
    assert A.Lexicon.fit({"thé": 5, "école": 5}, 0.85, 1, drop={"the"}).forms == {"ecole": "école"}
    assert A.shipped().meta["english_ratio"] > 1


def test_saved_format_is_checked(tmp_path):
    path = tmp_path / "accents.npz"
    LEXICON.save(path)
    again = A.Lexicon.load(path)
    assert (again.forms, again.kept, again.meta["share"]) == (LEXICON.forms, LEXICON.kept, 0.85)
    with pytest.raises(ModelError, match="cannot be read"):
        A.Lexicon.load(tmp_path / "missing.npz")
    meta = json.dumps({"format": A.FORMAT, "version": A.VERSION})
    np.savez(path, accented=np.frombuffer(b"\xe9t\xe9", np.uint8), kept=np.zeros(0, np.uint8), meta=meta)
    with pytest.raises(ModelError, match="damaged"):
        A.Lexicon.load(path)
    np.savez(path, accented=np.zeros(0, np.uint8), kept=np.zeros(0, np.uint8), meta=json.dumps({"format": A.FORMAT, "version": A.VERSION + 1}))
    with pytest.raises(ModelError, match="python -m qa.fit_accents"):
        A.Lexicon.load(path)


def test_search_reads_a_plain_french_question_as_the_documents_spell_it(assistant):
    # The seed is English: the lexicon spells the French words back; an English question is never touched.
    searcher = assistant.searcher()
    q = searcher.query(fold("Quelle part des effectifs est constituée d'ingénieurs ?"))
    assert q.lang == "fr" and "constituée d'ingénieurs" in q.text
    assert searcher.query("What share of engineers is there?").text == "What share of engineers is there?"
