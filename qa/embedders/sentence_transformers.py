"""The plain sentence-transformers backend (torch): the reference the fast backend is checked against."""

from __future__ import annotations

from typing import Callable, Literal

import numpy as np

from . import MINILM_ID, Embedder, bundled_minilm_path


class SentenceTransformerEmbedder(Embedder):
    model_id = MINILM_ID
    dim = 384
    languages = ("en",)

    def __init__(self, **_: object) -> None:
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(bundled_minilm_path()), device="cpu", local_files_only=True)

    def encode(self, texts: list[str], batch_size: int = 8, progress: Callable[[int], None] | None = None,
               kind: Literal["query", "passage"] = "passage") -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        step = max(batch_size * 8, 64)
        for i in range(0, len(texts), step):
            out[i : i + step] = self.model.encode(texts[i : i + step], batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
            if progress:
                progress(len(texts[i : i + step]))
        return out


def register_embedders(register) -> None:
    register("minilm-st", SentenceTransformerEmbedder)
