"""Fine-tune the reader (qa/reader.py) on ../shared/train, fitting articles only, and write qa/models/reader.npz.

    python -m qa.train_reader [--train ../shared/train] [--out FILE] [--seed 0] [--hours 2.5] [--limit N]
                              [--swap 0.5] [--paraphrases 1] [--keywords 2] [--cut 1] [--hand 4] [--init qa/models/reader.npz --learning-rate 2.5e-4 --epochs 0.6]
                              [--precision bfloat16] [--checkpoint FILE]

The articles are split as qa.fit splits them (same seed): the reader learns only from the fitting articles, so the
decision fitted on its scores and every held-out figure stay honest. Each question gives a passage that holds its
answer (the answer's first occurrence is the target span) and passages that do not (the target is <s>): the closest
other passages of its own article (the near miss: on its subject, answer absent) and one from another article. French
questions over English articles come from hand translations of fitting questions and of the public development set,
English questions over French articles from hand translations of PIAF fitting questions (TRANSLATED).
With --swap, a share of the fitting questions is reworded before training: some of their words that the answering
passage also has become one of their nearest words by e5 vector (wages for salaries, entreprises for companies), so
that the reader learns to answer a question that does not repeat the passage's words. With --paraphrases N, the
1,000 fitting SQuAD questions reworded by hand (PARAPHRASED: other words than the passage, same fact, names kept) are
read N times each, with their answering passage and near misses like any question. With --keywords N, a name of
each fitting question typed alone ("OPTITEC") is read N times with the passages of its article: those that hold it
point at its first mention, the others say "no answer" (a name alone asks where the documents speak of it). With --cut N,
each fitting question also reads its answering passage N times with the sentences holding its answer cut out, as "no
answer": a near miss as visitors meet one, same subject and names, the fact asked absent (the held-out figures always
measure it, group <corpus>:cut). With --hand N, each near miss written by hand for a fitting article
(tests/eval/hand_near_miss_*_fit.jsonl: a detail beside one the article gives, written nowhere in it) is read N times
with the 3 passages of the fitting articles that share the most words with it, as "no answer" (the held-out figures
always measure those of held-out articles, group <corpus>:hand). --init continues from a saved reader. Training is reproducible (fixed seed, fixed
order) and stops after --hours; it then reports held-out figures. With --checkpoint FILE the training state is saved
there as it goes, and the same command run again resumes it: a training longer than one sitting (--hours per run; a
run that stops before its last step writes the reader so far and leaves the held-out figures to the run that finishes;
the examples are kept beside it, FILE.examples, so that resuming does not spend 10 minutes making them again).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import hashlib
import json
import math
import pickle
import random
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from . import reader as R
from .chunking import Chunk, chunk_document
from .config import ROOT, Config
from .documents import load as load_document
from .evaluate import contains_answer, normalize
from .quantities import quantities
from .text import sentence_spans, tokenize, vector_words

RANK = 8  # low-rank updates of every attention and feed-forward matrix
ALPHA = 16.0
LEARNING_RATE = 5e-4  # for the updates and the norms; the head learns at the same rate
BATCH_TOKENS = 2048  # a batch holds about this many tokens (pairs of similar length together)
NEGATIVES_SAME = 2  # passages of the question's own article that do not hold the answer
NEGATIVES_OTHER = 1  # passages of another article
WARMUP = 0.05  # share of the planned steps with a rising learning rate
CHECKPOINT_MINUTES = 10.0  # with --checkpoint, the training state is saved this often (and at the end)
Precision = Literal["float32", "bfloat16"]  # matrix products while training; the held-out figures are always float32
SWAP_SHARE = 0.0  # share of fitting questions reworded through word neighbours (0: the shipped reader was trained so)
SWAP_WORD = 0.5  # in a reworded question, chance that each word shared with the answering passage is swapped
SWAP_NEIGHBOURS = 3  # a swapped word becomes one of its this many nearest words of another stem and spelling...
SWAP_MIN_COSINE = 0.93  # ...whose e5 vector is at least this close (below, related words: church, religion)
SWAP_MAX_SPELLING = 0.6  # a neighbour spelt this much alike (difflib ratio) is a look-alike (war, ware), not a synonym
PARAPHRASES = 0  # times each hand paraphrase of PARAPHRASED is read (0: the shipped reader was trained without them)
KEYWORDS = 0  # times each keyword query (a name alone, taken from a fitting question) is read (0: shipped reader without them)
CUT = 0  # times each fitting question reads its answering passage with the answer's sentences cut out (0: shipped reader)
CUT_MIN_WORDS = 25  # a cut passage shorter than this is left out (too little left to be a near miss)
CUT_HELD = 300  # held-out questions per corpus whose cut passage is measured (group "<corpus>:cut")
HAND = 0  # times each near miss written by hand for a fitting article is read (the shipped reader: 0, then continued with 4, README)
HAND_PASSAGES = 3  # ...with this many passages, those sharing the most words with it, as "no answer"
KEYWORD_LOWER = 0.25  # share of keyword queries typed lower case, as visitors often type a name
# up to three capitalised words in a row, joined by "of", "de"... ("University of Notre Dame"), after an elision or not (l'OPTITEC)
_NAME = re.compile(r"(?:(?<=\b[dlDL]['’])|(?<![\w'’-]))(?P<name>[A-ZÀ-Ý][\w'’-]*(?:\s+(?:(?:of|of the|de|du|des|de la)\s+)?[A-ZÀ-Ý][\w'’-]*){0,2})")


@dataclass
class Example:
    question: str
    title: str
    text: str
    span: tuple[int, int] | None  # the answer's characters in text, None: no answer here
    group: str  # corpus:lang of the question (for the figures)


def _chunks(docs: Path, names: set[str], cfg: Config) -> dict[str, list[Chunk]]:
    out = {}
    for name in sorted(names):
        doc = load_document(docs / name, docs)
        out[name] = chunk_document(doc, cfg.chunk_max_words, cfg.chunk_overlap_words, cfg.chunk_min_words)
    return out


def answer_span(text: str, answers: list[str]) -> tuple[int, int] | None:
    """Characters of the first gold answer found in text (exactly, else ignoring case and accents' absence)."""
    for a in answers:
        a = a.strip()
        if a and (i := text.find(a)) >= 0:
            return i, i + len(a)
    for a in answers:
        a = a.strip()
        m = re.search(re.escape(a), text, re.IGNORECASE) if a else None
        if m:
            return m.span()
    return None


def idf_of(chunks: dict[str, list[Chunk]]) -> dict[str, float]:
    """Each term's inverse document frequency over the passages."""
    df = Counter(t for cs in chunks.values() for c in cs for t in set(tokenize(c.text, c.lang)))
    n = sum(len(cs) for cs in chunks.values())
    return {t: math.log(1 + n / k) for t, k in df.items()}


def _overlap(question: str, lang: str, chunk: Chunk, idf: dict[str, float]) -> float:
    q = set(tokenize(question, lang)) | set(tokenize(question, chunk.lang))
    return sum(idf.get(t, 0.0) for t in q & set(tokenize(chunk.text, chunk.lang)))


def make_examples(rows: list[dict], chunks: dict[str, list[Chunk]], group: str, rng: random.Random,
                  negatives_same: int = NEGATIVES_SAME, negatives_other: int = NEGATIVES_OTHER) -> list[Example]:
    """A positive passage and the closest answerless passages of each question (see the module's docstring)."""
    idf = idf_of(chunks)
    names = sorted(chunks)
    out = []
    for r in rows:
        own = chunks.get(r.get("source") or "", []) if r.get("answers") else []
        lang = "fr" if group.endswith("fr") else "en"
        holding = [c for c in own if contains_answer(c.text, r["answers"])]
        positives = [(c, s) for c in holding if (s := answer_span(c.text, r["answers"]))]
        if not positives:
            continue
        c, s = rng.choice(positives)
        out.append(Example(r["question"], c.title, c.text, s, group))
        rest = sorted((x for x in own if x not in holding), key=lambda x: -_overlap(r["question"], lang, x, idf))
        out += [Example(r["question"], x.title, x.text, None, group) for x in rest[:negatives_same]]
        others = [nm for nm in names if nm != r.get("source")]
        for nm in rng.sample(others, min(negatives_other, len(others))):
            x = max(chunks[nm], key=lambda x: _overlap(r["question"], lang, x, idf))
            if not contains_answer(x.text, r["answers"]):
                out.append(Example(r["question"], x.title, x.text, None, group))
    return out


def cut_passage(text: str, lang: str, answers: list[str]) -> str | None:
    """The passage without the sentences that hold an answer: on the question's subject, its answer absent (None when
    an answer is still there or too little is left)."""
    spans = sentence_spans(text, lang)
    keep = [text[a:b] for a, b in spans if not contains_answer(text[a:b], answers)]
    rest = " ".join(keep)
    if len(keep) == len(spans) or len(rest.split()) < CUT_MIN_WORDS or contains_answer(rest, answers):
        return None
    return rest


def spread(rows: list, n: int) -> list:
    """At most n of the rows, taken evenly over the whole list (so over many articles, not the first few)."""
    return rows[:: max(1, len(rows) // n)][:n]


def cut_examples(rows: list[dict], chunks: dict[str, list[Chunk]], group: str, with_answer: bool = False) -> list[Example]:
    """Each question with the passage that answers it, the answer's sentences cut out: "no answer" (a near miss written
    by hand is like this, same subject and names, the fact asked absent). with_answer adds the whole passage (for the
    held-out figure: answering passage against its own cut)."""
    out = []
    for r in rows:
        for c in chunks.get(r.get("source") or "", []) if r.get("answers") else []:
            if (s := answer_span(c.text, r["answers"])) and (rest := cut_passage(c.text, c.lang, r["answers"])):
                out += [Example(r["question"], c.title, c.text, s, group)] if with_answer else []
                out.append(Example(r["question"], c.title, rest, None, group))
                break
    return out


def answerless_examples(rows: list[dict], chunks: dict[str, list[Chunk]], group: str, n: int = HAND_PASSAGES) -> list[Example]:
    """Each question (one the passages do not answer: a near miss) with the n passages sharing the most idf-weighted
    words with it, as "no answer"; the question's language is its row's `lang`, else the language model's guess."""
    from .language import shipped

    every = [c for cs in chunks.values() for c in cs]
    idf = idf_of(chunks)
    out = []
    for r in rows:
        lang = r.get("lang") or shipped().guess(r["question"])
        top = sorted(every, key=lambda c: -_overlap(r["question"], lang, c, idf))[:n]
        out += [Example(r["question"], c.title, c.text, None, group) for c in top]
    return out


def keyword_names(question: str) -> list[str]:
    """The names a question gives (runs of capitalised words, its first word left out): what a visitor may type alone."""
    first = re.match(r"\s*[\w'’-]+", question)
    start = first.end() if first else 0
    return list(dict.fromkeys(m["name"].strip("'’-") for m in _NAME.finditer(question, start) if len(m["name"]) > 2))


def keyword_examples(rows: list[dict], chunks: dict[str, list[Chunk]], group: str, rng: random.Random) -> list[Example]:
    """A name of each question asked alone: the passages of its article that hold it point at its first occurrence (a
    name alone asks where the documents speak of it), the passages that lack it say "no answer". Once per article."""
    seen, out, names = set(), [], sorted(chunks)
    for r in rows:
        own = chunks.get(r.get("source") or "", [])
        for name in keyword_names(r["question"]):
            if (r["source"], name) in seen:
                continue
            seen.add((r["source"], name))
            holding = [c for c in own if name in c.text]
            if not holding:
                continue
            query = name.lower() if rng.random() < KEYWORD_LOWER else name
            for c in holding[:2]:
                i = c.text.index(name)
                out.append(Example(query, c.title, c.text, (i, i + len(name)), group))
            lacking = [c for c in own if name.lower() not in c.text.lower()]
            out += [Example(query, c.title, c.text, None, group) for c in rng.sample(lacking, min(NEGATIVES_SAME, len(lacking)))]
            other = rng.choice([nm for nm in names if nm != r["source"]] or [r["source"]])
            x = rng.choice(chunks[other])
            if name.lower() not in x.text.lower():
                out.append(Example(query, x.title, x.text, None, group))
    return out


class WordSwapper:
    """Rewords questions: words shared with the answering passage become near words by e5 vector (another stem)."""

    def __init__(self, words: list[str], vectors: np.ndarray, rng: random.Random) -> None:
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        self.words, self.vectors, self.rng = words, vectors / np.maximum(norms, 1e-9), rng
        self.row = {w: i for i, w in enumerate(words)}
        self._near: dict[str, list[str]] = {}

    def _stems(self, word: str) -> set[str]:
        return {t for lang in ("en", "fr") for t in tokenize(word, lang)}

    def neighbours(self, word: str) -> list[str]:
        """The nearest words of another stem, closest first."""
        if word not in self._near:
            i = self.row.get(word)
            out: list[str] = []
            if i is not None:
                sims = self.vectors @ self.vectors[i]
                stems = self._stems(word)
                for j in np.argsort(-sims)[: 8 * SWAP_NEIGHBOURS]:
                    w = self.words[j]
                    if sims[j] < SWAP_MIN_COSINE or len(out) == SWAP_NEIGHBOURS:
                        break
                    alike = difflib.SequenceMatcher(None, word, w).ratio() >= SWAP_MAX_SPELLING
                    if w not in out and not (self._stems(w) & stems) and not alike:
                        out.append(w)
            self._near[word] = out
        return self._near[word]

    def reword(self, question: str, passage: str, lang: str) -> str:
        """The question with some of the words it shares with the passage swapped (at least one when any can be); never a
        name (a capitalised word after the first: a visitor keeps names) nor a number, ordinal, month or fraction
        written in words (its near words are other values: two for three)."""
        passage_stems = set(tokenize(passage, "en")) | set(tokenize(passage, "fr"))
        names = {m.group(0).casefold() for m in re.finditer(r"\w+", question) if m.start() > 0 and m.group(0)[0].isupper()}
        shared = [w for w in vector_words(question, lang)
                  if w not in names and self._stems(w) & passage_stems and not quantities(w, lang) and self.neighbours(w)]
        if not shared:
            return question
        chosen = [w for w in shared if self.rng.random() < SWAP_WORD] or [self.rng.choice(shared)]
        for w in chosen:
            new = self.rng.choice(self.neighbours(w))
            question = re.sub(rf"(?<!\w){re.escape(w)}(?!\w)", new, question, count=1, flags=re.IGNORECASE)
        return question


def word_swapper(chunks: dict[str, list[Chunk]], cfg: Config, rng: random.Random) -> WordSwapper:
    """A WordSwapper over the fitting articles' vocabulary, its e5 word vectors as the index makes them (those of
    the fitting indexes under the cache are reused)."""
    from . import embedders
    from .errors import QAError
    from .index import Index, _term_vectors

    every = [c for cs in chunks.values() for c in cs]
    spec = embedders.spec(cfg.embedder)
    for corpus in ("squad", "piaf"):
        try:
            _term_vectors(cfg, spec.model_id, spec.dim, [], Index.load(cfg.cache_dir / "fit" / "index" / corpus), None)
        except QAError:  # no fitting index yet: the words are embedded below
            pass
    words, vectors = _term_vectors(cfg, spec.model_id, spec.dim, every, None, None)
    return WordSwapper(words, vectors, rng)


def reworded(rows: list[dict], chunks: dict[str, list[Chunk]], swapper: WordSwapper, share: float, lang: str,
             rng: random.Random) -> list[dict]:
    """The rows, a share of them with their question reworded against the passage that answers it."""
    out = []
    for r in rows:
        holding = [c for c in chunks.get(r.get("source") or "", []) if r.get("answers") and contains_answer(c.text, r["answers"])]
        if holding and rng.random() < share:
            r = {**r, "question": swapper.reword(r["question"], holding[0].text, lang), "original": r["question"]}
        out.append(r)
    return out


EVAL = ROOT / "tests" / "eval"
# Questions translated by hand, asked of the articles of their corpus: (corpus, part) -> (file, language, times seen)
TRANSLATED = {
    ("squad", "fit"): [("squad_fit_fr.jsonl", "fr", 2), ("squad_fit_fr_more.jsonl", "fr", 1)],
    ("squad", "held"): [("squad_held_fr.jsonl", "fr", 1)],
    ("piaf", "fit"): [("piaf_fit_en.jsonl", "en", 1)],
    ("piaf", "held"): [("piaf_held_en.jsonl", "en", 1)],
}
# Fitting SQuAD questions reworded by hand in English, to teach the reader a question in other words than its passage's
PARAPHRASED = "squad_fit_paraphrases.jsonl"


def _read_rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text("utf-8").splitlines() if x.strip()]


def examples_key(*arguments) -> str:
    """What the examples are made from: the arguments and every source file of the package (a change to either makes them anew)."""
    code = hashlib.sha1()
    for f in sorted(Path(__file__).parent.glob("*.py")):
        code.update(f.read_bytes())
    return hashlib.sha1(repr((arguments, code.hexdigest())).encode()).hexdigest()


def cached_examples(path: Path, key: str, make) -> tuple[list[Example], list[Example]]:
    """make() (the fitting and held-out examples), or what it gave before when path holds examples of the same key."""
    if path.is_file():
        try:
            saved = pickle.loads(path.read_bytes())
            if saved["key"] == key:
                return tuple([Example(*e) for e in part] for part in saved["examples"])  # type: ignore[return-value]
        except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError):
            pass  # damaged or of another layout: made anew
    examples = make()
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(pickle.dumps({"key": key, "examples": [[dataclasses.astuple(e) for e in part] for part in examples]}))
    tmp.replace(path)
    return examples


def datasets(train: Path, dev: Path, cfg: Config, seed: int, limit: int | None,
             swap: float = SWAP_SHARE, paraphrases: int = PARAPHRASES,
             keywords: int = KEYWORDS, cut: int = CUT, hand: int = HAND) -> tuple[list[Example], list[Example]]:
    """(fitting examples, held-out examples) from the article split of qa.fit."""
    from .fit import split_articles

    rng = random.Random(seed)
    fit_ex, held_ex = [], []
    parts = {}
    for corpus in ("squad", "piaf"):
        docs = train / corpus / "docs"
        fit, held = split_articles(docs, seed)
        parts[corpus] = {"fit": _chunks(docs, fit, cfg), "held": _chunks(docs, held, cfg)}
    swapper = word_swapper({**parts["squad"]["fit"], **parts["piaf"]["fit"]}, cfg, random.Random(seed)) if swap else None
    for corpus, lang in (("squad", "en"), ("piaf", "fr")):
        rows = _read_rows(train / corpus / "questions.jsonl")
        for part, bucket in (("fit", fit_ex), ("held", held_ex)):
            chunks = parts[corpus][part]
            mine = [r for r in rows if r["source"] in chunks]
            if limit:
                mine = mine[: limit if part == "fit" else max(100, limit // 4)]
            if swapper and part == "fit":
                mine = reworded(mine, chunks, swapper, swap, lang, rng)
            bucket += make_examples(mine, chunks, f"{corpus}:{lang}", rng)
            if keywords and part == "fit":
                bucket += keyword_examples(mine, chunks, f"{corpus}:keywords", rng) * keywords
            if cut and part == "fit":
                bucket += cut_examples(mine, chunks, f"{corpus}:{lang}") * cut
            if part == "held":
                bucket += cut_examples(spread(mine, CUT_HELD), chunks, f"{corpus}:cut", with_answer=True)
            times = hand if part == "fit" else 1  # the held-out ones are always measured
            if times:
                written = _read_rows(EVAL / f"hand_near_miss_{corpus}_{part}.jsonl")
                written = written[: max(5, limit // 4)] if limit else written
                bucket += answerless_examples(written, chunks, f"{corpus}:hand") * times
            for name, other, times in TRANSLATED[(corpus, part)]:
                bucket += make_examples(_read_rows(EVAL / name), chunks, f"{corpus}:{other}", rng) * times
            if corpus == "squad" and part == "fit" and paraphrases:
                bucket += make_examples(_read_rows(EVAL / PARAPHRASED), chunks, "squad:en", rng) * paraphrases
    dev_docs = dev / "squad_a" / "docs"
    dev_chunks = _chunks(dev_docs, {p.name for p in dev_docs.glob("*.txt")}, cfg)
    cross = _read_rows(dev / "squad_a_fr" / "questions.jsonl") + _read_rows(EVAL / "squad_fr_questions.jsonl")
    fit_ex += make_examples(cross, dev_chunks, "squad_a:fr", rng) * 2
    return fit_ex, held_ex


def token_targets(pair: R.Pair, span: tuple[int, int] | None) -> tuple[int, int] | None:
    """(start, end) token indices of the span in the pair (0, 0: no answer); None when the span was cut off."""
    if span is None:
        return 0, 0
    a, b = span
    starts = [i for i, (x, y) in enumerate(pair.offsets) if y > a]
    ends = [i for i, (x, y) in enumerate(pair.offsets) if x < b]
    if not starts or not ends or starts[0] > ends[-1] or pair.offsets[ends[-1]][1] < b:
        return None
    return pair.text_start + starts[0], pair.text_start + ends[-1]


def batches(items: list[tuple[R.Pair, tuple[int, int]]], rng: random.Random) -> list[list[tuple[R.Pair, tuple[int, int]]]]:
    """Pairs of similar length together (less padding), batches in random order."""
    order = list(range(len(items)))
    rng.shuffle(order)
    out = []
    for k in range(0, len(order), 512):  # sort within windows: random, but lengths alike inside a batch
        window = sorted(order[k : k + 512], key=lambda i: len(items[i][0].ids))
        batch, width = [], 0
        for i in window:
            width = max(width, len(items[i][0].ids))
            if batch and width * (len(batch) + 1) > BATCH_TOKENS:
                out.append(batch)
                batch, width = [], len(items[i][0].ids)
            batch.append(items[i])
        if batch:
            out.append(batch)
    rng.shuffle(out)
    return out


def train(net, tokenizer: R.Tokenizer, examples: list[Example], hours: float, seed: int, epochs: float, log,
          learning_rate: float = LEARNING_RATE, precision: Precision = "float32", checkpoint: Path | None = None,
          max_steps: int | None = None) -> dict:
    """Fit the updates; stops after `epochs` passes, or after `hours` (or `max_steps`) in this run. With a checkpoint,
    the whole training state is saved there every CHECKPOINT_MINUTES and at the end, and a run finding one resumes it
    exactly where it stopped (same examples, seed and epochs required)."""
    import torch

    torch.manual_seed(seed)
    rng = random.Random(seed)
    items = []
    for ex in examples:
        pair = R.make_pair(tokenizer, ex.question, ex.title, ex.text)
        target = token_targets(pair, ex.span)
        if target is not None:
            items.append((pair, target))
    plan_state = rng.getstate()  # the order of a pass is remade from this state when a run resumes
    plan = batches(items, rng)
    total = max(1, int(len(plan) * epochs))
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=learning_rate, weight_decay=0.01)
    schedule = lambda step: min(1.0, step / max(1, WARMUP * total)) * max(0.0, (total - step) / total)  # noqa: E731
    lr_sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    step, seen, position, running, before = 0, 0, 0, [], 0.0
    if checkpoint is not None and checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=False)
        if (state["pairs"], state["total"]) != (len(items), total):
            raise SystemExit(f"{checkpoint} is of another run ({state['pairs']} pairs, {state['total']} steps; this one "
                             f"{len(items)}, {total}): remove it or give the same examples, seed and epochs.")
        net.load_state_dict(state["net"], strict=False)
        opt.load_state_dict(state["opt"])
        lr_sched.load_state_dict(state["sched"])
        torch.set_rng_state(state["torch_rng"])
        step, seen, position, running, before, plan_state = (state[k] for k in ("step", "seen", "position", "running", "seconds", "plan_state"))
        rng.setstate(plan_state)
        plan = batches(items, rng)
        log(f"resumed {checkpoint} at step {step}/{total}")

    def save_state() -> None:
        names = {n for n, p in net.named_parameters() if p.requires_grad}
        trainable = {k: v for k, v in net.state_dict().items() if k in names}
        tmp = checkpoint.with_name(checkpoint.name + ".tmp")
        torch.save({"net": trainable, "opt": opt.state_dict(), "sched": lr_sched.state_dict(), "torch_rng": torch.get_rng_state(),
                    "step": step, "seen": seen, "position": position, "running": running[-100:], "plan_state": plan_state,
                    "seconds": before + time.perf_counter() - t0, "pairs": len(items), "total": total}, tmp)
        tmp.replace(checkpoint)

    net.train()
    t0 = saved = time.perf_counter()
    stop = lambda: step >= total or time.perf_counter() - t0 > hours * 3600 or (max_steps is not None and step >= max_steps)  # noqa: E731
    while not stop():
        if position >= len(plan):  # a pass is over: the next in a new order
            plan_state = rng.getstate()
            plan, position = batches(items, rng), 0
        batch = plan[position]
        ids, mask = R.batch_tensors([p for p, _ in batch], tokenizer.pad)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bfloat16"):
            start, end = net(ids, mask)
        start, end = start.float(), end.float()
        ts = torch.tensor([t[0] for _, t in batch])
        te = torch.tensor([t[1] for _, t in batch])
        loss = (torch.nn.functional.cross_entropy(start, ts) + torch.nn.functional.cross_entropy(end, te)) / 2
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        lr_sched.step()
        step, position, seen = step + 1, position + 1, seen + len(batch)
        running.append(float(loss.detach()))
        if step % 50 == 0:
            log(f"step {step}/{total}  pairs {seen}  loss {np.mean(running[-50:]):.3f}  {before + time.perf_counter() - t0:.0f}s")
        if checkpoint is not None and time.perf_counter() - saved > CHECKPOINT_MINUTES * 60:
            save_state()
            saved = time.perf_counter()
    if checkpoint is not None:
        save_state()
    net.eval()
    return {"steps": step, "planned_steps": total, "pairs_seen": seen, "pairs": len(items), "seconds": round(before + time.perf_counter() - t0), "precision": precision,
            "final_loss": round(float(np.mean(running[-100:])), 4) if running else None}


def evaluate(reader_net, tokenizer: R.Tokenizer, examples: list[Example]) -> dict:
    """Held-out figures per question group: the best span over a question's passages holds the answer (when one of
    them does), how well max(span - no answer) separates passages that hold it from those that do not (AUC), and how
    often each kind is scored above "no answer"."""
    import torch

    by_question: dict[tuple[str, str], list[tuple[Example, R.Reading]]] = {}
    reader_net.eval()
    with torch.inference_mode():
        for k in range(0, len(examples), 16):
            chunk = examples[k : k + 16]
            pairs = [R.make_pair(tokenizer, e.question, e.title, e.text) for e in chunk]
            ids, mask = R.batch_tensors(pairs, tokenizer.pad)
            s, e = reader_net(ids, mask)
            for ex, rd in zip(chunk, R.readings(pairs, s.numpy(), e.numpy())):
                by_question.setdefault((ex.group, ex.question), []).append((ex, rd))
    out: dict[str, dict] = {}
    for (group, _), items in by_question.items():
        g = out.setdefault(group, {"questions": 0, "span_holds_answer": 0, "pos": [], "neg": []})
        best = max(((rd.best_span(), ex, rd) for ex, rd in items), key=lambda x: x[0][0])
        (score, i, j), ex, rd = best
        if any(e.span for e, _ in items):
            g["questions"] += 1
            if ex.span is not None:
                a, b = rd.span_chars(i, j)
                gold = ex.text[ex.span[0] : ex.span[1]]
                g["span_holds_answer"] += bool(normalize(gold) and normalize(gold) in normalize(ex.text[a:b]))
        for e, rd in items:
            (g["pos"] if e.span else g["neg"]).append(rd.best_span()[0] - rd.null)
    for g in out.values():
        pos, neg = np.array(g.pop("pos")), np.array(g.pop("neg"))
        g["auc_answer_vs_not"] = float((pos[:, None] > neg[None, :]).mean()) if len(pos) and len(neg) else None
        g["answers_here"] = float((pos > 0).mean()) if len(pos) else None
        g["answers_elsewhere"] = float((neg > 0).mean()) if len(neg) else None
        g["median_margin"] = float(np.median(pos)) if len(pos) else None
        g["span_holds_answer"] = g["span_holds_answer"] / max(1, g["questions"])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m qa.train_reader", description=__doc__.split("\n\n")[0])
    p.add_argument("--train", type=Path, default=ROOT.parent / "shared" / "train", help="the training sets (squad/, piaf/)")
    p.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval", help="the public development sets")
    p.add_argument("--out", type=Path, default=ROOT / "qa" / "models" / "reader.npz", help="the reader file to write")
    p.add_argument("--seed", type=int, default=0, help="article split (as qa.fit), sampling and initialisation")
    p.add_argument("--hours", type=float, default=2.5, help="stop training after this long")
    p.add_argument("--epochs", type=float, default=1.0, help="passes over the fitting pairs")
    p.add_argument("--limit", type=int, default=None, help="at most this many questions per corpus (a quick check)")
    p.add_argument("--swap", type=float, default=SWAP_SHARE, help="share of fitting questions reworded through e5 word neighbours")
    p.add_argument("--paraphrases", type=int, default=PARAPHRASES, help=f"times each hand paraphrase of tests/eval/{PARAPHRASED} is read")
    p.add_argument("--keywords", type=int, default=KEYWORDS, help="times each keyword query (a fitting question's name alone) is read")
    p.add_argument("--cut", type=int, default=CUT, help="times each fitting question reads its answering passage with the answer's sentences cut out")
    p.add_argument("--hand", type=int, default=HAND,
                   help=f"times each near miss written by hand for a fitting article is read with the {HAND_PASSAGES} passages most like it, as no answer")
    p.add_argument("--init", type=Path, default=None, help="continue from this reader file (same rank) instead of the base")
    p.add_argument("--learning-rate", type=float, default=LEARNING_RATE, help="peak learning rate")
    p.add_argument("--precision", choices=get_args(Precision), default="float32",
                   help="matrix products while training (bfloat16: about 1.4x faster where the CPU has AVX512-BF16, slower without it)")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help=f"save the training state there every {CHECKPOINT_MINUTES:.0f} minutes and at the end; resume it if it exists")
    p.add_argument("--json", action="store_true", help="print the held-out figures as JSON")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(min(2, torch.get_num_threads()))
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    cfg = Config.load()
    options = {"seed": args.seed, "limit": args.limit, "swap": args.swap, "paraphrases": args.paraphrases, "keywords": args.keywords,
               "cut": args.cut, "hand": args.hand}
    make = lambda: datasets(args.train, args.eval, cfg, **options)  # noqa: E731
    if args.checkpoint:  # a resumed training reads its examples back instead of making them again (about 10 minutes)
        cache = args.checkpoint.with_name(args.checkpoint.name + ".examples")
        chunking = (cfg.chunk_max_words, cfg.chunk_overlap_words, cfg.chunk_min_words)
        key = examples_key(str(args.train), str(args.eval), sorted(options.items()), chunking, cfg.embedder)
        fit_ex, held_ex = cached_examples(cache, key, make)
    else:
        fit_ex, held_ex = make()
    log(f"examples: {len(fit_ex)} to fit on, {len(held_ex)} held out")
    base = R.read_base(R.base_path())
    tokenizer = R.Tokenizer(base)
    net = R.build_network(base, RANK, ALPHA)
    before = None
    if args.init:
        before, arrays = R.load_updates(args.init)
        if (before["rank"], before["alpha"]) != (RANK, ALPHA):
            raise SystemExit(f"{args.init} has rank {before['rank']}, alpha {before['alpha']}: not {RANK}, {ALPHA}.")
        R.load_into(net, args.init, arrays)
    report = train(net, tokenizer, fit_ex, args.hours, args.seed, args.epochs, log, args.learning_rate, args.precision, args.checkpoint)
    meta = {"rank": RANK, "alpha": ALPHA, "seed": args.seed, "training": report, "held_out": None,
            "base": R.BASE_FILE, "targets": list(R.LORA_TARGETS), "swap": args.swap, "paraphrases": args.paraphrases,
            "keywords": args.keywords, "cut": args.cut, "hand": args.hand,
            "learning_rate": args.learning_rate,
            "init": {"file": str(args.init), "training": before.get("training"), "swap": before.get("swap", 0.0)} if before else None}
    R.save(args.out, net, meta)  # saved before the (long) held-out evaluation, so that stopping it loses no training
    if args.checkpoint and report["steps"] < report["planned_steps"]:  # to be resumed: measuring it now would be wasted
        log(f"wrote {args.out} at step {report['steps']}/{report['planned_steps']}; the same command resumes the training")
        print(json.dumps({"training": report, "held_out": None}, indent=1))
        return 0
    log(f"wrote {args.out}; measuring {len(held_ex)} held-out pairs")
    figures = evaluate(net, tokenizer, held_ex)
    R.save(args.out, net, {**meta, "held_out": figures})
    log(f"wrote {args.out} with its held-out figures")
    print(json.dumps({"training": report, "held_out": figures}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
