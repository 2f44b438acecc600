"""Transcript reads, the speaker map, corrections with revisions, and versions.

Every test runs on SQLite and PostgreSQL (the ``api`` fixture).
"""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from service.crud.corrections import retime_words
from service.crud.transcripts import word_tokens
from service.models.consent import RestrictionLevel
from service.models.users import Role
from tests.factories import add_transcript, interview, new_recording, person, restrict

YAN_TEXT_2 = "先把钱给够"  # the start of 林知远's first answer (segment index 1)


def transcript(api, rid: int, role: str = "researcher", **params) -> dict:
    r = api.client.get(f"/api/v1/recordings/{rid}/transcript", params=params,
                       headers=api.headers(role))
    assert r.status_code == 200, r.text
    return r.json()


def put_speakers(api, rid: int, mapping: dict, role: str = "researcher"):
    return api.client.put(f"/api/v1/recordings/{rid}/speakers", json=mapping,
                          headers=api.headers(role))


def patch(api, sid: int, body: dict, role: str = "researcher", rid: int | None = None):
    url = f"/api/v1/recordings/{rid}/segments/{sid}" if rid else f"/api/v1/segments/{sid}"
    return api.client.patch(url, json=body, headers=api.headers(role))


def audit(api, **params) -> list[dict]:
    r = api.client.get("/api/v1/audit/log", params=params, headers=api.headers("editor"))
    assert r.status_code == 200, r.text
    return r.json()["data"]


# ----------------------------------------------------------------------------- speakers

def test_speaker_map_names_every_segment_and_merges_labels(api, tmp_path: Path) -> None:
    rid, segs = interview(api, tmp_path)
    before = transcript(api, rid)
    assert {s["label"] for s in before["speakers"]} == {"SPEAKER_00", "SPEAKER_01",
                                                       "SPEAKER_02"}
    assert all(s["name"] is None for s in before["segments"])
    people = {p["name"]: p["id"] for p in api.client.get(
        "/api/v1/people", headers=api.headers("researcher")).json()["data"]}
    yan, luo = people["林知远"], people["周晓岚"]

    r = put_speakers(api, rid, {"SPEAKER_00": yan, "SPEAKER_01": luo, "SPEAKER_02": yan})
    assert r.status_code == 200, r.text
    assert r.json() == [
        {"label": "SPEAKER_00", "person_id": yan, "name": "林知远", "suggestion": None},
        {"label": "SPEAKER_01", "person_id": luo, "name": "周晓岚", "suggestion": None},
        {"label": "SPEAKER_02", "person_id": yan, "name": "林知远", "suggestion": None},
    ]
    after = transcript(api, rid, role="author")
    # Both of 林知远's labels are listed with the same person: clients merge on person_id.
    merged = [s for s in after["speakers"] if s["person_id"] == yan]
    assert [s["label"] for s in merged] == ["SPEAKER_00", "SPEAKER_02"]
    assert {s["name"] for s in merged} == {"林知远"}
    names = [s["name"] for s in after["segments"]]
    assert names == ["周晓岚" if label == "SPEAKER_01" else "林知远" for *_, label, _ in segs]
    assert after["segments"][1]["text"].startswith(YAN_TEXT_2)
    # The map is per recording, so the recording read shows it too.
    rec = api.client.get(f"/api/v1/recordings/{rid}", headers=api.headers("author")).json()
    assert {s["label"]: s["name"] for s in rec["speakers"]}["SPEAKER_02"] == "林知远"

    # Null unmaps one label; labels left out keep their person.
    r = put_speakers(api, rid, {"SPEAKER_02": None})
    assert r.status_code == 200
    got = {s["label"]: s["person_id"] for s in r.json()}
    assert got == {"SPEAKER_00": yan, "SPEAKER_01": luo, "SPEAKER_02": None}

    events = audit(api, object_type="recording", action="speakers")
    assert len(events) == 2 and events[0]["object_id"] == str(rid)
    assert "SPEAKER_02" in events[0]["summary"]
    assert YAN_TEXT_2 not in events[0]["summary"]


