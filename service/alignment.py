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
    spans = [AlignSpan(s.text, s.start, s.end, s.language or language) for s in segments]
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
    _store(engine, job, segments, spans, results, owned)


def _store(engine: Engine, job: Job, segments: Sequence[Segment],
           spans: Sequence[AlignSpan], results: Sequence[Alignment],
           owned: Callable[[Session], Job]) -> None:
    aligned = kept = 0
    with Session(engine) as session:
        row = owned(session)
        for segment, span, result in zip(segments, spans, results, strict=True):
            current = session.get(Segment, segment.id)
            if current is None or current.text != span.text:
                continue  # corrected again meanwhile: that correction's job times it
            current.words = word_dicts(result.words)
            current.words_timed = result.timing
            session.add(current)
            aligned += result.timing == "aligned"
            kept += result.timing != "aligned"
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
