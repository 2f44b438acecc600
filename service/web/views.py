"""Data shaped for the pages: consent at a glance, and the speaker timeline geometry.

The decisions stay where the API takes them (``service.clearance`` picks the agreement
that applies); this only arranges their answers for display.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Session, col, select

from service.clearance import rules
from service.models.consent import ConsentAgreement
from service.models.recordings import RecordingPublic


@dataclass(frozen=True)
class PersonConsent:
    person_id: int
    name: str
    #: granted, pending or withdrawn; "none" when no agreement covers the recording.
    status: str


def consent_states(session: Session, recordings: Sequence[RecordingPublic],
                   ) -> dict[int, list[PersonConsent]]:
    """Per recording: each participant's and named speaker's agreement that applies to it."""
    people: dict[int, dict[int, str]] = {}
    for r in recordings:
        named = {p.person_id: p.name for p in r.participants}
        named |= {s.person_id: s.name or "" for s in r.speakers if s.person_id is not None}
        people[r.id] = named
    person_ids = {pid for named in people.values() for pid in named}
    facts: dict[int, list[rules.AgreementFacts]] = {}
    if person_ids:
        for a in session.exec(select(ConsentAgreement)
                              .where(col(ConsentAgreement.person_id).in_(person_ids))):
            assert a.id is not None
            facts.setdefault(a.person_id, []).append(rules.AgreementFacts(
                id=a.id, status=a.status, attribution=a.attribution,
                recording_id=a.recording_id))
    out: dict[int, list[PersonConsent]] = {}
    for rid, named in people.items():
        states = []
        for pid, name in sorted(named.items()):
            agreement = rules.applicable_agreement(facts.get(pid, ()), rid)
            states.append(PersonConsent(pid, name,
                                        agreement.status.value if agreement else "none"))
        out[rid] = states
    return out


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    start: float
    end: float
    title: str


@dataclass(frozen=True)
class Lane:
    label: str
    name: str
    y: float
    bars: list[Bar]


#: Timeline drawing size in SVG user units; the SVG scales to the page width.
TIMELINE_WIDTH = 1000.0
LANE_HEIGHT = 22.0


def timeline(segments: Sequence[tuple[str, float, float]], names: dict[str, str],
             duration: float) -> list[Lane]:
    """One lane per speaker label with a bar per segment: who spoke when."""
    total = max(duration, max((end for _, _, end in segments), default=0.0), 1e-6)
    lanes: dict[str, list[Bar]] = {}
    for label, start, end in segments:
        x = start / total * TIMELINE_WIDTH
        lanes.setdefault(label, []).append(Bar(
            x=round(x, 2), width=round(max((end - start) / total * TIMELINE_WIDTH, 0.5), 2),
            start=start, end=end, title=f"{names.get(label) or label} {start:.1f}–{end:.1f}s"))
    return [Lane(label=label, name=names.get(label) or label, y=i * LANE_HEIGHT, bars=bars)
            for i, (label, bars) in enumerate(sorted(lanes.items()))]
