"""What an author may read: the one rule, used by every read path.

Two things withhold speech from authors (editors and admins see everything, marked;
researchers see everything: they made the recordings):

1. **Restrictions** on a recording's time ranges, while in force (``until`` is the day
   a restriction lifts, as in clearance): ``off_record``, ``deep_background`` and
   ``embargo`` withhold; ``background`` is only marked. A segment that overlaps such a
   span at all is withheld whole: a partial overlap must not leak the words next to
   the boundary.
2. **Agreements** of a person whose attribution is ``off_record`` or
   ``deep_background``, whose status is ``withdrawn``, or whose ``embargo_until`` is
   still ahead, withhold that person's speech in the recordings the agreement covers
   (its recording, or every recording when it names none). Speech whose label is not
   yet attributed to anyone is withheld too in a recording such an agreement covers
   (its own recording, or one where the person takes part): until a researcher names
   the labels, nothing tells the withheld person's words from the others'.

A quote is withheld when any segment it was taken from is withheld (see
:meth:`RecordingView.hides_any`). Python paths ask :func:`views`; SQL paths (search,
verification) use :func:`withheld_current_segments`, which states the same rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from pipelines.text import join_tokens
from service.models.consent import (
    Attribution,
    ConsentAgreement,
    ConsentStatus,
    Restriction,
    RestrictionLevel,
)
from service.models.recordings import Participant, Speaker
from service.models.transcripts import Segment
from service.models.users import Role, User

RESTRICTED_TEXT = "[restricted]"
#: Seconds around a withheld span whose words are withheld too, where a segment's words
#: have real times (SOURCEBOOK_WITHHOLD_MARGIN; set from the settings at start-up).
word_margin = 0.5
HIDDEN_LEVELS = (RestrictionLevel.off_record, RestrictionLevel.deep_background,
                 RestrictionLevel.embargo)
WITHHOLDING_ATTRIBUTIONS = (Attribution.off_record, Attribution.deep_background)
_STRICTNESS = {RestrictionLevel.off_record: 0, RestrictionLevel.deep_background: 1,
               RestrictionLevel.embargo: 2, RestrictionLevel.background: 3}


@dataclass(frozen=True)
class Span:
    start: float
    end: float
    level: RestrictionLevel
    until: date | None = None


@dataclass(frozen=True)
class Verdict:
    """How one segment reads: the mark every reader sees, and whether it is withheld."""

    level: RestrictionLevel | None
    until: date | None
    hidden: bool


@dataclass
class RecordingView:
    """What one recording withholds from one reader."""

    redact: bool
    spans: list[Span] = field(default_factory=list)
    #: person_id -> the level their agreement withholds their speech at
    people: dict[int, RestrictionLevel] = field(default_factory=dict)
    #: label -> person_id, for the labels that are attributed
    labels: dict[str, int] = field(default_factory=dict)
    #: the level unattributed speech is withheld at, if an agreement covers the recording
    unattributed: RestrictionLevel | None = None

    def span_level(self, start: float, end: float) -> Span | None:
        """The strictest restriction overlapping [start, end], if any."""
        hits = [s for s in self.spans if s.start < end and s.end > start]
        return min(hits, key=lambda s: _STRICTNESS[s.level]) if hits else None

    def speaker_level(self, speaker: str | None) -> RestrictionLevel | None:
        """The level an agreement withholds this label's speech at, if any."""
        person = self.labels.get(speaker) if speaker is not None else None
        if person is None:
            return self.unattributed
        return self.people.get(person)

    def verdict(self, start: float, end: float, speaker: str | None) -> Verdict:
        span = self.span_level(start, end)
        agreed = self.speaker_level(speaker)
        levels = [lv for lv in (span.level if span else None, agreed) if lv is not None]
        level = min(levels, key=_STRICTNESS.__getitem__) if levels else None
        withheld = agreed is not None or (span is not None and span.level in HIDDEN_LEVELS)
        until = span.until if span is not None and span.level == level else None
        return Verdict(level, until, self.redact and withheld)

    def hides(self, start: float, end: float, speaker: str | None) -> bool:
        return self.verdict(start, end, speaker).hidden

    def readable_words(self, segment: Any, words: Sequence[dict[str, Any]]
                       ) -> list[dict[str, Any]] | None:
        """For a withheld segment: the words a reader may still read, when only
        restricted spans withhold it and its words have real times ("asr", "aligned"):
        those outside every withheld span by :data:`word_margin`. None: withheld whole
        (an agreement withholds its speaker, or its word times are estimates)."""
        if (not self.redact or segment.words_timed == "estimated" or not words
                or self.speaker_level(segment.speaker) is not None):
            return None
        spans = [s for s in self.spans if s.level in HIDDEN_LEVELS
                 and s.start < segment.end and s.end > segment.start]
        m = word_margin
        return [w for w in words if all(float(w["end"]) <= s.start - m
                                        or float(w["start"]) >= s.end + m for s in spans)]

    def hides_words(self, segment: Any, words: Sequence[dict[str, Any]], start: float,
                    end: float) -> bool:
        """Whether any word of ``segment`` whose midpoint lies in [start, end] (what a
        quote of that span takes) is withheld; the whole segment if it has no real times."""
        if not self.hides(segment.start, segment.end, segment.speaker):
            return False
        readable = self.readable_words(segment, words)
        if readable is None:
            return True
        kept = {(float(w["start"]), str(w["text"])) for w in readable}
        return any((float(w["start"]), str(w["text"])) not in kept for w in words
                   if start <= (float(w["start"]) + float(w["end"])) / 2 <= end)

    def hides_any(self, segments: Iterable[Any]) -> bool:
        """Whether any of these segments (objects with start, end, speaker) is withheld."""
        return any(self.hides(s.start, s.end, s.speaker) for s in segments)

    @property
    def withholds_anything(self) -> bool:
        return self.redact and (bool(self.people) or self.unattributed is not None
                                or any(s.level in HIDDEN_LEVELS for s in self.spans))

    def silenced(self, segments: Sequence[Any], duration: float) -> list[tuple[float, float]]:
        """The time ranges to silence in the audio: withheld restriction spans and the
        whole extent of every withheld segment (of any version), merged. Without any
        segment nothing tells whose voice is where, so an agreement silences it all."""
        if not self.redact:
            return []
        ranges = [(s.start, s.end) for s in self.spans if s.level in HIDDEN_LEVELS]
        ranges += [(s.start, s.end) for s in segments if self.hides(s.start, s.end, s.speaker)]
        if not segments and (self.people or self.unattributed is not None):
            ranges.append((0.0, max(duration, 0.0) + 1.0))
        merged: list[tuple[float, float]] = []
        for start, end in sorted(ranges):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return merged


