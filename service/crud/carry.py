"""Corrections survive re-transcription: replay them onto the new version.

When a recording is transcribed again, each corrected segment of the version that was
current is looked for in the new one: a segment over the same time (each edge within
:data:`SPAN_TOLERANCE`) whose text is what the correction started from (or already
what it ended with). There the correction is replayed: text and speaker, as a revision
by the person who made it. Anywhere else it is a conflict, listed on the new version
with the reason (``carried``, ``conflicts``), never silently lost.

Replayed text has estimated word times until the alignment job the worker queues after
storing has timed it.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from pipelines.text import cjk_spaced, normalise_for_match
from service.crud.transcripts import retime_words
from service.models.transcripts import Revision, Segment, Transcript

#: Seconds a segment edge may move between versions and still be "the same span".
SPAN_TOLERANCE = 0.5


def carry_corrections(session: Session, *, previous: Transcript, new: Transcript) -> list[int]:
    """Replay ``previous``'s corrections onto ``new`` (no commit); record what was carried
    and what conflicts on ``new``. Returns the ids of new segments whose text changed
    (to align)."""
    edited = session.exec(select(Segment).where(
        Segment.transcript_id == previous.id, col(Segment.edited)).order_by(col(Segment.idx))
    ).all()
    if not edited:
        return []
    fresh = session.exec(select(Segment).where(Segment.transcript_id == new.id)
                         .order_by(col(Segment.idx))).all()
    carried, realign = 0, []
    conflicts: list[dict[str, Any]] = []
    for old in edited:
        revisions = session.exec(select(Revision).where(Revision.segment_id == old.id)
                                 .order_by(col(Revision.id))).all()
        if not revisions:
            continue  # erased, not corrected
        first, last = revisions[0], revisions[-1]
        over = [n for n in fresh if n.start < old.end and n.end > old.start]
        same = [n for n in over if abs(n.start - old.start) <= SPAN_TOLERANCE
                and abs(n.end - old.end) <= SPAN_TOLERANCE]

        def conflict(reason: str, new_text: str, old: Segment = old) -> None:
            conflicts.append({"segment": old.id, "start": old.start, "end": old.end,
                              "old": old.text, "new": new_text, "reason": reason})

        if len(same) != 1:
            conflict("No segment of the new version covers the same time."
                     if not over else "The new version cuts this passage differently.",
                     " ".join(n.text for n in over))
            continue
        seg = same[0]
        heard = normalise_for_match(seg.text)
        if heard not in (normalise_for_match(first.before_text), normalise_for_match(old.text)):
            conflict("The new version hears other words here than the corrected one did.",
                     seg.text)
            continue
        assert seg.id is not None
        speaker = old.speaker if old.speaker != first.before_speaker else seg.speaker
        session.add(Revision(segment_id=seg.id, user_id=last.user_id, before_text=seg.text,
                             after_text=old.text, before_speaker=seg.speaker,
                             after_speaker=speaker))
        if seg.text != old.text:
            seg.text = old.text
            seg.search_text = cjk_spaced(old.text)
            seg.words = retime_words(old.text, seg.start, seg.end)
            seg.words_timed = "estimated"
            realign.append(seg.id)
        seg.speaker = speaker
        seg.edited = True
        session.add(seg)
        carried += 1
    new.carried = carried
    new.conflicts = conflicts or None
    session.add(new)
    return realign
