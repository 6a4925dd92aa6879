"""The fitted decision: its file (shipped, versioned, checked), its inputs, and the fitting steps on small real data."""

import json
import random

import numpy as np
import pytest

from qa import features as F
from qa import fit
from qa.config import Config
from qa.decide import THRESHOLDS, VERSION, Decider, Linear, reorder, sentence_inputs
from qa.errors import ModelError
from qa.reader import digest as reader_digest
from qa.search import FUSION_FEATURES

from .conftest import ROOT
from .test_answer_steps import passage

SHIPPED = Config().decision_file


def test_the_shipped_decision_file_loads_and_carries_its_held_out_figures():
    d = Decider.load(SHIPPED)
    assert d.meta["version"] == VERSION and d.meta["seed"] == 0
    assert set(d.thresholds) == set(THRESHOLDS) == {"answer", "answer_foreign", "relevant", "relevant_foreign", "also", "phrase"}
    held = d.meta["held_out"]
    assert {"squad_held", "piaf_held", "near_miss_squad_held", "french_over_english_held"} <= set(held)
    near = {k: v for k, v in held.items() if "near_miss" in k}  # deleted paragraphs, cut sentences, written by hand, translated
    assert len(near) == 8 and all(0.5 < v["separation_auc"] <= 1.0 for v in near.values())  # each separated from answerable questions
    assert d.meta["reader"] == reader_digest(Config().reader_file)  # fitted with the shipped reader, whose scores it reads
    assert len(d.fusion) == len(FUSION_FEATURES)
    assert SHIPPED.stat().st_size < 100_000  # a small file, not weights


def test_a_decision_file_of_another_version_or_damaged_is_refused_with_one_sentence(tmp_path):
    d = Decider.load(SHIPPED)
    d.save(tmp_path / "ok.npz")
    again = Decider.load(tmp_path / "ok.npz")
    assert np.array_equal(again.fusion, d.fusion) and again.thresholds == d.thresholds
    with np.load(tmp_path / "ok.npz") as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    lacking = {k: v for k, v in meta["thresholds"].items() if k != "relevant_foreign"}
    for name, change in (("old.npz", {"version": VERSION - 1}), ("features.npz", {"features": {"sentence": ["cos"]}}),
                         ("thresholds.npz", {"thresholds": lacking})):
        np.savez(tmp_path / name, **{**arrays, "meta": np.array(json.dumps({**meta, **change}))})
        with pytest.raises(ModelError, match="refit it with `python -m qa.fit`"):
            Decider.load(tmp_path / name)
    (tmp_path / "bad.npz").write_bytes(b"not a numpy file")
    for path in (tmp_path / "bad.npz", tmp_path / "missing.npz"):
        with pytest.raises(ModelError, match="cannot be read"):
            Decider.load(path)


