"""The transcription job: claim, run the pipeline, store, report progress, honour cancel.

Exactly-once results on an at-most-once queue:

* a worker **claims** a job with one conditional UPDATE (queued -> running); a second
  delivery of the same id finds nothing to claim and returns;
* while it runs, a heartbeat thread writes progress and ``heartbeat_at`` every
  couple of seconds and picks up cancel requests;
* the transcript is written in **one transaction** keyed by ``job_id`` (unique), so a
  job that runs twice still leaves one version;
* ``recover`` re-queues jobs whose heartbeat went stale (a killed worker) and queued
  jobs the queue no longer holds (a Redis restart);
* the attempt number a claim gives is a **fencing token**: every later write of the run
  (progress, the transcript, the final state) is conditional on the job still being
  running under that attempt. A worker that lost the job (its heartbeat went stale during
  a database outage or a long pause and another worker took it over) finds out at its
  next write and drops the run without writing anything;
* the database being out of reach is waited out, not a failed attempt: progress writes
  are skipped while it is down, and storing the transcript is retried for up to
  ``job_stale_seconds``, so an outage of seconds does not throw away hours of CPU.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from pipelines.device import compute_type_for
from pipelines.errors import (
    AudioError,
    CancelledError,
    DurationLimitError,
    ModelError,
    ModelNotFoundError,
)
from pipelines.runner import RunOptions, RunResult, StageProgress, run_stages
from pipelines.threads import lower_thread_priority, use_torch_threads
from pipelines.vocabulary import build_prompt
from service import alignment, model_catalog
from service.crud import audit, voices
from service.crud.carry import carry_corrections
from service.crud.jobs import ALIGN, create_align_job
from service.crud.transcripts import SegmentIn, add_version
from service.crud.voices import VOICEPRINT_JOB
from service.db import DB_UNAVAILABLE_ERRORS
from service.models.base import utcnow
from service.models.jobs import Job, JobStage, JobState
from service.models.people import Person
from service.models.recordings import Participant, Recording, RecordingStatus, Speaker
from service.models.transcripts import Transcript
from service.storage import sha256_file
from service.worker import voice_jobs
from service.worker.jobrows import (
    JobLost,
    WorkerContext,
    finish,
    owned,
    retry_or_fail,
    take,
)

log = logging.getLogger("sourcebook.worker")

HEARTBEAT_SECONDS = 2.0
#: Longest pause between tries to store a finished transcript while the database is down.
STORE_RETRY_MAX_WAIT_S = 10.0


_context: WorkerContext | None = None


def set_context(ctx: WorkerContext | None) -> None:
    global _context
    _context = ctx


def execute_delivered(job_id: int) -> None:
    """Entry point of the queue task."""
    if _context is None:
        raise RuntimeError("no worker context: start workers with `sourcebook worker`")
    # Set in the consumer thread itself: torch holds its thread count per calling thread,
    # and Linux its nice value; the model threads a job starts inherit both.
    lower_thread_priority(_context.settings.job_nice)
    if _context.models.cpu_threads:
        use_torch_threads(_context.models.cpu_threads)
    execute(_context, job_id)


class _Reporter:
    """Collects progress from the pipeline thread; a heartbeat thread persists it."""

    def __init__(self, ctx: WorkerContext, job_id: int, attempt: int, diarize: bool) -> None:
        self.ctx = ctx
        self.job_id = job_id
        self.attempt = attempt
        self.scale = StageProgress(None, run_stages(diarize))
        self.stage: str = JobStage.normalise.value
        self._started: str | None = None  # the last stage the run said it started
        self.progress = 0.0
        self.cancelled = threading.Event()
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{job_id}",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def on_stage(self, stage: str) -> None:
        self.stage = stage
        if stage in self.scale.offsets:
            self.progress = max(self.progress, self.scale.overall(stage, 0.0))
        try:
            self.flush()
        except DB_UNAVAILABLE_ERRORS:
            # Progress is best effort: the pipeline goes on, the heartbeat retries.
            log.warning("job %s: database unreachable; stage %s not recorded yet",
                        self.job_id, stage)
        self.check()

    def __call__(self, stage: str, fraction: float) -> None:
        if stage in self.scale.offsets and stage != self._started:
            self._started = stage  # a stage starts: record it now, not at the next beat
            self.on_stage(stage)
        if stage in self.scale.offsets:
            self.progress = max(self.progress, self.scale.overall(stage, fraction))
        self.check()

    def check(self) -> None:
        if self.lost.is_set():
            raise JobLost(f"job {self.job_id} attempt {self.attempt} is no longer ours")
        if self.cancelled.is_set():
            raise CancelledError("cancelled by request")

    def flush(self) -> None:
        """Persist stage, progress and heartbeat now; learn about cancel requests and
        whether the job is still this run's."""
        progress = round(min(self.progress, 0.999), 4)
        # The heartbeat thread and the pipeline's stage changes both flush; a flush that
        # read the progress earlier can commit later. Never moving it back keeps what
        # clients see monotonic (a 0.6 once became 0.05 again in the cluster test).
        ahead = col(Job.progress) <= progress
        with Session(self.ctx.engine) as session:
            result = session.execute(
                sa.update(Job)
                .where(*owned(self.job_id, self.attempt))
                .values(stage=sa.case((ahead, self.stage), else_=col(Job.stage)),
                        progress=sa.case((ahead, progress), else_=col(Job.progress)),
                        heartbeat_at=utcnow())
            )
            session.commit()
            if result.rowcount != 1:  # type: ignore[attr-defined]
                self.lost.set()
                return
            wanted = session.exec(select(Job.cancel_requested).where(Job.id == self.job_id)).first()
        if wanted:
            self.cancelled.set()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                self.flush()
            except DB_UNAVAILABLE_ERRORS as exc:  # an outage: the next beat retries
                log.warning("heartbeat of job %s failed: database unreachable (%s)",
                            self.job_id, type(exc).__name__)
            except Exception:
                log.exception("heartbeat of job %s failed", self.job_id)


