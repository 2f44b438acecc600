"""Quotes: freezing, speaker rules, bad spans, drift, edits, citations, links, restrictions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from service.citations import Source, bibliography_entry, cite
from service.models.transcripts import Segment
from tests.factories import (
    add_transcript,
    name_speakers,
    person,
    recording,
    restrict,
    transcript_with_words,
)

SEGMENTS = [
    (0.0, 5.0, "SPEAKER_01", "你当时为什么离开商汤？"),
    (5.0, 11.5, "SPEAKER_00", "我们现在像一家AI咨询公司，"),
    (11.5, 17.0, "SPEAKER_00", "靠卖工程师的人时赚钱。"),
    (17.0, 21.0, "SPEAKER_01", "那是二零二一年的事。"),
    (754.0, 760.0, "SPEAKER_00", "只有把MoE做出来，才能用可估量的成本向更高阶段演进。"),
]


@pytest.fixture
def interview(api, tmp_path: Path) -> dict[str, Any]:
    yan = person(api, "闫俊杰")
    host = person(api, "张三", kind="journalist")
    rec = recording(api, tmp_path, seconds=800, title="闫俊杰访谈（第一部分）",
                    location="Shanghai", recorded_at="2025-03-01T10:00:00Z",
                    participants=[{"person_id": yan, "role": "interviewee"},
                                  {"person_id": host, "role": "interviewer"}])
    add_transcript(api, rec["id"], SEGMENTS)
    name_speakers(api, rec["id"], {"SPEAKER_00": yan, "SPEAKER_01": host})
    return {"rec": rec["id"], "yan": yan, "host": host}


def post_quote(api: Any, body: dict[str, Any], role: str = "author") -> Any:
    return api.client.post("/api/v1/quotes", json=body, headers=api.headers(role))


def test_quote_from_span_freezes_verbatim_and_cites(api, interview) -> None:
    r = post_quote(api, {"recording_id": interview["rec"], "start": 6.0, "end": 16.0})
    assert r.status_code == 201, r.text
    q = r.json()
    # Whole segments (no word timings): snapped to their bounds, joined without spaces.
    assert (q["start"], q["end"]) == (5.0, 17.0)
    assert q["verbatim"] == "我们现在像一家AI咨询公司，靠卖工程师的人时赚钱。"
    assert q["speaker"] == "SPEAKER_00" and q["person_id"] == interview["yan"]
    assert q["transcript_version"] == 1 and q["drift"] is False
    assert q["citation"] == ('闫俊杰, interview by 张三, Shanghai, 2025-03-01, '
                             'recording "闫俊杰访谈（第一部分）", 00:00:05.')
    late = post_quote(api, {"recording_id": interview["rec"], "start": 754, "end": 760}).json()
    cit = api.client.get(f"/api/v1/quotes/{late['id']}/citation",
                         headers=api.headers("author"))
    assert cit.json()["citation"].endswith("00:12:34.")
    short = api.client.get(f"/api/v1/quotes/{late['id']}/citation?style=short",
                           headers=api.headers("editor"))
    assert short.json() == {"citation": "闫俊杰, interview, 2025-03-01, 00:12:34.",
                            "style": "short"}
    bad = api.client.get(f"/api/v1/quotes/{late['id']}/citation?style=mla",
                         headers=api.headers("author"))
    assert bad.status_code == 422
    log = api.client.get(f"/api/v1/audit/log?object_type=quote&object_id={late['id']}",
                         headers=api.headers("editor")).json()["data"]
    assert [e["action"] for e in log][::-1] == ["create", "citation", "citation"]
    assert all("MoE" not in e["summary"] and "成本" not in e["summary"] for e in log)


def test_quote_from_segment_ids(api, interview) -> None:
    tr = api.client.get(f"/api/v1/recordings/{interview['rec']}/transcript",
                        headers=api.headers("author")).json()
    ids = [s["id"] for s in tr["segments"]]
    r = post_quote(api, {"segment_ids": [ids[2], ids[1]]})
    assert r.status_code == 201, r.text
    assert r.json()["verbatim"] == "我们现在像一家AI咨询公司，靠卖工程师的人时赚钱。"
    gap = post_quote(api, {"segment_ids": [ids[1], ids[4]]})
    assert gap.status_code == 422 and "adjacent" in gap.json()["detail"]
    missing = post_quote(api, {"segment_ids": [999_999]})
    assert missing.status_code == 404
    # After a new version, segments of the old one are refused with a reason.
    add_transcript(api, interview["rec"], SEGMENTS)
    stale = post_quote(api, {"segment_ids": [ids[1]]})
    assert stale.status_code == 409 and "version is 2" in stale.json()["detail"]


def test_speaker_change_refused_unless_allowed(api, interview) -> None:
    r = post_quote(api, {"recording_id": interview["rec"], "start": 0, "end": 11})
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert "speaker change" in detail and "allow_multiple_speakers" in detail
    ok = post_quote(api, {"recording_id": interview["rec"], "start": 0, "end": 11,
                          "allow_multiple_speakers": True})
    assert ok.status_code == 201
    body = ok.json()
    assert body["speaker"] == "SPEAKER_01+SPEAKER_00" and body["person_id"] is None
    assert body["verbatim"] == "你当时为什么离开商汤？\n我们现在像一家AI咨询公司，"


def test_word_timings_cut_inside_a_segment(api, tmp_path: Path) -> None:
    rec = recording(api, tmp_path, seconds=20)
    words = [(1.0, 1.4, "我们"), (1.4, 1.9, "现在"), (1.9, 2.2, "像"), (2.2, 2.5, "一家"),
             (2.5, 3.4, " AI"), (3.4, 4.2, "咨询公司")]
    transcript_with_words(api, rec["id"], [(1.0, 4.2, "SPEAKER_00", words)])
    r = post_quote(api, {"recording_id": rec["id"], "start": 1.85, "end": 3.5})
    assert r.status_code == 201, r.text
    assert r.json()["verbatim"] == "像一家AI"
    assert (r.json()["start"], r.json()["end"]) == (1.9, 3.4)


@pytest.mark.parametrize("body,code,words", [
    ({"start": 10, "end": 5}, 422, "before end"),
    ({"start": 5, "end": 5}, 422, "before end"),
    ({"start": 790, "end": 900}, 422, "outside the recording"),
    ({"start": -1, "end": 3}, 422, "greater than or equal"),
    ({"start": 200, "end": 300}, 422, "No transcribed speech"),
    ({"start": 1}, 422, "recording_id, start, end"),
])
def test_bad_spans(api, interview, body: dict[str, Any], code: int, words: str) -> None:
    r = post_quote(api, {"recording_id": interview["rec"], **body})
    assert r.status_code == code, r.text
    assert words in r.json()["detail"]


def test_deleted_recording_and_missing_transcript(api, interview, tmp_path: Path) -> None:
    q = post_quote(api, {"recording_id": interview["rec"], "start": 5, "end": 11}).json()
    bare = recording(api, tmp_path, seconds=10, title="未转写")
    none = post_quote(api, {"recording_id": bare["id"], "start": 1, "end": 2})
    assert none.status_code == 409 and "no transcript" in none.json()["detail"]
    gone = api.client.delete(f"/api/v1/recordings/{interview['rec']}",
                             headers=api.headers("researcher"))
    assert gone.status_code == 204
    r = post_quote(api, {"recording_id": interview["rec"], "start": 5, "end": 11})
    assert r.status_code == 404 and "deleted" in r.json()["detail"]
    kept = api.client.get(f"/api/v1/quotes/{q['id']}", headers=api.headers("author")).json()
    assert kept["recording_id"] is None and kept["withheld"] == "erased"
    assert "咨询" not in kept["verbatim"] and kept["citation"] is None
    cit = api.client.get(f"/api/v1/quotes/{q['id']}/citation", headers=api.headers("author"))
    assert cit.status_code == 409


def test_drift_after_correction(api, interview) -> None:
    q = post_quote(api, {"recording_id": interview["rec"], "start": 5, "end": 11.5}).json()
    assert q["drift"] is False
    with Session(api.engine) as session:
        seg = session.exec(select(Segment).where(Segment.start == 5.0)).one()
        seg.text = "我们现在像一家AI咨詢公司，"  # script and punctuation only: no drift
        session.add(seg)
        session.commit()
    assert api.client.get(f"/api/v1/quotes/{q['id']}",
                          headers=api.headers("author")).json()["drift"] is False
    changed = [(a, b, s, t.replace("咨询公司", "外包公司")) for a, b, s, t in SEGMENTS]
    add_transcript(api, interview["rec"], changed)
    now = api.client.get(f"/api/v1/quotes/{q['id']}", headers=api.headers("author")).json()
    assert now["drift"] is True and now["current_version"] == 2
    assert now["verbatim"] == "我们现在像一家AI咨询公司，"  # frozen


def test_edit_translation_audited_without_text(api, interview) -> None:
    q = post_quote(api, {"recording_id": interview["rec"], "start": 5, "end": 17}).json()
    url = f"/api/v1/quotes/{q['id']}"
    h = api.headers("author")
    no_translator = api.client.patch(url, json={"translation": "We are like a consultancy."},
                                     headers=h)
    assert no_translator.status_code == 422 and "translator" in no_translator.json()["detail"]
    r = api.client.patch(url, json={"edited": "我们像一家AI咨询公司，靠卖工程师的时间赚钱。",
                                    "translation": "We are like an AI consultancy.",
                                    "translator": "Jane Doe"}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["translator"] == "Jane Doe"
    assert r.json()["verbatim"] == q["verbatim"]
    r2 = api.client.patch(url, json={"edited": "我们像一家咨询公司。"}, headers=h)
    assert r2.json()["edited"] == "我们像一家咨询公司。"
    log = api.client.get(f"/api/v1/audit/log?object_type=quote&object_id={q['id']}",
                         headers=api.headers("editor")).json()["data"]
    assert [e["summary"] for e in log[:2]] == ["changed edited",
                                                "changed edited, translation, translator"]
    assert not any("咨询" in e["summary"] or "consultancy" in e["summary"] for e in log)


def test_roles_and_visibility(api, interview, tmp_path: Path) -> None:
    body = {"recording_id": interview["rec"], "start": 5, "end": 11}
    assert post_quote(api, body, role="researcher").status_code == 403
    for role in ("author", "editor", "admin"):
        assert post_quote(api, body, role=role).status_code == 201
    private = recording(api, tmp_path, seconds=20, title="私密", access="private")
    add_transcript(api, private["id"], [(0.0, 5.0, "SPEAKER_00", "私下说的话。")])
    # Uploaded by the researcher: an author cannot see it at all.
    hidden = post_quote(api, {"recording_id": private["id"], "start": 0, "end": 5})
    assert hidden.status_code == 404
    mine = post_quote(api, {"recording_id": private["id"], "start": 0, "end": 5}, role="editor")
    assert mine.status_code == 201
    assert api.client.get(f"/api/v1/quotes/{mine.json()['id']}",
                          headers=api.headers("author")).status_code == 404
    listed = api.client.get("/api/v1/quotes", headers=api.headers("author")).json()
    assert listed["count"] == 3


def test_restricted_span(api, interview) -> None:
    restrict(api, interview["rec"], 12.0, 13.0)
    body = {"recording_id": interview["rec"], "start": 5, "end": 17}
    r = post_quote(api, body)
    assert r.status_code == 403 and "restricted" in r.json()["detail"]
    assert "赚钱" not in r.text
    by_editor = post_quote(api, body, role="editor")
    assert by_editor.status_code == 201 and "赚钱" in by_editor.json()["verbatim"]
    seen = api.client.get(f"/api/v1/quotes/{by_editor.json()['id']}",
                          headers=api.headers("author")).json()
    assert seen["verbatim"] == "[restricted]" and seen["withheld"] == "restricted"
    assert "赚钱" not in str(seen)
    # Outside the restricted span an author may quote.
    assert post_quote(api, {"recording_id": interview["rec"], "start": 5, "end": 11}
                      ).status_code == 201


def test_links_and_dependents(api, interview) -> None:
    h = api.headers("author")
    part = api.client.post("/api/v1/chapters", json={"kind": "chapter", "number": "2",
                                                     "title": "算法人生"}, headers=h).json()
    sec = api.client.post("/api/v1/chapters", json={"kind": "section", "number": "2.3",
                                                    "title": "痛苦洞察", "parent_id": part["id"]},
                          headers=h).json()
    q1 = post_quote(api, {"recording_id": interview["rec"], "start": 5, "end": 17}).json()
    q2 = post_quote(api, {"recording_id": interview["rec"], "start": 0, "end": 5}).json()
    r = api.client.post(f"/api/v1/chapters/{sec['id']}/quotes",
                        json={"quote_id": q1["id"], "usage": "drafted", "note": "开头"}, headers=h)
    assert r.status_code == 201 and r.json()["usage"] == "drafted"
    api.client.post(f"/api/v1/chapters/{part['id']}/quotes",
                    json={"quote_id": q2["id"], "usage": "candidate"}, headers=h)
    bad = api.client.post(f"/api/v1/chapters/{sec['id']}/quotes",
                          json={"quote_id": q1["id"], "usage": "maybe"}, headers=h)
    assert bad.status_code == 422
    assert api.client.post(f"/api/v1/chapters/{sec['id']}/quotes",
                           json={"quote_id": 9999}, headers=h).status_code == 404
    assert api.client.post(f"/api/v1/chapters/{sec['id']}/quotes", json={"quote_id": q1["id"]},
                           headers=api.headers("researcher")).status_code == 403
    in_sec = api.client.get(f"/api/v1/quotes?chapter_id={sec['id']}", headers=h).json()
    assert [q["id"] for q in in_sec["data"]] == [q1["id"]]
    assert in_sec["data"][0]["chapters"] == [{"chapter_id": sec["id"], "usage": "drafted",
                                              "chapter_label": "2.3 痛苦洞察", "note": "开头"}]
    in_ch = api.client.get(f"/api/v1/quotes?chapter_id={part['id']}", headers=h).json()
    assert in_ch["count"] == 2
    by_rec = api.client.get(f"/api/v1/recordings/{interview['rec']}/chapters",
                            headers=api.headers("researcher")).json()
    assert {c["chapter_id"] for c in by_rec["data"]} == {part["id"], sec["id"]}
    by_person = api.client.get(f"/api/v1/people/{interview['yan']}/chapters", headers=h).json()
    assert [c["chapter_id"] for c in by_person["data"]] == [sec["id"]]
    assert by_person["data"][0]["path"] == ["Chapter 2: 算法人生"]
    host = api.client.get(f"/api/v1/people/{interview['host']}/chapters", headers=h).json()
    assert [c["chapter_id"] for c in host["data"]] == [part["id"]]
    src = api.client.get(f"/api/v1/chapters/{part['id']}/sources", headers=h)
    assert src.status_code == 200 and src.headers["content-type"].startswith("text/markdown")
    assert ('- 闫俊杰. Interview by 张三. Shanghai, 2025-03-01. '
            'Recording "闫俊杰访谈（第一部分）". '
            f'Sourcebook recording {interview["rec"]}. Quoted at 00:00:05.') in src.text
    assert "- 张三. Interview by 张三" in src.text
    unlink = api.client.delete(f"/api/v1/chapters/{sec['id']}/quotes/{q1['id']}", headers=h)
    assert unlink.status_code == 204
    assert api.client.delete(f"/api/v1/chapters/{sec['id']}/quotes/{q1['id']}",
                             headers=h).status_code == 404
    assert api.client.delete(f"/api/v1/quotes/{q2['id']}", headers=h).status_code == 204
    assert api.client.get(f"/api/v1/quotes?chapter_id={part['id']}", headers=h).json()["count"] == 0


def test_citation_names() -> None:
    src = Source(speaker="Sam  Altman", interviewers=["Jane Doe", "张小珺", "李广密"],
                 location="San Francisco", title="Conversation", start=3725.9)
    assert cite(src) == ("Sam Altman, interview by Jane Doe, 张小珺, and 李广密, San Francisco, "
                         'recording "Conversation", 01:02:05.')
    assert cite(src, "short") == "Altman, interview, 01:02:05."
    zh = Source(speaker="闫 俊杰", interviewers=["张小珺", "李广密"])
    assert cite(zh) == "闫俊杰, interview by 张小珺、李广密."
    assert bibliography_entry(src).startswith("- Altman, Sam. Interview by Jane Doe")
    assert bibliography_entry(zh) == "- 闫俊杰. Interview by 张小珺、李广密."
    assert cite(Source(speaker=None)) == "Unidentified speaker, interview."
