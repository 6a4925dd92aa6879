"""The chat page's pure helpers: nothing from a document or a question is ever rendered as live HTML."""

from app import plain, shown, sources_html


def citation(text="Engineers make up 80%.", passage="Intro. Engineers make up 80%. End.", start=7):
    return {"n": 1, "title": "<b>Title</b>", "source": "<img src=x onerror=alert(1)>.html", "chunk_id": "a.html:1:1",
            "start": start, "end": start + len(text), "passage_start": 0, "text": text, "passage": passage}


def test_sources_panel_highlights_the_span_and_escapes_everything():
    html = sources_html([citation()])
    assert "<mark>Engineers make up 80%.</mark>" in html and 'id="src-1"' in html
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html and "&lt;b&gt;Title&lt;/b&gt;" in html
    evil = citation(text="<script>alert(1)</script>", passage="<script>alert(1)</script>", start=0)
    assert "<script>" not in sources_html([evil])


def test_answer_is_escaped_and_markers_link_to_their_source():
    out = shown("Ignore this <script>alert(1)</script> and **80%** [1].")
    assert "<script>" not in out and "[[1]](#src-1)" in out and "**80%**" in out
    assert plain(out).endswith("[1].") and "<script>" in plain(out)
