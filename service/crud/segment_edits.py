"""Split a segment in two, or merge it with the next one: re-cutting a transcript by hand.

Speaker changes that diarization missed (two voices in one segment) and sentences it cut
in half are fixed here; the text and speaker of one segment are fixed in
:mod:`service.crud.corrections`.

A split cuts at a word boundary of the text. Where the segment's words have measured
times (``asr`` or ``aligned``) and the cut falls between two of them, each half keeps its
words with their times, and the halves meet in the middle of the pause between them.
Where the cut falls inside a word the recogniser heard as one token ("我们"), or the
words were estimated, the cut is placed by character share, both halves get estimated
words, and :attr:`Edit.realign` asks the caller to queue an alignment of the two texts
as one over the whole span: the aligned words then move the cut into the pause where it
was spoken (:mod:`service.alignment`). Times are never invented.

A merge joins a segment with the one directly after it in the same version. Words keep
their times; speakers that differ must be resolved by the caller. The second segment's
revisions move to the merged one, so its history is not lost.

Each half of a split gets a revision of kind ``split`` whose ``before_text`` is the whole
text; a merge gives one of kind ``merge`` whose ``before_text`` holds both texts on two
lines. Quotes are frozen text over a time span, so no quote changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from pipelines.align import word_cut
from pipelines.text import cjk_spaced, is_spoken, needs_space_between, word_spans
from pipelines.types import Timing
from service.crud import audit
from service.crud.corrections import CorrectionError, check_speaker, lock_segment, retime_words
from service.crud.transcripts import segment_view, speaker_names
from service.models.recordings import Recording, Speaker
from service.models.transcripts import Revision, Segment, SegmentEdit, Transcript
from service.models.users import User
from service.visibility import is_redacted_for, view_of


@dataclass
class Edit:
    """What a split or merge left: the segments in order, their new revisions, and
    whether their words must be timed again."""

    segments: list[Segment]
    revisions: list[Revision]
    realign: bool = False
    #: Segment ids aligned as one text (a split whose cut is to be measured).
    joined: list[list[int]] = field(default_factory=list)


def _spoken_length(text: str) -> int:
    return sum(1 for ch in text if is_spoken(ch))


def join_texts(first: str, second: str) -> str:
    """Two segments' texts as one: a space between Latin words, none next to Chinese."""
    return f"{first} {second}" if needs_space_between(first, second) else first + second


def _shift(session: Session, transcript_id: int, after_idx: int, by: int) -> None:
    session.execute(sa.update(Segment)
                    .where(col(Segment.transcript_id) == transcript_id,
                           col(Segment.idx) > after_idx)
                    .values(idx=col(Segment.idx) + by))


def _use_speaker(session: Session, segment: Segment, speaker: str) -> None:
    """Add ``speaker`` to the recording's labels if it is a new one (raises if not allowed)."""
    if speaker != segment.speaker and check_speaker(session, segment.recording_id, speaker):
        session.add(Speaker(recording_id=segment.recording_id, label=speaker))


def _boundary(text: str, offset: int) -> tuple[str, str]:
    """``text`` cut at character ``offset``, refusing cuts that leave a part without
    words or fall inside a word; the errors say where a cut may go."""
    if not 0 < offset < len(text):
        raise CorrectionError(
            f"Offset {offset} is not inside the segment's text, which has {len(text)} "
            f"characters: give the character position where the second part starts "
            f"(1 to {len(text) - 1}).")
    head, rest = text[:offset].rstrip(), text[offset:]
    tail = rest.lstrip()
    if not _spoken_length(head) or not _spoken_length(tail):
        raise CorrectionError(
            "Both parts of a split need words: cut between two words, not before the "
            "first or after the last.")
    first_of_tail = offset + len(rest) - len(tail)
    for w in word_spans(text):
        if w.chars[0] < first_of_tail <= w.chars[-1]:
            raise CorrectionError(
                f"Offset {offset} falls inside the word {w.text!r}: split before it "
                f"(offset {w.chars[0]}) or after it (offset {w.chars[-1] + 1}).")
    return head, tail