def test_speaker_map_bad_input(api, tmp_path: Path) -> None:
    rid, _ = interview(api, tmp_path)
    yan = person(api, "林知远 (2)")
    r = put_speakers(api, rid, {"SPEAKER_09": yan, "SPEAKER_00": yan})
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert "SPEAKER_09" in detail and "SPEAKER_00, SPEAKER_01, SPEAKER_02" in detail

    r = put_speakers(api, rid, {"SPEAKER_00": 987654})
    assert r.status_code == 422
    assert "987654" in r.json()["detail"] and "/api/v1/people" in r.json()["detail"]

    assert put_speakers(api, rid, {}).status_code == 422
    assert put_speakers(api, rid, {"SPEAKER_00": "林知远"}).status_code == 422
    assert put_speakers(api, rid, {"SPEAKER_00": yan}, role="author").status_code == 403
    assert put_speakers(api, rid, {"SPEAKER_00": yan}, role="editor").status_code == 403
    assert put_speakers(api, 424242, {"SPEAKER_00": yan}).status_code == 404
    # Nothing of the refused maps was stored.
    assert all(s["person_id"] is None for s in transcript(api, rid)["speakers"])


def test_private_recording_is_404_for_other_researchers(api, tmp_path: Path) -> None:
    other = api.add_user("researcher-2", Role.researcher)
    rid = new_recording(api, tmp_path, meta={"title": "私人访谈", "access": "private"})
    add_transcript(api, rid, [(0.0, 2.0, "SPEAKER_00", "这是不公开的访谈")])
    sid = transcript(api, rid)["segments"][0]["id"]
    hdr = {"Authorization": f"Bearer {other}"}
    c = api.client
    assert c.get(f"/api/v1/recordings/{rid}/transcript", headers=hdr).status_code == 404
    assert c.put(f"/api/v1/recordings/{rid}/speakers", json={"SPEAKER_00": None},
                 headers=hdr).status_code == 404
    r = c.patch(f"/api/v1/segments/{sid}", json={"text": "改"}, headers=hdr)
    assert r.status_code == 404 and f"segment with id {sid}" in r.json()["detail"]
    assert c.get(f"/api/v1/segments/{sid}/revisions", headers=hdr).status_code == 404
    assert c.get(f"/api/v1/recordings/{rid}/transcript/export?format=txt",
                 headers=hdr).status_code == 404
    assert transcript(api, rid)["segments"][0]["text"] == "这是不公开的访谈"


# ----------------------------------------------------------------------------- corrections

def _fts_hits(api, phrase: str) -> list[int]:
    """Segment ids the database's own full-text index finds for a phrase."""
    from pipelines.text import cjk_spaced

    q = cjk_spaced(phrase)
    with api.engine.connect() as conn:
        if api.engine.dialect.name == "sqlite":
            rows = conn.execute(sa.text("SELECT rowid FROM segment_fts WHERE segment_fts "
                                        "MATCH :q"), {"q": f'"{q}"'})
        else:
            rows = conn.execute(sa.text(
                "SELECT id FROM segment WHERE to_tsvector('simple', search_text) @@ "
                "phraseto_tsquery('simple', :q)"), {"q": q})
        return sorted(r[0] for r in rows)


