"""Test data, one module for every area's tests.

- media made with real ffmpeg, and uploads through the API (``upload``, ``recording``);
- people and speaker names (``person``, ``name_speakers``);
- transcripts written through the worker's own write path (``add_transcript``);
- restrictions, directly (``restrict``) or through the consent API (``restrict_via_api``);
- chapters, quotes and their links written straight to the database, and consent records
  through the API, for the book-level tests (``small_book``);
- the 周晓岚 / 林知远 conversation from the repository's own interview notes as a transcript
  (``interview``);
- the book draft and interview notes under ``tests/fixtures`` (``BOOK``, ``NOTES``: fictional
  people and company), and real seed material where present (``seed_file``).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from service.crud.transcripts import SegmentIn, add_version
from service.models.chapters import Chapter, ChapterKind
from service.models.consent import Restriction, RestrictionLevel
from service.models.quotes import ChapterQuote, Quote, Usage
from service.models.recordings import Speaker

REPO = Path(__file__).resolve().parent.parent
SITE = REPO / ".venv" / "lib" / "python3.11" / "site-packages"
PYANNOTE_SAMPLE = SITE / "pyannote" / "audio" / "sample" / "sample.wav"

#: Text the repository holds, so that a clone passes its tests on its own: a book outline
#: and draft with many quotations, and notes of two interviews (all people fictional).
FIXTURES = REPO / "tests" / "fixtures"
BOOK = FIXTURES / "book_draft.md"
NOTES = FIXTURES / "interview_notes.md"

#: Real seed material, optional: SOURCEBOOK_SEEDS_DIR, by default ../shared/seeds beside
#: the repository. Only tests written for that material use it, through ``seed_file``.
SEEDS_DIR = Path(os.environ.get("SOURCEBOOK_SEEDS_DIR") or REPO.parent / "shared" / "seeds")
SEED_BOOK_NAME = "000_a6533fb138b35a81.txt"
SEED_NOTES_NAME = "001_23701809df0781c4.txt"


def seed_file(name: str) -> Path:
    """A seed document, or skip the calling test (call it inside a test, never at import)."""
    path = SEEDS_DIR / name
    if not path.is_file():
        pytest.skip(f"seed material not found at {path}; set SOURCEBOOK_SEEDS_DIR")
    return path


def seed_files(pattern: str = "*.txt") -> list[Path]:
    """Every seed document matching ``pattern``, or skip the calling test."""
    paths = sorted(SEEDS_DIR.glob(pattern)) if SEEDS_DIR.is_dir() else []
    if not paths:
        pytest.skip(f"seed material not found at {SEEDS_DIR / pattern}; "
                    "set SOURCEBOOK_SEEDS_DIR")
    return paths


# --- media and uploads ----------------------------------------------------------------

def make_tone(path: Path, seconds: float = 2.0, freq: int = 440, fmt: list[str] | None = None,
              ) -> Path:
    """A sine tone (with a little noise, so it is not 'silent') in whatever format."""
    cmd = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"sine=frequency={freq}:duration={seconds}",
        *(fmt or []), str(path),
    ]
    subprocess.run(cmd, check=True)
    return path


def upload(api: Any, path: Path, meta: dict[str, Any] | None = None, role: str = "researcher",
           filename: str | None = None) -> Any:
    """POST a file to /api/v1/recordings as multipart."""
    meta = meta if meta is not None else {"title": f"Interview {path.stem}"}
    with path.open("rb") as f:
        return api.client.post(
            "/api/v1/recordings",
            headers=api.headers(role),
            files={"file": (filename or path.name, f, "application/octet-stream")},
            data={"meta": json.dumps(meta)},
        )


# --- recordings --------------------------------------------------------------------

#: Unique bytes per upload (uploads refuse duplicates): ``recording`` tags copies of one
#: encoded tone, ``create_recording`` steps the pitch.
_take = itertools.count(1)
_pitch = itertools.count(300, 7)
_TONES = Path(tempfile.mkdtemp(prefix="sourcebook-tones-"))


def _uploaded(api: Any, path: Path, meta: dict[str, Any], role: str = "researcher",
              ) -> dict[str, Any]:
    """Upload ``path`` and return the recording (the upload must succeed)."""
    r = upload(api, path, meta, role=role)
    assert r.status_code == 201, r.text
    rec: dict[str, Any] = r.json()["recording"]
    return rec


def recording(api: Any, tmp_path: Path, *, seconds: float = 120.0, title: str = "闫俊杰访谈",
              participants: list[dict[str, Any]] | None = None, **meta: Any) -> dict[str, Any]:
    """Upload a real (tiny, 8 kHz 8-bit) WAV of ``seconds``; each call has unique bytes."""
    wav = _unique_tone(tmp_path, seconds)
    body = {"title": title, "participants": participants or [], **meta}
    return _uploaded(api, wav, body)


def _unique_tone(tmp_path: Path, seconds: float) -> Path:
    """A tone of ``seconds`` with bytes no other call gets (uploads refuse duplicates).

    The tone is encoded once per length and process; each copy only gets a different
    comment tag (a stream copy), which keeps tests with long recordings fast.
    """
    n = next(_take)
    base = _TONES / f"tone-{seconds:g}.wav"
    if not base.exists():
        _TONES.mkdir(parents=True, exist_ok=True)
        make_tone(base, seconds=seconds, freq=440,
                  fmt=["-ac", "1", "-ar", "8000", "-c:a", "pcm_u8"])
    out = tmp_path / f"tone-{n}.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i",
                    str(base), "-c", "copy", "-metadata", f"comment=take {n} {os.getpid()}",
                    str(out)], check=True)
    return out


def create_recording(api: Any, tmp_path: Path, title: str,
                     participants: Sequence[tuple[int, str]] = (), seconds: float = 2.0,
                     fmt: list[str] | None = None) -> int:
    """A real upload (a tone with a unique pitch, so its sha256 is new)."""
    freq = next(_pitch)
    path = make_tone(tmp_path / f"rec-{freq}.wav", seconds=seconds, freq=freq, fmt=fmt)
    meta = {"title": title, "source": "interview", "language": "zh",
            "participants": [{"person_id": p, "role": role} for p, role in participants]}
    return int(_uploaded(api, path, meta)["id"])


def new_recording(api: Any, tmp_path: Path, *, role: str = "researcher",
                  meta: dict[str, Any] | None = None, freq: int = 440) -> int:
    """A one-second tone at ``freq`` (pass another pitch for a second recording)."""
    wav = make_tone(tmp_path / f"tone-{freq}.wav", seconds=1.0, freq=freq)
    meta = meta or {"title": "罗永浩对谈闫俊杰", "language": "zh"}
    return int(_uploaded(api, wav, meta, role=role)["id"])


# --- people and speakers --------------------------------------------------------------

def person_payload(name: str = "闫俊杰", **kw: Any) -> dict[str, Any]:
    return {"name": name, "kind": "founder", "organisation": "MiniMax"} | kw


def person(api: Any, name: str, **kw: Any) -> int:
    """Create a person through the API; returns the id."""
    r = api.client.post("/api/v1/people", json=person_payload(name, **kw),
                        headers=api.headers("researcher"))
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def name_speakers(api: Any, recording_id: int, mapping: dict[str, int]) -> None:
    """Name speakers directly in the speaker map (label -> person id)."""
    with Session(api.engine) as session:
        for label, person_id in mapping.items():
            row = session.exec(select(Speaker).where(Speaker.recording_id == recording_id,
                                                     Speaker.label == label)).first()
            row = row or Speaker(recording_id=recording_id, label=label)
            row.person_id = person_id
            session.add(row)
        session.commit()


# --- transcripts ---------------------------------------------------------------------

def add_transcript(api: Any, recording_id: int, segments: list[tuple[float, float, str, str]],
                   *, language: str = "zh", backend: str = "import") -> int:
    """Store a transcript version through the same write path as the worker; returns its id."""
    with Session(api.engine) as session:
        t = add_version(
            session, recording_id=recording_id,
            segments=[SegmentIn(start=a, end=b, speaker=spk, text=text, language=language)
                      for a, b, spk, text in segments],
            backend=backend, model="test", language=language, created_by=None,
        )
        session.commit()
        assert t.id is not None
        return t.id


def transcript_with_words(api: Any, recording_id: int,
                          segments: list[tuple[float, float, str, list[tuple[float, float, str]]]],
                          ) -> int:
    """A version whose segments carry word timings: (start, end, speaker, [(s, e, word)])."""
    with Session(api.engine) as session:
        t = add_version(
            session, recording_id=recording_id,
            segments=[SegmentIn(start=a, end=b, speaker=spk, text="".join(w for _, _, w in words),
                                language="zh",
                                words=[{"start": s, "end": e, "text": w, "probability": 0.9}
                                       for s, e, w in words])
                      for a, b, spk, words in segments],
            backend="import", model="test", language="zh", created_by=None,
        )
        session.commit()
        assert t.id is not None
        return t.id


# --- restrictions --------------------------------------------------------------------

def restrict(api: Any, recording_id: int, start: float, end: float,
             level: RestrictionLevel = RestrictionLevel.off_record,
             until: date | None = None) -> None:
    """A restriction row written directly, as the consent area's editors would record it."""
    with Session(api.engine) as session:
        session.add(Restriction(recording_id=recording_id, start=start, end=end, level=level,
                                until=until, reason="test"))
        session.commit()