def test_two_decision_files_compare_by_held_out_set_in_figures_and_in_questions(tmp_path, capsys):
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    from compare_decisions import compare, main

    d = Decider.load(SHIPPED)
    held = d.meta["held_out"]
    nm = held["near_miss_squad_held"]
    d.meta["held_out"] = {**held, "near_miss_squad_held": {**nm, "near_misses_refused": nm["near_misses_refused"] + 0.05}}
    d.save(tmp_path / "after.npz")
    rows = compare(held, d.meta["held_out"])
    assert set(rows) == set(held) - {k for k, v in held.items() if not any(isinstance(x, float) for x in v.values())}
    changed = rows["near_miss_squad_held"]["near_misses_refused"]
    assert changed["after"] - changed["before"] == pytest.approx(0.05)
    assert changed["questions"] == round(0.05 * nm["n_unanswerable"]) > 0
    assert all(v["questions"] in (0, None) for k, rs in rows.items() for f, v in rs.items() if (k, f) != ("near_miss_squad_held", "near_misses_refused"))
    assert main([str(SHIPPED), str(tmp_path / "after.npz"), "--sets", "near_miss_squad_held", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["near_miss_squad_held"]["near_misses_refused"]["questions"] == changed["questions"]
    assert main([str(SHIPPED), str(tmp_path / "missing.npz")]) == 2
    assert "cannot be read" in capsys.readouterr().err
    assert main([str(SHIPPED), str(tmp_path / "after.npz"), "--sets", "near_miss_squad_hold"]) == 2
    assert "'near_miss_squad_hold'" in capsys.readouterr().err


def test_a_sentence_in_another_language_is_read_only_through_cross_language_features():
    f = np.ones((2, len(F.SENTENCE_FEATURES)), np.float32)
    f[1, F.SENTENCE_FEATURES.index("same_lang")] = 0.0
    x = sentence_inputs(f)
    n, k = len(F.SENTENCE_FEATURES), len(F.CROSS_LANGUAGE)
    assert x.shape == (2, n + k + 1)
    assert (x[0, :n] == 1).all() and (x[0, n:] == 0).all()  # same language: the full feature set, no cross block
    assert (x[1, :n] == 0).all() and (x[1, n:] == 1).all()


def test_a_refusal_whose_best_sentence_is_in_another_language_says_nothing_is_on_the_subject_by_its_own_threshold():
    """"closest" or "none" is chosen against relevant_foreign when the best sentence is in another language."""
    d = Decider.load(SHIPPED)
    f = np.zeros((1, len(F.SENTENCE_FEATURES)), np.float32)
    cands = F.Candidates(np.zeros(1, np.int64), np.zeros(1, np.int64), np.ones(1, np.int64), np.zeros((1, 0), np.float32), f,
                         ["x"], ["a.md"], ["A"])
    outcomes = {}
    for same in (1.0, 0.0):
        f[0, F.SENTENCE_FEATURES.index("same_lang")] = same
        p = d.decide(cands, 0.0, "q").p_relevant
        for low in ("relevant", "relevant_foreign"):  # this threshold under p_relevant, the other over it
            d.thresholds = {**d.thresholds, "answer": 1.0, "answer_foreign": 1.0, "relevant": p + 0.01, "relevant_foreign": p + 0.01,
                            low: p - 0.01}
            outcomes[same, low] = d.decide(cands, 0.0, "q").outcome
    assert outcomes == {(1.0, "relevant"): "closest", (1.0, "relevant_foreign"): "none",
                        (0.0, "relevant"): "none", (0.0, "relevant_foreign"): "closest"}


def test_reorder_puts_the_passage_of_the_best_sentence_first_and_remaps_the_candidates():
    a, b = passage(source="a.txt"), passage(source="b.txt")
    cands = F.Candidates(np.array([0, 0, 1]), np.array([0, 10, 0]), np.array([5, 20, 5]), np.zeros((3, 2), np.float32),
                         np.zeros((3, len(F.SENTENCE_FEATURES)), np.float32))
    ranked, remapped = reorder([a, b], cands, np.array([0.1, -1.0, 2.0]))
    assert [p.chunk.source for p in ranked] == ["b.txt", "a.txt"] and [p.rank for p in ranked] == [1, 2]
    assert remapped.passage.tolist() == [1, 1, 0]  # each candidate still points at its own passage
    assert [ranked[p].chunk.source for p in remapped.passage] == ["a.txt", "a.txt", "b.txt"]


def test_logistic_fit_learns_the_informative_feature_and_the_fusion_prefers_it():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 3))
    y = x[:, 1] + 0.3 * rng.standard_normal(400) > 0
    m = fit.fit_linear(x, y)
    assert isinstance(m, Linear) and np.argmax(np.abs(m.weights)) == 1 and m.weights[1] > 0
    assert ((m(x) > 0) == y).mean() > 0.85
    records = []
    for _ in range(60):  # the gold candidate stands out on feature 0 (dense) only
        pool = rng.standard_normal((20, 6)).astype(np.float32)
        labels = np.zeros(20, bool)
        labels[3] = True
        pool[3, 0] += 3.0
        records.append(fit.Record("q", "en", "a", ["x"], False, pool, labels, np.zeros((0, 1)), np.zeros(0, bool), [], [], [], 0.0))
    w = fit.fit_fusion(records)
    assert np.argmax(w) == 0 and fit.retrieval_hits(records, w)["hit@1"] > 0.9