def test_text_correction_keeps_span_retimes_words_and_reindexes(api, tmp_path: Path) -> None:
    rid, _segs = interview(api, tmp_path)
    seg = transcript(api, rid)["segments"][1]
    old_text = seg["text"]
    assert _fts_hits(api, "把钱给够") == [seg["id"]]
    new_text = old_text.replace("把钱给够", "把薪酬给够") + " Retention matters."

    r = patch(api, seg["id"], {"text": new_text})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["text"] == new_text
    assert (body["start"], body["end"]) == (seg["start"], seg["end"])
    assert body["edited"] is True and body["words_timed"] == "estimated"
    assert body["version"] == body["latest_version"] == 1 and body["warning"] is None
    words = body["words"]
    assert words[0]["start"] == seg["start"] and words[-1]["end"] == seg["end"]
    assert all(a["end"] == b["start"] for a, b in itertools.pairwise(words))
    assert "".join(w["text"] for w in words) == new_text.replace(" ", "")
    assert [w["text"] for w in words[-2:]] == ["Retention", "matters."]

    # The index follows in the same transaction, on both databases.
    assert _fts_hits(api, "把钱给够") == []
    assert _fts_hits(api, "把薪酬给够") == [seg["id"]]
    assert _fts_hits(api, "retention matters") == [seg["id"]]

    revs = api.client.get(f"/api/v1/segments/{seg['id']}/revisions",
                          headers=api.headers("author")).json()
    assert revs["count"] == 1
    rev = revs["data"][0]
    assert (rev["before_text"], rev["after_text"]) == (old_text, new_text)
    assert rev["before_speaker"] == rev["after_speaker"] == "SPEAKER_00"
    assert rev["user"] == "researcher" and rev["created_at"]
    event = audit(api, object_type="segment")[0]
    assert event["action"] == "correct" and "text" in event["summary"]
    assert "薪酬" not in event["summary"]
    # The read shows the correction.
    again = transcript(api, rid)["segments"][1]
    assert again["text"] == new_text and again["edited"] is True


def test_speaker_correction_rules(api, tmp_path: Path) -> None:
    rid, _ = interview(api, tmp_path)
    sid = transcript(api, rid)["segments"][0]["id"]
    old = transcript(api, rid)["segments"][0]
    old_words = old["words"]

    r = patch(api, sid, {"speaker": "SPEAKER_00"})
    assert r.status_code == 200 and r.json()["speaker"] == "SPEAKER_00"
    # A speaker change leaves the words and their timing as they were.
    assert r.json()["words_timed"] == old["words_timed"] and r.json()["words"] == old_words
    r = patch(api, sid, {"speaker": "SPEAKER_07"})  # a new diarization-style label
    assert r.status_code == 200
    assert "SPEAKER_07" in {s["label"] for s in transcript(api, rid)["speakers"]}
    r = patch(api, sid, {"speaker": "Bob"})
    assert r.status_code == 422
    assert "SPEAKER_00, SPEAKER_01, SPEAKER_02, SPEAKER_07" in r.json()["detail"]

    revs = api.client.get(f"/api/v1/segments/{sid}/revisions",
                          headers=api.headers("researcher")).json()["data"]
    assert [(x["before_speaker"], x["after_speaker"]) for x in revs] == [
        ("SPEAKER_00", "SPEAKER_07"), ("SPEAKER_01", "SPEAKER_00")]

    # Sending the current values changes nothing and stores no revision.
    r = patch(api, sid, {"speaker": "SPEAKER_07"})
    assert r.status_code == 200 and r.json()["revision_id"] is None
    assert api.client.get(f"/api/v1/segments/{sid}/revisions",
                          headers=api.headers("researcher")).json()["count"] == 2


