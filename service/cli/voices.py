"""`sourcebook voices calibrate`: thresholds for voice recognition from this archive's own
named voices (pipelines.voices.calibrate; the method is in bench/RESULTS.md "Voices").

The labelled set: every voiceprint sample of a person who consents to voice recognition
(speaker = the person, recording = where it was named), optionally with more labelled
embeddings from a JSON file, e.g. voices known to be none of them (``"speaker": null``) or
bench/out/voices/embeddings.json. Only one embedding model's vectors are comparable: the
one with most samples, or ``--model``. Nothing is changed: the command prints what to set.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlmodel import Session, col, select

from service import config  # config.get_settings at call time: tests replace it
from service.cli.common import open_archive
from service.models.people import Person

EXIT_USAGE = 2

voices_app = typer.Typer(help="Voice recognition: calibrate its thresholds.",
                         no_args_is_help=True)


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(EXIT_USAGE)


def _from_file(path: Path) -> list[Any]:
    # pipelines.voices and the voiceprint rows (numpy, about 15 ms) load only when
    # calibrating, here and in the two functions below.
    from pipelines.voices import LabelledEmbedding

    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        _fail(f"cannot read {path}: {exc}. Give a JSON list of objects with \"speaker\" "
              "(a name, or null for a voice that is none of the known people), \"recording\" "
              "and \"embedding\" (a list of numbers).")
    if not isinstance(records, list):
        _fail(f"{path} must hold a JSON list of labelled embeddings")
    out = []
    for i, r in enumerate(records):
        emb = r.get("embedding") if isinstance(r, dict) else None
        if not isinstance(emb, list) or not emb:
            continue  # a label too short to embed: nothing to compare
        speaker = r.get("speaker")
        # bench/voices.py's records name the recording by kind and content.
        recording = r.get("recording") or f"{r.get('kind', 'extra')}:{r.get('content', i)}"
        if speaker is None and "condition" in r:
            recording = f"{recording}:{r['condition']}"
        out.append(LabelledEmbedding(None if speaker is None else str(speaker),
                                     str(recording), tuple(float(x) for x in emb)))
    return out


def _from_archive(model: str | None, *, announce: bool = True
                  ) -> tuple[list[Any], str | None, int]:
    from pipelines.voices import LabelledEmbedding
    from service.crud.voices import samples_of

    engine = open_archive(config.get_settings(), announce=announce)
    rows: list[tuple[str, int, str, list[float]]] = []
    try:
        with Session(engine) as session:
            for person in session.exec(select(Person).where(
                    col(Person.biometric_consent).is_(True))):
                for s in samples_of(person):
                    if isinstance(s.get("embedding"), list) and s.get("model"):
                        rows.append((str(s["model"]), int(person.id or 0),
                                     str(s.get("recording_id", s.get("source"))),
                                     s["embedding"]))
    finally:
        engine.dispose()
    counts = Counter(m for m, *_ in rows)
    chosen = model or (counts.most_common(1)[0][0] if counts else None)
    people = len({pid for m, pid, *_ in rows if m == chosen})
    return [LabelledEmbedding(f"person {pid}", f"recording {rid}", tuple(emb))
            for m, pid, rid, emb in rows if m == chosen], chosen, people


@voices_app.command("calibrate")
def calibrate_command(
    extra: Annotated[Path | None, typer.Option(
        help="JSON list of more labelled embeddings ({speaker|null, recording, embedding})")
    ] = None,
    model: Annotated[str | None, typer.Option(
        help="Embedding model of the voiceprint samples to use (default: the commonest)")
    ] = None,
    target_far: Annotated[float, typer.Option(
        help="False-accept rate allowed over different-speaker pairs (0: above all seen)")
    ] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Measure same/different-speaker similarities and choose thresholds from them."""
    from pipelines.voices import AUTO_APPLY_THRESHOLD, MARGIN, THRESHOLD, calibrate

    if not 0.0 <= target_far < 1.0:
        _fail(f"--target-far must be at least 0 and below 1 (got {target_far})")
    samples, chosen, people = _from_archive(model, announce=not as_json)
    if extra is not None:
        samples += _from_file(extra)
    try:
        cal = calibrate(samples, target_far=target_far)
    except ValueError:
        _fail(f"{len(samples)} labelled embedding(s) ({people} consenting people with "
              f"voiceprints of model {chosen or 'none'}) give no same-speaker pairs from "
              "different recordings and different-speaker pairs both. Name the voices of "
              "at least two consenting people in at least two recordings each, or add "
              "labelled embeddings with --extra FILE.")

    def dist(d: Any) -> dict[str, float | int]:
        return {k: (round(v, 4) if isinstance(v, float) and math.isfinite(v) else v)
                for k, v in (("count", d.count), ("min", d.min), ("median", d.median),
                             ("p95", d.p95), ("max", d.max))}

    ident = cal.identification
    same, different = dist(cal.same), dist(cal.different)
    report: dict[str, Any] = {
        "model": chosen, "samples": len(samples), "people_in_archive": people,
        "same_speaker": same, "different_speaker": different,
        "eer": {"threshold": round(cal.eer.threshold, 4),
                "rate": round((cal.eer.far + cal.eer.frr) / 2, 4)},
        "threshold": {"value": cal.suggest.threshold, "far": round(cal.suggest.far, 4),
                      "frr": round(cal.suggest.frr, 4)},
        "auto_apply": {"value": cal.auto_apply.threshold, "far": round(cal.auto_apply.far, 4),
                       "frr": round(cal.auto_apply.frr, 4)},
        "margin": cal.margin,
        "identification": {"trials": ident.trials, "correct": ident.correct,
                           "wrong": ident.wrong, "unsuggested": ident.unsuggested,
                           "impostor_trials": ident.impostor_trials,
                           "impostors_suggested": ident.impostor_suggested},
        "in_use": {"threshold": THRESHOLD, "margin": MARGIN,
                   "auto_apply": AUTO_APPLY_THRESHOLD},
    }
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False, indent=2))
        return
    s, d = same, different
    typer.echo(f"{len(samples)} labelled embeddings (model {chosen or '-'}, "
               f"{people} consenting people in the archive)")
    typer.echo(f"same-speaker pairs:      {s['count']:>6}  min {s['min']}  median "
               f"{s['median']}  max {s['max']}")
    typer.echo(f"different-speaker pairs: {d['count']:>6}  min {d['min']}  median "
               f"{d['median']}  max {d['max']}")
    typer.echo(f"EER {cal.eer.far / 2 + cal.eer.frr / 2:.3f} at threshold "
               f"{cal.eer.threshold:.3f}")
    typer.echo(f"threshold {cal.suggest.threshold:.2f} (FAR {cal.suggest.far:.3f}, FRR "
               f"{cal.suggest.frr:.3f}); auto-apply {cal.auto_apply.threshold:.2f} (FAR "
               f"{cal.auto_apply.far:.3f}, FRR {cal.auto_apply.frr:.3f}); margin "
               f"{cal.margin:.2f}")
    typer.echo(f"identification: {ident.correct} right, {ident.wrong} wrong, "
               f"{ident.unsuggested} unsuggested of {ident.trials}; impostors suggested "
               f"{ident.impostor_suggested} of {ident.impostor_trials}")
    typer.echo(f"in use: threshold {THRESHOLD}, margin {MARGIN}, auto-apply "
               f"{AUTO_APPLY_THRESHOLD} (pipelines/voices.py)")


def register(app: typer.Typer) -> None:
    app.add_typer(voices_app, name="voices")
