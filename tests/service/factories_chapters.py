"""Test data for chapters, quotes and verification: recordings with speakers and people."""

from __future__ import annotations

import itertools
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from service.crud.transcripts import SegmentIn, add_version
from service.models.consent import Restriction, RestrictionLevel
from service.models.recordings import Speaker
from tests.factories import make_tone, person_payload, upload

SEED_BOOK = Path("/work/shared/seeds/000_a6533fb138b35a81.txt")
if not SEED_BOOK.exists():  # the repository's own copy, where the shared folder is absent
    SEED_BOOK = Path(__file__).resolve().parents[2] / "shared" / "seeds" / SEED_BOOK.name

_freq = itertools.count(1)
_TONES = Path(tempfile.mkdtemp(prefix="sourcebook-tones-"))


def person(api: Any, name: str, **kw: Any) -> int:
    r = api.client.post("/api/v1/people", json=person_payload(name, **kw),
                        headers=api.headers("researcher"))
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _unique_tone(tmp_path: Path, seconds: float) -> Path:
    """A tone of ``seconds`` with bytes no other call gets (uploads refuse duplicates).

    The tone is encoded once per length and process; each copy only gets a different
    comment tag (a stream copy), which keeps tests with long recordings fast.
    """
    n = next(_freq)
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


def recording(api: Any, tmp_path: Path, *, seconds: float = 120.0, title: str = "闫俊杰访谈",
              participants: list[dict[str, Any]] | None = None, **meta: Any) -> dict[str, Any]:
    """Upload a real (tiny, 8 kHz 8-bit) WAV of ``seconds``; each call has unique bytes."""
    wav = _unique_tone(tmp_path, seconds)
    body = {"title": title, "participants": participants or [], **meta}
    r = upload(api, wav, body)
    assert r.status_code == 201, r.text
    rec: dict[str, Any] = r.json()["recording"]
    return rec


def map_speakers(api: Any, recording_id: int, mapping: dict[str, int]) -> None:
    """Name speakers directly in the speaker map (the workbench owns the HTTP route)."""
    with Session(api.engine) as session:
        for label, pid in mapping.items():
            row = session.exec(select(Speaker).where(Speaker.recording_id == recording_id,
                                                     Speaker.label == label)).first()
            row = row or Speaker(recording_id=recording_id, label=label)
            row.person_id = pid
            session.add(row)
        session.commit()


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


def restrict(api: Any, recording_id: int, start: float, end: float,
             level: RestrictionLevel = RestrictionLevel.off_record) -> None:
    """A restriction row, as the consent area's editors would record it."""
    with Session(api.engine) as session:
        session.add(Restriction(recording_id=recording_id, start=start, end=end, level=level,
                                reason="test"))
        session.commit()


def seeded_quote(api: Any, tmp_path: Path) -> int:
    """One quote of 闫俊杰 from a fresh recording; returns its id."""
    from tests.factories import add_transcript

    pid = person(api, "闫俊杰")
    rec = recording(api, tmp_path, seconds=30,
                    participants=[{"person_id": pid, "role": "interviewee"}])
    add_transcript(api, rec["id"], [(0.0, 6.0, "SPEAKER_00", "我们现在像一家AI咨询公司。")])
    map_speakers(api, rec["id"], {"SPEAKER_00": pid})
    r = api.client.post("/api/v1/quotes", json={"recording_id": rec["id"], "start": 0, "end": 6},
                        headers=api.headers("author"))
    assert r.status_code == 201, r.text
    return int(r.json()["id"])
