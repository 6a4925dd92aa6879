"""The metric functions on hand-made cases: each one moves the way it must."""

import json

import pytest

from qa import evaluate as E
from qa.errors import QAError


def case(answers=("80%",), unanswerable=False, source=None):
    return E.Case("q", list(answers), unanswerable, source)


def row(correct=True, refused=False, rank=1, cites=(True,), unanswerable=False, f1=1.0, total=1.0, first=0.5):
    return {"unanswerable": unanswerable, "correct": correct, "refused": refused, "retrieval_rank": rank,
            "citations_ok": list(cites), "f1": f1, "timings": {"total_s": total, "first_token_s": first}}


def test_containment_ignores_case_accents_and_punctuation():
    assert E.contains_answer("Les ingénieurs représentent 80 % ... non: 80%!", ["80%"])
    assert E.contains_answer("the ELECTRICITE network", ["électricité"])
    assert not E.contains_answer("1800 engineers", ["80"])  # whole tokens only


def test_an_over_long_answer_does_not_count_as_correct():
    long = "Engineers make up 80% of the workforce " + "and more words " * 30
    assert E.answer_correct("Engineers make up **80%** of the workforce [1].", False, case())
    assert not E.answer_correct(long, False, case())
    assert not E.answer_correct("Engineers make up 80% [1].", True, case())  # a refusal is never correct


def test_word_count_ignores_markers_and_emphasis():
    assert E.word_count("**80%** of the workforce [1] [2].") == 4


def test_f1_is_squad_style():
    assert E.f1("the Denver Broncos", "Denver Broncos") == 1.0
    assert E.f1("Broncos", "Denver Broncos") == pytest.approx(2 / 3)
    assert E.f1("Panthers", "Denver Broncos") == 0.0


def test_passage_hit_needs_the_source_when_given():
    p = {"source": "a.txt", "text": "Engineers make up 80% of the workforce."}
    assert E.passage_hit(p, case(source="a.txt")) and not E.passage_hit(p, case(source="b.txt"))
    assert E.retrieval_ranks([{"source": "x", "text": "no"}, p], case()) == 2
    assert E.retrieval_ranks([{"source": "x", "text": "no"}], case()) is None


def test_a_wrong_citation_lowers_citation_precision():
    good = E.summarize([row(cites=(True,)), row(cites=(True,))])
    bad = E.summarize([row(cites=(True,)), row(cites=(False,))])
    assert good["citation_precision"] == 1.0 and bad["citation_precision"] == 0.5
    assert E.citation_ok({"passage": "Engineers make up 80%."}, "80%", case())
    assert not E.citation_ok({"passage": "OPTITEC is a cluster."}, "80%", case())


def test_citation_support_checks_each_cited_sentence_against_its_citation():
    cites = [{"n": 1, "text": "Engineers make up 80% of the workforce."}, {"n": 2, "text": "OPTITEC is a competitiveness cluster."}]
    assert E.citations_supported("Engineers make up **80%** of the workforce [1]. OPTITEC is a cluster [2].", cites) == [True, True]
    assert E.citations_supported("Engineers make up 90% of the workforce [1]. OPTITEC is a cluster [1].", cites) == [False, False]
    assert E.citations_supported("Engineers are 80% [3].", cites) == [False]  # a marker with no citation
    framed = "D'après les documents (en anglais) : « Engineers make up 80% of the workforce [1]. OPTITEC is a cluster [2]. »"
    assert E.citations_supported(framed, cites) == [True, True]
    unsplit = "Engineers make up 80% of the workforce [1] OPTITEC is a cluster [2]."  # a quote without its full stop
    assert E.citations_supported(unsplit, cites) == [True, True]
    m = E.summarize([{**row(), "citations_supported": [True, False]}, {**row(), "citations_supported": [True, True]}])
    assert m["citation_support"] == 0.75


