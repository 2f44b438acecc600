"""Workbench test data: the 闫俊杰 / 罗永浩 conversation from the seed notes as a transcript."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

from sqlmodel import Session

from service.models.consent import Restriction, RestrictionLevel
from tests.factories import add_transcript, make_tone, person_payload, upload

_REPO = Path(__file__).resolve().parents[2]
#: The seeds sit next to the repository (../shared) or, on some machines, inside it.
SEED = next(
    (p for p in (_REPO.parent / "shared" / "seeds" / "001_23701809df0781c4.txt",
                 _REPO / "shared" / "seeds" / "001_23701809df0781c4.txt") if p.exists()),
    _REPO.parent / "shared" / "seeds" / "001_23701809df0781c4.txt",
)

_TURN = re.compile(r"^\*\*(罗永浩|闫俊杰)\*\*[：:](.+)$")

#: The labels a diarizer would give the two voices (闫俊杰's turns split over two labels,
#: as happens when a voice changes between the studio and a phone line).
LABELS = {"罗永浩": "SPEAKER_01", "闫俊杰": "SPEAKER_00"}


def dialogue(limit: int = 8) -> list[tuple[str, str]]:
    """(speaker, text) turns of the 罗永浩 × 闫俊杰 conversation, markup removed."""
    turns: list[tuple[str, str]] = []
    for line in SEED.read_text(encoding="utf-8").splitlines():
        m = _TURN.match(line.strip())
        if m:
            text = m.group(2).replace("**", "").strip()
            if text:
                turns.append((m.group(1), text))
    assert len(turns) >= limit, "the seed notes changed: fewer turns than the tests use"
    return turns[:limit]


def segments_from_dialogue(limit: int = 8, *, split_label: bool = True,
                           ) -> list[tuple[float, float, str, str]]:
    """Timed segments; 闫俊杰's later turns get SPEAKER_02 when ``split_label``."""
    out: list[tuple[float, float, str, str]] = []
    t = 0.0
    for i, (who, text) in enumerate(dialogue(limit)):
        label = LABELS[who]
        if split_label and who == "闫俊杰" and i >= limit // 2:
            label = "SPEAKER_02"
        length = round(min(30.0, 1.0 + len(text) * 0.2), 3)
        out.append((round(t, 3), round(t + length, 3), label, text))
        t += length + 0.5
    return out


def new_recording(api: Any, tmp_path: Path, *, role: str = "researcher",
                  meta: dict[str, Any] | None = None, freq: int = 440) -> int:
    wav = make_tone(tmp_path / f"tone-{freq}.wav", seconds=1.0, freq=freq)
    r = upload(api, wav, meta or {"title": "罗永浩对谈闫俊杰", "language": "zh"}, role=role)
    assert r.status_code == 201, r.text
    return int(r.json()["recording"]["id"])


def person(api: Any, name: str, **kw: Any) -> int:
    r = api.client.post("/api/v1/people", json=person_payload(name, **kw),
                        headers=api.headers("researcher"))
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def interview(api: Any, tmp_path: Path, *, limit: int = 8, split_label: bool = True,
              ) -> tuple[int, list[tuple[float, float, str, str]]]:
    """A recording of the conversation with one machine transcript version."""
    yan = person(api, "闫俊杰", alt_names=["閆俊傑"])
    luo = person(api, "罗永浩", kind="journalist", organisation="交个朋友")
    meta = {
        "title": "罗永浩对谈闫俊杰", "recorded_at": "2025-06-20T09:00:00Z",
        "location": "北京", "language": "zh", "source": "podcast",
        "participants": [{"person_id": yan, "role": "interviewee"},
                         {"person_id": luo, "role": "host"}],
    }
    rid = new_recording(api, tmp_path, meta=meta)
    segs = segments_from_dialogue(limit, split_label=split_label)
    add_transcript(api, rid, segs)
    return rid, segs


def restrict(api: Any, recording_id: int, start: float, end: float,
             level: RestrictionLevel, until: date | None = None) -> None:
    """A restriction row, written directly (the consent API is another area's)."""
    with Session(api.engine) as session:
        session.add(Restriction(recording_id=recording_id, start=start, end=end, level=level,
                                until=until, reason="test"))
        session.commit()
