"""The worker's part of voice recognition: which model made an embedding, and the
``voiceprint`` job that recomputes label embeddings from the audio.

A label named as a consenting person needs an embedding to be enrolled. Recordings
transcribed before embeddings were kept (or whose embeddings' model is unknown) have none;
recomputing one runs the diarizer's embedding model, which only a worker may do, so the API
queues a job of kind ``voiceprint`` (service.crud.voices) and this module runs it: the
latest transcript's segments are the label's turns, the stored normalised audio the input.
The result is kept under the consent rules in force when it is stored, not when queued.
"""

from __future__ import annotations

import hashlib
import logging
from functools import cache
from pathlib import Path

from sqlmodel import Session, col, select

from pipelines.audio import load_waveform, normalise
from pipelines.errors import AudioError, ModelError, ModelNotFoundError
from pipelines.models import resolve_diarization_pipeline
from pipelines.types import SpeakerTurn
from pipelines.voices import embed_labels, embedder_from_diarizer
from service.crud import audit, voices
from service.models.base import utcnow
from service.models.jobs import Job, JobState
from service.models.recordings import Recording
from service.models.transcripts import Segment, Transcript
from service.worker.jobrows import JobLost, WorkerContext, finish, retry_or_fail, take

log = logging.getLogger("sourcebook.worker")


@cache
def _model_name_at(path: str) -> str:
    root = Path(path)
    weights = root / "embedding" / "pytorch_model.bin"
    digest = hashlib.sha256()
    # The weights identify the model; a pipeline naming a hub model has only its config.
    source = weights if weights.is_file() else root / "config.yaml"
    with source.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return f"{root.name}:{digest.hexdigest()[:16]}"


def embedding_model_name(ctx: WorkerContext) -> str:
    """A name that changes whenever the diarizer's embedding weights do (no model load)."""
    path = resolve_diarization_pipeline(ctx.settings.diarization_pipeline or None,
                                        ctx.settings.models_dir)
    return _model_name_at(str(path.resolve()))


def _turns(session: Session, recording_id: int) -> list[SpeakerTurn]:
    latest = session.exec(select(Transcript.id).where(Transcript.recording_id == recording_id)
                          .order_by(col(Transcript.version).desc())).first()
    if latest is None:
        return []
    return [SpeakerTurn(s.start, s.end, s.speaker) for s in session.exec(
        select(Segment).where(Segment.transcript_id == latest).order_by(col(Segment.idx)))]


def execute(ctx: WorkerContext, job: Job) -> None:
    """Run a claimed ``voiceprint`` job to a final state."""
    assert job.id is not None
    attempt = job.attempts
    try:
        vectors, model = _compute(ctx, job)
        with Session(ctx.engine) as session:
            taken = take(session, job.id, attempt)
            voices.store_recomputed(session, job.recording_id, model, vectors, actor=None)
            taken.state = JobState.succeeded
            taken.progress = 1.0
            taken.finished_at = utcnow()
            taken.error = None
            session.add(taken)
            got = sum(v is not None for v in vectors.values())
            audit.record(session, actor=None, action="voiceprint-recomputed",
                         object_type="job", object_id=job.id,
                         summary=f"recording {job.recording_id}: {got} of "
                                 f"{len(vectors)} label(s) embedded")
            session.commit()
    except JobLost as exc:
        log.warning("%s: dropping this run", exc)
    except (AudioError, ModelNotFoundError, ModelError, LookupError) as exc:
        finish(ctx, job.id, attempt, JobState.failed, str(exc))
    except Exception as exc:
        log.exception("job %s failed", job.id)
        retry_or_fail(ctx, job.id, attempt, f"{type(exc).__name__}: {exc}")


def _compute(ctx: WorkerContext, job: Job) -> tuple[dict[str, list[float] | None], str]:
    labels = sorted(str(x) for x in job.options.get("labels") or [])
    with Session(ctx.engine) as session:
        recording = session.get(Recording, job.recording_id)
        if recording is None:
            raise LookupError(f"recording {job.recording_id} was deleted")
        turns = _turns(session, job.recording_id)
        stored = recording.normalised_path
        media = recording.media_path
    if not labels or not turns:
        return {}, embedding_model_name(ctx)
    temp: Path | None = None
    wav = ctx.storage.path_of(stored) if stored else None
    if wav is None or not wav.is_file():
        # An imported transcript: no normalised audio yet. Hidden temp name, so a killed
        # worker's leftover is swept by Storage.remove_partial_files.
        temp = ctx.storage.recording_dir(job.recording_id) / ".voiceprint.wav.tmp"
        normalise(ctx.storage.path_of(media), temp,
                  max_duration=ctx.settings.max_duration_seconds)
        wav = temp
    try:
        waveform = load_waveform(wav)
        diarizer = ctx.models.diarizer(ctx.settings.diarization_pipeline or None)
        embedded = embed_labels(embedder_from_diarizer(diarizer), waveform, turns,
                                labels=labels)
    finally:
        if temp is not None:
            temp.unlink(missing_ok=True)
        ctx.models.release()
    vectors = {label: (None if v is None else [float(x) for x in v])
               for label, v in embedded.items()}
    return vectors, embedding_model_name(ctx)