def claim(ctx: WorkerContext, job_id: int) -> Job | None:
    """Atomically move a queued job to running; None if someone else has it."""
    with Session(ctx.engine, expire_on_commit=False) as session:
        now = utcnow()
        result = session.execute(
            sa.update(Job)
            .where(col(Job.id) == job_id, col(Job.state) == JobState.queued,
                   col(Job.cancel_requested).is_(False))
            .values(state=JobState.running, attempts=Job.attempts + 1, worker=ctx.name,
                    heartbeat_at=now, started_at=now, error=None,
                    stage=sa.case((col(Job.kind) == ALIGN, JobStage.align.value),
                                  else_=JobStage.normalise.value),
                    progress=0.0)  # a new attempt starts from nothing (never moves back)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            session.rollback()
            return None
        job = session.get(Job, job_id)
        assert job is not None
        job.options = {**(job.options or {}), **_device_options(ctx, job)}
        session.add(job)
        recording = session.get(Recording, job.recording_id)
        # Alignments and voiceprint jobs leave the transcript's status as it is.
        if recording is not None and job.kind not in (ALIGN, VOICEPRINT_JOB):
            recording.status = RecordingStatus.processing
            session.add(recording)
        session.commit()
        return job


def _device_options(ctx: WorkerContext, job: Job) -> dict[str, str]:
    """Where this attempt runs its models, for the job's recorded options: the device and,
    for jobs that run Whisper, what it computes in (float16 on CUDA, int8 on the CPU)."""
    device = ctx.models.device
    if job.kind == VOICEPRINT_JOB:
        return {"device": device}
    # Alignments use the server's default backend (service.alignment), as here.
    backend = None if job.kind == ALIGN else (job.options or {}).get("backend")
    backend = backend or ctx.settings.asr_backend
    return {"device": device,
            "compute_type": compute_type_for(str(backend), device, ctx.settings.compute_type)}


def run_options(ctx: WorkerContext, session: Session, job: Job, recording: Recording,
                ) -> RunOptions:
    opts = job.options or {}
    people = session.exec(
        select(Person).join(Participant, col(Participant.person_id) == Person.id)
        .where(Participant.recording_id == recording.id)
    ).all()
    language = opts.get("language") or recording.language or "auto"
    prompt = build_prompt(
        [p.name for p in people],
        sorted({p.organisation for p in people if p.organisation}),
        language=language,
    )
    # Names only: a job row naming a path or an unknown model fails here, before any
    # file is opened (raises UnknownModel).
    backend, model = model_catalog.spec_for(ctx.settings, backend=opts.get("backend"),
                                            model=opts.get("model"))
    return RunOptions(
        backend=backend,  # type: ignore[arg-type]  # checked by spec_for
        model=model,
        language=language,
        beam_size=ctx.settings.beam_size,
        compute_type=ctx.settings.compute_type,
        initial_prompt=prompt,
        num_speakers=opts.get("num_speakers"),
        min_speakers=opts.get("min_speakers"),
        max_speakers=opts.get("max_speakers"),
        diarization_pipeline=ctx.settings.diarization_pipeline or None,
        max_duration=ctx.settings.max_duration_seconds,
    )


def execute(ctx: WorkerContext, job_id: int) -> None:
    """Run one job to a final state (or back to queued for a retry)."""
    # Looked up at each call, not bound at import: tests replace pipelines.runner.run.
    from pipelines.runner import run

    job = claim(ctx, job_id)
    if job is None:
        log.info("job %s is not queued any more; skipping this delivery", job_id)
        return
    if job.kind == ALIGN:
        _execute_align(ctx, job)
        return
    if job.kind == VOICEPRINT_JOB:
        voice_jobs.execute(ctx, job)
        return
    with Session(ctx.engine, expire_on_commit=False) as session:
        recording = session.get(Recording, job.recording_id)
        if recording is None:
            return
        try:
            options = run_options(ctx, session, job, recording)
        except model_catalog.UnknownModel as exc:
            # Not worth a retry, and nothing was loaded, so nothing of a file is quoted.
            finish(ctx, job_id, job.attempts, JobState.failed, str(exc))
            return
    assert recording.id is not None
    attempt = job.attempts
    # A worker killed mid-normalise leaves its temp file; the re-run starts clean.
    ctx.storage.remove_partial_files(recording.id)
    reporter = _Reporter(ctx, job_id, attempt, options.diarize)
    reporter.start()
    try:
        src = ctx.storage.path_of(recording.media_path)
        normalised = ctx.storage.recording_dir(recording.id) / "normalised.wav"
        result = run(src, options, models=ctx.models, progress=reporter,
                     normalised_out=normalised)
        reporter.on_stage(JobStage.store.value)
        # The heartbeat goes on while storing: a store that waits out an outage must
        # not look like a dead worker once the database is back.
        store_when_reachable(ctx, job_id, recording.id, result, attempt)
        reporter.stop()
    except JobLost as exc:
        reporter.stop()
        log.warning("%s: dropping this run; the job's current owner finishes it", exc)
    except CancelledError:
        reporter.stop()
        finish(ctx, job_id, attempt, JobState.cancelled, "cancelled by request")
    except DurationLimitError as exc:
        reporter.stop()
        finish(ctx, job_id, attempt, JobState.failed,
                f"{exc} The maximum is SOURCEBOOK_MAX_DURATION_HOURS "
                f"({ctx.settings.max_duration_hours:g} h).")
    except (AudioError, ModelNotFoundError) as exc:
        # Bad media and missing models do not get better by retrying.
        reporter.stop()
        finish(ctx, job_id, attempt, JobState.failed, str(exc))
    except ModelError:
        # A model that will not load will not load on a retry either. Its error quotes the
        # path and whatever the loader read (a pickle error shows the file's first byte),
        # so the job row only says where to look.
        reporter.stop()
        log.exception("job %s: the %s model %r failed to load", job_id, options.backend,
                      options.model)
        finish(ctx, job_id, attempt, JobState.failed,
                f"The {options.backend} model could not be loaded; a server admin will find "
                "the reason in the worker log (`sourcebook models list` shows what is "
                "installed).")
    except Exception as exc:
        reporter.stop()
        log.exception("job %s failed", job_id)
        retry_or_fail(ctx, job_id, attempt, f"{type(exc).__name__}: {exc}")
    finally:
        reporter.stop()


def _execute_align(ctx: WorkerContext, job: Job) -> None:
    """Time the text of corrected or imported segments against the audio."""
    assert job.id is not None
    reporter = _Reporter(ctx, job.id, job.attempts, diarize=False)
    reporter.scale = StageProgress(None, [JobStage.align])
    reporter.stage = JobStage.align.value
    reporter.start()
    try:
        alignment.run(ctx.engine, ctx.storage, ctx.models, ctx.settings, job,
                      progress=reporter, owned=lambda s: take(s, job.id or 0, job.attempts))
        reporter.stop()
    except JobLost as exc:
        reporter.stop()
        log.warning("%s: dropping this alignment; the job's current owner finishes it", exc)
    except CancelledError:
        reporter.stop()
        finish(ctx, job.id, job.attempts, JobState.cancelled, "cancelled by request")
    except (AudioError, ModelNotFoundError, alignment.NothingToAlign) as exc:
        reporter.stop()
        finish(ctx, job.id, job.attempts, JobState.failed, str(exc))
    except Exception as exc:
        reporter.stop()
        log.exception("alignment job %s failed", job.id)
        retry_or_fail(ctx, job.id, job.attempts, f"{type(exc).__name__}: {exc}")
    finally:
        reporter.stop()


def _word_dicts(segment: Any) -> list[dict[str, Any]]:
    return alignment.word_dicts(segment.words)


def store_when_reachable(ctx: WorkerContext, job_id: int, recording_id: int,
                         result: RunResult, attempt: int) -> None:
    """:func:`store`, waiting out a database outage for up to ``job_stale_seconds``.

    The result may be hours of CPU; a database that is back in seconds must not cost
    it. Past that budget the error propagates and recovery re-runs the job later.
    """
    deadline = time.monotonic() + ctx.settings.job_stale_seconds
    wait = 0.5
    while True:
        try:
            store(ctx, job_id, recording_id, result, attempt)
            return
        except DB_UNAVAILABLE_ERRORS as exc:
            if time.monotonic() + wait > deadline:
                raise
            log.warning("job %s: database unreachable while storing (%s); retrying in "
                        "%.1f s", job_id, type(exc).__name__, wait)
            time.sleep(wait)
            wait = min(wait * 2, STORE_RETRY_MAX_WAIT_S)


def store(ctx: WorkerContext, job_id: int, recording_id: int, result: RunResult,
          attempt: int) -> None:
    """Write the transcript version, its segments and speakers, in one transaction.

    Only while the job is running under ``attempt``; a run that lost its job raises
    :class:`JobLost` and writes nothing.
    """
    normalised_sha = sha256_file(result.normalised)
    with Session(ctx.engine) as session:
        job = take(session, job_id, attempt)
        recording = session.get(Recording, recording_id)
        if recording is None:
            return  # deleted while running; its files went with it
        realign: list[int] = []
        if session.exec(select(Transcript.id).where(Transcript.job_id == job_id)).first():
            log.info("job %s already stored its transcript", job_id)
        else:
            previous = session.exec(select(Transcript).where(
                Transcript.recording_id == recording_id).order_by(
                col(Transcript.version).desc())).first()
            new = add_version(
                session,
                recording_id=recording_id,
                segments=[
                    SegmentIn(start=seg.start, end=seg.end, speaker=seg.speaker, text=seg.text,
                              language=seg.language, words=_word_dicts(seg))
                    for seg in result.segments
                ],
                backend=result.transcription.backend,
                model=result.transcription.model,
                language=result.transcription.language,
                created_by=job.created_by,
                job_id=job_id,
            )
            session.flush()
            _upsert_speakers(ctx, session, recording_id, result)
            if previous is not None:
                realign = carry_corrections(session, previous=previous, new=new)
        recording.status = RecordingStatus.transcribed
        recording.normalised_path = str(result.normalised.relative_to(ctx.storage.root))
        recording.normalised_sha256 = normalised_sha
        recording.updated_at = utcnow()
        session.add(recording)
        job.state = JobState.succeeded
        job.stage = JobStage.store
        job.progress = 1.0
        job.error = None
        job.finished_at = utcnow()
        job.heartbeat_at = utcnow()
        job.timings = result.timings
        session.add(job)
        audit.record(session, actor=None, action="transcribed", object_type="recording",
                     object_id=recording_id,
                     summary=f"job {job_id}: {len(result.segments)} segments, "
                             f"{len(result.diarization.speakers)} speakers")
        try:
            session.commit()
        except IntegrityError:
            # Another delivery of this job stored first (unique job_id): that one stands.
            session.rollback()
            log.info("job %s: transcript already stored by another delivery", job_id)
            return
        if realign:
            assert new.id is not None
            align = create_align_job(session, recording_id=recording_id, transcript_id=new.id,
                                     segment_ids=realign, actor=None)
            assert align.id is not None
            ctx.queue.enqueue(align.id)


def _upsert_speakers(ctx: WorkerContext, session: Session, recording_id: int,
                     result: RunResult) -> None:
    """Speaker rows with their embeddings, under the consent rules; then recognition.

    A label already named (a re-transcription keeps the map) as someone without consent to
    voice recognition keeps no embedding; named as a consenting person, the new embedding
    is enrolled. Then every label gets its suggestion (service.crud.voices).
    """

    labels = {s.speaker for s in result.segments} | set(result.diarization.speakers)
    existing = {s.label: s for s in session.exec(
        select(Speaker).where(Speaker.recording_id == recording_id)).all()}
    model = voice_jobs.embedding_model_name(ctx) if result.diarization.embeddings else None
    enrolled = False
    for label in sorted(labels):
        speaker = existing.get(label) or Speaker(recording_id=recording_id, label=label)
        emb = result.diarization.embeddings.get(label)
        values = [float(x) for x in emb] if emb is not None else []
        person = session.get(Person, speaker.person_id) if speaker.person_id else None
        # A speaker with too little speech gets a NaN embedding; JSON has no NaN and
        # PostgreSQL refuses it, which used to fail the whole job. No voiceprint then.
        if (values and all(math.isfinite(x) for x in values)
                and (person is None or person.biometric_consent)):
            speaker.embedding = [round(x, 6) for x in values]
            speaker.embedding_model = model
            if person is not None:
                session.add(speaker)
                session.flush()
                voices.enrol_embedding(session, person, speaker, speaker.embedding, actor=None)
                enrolled = True
        session.add(speaker)
    session.flush()
    voices.refresh_suggestions(session, None if enrolled else [recording_id],
                               auto_apply=ctx.settings.voice_auto_apply)


def recover(ctx: WorkerContext) -> list[int]:
    """Re-queue jobs a dead worker held and queued jobs the queue lost; returns their ids."""
    stale_before = utcnow() - timedelta(seconds=ctx.settings.job_stale_seconds)
    requeued: list[int] = []
    with Session(ctx.engine) as session:
        stale = session.exec(
            select(Job.id, Job.attempts, Job.worker).where(
                col(Job.state) == JobState.running, col(Job.heartbeat_at) < stale_before)
        ).all()
    for job_id, attempts, worker in stale:
        assert job_id is not None
        if attempts >= ctx.settings.job_max_attempts:
            values: dict[str, Any] = {
                "state": JobState.failed, "finished_at": utcnow(),
                "error": f"the worker running it stopped responding {attempts} times "
                         "(crash or out of memory); check the worker logs, then "
                         "POST /api/v1/recordings/{id}/transcribe to try again"}
        else:
            values = {"state": JobState.queued,
                      "error": f"re-queued: worker {worker} stopped responding"}
        with Session(ctx.engine) as session:
            # Conditional, so a run that stored in the meantime, or another worker's
            # sweep, is not overruled.
            done = session.execute(sa.update(Job).where(
                *owned(job_id, attempts), col(Job.heartbeat_at) < stale_before,
            ).values(**values))
            if done.rowcount != 1:  # type: ignore[attr-defined]
                session.rollback()
                continue
            audit.record(session, actor=None, action="job-recovered", object_type="job",
                         object_id=job_id, summary=values["error"])
            session.commit()
        if values["state"] == JobState.queued:
            requeued.append(job_id)
    with Session(ctx.engine) as session:
        queued = session.exec(select(Job.id).where(col(Job.state) == JobState.queued)).all()
    waiting = ctx.queue.waiting_job_ids() if hasattr(ctx.queue, "waiting_job_ids") else set()
    for job_id in queued:
        if job_id is not None and (job_id in requeued or job_id not in waiting):
            ctx.queue.enqueue(job_id)
            if job_id not in requeued:
                requeued.append(job_id)
    return requeued


class Recovery:
    """Runs ``recover`` at start and then every ``interval`` seconds, in a thread."""

    def __init__(self, ctx: WorkerContext, interval: float | None = None) -> None:
        self.ctx = ctx
        # Sweep often enough that a dead worker's job waits at most ~1.5x the stale time.
        self.interval = interval or min(30.0, ctx.settings.job_stale_seconds / 2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="recovery", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                ids = recover(self.ctx)
                if ids:
                    log.warning("re-queued jobs %s", ids)
            except Exception:
                log.exception("job recovery sweep failed")
            self._stop.wait(self.interval)
