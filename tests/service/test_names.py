"""Names, not ids (issue 17 items 7, 8, 9): what the API shows a person names things.

Responses that carry ``recording_id``, ``person_id`` or ``chapter_id`` for display carry
the recording's title, the person's name or the chapter's number and title beside it;
a quote is never linked to a chapter nobody chose; a recording's speakers are those of
its current transcript version. On SQLite and PostgreSQL (the ``api`` fixture).
"""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session, select

from service.crud.transcripts import origin
from service.models.quotes import ChapterQuote
from tests.factories import add_transcript, name_speakers, person, small_book

VTT = """WEBVTT

00:00.000 --> 00:03.000
<v 主持人>你好，欢迎来到节目。

00:03.000 --> 00:06.000
<v 闫俊杰>谢谢邀请。
"""


def test_a_link_needs_a_chapter(api, tmp_path: Path) -> None:
    """The API refuses a link without a chapter, whatever a page leaves the menu at."""
    ids = small_book(api, tmp_path)
    with Session(api.engine) as session:
        before = len(session.exec(select(ChapterQuote)).all())
    body = {"quote_id": ids["q_yao"], "usage": "drafted"}
    # What a form sends when its menu has no chapter chosen: an empty or non-number id.
    for path in ("/api/v1/chapters//quotes", "/api/v1/chapters/undefined/quotes",
                 "/api/v1/chapters/null/quotes"):
        r = api.client.post(path, json=body, headers=api.headers("author"))
        assert r.status_code in (404, 422), (path, r.status_code, r.text)
    r = api.client.post("/api/v1/chapters/999999/quotes", json=body,
                        headers=api.headers("author"))
    assert r.status_code == 404 and "chapter" in r.json()["detail"].lower()
    with Session(api.engine) as session:
        assert len(session.exec(select(ChapterQuote)).all()) == before
    # A chosen chapter links, and the answer names it.
    r = api.client.post(f"/api/v1/chapters/{ids['ch12']}/quotes", json=body,
                        headers=api.headers("author"))
    assert r.status_code == 201, r.text
    assert r.json()["chapter_label"] == "第十二章 从科学家到CEO：角色的痛苦迁徙"


def test_responses_name_recordings_people_and_chapters(api, tmp_path: Path) -> None:
    ids = small_book(api, tmp_path)
    ed = api.headers("editor")
    quote = api.client.get(f"/api/v1/quotes/{ids['q_talent']}", headers=ed).json()
    assert quote["recording_title"] == "罗永浩对谈闫俊杰"
    assert quote["person_name"] == "闫俊杰"
    assert [(c["chapter_id"], c["chapter_label"]) for c in quote["chapters"]] == [
        (ids["ch5"], "第五章 路径选择：为何是“模型+产品”双轮驱动？")]
    listed = api.client.get("/api/v1/quotes", params={"chapter_id": ids["ch12"]},
                            headers=api.headers("author")).json()["data"]
    assert {q["recording_title"] for q in listed} == {"罗永浩对谈闫俊杰"}
    assert all(c["chapter_label"] for q in listed for c in q["chapters"])

    restrictions = api.client.get(f"/api/v1/recordings/{ids['r_inv']}/restrictions",
                                  headers=ed).json()["data"]
    assert [r["recording_title"] for r in restrictions] == ["早期投资人访谈"]
    r = api.client.post(f"/api/v1/recordings/{ids['r_yao']}/restrictions",
                        json={"start": 1, "end": 2, "level": "background"}, headers=ed)
    assert r.status_code == 201 and r.json()["recording_title"] == "张小珺商业访谈录：姚顺雨"

    scoped = api.client.get(f"/api/v1/consents/{ids['c_luo']}", headers=ed).json()
    assert (scoped["person_name"], scoped["recording_title"]) == ("罗永浩", "罗永浩对谈闫俊杰")
    general = api.client.get(f"/api/v1/consents/{ids['c_yan']}", headers=ed).json()
    assert general["recording_id"] is None and general["recording_title"] is None

    report = api.client.get(f"/api/v1/people/{ids['yan']}/report", headers=ed).json()
    assert {q["recording_title"] for q in report["quotes"]} == {"罗永浩对谈闫俊杰"}

    jobs = api.client.get("/api/v1/jobs", params={"recording_id": ids["r_inv"]},
                          headers=ed).json()["data"]
    assert jobs and all(j["recording_title"] == "早期投资人访谈" for j in jobs)
    job = api.client.get(f"/api/v1/jobs/{jobs[0]['id']}", headers=ed).json()
    assert job["recording_title"] == "早期投资人访谈"

    tr = api.client.get(f"/api/v1/recordings/{ids['r_luo']}/transcript",
                        headers=api.headers("author")).json()
    assert tr["recording_title"] == "罗永浩对谈闫俊杰"
    assert {(s["label"], s["name"]) for s in tr["speakers"]} == {
        ("SPEAKER_00", "罗永浩"), ("SPEAKER_01", "闫俊杰")}


