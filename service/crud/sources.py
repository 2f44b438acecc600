"""The facts a citation is made of, read from the database at the time of citing.

Names and places may have been corrected since a quote was frozen, so a citation is
built from what the rows say now. Quotes (their citations) and chapters (their
bibliographies) both read it; it depends on neither.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from service import citations
from service.models.people import Person
from service.models.quotes import Quote
from service.models.recordings import Participant, ParticipantRole, Recording


def source_of(session: Session, quote: Quote) -> citations.Source:
    """The facts a citation is made of, read now (names may have been corrected)."""
    recording = session.get(Recording, quote.recording_id) if quote.recording_id else None
    speaker = None
    if quote.person_id is not None:
        person = session.get(Person, quote.person_id)
        speaker = person.name if person else None
    if recording is None:
        return citations.Source(speaker=speaker, start=quote.start)
    interviewers = session.exec(
        select(Person.name)
        .join(Participant, col(Participant.person_id) == col(Person.id))
        .where(Participant.recording_id == recording.id,
               col(Participant.role).in_([ParticipantRole.interviewer, ParticipantRole.host]))
        .order_by(col(Participant.id))
    ).all()
    return citations.Source(
        speaker=speaker, interviewers=list(dict.fromkeys(interviewers)),
        location=recording.location,
        recorded_on=recording.recorded_at.date() if recording.recorded_at else None,
        title=recording.title, start=quote.start, recording_id=recording.id,
    )
