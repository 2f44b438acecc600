"""Words keep their time (issue 15), through a real server with its embedded worker:
a correction and an import are aligned to the audio by a queued job, and a quote of one
aligned word is that word. Real audio (the pyannote sample), whisper tiny.en.
"""

from __future__ import annotations

import re
import statistics
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from service.models.transcripts import Revision
from tests.factories import PYANNOTE_SAMPLE, add_transcript, make_tone, upload
from tests.service.test_jobs import wait_job
from tests.service.test_jobs import worker_api as worker_api  # a fixture

pytestmark = pytest.mark.usefixtures("models_dir")

STM = PYANNOTE_SAMPLE.with_suffix(".stm")


def _transcribed(api: Any) -> tuple[int, dict[str, Any]]:
    body = upload(api, PYANNOTE_SAMPLE, {"title": "Telephone sample", "language": "en"}).json()
    job = wait_job(api, body["job"]["id"], {"succeeded", "failed"})
    assert job["state"] == "succeeded", job
    rid = body["recording"]["id"]
    return rid, _transcript(api, rid)


def _transcript(api: Any, rid: int) -> dict[str, Any]:
    r = api.client.get(f"/api/v1/recordings/{rid}/transcript", headers=api.headers("editor"))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _norm(word: str) -> str:
    return re.sub(r"[^\w']", "", word.lower())