def test_correction_bad_input(api, tmp_path: Path) -> None:
    rid, _ = interview(api, tmp_path)
    other = new_recording(api, tmp_path, meta={"title": "姚顺雨访谈"}, freq=550)
    add_transcript(api, other, [(0.0, 3.0, "SPEAKER_00", "最重要的点是你得先找到一个好的应用")])
    sid = transcript(api, rid)["segments"][0]["id"]
    foreign = transcript(api, other)["segments"][0]["id"]

    # A segment id of another recording, through the recording-scoped route.
    r = patch(api, foreign, {"text": "改"}, rid=rid)
    assert r.status_code == 404
    assert f"Recording {rid} has no segment {foreign}" in r.json()["detail"]
    assert patch(api, sid, {"text": "改过的文字"}, rid=rid).status_code == 200
    assert patch(api, 999999, {"text": "x"}).status_code == 404
    assert patch(api, sid, {}).status_code == 422
    assert patch(api, sid, {"text": "   "}).status_code == 422
    r = patch(api, sid, {"text": "x", "start": 0.0})
    assert r.status_code == 422 and "start" in r.json()["detail"]
    assert patch(api, sid, {"text": "x"}, role="author").status_code == 403
    assert patch(api, sid, {"text": "x"}, role="editor").status_code == 403
    assert api.client.get("/api/v1/segments/999999/revisions",
                          headers=api.headers("author")).status_code == 404
    # The other recording is untouched.
    assert transcript(api, other)["segments"][0]["edited"] is False


def test_versions_keep_corrections_and_flag_old_version_edits(api, tmp_path: Path) -> None:
    rid, segs = interview(api, tmp_path, limit=4)
    v1 = transcript(api, rid)
    sid_v1 = v1["segments"][0]["id"]
    assert patch(api, sid_v1, {"text": "大厂用三倍薪资挖人的时候，你们怎么留住核心人才？"}
                 ).status_code == 200
    # Re-running transcription adds version 2 through the same write path.
    add_transcript(api, rid, segs, backend="faster-whisper")
    v2 = transcript(api, rid)
    assert v2["version"] == 2 and v2["versions"] == [1, 2]
    assert v2["corrected_versions"] == [1]
    assert v2["segments"][0]["text"] == segs[0][3]  # the new run has its own text

    old = transcript(api, rid, version=1)
    assert old["segments"][0]["text"].startswith("大厂用三倍薪资")
    # A correction on the old version is kept there and flagged.
    sid_old = old["segments"][1]["id"]
    r = patch(api, sid_old, {"text": "首先钱要到位。"})
    assert r.status_code == 200
    body = r.json()
    assert body["version"] == 1 and body["latest_version"] == 2
    assert "version 1" in body["warning"] and "?version=1" in body["warning"]
    assert transcript(api, rid, version=1)["segments"][1]["text"] == "首先钱要到位。"
    assert transcript(api, rid)["segments"][1]["text"] == segs[1][3]
    r = api.client.get(f"/api/v1/recordings/{rid}/transcript?version=7",
                       headers=api.headers("author"))
    assert r.status_code == 404 and "versions 1, 2" in r.json()["detail"]


# ----------------------------------------------------------------------------- visibility

def test_authors_get_restricted_placeholder_others_get_the_mark(api, tmp_path: Path) -> None:
    rid, segs = interview(api, tmp_path)
    hidden_start, hidden_end = segs[1][0], segs[1][1]
    # Off the record: overlaps only the tail of segment 1, which is hidden whole.
    restrict(api, rid, hidden_end - 0.5, hidden_end + 0.2, RestrictionLevel.off_record)
    restrict(api, rid, segs[3][0] + 1, segs[3][0] + 2, RestrictionLevel.background)
    # An expired deep-background restriction no longer hides anything.
    restrict(api, rid, segs[5][0], segs[5][1], RestrictionLevel.deep_background,
             until=date.today() - timedelta(days=1))

    author = transcript(api, rid, role="author")["segments"]
    assert author[1]["text"] == "[restricted]" and author[1]["words"] == []
    assert author[1]["restricted"] == "off_record"
    assert author[3]["text"] == segs[3][3] and author[3]["restricted"] == "background"
    assert author[5]["text"] == segs[5][3] and author[5]["restricted"] is None
    assert author[0]["text"] == segs[0][3] and author[0]["restricted"] is None
    for role in ("editor", "researcher", "admin"):
        seen = transcript(api, rid, role=role)["segments"]
        assert seen[1]["text"] == segs[1][3] and seen[1]["restricted"] == "off_record"
    assert (hidden_start, hidden_end) == (author[1]["start"], author[1]["end"])

    # Revisions of a hidden segment do not leak its text to authors either.
    sid = author[1]["id"]
    assert patch(api, sid, {"text": segs[1][3] + "（修订）"}).status_code == 200
    rev = api.client.get(f"/api/v1/segments/{sid}/revisions",
                         headers=api.headers("author")).json()["data"][0]
    assert rev["before_text"] == rev["after_text"] == "[restricted]"
    rev = api.client.get(f"/api/v1/segments/{sid}/revisions",
                         headers=api.headers("editor")).json()["data"][0]
    assert rev["after_text"].endswith("（修订）")


