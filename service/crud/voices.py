"""Voiceprints under consent: who may have one, enrolment, suggestions, deletion.

Voice recognition is biometric processing (GDPR Art. 9, PIPL Art. 28), so:

- **Consent.** A person may hold a voiceprint only while a granted, not withdrawn consent
  agreement of theirs says ``voiceprint: true`` (any scope). ``Person.biometric_consent``
  caches that; :func:`sync_consent` is its only writer and runs after every agreement
  change. When consent ends, the voiceprint, the embeddings of labels named as the person
  and every suggestion built from them are deleted in the same transaction, and audited.
- **Named labels.** A label's embedding is biometric once the label names someone: naming
  it as a person without consent drops it; unnamed labels keep theirs, to be matched later.
- **Enrolment.** Naming a label as a consenting person adds the label's embedding to the
  person's voiceprint (``pipelines.voices.enrol``: several samples from different
  recordings, bounded per embedding model). A label without a usable embedding (a
  recording transcribed before embeddings were kept, or of unknown model) gets a
  ``voiceprint`` job: the worker recomputes it from the audio. This module runs in the API
  process and never does model work; matching is one matrix product in numpy.
- **Suggestions.** :func:`refresh_suggestions` after every transcription and whenever a
  voiceprint changes (enrolment, withdrawal, erasure): each label with an embedding gets
  the consenting person it sounds like (participants first, then the archive; threshold
  and margin from ``pipelines.voices``), or none.

Embeddings and voiceprints never leave the server: no API response carries them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import func
from sqlmodel import Session, col, select

from pipelines.voices import AUTO_APPLY_THRESHOLD, MARGIN, THRESHOLD, Voiceprints, enrol, match
from service.crud import audit
from service.models.base import utcnow
from service.models.consent import ConsentAgreement, ConsentStatus
from service.models.jobs import Job, JobState
from service.models.people import Person
from service.models.recordings import Participant, Speaker
from service.models.transcripts import SpeakerSuggestion
from service.models.users import User

#: ``Job.kind`` of a recomputation of label embeddings from the audio (worker only).
VOICEPRINT_JOB = "voiceprint"

#: Called with a job id after the commit that created the job (the API's queue).
Enqueue = Callable[[int], None]


def source_of(recording_id: int, label: str) -> str:
    """The voiceprint sample's name for a label: naming it again replaces the sample."""
    return f"recording {recording_id} {label}"


def has_consent(session: Session, person_id: int) -> bool:
    """Whether a granted, not withdrawn agreement of the person allows a voiceprint."""
    return session.exec(select(ConsentAgreement.id).where(
        ConsentAgreement.person_id == person_id,
        ConsentAgreement.status == ConsentStatus.granted,
        col(ConsentAgreement.withdrawn_at).is_(None),
        col(ConsentAgreement.voiceprint).is_(True),
    )).first() is not None


def samples_of(person: Person) -> list[dict[str, Any]]:
    vp = person.voiceprint
    if not isinstance(vp, dict):
        return []
    samples = vp.get("samples")
    return [s for s in samples if isinstance(s, dict)] if isinstance(samples, list) else []


def usable_embedding(speaker: Speaker) -> list[float] | None:
    """The label's embedding if it can be compared (finite, non-zero, of a known model)."""
    emb = speaker.embedding
    if not speaker.embedding_model or not isinstance(emb, list) or not emb:
        return None
    v = np.asarray(emb, dtype=np.float64)
    if v.ndim != 1 or not np.all(np.isfinite(v)) or not np.any(v):
        return None
    return [float(x) for x in emb]


@dataclass
class Changes:
    """What one operation did to voiceprints, for the caller and the audit log."""

    enrolled: list[str] = field(default_factory=list)
    unenrolled: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    #: Jobs created to recompute embeddings (enqueue them after the commit).
    jobs: list[int] = field(default_factory=list)
    voiceprints_deleted: int = 0

    @property
    def voiceprints_changed(self) -> bool:
        return bool(self.enrolled or self.unenrolled or self.voiceprints_deleted)


