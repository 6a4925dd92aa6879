"""The fitted language model: held-out questions as written and as visitors type them, the saved format, the fit."""

import json
from pathlib import Path

import numpy as np
import pytest

from qa import language as L
from qa.errors import ModelError
from qa.fit_language import fit_model
from qa.text import detect_language, fold

EVAL = Path(__file__).parent / "eval"


def _questions(name: str) -> list[str]:
    return [json.loads(x)["question"] for x in (EVAL / name).read_text("utf-8").splitlines() if x.strip()]


@pytest.mark.parametrize("typed", [str, fold], ids=["as written", "lower case, no accents"])
def test_held_out_questions(typed):
    # French questions over held-out English articles (never fitted on), and English and French rewordings; folded,
    # the marker-word rule the model replaced got 175 of the 183 French ones.
    for name, lang in (("squad_held_fr.jsonl", "fr"), ("piaf_held_paraphrases.jsonl", "fr"), ("squad_held_paraphrases.jsonl", "en")):
        questions = _questions(name)
        assert np.mean([detect_language(typed(q)) == lang for q in questions]) >= 0.99, name


def test_short_and_empty_texts():
    assert detect_language("quelles atrocites ont ete commises ?") == "fr"
    assert detect_language("premier ministre en 1990") == "fr"
    assert detect_language("Which space company is named among the big corporations?") == "en"
    assert detect_language("") == "en" and detect_language("1990 !") == "en"  # nothing to judge: English
    # A keyword typed alone: the word lists say which language uses it (the n-grams alone took all four for French).
    assert [detect_language(w) for w in ("engineers", "companies", "ingénieurs", "entreprises")] == ["en", "en", "fr", "fr"]
    assert detect_language("pole de competitivite") == "fr" and detect_language("big companies") == "en"


def test_a_hint_decides_a_name_typed_alone_but_not_a_question():
    # The interface's language (or the last question's) is a prior of 7 to 1: it tips a name, whose letters hardly tell.
    assert detect_language("OPTITEC", "en") == "en" and detect_language("OPTITEC", "fr") == "fr"
    assert detect_language("Airbus", "fr") == "fr" and detect_language("Airbus", "en") == "en"
    for name, lang in (("squad_held_fr.jsonl", "fr"), ("squad_held_paraphrases.jsonl", "en")):
        against = "en" if lang == "fr" else "fr"
        assert np.mean([detect_language(q, against) == lang for q in _questions(name)]) >= 0.96, name


def test_held_out_pieces_of_questions():
    # One and two words of held-out questions (qa.fit_language's figures); the n-grams alone got 0.735 / 0.864 of the
    # English pieces, 0.881 / 0.943 of the French ones, 0.665 / 0.825 of the PIAF questions asked in English.
    held = L.shipped().meta["held_out"]
    assert held["squad_held_1_word"]["model"] >= 0.85 and held["piaf_held_1_word"]["model"] >= 0.90
    assert min(held[f"{s}_2_words"]["model"] for s in ("squad_held", "piaf_held", "squad_held_in_fr", "piaf_held_in_en")) >= 0.95


def test_shipped_file_carries_its_held_out_figures():
    held = L.shipped().meta["held_out"]
    assert held["piaf_held_folded"]["model"] > held["piaf_held_folded"]["markers"]
    assert all(f["model"] >= 0.98 for n, f in held.items() if "_word" not in n)


def test_saved_format_is_checked(tmp_path):
    model = L.shipped()
    path = tmp_path / "language.npz"
    model.save(path)
    again = L.LanguageModel.load(path)
    texts = ["Où se trouve Gethsemani ?", "How large are Plastoglobuli?", "Qui a fondé l'UMC ?"]
    assert [again.guess(t) for t in texts] == [model.guess(t) for t in texts]
    with pytest.raises(ModelError, match="cannot be read"):
        L.LanguageModel.load(tmp_path / "missing.npz")
    np.savez(path, weights=model.weights, bias=np.float32(0), meta=json.dumps({"format": L.FORMAT, "version": L.VERSION + 1}))
    with pytest.raises(ModelError, match="python -m qa.fit_language"):
        L.LanguageModel.load(path)


def test_fit_separates_the_languages():
    # A model fitted on 40 rewordings of each language tells apart the other sets' questions.
    fit = [(q, 1) for q in _questions("piaf_held_paraphrases.jsonl")] + [(q, 0) for q in _questions("squad_held_paraphrases.jsonl")]
    model = fit_model(fit)
    french = _questions("squad_held_fr.jsonl")[:40]
    english = [json.loads(x)["question"] for x in (EVAL / "piaf_held_en.jsonl").read_text("utf-8").splitlines()[:40]]
    assert np.mean([model.guess(q) == "fr" for q in french] + [model.guess(q) == "en" for q in english]) >= 0.85
