"""Fitted parameters saved as numpy files whose JSON "meta" entry names their format and version, checked on loading."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from .errors import ModelError


def load_npz(path: Path | str, fmt: str, version: int, what: str, remedy: str) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, arrays) of a saved file; ModelError ("The {what} file … : {remedy}.") when missing, damaged or of another version."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(str(arrays.pop("meta")))
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"The {what} file {path} cannot be read ({exc}): {remedy}.") from None
    if meta.get("format") != fmt or meta.get("version") != version:
        raise ModelError(f"The {what} file {path} has version {meta.get('version')!r}, this version reads {version}: {remedy}.")
    return meta, arrays


def save_npz(path: Path | str, fmt: str, version: int, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    """Write arrays and meta (with its format and version) atomically: a temporary file renamed over the old one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays, meta=np.array(json.dumps({**meta, "format": fmt, "version": version}, ensure_ascii=False)))
    tmp.replace(path)


def weights_digest(arrays: dict[str, np.ndarray]) -> str:
    """A short digest of the arrays alone (names, types, shapes, values): the same weights, whatever the metadata says."""
    h = hashlib.sha1()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]
