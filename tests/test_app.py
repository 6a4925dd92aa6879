"""The chat page's pure helpers: nothing from a question or a document is ever rendered as live HTML or Markdown."""

import re

from app import answer_html, draft_html, sources_html, user_html

PASSAGE = ("The region is home to advanced optics research. A defining feature of the optics sector is its close "
           "collaboration between academia and private enterprise. Engineers make up 80% of the workforce. A major force "
           "behind this synergy is the OPTITEC competitiveness cluster, which fosters collaboration between research "
           "institutions and industry players, and much more text that the panel does not need to show at all.")


def citation(n, text, passage=PASSAGE, passage_start=1000, title="<b>Title</b>", source="<img src=x onerror=alert(1)>.html"):
    start = passage_start + passage.index(text)
    return {"n": n, "title": title, "source": source, "chunk_id": "a.html:1:3", "start": start, "end": start + len(text),
            "passage_start": passage_start, "text": text, "passage": passage}


def test_sources_show_the_title_and_the_cited_sentences_in_context_one_entry_per_passage():
    answer = {"question": "What share?", "answer": "80% [1] and more [2].", "citations": [
        citation(1, "Engineers make up 80% of the workforce."), citation(2, "A major force behind this synergy")]}
    html = sources_html({"1": {"id": "x", "answer": answer}})
    assert html.count('class="qa-entry"') == 1 and 'data-ns="1 2"' in html and 'id="qa-src-1-1"' in html
    assert '<mark data-n="1">Engineers make up 80% of the workforce.</mark>' in html and '<mark data-n="2">' in html
    assert "&lt;b&gt;Title&lt;/b&gt;" in html and "<b>" not in html and "<img" not in html
    shown = re.sub(r'href="[^"]*"', "", html)  # the file name is only in the document link, encoded
    assert "a.html:1:3" not in shown and "characters" not in shown and ".html" not in shown  # no developer metadata
    assert "…" in html and "need to show at all" not in html  # a little context, not the whole passage
    assert "doc?source=%3Cimg" in html and "start=1" in html and "#cited" in html


def test_each_answer_keeps_its_own_sources_newest_first():
    a = {"question": "First?", "answer": "x [1].", "citations": [citation(1, "Engineers make up 80% of the workforce.")]}
    b = {"question": "Second?", "answer": "y [1].", "citations": [citation(1, "A defining feature of the optics sector")]}
    refusal = {"question": "Third?", "answer": "The documents do not say.", "refused": True, "citations": []}
    html = sources_html({"1": {"id": "a", "answer": a}, "3": {"id": "b", "answer": b}, "5": {"id": "c", "answer": refusal}})
    assert html.index('data-aid="3"') < html.index('data-aid="1"') and 'data-aid="5"' not in html
    assert 'id="qa-src-1-1"' in html and 'id="qa-src-3-1"' in html


def test_answer_is_plain_text_with_bold_and_markers_linked_to_its_own_sources():
    answer = {"answer": "Ignore <script>alert(1)</script> ![](https://e.x/i.png) [login](https://e.x) **80%** [1] [7].",
              "citations": [citation(1, "Engineers make up 80% of the workforce.")]}
    html = answer_html(answer, 4)
    assert "<script>" not in html and "&lt;script&gt;" in html and "<img" not in html and 'href="https://e.x"' not in html
    assert "<strong>80%</strong>" in html and 'href="#qa-src-4-1"' in html and "[7]" in html and "#qa-src-4-7" not in html
    assert "qa-refused" in answer_html({**answer, "refused": True}, 4)


def test_question_and_draft_are_shown_as_typed():
    assert user_html('<img src=x onerror="alert(1)"> a & b') == '<div class="qa-text">&lt;img src=x onerror=&quot;alert(1)&quot;&gt; a &amp; b</div>'
    draft = draft_html("Engineers make up **80", "en")
    assert "**" not in draft and "<strong>" not in draft and "Engineers make up 80" in draft and "qa-draft" in draft
