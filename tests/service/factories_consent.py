"""Factories for the consent tests: rows the quotes/chapters API will make, made directly.

Quotes, chapters and their links are written straight to the database so that these
tests do not depend on the chapters-and-quotes routes; people, recordings and consent
records go through the API like a client would.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from service.models.chapters import Chapter, ChapterKind
from service.models.quotes import ChapterQuote, Quote, Usage
from service.models.recordings import Speaker
from tests.factories import add_transcript, make_tone, person_payload, upload

_freq = itertools.count(300, 7)


def create_person(api: Any, name: str, **kw: Any) -> int:
    r = api.client.post("/api/v1/people", json=person_payload(name, **kw),
                        headers=api.headers("researcher"))
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def create_recording(api: Any, tmp_path: Path, title: str,
                     participants: Sequence[tuple[int, str]] = (), seconds: float = 2.0) -> int:
    """A real upload (a tone with a unique pitch, so its sha256 is new)."""
    freq = next(_freq)
    path = make_tone(tmp_path / f"rec-{freq}.wav", seconds=seconds, freq=freq)
    meta = {"title": title, "source": "interview", "language": "zh",
            "participants": [{"person_id": p, "role": role} for p, role in participants]}
    r = upload(api, path, meta)
    assert r.status_code == 201, r.text
    return int(r.json()["recording"]["id"])


def name_speakers(api: Any, recording_id: int, mapping: dict[str, int]) -> None:
    with Session(api.engine) as session:
        for label, person_id in mapping.items():
            row = session.exec(select(Speaker).where(Speaker.recording_id == recording_id,
                                                     Speaker.label == label)).first()
            row = row or Speaker(recording_id=recording_id, label=label)
            row.person_id = person_id
            session.add(row)
        session.commit()


def add_chapter(api: Any, title: str, *, number: str | None = None,
                kind: ChapterKind = ChapterKind.chapter, parent_id: int | None = None,
                position: int = 0) -> int:
    with Session(api.engine) as session:
        c = Chapter(title=title, number=number, kind=kind, parent_id=parent_id,
                    position=position)
        session.add(c)
        session.commit()
        assert c.id is not None
        return c.id


def add_quote(api: Any, recording_id: int, start: float, end: float, *,
              person_id: int | None, speaker: str, verbatim: str,
              edited: str | None = None) -> int:
    with Session(api.engine) as session:
        q = Quote(recording_id=recording_id, transcript_version=1, start=start, end=end,
                  speaker=speaker, person_id=person_id, verbatim=verbatim, edited=edited)
        session.add(q)
        session.commit()
        assert q.id is not None
        return q.id


def link(api: Any, chapter_id: int, quote_id: int, usage: Usage = Usage.drafted) -> None:
    with Session(api.engine) as session:
        session.add(ChapterQuote(chapter_id=chapter_id, quote_id=quote_id, usage=usage))
        session.commit()


def consent(api: Any, role: str = "editor", **body: Any) -> dict[str, Any]:
    body = {"status": "granted", "form": "signed", "attribution": "on_record",
            "approval_required": False} | body
    r = api.client.post("/api/v1/consents", json=body, headers=api.headers(role))
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


def restrict(api: Any, recording_id: int, start: float, end: float, level: str,
             **body: Any) -> dict[str, Any]:
    r = api.client.post(f"/api/v1/recordings/{recording_id}/restrictions",
                        json={"start": start, "end": end, "level": level} | body,
                        headers=api.headers("editor"))
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


# The made-up book: a slice of the outline in seeds/000 with remarks from seeds/001.
LUO_Q = "大厂用两三倍薪资挖人的时候，你们是怎么留住核心人才的？"
YAN_TALENT = "首先钱要到位，但对最优秀的人来说，钱可能排在第二位。"
YAN_TOKENS = "以前AI的回答只服务于单个用户，Token消耗是单向的。"
YAN_TRADEOFF = "核心就是想明白“不能啥都想要”。把一小部分事做好、做到最好，已经非常不容易了。"
YAN_JOY = "最大的乐是认识了很多优秀的人，能够跟他们一起合作一起共事。"
INVESTOR_TERMS = "天使轮的条款其实是在一家咖啡馆里谈下来的，估值比外面传的低。"
INVESTOR_OFF = "这部分别写：当时另一家基金最后一刻撤资了。"
YAO_FLYWHEEL = "大多数公司还没有形成数据飞轮；他们依赖模型变好。"


def small_book(api: Any, tmp_path: Path) -> dict[str, int]:
    """Three interviews, four people, five chapters, eight quote uses, mixed consent."""
    ids: dict[str, int] = {}
    ids["yan"] = create_person(api, "闫俊杰", organisation="MiniMax")
    ids["luo"] = create_person(api, "罗永浩", kind="journalist", organisation="交个朋友")
    ids["investor"] = create_person(api, "李明远", kind="investor", organisation="某基金")
    ids["yao"] = create_person(api, "姚顺雨", kind="researcher", organisation=None)

    ids["r_luo"] = create_recording(api, tmp_path, "罗永浩对谈闫俊杰",
                                    [(ids["luo"], "interviewer"), (ids["yan"], "interviewee")])
    add_transcript(api, ids["r_luo"], [
        (0.0, 6.0, "SPEAKER_00", LUO_Q), (6.0, 14.0, "SPEAKER_01", YAN_TALENT),
        (14.0, 22.0, "SPEAKER_01", YAN_TOKENS), (22.0, 31.0, "SPEAKER_01", YAN_TRADEOFF),
        (31.0, 38.0, "SPEAKER_01", YAN_JOY)])
    name_speakers(api, ids["r_luo"], {"SPEAKER_00": ids["luo"], "SPEAKER_01": ids["yan"]})

    ids["r_inv"] = create_recording(api, tmp_path, "早期投资人访谈",
                                    [(ids["investor"], "interviewee")])
    add_transcript(api, ids["r_inv"], [(0.0, 9.0, "SPEAKER_00", INVESTOR_TERMS),
                                       (60.0, 70.0, "SPEAKER_00", INVESTOR_OFF)])
    name_speakers(api, ids["r_inv"], {"SPEAKER_00": ids["investor"]})

    ids["r_yao"] = create_recording(api, tmp_path, "张小珺商业访谈录：姚顺雨",
                                    [(ids["yao"], "interviewee")])
    add_transcript(api, ids["r_yao"], [(0.0, 8.0, "SPEAKER_01", YAO_FLYWHEEL)])
    name_speakers(api, ids["r_yao"], {"SPEAKER_01": ids["yao"]})

    ids["part2"] = add_chapter(api, "启航——非共识的创立", number="第二编",
                               kind=ChapterKind.part, position=2)
    ids["ch4"] = add_chapter(api, "黄金搭档与第一张蓝图", number="第四章",
                             parent_id=ids["part2"], position=1)
    ids["ch5"] = add_chapter(api, "路径选择：为何是“模型+产品”双轮驱动？", number="第五章",
                             parent_id=ids["part2"], position=2)
    ids["part4"] = add_chapter(api, "蜕变——创始人的内在演进", number="第四编",
                               kind=ChapterKind.part, position=4)
    ids["ch12"] = add_chapter(api, "从科学家到CEO：角色的痛苦迁徙", number="第十二章",
                              parent_id=ids["part4"], position=1)

    ids["q_talent"] = add_quote(api, ids["r_luo"], 6.0, 14.0, person_id=ids["yan"],
                                speaker="SPEAKER_01", verbatim=YAN_TALENT)
    ids["q_tokens"] = add_quote(api, ids["r_luo"], 14.0, 22.0, person_id=ids["yan"],
                                speaker="SPEAKER_01", verbatim=YAN_TOKENS)
    ids["q_tradeoff"] = add_quote(api, ids["r_luo"], 22.0, 31.0, person_id=ids["yan"],
                                  speaker="SPEAKER_01", verbatim=YAN_TRADEOFF)
    ids["q_joy"] = add_quote(api, ids["r_luo"], 31.0, 38.0, person_id=ids["yan"],
                             speaker="SPEAKER_01", verbatim=YAN_JOY)
    ids["q_luo"] = add_quote(api, ids["r_luo"], 0.0, 6.0, person_id=ids["luo"],
                             speaker="SPEAKER_00", verbatim=LUO_Q)
    ids["q_terms"] = add_quote(api, ids["r_inv"], 0.0, 9.0, person_id=ids["investor"],
                               speaker="SPEAKER_00", verbatim=INVESTOR_TERMS)
    ids["q_off"] = add_quote(api, ids["r_inv"], 60.0, 70.0, person_id=ids["investor"],
                             speaker="SPEAKER_00", verbatim=INVESTOR_OFF)
    ids["q_yao"] = add_quote(api, ids["r_yao"], 0.0, 8.0, person_id=ids["yao"],
                             speaker="SPEAKER_01", verbatim=YAO_FLYWHEEL)
    link(api, ids["ch4"], ids["q_terms"], Usage.drafted)
    link(api, ids["ch4"], ids["q_off"], Usage.candidate)
    link(api, ids["ch5"], ids["q_talent"], Usage.published)
    link(api, ids["ch5"], ids["q_tokens"], Usage.drafted)
    link(api, ids["ch5"], ids["q_yao"], Usage.candidate)
    link(api, ids["ch12"], ids["q_tradeoff"], Usage.drafted)
    link(api, ids["ch12"], ids["q_joy"], Usage.drafted)
    link(api, ids["ch12"], ids["q_luo"], Usage.candidate)

    # Consent as the editors recorded it.
    ids["c_yan"] = consent(api, person_id=ids["yan"], approval_required=True,
                           signed_at="2025-03-01")["id"]
    ids["c_luo"] = consent(api, person_id=ids["luo"], recording_id=ids["r_luo"],
                           form="verbal-on-tape")["id"]
    ids["c_inv"] = consent(api, person_id=ids["investor"], attribution="background",
                           descriptor="一位早期投资人")["id"]
    ids["c_yao"] = consent(api, person_id=ids["yao"], status="pending")["id"]
    ids["x_off"] = restrict(api, ids["r_inv"], 55.0, 75.0, "off_record",
                            reason="asked during the interview")["id"]
    ids["x_embargo"] = restrict(api, ids["r_luo"], 14.0, 22.0, "embargo",
                                until="2026-09-01")["id"]
    for quote_id, body in ((ids["q_talent"], {"decision": "approved"}),
                           (ids["q_tradeoff"], {"decision": "requested"}),
                           (ids["q_joy"], {"decision": "rejected"})):
        r = api.client.post(f"/api/v1/quotes/{quote_id}/approval", json=body,
                            headers=api.headers("editor"))
        assert r.status_code == 201, r.text
    return ids