# ----------------------------------------------------------------------------- re-timing

def test_word_tokens_split_cjk_and_keep_latin_words() -> None:
    assert word_tokens("MoE架构很重要。Hello, world!") == [
        "MoE", "架", "构", "很", "重", "要。", "Hello,", "world!"]
    assert word_tokens("“不能啥都想要”") == ["“不", "能", "啥", "都", "想", "要”"]
    assert word_tokens("  ") == []


@pytest.mark.parametrize("text", ["首先钱要到位", "Token消耗是个大问题", "a", "OK。"])
def test_retimed_words_cover_the_span_in_proportion(text: str) -> None:
    words = retime_words(text, 10.0, 13.0)
    assert words[0]["start"] == 10.0 and words[-1]["end"] == 13.0
    lengths = [len(w["text"]) for w in words]
    for w, n in zip(words, lengths, strict=True):
        assert w["end"] - w["start"] == pytest.approx(3.0 * n / sum(lengths), abs=0.002)
        assert w["probability"] == 1.0


@pytest.mark.parametrize("role", ["editor", "author"])
def test_the_fast_transcript_read_says_exactly_what_the_models_say(api, tmp_path: Path,
                                                                   role: str) -> None:
    """GET /transcript copies stored words in unparsed; it must equal the model path."""
    import json as jsonlib

    from sqlmodel import Session

    from service.crud import transcripts as crud
    from service.crud.transcripts import SegmentIn, add_version
    from service.models.users import User

    rid, _ = interview(api, tmp_path)
    words = [{"start": 0.0, "end": 0.4, "text": "闫", "probability": 0.91, "original": "閆"},
             {"start": 0.4, "end": 0.9, "text": "俊杰", "probability": 1.0}]
    with Session(api.engine) as session:
        add_version(session, recording_id=rid, backend="test", model="m", language="zh",
                    created_by=None, segments=[
                        SegmentIn(start=0.0, end=1.0, speaker="SPEAKER_00", text="闫俊杰",
                                  language="zh", words=words),
                        SegmentIn(start=5.0, end=9.0, speaker="SPEAKER_01", text="不能说的话",
                                  language="zh", words=words),
                        SegmentIn(start=10.0, end=12.0, speaker="SPEAKER_01", text="没有词",
                                  language="zh")])
        session.commit()
    restrict(api, rid, 6.0, 7.0, RestrictionLevel.off_record)
    fast = transcript(api, rid, role)
    with Session(api.engine) as session:
        t = crud.get_transcript(session, recording_id=rid, version=None)
        slow = jsonlib.loads(crud.to_public(
            session, t, user=User(id=api.user_ids[role], name=role, role=Role(role)))
            .model_dump_json())
    assert fast == slow
    assert fast["segments"][0]["words"][0]["original"] == "閆"  # the script Whisper wrote
    assert fast["segments"][0]["words"][1] == {"start": 0.4, "end": 0.9, "text": "俊杰",
                                               "probability": 1.0}
    hidden = fast["segments"][1]
    assert (hidden["text"], hidden["words"]) == (("[restricted]", []) if role == "author"
                                                 else ("不能说的话", hidden["words"]))
    assert fast["segments"][2]["words"] == []