def test_a_weighted_fit_counts_a_row_of_weight_two_as_that_row_twice_and_kinds_weigh_the_same():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((120, 2))
    y = x[:, 0] + rng.standard_normal(120) > 0
    w = np.where(np.arange(120) < 30, 2.0, 1.0)
    twice = fit.fit_linear(np.vstack([x, x[:30]]), np.concatenate([y, y[:30]]))
    weighted = fit.fit_linear(x, y, weights=w)
    z = rng.standard_normal((50, 2))
    # the standardisation differs (duplicated rows move the mean), the fitted function barely does
    assert np.allclose(twice(z), weighted(z), atol=0.05)
    assert not np.allclose(fit.fit_linear(x, y)(z), weighted(z), atol=0.05)
    kw = fit.kind_weights(["answers"] * 90 + ["small"] * 10)
    assert np.isclose(kw[:90].sum(), kw[90:].sum()) and np.isclose(kw.sum(), 100)


def test_the_article_split_is_seeded_disjoint_and_holds_out_a_third():
    docs = ROOT.parent / "shared" / "train" / "squad" / "docs"
    if not docs.is_dir():
        pytest.skip("../shared/train is not beside this checkout")
    fit_a, held_a = fit.split_articles(docs, 0)
    fit_b, held_b = fit.split_articles(docs, 0)
    assert (fit_a, held_a) == (fit_b, held_b) and not fit_a & held_a
    assert len(held_a) == round(len(fit_a | held_a) / 3) and fit.split_articles(docs, 1)[1] != held_a


def test_precision_threshold_accepts_only_what_reaches_the_precision():
    p = np.array([0.1, 0.4, 0.6, 0.8, 0.9])
    y = np.array([False, True, False, True, True])
    assert fit.precision_threshold(p, y, 0.9) == pytest.approx(0.8)
    assert fit.precision_threshold(p, np.zeros(5, bool), 0.9) == 1.0


def test_candidates_hold_each_document_sentence_once_with_sane_features(seed_index, embedder):
    from qa.index import Index
    from qa.search import Searcher

    ix = Index.load(seed_index)
    s = Searcher(ix, embedder)
    q = s.query("What share of the workforce are engineers?")
    pool = s.pool(q)
    passages = s.rank(pool, 8)
    c = F.candidates(q, passages, ix, pool.sentence_keyword)
    keys = [(passages[p].chunk.source, passages[p].chunk.start + a) for p, a in zip(c.passage, c.start)]
    assert len(keys) == len(set(keys)) and len(c) > 3  # overlapping chunks: each sentence once
    texts = [passages[p].chunk.text[a:b] for p, a, b in zip(c.passage, c.start, c.end)]
    best = texts.index("Engineers make up 80% of the workforce.")
    col = F.SENTENCE_FEATURES.index
    assert c.features[best, col("cover")] == c.features[:, col("cover")].max() > 0.5
    assert c.features[best, col("new_number")] == 1 and c.features[best, col("percent")] == 1
    assert c.features[best, col("cos_gap")] <= 0 and np.isclose(c.features[:, col("cos_gap")].max(), 0)
    assert F.unknown_share(s.query("What is the capital of Germany?"), ix) == 1.0


