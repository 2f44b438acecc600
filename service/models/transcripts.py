"""Transcript versions, their segments (with words) and the revisions made to them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel
from pydantic import Field as PydanticField
from sqlmodel import Field, SQLModel

from pipelines.types import Timing
from service.models.base import NEVER_REUSE_IDS, json_column, ts_column, utcnow
from service.models.consent import RestrictionLevel


class Transcript(SQLModel, table=True):
    """One version of a recording's transcript; a new run or import adds a version."""

    __table_args__ = (sa.UniqueConstraint("recording_id", "version"), NEVER_REUSE_IDS)

    id: int | None = Field(default=None, primary_key=True)
    recording_id: int = Field(foreign_key="recording.id", ondelete="CASCADE", index=True)
    version: int
    #: The job that wrote this version; unique, so a job that runs twice writes once.
    job_id: int | None = Field(
        default=None, foreign_key="job.id", ondelete="SET NULL", unique=True
    )
    backend: str = Field(max_length=50, description="faster-whisper, openai-whisper or import")
    model: str = Field(max_length=500)
    language: str = Field(max_length=16)
    created_by: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())
    #: Transcribed again: corrections of the version before replayed onto this one ...
    carried: int = 0
    #: ... and those that could not be: [{segment, old, new, reason}].
    conflicts: list[dict[str, Any]] | None = Field(default=None, sa_column=json_column())


class Segment(SQLModel, table=True):
    """A speaker-attributed span of a transcript version.

    Words are kept as a JSON array on the segment: they are always read and written
    with it and never queried alone, and a row per word would make a 2 000-hour archive
    some 20 M rows heavier for nothing.
    """

    __table_args__ = NEVER_REUSE_IDS

    id: int | None = Field(default=None, primary_key=True)
    transcript_id: int = Field(foreign_key="transcript.id", ondelete="CASCADE", index=True)
    #: Denormalised so that search, restrictions and filters need no join.
    recording_id: int = Field(foreign_key="recording.id", ondelete="CASCADE", index=True)
    idx: int
    start: float
    end: float
    speaker: str = Field(max_length=50)
    text: str
    language: str = Field(default="", max_length=16)
    words: list[dict[str, Any]] = Field(default_factory=list, sa_column=json_column(nullable=False))
    #: Where the word times come from: the recogniser ("asr"), forced alignment of the
    #: text ("aligned"), or a spread by character share / no words ("estimated").
    words_timed: Timing = Field(default="asr", sa_type=sa.String(16))
    #: Per-character, simplified, lower-cased text that the full-text index is built on.
    search_text: str = ""
    edited: bool = False
    #: Whether this segment belongs to its recording's latest version: only those are in
    #: the search index (migration 0005), so a search never reads a row to find out.
    is_current: bool = True


#: What a revision records: a correction of one segment's text or speaker, one segment
#: cut in two, or two neighbours joined.
EditKind = Literal["correct", "split", "merge"]


class Revision(SQLModel, table=True):
    """One edit of a segment: who, when, before and after.

    A split gives each half a revision whose ``before_text`` is the whole text; a merge
    gives the joined segment one whose ``before_text`` holds both texts on two lines.
    """

    id: int | None = Field(default=None, primary_key=True)
    segment_id: int = Field(foreign_key="segment.id", ondelete="CASCADE", index=True)
    user_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())
    before_text: str
    after_text: str
    before_speaker: str = Field(max_length=50)
    after_speaker: str = Field(max_length=50)
    kind: EditKind = Field(default="correct", sa_type=sa.String(16))


class WordPublic(BaseModel):
    """A word with its timing (a plain pydantic model: a transcript holds tens of
    thousands, and SQLModel's per-instance set-up cost 15 us each)."""

    start: float
    end: float
    text: str
    probability: float
    #: The word as Whisper wrote it, when the stored text is its simplified-Chinese
    #: normalisation (閆 -> 闫); absent otherwise.
    original: str | None = PydanticField(default=None, exclude_if=lambda v: v is None)


class SegmentPublic(SQLModel):
    id: int
    start: float
    end: float
    speaker: str
    person_id: int | None
    name: str | None = None
    text: str
    language: str
    words: list[WordPublic]
    words_timed: Timing = "asr"
    edited: bool = False
    restricted: str | None = None


class SpeakerSuggestion(SQLModel):
    """The consenting person a label sounds like, by voice (cosine similarity 0-1)."""

    person_id: int
    name: str
    similarity: float


class TranscriptSpeaker(SQLModel):
    label: str
    person_id: int | None
    name: str | None
    #: Who the voice sounds like; accept it with PUT /recordings/{id}/speakers.
    suggestion: SpeakerSuggestion | None = None


class CarryConflict(SQLModel):
    """A correction that could not be replayed onto a new version."""

    segment: int
    start: float
    end: float
    old: str
    new: str
    reason: str


class TranscriptPublic(SQLModel):
    id: int
    recording_id: int
    recording_title: str | None = None
    version: int
    versions: list[int] = Field(default_factory=list)
    backend: str
    model: str
    #: Where this version came from, in words ("imported from WebVTT").
    origin: str = ""
    language: str
    created_at: datetime
    speakers: list[TranscriptSpeaker]
    segments: list[SegmentPublic]
    #: Corrections of the version before replayed onto this one (a re-transcription),
    #: and those that could not be, each with the reason.
    carried: int = 0
    conflicts: list[CarryConflict] = Field(default_factory=list)


class SegmentView(SegmentPublic):
    """A segment as one user may read it (API.md's fields plus the restriction mark)."""

    #: The strictest restriction or withholding agreement over the segment, for every
    #: role; for authors a withheld segment also has text "[restricted]" and no words.
    restricted: RestrictionLevel | None = None
    #: When the restriction marked lifts (an embargo's "closed until"), if it does.
    restricted_until: date | None = None


class TranscriptView(TranscriptPublic):
    segments: list[SegmentView]  # type: ignore[assignment]
    #: Versions of this recording that hold corrections, so that a newer machine version
    #: never hides the fact that an older one was corrected.
    corrected_versions: list[int] = Field(default_factory=list)
    #: After an import: the job that times the cues' words against the audio.
    align_job_id: int | None = None


class SegmentCorrection(SegmentView):
    """A corrected segment with where it sits and what the correction recorded."""

    recording_id: int
    transcript_id: int
    version: int
    latest_version: int
    revision_id: int | None = None
    warning: str | None = None
    #: The job that times the corrected words against the audio (GET /jobs/{id});
    #: until it finishes, ``words_timed`` is "estimated".
    align_job_id: int | None = None


class SegmentEdit(SQLModel):
    """The segments a split or merge left, in transcript order, with where they sit."""

    recording_id: int
    recording_title: str
    transcript_id: int
    version: int
    segments: list[SegmentView]
    revision_ids: list[int]
    #: Set when the words must be timed again (the cut fell inside a word the recogniser
    #: heard as one, or the words were estimated): GET /jobs/{id}; until it finishes the
    #: segments' ``words_timed`` is "estimated".
    align_job_id: int | None = None


class RevisionPublic(SQLModel):
    id: int
    segment_id: int
    user_id: int | None
    user: str | None
    created_at: datetime
    before_text: str
    after_text: str
    before_speaker: str
    after_speaker: str
    kind: EditKind = "correct"