# --------------------------------------------------------------------------- consent


def sync_consent(session: Session, person: Person, *, actor: User | None, why: str,
                 ) -> Changes:
    """Bring ``biometric_consent`` in line with the agreements and act on a change.

    Consent gone: voiceprint, named labels' embeddings and suggestions deleted (audited).
    Consent given: labels already named as the person are enrolled (or queued for
    recomputation). Flushes; the caller commits.
    """
    assert person.id is not None
    session.flush()
    consent = has_consent(session, person.id)
    changes = Changes()
    if consent == person.biometric_consent and (consent or not _holds_biometrics(session, person)):
        return changes
    person.biometric_consent = consent
    session.add(person)
    if consent:
        audit.record(session, actor=actor, action="voiceprint-consent", object_type="person",
                     object_id=person.id, summary=f"consent to voice recognition given ({why})")
        for row in session.exec(select(Speaker).where(Speaker.person_id == person.id)
                                .order_by(col(Speaker.recording_id), col(Speaker.label))):
            _enrol_or_queue(session, row, person, changes, actor)
        session.flush()
        if changes.voiceprints_changed:
            refresh_suggestions(session)
        return changes
    forget(session, person, actor=actor, why=why, changes=changes)
    return changes


def _holds_biometrics(session: Session, person: Person) -> bool:
    if samples_of(person):
        return True
    return any(r.embedding for r in session.exec(
        select(Speaker).where(Speaker.person_id == person.id)))


def forget(session: Session, person: Person, *, actor: User | None, why: str,
           changes: Changes | None = None) -> Changes:
    """Delete the person's voiceprint, their named labels' embeddings and every suggestion
    of them; audited. Flushes; the caller commits."""
    assert person.id is not None
    changes = changes or Changes()
    had = len(samples_of(person))
    person.voiceprint = None
    person.biometric_consent = False
    person.updated_at = utcnow()
    session.add(person)
    for row in session.exec(select(Speaker).where(Speaker.person_id == person.id)):
        if row.embedding is not None or row.embedding_model is not None:
            _drop_embedding(row)
            session.add(row)
            changes.dropped.append(source_of(row.recording_id, row.label))
    _cancel_queued(session, person_ids={person.id})
    session.flush()
    suggested = refresh_suggestions(session, exclude={person.id})
    changes.voiceprints_deleted += 1 if had else 0
    audit.record(session, actor=actor, action="voiceprint-delete", object_type="person",
                 object_id=person.id,
                 summary=f"{why}: voiceprint of {had} sample(s) deleted, "
                         f"{len(changes.dropped)} label embedding(s) dropped, "
                         f"{suggested} suggestion(s) recomputed")
    return changes


def _drop_embedding(row: Speaker) -> None:
    row.embedding = None
    row.embedding_model = None
    row.suggestion_person_id = None
    row.suggestion_similarity = None


# --------------------------------------------------------------------------- naming


def on_named(session: Session, rows: Sequence[tuple[Speaker, int | None]],
             *, actor: User | None) -> Changes:
    """Apply the biometric rules to labels whose person changed: ``(row, old person)``.

    The row already carries its new ``person_id``. Flushes; the caller commits and then
    enqueues ``changes.jobs``.
    """
    changes = Changes()
    for row, old in rows:
        new = row.person_id
        if old is not None and old != new:
            _unenrol(session, old, row, changes)
        if new is None:
            continue  # unnamed: the embedding stays, to be matched later
        person = session.get(Person, new)
        if person is None:
            continue
        if not person.biometric_consent:
            if row.embedding is not None or row.embedding_model is not None:
                _drop_embedding(row)
                session.add(row)
                changes.dropped.append(source_of(row.recording_id, row.label))
            continue
        _enrol_or_queue(session, row, person, changes, actor)
    session.flush()
    recording_id = rows[0][0].recording_id if rows else None
    for what, names in (("dropped (no consent to voice recognition)", changes.dropped),
                        ("removed from a voiceprint", changes.unenrolled)):
        if names:
            audit.record(session, actor=actor, action="voiceprint-label",
                         object_type="recording", object_id=recording_id,
                         summary=f"label embedding {what}: " + "; ".join(names))
    if changes.voiceprints_changed:
        refresh_suggestions(session)
    return changes