def test_a_french_question_meets_the_english_sentence_that_translates_its_words(seed_index, embedder):
    from qa.index import Index
    from qa.search import Searcher

    ix = Index.load(seed_index)
    s = Searcher(ix, embedder)
    q = s.query("Quel programme accélère le transfert vers les applications commerciales ?")
    assert q.lang == "fr" and {"programme", "transfert", "applications"} <= set(q.words)
    pool = s.pool(q)
    passages = s.rank(pool, 8)
    c = F.candidates(q, passages, ix, pool.sentence_keyword)
    col = F.SENTENCE_FEATURES.index
    best = int(np.argmax(c.features[:, col("word_share")]))
    assert "Opti’Pass program" in c.texts[best] and c.features[best, col("cover")] < 0.5  # stems alone barely meet it
    assert c.features[best, col("word_share")] >= 0.5 and c.features[best, col("word_match")] == c.features[:, col("word_match")].max()
    none = F.word_matches(s.query("Quel est le salaire moyen ?"), ix, "Engineers make up 80% of the workforce.", "en")
    assert none[1] == 0.0


def test_phrase_rows_take_the_readers_span_of_the_best_sentence_and_label_it_by_the_gold_answer():
    col = F.SENTENCE_FEATURES.index
    texts = ["OPTITEC fosters collaboration.", "Engineers make up 80% of the workforce."]
    feats = np.zeros((2, len(F.SENTENCE_FEATURES)), np.float32)
    feats[:, col("same_lang")] = 1.0
    feats[0, col("first")] = 1.0
    width = len(F.SENTENCE_FEATURES) + len(F.CROSS_LANGUAGE) + 1
    w = np.zeros(width, np.float32)
    w[col("first")] = -1.0  # the second sentence is the best
    sentence = Linear(np.zeros(width, np.float32), np.ones(width, np.float32), w, 0.0)
    rec = lambda span: fit.Record("What share are engineers?", "en", "a", ["80%"], False, np.zeros((1, 6)), np.zeros(1, bool),  # noqa: E731
                                  feats, np.array([False, True]), ["a", "a"], texts, ["T", "T"], 0.0, np.array([[0, 7], span]))
    x, y = fit.phrase_rows([rec([18, 21]), rec([29, 38]), rec([-1, -1])], sentence)
    assert x.shape == (2, len(F.PHRASE_FEATURES)) and y.tolist() == [True, False]  # no span: no phrase to judge


def test_the_equal_error_threshold_refuses_as_many_answerable_as_it_answers_unanswerable():
    answerable = np.array([0.2, 0.5, 0.6, 0.7, 0.8, 0.9])
    unanswerable = np.array([0.1, 0.2, 0.3, 0.4, 0.55, 0.65])
    t = fit.equal_error_threshold(answerable, unanswerable)
    assert t == 0.55 and (answerable < t).mean() == (unanswerable >= t).mean() == 2 / 6
    assert fit.equal_error_threshold(np.array([0.9, 0.8]), np.array([0.1, 0.2])) > 0.2  # apart: nothing wrong either way


def test_separation_is_the_share_of_answerable_unanswerable_pairs_in_order_ties_half():
    assert fit.separation(np.array([0.9, 0.8]), np.array([0.1, 0.2])) == 1.0
    assert fit.separation(np.array([0.1]), np.array([0.9, 0.8])) == 0.0
    assert fit.separation(np.array([0.5, 0.5]), np.array([0.5])) == 0.5
    rng = np.random.default_rng(0)
    a, u = rng.random(40).round(1), rng.random(30).round(1)  # rounded: ties
    pairs = [1.0 if x > y else 0.5 if x == y else 0.0 for x in a for y in u]
    assert fit.separation(a, u) == pytest.approx(np.mean(pairs))


