"""Any OpenAI-compatible HTTP endpoint (vLLM, llama.cpp server, Ollama): how generation moves to a GPU server."""

from __future__ import annotations

import json
import re
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
        self.wait = openai_timeout_s  # also the longest silence allowed between two events of a stream
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
                    raise GeneratorError(f"The generation server at {self.url} answered HTTP {response.status_code}: "
                                         f"{_error_text(response)}.")
                if "json" in response.headers.get("content-type", "") and "event-stream" not in response.headers.get("content-type", ""):
                    yield from self._whole(response)  # a server that ignores "stream": one JSON completion
                    return
                yield from self._events(response)
        except httpx.TimeoutException as exc:
            what = "did not answer" if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)) else "stopped sending"
            raise GeneratorError(f"The generation server at {self.url} {what} within {self.wait:g} s.") from None
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            raise GeneratorError(f"The generation server at {self.url} closed the connection mid-answer ({type(exc).__name__}).") from None
        except httpx.HTTPError as exc:
            raise GeneratorError(f"The generation server at {self.url} cannot be reached ({type(exc).__name__}).") from None

    def _events(self, response: httpx.Response) -> Iterator[str]:
        """The text of a server-sent event stream: "data:" lines with chat deltas, until [DONE], a finish_reason or the end."""
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue  # comments (": keep-alive"), "event:", "id:", blank lines
            data = line[5:].strip()
            if not data:
                continue
            if data == "[DONE]":
                return
            try:
                event = json.loads(data)
            except ValueError:
                raise GeneratorError(f"The generation server at {self.url} sent an event that is not JSON: {data[:80]!r}.") from None
            if not isinstance(event, dict):
                raise GeneratorError(f"The generation server at {self.url} sent an event that is not a JSON object.")
            if event.get("error"):
                raise GeneratorError(f"The generation server at {self.url} failed mid-answer: {_message(event['error'])}.")
            choices = event.get("choices") or []  # a usage-only event has none
            choice = choices[0] if choices and isinstance(choices[0], dict) else {}
            delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
            piece = delta.get("content") or choice.get("text") or ""  # a role-only first delta has no content
            if isinstance(piece, str) and piece:
                yield piece
            if choice.get("finish_reason"):
                return

    def _whole(self, response: httpx.Response) -> Iterator[str]:
        response.read()
        try:
            event = response.json()
            if event.get("error"):
                raise GeneratorError(f"The generation server at {self.url} failed: {_message(event['error'])}.")
            choice = event["choices"][0]
            text = (choice.get("message") or {}).get("content") or choice.get("text") or ""
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise GeneratorError(f"The generation server at {self.url} sent a completion in an unknown format.") from None
        if text:
            yield text


def _message(error: object) -> str:
    """The message of an OpenAI-style error object, on one line."""
    if isinstance(error, dict):
        error = error.get("message") or error.get("type") or json.dumps(error)
    return " ".join(str(error).split())[:200].rstrip(".")


def _error_text(response: httpx.Response) -> str:
    """What an error response says: the JSON error's message, the title of an HTML page, or the start of the body."""
    try:
        body = response.json()
        if isinstance(body, dict) and body.get("error"):
            return _message(body["error"])
        if isinstance(body, dict) and body.get("detail"):
            return _message(body["detail"])
    except ValueError:
        pass
    text = response.text
    if "<html" in text[:500].lower() or "<!doctype" in text[:500].lower():
        title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
        return f"an HTML error page ({' '.join(title.group(1).split())[:100]})" if title else "an HTML error page"
    return " ".join(text.split())[:200].rstrip(".") or "an empty body"


def register_generators(register) -> None:
    register("openai", OpenAIGenerator)