def _unenrol(session: Session, person_id: int, row: Speaker, changes: Changes) -> None:
    person = session.get(Person, person_id)
    if person is None:
        return
    source = source_of(row.recording_id, row.label)
    samples = samples_of(person)
    kept = [s for s in samples if s.get("source") != source]
    if len(kept) != len(samples):
        person.voiceprint = {"samples": kept} if kept else None
        person.updated_at = utcnow()
        session.add(person)
        changes.unenrolled.append(source)


def _enrol_or_queue(session: Session, row: Speaker, person: Person, changes: Changes,
                    actor: User | None) -> None:
    embedding = usable_embedding(row)
    if embedding is None:
        job = queue_recomputation(session, row.recording_id, [row.label], actor=actor)
        if job.id is not None and job.id not in changes.jobs:
            changes.jobs.append(job.id)
        return
    enrol_embedding(session, person, row, embedding, actor=actor)
    changes.enrolled.append(source_of(row.recording_id, row.label))


def enrol_embedding(session: Session, person: Person, row: Speaker, embedding: list[float],
                    *, actor: User | None) -> None:
    """Add a named label's embedding to a consenting person's voiceprint (bounded)."""
    assert person.biometric_consent and row.embedding_model
    model = row.embedding_model
    source = source_of(row.recording_id, row.label)
    samples = samples_of(person)
    same_model = [s for s in samples if s.get("model") == model and s.get("source") != source]
    others = [s for s in samples if s.get("model") != model]
    kept = enrol([(str(s["source"]), s["embedding"]) for s in same_model], source, embedding)
    meta = {str(s["source"]): s for s in same_model}
    fresh = {"source": source, "recording_id": row.recording_id, "label": row.label,
             "model": model, "added_at": utcnow().isoformat()}
    new_samples = [
        {**(meta.get(src) or fresh), "embedding": [round(x, 6) for x in vec]}
        for src, vec in kept
    ]
    person.voiceprint = {"samples": others + new_samples}
    person.updated_at = utcnow()
    session.add(person)
    audit.record(session, actor=actor, action="voiceprint-enrol", object_type="person",
                 object_id=person.id,
                 summary=f"{source} enrolled; {len(new_samples)} sample(s) of model {model}")


def forget_recording(session: Session, recording_id: int, *, actor: User | None) -> int:
    """Remove the samples a recording gave to voiceprints (the recording is being erased);
    returns how many. Flushes and recomputes suggestions; the caller commits."""
    removed = 0
    for person in session.exec(select(Person).where(col(Person.voiceprint).is_not(None))):
        samples = samples_of(person)
        kept = [s for s in samples if s.get("recording_id") != recording_id]
        if len(kept) != len(samples):
            removed += len(samples) - len(kept)
            person.voiceprint = {"samples": kept} if kept else None
            person.updated_at = utcnow()
            session.add(person)
            audit.record(session, actor=actor, action="voiceprint-unenrol",
                         object_type="person", object_id=person.id,
                         summary=f"recording {recording_id} erased: "
                                 f"{len(samples) - len(kept)} sample(s) removed")
    if removed:
        session.flush()
        refresh_suggestions(session)
    return removed


# --------------------------------------------------------------------------- recomputation


def queue_recomputation(session: Session, recording_id: int, labels: Iterable[str], *,
                        actor: User | None) -> Job:
    """A ``voiceprint`` job recomputing these labels' embeddings, merged into a queued one."""
    wanted = set(labels)
    for job in session.exec(select(Job).where(
            Job.recording_id == recording_id, Job.kind == VOICEPRINT_JOB,
            Job.state == JobState.queued)):
        have = set(job.options.get("labels") or [])
        if not wanted <= have:
            job.options = {**job.options, "labels": sorted(have | wanted)}
            session.add(job)
        return job
    job = Job(recording_id=recording_id, kind=VOICEPRINT_JOB,
              options={"labels": sorted(wanted)}, created_by=actor.id if actor else None)
    session.add(job)
    session.flush()
    audit.record(session, actor=actor, action="voiceprint-recompute", object_type="job",
                 object_id=job.id, summary=f"recording {recording_id}: {len(wanted)} label(s)")
    return job