def split_segment(session: Session, *, segment_id: int, offset: int, speaker: str | None,
                  actor: User) -> Edit:
    """Cut a segment at character ``offset`` of its text; the second part speaks as
    ``speaker`` (default: the segment's speaker). Commits."""
    segment = lock_segment(session, segment_id)
    head, tail = _boundary(segment.text, offset)
    tail_speaker = segment.speaker if speaker is None else speaker.strip()
    _use_speaker(session, segment, tail_speaker)
    words: list[dict[str, Any]] = list(segment.words or [])
    k = None
    if segment.words_timed != "estimated":
        k = word_cut([str(w.get("text", "")) for w in words], segment.text, head)
    timing: Timing
    if k is not None:
        head_words, tail_words = words[:k], words[k:]
        cut = (float(head_words[-1]["end"]) + float(tail_words[0]["start"])) / 2
        timing = segment.words_timed
    else:
        share = _spoken_length(head) / _spoken_length(segment.text)
        cut = segment.start + (segment.end - segment.start) * share
    cut = round(min(max(cut, segment.start), segment.end), 3)
    if k is None:
        head_words = retime_words(head, segment.start, cut)
        tail_words = retime_words(tail, cut, segment.end)
        timing = "estimated"
    whole, whole_speaker, end = segment.text, segment.speaker, segment.end
    _shift(session, segment.transcript_id, segment.idx, 1)
    second = Segment(
        transcript_id=segment.transcript_id, recording_id=segment.recording_id,
        idx=segment.idx + 1, start=cut, end=end, speaker=tail_speaker, text=tail,
        language=segment.language, words=tail_words, words_timed=timing,
        search_text=cjk_spaced(tail), edited=True, is_current=segment.is_current,
    )
    segment.text, segment.end, segment.words = head, cut, head_words
    segment.words_timed = timing
    segment.search_text = cjk_spaced(head)
    segment.edited = True
    session.add(segment)
    session.add(second)
    session.flush()
    assert second.id is not None and segment.id is not None
    revisions = [
        Revision(segment_id=s.id, user_id=actor.id, before_text=whole, after_text=s.text,
                 before_speaker=whole_speaker, after_speaker=s.speaker, kind="split")
        for s in (segment, second) if s.id is not None
    ]
    session.add_all(revisions)
    audit.record(session, actor=actor, action="split", object_type="segment",
                 object_id=segment.id,
                 summary=f"recording {segment.recording_id}: cut at {cut:.2f} s into segments "
                         f"{segment.id} and {second.id}")
    session.commit()
    for row in (segment, second, *revisions):
        session.refresh(row)
    realign = k is None
    return Edit([segment, second], revisions, realign=realign,
                joined=[[segment.id, second.id]] if realign else [])


def _merged_timing(a: Timing, b: Timing) -> Timing:
    if "estimated" in (a, b):
        return "estimated"
    return "aligned" if "aligned" in (a, b) else "asr"


def merge_segments(session: Session, *, segment_id: int, next_segment_id: int,
                   speaker: str | None, actor: User) -> Edit:
    """Join a segment with the one right after it; differing speakers need ``speaker``.
    Commits."""
    first = lock_segment(session, segment_id)
    second = lock_segment(session, next_segment_id)
    if second.transcript_id != first.transcript_id or second.idx != first.idx + 1:
        following = session.exec(select(Segment.id).where(
            Segment.transcript_id == first.transcript_id, Segment.idx == first.idx + 1)).first()
        raise CorrectionError(
            f"Segment {next_segment_id} is not the one right after segment {segment_id} in "
            "its transcript version; only neighbours merge. "
            + (f"The next segment is {following}." if following is not None
               else f"Segment {segment_id} is the last of its version."))
    if speaker is not None:
        new_speaker = speaker.strip()
    elif first.speaker == second.speaker:
        new_speaker = first.speaker
    else:
        raise CorrectionError(
            f"The segments speak as {first.speaker} and {second.speaker}: say who speaks "
            f"the merged segment with \"speaker\": {first.speaker!r} or {second.speaker!r}.")
    _use_speaker(session, first, new_speaker)
    text = join_texts(first.text, second.text)
    before_text = f"{first.text}\n{second.text}"
    before_speaker = first.speaker
    timing = _merged_timing(first.words_timed, second.words_timed)
    if timing == "estimated":
        words = retime_words(text, first.start, second.end)
    else:
        words = list(first.words or []) + list(second.words or [])
    session.execute(sa.update(Revision).where(col(Revision.segment_id) == second.id)
                    .values(segment_id=first.id))
    first.text, first.end, first.words, first.words_timed = text, second.end, words, timing
    first.search_text = cjk_spaced(text)
    first.speaker = new_speaker
    first.edited = True
    session.add(first)
    session.delete(second)
    session.flush()
    _shift(session, first.transcript_id, first.idx + 1, -1)
    assert first.id is not None
    revision = Revision(segment_id=first.id, user_id=actor.id, before_text=before_text,
                        after_text=text, before_speaker=before_speaker,
                        after_speaker=new_speaker, kind="merge")
    session.add(revision)
    audit.record(session, actor=actor, action="merge", object_type="segment",
                 object_id=first.id,
                 summary=f"recording {first.recording_id}: segment {next_segment_id} joined "
                         f"to segment {segment_id}")
    session.commit()
    session.refresh(first)
    session.refresh(revision)
    return Edit([first], [revision], realign=timing == "estimated")


def edit_view(session: Session, edit: Edit, *, user: User) -> SegmentEdit:
    """The edited segments as ``user`` may read them."""
    first = edit.segments[0]
    transcript = session.get(Transcript, first.transcript_id)
    recording = session.get(Recording, first.recording_id)
    assert transcript is not None and recording is not None
    names = speaker_names(session, first.recording_id)
    view = view_of(session, first.recording_id, redact=is_redacted_for(user))
    return SegmentEdit(
        recording_id=first.recording_id, recording_title=recording.title,
        transcript_id=first.transcript_id, version=transcript.version,
        segments=[segment_view(s, names, view) for s in edit.segments],
        revision_ids=[r.id for r in edit.revisions if r.id is not None],
    )


def segment_ids(segments: Sequence[Segment]) -> list[int]:
    return [s.id for s in segments if s.id is not None]
