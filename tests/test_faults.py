"""Faults and isolation: the index changing under a running assistant, a corrupt model cache, no network at run time."""

import json
import os
import shutil
import subprocess
import sys

from qa import index
from qa.index import current_generation
from qa.service import Assistant

from .conftest import QA, ROOT, SEED, make_config


def seeded(tmp_path):
    (tmp_path / "seeds").mkdir()
    shutil.copy(SEED, tmp_path / "seeds" / SEED.name)
    cfg = make_config(tmp_path)
    index.build(cfg, log=lambda m: None)
    return cfg


def test_index_deleted_truncated_or_replaced_while_serving(tmp_path, assistant):
    cfg = seeded(tmp_path)
    a = Assistant(cfg, rerank=False)
    a._reader = assistant.reader  # share the loaded model
    assert "80%" in a.ask("What share of the workforce are engineers?").answer
    first = current_generation(cfg.index_dir)

    shutil.rmtree(cfg.index_dir)  # deleted: the copy in memory keeps serving, health says why
    assert "80%" in a.ask("What share of the workforce are engineers?").answer
    assert "disappeared" in a.health()["index_error"]

    index.build(cfg, log=lambda m: None)  # rebuilt: picked up without a restart
    a.ask("What is OPTITEC?")
    assert a.health()["index_error"] is None and a.health()["index_generation"] == current_generation(cfg.index_dir)

    (cfg.seeds_dir / "more.txt").write_text("Lasers\n\nThe Institut Fresnel in Marseille studies photonics and lasers.\n")
    index.build(cfg, log=lambda m: None)  # replaced by a newer generation, which is then damaged
    gen = cfg.index_dir / current_generation(cfg.index_dir)
    with open(gen / "embeddings.npy", "r+b") as f:
        f.truncate(100)
    assert "80%" in a.ask("What share of the workforce are engineers?").answer  # still the good one in memory
    assert "damaged" in a.health()["index_error"]
    assert first  # the first generation existed


def test_corrupt_embedder_cache_is_rebuilt(tmp_path):
    from qa import embedders

    cache = tmp_path / "cache"
    e = embedders.create("minilm-onnx", cache_dir=cache)
    v = e.encode(["Engineers make up 80% of the workforce."])
    model = next(cache.glob("minilm-onnx-*/model.onnx"))
    model.write_bytes(b"garbage")
    again = embedders.create("minilm-onnx", cache_dir=cache)
    assert abs(float((again.encode(["Engineers make up 80% of the workforce."]) @ v.T)[0, 0]) - 1) < 1e-5


def test_corrupt_generator_cache_is_converted_again(tmp_path, seed_index, assistant):
    """A truncated Gemma cache: `qa ask` with Gemma writing the short answer converts the GGUF again (about a minute) and
    answers."""
    from qa.config import Config
    from qa.generators.huggingface import CONVERT_VERSION, MODEL_NAME

    _ = assistant.generator  # Gemma loaded once: its converted cache exists
    real = Config().cache_dir
    cache = tmp_path / "cache"
    gemma = real / f"{MODEL_NAME}-v{CONVERT_VERSION}"
    shutil.copytree(gemma, cache / gemma.name, ignore=shutil.ignore_patterns("model.safetensors"))
    with open(gemma / "model.safetensors", "rb") as src:
        (cache / gemma.name / "model.safetensors").write_bytes(src.read(1 << 20))  # cut after 1 MiB
    env = {**os.environ, "QA_CACHE_DIR": str(cache), "QA_SHORT_ANSWER": "generator"}
    out = subprocess.run(QA + ["ask", "What share of the workforce are engineers?", "--index", str(seed_index), "--json"],
                         env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "80%" in json.loads(out.stdout)["answer"]
    assert (cache / gemma.name / "model.safetensors").stat().st_size == (gemma / "model.safetensors").stat().st_size


SITE = '''
import socket, sys
_real = socket.socket.connect
def _guard(self, address):
    host = address[0] if isinstance(address, tuple) else str(address)
    if host not in ("127.0.0.1", "::1", "localhost") and not str(host).startswith("/"):
        sys.stderr.write("NETWORK ATTEMPT %r\\n" % (address,))
        raise OSError("network access is not allowed in this test")
    return _real(self, address)
socket.socket.connect = _guard
_getaddrinfo = socket.getaddrinfo
def _gai(host, *a, **k):
    if host not in ("127.0.0.1", "::1", "localhost", None):
        sys.stderr.write("NETWORK ATTEMPT resolve %r\\n" % (host,))
        raise OSError("name resolution is not allowed in this test")
    return _getaddrinfo(host, *a, **k)
socket.getaddrinfo = _gai
'''


def test_no_network_access_at_run_time(tmp_path, seed_index):
    """qa index and qa ask run with every non-loopback connection refused, and attempt none."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(SITE)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}  # our code must set them
    env["PYTHONPATH"] = f"{tmp_path / 'site'}{os.pathsep}{ROOT}"
    (tmp_path / "seeds").mkdir()
    shutil.copy(SEED, tmp_path / "seeds" / SEED.name)
    out = subprocess.run(QA + ["index", "--seeds", str(tmp_path / "seeds"), "--index", str(tmp_path / "index")],
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and "NETWORK ATTEMPT" not in out.stderr, out.stderr[-2000:]
    out = subprocess.run(QA + ["ask", "What share of the workforce are engineers?", "--index", str(tmp_path / "index"), "--json"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "NETWORK ATTEMPT" not in out.stderr and "80%" in json.loads(out.stdout)["answer"]


def test_guard_really_blocks(tmp_path):
    """The network guard itself works (so the test above cannot pass by accident)."""
    (tmp_path / "sitecustomize.py").write_text(SITE)
    code = "import socket\ntry:\n    socket.create_connection(('192.0.2.1', 80), timeout=1)\nexcept OSError as e:\n    print('blocked', e)"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(tmp_path)}, capture_output=True, text=True)
    assert "NETWORK ATTEMPT" in out.stderr and "blocked" in out.stdout