def is_redacted_for(user: User) -> bool:
    """Whether withheld speech is withheld from this user (authors only)."""
    return user.role == Role.author


def in_force(today: date | None = None) -> Any:
    """SQL: the restriction applies today; ``until`` is the day it lifts."""
    return sa.or_(col(Restriction.until).is_(None),
                  col(Restriction.until) > (today or date.today()))


def hiding_restriction(today: date | None = None) -> list[Any]:
    """SQL conditions on Restriction: it withholds its span from authors today."""
    return [col(Restriction.level).in_([lv.value for lv in HIDDEN_LEVELS]), in_force(today)]


def withholding_agreement(today: date | None = None) -> Any:
    """SQL condition on ConsentAgreement: it withholds its person's speech today."""
    return sa.or_(
        col(ConsentAgreement.attribution).in_([a.value for a in WITHHOLDING_ATTRIBUTIONS]),
        col(ConsentAgreement.status) == ConsentStatus.withdrawn.value,
        col(ConsentAgreement.embargo_until) > (today or date.today()),
    )


def _agreement_level(a: ConsentAgreement) -> RestrictionLevel:
    if a.status == ConsentStatus.withdrawn:
        return RestrictionLevel.off_record
    if a.attribution == Attribution.off_record:
        return RestrictionLevel.off_record
    if a.attribution == Attribution.deep_background:
        return RestrictionLevel.deep_background
    return RestrictionLevel.embargo


def _stricter(a: RestrictionLevel | None, b: RestrictionLevel) -> RestrictionLevel:
    return b if a is None or _STRICTNESS[b] < _STRICTNESS[a] else a