def test_speakers_are_those_of_the_current_version(api, tmp_path: Path) -> None:
    """A WebVTT import after a machine run: its own labels, not every version's."""
    from tests.factories import create_recording

    yan, host = person(api, "闫俊杰"), person(api, "主持人")
    rid = create_recording(api, tmp_path, "两个版本", [(yan, "interviewee")], seconds=8.0)
    add_transcript(api, rid, [(0.0, 3.0, "SPEAKER_00", "你好"),
                              (3.0, 6.0, "SPEAKER_01", "谢谢")], backend="faster-whisper")
    name_speakers(api, rid, {"SPEAKER_01": yan})
    r = api.client.post(f"/api/v1/recordings/{rid}/transcript", content=VTT.encode(),
                        headers=api.headers("researcher") | {"Content-Type": "text/vtt"})
    assert r.status_code in (200, 201), r.text
    current = api.client.get(f"/api/v1/recordings/{rid}/transcript",
                             headers=api.headers("researcher")).json()
    assert current["version"] == 2 and current["versions"] == [1, 2]
    assert current["origin"] == "imported from WebVTT"
    assert [(s["label"], s["name"]) for s in current["speakers"]] == [
        ("主持人", "主持人"), ("闫俊杰", "闫俊杰")]
    recording = api.client.get(f"/api/v1/recordings/{rid}",
                               headers=api.headers("researcher")).json()
    assert sorted(s["label"] for s in recording["speakers"]) == ["主持人", "闫俊杰"]
    listed = api.client.get("/api/v1/recordings", params={"q": "两个版本"},
                            headers=api.headers("researcher")).json()["data"]
    assert sorted(s["label"] for s in listed[0]["speakers"]) == ["主持人", "闫俊杰"]
    # The older version still reads with its own labels and names.
    old = api.client.get(f"/api/v1/recordings/{rid}/transcript", params={"version": 1},
                         headers=api.headers("researcher")).json()
    assert [(s["label"], s["name"]) for s in old["speakers"]] == [
        ("SPEAKER_00", None), ("SPEAKER_01", "闫俊杰")]
    assert old["origin"] == "transcribed by Whisper test"
    assert host


def test_origin_in_words() -> None:
    assert origin("import", "vtt import") == "imported from WebVTT"
    assert origin("import", "srt import") == "imported from SRT"
    assert origin("import", "json import") == "imported from Sourcebook JSON"
    assert origin("import", "播客官网字幕") == "imported from 播客官网字幕"
    assert origin("import", "") == "imported"
    assert origin("faster-whisper", "large-v3") == "transcribed by Whisper large-v3"
    assert origin("openai-whisper", "tiny.en", corrected=True) == \
        "transcribed by Whisper tiny.en, corrected"


def test_chapter_labels_name_chapters_as_the_outline_did() -> None:
    """An imported outline stores 第七章 as number "7"; people read 第七章 again."""
    from service.crud.chapters import chapter_label
    from service.models.chapters import Chapter, ChapterKind

    assert chapter_label(Chapter(number="7", title="技术豪赌")) == "第七章 技术豪赌"
    assert chapter_label(Chapter(number="16", title="终章")) == "第十六章 终章"
    assert chapter_label(Chapter(number="2", title="启航——非共识的创立",
                                 kind=ChapterKind.part)) == "第二编 启航——非共识的创立"
    assert chapter_label(Chapter(number="3", title="The Bet")) == "Chapter 3 The Bet"
    assert chapter_label(Chapter(number="2.3", title="痛苦洞察",
                                 kind=ChapterKind.section)) == "2.3 痛苦洞察"
    assert chapter_label(Chapter(number="第五章", title="路径选择")) == "第五章 路径选择"
    assert chapter_label(Chapter(number=None, title="开篇")) == "开篇"