def test_citation_support_is_judged_against_each_span_not_how_the_answer_was_built():
    eng = {"n": 1, "text": "Engineers make up 80% of the workforce."}
    favour = {"n": 2, "text": "Provence, particularly the Aix-Marseille region, has become the favoured destination for optics and photonics businesses."}
    good = "Optics and photonics businesses favour the Aix-Marseille region [2]. Engineers make up 80% of the workforce [1]."
    assert E.citations_supported(good, [eng, favour]) == [True, True]
    contradicted = "Optics and photonics businesses favour the Aix-Marseille region [2]. Engineers make up 25% of the workforce [1]."
    assert E.citations_supported(contradicted, [eng, favour]) == [True, False]  # the example
    wrong_citation = "Optics and photonics businesses favour the Aix-Marseille region [1]. Engineers make up 80% of the workforce [2]."
    assert E.citations_supported(wrong_citation, [eng, favour]) == [False, False]
    negated = "Engineers do not make up 80% of the workforce [1]."
    assert E.citations_supported(negated, [eng]) == [False]
    rows = lambda answer: [{**row(), "citations_supported": E.citations_supported(answer, [eng, favour])}]  # noqa: E731
    assert E.summarize(rows(good))["citation_support"] == 1.0
    assert E.summarize(rows(contradicted))["citation_support"] == 0.5 and E.summarize(rows(wrong_citation))["citation_support"] == 0.0


def test_extractive_answer_forms_are_judged_fairly():
    eng = [{"n": 1, "text": "Engineers make up 80% of the workforce."}]
    assert E.citations_supported('**80%** — "Engineers make up 80% of the workforce." [1]', eng) == [True]
    assert E.citations_supported('**25%** — "Engineers make up 80% of the workforce." [1]', eng) == [False]  # a phrase not in the span
    assert E.citations_supported('**80%** — "Engineers make up 85% of the workforce." [1]', eng) == [False]  # a misquote
    assert E.citations_supported("D'après le document (en anglais) : « Engineers make up 80% of the workforce. » [1]", eng) == [True]
    assert E.citations_supported("Engineers make up **80%** of the workforce [1].", eng) == [True]


def test_citation_ok_without_gold_needs_the_span_to_entail_what_cites_it():
    eng = {"n": 1, "text": "Engineers make up 80% of the workforce.", "passage": "Engineers make up 80% of the workforce. Thales is big."}
    assert E.citation_ok(eng, "Engineers make up 80% of the workforce [1].", case(answers=(), unanswerable=True))
    assert not E.citation_ok(eng, "Thales makes up 80% of the workforce [1].", case(answers=(), unanswerable=True))
    assert not E.citation_ok(eng, "Engineers make up 80% of the workforce.", case(answers=(), unanswerable=True))  # not cited


def test_citation_recall_counts_correct_answers_with_a_right_citation():
    m = E.summarize([row(cites=(True,)), row(cites=(False,)), row(correct=False, cites=())])
    assert m["citation_recall"] == 0.5


def test_refusal_metrics():
    m = E.summarize([row(unanswerable=True, refused=True, correct=False, rank=None, cites=()),
                     row(unanswerable=True, refused=False, correct=False, rank=None, cites=()),
                     row(refused=True, correct=False, cites=()), row(), row(), row()])
    assert m["refusal_accuracy"] == 0.5 and m["false_refusal_rate"] == 0.25
    assert m["n"] == 6 and m["n_unanswerable"] == 2 and m["answer_accuracy"] == 0.75


def test_retrieval_and_latency_metrics():
    m = E.summarize([row(rank=1, total=1.0), row(rank=2, total=2.0), row(rank=None, total=3.0), row(rank=1, total=4.0)])
    assert m["retrieval_hit@1"] == 0.5 and m["retrieval_hit@5"] == 0.75
    assert m["retrieval_mrr"] == pytest.approx((1 + 0.5 + 0 + 1) / 4)
    assert m["latency_p50_s"] == 2.5 and m["first_token_p50_s"] == 0.5


def test_load_cases_reports_the_bad_line(tmp_path):
    f = tmp_path / "q.jsonl"
    f.write_text(json.dumps({"question": "a", "answers": ["b"]}) + "\n" + json.dumps({"question": "c"}) + "\n")
    with pytest.raises(QAError, match="line 2"):
        E.load_cases(f)
    f.write_text(json.dumps({"question": "a", "unanswerable": True, "history": [{"role": "user", "content": "x"}]}))
    (c,) = E.load_cases(f)
    assert c.unanswerable and c.history


def test_html_report_is_self_contained():
    from qa.report import render

    rows = [dict(row(), question="What <b>?", answer="80% [1]", gold=["80%"]),
            dict(row(unanswerable=True, refused=True, rank=None, cites=()), question="Who?", answer="The documents do not say.", gold=[])]
    page = render(E.summarize(rows), rows)
    assert page.startswith("<!doctype html>") and "data:image/png;base64," in page
    assert "What &lt;b&gt;?" in page  # escaped
    assert "<script" not in page and "src=\"http" not in page
