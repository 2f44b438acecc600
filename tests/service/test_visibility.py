"""Leak tests: an author never reads off-the-record or deep-background text, on any path.

One recording holds public text and text under restrictions. Every read path an author
has (transcript read in every version, every export format, search results, snippets and
counts, quote creation and quote reads, citations, manuscript verification, revisions)
is checked for the hidden words; the editor's view of the same data shows that the words
are there to be leaked, so none of these tests can pass by reading nothing.
"""

from __future__ import annotations

import io
import zipfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from service.crud.transcripts import SegmentIn, add_version
from tests import factories as f

PUBLIC = "天使轮的条款其实是在一家咖啡馆里谈下来的。"
OFF = "另一家基金最后一刻撤资了，红杉的报价是两亿。"          # off_record 10-20 s
DEEP = "董事会内部对MoE路线的分歧很大，差点散伙。"            # deep_background 20-30 s
EDGE = "估值谈判持续了三个月，每周都在改条款。"                 # 30-40 s; off_record from 38 s
BACKGROUND = "咖啡馆的名字叫做漫咖啡，就在公司楼下。"            # background 45-55 s: visible
LIFTED = "那年冬天特别冷，我们在咖啡馆坐了一整天。"               # off_record lifted: visible
LATER = "后来我们又去那家咖啡馆签了正式协议。"                   # 65-75 s, no restriction
SECRETS = (OFF, DEEP, EDGE)
#: Distinctive pieces of the hidden text: search terms and substrings to look for.
SECRET_TERMS = ("红杉", "撤资", "MoE路线", "差点散伙", "三个月", "每周都在改条款")
SEGMENTS = [(0.0, 10.0, PUBLIC), (10.0, 20.0, OFF), (20.0, 30.0, DEEP), (30.0, 40.0, EDGE),
            (45.0, 55.0, BACKGROUND), (55.0, 65.0, LIFTED), (65.0, 75.0, LATER)]


def _words(start: float, end: float, text: str) -> list[dict[str, Any]]:
    step = (end - start) / len(text)
    return [{"start": start + i * step, "end": start + (i + 1) * step, "text": ch,
             "probability": 0.9} for i, ch in enumerate(text)]


def _store_version(api: Any, recording_id: int) -> None:
    with Session(api.engine) as session:
        add_version(session, recording_id=recording_id, backend="import", model="test",
                    language="zh", created_by=None,
                    segments=[SegmentIn(start=a, end=b, speaker="SPEAKER_00", text=t,
                                        language="zh", words=_words(a, b, t),
                                        # Estimated times: withheld whole, as a correction
                                        # would be (word by word: test_withholding).
                                        timing="estimated" if t == EDGE else None)
                              for a, b, t in SEGMENTS])
        session.commit()


@pytest.fixture
def rec(api, tmp_path: Path) -> dict[str, int]:
    person = f.person(api, "李明远", kind="investor")
    rid = f.create_recording(api, tmp_path, "早期投资人访谈", [(person, "interviewee")],
                             seconds=80.0)
    _store_version(api, rid)
    _store_version(api, rid)  # restrictions apply to every version
    f.name_speakers(api, rid, {"SPEAKER_00": person})
    past = (date.today() - timedelta(days=30)).isoformat()
    ids = {"rec": rid, "person": person}
    ids["off"] = f.restrict_via_api(api, rid, 10.0, 20.0, "off_record")["id"]
    ids["deep"] = f.restrict_via_api(api, rid, 20.0, 30.0, "deep_background")["id"]
    ids["edge"] = f.restrict_via_api(api, rid, 38.0, 44.0, "off_record")["id"]
    ids["bg"] = f.restrict_via_api(api, rid, 45.0, 55.0, "background")["id"]
    ids["lifted"] = f.restrict_via_api(api, rid, 55.0, 65.0, "off_record", until=past)["id"]
    return ids


def assert_no_secret(text: str, where: str) -> None:
    for term in SECRET_TERMS:
        assert term not in text, f"{where} leaks {term!r}"


def segments_by_start(body: dict[str, Any]) -> dict[float, dict[str, Any]]:
    return {s["start"]: s for s in body["segments"]}


# --- transcript read ------------------------------------------------------------------

