"""A chapter's bibliography: every interview its quotes (and its sections') come from.

It reads the chapter tree (``crud.chapters``), what a reader may see of each quote
(``crud.quotes``) and the facts of each citation (``crud.sources``), so it lives apart
from all three rather than making two of them import each other.
"""

from __future__ import annotations

from collections import defaultdict

from sqlmodel import Session, col, select

from pipelines.escaping import md_text
from service import citations
from service.access import can_see_recording
from service.crud.chapters import label, subtree_ids
from service.crud.quotes import withheld_ids
from service.crud.sources import source_of
from service.models.chapters import Chapter
from service.models.quotes import ChapterQuote, Quote
from service.models.recordings import Recording
from service.models.users import User


def sources_markdown(session: Session, *, chapter: Chapter, user: User) -> str:
    """A Markdown bibliography of every interview the chapter and its sections quote."""
    ids = subtree_ids(session, chapter.id or 0)
    rows = session.exec(
        select(Quote).where(col(Quote.id).in_(
            select(ChapterQuote.quote_id).where(col(ChapterQuote.chapter_id).in_(ids))))
        .order_by(col(Quote.id))
    ).all()
    by_recording: dict[int, list[Quote]] = defaultdict(list)
    erased = 0
    for q in rows:
        if q.recording_id is None:
            erased += 1
        else:
            by_recording[q.recording_id].append(q)
    entries: list[tuple[str, str]] = []
    withheld = 0
    for rid, quotes in by_recording.items():
        recording = session.get(Recording, rid)
        if recording is None or not can_see_recording(user, recording):
            # Left out without a word: a count would tell that such quotes exist.
            continue
        hidden = withheld_ids(session, quotes, user)
        withheld += len(hidden)
        # One entry per interviewee of the recording, as cited (a panel has several).
        per_person: dict[int | None, list[Quote]] = defaultdict(list)
        for q in quotes:
            if q.id not in hidden:
                per_person[q.person_id].append(q)
        for group in per_person.values():
            src = source_of(session, group[0])
            entry = citations.bibliography_entry(src, [q.start for q in group])
            entries.append((entry.lower(), entry))
    lines = [f"# Sources: {md_text(label(chapter))}", ""]
    if entries:
        lines += [e for _, e in sorted(entries)]
    else:
        lines.append("No interviews are quoted in this chapter yet.")
    if erased:
        lines += ["", f"{erased} quote(s) come from recordings that were deleted."]
    if withheld:
        lines += ["", f"{withheld} quote(s) lie in passages withheld from you and are left "
                      "out; an editor sees them."]
    return "\n".join(lines) + "\n"
