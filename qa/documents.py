"""Documents: find the files in the seeds folder and turn each into plain text with a title."""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import DocumentError, SeedsError
from .text import Lang, detect_language

SUFFIXES = {".txt": "text", ".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html", ".pdf": "pdf"}
MAX_BYTES = 50_000_000  # a larger file is skipped: it is almost certainly not a document to cite
TITLE_MAX_CHARS = 80  # a title taken from the first sentence is cut (at a word) to this length
PARSER_VERSION = "titles-v2"  # part of the index settings: a change re-parses every document once


@dataclass(frozen=True)
class Document:
    source: str  # path relative to the seeds folder, with forward slashes
    title: str
    text: str  # the text chunks point into: chunk.text == text[chunk.start:chunk.end]
    sha256: str  # hash of the file's bytes: the index re-embeds a document only when it changes
    lang: Lang


def discover(seeds_dir: Path) -> list[Path]:
    """The supported files under seeds_dir (hidden files and folders skipped), sorted."""
    if not seeds_dir.is_dir():
        raise SeedsError(f"The seeds folder {seeds_dir} does not exist: create it and put documents (.txt, .md, .html, .pdf) in it.")
    files = [
        p
        for p in seeds_dir.rglob("*")
        if p.suffix.lower() in SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(seeds_dir).parts)
    ]
    if not files:
        raise SeedsError(f"The seeds folder {seeds_dir} holds no document (.txt, .md, .html or .pdf).")
    return sorted(files)


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load(path: Path, seeds_dir: Path, data: bytes | None = None) -> Document:
    """Read and parse one file; raises DocumentError with the reason when it cannot."""
    source = path.relative_to(seeds_dir).as_posix()
    try:
        if data is None:
            if path.stat().st_size > MAX_BYTES:
                raise DocumentError(f"{source} is larger than {MAX_BYTES // 1_000_000} MB")
            data = path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"{source} cannot be read ({exc.strerror or exc})") from None
    kind = SUFFIXES[path.suffix.lower()]
    try:
        title, text = _PARSERS[kind](data, path)
    except DocumentError as exc:
        raise DocumentError(f"{source}: {exc}") from None
    except Exception as exc:  # parsers raise many kinds of errors on corrupt input
        raise DocumentError(f"{source} is not a valid {kind} file ({type(exc).__name__}: {exc})") from None
    text = text.strip("\n")
    if not text.strip():
        raise DocumentError(f"{source} contains no text")
    title = title or title_from_text(text) or _title_from_name(path)
    return Document(source=source, title=title, text=text, sha256=file_hash(data), lang=detect_language(text))


def title_from_text(text: str) -> str:
    """A title for a document that has none: its first sentence, cut at a word to TITLE_MAX_CHARS with "…"."""
    first = re.split(r"(?<=[.!?])\s|\n", text.strip(), maxsplit=1)[0]
    first = re.sub(r"\s+", " ", first).strip().rstrip(".!?:;,").strip()
    if len(first) <= TITLE_MAX_CHARS:
        return first
    cut = first[: TITLE_MAX_CHARS - 1]
    cut = cut.rsplit(" ", 1)[0] if " " in cut else cut
    return cut.rstrip(" ,;:-–—") + "…"


def _title_from_name(path: Path) -> str:
    return re.sub(r"[-_]+", " ", path.stem).strip().capitalize()


def _decode(data: bytes) -> str:
    if b"\x00" in data[:4096]:
        raise DocumentError("looks like a binary file, not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = ""
    try:  # the legacy encoding of English and French text, tried before guessing
        text = text or data.decode("cp1252")
    except UnicodeDecodeError:
        from charset_normalizer import from_bytes

        best = from_bytes(data).best()
        if best is None:
            raise DocumentError("its text encoding cannot be recognised") from None
        text = str(best)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _parse_text(data: bytes, path: Path) -> tuple[str, str]:
    text = _decode(data)
    first = text.strip().split("\n", 1)[0].strip()
    # A short first line followed by a blank line is a title (as in the SQuAD articles).
    title = first if 0 < len(first) <= 100 and not first.endswith((".", "?", "!")) and "\n\n" in text else ""
    return title, text


def _parse_markdown(data: bytes, path: Path) -> tuple[str, str]:
    text = _decode(data)
    m = re.search(r"^#\s+(.+?)\s*#*\s*$", text, re.MULTILINE)
    return (m.group(1).strip() if m else ""), text


_BLOCKS = "p h1 h2 h3 h4 h5 h6 li dt dd pre blockquote tr caption figcaption div section article header footer table ul ol dl main aside".split()
_DROP = "script style noscript template svg nav form button iframe object".split()


def _parse_html(data: bytes, path: Path) -> tuple[str, str]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data, "lxml")
    for tag in soup(_DROP):
        tag.decompose()
    title = ""
    if soup.title and soup.title.get_text(strip=True):
        title = soup.title.get_text(" ", strip=True)
    elif soup.h1:
        title = soup.h1.get_text(" ", strip=True)
    if soup.head:
        soup.head.decompose()
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for tag in soup.find_all(_BLOCKS):
        tag.insert_before("\n\n")
        tag.insert_after("\n\n")
    raw = soup.get_text()
    paragraphs = [re.sub(r"\s+", " ", block).strip() for block in re.split(r"\n\s*\n", raw)]
    return title, "\n\n".join(p for p in paragraphs if p)


def _parse_pdf(data: bytes, path: Path) -> tuple[str, str]:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        try:
            reader.decrypt("")
        except Exception:
            raise DocumentError("is encrypted") from None
    pages = [_pdf_paragraphs(page.extract_text() or "") for page in reader.pages]
    text = "\n\n".join(p for p in pages if p)
    if not text.strip():
        raise DocumentError("has no extractable text (a scanned image?)")
    meta_title = (reader.metadata.title if reader.metadata else None) or ""
    return meta_title.strip(), text


def _pdf_paragraphs(page: str) -> str:
    """Join a PDF page's lines into paragraphs: a blank line or a short line ending a sentence ends one."""
    lines = [line.rstrip() for line in page.replace("\r", "").split("\n")]
    widths = sorted(len(line) for line in lines if line.strip())
    typical = widths[len(widths) // 2] if widths else 0
    paragraphs: list[str] = []
    current = ""
    for line in lines:
        if not line.strip():
            if current:
                paragraphs.append(current)
            current = ""
            continue
        if current.endswith("-") and line[:1].islower():
            current = current[:-1] + line.strip()
        else:
            current = f"{current} {line.strip()}" if current else line.strip()
        if line.endswith((".", "!", "?", ":")) and len(line) < 0.7 * typical:
            paragraphs.append(current)
            current = ""
    if current:
        paragraphs.append(current)
    return "\n\n".join(re.sub(r"\s+", " ", p) for p in paragraphs)


_PARSERS = {"text": _parse_text, "markdown": _parse_markdown, "html": _parse_html, "pdf": _parse_pdf}
