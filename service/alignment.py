"""The worker's "align" job: time the text of corrected or imported segments.

A correction (``PATCH /segments/{id}``) or an import without word times leaves words
spread by character share (``words_timed: "estimated"``) and queues this job. It aligns
each segment's text over its span of the normalised audio with the Whisper model the
worker already holds (:mod:`pipelines.align`), and stores the words as ``aligned``, or
keeps the estimates where alignment failed (silence, text that was not spoken): times
are never invented.

The audio is read in windows of at most :data:`WINDOW_SECONDS`, so a 3-hour import does
not hold the whole recording in memory. A segment corrected again while its job ran
keeps its newer text; the newer correction's own job times it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from pipelines.align import AUDIO_MARGIN, AlignSpan
from pipelines.audio import load_waveform
from pipelines.runner import ModelCache
from pipelines.text import needs_space_between, word_spans
from pipelines.types import Alignment, ProgressCallback, Word
from service import model_catalog
from service.config import Settings
from service.crud import audit
from service.models.base import utcnow
from service.models.jobs import Job, JobStage, JobState
from service.models.recordings import Recording
from service.models.transcripts import Segment, Transcript
from service.storage import Storage

#: The most audio read at once (seconds): a window holds the spans that fit in it.
WINDOW_SECONDS = 600.0


class NothingToAlign(Exception):
    """The job cannot run: no audio yet, or its transcript version is gone."""


def word_dicts(words: Sequence[Word]) -> list[dict[str, Any]]:
    """Words as a segment stores them (the same shape for ASR and aligned words)."""
    out = []
    for w in words:
        d: dict[str, Any] = {"start": round(w.start, 3), "end": round(w.end, 3),
                             "text": w.text, "probability": round(w.probability, 4)}
        if w.original:
            d["original"] = w.original
        out.append(d)
    return out


def _windows(spans: Sequence[AlignSpan]) -> list[list[int]]:
    """Indexes of the spans, grouped so that each group's audio fits in one window."""
    groups: list[list[int]] = []
    start = 0.0
    for i, span in enumerate(spans):
        if not groups or span.end - start > WINDOW_SECONDS:
            groups.append([])
            start = span.start
        groups[-1].append(i)
    return groups


def _place(segments: Sequence[Segment], parts: Sequence[Sequence[Word]]) -> None:
    """Store each segment's aligned words, and move the cut between neighbours into the
    middle of the measured pause between the last word of one and the first of the next
    (a split placed by character share is then where it was spoken)."""
    for left, right, lw, rw in zip(segments, segments[1:], parts, parts[1:], strict=False):
        cut = round((lw[-1].end + rw[0].start) / 2, 3)
        left.end = right.start = min(max(cut, left.start), right.end)
    for segment, words in zip(segments, parts, strict=True):
        segment.words = word_dicts(words)
        segment.words_timed = "aligned"


