"""The verifier: each rule on small cases, then precision and recall on the labelled adversarial claims."""

import pytest

from qa.quantities import quantities
from qa.verify import best_span, check, complete_sentences, parse_claims

from .conftest import EVAL

ENG = "Engineers make up 80% of the workforce."
RND = ("The region is home to some of the country’s most advanced optics research and development projects, which "
       "account for 25% of France’s national R&D investments in optics and photonics.")


def values(text, lang="en"):
    return [(sorted(q.values), q.unit) for q in quantities(text, lang)]


def test_numbers_are_values_with_units_in_english_and_french():
    assert values("2,5 %", "fr") == [([2.5], "%")]
    assert values("2.5%") == [([2.5], "%")]
    assert values("1,000 people") == [([1000.0], "")]
    assert values("1 000 habitants", "fr") == values("1\u00a0000 habitants", "fr") == values("1\u202f000", "fr") == [([1000.0], "")]
    assert values("$5 million") == values("five million dollars") == [([5e6], "USD")]
    assert values("4,5 milliards de dollars", "fr") == [([4.5e9], "USD")]
    assert values("€60m") == [([6e7], "EUR")]
    assert values("three") == values("trois", "fr") == [([3.0], "")]
    assert values("a dozen eggs") == [([12.0], "")]
    assert values("half of the crust") == [([50.0], "%")]
    assert values("the 1630s") == values("dans les années 1630", "fr") == [([1630.0], "decade")]
    assert values("XIIIe siècle", "fr") == values("the 13th century") == [([13.0], "century")]
    assert values("2½ sacks") == [([2.5], "")]


def test_a_number_must_agree_in_value_and_unit():
    assert check("Les ingénieurs représentent 80 % des effectifs.", ENG, "fr", "en").supported
    assert not check("Engineers make up 25% of the workforce.", ENG)  # the example
    assert not check("Engineers make up 8% of the workforce.", ENG)
    assert not check("The projects account for 2,5 % of France’s national R&D investments.", RND, "fr", "en")
    assert check("The projects account for a quarter of France’s national R&D investments in optics and photonics.", RND)
    assert check("Engineers make up eighty percent of the workforce.", ENG)
    span = "Jacksonville lies about 25 miles (40 km) south of the Georgia state line and about 340 miles (550 km) north of Miami."
    assert check("Jacksonville lies about 40 km south of the Georgia state line.", span)
    assert not check("Jacksonville lies about 25 km south of the Georgia state line.", span)  # a unit changed
    assert check("The eyeball is about 2.4 cm across.", "The eyeball is about 24 mm across.")


def test_a_number_moved_to_another_fact_of_the_same_sentence_fails():
    span = "Jacksonville lies about 25 miles (40 km) south of the Georgia state line and about 340 miles (550 km) north of Miami."
    assert not check("Jacksonville lies about 340 miles south of the Georgia state line.", span)
    assert not check("Jacksonville lies about 25 miles north of Miami.", span)
    schools = "The university consists of four academic research divisions and seven professional schools."
    assert check("The university has 4 research divisions and 7 professional schools.", schools)
    assert not check("The university has seven academic research divisions and four professional schools.", schools)


def test_negation_must_agree():
    assert not check("The region does not host any advanced research projects.", RND)
    assert not check("Academia has no role in the optics sector.",
                     "A defining feature of the optics sector in Provence is its close collaboration between academia and private enterprise.")
    lead = "The Broncos took an early lead in Super Bowl 50 and never trailed."
    assert check("The Broncos never trailed in Super Bowl 50.", lead)
    assert not check("The Broncos trailed early in Super Bowl 50.", lead)
    fibre = "Le cœur des fibres monomodes ne dépasse pas une dizaine de micromètres."
    assert check("Le cœur des fibres monomodes ne dépasse pas une dizaine de micromètres.", fibre)
    assert not check("Le cœur des fibres monomodes dépasse une dizaine de micromètres.", fibre)
    assert not check("Les fibres franchissent des dizaines de kilomètres avec régénération.",
                     "Les fibres franchissent des dizaines de kilomètres sans régénération.")


def test_names_must_be_in_the_span_and_keep_their_roles():
    span = "The Denver Broncos defeated the Carolina Panthers 24–10 to earn their third Super Bowl title."
    assert check("The Denver Broncos beat the Carolina Panthers 24–10.", span)
    assert not check("The Carolina Panthers defeated the Denver Broncos 24–10.", span)
    assert not check("Thales makes up 80% of the workforce.", ENG)  # a sentence-initial name counts too
    assert not check("Engineers make up 80% of the workforce at Thales.", ENG)


def test_an_added_clause_or_a_fact_from_another_sentence_fails():
    assert not check("Engineers make up 80% of the workforce, most of them trained in Marseille.", ENG)
    assert not check("Engineers, who make up 80% of the workforce, account for 25% of R&D investments.", ENG)
    passage = f"{ENG} {RND}"
    claim = "Engineers make up 80% of the workforce and account for 25% of national R&D investments."
    assert best_span(claim, passage, "en") is None  # its facts sit in two sentences: neither supports it
    a, b = best_span("80% of the workforce are engineers.", passage, "en")
    assert passage[a:b] == ENG


def test_a_quote_or_a_short_answer_phrase_of_the_span_is_supported():
    assert check("80%", ENG).rule == "quote"
    assert check("« Engineers make up 80% of the workforce. »", ENG).supported
    assert not check("Students love pizza.", ENG)
    assert not check("", ENG) and check("", ENG).reason


def test_parse_claims_gives_a_marker_after_the_full_stop_to_its_sentence():
    claims = parse_claims("Engineers make up 80% of the workforce. [1] OPTITEC is a cluster [2].", "en")
    assert [(c.text, c.cites) for c in claims] == [("Engineers make up 80% of the workforce.", [1]), ("OPTITEC is a cluster.", [2])]


def test_complete_sentences_waits_for_the_next_sentence_to_start():
    assert complete_sentences("Engineers make up 80% of the work", "en") == ([], "Engineers make up 80% of the work")
    done, rest = complete_sentences("Engineers make up 80% of the workforce. [1]", "en")
    assert done == [] and rest.startswith("Engineers")  # a marker may still follow
    done, rest = complete_sentences("Engineers make up 80% of the workforce [1]. OPTITEC is", "en")
    assert done == ["Engineers make up 80% of the workforce [1]."] and rest.strip() == "OPTITEC is"
    done, rest = complete_sentences("Engineers make up 80% of the workforce. [1] OPTITEC is", "en")
    assert done == ["Engineers make up 80% of the workforce. [1]"] and rest.strip() == "OPTITEC is"


def test_precision_and_recall_on_the_adversarial_claims():
    """Goals: precision >= 0.98 (accepted claims that are supported), recall >= 0.85 (supported claims accepted)."""
    import sys

    sys.path.insert(0, str(EVAL.parent.parent / "scripts"))
    from bench_verify import judge, load, report

    rows = judge(load(EVAL / "claims.jsonl"))
    assert len(rows) >= 200 and {r["lang"] for r in rows} == {"en", "fr"}
    m = report(rows)["overall"]
    assert m["precision"] >= 0.98, m
    assert m["recall"] >= 0.85, m


@pytest.mark.parametrize("claim", ["Engineers make up 80% of the workforce.", "Engineers account for 80 per cent of the workforce."])
def test_supported_paraphrases(claim):
    assert check(claim, ENG).supported