def restrict_via_api(api: Any, recording_id: int, start: float, end: float, level: str,
                     **body: Any) -> dict[str, Any]:
    """A restriction recorded through the consent API, as an editor's client would."""
    r = api.client.post(f"/api/v1/recordings/{recording_id}/restrictions",
                        json={"start": start, "end": end, "level": level} | body,
                        headers=api.headers("editor"))
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


# --- chapters, quotes, consent: the book-level data -----------------------------------

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


# The made-up book: a slice of the outline in seeds/000 with remarks from seeds/001.
LUO_Q = "大厂用两三倍薪资挖人的时候，你们是怎么留住核心人才的？"
YAN_TALENT = "首先钱要到位，但对最优秀的人来说，钱可能排在第二位。"
YAN_TOKENS = "以前AI的回答只服务于单个用户，Token消耗是单向的。"
YAN_TRADEOFF = "核心就是想明白“不能啥都想要”。把一小部分事做好、做到最好，已经非常不容易了。"
YAN_JOY = "最大的乐是认识了很多优秀的人，能够跟他们一起合作一起共事。"
INVESTOR_TERMS = "天使轮的条款其实是在一家咖啡馆里谈下来的，估值比外面传的低。"
INVESTOR_OFF = "这部分别写：当时另一家基金最后一刻撤资了。"
YAO_FLYWHEEL = "大多数公司还没有形成数据飞轮；他们依赖模型变好。"