@pytest.mark.parametrize("version", [None, 1, 2])
def test_transcript_read_withholds_hidden_spans_from_authors(api, rec, version) -> None:
    params = {} if version is None else {"version": version}
    url = f"/api/v1/recordings/{rec['rec']}/transcript"
    r = api.client.get(url, params=params, headers=api.headers("author"))
    assert r.status_code == 200, r.text
    assert_no_secret(r.text, "transcript read")
    segs = segments_by_start(r.json())
    for start in (10.0, 20.0, 30.0):
        assert segs[start]["text"] == "[restricted]" and segs[start]["words"] == []
    for start, text in ((0.0, PUBLIC), (45.0, BACKGROUND), (55.0, LIFTED), (65.0, LATER)):
        assert segs[start]["text"] == text and segs[start]["words"]

    editor = api.client.get(url, params=params, headers=api.headers("editor")).json()
    esegs = segments_by_start(editor)
    assert [esegs[s]["text"] for s in (10.0, 20.0, 30.0)] == list(SECRETS)
    assert esegs[10.0]["restricted"] == "off_record"
    assert esegs[20.0]["restricted"] == "deep_background"
    assert esegs[45.0]["restricted"] == "background" and esegs[0.0]["restricted"] is None


def test_lifting_a_restriction_shows_the_text_again(api, rec) -> None:
    url = f"/api/v1/recordings/{rec['rec']}/transcript"
    r = api.client.delete(f"/api/v1/recordings/{rec['rec']}/restrictions/{rec['off']}",
                          headers=api.headers("editor"))
    assert r.status_code == 204
    segs = segments_by_start(api.client.get(url, headers=api.headers("author")).json())
    assert segs[10.0]["text"] == OFF and segs[20.0]["text"] == "[restricted]"


# --- exports --------------------------------------------------------------------------

def _export_text(r: Any, fmt: str) -> str:
    if fmt != "docx":
        return str(r.content.decode("utf-8"))
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        return "".join(z.read(n).decode("utf-8", "replace") for n in z.namelist()
                       if n.endswith(".xml"))


@pytest.mark.parametrize("fmt", ["txt", "md", "srt", "vtt", "json", "docx"])
def test_exports_withhold_hidden_spans_from_authors(api, rec, fmt: str) -> None:
    url = f"/api/v1/recordings/{rec['rec']}/transcript/export"
    r = api.client.get(url, params={"format": fmt}, headers=api.headers("author"))
    assert r.status_code == 200, r.text
    text = _export_text(r, fmt)
    assert_no_secret(text, f"{fmt} export")
    assert "咖啡馆" in text  # the public text is there
    r = api.client.get(url, params={"format": fmt, "version": 1}, headers=api.headers("author"))
    assert_no_secret(_export_text(r, fmt), f"{fmt} export of version 1")
    editor = api.client.get(url, params={"format": fmt}, headers=api.headers("editor"))
    assert "红杉" in _export_text(editor, fmt)


# --- search ---------------------------------------------------------------------------

def search(api: Any, role: str, q: str, **params: Any) -> dict[str, Any]:
    r = api.client.get("/api/v1/search", params={"q": q} | params, headers=api.headers(role))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


@pytest.mark.parametrize("term", [*SECRET_TERMS, "紅杉", "董事會"])
def test_search_finds_nothing_hidden_for_authors(api, rec, term: str) -> None:
    body = search(api, "author", term)
    assert body == {"data": [], "count": 0, "count_exact": True, "ranked_within": None,
                    "expanded": []}, term
    body = search(api, "author", term, recording_id=rec["rec"], person_id=rec["person"])
    assert body == {"data": [], "count": 0, "count_exact": True, "ranked_within": None,
                    "expanded": []}, term
    assert search(api, "editor", term)["count"] >= 1  # the words are there to be found


def test_search_counts_and_snippets_skip_hidden_spans(api, rec) -> None:
    # "条款" is in the public segment and in the hidden EDGE segment.
    editor = search(api, "editor", "条款", limit=50)
    assert {hit["start"] for hit in editor["data"]} == {0.0, 30.0}
    public = [hit for hit in editor["data"] if hit["start"] == 0.0]
    body = search(api, "author", "条款", limit=1)
    assert body["count"] == len(public), body
    assert len(body["data"]) == 1
    full = search(api, "author", "条款", limit=50)
    assert {hit["start"] for hit in full["data"]} == {0.0}
    assert full["count"] == len(full["data"]) == len(public)
    for hit in full["data"]:
        assert_no_secret(hit["text"] + hit["snippet"], "search hit")
    body = search(api, "author", "咖啡馆")
    assert {hit["start"] for hit in body["data"]} == {0.0, 45.0, 55.0, 65.0}
    for hit in body["data"]:
        assert_no_secret(str(hit), "search hit")


# --- quotes ---------------------------------------------------------------------------

