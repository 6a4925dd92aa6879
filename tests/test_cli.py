"""The `qa` command as a user runs it: help, JSON output, clear errors and no traceback."""

import json
import shutil
import subprocess

import pytest

from .conftest import QA, ROOT, SEED


def run(*args, **kw):
    return subprocess.run(QA + list(args), capture_output=True, text=True, cwd=ROOT, timeout=600, **kw)


@pytest.mark.parametrize("args", [["--help"], ["index", "--help"], ["search", "--help"], ["ask", "--help"], ["eval", "--help"]])
def test_help_explains_each_command(args):
    out = run(*args)
    assert out.returncode == 0 and "usage: qa" in out.stdout
    assert len(out.stdout.split()) > 20


def test_index_then_search_json(tmp_path):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(SEED, seeds / SEED.name)
    idx = tmp_path / "index"
    out = run("index", "--seeds", str(seeds), "--index", str(idx), "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["documents"] == 1 and report["added"] == [SEED.name]
    again = run("index", "--seeds", str(seeds), "--index", str(idx))
    assert "up to date" in again.stdout
    out = run("search", "What share of the workforce are engineers?", "--index", str(idx), "-k", "2", "--json", "--no-rerank")
    assert out.returncode == 0, out.stderr
    hits = json.loads(out.stdout)
    assert [h["rank"] for h in hits] == [1, 2]
    text = SEED.read_text("utf-8")
    for h in hits:
        assert set(h) >= {"rank", "score", "source", "chunk_id", "start", "end", "text"}
        assert h["source"] == SEED.name and text[h["start"] : h["end"]] == h["text"]
    assert "Engineers make up 80%" in hits[0]["text"]


def test_missing_index_is_one_clear_sentence(tmp_path):
    out = run("search", "anything", "--index", str(tmp_path / "none"))
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "There is no index" in out.stderr and "qa index" in out.stderr
    out = run("search", "anything", "--index", str(tmp_path / "none"), "--json")
    assert "qa index" in json.loads(out.stdout)["error"]


def test_corrupt_index_and_empty_seeds_are_clear_errors(tmp_path):
    (tmp_path / "seeds").mkdir()
    out = run("index", "--seeds", str(tmp_path / "seeds"), "--index", str(tmp_path / "index"))
    assert out.returncode == 1 and "holds no document" in out.stderr and "Traceback" not in out.stderr
    (tmp_path / "index").mkdir(exist_ok=True)
    (tmp_path / "index" / "gen-000001").mkdir()
    (tmp_path / "index" / "CURRENT").write_text("gen-000001\n")
    out = run("ask", "What?", "--index", str(tmp_path / "index"))
    assert out.returncode == 1 and "damaged" in out.stderr and "Traceback" not in out.stderr


def test_empty_question_is_refused(seed_index):
    out = run("search", "   ", "--index", str(seed_index))
    assert out.returncode == 1 and "empty" in out.stderr


def test_ask_json_has_the_documented_shape(seed_index):
    out = run("ask", "What share of the workforce are engineers?", "--index", str(seed_index), "--json")
    assert out.returncode == 0, out.stderr
    a = json.loads(out.stdout)
    assert set(a) >= {"question", "answer", "refused", "citations", "timings"}
    assert set(a["timings"]) >= {"retrieve_s", "first_token_s", "total_s"}
    assert "80%" in a["answer"] and not a["refused"]
    for c in a["citations"]:
        assert f"[{c['n']}]" in a["answer"] and set(c) >= {"n", "source", "chunk_id", "start", "end", "text"}


def test_ask_answers_a_name_alone_in_the_language_asked_for(seed_index):
    said = {}
    for lang in ("en", "fr"):
        out = run("ask", "Airbus", "--index", str(seed_index), "--lang", lang, "--json")
        assert out.returncode == 0, out.stderr
        said[lang] = json.loads(out.stdout)["lang"]
    assert said == {"en": "en", "fr": "fr"}
    assert run("ask", "Airbus", "--index", str(seed_index), "--lang", "de").returncode == 2  # argparse: a clear usage error
