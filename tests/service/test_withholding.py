"""The one rule of what an author may read, walked over every route.

A recording holds a host's public questions and a guest's answers. The guest's answers
are withheld by one of five mechanisms (an embargoed span, an off-the-record,
deep-background or general off-the-record agreement, a withdrawn agreement). An editor
quotes an answer into a chapter and a researcher corrects one. Then every GET route the
app has (API and pages, read from the app itself, so a new route is walked as soon as it
exists) and the read-like POSTs are called as an author, and no answer may appear.
The editor's view of the same routes shows the answers, so the walk cannot pass by
reading nothing.
"""

from __future__ import annotations

import io
import re
import wave
import zipfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlmodel import Session
from starlette.routing import Route

from service.crud.transcripts import SegmentIn, add_version
from service.models.recordings import Recording
from service.web import book, pages
from tests import factories as f

HOST_Q1 = "当时你们为什么决定做通用大模型？"
GUEST_A1 = "因为我们算过账，闭源路线三年内烧掉八十亿。"
HOST_Q2 = "那后来融资的过程顺利吗？"
GUEST_A2 = "并不顺利，领投方在签约前一晚改了估值条款。"
SECRET_TERMS = ("八十亿", "闭源路线", "领投方", "估值条款", "烧掉")
#: (start, end, label, text); the guest is SPEAKER_01.
SEGMENTS = [(0.0, 5.0, "SPEAKER_00", HOST_Q1), (5.0, 12.0, "SPEAKER_01", GUEST_A1),
            (12.0, 16.0, "SPEAKER_00", HOST_Q2), (16.0, 24.0, "SPEAKER_01", GUEST_A2)]
MECHANISMS = ["embargo", "off_record", "deep_background", "withdrawn", "general_off_record"]
PATH_PARAM = re.compile(r"{(\w+)(?::\w+)?}")


def _words(start: float, end: float, text: str) -> list[dict[str, Any]]:
    step = (end - start) / len(text)
    return [{"start": start + i * step, "end": start + (i + 1) * step, "text": ch,
             "probability": 0.9} for i, ch in enumerate(text)]


def _store_version(api: Any, rid: int) -> None:
    with Session(api.engine) as session:
        add_version(session, recording_id=rid, backend="import", model="test", language="zh",
                    created_by=None, segments=[
                        SegmentIn(start=a, end=b, speaker=label, text=t, language="zh",
                                  words=_words(a, b, t)) for a, b, label, t in SEGMENTS])
        session.commit()


def _normalised(api: Any, rid: int) -> None:
    """Let the stored original (a 16 kHz mono WAV) stand for the worker's normalised copy."""
    with Session(api.engine) as session:
        rec = session.get(Recording, rid)
        assert rec is not None
        rec.normalised_path = rec.media_path
        session.add(rec)
        session.commit()


def _withhold(api: Any, mechanism: str, rid: int, guest: int) -> None:
    if mechanism == "embargo":
        until = (date.today() + timedelta(days=90)).isoformat()
        f.restrict_via_api(api, rid, 5.0, 12.0, "embargo", until=until)
        f.restrict_via_api(api, rid, 16.0, 24.0, "embargo", until=until)
    elif mechanism in ("off_record", "deep_background"):
        f.consent(api, person_id=guest, recording_id=rid, attribution=mechanism)
    elif mechanism == "general_off_record":
        f.consent(api, person_id=guest, attribution="off_record")
    else:
        agreement = f.consent(api, person_id=guest, recording_id=rid)
        r = api.client.post(f"/api/v1/consents/{agreement['id']}/withdraw",
                            json={"reason": "changed their mind"}, headers=api.headers("editor"))
        assert r.status_code == 200, r.text


@pytest.fixture
def world(api: Any, tmp_path: Path) -> dict[str, Any]:
    host = f.person(api, "张记者", kind="journalist")
    guest = f.person(api, "王创始人", kind="founder")
    rid = f.create_recording(api, tmp_path, "创始人第二次访谈",
                             [(host, "interviewer"), (guest, "interviewee")], seconds=26.0)
    _store_version(api, rid)
    _store_version(api, rid)
    _normalised(api, rid)
    f.name_speakers(api, rid, {"SPEAKER_00": host, "SPEAKER_01": guest})
    editor = api.headers("editor")
    chapter = f.add_chapter(api, "融资风波", number="第五章")
    quote = api.client.post("/api/v1/quotes", json={"recording_id": rid, "start": 16.0,
                                                     "end": 24.0}, headers=editor)
    assert quote.status_code == 201 and "估值条款" in quote.json()["verbatim"], quote.text
    qid = quote.json()["id"]
    f.link(api, chapter, qid)
    transcript = api.client.get(f"/api/v1/recordings/{rid}/transcript", headers=editor).json()
    sid = next(s["id"] for s in transcript["segments"] if s["start"] == 5.0)
    r = api.client.patch(f"/api/v1/segments/{sid}", json={"text": GUEST_A1 + "（更正）"},
                         headers=api.headers("researcher"))
    assert r.status_code == 200, r.text
    return {"recording_id": rid, "person_id": guest, "host": host, "quote_id": qid,
            "chapter_id": chapter, "segment_id": sid, "guest": guest}