def test_decision_figures_separate_near_misses_from_intact_answerable_questions_or_from_another_set():
    col = F.SENTENCE_FEATURES.index
    width = len(F.SENTENCE_FEATURES) + len(F.CROSS_LANGUAGE) + 1
    w = np.zeros(width, np.float32)
    w[col("cos")] = 1.0  # a sentence's logit is its cos
    qwidth = 2 * len(F.QUESTION_FEATURES) + 1
    qw = np.zeros(qwidth, np.float32)
    qw[0] = 1.0  # the probability of answering grows with the best logit
    lin = lambda n, weights: Linear(np.zeros(n, np.float32), np.ones(n, np.float32), weights, 0.0)  # noqa: E731
    d = Decider(np.zeros(len(FUSION_FEATURES)), lin(width, w), lin(qwidth, qw), lin(qwidth, qw), lin(len(F.PHRASE_FEATURES), np.zeros(len(F.PHRASE_FEATURES))),
                {"answer": 0.5, "answer_foreign": 0.5, "relevant": 0.5, "relevant_foreign": 0.5, "also": 0.99, "phrase": 1.0}, {})

    def rec(question, cos, unanswerable):
        feats = np.zeros((1, len(F.SENTENCE_FEATURES)), np.float32)
        feats[0, col("same_lang")], feats[0, col("cos")] = 1.0, cos
        return fit.Record(question, "en", "a", [] if unanswerable else ["x"], unanswerable, np.zeros((1, 6)), np.zeros(1, bool), feats,
                          np.array([not unanswerable]), ["a"], ["x"], ["T"], 0.0)

    near = [rec("lost", 2.0, False), rec("kept", 3.0, False), rec("n1", -1.0, True), rec("n2", 2.5, True)]
    assert fit.decision_figures(near, d)["separation_auc"] == 0.75  # 2 > -1, 2 < 2.5, 3 > both
    assert fit.decision_figures(near, d, lost={"lost"})["separation_auc"] == 1.0  # "lost" lost its paragraph: not answerable
    only_missing = [r for r in near if r.unanswerable]
    assert "separation_auc" not in fit.decision_figures(only_missing, d)
    assert fit.decision_figures(only_missing, d, against=[rec("other", 0.0, False)])["separation_auc"] == 0.5


def test_a_short_answer_is_right_only_when_it_holds_the_gold_answer_and_little_more():
    assert fit.short_answer_right("80%", ["80%"]) and fit.short_answer_right("about 80%", ["80%"])
    assert not fit.short_answer_right("Engineers make up 80% of the workforce", ["80%"])  # a clause, not a short answer
    assert not fit.short_answer_right("70%", ["80%"]) and not fit.short_answer_right("80%", [])


def test_near_miss_questions_that_lost_their_paragraph_with_another_are_found(tmp_path):
    script = ROOT.parent / "shared" / "train" / "make_near_miss.py"
    if not script.is_file():
        pytest.skip("../shared/train is not beside this checkout")
    src = tmp_path / "src_demo"
    (src / "docs").mkdir(parents=True)
    (src / "docs" / "a.txt").write_text("Alpha\n\nThe lab opened in 1990 with 40 engineers.\n\nIt moved to Marseille in 1990.\n\n"
                                        "Its director is Ada Byron.", "utf-8")
    rows = [{"question": "Who directs it?", "answers": ["Ada Byron"], "source": "a.txt"},
            {"question": "How many engineers?", "answers": ["40 engineers"], "source": "a.txt"},
            {"question": "When did the lab open?", "answers": ["1990"], "source": "a.txt"}]
    out = fit._near_miss(script, src / "docs", "demo", rows, 1, 1, tmp_path)  # seed 1 shuffles them: engineers, lab, director
    made = [json.loads(x) for x in (out / "questions.jsonl").read_text("utf-8").splitlines()]
    assert [r["removed"] for r in made if r.get("unanswerable")] == ["a.txt#1"]
    # "When did the lab open?" stays answerable through the other "1990", but its own paragraph is gone
    assert fit.lost_answers(out / "questions.jsonl") == {"When did the lab open?"}
    # the same near misses asked in French, where a translation was written: the lost one is found in translation too
    said = tmp_path / "fr.jsonl"
    said.write_text("".join(json.dumps({"question": fr, "answers": a, "source": "a.txt", "question_en": en}) + "\n" for fr, en, a in (
        ("Quand le labo a-t-il ouvert ?", "When did the lab open?", ["1990"]),
        ("Combien d'ingénieurs ?", "How many engineers?", ["40 engineers"]))), "utf-8")
    asked = fit._near_miss_translated(out, [said])
    crossed = [json.loads(x) for x in asked.read_text("utf-8").splitlines()]
    assert sorted((r["question"], bool(r.get("unanswerable"))) for r in crossed) == [("Combien d'ingénieurs ?", True),
                                                                                        ("Quand le labo a-t-il ouvert ?", False)]
    assert fit.lost_answers(asked) == {"Quand le labo a-t-il ouvert ?"}


