"""Any OpenAI-compatible HTTP endpoint (vLLM, llama.cpp server, Ollama): how generation moves to a GPU server."""

from __future__ import annotations

import json
from typing import Iterator

import httpx

from ..errors import GeneratorError
from . import Generator


class OpenAIGenerator(Generator):
    name = "openai"
    small = False  # a served model is assumed able to write cited sentences

    def __init__(self, openai_base_url: str, openai_model: str = "default", openai_api_key: str = "",
                 openai_timeout_s: float = 60.0, **_: object) -> None:
        self.url = openai_base_url.rstrip("/") + "/chat/completions"
        self.model = openai_model
        self.headers = {"Authorization": f"Bearer {openai_api_key}"} if openai_api_key else {}
        self.timeout = httpx.Timeout(openai_timeout_s, connect=min(5.0, openai_timeout_s))

    def stream(self, prompt: str, max_new_tokens: int = 24, stop: tuple[str, ...] = ("\n",), allowed_text: str | None = None,
               system: str | None = None) -> Iterator[str]:
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        body = {"model": self.model, "messages": messages, "max_tokens": max_new_tokens, "temperature": 0,
                "stream": True, **({"stop": list(stop)} if stop else {})}
        try:
            with httpx.stream("POST", self.url, json=body, headers=self.headers, timeout=self.timeout) as response:
                if response.status_code != 200:
                    response.read()
                    raise GeneratorError(f"The generation server at {self.url} answered {response.status_code}: {response.text[:200]}")
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    try:
                        choice = json.loads(data)["choices"][0]
                    except (ValueError, KeyError, IndexError, TypeError):
                        raise GeneratorError(f"The generation server at {self.url} sent a malformed event.") from None
                    piece = (choice.get("delta") or {}).get("content") or choice.get("text") or ""
                    if piece:
                        yield piece
        except httpx.HTTPError as exc:
            raise GeneratorError(f"The generation server at {self.url} cannot be reached ({type(exc).__name__}).") from None


def register_generators(register) -> None:
    register("openai", OpenAIGenerator)
