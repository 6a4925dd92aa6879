"""Answer latency on the seed questions, warm, through the whole pipeline, and where the time goes.

    .venv/bin/python scripts/bench_answer.py [--questions tests/eval/seed_questions.jsonl] [--index index]

Prints time to first token and full answer (p50, p95) per language, the reader's step alone (it reads the first
reader_passages passages), the small generator's phrase alone for comparison (Gemma 3 270M, short_answer = "generator",
restricted-vocabulary greedy loop), and the warm start of `qa ask` (a new process, from start to printed answer).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore")

from qa import answer as A  # noqa: E402
from qa.config import Config  # noqa: E402
from qa.evaluate import load_cases  # noqa: E402
from qa.service import Assistant  # noqa: E402
from qa.text import detect_language  # noqa: E402


def pct(xs: list[float]) -> str:
    return f"p50 {np.percentile(xs, 50):.2f} s, p95 {np.percentile(xs, 95):.2f} s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--questions", type=Path, default=ROOT / "tests/eval/seed_questions.jsonl")
    ap.add_argument("--index", type=Path, default=None)
    args = ap.parse_args()
    cfg = Config.load(index_dir=args.index)
    assistant = Assistant(cfg)
    assistant.warm_up()
    gen = assistant.generator
    cases = load_cases(args.questions)
    assistant.ask(cases[0].question)  # warm
    first, total, reading, phrase = [], [], [], []
    for c in cases:
        a = assistant.ask(c.question, c.history)
        first.append(a.timings["first_token_s"])
        total.append(a.timings["total_s"])
        prepared, evidence = assistant.prepare(c.question, c.history)
        t = time.perf_counter()
        assistant.read(prepared.focus, evidence.passages)
        reading.append(time.perf_counter() - t)
        if a.refused:
            continue
        prompt, _ = A.build_prompt(prepared, evidence, True)
        t = time.perf_counter()
        list(gen.stream(prompt, max_new_tokens=cfg.max_new_tokens, stop=("\n",), allowed_text=evidence.text(evidence.best())))
        phrase.append(time.perf_counter() - t)
    import collections

    langs = collections.Counter(detect_language(c.question) for c in cases)
    print(f"{len(cases)} questions ({dict(langs)}; {len(phrase)} answered, the others refused), warm")
    for lang in sorted(langs):
        f = [x for x, c in zip(first, cases) if detect_language(c.question) == lang]
        t_ = [x for x, c in zip(total, cases) if detect_language(c.question) == lang]
        print(f"  {lang}: first token {pct(f)}; full answer {pct(t_)}")
    print(f"pipeline  first token: {pct(first)}")
    print(f"pipeline  full answer: {pct(total)}")
    print(f"reader only ({cfg.reader_passages} passages): {pct(reading)}")
    print(f"for comparison, a Gemma 3 270M phrase only (short_answer = generator, {cfg.max_new_tokens} tokens max): {pct(phrase)}")
    t = time.perf_counter()
    out = subprocess.run([str(ROOT / ".venv/bin/qa"), "ask", cases[0].question, "--json"]
                         + (["--index", str(args.index)] if args.index else []), capture_output=True, text=True)
    start = time.perf_counter() - t
    ok = out.returncode == 0 and json.loads(out.stdout)["answer"]
    print(f"warm start of `qa ask` (new process to printed answer): {start:.1f} s{'' if ok else ' (FAILED: ' + out.stderr[-200:] + ')'}")


if __name__ == "__main__":
    main()