@pytest.mark.parametrize("body", [
    {"start": 10.0, "end": 20.0},
    {"start": 12.0, "end": 14.0},
    {"start": 0.0, "end": 20.0},
    {"start": 36.0, "end": 40.0},
])
def test_quote_creation_never_freezes_hidden_text_for_authors(api, rec, body) -> None:
    r = api.client.post("/api/v1/quotes", json={"recording_id": rec["rec"]} | body,
                        headers=api.headers("author"))
    assert r.status_code in (201, 403, 404, 409, 422), r.text
    assert_no_secret(r.text, "quote creation")
    if r.status_code == 201:
        quote_id = r.json()["id"]
        stored = api.client.get(f"/api/v1/quotes/{quote_id}", headers=api.headers("editor"))
        assert_no_secret(stored.text, "the stored quote")


def test_quote_creation_by_segment_ids_never_freezes_hidden_text(api, rec) -> None:
    transcript = api.client.get(f"/api/v1/recordings/{rec['rec']}/transcript",
                                headers=api.headers("editor")).json()
    ids = {s["start"]: s["id"] for s in transcript["segments"]}
    for chosen in ([ids[10.0]], [ids[20.0]], [ids[0.0], ids[10.0]], [ids[30.0]]):
        r = api.client.post("/api/v1/quotes", json={"segment_ids": chosen},
                            headers=api.headers("author"))
        assert r.status_code in (201, 403, 404, 409, 422), r.text
        assert_no_secret(r.text, f"quote from segments {chosen}")
    # The editor may quote it (the clearance report then blocks it).
    r = api.client.post("/api/v1/quotes", json={"segment_ids": [ids[10.0]]},
                        headers=api.headers("editor"))
    assert r.status_code == 201 and "红杉" in r.json()["verbatim"]


def test_quote_reads_and_citations_withhold_hidden_text_from_authors(api, rec) -> None:
    r = api.client.post("/api/v1/quotes",
                        json={"recording_id": rec["rec"], "start": 10.0, "end": 20.0},
                        headers=api.headers("editor"))
    assert r.status_code == 201, r.text
    qid = r.json()["id"]
    assert "红杉" in r.json()["verbatim"]
    for url in (f"/api/v1/quotes/{qid}", f"/api/v1/quotes?recording_id={rec['rec']}",
                f"/api/v1/quotes/{qid}/citation", f"/api/v1/quotes/{qid}/citation?style=short"):
        r = api.client.get(url, headers=api.headers("author"))
        assert r.status_code in (200, 404), (url, r.text)
        assert_no_secret(r.text, url)


def test_manuscript_verification_does_not_confirm_hidden_text(api, rec) -> None:
    chapter = f.add_chapter(api, "黄金搭档与第一张蓝图", number="第四章")
    manuscript = f"他回忆说：“{OFF}”\n\n又说：“{PUBLIC}”\n"
    r = api.client.post(f"/api/v1/chapters/{chapter}/verify", content=manuscript.encode(),
                        headers=api.headers("author") | {"content-type": "text/markdown"})
    assert r.status_code in (200, 403), r.text
    if r.status_code == 200:
        results = r.json()["data"]
        hidden = next(x for x in results if "红杉" in x["quote_text"])
        assert hidden["status"] != "sourced"
        assert all(not (10.0 <= m["start"] < 20.0) for m in hidden["matches"])
        assert any(x["status"] == "sourced" for x in results if x["quote_text"] in PUBLIC)


def test_revisions_of_hidden_segments_withhold_text(api, rec) -> None:
    transcript = api.client.get(f"/api/v1/recordings/{rec['rec']}/transcript",
                                headers=api.headers("editor")).json()
    seg = next(s for s in transcript["segments"] if s["start"] == 10.0)
    r = api.client.patch(f"/api/v1/segments/{seg['id']}", json={"text": OFF + "（更正）"},
                         headers=api.headers("researcher"))
    assert r.status_code == 200, r.text
    r = api.client.get(f"/api/v1/segments/{seg['id']}/revisions",
                       headers=api.headers("author"))
    assert r.status_code in (200, 403, 404), r.text
    assert_no_secret(r.text, "segment revisions")


def test_audio_of_an_unprocessed_recording_with_hidden_spans_waits_for_authors(api, rec) -> None:
    """Silencing needs the normalised WAV (test_withholding checks the silenced audio);
    until the worker wrote it, an author gets a 409 that says so, the others the file."""
    rid = rec["rec"]
    r = api.client.get(f"/api/v1/recordings/{rid}/audio", headers=api.headers("author"))
    assert r.status_code == 409 and "once processing has finished" in r.json()["detail"]
    for role in ("editor", "researcher"):
        assert api.client.get(f"/api/v1/recordings/{rid}/audio",
                              headers=api.headers(role)).status_code == 200