def views(session: Session, recording_ids: Iterable[int], *, redact: bool,
          today: date | None = None) -> dict[int, RecordingView]:
    """Each recording's view: withheld speech is withheld if ``redact`` (an author's
    view: :func:`is_redacted_for`), and marked in every view."""
    ids = sorted(set(recording_ids))
    day = today or date.today()
    out = {rid: RecordingView(redact=redact) for rid in ids}
    if not ids:
        return out
    for r in session.exec(select(Restriction).where(
            col(Restriction.recording_id).in_(ids), in_force(day))).all():
        out[r.recording_id].spans.append(Span(r.start, r.end, r.level, r.until))
    for sp in session.exec(select(Speaker).where(
            col(Speaker.recording_id).in_(ids), col(Speaker.person_id).is_not(None))).all():
        assert sp.person_id is not None
        out[sp.recording_id].labels[sp.label] = sp.person_id
    agreements = session.exec(select(ConsentAgreement).where(
        withholding_agreement(day),
        sa.or_(col(ConsentAgreement.recording_id).is_(None),
               col(ConsentAgreement.recording_id).in_(ids)))).all()
    general = {a.person_id for a in agreements if a.recording_id is None}
    taking_part: set[tuple[int, int]] = set()
    if general:
        rows = session.exec(select(Participant).where(
            col(Participant.recording_id).in_(ids), col(Participant.person_id).in_(general)))
        taking_part = {(p.recording_id, p.person_id) for p in rows.all()}
    for a in agreements:
        level = _agreement_level(a)
        for rid in ([a.recording_id] if a.recording_id is not None else ids):
            view = out[rid]
            takes_part = a.recording_id is not None or (rid, a.person_id) in taking_part
            if takes_part or a.person_id in view.labels.values():
                view.people[a.person_id] = _stricter(view.people.get(a.person_id), level)
            if takes_part:
                view.unattributed = _stricter(view.unattributed, level)
    return out


def view_of(session: Session, recording_id: int, *, redact: bool,
            today: date | None = None) -> RecordingView:
    return views(session, [recording_id], redact=redact, today=today)[recording_id]


def withheld_current_segments(today: date | None = None) -> Any:
    """SELECT of the ids of current segments withheld from authors: the rule of
    :func:`views` in SQL, for search and verification.

    Each part is small (restrictions cover minutes; withholding agreements are few) and
    is answered from indexes, so callers materialise it and exclude by id.
    """
    day = today or date.today()
    seg, agr, spk = Segment, ConsentAgreement, Speaker
    under_span = (
        sa.select(col(seg.id))
        .join(Restriction, sa.and_(
            col(Restriction.recording_id) == col(seg.recording_id),
            col(Restriction.start) < col(seg.end),
            col(Restriction.end) > col(seg.start)))
        .where(col(seg.is_current), *hiding_restriction(day))
    )
    by_person = (
        sa.select(col(seg.id))
        .join(spk, sa.and_(col(spk.recording_id) == col(seg.recording_id),
                           col(spk.label) == col(seg.speaker)))
        .join(agr, col(agr.person_id) == col(spk.person_id))
        .where(col(seg.is_current), withholding_agreement(day),
               sa.or_(col(agr.recording_id).is_(None),
                      col(agr.recording_id) == col(seg.recording_id)))
    )
    covered: Any = sa.union(
        sa.select(col(agr.recording_id).label("rid")).where(
            withholding_agreement(day), col(agr.recording_id).is_not(None)),
        sa.select(col(Participant.recording_id).label("rid"))
        .join(agr, col(agr.person_id) == col(Participant.person_id))
        .where(withholding_agreement(day), col(agr.recording_id).is_(None)),
    )
    attributed = sa.select(col(spk.id)).where(
        col(spk.recording_id) == col(seg.recording_id), col(spk.label) == col(seg.speaker),
        col(spk.person_id).is_not(None))
    unattributed = sa.select(col(seg.id)).where(
        col(seg.is_current), col(seg.recording_id).in_(covered), ~sa.exists(attributed))
    return sa.union(under_span, by_person, unattributed)


def readable_text(words: Sequence[dict[str, Any]],
                  readable: Sequence[dict[str, Any]]) -> str:
    """The segment's text from its readable words, one marker where each run of withheld
    words was."""
    keep = {id(w) for w in readable}
    tokens: list[str] = []
    for w in words:
        if id(w) in keep:
            tokens.append(str(w["text"]))
        elif not tokens or tokens[-1] != _MARK:
            tokens.append(_MARK)
    return join_tokens(tokens).strip()


_MARK = f" {RESTRICTED_TEXT} "


def segment_extents(session: Session, recording_id: int) -> Sequence[Any]:
    """(start, end, speaker) of every segment of every version: what audio may hold."""
    return session.connection().execute(
        sa.select(col(Segment.start), col(Segment.end), col(Segment.speaker))
        .where(col(Segment.recording_id) == recording_id)).all()
