"""Reading documents: txt, md, html, pdf, and clear errors for what cannot be read."""

from pathlib import Path

import pytest

from qa.chunking import chunk_document
from qa.documents import discover, load
from qa.errors import DocumentError, SeedsError

from .conftest import SEED


def write_pdf(path: Path, paragraphs: list[str], title: str = "Photonics report") -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

    styles = getSampleStyleSheet()
    story = []
    for p in paragraphs:
        story += [Paragraph(p, styles["Normal"]), Spacer(1, 18)]
    SimpleDocTemplate(str(path), pagesize=A4, title=title).build(story)


def test_text_document_keeps_its_text_and_title(tmp_path):
    (tmp_path / "a.txt").write_text("Lasers\n\nA laser emits coherent light. It was built in 1960.\n", "utf-8")
    doc = load(tmp_path / "a.txt", tmp_path)
    assert doc.title == "Lasers"
    assert "coherent light" in doc.text and doc.source == "a.txt" and doc.lang == "en"


def test_a_text_without_a_title_line_is_titled_by_its_first_sentence(tmp_path):
    doc = load(SEED, SEED.parent)  # the seed starts with a paragraph, not a title line
    assert doc.title == "The optics and photonics industry is witnessing remarkable growth in France"
    assert doc.text.startswith("The optics and photonics industry")
    (tmp_path / "long.txt").write_text("Lasers, which emit coherent light of one colour, were first built in California in 1960 "
                                       "by Theodore Maiman. They are everywhere now.\n", "utf-8")
    title = load(tmp_path / "long.txt", tmp_path).title
    assert title == "Lasers, which emit coherent light of one colour, were first built in…" and len(title) <= 80


def test_markdown_title_is_the_first_heading(tmp_path):
    (tmp_path / "guide.md").write_text("# Guide de l'optique\n\nLa lumière se propage en ligne droite dans le vide.\n", "utf-8")
    doc = load(tmp_path / "guide.md", tmp_path)
    assert doc.title == "Guide de l'optique" and doc.lang == "fr"


def test_html_is_parsed_into_paragraphs_without_scripts(tmp_path):
    html = """<html><head><title>Institut Fresnel</title><style>p{color:red}</style></head><body>
    <nav>Home | Contact</nav><h1>Institut Fresnel</h1>
    <p>The Institut Fresnel is a research laboratory in <b>Marseille</b> working on optics.</p>
    <script>alert('x')</script><ul><li>Nanophotonics</li><li>Imaging</li></ul></body></html>"""
    (tmp_path / "fresnel.html").write_text(html, "utf-8")
    doc = load(tmp_path / "fresnel.html", tmp_path)
    assert doc.title == "Institut Fresnel"
    assert "research laboratory in Marseille working on optics." in doc.text
    assert "alert" not in doc.text and "color:red" not in doc.text and "Home | Contact" not in doc.text
    assert "\n\nNanophotonics\n\nImaging" in doc.text


def test_pdf_text_is_extracted(tmp_path):
    write_pdf(tmp_path / "report.pdf", ["Photonics companies in Marseille employ many engineers.", "The cluster was very active in 2024."])
    doc = load(tmp_path / "report.pdf", tmp_path)
    assert doc.title == "Photonics report"
    assert "employ many engineers" in doc.text and "active in 2024" in doc.text
    assert all(c.text == doc.text[c.start : c.end] for c in chunk_document(doc))


@pytest.mark.parametrize("name,data,reason", [
    ("broken.pdf", b"%PDF-1.4 this is not really a pdf", "not a valid pdf"),
    ("empty.txt", b"   \n\n ", "contains no text"),
    ("binary.txt", b"\x00\x01\x02\x03binary", "binary"),
])
def test_unreadable_documents_raise_a_clear_error(tmp_path, name, data, reason):
    (tmp_path / name).write_bytes(data)
    with pytest.raises(DocumentError, match=reason):
        load(tmp_path / name, tmp_path)


def test_non_utf8_text_is_decoded(tmp_path):
    (tmp_path / "latin.txt").write_bytes("L'optique à Marseille est très développée.".encode("latin-1"))
    assert "très développée" in load(tmp_path / "latin.txt", tmp_path).text


def test_discover_finds_supported_files_and_skips_hidden(tmp_path):
    for name in ["a.txt", "sub/b.md", "c.html", "d.pdf", "e.docx", ".hidden.txt", ".git/f.txt"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    assert [p.relative_to(tmp_path).as_posix() for p in discover(tmp_path)] == ["a.txt", "c.html", "d.pdf", "sub/b.md"]


def test_missing_or_empty_seeds_folder_is_a_clear_error(tmp_path):
    with pytest.raises(SeedsError, match="does not exist"):
        discover(tmp_path / "nope")
    with pytest.raises(SeedsError, match="holds no document"):
        discover(tmp_path)
