"""Split a segment in two and merge neighbours (issue 15): times survive the re-cut.

Through the API on SQLite and PostgreSQL (the ``api`` fixture); one test with the real
embedded worker and Whisper aligns a split whose words were estimated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, select

from service.crud.carry import carry_corrections
from service.models.transcripts import Segment, Transcript
from service.models.users import Role
from tests.factories import (
    PYANNOTE_SAMPLE,
    add_transcript,
    new_recording,
    restrict,
    transcript_with_words,
    upload,
)
from tests.service.test_jobs import wait_job
from tests.service.test_jobs import worker_api as worker_api  # a fixture
from tests.service.test_transcripts import _fts_hits, audit, transcript

# 钱要到位 | 人才才会来 with a pause of 0.4 s between 位 and 人.
HEAD = [(10.0, 10.2, "钱"), (10.2, 10.4, "要"), (10.4, 10.6, "到"), (10.6, 10.8, "位，")]
TAIL = [(11.2, 11.4, "人"), (11.4, 11.6, "才"), (11.6, 11.8, "才"), (11.8, 12.0, "会"),
        (12.0, 12.2, "来。")]
NEXT = [(12.5, 13.0, "对"), (13.0, 13.5, "吧。")]


def _setup(api: Any, tmp_path: Path) -> tuple[int, list[dict[str, Any]]]:
    rid = new_recording(api, tmp_path)
    transcript_with_words(api, rid, [
        (9.0, 9.8, "SPEAKER_01", [(9.0, 9.4, "你"), (9.4, 9.8, "好。")]),
        (10.0, 12.2, "SPEAKER_00", HEAD + TAIL),
        (12.5, 13.5, "SPEAKER_00", NEXT),
    ])
    return rid, transcript(api, rid)["segments"]


def split(api: Any, sid: int, body: dict[str, Any], role: str = "researcher") -> Any:
    return api.client.post(f"/api/v1/segments/{sid}/split", json=body,
                           headers=api.headers(role))


def merge(api: Any, sid: int, body: dict[str, Any], role: str = "researcher") -> Any:
    return api.client.post(f"/api/v1/segments/{sid}/merge", json=body,
                           headers=api.headers(role))


def revisions(api: Any, sid: int) -> list[dict[str, Any]]:
    r = api.client.get(f"/api/v1/segments/{sid}/revisions", headers=api.headers("editor"))
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data


def test_a_split_between_timed_words_keeps_their_times(api, tmp_path: Path) -> None:
    rid, segs = _setup(api, tmp_path)
    seg = segs[1]
    assert seg["text"] == "钱要到位，人才才会来。"
    r = split(api, seg["id"], {"offset": 5, "speaker": "SPEAKER_01"})
    assert r.status_code == 200, r.text
    body = r.json()
    head, tail = body["segments"]
    assert body["recording_title"] == "罗永浩对谈闫俊杰" and body["align_job_id"] is None
    assert (head["text"], tail["text"]) == ("钱要到位，", "人才才会来。")
    assert (head["speaker"], tail["speaker"]) == ("SPEAKER_00", "SPEAKER_01")
    # The halves meet in the middle of the pause between 位 and 人.
    assert (head["start"], head["end"], tail["start"], tail["end"]) == (10.0, 11.0, 11.0, 12.2)
    assert head["words_timed"] == tail["words_timed"] == "asr"
    assert [(w["start"], w["end"], w["text"]) for w in head["words"]] == HEAD
    assert [(w["start"], w["end"], w["text"]) for w in tail["words"]] == TAIL
    assert head["edited"] and tail["edited"]

    after = transcript(api, rid)["segments"]
    assert [s["text"] for s in after] == ["你好。", "钱要到位，", "人才才会来。", "对吧。"]
    assert [s["id"] for s in after][:2] == [segs[0]["id"], seg["id"]]
    assert after[3]["id"] == segs[2]["id"]
    # The new segment is in the full-text index, the old text is not.
    assert _fts_hits(api, "人才才会来") == [tail["id"]]
    assert _fts_hits(api, "到位人才") == []

    for sid, text in ((head["id"], "钱要到位，"), (tail["id"], "人才才会来。")):
        (rev,) = revisions(api, sid)
        assert rev["kind"] == "split"
        assert (rev["before_text"], rev["after_text"]) == ("钱要到位，人才才会来。", text)
    assert revisions(api, tail["id"])[0]["after_speaker"] == "SPEAKER_01"
    event = audit(api, object_type="segment")[0]
    assert event["action"] == "split" and "11.00 s" in event["summary"]


def test_a_cut_inside_a_recognised_token_is_estimated_not_invented(api, tmp_path) -> None:
    rid = new_recording(api, tmp_path)
    transcript_with_words(api, rid, [
        (0.0, 2.0, "SPEAKER_00", [(0.0, 0.5, "我们"), (0.6, 1.2, "很早"), (1.3, 2.0, "就")]),
    ])
    sid = transcript(api, rid)["segments"][0]["id"]
    r = split(api, sid, {"offset": 1})
    assert r.status_code == 200, r.text
    head, tail = r.json()["segments"]
    assert (head["text"], tail["text"]) == ("我", "们很早就")
    # By character share: 1 of 5 characters.
    assert head["end"] == tail["start"] == 0.4
    assert head["words_timed"] == tail["words_timed"] == "estimated"
    assert [w["text"] for w in tail["words"]] == ["们", "很", "早", "就"]
    # No normalised audio in this recording (never transcribed): nothing to align to.
    assert r.json()["align_job_id"] is None


def test_split_refuses_cuts_that_are_not_between_words(api, tmp_path: Path) -> None:
    rid = new_recording(api, tmp_path)
    add_transcript(api, rid, [(0.0, 4.0, "SPEAKER_00", "我们用 MiniMax 模型。")])
    seg = transcript(api, rid)["segments"][0]
    for offset, expected in ((0, "greater than or equal to 1"), (len(seg["text"]), "1 to"),
                             (5, "inside the word")):
        r = split(api, seg["id"], {"offset": offset})
        assert r.status_code == 422, (offset, r.text)
        assert expected in r.json()["detail"], r.text
    r = split(api, seg["id"], {"offset": 5})
    assert "split before it (offset 4) or after it (offset 11)" in r.json()["detail"]
    # Only punctuation after the cut has no words.
    add_transcript(api, rid, [(0.0, 4.0, "SPEAKER_00", "好的 。")])
    seg2 = transcript(api, rid)["segments"][0]
    r = split(api, seg2["id"], {"offset": 3})
    assert r.status_code == 422 and "Both parts" in r.json()["detail"]
    for bad in ({"offset": 2, "speaker": "Bob"}, {"offset": 2, "extra": 1}, {},
                {"offset": -1}):
        r = split(api, seg["id"], bad)
        assert r.status_code == 422, (bad, r.text)
    assert split(api, seg["id"], {"offset": 2}, role="author").status_code == 403
    # Nothing was stored by any refused request.
    assert transcript(api, rid, version=1)["segments"][0]["text"] == "我们用 MiniMax 模型。"


def test_a_private_recording_s_segment_answers_like_a_missing_one(api, tmp_path) -> None:
    rid = new_recording(api, tmp_path, meta={"title": "私密访谈", "language": "zh",
                                             "access": "private"})
    add_transcript(api, rid, [(0.0, 2.0, "SPEAKER_00", "你好 世界"),
                              (2.0, 4.0, "SPEAKER_00", "再见")])
    a, b = (s["id"] for s in transcript(api, rid)["segments"])
    api.tokens["other"] = api.add_user("other", Role.researcher)
    missing = split(api, 999_999, {"offset": 2}, role="other")
    hidden = split(api, a, {"offset": 2}, role="other")
    assert missing.status_code == hidden.status_code == 404
    assert hidden.json()["detail"] == missing.json()["detail"].replace("999999", str(a))
    assert merge(api, a, {"next_segment_id": b}, role="other").status_code == 404
    # ... and a visible segment cannot pull an invisible one in.
    mine = new_recording(api, tmp_path, freq=550, role="other")
    add_transcript(api, mine, [(0.0, 2.0, "SPEAKER_00", "我的")])
    own = transcript(api, mine, role="other")["segments"][0]["id"]
    r = merge(api, own, {"next_segment_id": b}, role="other")
    assert r.status_code == 404


def test_merge_joins_neighbours_and_keeps_their_words_times(api, tmp_path: Path) -> None:
    rid, segs = _setup(api, tmp_path)
    first, second = segs[1], segs[2]
    # Correct the second first, so that its history has to move with it.
    r = api.client.patch(f"/api/v1/segments/{second['id']}", json={"speaker": "SPEAKER_01"},
                         headers=api.headers("researcher"))
    assert r.status_code == 200, r.text
    r = merge(api, first["id"], {"next_segment_id": second["id"]})
    assert r.status_code == 422
    assert "SPEAKER_00 and SPEAKER_01" in r.json()["detail"]
    r = merge(api, first["id"], {"next_segment_id": second["id"], "speaker": "SPEAKER_00"})
    assert r.status_code == 200, r.text
    (joined,) = r.json()["segments"]
    assert joined["text"] == "钱要到位，人才才会来。对吧。"
    assert (joined["start"], joined["end"]) == (10.0, 13.5)
    assert joined["words_timed"] == "asr" and joined["speaker"] == "SPEAKER_00"
    assert [(w["start"], w["end"], w["text"]) for w in joined["words"]] == HEAD + TAIL + NEXT
    after = transcript(api, rid)["segments"]
    assert [s["id"] for s in after] == [segs[0]["id"], first["id"]]
    assert _fts_hits(api, "来对吧") == [first["id"]]
    history = revisions(api, first["id"])
    assert [h["kind"] for h in history] == ["merge", "correct"]
    assert history[0]["before_text"] == "钱要到位，人才才会来。\n对吧。"
    assert history[1]["after_speaker"] == "SPEAKER_01"  # the second's own correction
    assert audit(api, object_type="segment")[0]["action"] == "merge"


def test_merge_only_neighbours_of_one_version(api, tmp_path: Path) -> None:
    rid, segs = _setup(api, tmp_path)
    r = merge(api, segs[0]["id"], {"next_segment_id": segs[2]["id"]})
    assert r.status_code == 422
    assert f"The next segment is {segs[1]['id']}" in r.json()["detail"]
    r = merge(api, segs[2]["id"], {"next_segment_id": segs[1]["id"]})
    assert r.status_code == 422 and "is the last of its version" in r.json()["detail"]
    add_transcript(api, rid, [(0.0, 2.0, "SPEAKER_00", "新版本")])
    v2 = transcript(api, rid)["segments"][0]["id"]
    r = merge(api, segs[2]["id"], {"next_segment_id": v2})
    assert r.status_code == 422
    assert transcript(api, rid, version=1)["segments"] == segs  # nothing half-stored


def test_split_then_merge_gives_back_the_text_and_the_times(api, tmp_path: Path) -> None:
    rid, segs = _setup(api, tmp_path)
    head, tail = split(api, segs[1]["id"], {"offset": 5}).json()["segments"]
    (joined,) = merge(api, head["id"], {"next_segment_id": tail["id"]}).json()["segments"]
    assert joined["text"] == segs[1]["text"]
    assert joined["words"] == segs[1]["words"]
    assert (joined["start"], joined["end"]) == (segs[1]["start"], segs[1]["end"])
    assert [s["id"] for s in transcript(api, rid)["segments"]] == [s["id"] for s in segs]


def test_an_author_reads_a_split_half_under_a_restriction_as_withheld(api, tmp_path) -> None:
    rid, segs = _setup(api, tmp_path)
    head, tail = split(api, segs[1]["id"], {"offset": 5}).json()["segments"]
    restrict(api, rid, 11.0, 12.2)
    seen = {s["id"]: s for s in transcript(api, rid, role="author")["segments"]}
    assert "人才" not in str(seen)
    assert seen[tail["id"]]["text"] == "[restricted]"
    assert seen[head["id"]]["text"] == "钱要到位，"


def test_a_split_is_listed_not_lost_when_the_recording_is_transcribed_again(
        api, tmp_path: Path) -> None:
    rid, segs = _setup(api, tmp_path)
    split(api, segs[1]["id"], {"offset": 5, "speaker": "SPEAKER_01"})
    add_transcript(api, rid, [(9.0, 9.8, "SPEAKER_01", "你好。"),
                              (10.0, 12.2, "SPEAKER_00", "钱要到位，人才才会来。"),
                              (12.5, 13.5, "SPEAKER_00", "对吧。")])
    with Session(api.engine) as session:
        v1, v2 = session.exec(select(Transcript).where(Transcript.recording_id == rid)
                              .order_by(col(Transcript.version))).all()
        carry_corrections(session, previous=v1, new=v2)
        session.commit()
        session.refresh(v2)
        assert v2.carried == 0
        conflicts = v2.conflicts or []
        assert sorted(c["old"] for c in conflicts) == ["人才才会来。", "钱要到位，"]
        assert all("cuts this passage differently" in c["reason"] for c in conflicts)
        assert len(session.exec(select(Segment).where(Segment.transcript_id == v2.id)).all()) == 3


# --------------------------------------------------------------------- real audio, Whisper

@pytest.mark.slow
def test_a_split_of_estimated_words_is_aligned_and_the_cut_moves_into_the_pause(
        worker_api) -> None:
    api = worker_api
    body = upload(api, PYANNOTE_SAMPLE, {"title": "Telephone sample", "language": "en"}).json()
    job = wait_job(api, body["job"]["id"], {"succeeded", "failed"})
    assert job["state"] == "succeeded", job
    rid = body["recording"]["id"]
    segs = transcript(api, rid, role="editor")["segments"]
    seg = max(segs, key=lambda s: len(s["words"]))
    words = seg["words"]
    assert len(words) >= 6 and seg["words_timed"] == "asr"
    # The largest pause between two words in the middle half of the segment.
    k = max(range(len(words) // 4, 3 * len(words) // 4),
            key=lambda i: words[i]["start"] - words[i - 1]["end"])
    truth = (words[k - 1]["end"] + words[k]["start"]) / 2
    # As an import before its alignment: the same text with estimated words.
    from service.crud.corrections import retime_words

    with Session(api.engine) as session:
        row = session.get(Segment, seg["id"])
        assert row is not None
        row.words = retime_words(row.text, row.start, row.end)
        row.words_timed = "estimated"
        session.add(row)
        session.commit()
        text = row.text
    head_text = " ".join(w["text"].strip() for w in words[:k])
    offset = len(head_text) + 1
    assert text[:offset].strip() == head_text, (text, head_text)
    r = split(api, seg["id"], {"offset": offset, "speaker": "SPEAKER_09"})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["align_job_id"] and answer["segments"][0]["words_timed"] == "estimated"
    job = wait_job(api, answer["align_job_id"], {"succeeded", "failed"})
    assert job["state"] == "succeeded", job
    after = {s["id"]: s for s in transcript(api, rid, role="editor")["segments"]}
    head, tail = (after[s["id"]] for s in answer["segments"])
    assert head["words_timed"] == tail["words_timed"] == "aligned"
    assert head["end"] == tail["start"]
    assert abs(head["end"] - truth) <= 0.3, (head["end"], truth)
    starts = [w["start"] for w in head["words"] + tail["words"]]
    assert max(abs(a - w["start"]) for a, w in zip(starts, words, strict=True)) <= 0.3
    assert tail["speaker"] == "SPEAKER_09"
