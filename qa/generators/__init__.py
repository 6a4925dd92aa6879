"""Generators write text from a prompt, streamed piece by piece; backends register by name."""

from __future__ import annotations

from typing import Iterator

from ..errors import QAError


class Generator:
    """Base class: a backend implements stream()."""

    name = ""
    small = True  # a small model is asked for a short answer phrase; a large one writes cited sentences

    def stream(self, prompt: str, max_new_tokens: int = 24, stop: tuple[str, ...] = ("\n",), allowed_text: str | None = None,
               system: str | None = None) -> Iterator[str]:
        """Yield the continuation of prompt piece by piece (greedy), ending at a stop sequence or the token bound.

        allowed_text, when a backend supports it, restricts the output to the tokens of that text (extractive answers).
        system, when given, is an instruction the backend sends apart from the data (chat endpoints)."""
        raise NotImplementedError


_REGISTRY: dict[str, type[Generator]] = {}


def register(name: str, cls: type[Generator]) -> None:
    _REGISTRY[name] = cls


def _load_backends() -> None:
    if _REGISTRY:
        return
    from . import huggingface, openai

    for module in (huggingface, openai):
        module.register_generators(register)


def names() -> list[str]:
    _load_backends()
    return sorted(_REGISTRY)


def spec(name: str) -> type[Generator]:
    """The class registered under name (whether it is small, without loading the model)."""
    _load_backends()
    if name not in _REGISTRY:
        raise QAError(f"Unknown generator {name!r}; choose one of: {', '.join(sorted(_REGISTRY))}.")
    return _REGISTRY[name]


def create(name: str, **kwargs) -> Generator:
    """The generator registered under name, loaded (kwargs: the Config fields it needs)."""
    return spec(name)(**kwargs)