def _cancel_queued(session: Session, *, person_ids: set[int]) -> None:
    """Queued recomputations only for labels of people whose consent ended: cancelled
    (the worker also checks consent before keeping anything)."""
    labels_of: dict[int, set[str]] = {}
    for row in session.exec(select(Speaker).where(col(Speaker.person_id).in_(person_ids))):
        labels_of.setdefault(row.recording_id, set()).add(row.label)
    if not labels_of:
        return
    for job in session.exec(select(Job).where(
            Job.kind == VOICEPRINT_JOB, Job.state == JobState.queued,
            col(Job.recording_id).in_(list(labels_of)))):
        rest = [lb for lb in job.options.get("labels") or []
                if lb not in labels_of[job.recording_id]]
        if rest:
            job.options = {**job.options, "labels": rest}
        else:
            job.state = JobState.cancelled
            job.finished_at = utcnow()
            job.error = "nothing left to recompute: consent to voice recognition ended"
        session.add(job)


def store_recomputed(session: Session, recording_id: int, model: str,
                     vectors: dict[str, list[float] | None], *, actor: User | None) -> Changes:
    """Keep the worker's recomputed embeddings under the rules in force now, and enrol.

    A label named meanwhile as someone without consent gets nothing kept; unnamed labels
    keep theirs; labels named as a consenting person are enrolled.
    """
    changes = Changes()
    rows = {r.label: r for r in session.exec(
        select(Speaker).where(Speaker.recording_id == recording_id))}
    for label, vec in sorted(vectors.items()):
        row = rows.get(label)
        if row is None or vec is None:
            continue
        person = session.get(Person, row.person_id) if row.person_id is not None else None
        if person is not None and not person.biometric_consent:
            continue
        row.embedding = [round(float(x), 6) for x in vec]
        row.embedding_model = model
        session.add(row)
        if person is not None:
            enrol_embedding(session, person, row, row.embedding, actor=actor)
            changes.enrolled.append(source_of(recording_id, label))
    session.flush()
    # A new sample can change any recording's suggestions; without one, only this one's.
    refresh_suggestions(session, None if changes.enrolled else [recording_id])
    return changes


# --------------------------------------------------------------------------- suggestions


#: Stacked voiceprints per database, with the fingerprint of the people they came from.
#: Parsing 1 000 people's samples from JSON took 1.3-2 s (SQLite, 2 cores); the
#: fingerprint query takes milliseconds, so recognition after a transcription stays cheap.
_cache: dict[str, tuple[tuple[Any, ...], dict[str, Voiceprints[int]]]] = {}


def _fingerprint(session: Session) -> tuple[Any, ...]:
    """Changes whenever a consenting person's voiceprint may have (every writer of a
    voiceprint or of the consent sets ``updated_at``; losing consent changes the count)."""
    row = session.exec(select(func.count(), func.max(Person.updated_at), func.sum(Person.id))
                       .where(col(Person.biometric_consent).is_(True))).one()
    return tuple(row)


def _prints_by_model(session: Session, exclude: set[int]) -> dict[str, Voiceprints[int]]:
    if exclude:
        return _stack(session, exclude)
    key = str(session.get_bind().engine.url)
    fingerprint = _fingerprint(session)
    hit = _cache.get(key)
    if hit is not None and hit[0] == fingerprint:
        return hit[1]
    prints = _stack(session, set())
    _cache[key] = (fingerprint, prints)
    return prints


