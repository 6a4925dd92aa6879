"""Shared fixtures: the expensive models load once per test session; data is small and real."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before a test module imports torch: see qa/__init__.py

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "seeds" / "optics-photonics-provence.txt"
EVAL = ROOT / "tests" / "eval"
QA = [sys.executable, "-m", "qa.cli"]


@pytest.fixture(scope="session")
def embedder():
    from qa import embedders
    from qa.config import Config

    cfg = Config()
    return embedders.create(cfg.embedder, cache_dir=cfg.cache_dir)


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory) -> Path:
    """An index of the real seed document, built once."""
    from qa import index
    from qa.config import Config

    base = tmp_path_factory.mktemp("seed")
    seeds = base / "seeds"
    seeds.mkdir()
    shutil.copy(SEED, seeds / SEED.name)
    cfg = Config.load(seeds_dir=seeds, index_dir=base / "index")
    index.build(cfg, log=lambda m: None)
    return base / "index"


@pytest.fixture(scope="session")
def assistant(seed_index):
    """The full pipeline over the seed index, its models loaded (Gemma only when a test asks for assistant.generator)."""
    from qa.config import Config
    from qa.service import Assistant

    a = Assistant(Config.load(index_dir=seed_index))
    a.warm_up()
    return a


def make_config(tmp_path: Path, **overrides):
    from qa.config import Config

    return Config.load(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index", **overrides)


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_ready(ready: Callable[[], bool], seconds: float, what: str, proc: subprocess.Popen | None = None,
                     log: Path | None = None, every: float = 0.5) -> None:
    """Poll ready() (connection errors count as not yet) until it holds; fail the test, with the end of log, when proc
    exits first or seconds pass."""
    import httpx

    end = (lambda: ":\n" + log.read_text("utf-8", errors="replace")[-3000:] if log and log.is_file() else "")  # noqa: E731
    deadline = time.monotonic() + seconds
    while True:
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"{what} exited with code {proc.returncode}{end()}")
        try:
            if ready():
                return
        except (OSError, httpx.HTTPError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{what} was not ready after {seconds} s{end()}")
        time.sleep(every)