def _bodies(api: Any, role: str, world: dict[str, Any]) -> dict[str, str]:
    """Every GET route (API and pages) and the read-like POSTs, as ``role`` sees them."""
    headers = api.headers(role)
    values = {"recording_id": world["recording_id"], "person_id": world["guest"],
              "quote_id": world["quote_id"], "chapter_id": world["chapter_id"],
              "segment_id": world["segment_id"]}
    out: dict[str, str] = {}
    for path in _get_paths(api):
        names = PATH_PARAM.findall(path)
        if any(n not in values for n in names):
            continue  # ids of other kinds (jobs, users, agreements) hold no speech
        url = PATH_PARAM.sub(lambda m: str(values[m.group(1)]), path)
        queries: list[dict[str, Any]] = [{}]
        if url.endswith("/export"):
            queries = [{"format": fmt, "version": v}
                       for fmt in ("txt", "md", "srt", "vtt", "json", "docx") for v in (1, 2)]
        elif "search" in url:
            queries = [{"q": term} for term in SECRET_TERMS]
        elif url.endswith("/transcript") or "/recordings/" in url:
            queries = [{}, {"version": 1}]
        for query in queries:
            r = api.client.get(url, params=query, headers=headers)
            # A search page echoes its query; a leaked hit shows the rest of its segment.
            out[f"GET {url} {query}"] = _text(r).replace(query.get("q", "\0"), "")
    # The draft quotes part of an answer; the response echoes the draft's own words, and a
    # leaked match would show the rest of the answer (估值条款).
    drafted = "并不顺利，领投方在签约前一晚改了"
    verify = api.client.post(
        f"/api/v1/chapters/{world['chapter_id']}/verify",
        content=f"他说：“{drafted}”\n".encode(),
        headers=headers | {"content-type": "text/markdown"})
    out["POST verify"] = _text(verify).replace(drafted, "")
    for body in ({"recording_id": world["recording_id"], "start": 5.0, "end": 12.0},
                 {"recording_id": world["recording_id"], "start": 17.0, "end": 18.0}):
        out[f"POST quotes {body}"] = _text(api.client.post("/api/v1/quotes", json=body,
                                                           headers=headers))
    return out


def _get_paths(api: Any) -> list[str]:
    """The API's GET paths from /openapi.json, and the pages' from their routers."""
    schema = api.client.get("/openapi.json").json()
    paths = [p for p, ops in schema["paths"].items() if "get" in ops]
    for router in (pages.router, book.router):
        paths += [r.path for r in router.routes
                  if isinstance(r, Route) and "GET" in (r.methods or ())]
    return paths


def _text(r: Any) -> str:
    if r.headers.get("content-type", "").startswith(
            "application/vnd.openxmlformats-officedocument"):
        with zipfile.ZipFile(io.BytesIO(r.content)) as z:
            return "".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())
    if r.headers.get("content-type", "").startswith(("audio/", "application/octet-stream")):
        return ""
    return str(r.content.decode("utf-8", "replace"))


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_every_route_withholds_the_guests_words_from_authors(api, world, mechanism) -> None:
    _withhold(api, mechanism, world["recording_id"], world["guest"])
    author = _bodies(api, "author", world)
    assert len(author) > 40, sorted(author)  # the walk reached the routes
    for where, text in author.items():
        for term in SECRET_TERMS:
            assert term not in text, f"{mechanism}: {where} leaks {term!r}"
    editor = "\n".join(_bodies(api, "editor", world).values())
    for term in SECRET_TERMS:
        assert term in editor, f"{mechanism}: the editor never sees {term!r}: a blind walk"
    # The host's questions stay readable to the author.
    transcript = api.client.get(f"/api/v1/recordings/{world['recording_id']}/transcript",
                                headers=api.headers("author")).json()
    texts = [s["text"] for s in transcript["segments"]]
    assert texts == [HOST_Q1, "[restricted]", HOST_Q2, "[restricted]"], mechanism