def test_a_corrected_word_is_aligned_and_the_others_keep_their_times(worker_api) -> None:
    api = worker_api
    rid, tr = _transcribed(api)
    seg = max(tr["segments"], key=lambda s: len(s["words"]))
    words = seg["words"]
    assert len(words) >= 6 and seg["words_timed"] == "asr"
    k = len(words) // 2
    changed = [w["text"].strip() for w in words]
    changed[k] = "zebra" if _norm(changed[k]) != "zebra" else "giraffe"
    r = api.client.patch(f"/api/v1/segments/{seg['id']}", json={"text": " ".join(changed)},
                         headers=api.headers("researcher"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["words_timed"] == "estimated" and body["align_job_id"]
    job = wait_job(api, body["align_job_id"], {"succeeded", "failed"})
    assert job["state"] == "succeeded" and job["kind"] == "align" and job["progress"] == 1.0
    after = next(s for s in _transcript(api, rid)["segments"] if s["id"] == seg["id"])
    assert after["words_timed"] == "aligned"
    assert [_norm(w["text"]) for w in after["words"]] == [_norm(w) for w in changed]
    moved = [abs(a["start"] - b["start"]) for i, (a, b) in
             enumerate(zip(after["words"], words, strict=True)) if i != k]
    assert max(moved) <= 0.25, moved
    # The recording's status is untouched by an alignment.
    rec = api.client.get(f"/api/v1/recordings/{rid}", headers=api.headers("editor")).json()
    assert rec["status"] == "transcribed"


def _vtt_from_stm() -> bytes:
    def ts(t: float) -> str:
        return f"{int(t // 3600):02d}:{int(t % 3600 // 60):02d}:{t % 60:06.3f}"
    lines = ["WEBVTT", ""]
    for row in STM.read_text().splitlines():
        _, _, speaker, start, end, *text = row.split()
        lines += [f"{ts(float(start))} --> {ts(float(end))}", f"<v {speaker}>{' '.join(text)}",
                  ""]
    return "\n".join(lines).encode()


def test_an_imported_vtt_is_aligned_and_one_word_can_be_quoted(worker_api) -> None:
    api = worker_api
    rid, asr = _transcribed(api)
    r = api.client.post(f"/api/v1/recordings/{rid}/transcript", content=_vtt_from_stm(),
                        headers=api.headers("researcher") | {"content-type": "text/vtt"})
    assert r.status_code in (200, 201), r.text
    imported = r.json()
    assert imported["align_job_id"] and imported["version"] == 2
    assert all(s["words_timed"] == "estimated" for s in imported["segments"])
    job = wait_job(api, imported["align_job_id"], {"succeeded", "failed"})
    assert job["state"] == "succeeded", job
    tr = _transcript(api, rid)
    aligned = [s for s in tr["segments"] if s["words_timed"] == "aligned"]
    assert len(aligned) >= 0.8 * len(tr["segments"]), [s["words_timed"] for s in tr["segments"]]
    # Each aligned word starts near where the recogniser heard the same word.
    heard = [(_norm(w["text"]), w["start"]) for s in asr["segments"] for w in s["words"]]
    errors = []
    for s in aligned:
        for w in s["words"]:
            near = [abs(w["start"] - t) for text, t in heard
                    if text == _norm(w["text"]) and abs(w["start"] - t) < 2.0]
            if near:
                errors.append(min(near))
    assert len(errors) >= 20 and statistics.median(errors) <= 0.15, errors
    # Quote exactly one word of an imported cue.
    seg = max(aligned, key=lambda s: len(s["words"]))
    word = seg["words"][len(seg["words"]) // 2]
    r = api.client.post("/api/v1/quotes", json={"recording_id": rid, "start": word["start"],
                                                 "end": word["end"]},
                        headers=api.headers("author"))
    assert r.status_code == 201, r.text
    quote = r.json()
    assert _norm(quote["verbatim"]) == _norm(word["text"]), (quote["verbatim"], word)
    assert quote["whole_segments"] is None


def test_a_quote_over_estimated_words_is_whole_segment_and_says_why(api,
                                                                     tmp_path: Path) -> None:
    # An import without word times, on a recording not processed yet: nothing to align
    # to, so its words stay estimated.
    r = upload(api, make_tone(tmp_path / "tone.wav", seconds=12.0, freq=523),
               {"title": "未处理的录音"})
    rid = r.json()["recording"]["id"]
    add_transcript(api, rid, [(0.0, 6.0, "SPEAKER_00", "我们很早就决定做长期主义。"),
                              (6.0, 12.0, "SPEAKER_01", "后来的事情大家都知道了。")])
    seg = _transcript(api, rid)["segments"][0]
    assert seg["words_timed"] == "estimated"
    q = api.client.post("/api/v1/quotes", json={"recording_id": rid, "start": 2.0,
                                                 "end": 3.0}, headers=api.headers("author"))
    assert q.status_code == 201, q.text
    body = q.json()
    assert body["verbatim"] == "我们很早就决定做长期主义。"
    assert "estimated word times" in body["whole_segments"] and "0.0 s" in body["whole_segments"]


def test_corrections_are_carried_onto_a_new_transcription(worker_api) -> None:
    api = worker_api
    rid, tr = _transcribed(api)
    long_ones = sorted(tr["segments"], key=lambda s: -len(s["words"]))
    fixed, relabelled, spoiled = long_ones[0], long_ones[1], long_ones[2]
    h = api.headers("researcher")
    text = fixed["text"].strip() + " indeed"
    assert api.client.patch(f"/api/v1/segments/{fixed['id']}", json={"text": text},
                            headers=h).status_code == 200
    other = "SPEAKER_00" if relabelled["speaker"] != "SPEAKER_00" else "SPEAKER_01"
    assert api.client.patch(f"/api/v1/segments/{relabelled['id']}", json={"speaker": other},
                            headers=h).status_code == 200
    assert api.client.patch(f"/api/v1/segments/{spoiled['id']}",
                            json={"text": spoiled["text"] + " right"}, headers=h).status_code == 200
    # As if the recogniser had heard something else there the first time: the new
    # version's words then differ from what that correction started from.
    with Session(api.engine) as session:
        rev = session.exec(select(Revision).where(Revision.segment_id == spoiled["id"])).one()
        rev.before_text = "words nobody said"
        session.add(rev)
        session.commit()
    r = api.client.post(f"/api/v1/recordings/{rid}/transcribe", json={},
                        headers=api.headers("researcher"))
    assert r.status_code == 202, r.text
    assert wait_job(api, r.json()["id"], {"succeeded", "failed"})["state"] == "succeeded"
    new = _transcript(api, rid)
    assert new["version"] == 2 and new["carried"] == 2, new["conflicts"]
    assert [c["old"] for c in new["conflicts"]] == [spoiled["text"] + " right"]
    assert "other words" in new["conflicts"][0]["reason"]
    by_start = {round(s["start"], 1): s for s in new["segments"]}
    carried = by_start[round(fixed["start"], 1)]
    assert carried["text"] == text and carried["edited"]
    assert by_start[round(relabelled["start"], 1)]["speaker"] == other
    revisions = api.client.get(f"/api/v1/segments/{carried['id']}/revisions",
                               headers=api.headers("editor")).json()["data"]
    assert revisions[0]["after_text"] == text and revisions[0]["user"] == "researcher"
    # The replayed text is aligned by a job the worker queued after storing.
    jobs = api.client.get(f"/api/v1/jobs?recording_id={rid}",
                          headers=api.headers("researcher")).json()["data"]
    align = [j for j in jobs if j["kind"] == "align" and j["created_at"] > r.json()["created_at"]]
    assert align
    wait_job(api, align[0]["id"], {"succeeded"})
    carried = next(s for s in _transcript(api, rid)["segments"] if s["id"] == carried["id"])
    assert carried["words_timed"] == "aligned"
    page = api.client.get(f"/recordings/{rid}", headers=api.headers("researcher")).text
    assert "2 correction(s) carried over" in page and "1 could not be" in page
    assert "other words" in page and 'class="badge timing"' in page