#: 8 kHz 8-bit: recordings as long as their quotes and restrictions, at a few hundred KB.
SMALL_WAV = ["-ar", "8000", "-c:a", "pcm_u8"]


def small_book(api: Any, tmp_path: Path) -> dict[str, int]:
    """Three interviews, four people, five chapters, eight quote uses, mixed consent."""
    ids: dict[str, int] = {}
    ids["yan"] = person(api, "闫俊杰", organisation="MiniMax")
    ids["luo"] = person(api, "罗永浩", kind="journalist", organisation="交个朋友")
    ids["investor"] = person(api, "李明远", kind="investor", organisation="某基金")
    ids["yao"] = person(api, "姚顺雨", kind="researcher", organisation=None)

    ids["r_luo"] = create_recording(api, tmp_path, "罗永浩对谈闫俊杰",
                                    [(ids["luo"], "interviewer"), (ids["yan"], "interviewee")],
                                    seconds=40.0, fmt=SMALL_WAV)
    add_transcript(api, ids["r_luo"], [
        (0.0, 6.0, "SPEAKER_00", LUO_Q), (6.0, 14.0, "SPEAKER_01", YAN_TALENT),
        (14.0, 22.0, "SPEAKER_01", YAN_TOKENS), (22.0, 31.0, "SPEAKER_01", YAN_TRADEOFF),
        (31.0, 38.0, "SPEAKER_01", YAN_JOY)])
    name_speakers(api, ids["r_luo"], {"SPEAKER_00": ids["luo"], "SPEAKER_01": ids["yan"]})

    ids["r_inv"] = create_recording(api, tmp_path, "早期投资人访谈",
                                    [(ids["investor"], "interviewee")], seconds=80.0,
                                    fmt=SMALL_WAV)
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
    ids["x_off"] = restrict_via_api(api, ids["r_inv"], 55.0, 75.0, "off_record",
                            reason="asked during the interview")["id"]
    ids["x_embargo"] = restrict_via_api(api, ids["r_luo"], 14.0, 22.0, "embargo",
                                until="2026-09-01")["id"]
    for quote_id, body in ((ids["q_talent"], {"decision": "approved"}),
                           (ids["q_tradeoff"], {"decision": "requested"}),
                           (ids["q_joy"], {"decision": "rejected"})):
        r = api.client.post(f"/api/v1/quotes/{quote_id}/approval", json=body,
                            headers=api.headers("editor"))
        assert r.status_code == 201, r.text
    return ids