def run(engine: Engine, storage: Storage, models: ModelCache, settings: Settings, job: Job,
        *, progress: ProgressCallback, owned: Callable[[Session], Job]) -> None:
    """Align the job's segments and store their words; ``owned(session)`` returns the
    job row if this run still owns it (else raises, and nothing is stored)."""
    opts = job.options or {}
    with Session(engine) as session:
        recording = session.get(Recording, job.recording_id)
        transcript = session.get(Transcript, opts.get("transcript_id"))
        if recording is None or transcript is None:
            raise NothingToAlign("The recording or its transcript version was deleted.")
        if not recording.normalised_path:
            raise NothingToAlign(
                "The recording has no normalised audio yet: transcribe it once (POST "
                f"/api/v1/recordings/{recording.id}/transcribe), then correct or import again.")
        query = select(Segment).where(Segment.transcript_id == transcript.id)
        ids = opts.get("segment_ids")
        if ids is not None:
            query = query.where(col(Segment.id).in_(ids))
        else:
            query = query.where(col(Segment.words_timed) == "estimated")
        segments = session.exec(query.order_by(col(Segment.idx))).all()
        wav = storage.path_of(recording.normalised_path)
        language = transcript.language or recording.language or "auto"
    units = _units(segments, opts.get("joined") or [])
    spans = [AlignSpan(_unit_text(unit), unit[0].start, unit[-1].end,
                       unit[0].language or language) for unit in units]
    backend, spec = model_catalog.spec_for(settings, backend=None, model=None)
    aligner = models.aligner(backend, spec, settings.compute_type)  # type: ignore[arg-type]
    results: list[Alignment] = []
    groups = _windows(spans)
    for n, group in enumerate(groups):
        first, last = spans[group[0]], spans[group[-1]]
        offset = max(0.0, first.start - AUDIO_MARGIN)
        audio = load_waveform(wav, start=offset, end=last.end + AUDIO_MARGIN)

        def part(stage: str, fraction: float, n: int = n) -> None:
            progress(JobStage.align.value, (n + fraction) / len(groups))

        results += aligner.align_spans(audio, [spans[i] for i in group], offset=offset,
                                       progress=part)
    _store(engine, job, units, results, owned)


def _units(segments: Sequence[Segment], joined: Sequence[Sequence[int]]) -> list[list[Segment]]:
    """The segments in order, neighbours named together in ``joined`` as one unit."""
    group_of = {sid: tuple(group) for group in joined for sid in group}
    units: list[list[Segment]] = []
    for s in segments:
        group = group_of.get(s.id or 0)
        if units and group and units[-1][-1].id in group and units[-1][0].id in group:
            units[-1].append(s)
        else:
            units.append([s])
    return units


def _unit_text(unit: Sequence[Segment]) -> str:
    text = unit[0].text
    for s in unit[1:]:
        text = f"{text} {s.text}" if needs_space_between(text, s.text) else text + s.text
    return text


def _share(unit: Sequence[Segment], words: Sequence[Word]) -> list[list[Word]] | None:
    """The aligned words of a unit's joined text given back to its segments, or None
    where the joined text's words are not the segments' words one after another."""
    parts: list[list[Word]] = []
    rest = list(words)
    for s in unit:
        expected = [w.text for w in word_spans(s.text)]
        mine, rest = rest[:len(expected)], rest[len(expected):]
        if [w.text for w in mine] != expected or not mine:
            return None
        parts.append(mine)
    return parts if not rest else None


def _store(engine: Engine, job: Job, units: Sequence[Sequence[Segment]],
           results: Sequence[Alignment], owned: Callable[[Session], Job]) -> None:
    aligned = kept = 0
    with Session(engine) as session:
        row = owned(session)
        for unit, result in zip(units, results, strict=True):
            current = [session.get(Segment, s.id) for s in unit]
            if any(c is None or c.text != s.text or c.start != s.start or c.end != s.end
                   for c, s in zip(current, unit, strict=True)):
                continue  # edited again meanwhile: that edit's job times it
            rows = [c for c in current if c is not None]
            if len(rows) == 1:  # a failed span's words are the aligner's estimates
                rows[0].words = word_dicts(result.words)
                rows[0].words_timed = result.timing
                aligned += result.timing == "aligned"
                kept += result.timing != "aligned"
                continue
            parts = _share(unit, result.words) if result.timing == "aligned" else None
            if parts is None:  # the split's estimates stay, and "estimated" says so
                kept += len(rows)
                continue
            _place(rows, parts)
            aligned += len(rows)
        row.state = JobState.succeeded
        row.progress = 1.0
        row.error = None
        row.finished_at = row.heartbeat_at = utcnow()
        session.add(row)
        audit.record(session, actor=None, action="aligned", object_type="recording",
                     object_id=job.recording_id,
                     summary=f"job {job.id}: {aligned} segment(s) aligned, {kept} kept "
                             "estimated (silence or text not spoken)")
        session.commit()