def test_a_cut_near_miss_keeps_its_paragraph_less_the_answers_sentences_and_answerable_ones_keep_theirs(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    intro = "The lab studies lasers and optical fibres for telecommunications and for medicine. " * 2
    (docs / "a.txt").write_text(f"Alpha\n\n{intro}It opened in 1990 with forty engineers. Its first laser was green.\n\n"
                                f"{intro}Its director is Ada Byron. She came from Lyon.", "utf-8")
    rows = [{"question": "When did it open?", "answers": ["1990"], "source": "a.txt"},
            {"question": "Who directs it?", "answers": ["Ada Byron"], "source": "a.txt"},
            {"question": "What is studied?", "answers": ["lasers"], "source": "a.txt"}]  # in every paragraph: never cut
    out = fit._near_miss_cut(docs, "demo", rows, 1, 0, "en", tmp_path)
    made = {r["question"]: r for r in map(json.loads, (out / "questions.jsonl").read_text("utf-8").splitlines())}
    cut = [q for q, r in made.items() if r.get("unanswerable")]
    assert len(cut) == 1 and cut[0] in ("When did it open?", "Who directs it?") and "What is studied?" not in cut
    paragraphs = (out / "docs" / "a.txt").read_text("utf-8").split("\n\n")
    gone = rows[0] if cut[0] == "When did it open?" else rows[1]
    i = int(made[cut[0]]["removed"].rsplit("#", 1)[1])
    assert paragraphs[0] == "Alpha" and gone["answers"][0] not in paragraphs[i] and paragraphs[i].startswith(intro.strip())
    kept = [q for q, r in made.items() if not r.get("unanswerable")]
    assert kept and all(any(a in "\n\n".join(paragraphs) for a in made[q]["answers"]) for q in kept)


def test_the_hand_written_question_sets_ask_about_held_out_articles_that_hold_their_answers():
    """The paraphrases and the French translations are of held-out questions, so the fit never saw their articles."""
    train = ROOT.parent / "shared" / "train"
    if not train.is_dir():
        pytest.skip("../shared/train is not beside this checkout")
    for corpus, name, original in (("squad", "squad_held_paraphrases.jsonl", "original"), ("piaf", "piaf_held_paraphrases.jsonl", "original"),
                                   ("squad", "squad_held_fr.jsonl", "question_en"), ("piaf", "piaf_held_en.jsonl", "question_fr")):
        docs = train / corpus / "docs"
        _, held = fit.split_articles(docs, Decider.load(SHIPPED).meta["seed"])
        asked = {json.loads(x)["question"] for x in (train / corpus / "questions.jsonl").open(encoding="utf-8")}
        rows = [json.loads(x) for x in (ROOT / "tests" / "eval" / name).open(encoding="utf-8")]
        assert len(rows) >= 40
        for r in rows:
            assert r["source"] in held and r[original] in asked and r["question"] != r[original], r
            assert any(a.lower() in (docs / r["source"]).read_text("utf-8").lower() for a in r["answers"]), r


def test_the_hand_written_near_misses_ask_about_articles_of_their_own_side_of_the_split_in_the_language_they_say():
    """Those of held-out articles are what qa.fit reports on; those of fitting articles were only fitted on in a trial."""
    from qa.text import detect_language

    train = ROOT.parent / "shared" / "train"
    if not train.is_dir():
        pytest.skip("../shared/train is not beside this checkout")
    for corpus in ("squad", "piaf"):
        fitting, held = fit.split_articles(train / corpus / "docs", Decider.load(SHIPPED).meta["seed"])
        asked = {json.loads(x)["question"] for x in (train / corpus / "questions.jsonl").open(encoding="utf-8")}
        assert fit.HAND_NEAR_MISS[corpus] == f"hand_near_miss_{corpus}_held.jsonl"
        for part, articles in (("fit", fitting), ("held", held)):
            rows = [json.loads(x) for x in (ROOT / "tests" / "eval" / f"hand_near_miss_{corpus}_{part}.jsonl").open(encoding="utf-8")]
            assert len(rows) >= 60 and len({r["question"] for r in rows}) == len(rows)
            for r in rows:
                assert r["unanswerable"] is True and r["source"] in articles and r["question"] not in asked and r["absent"], r
            assert np.mean([detect_language(r["question"]) == r["lang"] for r in rows]) >= 0.9, (corpus, part)
            assert not fit.lost_answers(ROOT / "tests" / "eval" / f"hand_near_miss_{corpus}_{part}.jsonl")


def test_the_reader_learns_translations_of_fitting_questions_and_is_measured_on_translations_of_held_out_ones():
    """Every hand translation the reader trains on asks about a fitting article; those it reports on, a held-out one."""
    from qa.text import detect_language
    from qa.train_reader import EVAL, TRANSLATED

    train = ROOT.parent / "shared" / "train"
    if not train.is_dir():
        pytest.skip("../shared/train is not beside this checkout")
    for (corpus, part), files in TRANSLATED.items():
        fitting, held = fit.split_articles(train / corpus / "docs", Decider.load(SHIPPED).meta["seed"])
        asked = {json.loads(x)["question"] for x in (train / corpus / "questions.jsonl").open(encoding="utf-8")}
        for name, lang, _ in files:
            original = "question_en" if lang == "fr" else "question_fr"
            rows = [json.loads(x) for x in (EVAL / name).open(encoding="utf-8")]
            assert len(rows) >= 40, name
            for r in rows:
                assert r["source"] in (fitting if part == "fit" else held) and r[original] in asked, (name, r)
            # in the other language (a few short questions, mostly names, may read as either)
            assert np.mean([detect_language(r["question"]) == lang for r in rows]) >= 0.9, name


def test_the_translated_held_out_near_misses_ask_questions_of_held_out_articles_in_the_other_language():
    from qa.text import detect_language

    train = ROOT.parent / "shared" / "train"
    if not train.is_dir():
        pytest.skip("../shared/train is not beside this checkout")
    for (corpus, part), name in fit.NEAR_MISS_TRANSLATED.items():
        _, held = fit.split_articles(train / corpus / "docs", Decider.load(SHIPPED).meta["seed"])
        asked = {json.loads(x)["question"] for x in (train / corpus / "questions.jsonl").open(encoding="utf-8")}
        rows = [json.loads(x) for x in (fit.EVAL / name).open(encoding="utf-8")]
        lang, original = ("fr", "question_en") if corpus == "squad" else ("en", "question_fr")
        assert part == "held" and len(rows) >= 100 and sum(bool(r.get("unanswerable")) for r in rows) >= 50, name
        for r in rows:
            article = r["removed"].rsplit("#", 1)[0] if r.get("unanswerable") else r["source"]
            assert article in held and r[original] in asked and r["question"] != r[original], (name, r)
        assert np.mean([detect_language(r["question"]) == lang for r in rows]) >= 0.9, name


def test_a_small_english_corpus_asked_in_french_keeps_the_answering_paragraphs_and_asks_other_articles_off_topic(tmp_path, monkeypatch):
    script = ROOT.parent / "shared" / "train" / "make_near_miss.py"
    if not script.is_file():
        pytest.skip("../shared/train is not beside this checkout")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Alpha\n\nThe lab opened in 1990.\n\nThe weather is mild.\n\nIts director is Ada Byron.", "utf-8")
    (docs / "b.txt").write_text("Beta\n\nThe port handles 80 ships a day.", "utf-8")
    rows = [{"question": "Quand le laboratoire a-t-il ouvert ?", "answers": ["1990"], "source": "a.txt"},
            {"question": "Qui le dirige ?", "answers": ["Ada Byron"], "source": "a.txt"},
            {"question": "Combien de navires par jour ?", "answers": ["80 ships"], "source": "b.txt"},
            {"question": "Sans réponse", "answers": [], "source": "b.txt"}]  # no answer: not asked
    made = fit._small_across(script, docs, "demo", rows, 0, tmp_path)
    assert len(made) == 2
    (nm_a, off_a), (nm_b, off_b) = made
    assert (tmp_path / "small" / "demo_0" / "docs" / "a.txt").read_text("utf-8") == \
        "Alpha\n\nThe lab opened in 1990.\n\nIts director is Ada Byron."  # title and answering paragraphs only
    asked = [json.loads(x) for x in (nm_a / "questions.jsonl").read_text("utf-8").splitlines()]
    assert {r["question"] for r in asked} == {"Quand le laboratoire a-t-il ouvert ?", "Qui le dirige ?"}
    assert any(r.get("unanswerable") for r in asked)  # a near miss: its paragraph deleted
    assert [json.loads(x)["question"] for x in off_a.read_text("utf-8").splitlines()] == ["Combien de navires par jour ?"]
    assert {json.loads(x)["source"] for x in off_b.read_text("utf-8").splitlines()} == {"a.txt"}
    # other questions: the corpora are made again
    fit._small_across(script, docs, "demo", rows[1:], 0, tmp_path)
    assert (tmp_path / "small" / "demo_0" / "docs" / "a.txt").read_text("utf-8") == "Alpha\n\nIts director is Ada Byron."
    # a question whose paragraph does not fit in the small corpus is not asked (its short answer could be found elsewhere)
    assert fit.answering_paragraph(["The lab has two floors.", "There were two kinds of networks."], ["two", "two kinds of networks"]) == 1
    assert fit.answering_paragraph(["The lab has two floors."], ["three"]) is None
    monkeypatch.setattr(fit, "SMALL_ACROSS_PARAGRAPHS", 1)
    (nm_a, _), _ = fit._small_across(script, docs, "demo_one", rows, 0, tmp_path)
    assert (tmp_path / "small" / "demo_one_0" / "docs" / "a.txt").read_text("utf-8") == "Alpha\n\nThe lab opened in 1990."
    assert {json.loads(x)["question"] for x in (nm_a / "questions.jsonl").read_text("utf-8").splitlines()} <= {"Quand le laboratoire a-t-il ouvert ?"}


def test_reworded_questions_are_only_those_the_swapper_changed_each_with_its_original(tmp_path, embedder):
    from qa.train_reader import WordSwapper, _chunks

    (tmp_path / "a.txt").write_text("Pay\n\nThe council has the power to set pastors' salaries and to hire them.", "utf-8")
    chunks = _chunks(tmp_path, {"a.txt"}, Config())
    words = ["salaries", "wages", "pastors", "council", "hire"]
    vectors = np.asarray(embedder.encode(words, kind="query"), np.float32)
    rows = [{"question": "Who decides the salaries of pastors?", "answers": ["The council"], "source": "a.txt"},
            {"question": "What colour is the sky?", "answers": ["council"], "source": "a.txt"},  # shares no word: unchanged
            {"question": "Who hires pastors?", "answers": ["nobody"], "source": "a.txt"}]  # no passage holds its answer
    out = fit.changed_questions(rows, chunks, WordSwapper(words, vectors, random.Random(0)), "en", 5, 0)
    assert [r["original"] for r in out] == ["Who decides the salaries of pastors?"]
    assert out[0]["question"] != out[0]["original"] and out[0]["answers"] == ["The council"]
    assert fit.changed_questions(rows, chunks, WordSwapper(words, vectors, random.Random(0)), "en", 5, 0) == out  # seeded
    assert fit.changed_questions(rows, chunks, WordSwapper(words, vectors, random.Random(0)), "en", 0, 0) == []
