"""Shared fixtures: the expensive models load once per test session; data is small and real."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

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
    """The full pipeline (reranker and generator loaded) over the seed index."""
    from qa.config import Config
    from qa.service import Assistant

    a = Assistant(Config.load(index_dir=seed_index))
    a.warm_up()
    return a


def make_config(tmp_path: Path, **overrides):
    from qa.config import Config

    return Config.load(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index", **overrides)