def test_an_embargo_lifts_on_its_date_and_editors_see_the_date(api, world) -> None:
    rid = world["recording_id"]
    until = date.today() + timedelta(days=30)
    f.restrict_via_api(api, rid, 16.0, 24.0, "embargo", until=until.isoformat())
    url = f"/api/v1/recordings/{rid}/transcript"
    seg = api.client.get(url, headers=api.headers("editor")).json()["segments"][3]
    assert seg["text"] == GUEST_A2
    assert seg["restricted"] == "embargo" and seg["restricted_until"] == until.isoformat()
    assert api.client.get(url, headers=api.headers("author")).json()["segments"][3][
        "text"] == "[restricted]"
    with Session(api.engine) as session:
        from service.visibility import view_of
        view = view_of(session, rid, redact=True, today=until)
        assert not view.hides(16.0, 24.0, "SPEAKER_01")  # lifted on the day it names
        view = view_of(session, rid, redact=True, today=until - timedelta(days=1))
        assert view.hides(16.0, 24.0, "SPEAKER_01")


def test_unattributed_speech_is_withheld_until_labels_are_named(api, world) -> None:
    rid = world["recording_id"]
    f.consent(api, person_id=world["guest"], recording_id=rid, attribution="off_record")
    r = api.client.put(f"/api/v1/recordings/{rid}/speakers", json={"SPEAKER_00": None},
                       headers=api.headers("researcher"))
    assert r.status_code == 200, r.text
    url = f"/api/v1/recordings/{rid}/transcript"
    texts = [s["text"] for s in api.client.get(url, headers=api.headers("author")).json()[
        "segments"]]
    # Nobody can tell yet whose voice SPEAKER_00 is: it may be the guest's.
    assert texts == ["[restricted]"] * 4
    f.name_speakers(api, rid, {"SPEAKER_00": world["host"]})
    texts = [s["text"] for s in api.client.get(url, headers=api.headers("author")).json()[
        "segments"]]
    assert texts == [HOST_Q1, "[restricted]", HOST_Q2, "[restricted]"]


def test_an_editors_quote_of_a_word_inside_a_withheld_segment_is_withheld(api, world) -> None:
    rid = world["recording_id"]
    # A1 (5-12 s) was corrected: its word times are estimates, so a restriction over its
    # last second withholds all of it, and a quote of its first word with it.
    f.restrict_via_api(api, rid, 11.0, 12.0, "off_record")
    r = api.client.post("/api/v1/quotes", json={"recording_id": rid, "start": 5.0,
                                                 "end": 5.5}, headers=api.headers("editor"))
    assert r.status_code == 201, r.text
    qid = r.json()["id"]
    assert "八十亿" in r.json()["verbatim"]
    body = api.client.get(f"/api/v1/quotes/{qid}", headers=api.headers("author")).json()
    assert body["verbatim"] == "[restricted]" and body["withheld"] == "restricted"
    seg = api.client.get(f"/api/v1/recordings/{rid}/transcript",
                         headers=api.headers("author")).json()["segments"][1]
    assert seg["text"] == "[restricted]"


def test_deleting_or_unlinking_a_withheld_quote_is_refused_like_editing(api, world) -> None:
    _withhold(api, "off_record", world["recording_id"], world["guest"])
    qid, chapter = world["quote_id"], world["chapter_id"]
    author = api.headers("author")
    assert api.client.patch(f"/api/v1/quotes/{qid}", json={"edited": "x"},
                            headers=author).status_code == 403
    r = api.client.delete(f"/api/v1/quotes/{qid}", headers=author)
    assert r.status_code == 403 and "ask an editor" in r.json()["detail"]
    r = api.client.delete(f"/api/v1/chapters/{chapter}/quotes/{qid}", headers=author)
    assert r.status_code == 403
    assert api.client.get(f"/api/v1/quotes/{qid}", headers=api.headers("editor")
                          ).json()["chapters"], "the link survived"
    assert api.client.delete(f"/api/v1/quotes/{qid}",
                             headers=api.headers("editor")).status_code == 204


def _samples(body: bytes) -> tuple[int, np.ndarray[Any, Any]]:
    with wave.open(io.BytesIO(body)) as w:
        return w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)