def seeded_quote(api: Any, tmp_path: Path) -> int:
    """One quote of 闫俊杰 from a fresh recording; returns its id."""
    pid = person(api, "闫俊杰")
    rec = recording(api, tmp_path, seconds=30,
                    participants=[{"person_id": pid, "role": "interviewee"}])
    add_transcript(api, rec["id"], [(0.0, 6.0, "SPEAKER_00", "我们现在像一家AI咨询公司。")])
    name_speakers(api, rec["id"], {"SPEAKER_00": pid})
    r = api.client.post("/api/v1/quotes", json={"recording_id": rec["id"], "start": 0, "end": 6},
                        headers=api.headers("author"))
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


# --- the 周晓岚 / 林知远 conversation -----------------------------------------------------

#: The founder and the host of the interview in ``NOTES`` (fictional people).
FOUNDER, FOUNDER_TRADITIONAL, HOST = "林知远", "林知遠", "周晓岚"
INTERVIEW_TITLE = f"{HOST}对谈{FOUNDER}"

_TURN = re.compile(rf"^\*\*({HOST}|{FOUNDER})\*\*[：:](.+)$")

#: The labels a diarizer would give the two voices (the founder's turns split over two labels,
#: as happens when a voice changes between the studio and a phone line).
LABELS = {HOST: "SPEAKER_01", FOUNDER: "SPEAKER_00"}


def dialogue(limit: int = 8) -> list[tuple[str, str]]:
    """(speaker, text) turns of the 周晓岚 × 林知远 conversation, markup removed."""
    turns: list[tuple[str, str]] = []
    for line in NOTES.read_text(encoding="utf-8").splitlines():
        m = _TURN.match(line.strip())
        if m:
            text = m.group(2).replace("**", "").strip()
            if text:
                turns.append((m.group(1), text))
    assert len(turns) >= limit, "the interview notes changed: fewer turns than the tests use"
    return turns[:limit]


def segments_from_dialogue(limit: int = 8, *, split_label: bool = True,
                           ) -> list[tuple[float, float, str, str]]:
    """Timed segments; the founder's later turns get SPEAKER_02 when ``split_label``."""
    out: list[tuple[float, float, str, str]] = []
    t = 0.0
    for i, (who, text) in enumerate(dialogue(limit)):
        label = LABELS[who]
        if split_label and who == FOUNDER and i >= limit // 2:
            label = "SPEAKER_02"
        length = round(min(30.0, 1.0 + len(text) * 0.2), 3)
        out.append((round(t, 3), round(t + length, 3), label, text))
        t += length + 0.5
    return out


def interview(api: Any, tmp_path: Path, *, limit: int = 8, split_label: bool = True,
              ) -> tuple[int, list[tuple[float, float, str, str]]]:
    """A recording of the conversation with one machine transcript version."""
    yan = person(api, FOUNDER, alt_names=[FOUNDER_TRADITIONAL], organisation="衡川智能")
    luo = person(api, HOST, kind="journalist", organisation="晓岚夜谈")
    meta = {
        "title": INTERVIEW_TITLE, "recorded_at": "2025-06-20T09:00:00Z",
        "location": "北京", "language": "zh", "source": "podcast",
        "participants": [{"person_id": yan, "role": "interviewee"},
                         {"person_id": luo, "role": "host"}],
    }
    rid = new_recording(api, tmp_path, meta=meta)
    segs = segments_from_dialogue(limit, split_label=split_label)
    add_transcript(api, rid, segs)
    return rid, segs