def _stack(session: Session, exclude: set[int]) -> dict[str, Voiceprints[int]]:
    by_model: dict[str, dict[int, list[list[float]]]] = {}
    people = session.exec(select(Person).where(col(Person.biometric_consent).is_(True)))
    for person in people:
        if person.id is None or person.id in exclude:
            continue
        for s in samples_of(person):
            model, emb = s.get("model"), s.get("embedding")
            if isinstance(model, str) and isinstance(emb, list) and emb:
                by_model.setdefault(model, {}).setdefault(person.id, []).append(emb)
    prints: dict[str, Voiceprints[int]] = {}
    for model, people_samples in by_model.items():
        try:
            prints[model] = Voiceprints.of(
                {pid: np.asarray(rows, dtype=np.float64) for pid, rows in people_samples.items()})
        except ValueError:
            continue  # mixed dimensions under one model name: nothing comparable
    return prints


def refresh_suggestions(session: Session, recording_ids: Iterable[int] | None = None, *,
                        exclude: set[int] | None = None, auto_apply: bool = False,
                        actor: User | None = None) -> int:
    """Recompute the suggestion of every label (of these recordings; default all).

    ``exclude``: people never suggested (their voiceprint is being deleted). With
    ``auto_apply``, an unnamed label whose suggestion reaches AUTO_APPLY_THRESHOLD is named
    (audited; it is not enrolled: only a person naming a label adds to a voiceprint).
    Returns how many labels' suggestions changed. Flushes.
    """
    prints = _prints_by_model(session, exclude or set())
    query = select(Speaker)
    ids = None if recording_ids is None else sorted(set(recording_ids))
    if ids is not None:
        query = query.where(col(Speaker.recording_id).in_(ids))
    by_recording: dict[int, list[Speaker]] = {}
    for row in session.exec(query):
        by_recording.setdefault(row.recording_id, []).append(row)
    participants: dict[int, set[int]] = {}
    if by_recording:
        for rid, person_id in session.exec(
                select(Participant.recording_id, Participant.person_id)
                .where(col(Participant.recording_id).in_(by_recording))):
            participants.setdefault(rid, set()).add(person_id)
    changed = 0
    for rid, rows in by_recording.items():
        applied: list[str] = []
        wanted: dict[str, tuple[int, float] | None] = {r.label: None for r in rows}
        groups: dict[str, dict[str, list[float]]] = {}
        for r in rows:
            emb = usable_embedding(r)
            if emb is not None and r.embedding_model in prints:
                groups.setdefault(r.embedding_model, {})[r.label] = emb
        for model, labels in groups.items():
            try:
                got = match(labels, prints[model], threshold=THRESHOLD, margin=MARGIN,
                            prefer=participants.get(rid, set()))
            except ValueError:
                continue  # another dimension than the voiceprints: not comparable
            for label, sug in got.items():
                if sug is not None:
                    wanted[label] = (int(sug.person_id), round(float(sug.similarity), 4))
        for r in rows:
            new = wanted[r.label]
            pid: int | None = new[0] if new is not None else None
            sim: float | None = new[1] if new is not None else None
            if (r.suggestion_person_id, r.suggestion_similarity) != (pid, sim):
                r.suggestion_person_id, r.suggestion_similarity = pid, sim
                changed += 1
                session.add(r)
            if (auto_apply and r.person_id is None and pid is not None and sim is not None
                    and sim >= AUTO_APPLY_THRESHOLD):
                r.person_id = pid
                session.add(r)
                applied.append(f"{r.label} -> person {pid} ({sim:.2f})")
        if applied:
            audit.record(session, actor=actor, action="voiceprint-auto-apply",
                         object_type="recording", object_id=rid,
                         summary="named by voice over the auto-apply threshold: "
                                 + "; ".join(applied))
    session.flush()
    return changed


def suggestions(session: Session, recording_id: int) -> dict[str, SpeakerSuggestion]:
    """label -> its suggestion, for consenting people only (what the API shows)."""
    rows = session.exec(
        select(Speaker, Person)
        .join(Person, col(Person.id) == Speaker.suggestion_person_id)
        .where(Speaker.recording_id == recording_id, col(Person.biometric_consent).is_(True))
    ).all()
    return {s.label: SpeakerSuggestion(person_id=p.id or 0, name=p.name,
                                       similarity=float(s.suggestion_similarity or 0.0))
            for s, p in rows}