@pytest.mark.parametrize("mechanism", ["off_record", "embargo"])
def test_authors_hear_the_audio_with_withheld_speech_silenced(api, world, mechanism) -> None:
    rid = world["recording_id"]
    url = f"/api/v1/recordings/{rid}/audio"
    full = api.client.get(url, headers=api.headers("editor"))
    assert full.status_code == 200
    rate, original = _samples(full.content)
    assert np.abs(original[int(6 * rate):int(11 * rate)]).max() > 1000  # a tone is there
    _withhold(api, mechanism, rid, world["guest"])
    r = api.client.get(url, headers=api.headers("author"))
    assert r.status_code == 200, r.text
    rate, heard = _samples(r.content)
    assert len(heard) == len(original)
    for a, b in ((5.0, 12.0), (16.0, 24.0)):
        assert not heard[int(a * rate):int(b * rate)].any(), (a, b)
    for a, b in ((0.5, 4.5), (12.5, 15.5), (24.5, 25.5)):
        assert np.array_equal(heard[int(a * rate):int(b * rate)],
                              original[int(a * rate):int(b * rate)]), (a, b)
    # Range requests still work, on the silenced copy.
    part = api.client.get(url, headers=api.headers("author") | {"range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == r.content[:100]
    # Naming the guest's label as the host (a correction) changes what is silenced, and
    # the cached copy with it.
    if mechanism == "off_record":
        f.name_speakers(api, rid, {"SPEAKER_01": world["host"]})
        _, again = _samples(api.client.get(url, headers=api.headers("author")).content)
        assert np.array_equal(again, original)
    cached = list((api.settings.recordings_dir / ".cache" / "silenced" / str(rid)).glob("*.wav"))
    assert len(cached) <= 1


def test_the_silenced_audio_follows_the_restrictions_as_they_change(api, world) -> None:
    """Adding, lifting and replacing restrictions each give authors the matching audio
    (never a stale cached copy), one cached file at a time, and Range reads that copy."""
    rid = world["recording_id"]
    url = f"/api/v1/recordings/{rid}/audio"
    cache = api.settings.recordings_dir / ".cache" / "silenced" / str(rid)
    rate, original = _samples(api.client.get(url, headers=api.headers("editor")).content)

    def heard() -> tuple[bytes, np.ndarray[Any, Any]]:
        r = api.client.get(url, headers=api.headers("author"))
        assert r.status_code == 200, r.text
        return r.content, _samples(r.content)[1]

    def silent(audio: np.ndarray[Any, Any], a: float, b: float) -> bool:
        return not audio[int(a * rate):int(b * rate)].any()

    def intact(audio: np.ndarray[Any, Any], a: float, b: float) -> bool:
        return np.array_equal(audio[int(a * rate):int(b * rate)],
                              original[int(a * rate):int(b * rate)])

    first = f.restrict_via_api(api, rid, 5.0, 12.0, "off_record")
    body, audio = heard()
    assert silent(audio, 5.0, 12.0) and intact(audio, 12.5, 25.5)
    part = api.client.get(url, headers=api.headers("author") | {"range": "bytes=200000-200999"})
    assert part.status_code == 206 and part.content == body[200000:201000]
    assert len(list(cache.glob("*.wav"))) == 1
    # Lifted: the author hears everything again (nothing is silenced: the original file).
    assert api.client.delete(f"/api/v1/recordings/{rid}/restrictions/{first['id']}",
                             headers=api.headers("editor")).status_code == 204
    assert np.array_equal(heard()[1], original)
    # Another span: silence moves there (to the whole answer it reaches into: a segment's
    # audio is withheld whole); the copy for the old span is gone.
    f.restrict_via_api(api, rid, 16.0, 20.0, "off_record")
    _, audio = heard()
    assert silent(audio, 16.0, 24.0) and intact(audio, 0.5, 15.5) and intact(audio, 24.5, 25.5)
    assert len(list(cache.glob("*.wav"))) == 1


def test_with_real_word_times_only_the_words_near_a_withheld_span_are_withheld(api,
                                                                              world) -> None:
    rid = world["recording_id"]
    # A2 runs 16-24 s, 21 characters of 0.38 s; the span withholds its last 3 s, and
    # 0.5 s before it: the first 11 characters (ending by 20.2 s) stay readable.
    f.restrict(api, rid, 21.0, 24.0, "off_record")
    author, editor = api.headers("author"), api.headers("editor")
    seg = api.client.get(f"/api/v1/recordings/{rid}/transcript",
                         headers=author).json()["segments"][3]
    assert seg["text"] == "并不顺利，领投方在签约[restricted]", seg["text"]
    assert "".join(w["text"] for w in seg["words"]) == "并不顺利，领投方在签约"
    assert max(w["end"] for w in seg["words"]) <= 21.0 - 0.5
    assert seg["restricted"] == "off_record"
    assert api.client.get(f"/api/v1/recordings/{rid}/transcript",
                          headers=editor).json()["segments"][3]["text"] == GUEST_A2
    export = api.client.get(f"/api/v1/recordings/{rid}/transcript/export",
                            params={"format": "txt"}, headers=author).text
    assert "领投方在签约" in export and "估值条款" not in export
    # A quote of the readable words is exact; one reaching into the margin is refused.
    ok = api.client.post("/api/v1/quotes", json={"recording_id": rid, "start": 16.0,
                                                  "end": 19.0}, headers=author)
    assert ok.status_code == 201 and ok.json()["verbatim"] == "并不顺利，领投方", ok.text
    refused = api.client.post("/api/v1/quotes", json={"recording_id": rid, "start": 16.0,
                                                       "end": 21.0}, headers=author)
    assert refused.status_code == 403
    # The editor's quote of the whole answer (world's) is withheld from the author.
    body = api.client.get(f"/api/v1/quotes/{world['quote_id']}", headers=author).json()
    assert body["verbatim"] == "[restricted]"
