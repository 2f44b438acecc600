"""`sourcebook export`: a transcript from the local database, as the API gives it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlmodel import Session

from service import config  # config.get_settings at call time: tests replace it
from service.cli.common import fail, open_archive
from service.filemodes import write_private
from service.models.recordings import Recording


def export(
    recording_id: Annotated[int, typer.Argument(help="The recording's id")],
    format: Annotated[str, typer.Option("--format", "-f",
                                        help="txt, md, srt, vtt, json or docx")] = "txt",
    version: Annotated[int | None, typer.Option(help="A transcript version; default: latest")
                       ] = None,
    out: Annotated[Path | None, typer.Option(
        help="File or folder to write; default: the transcripts folder. '-' writes to stdout.")
    ] = None,
    redacted: Annotated[bool, typer.Option(
        help="Withhold off-record and deep-background spans, as authors see it")] = False,
) -> None:
    """Export a transcript from the local database, byte for byte as the API gives it."""

    # The transcript read paths and writers (about 20 ms) load only when exporting.
    from pipelines.export import FORMATS
    from service.crud import transcript_files
    from service.crud import transcripts as crud

    fmt = format.lower().lstrip(".")
    if fmt not in FORMATS:
        fail(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    settings = config.get_settings()
    engine = open_archive(settings)
    settings.ensure_dirs()
    with Session(engine, expire_on_commit=False) as session:
        recording = session.get(Recording, recording_id)
        if recording is None:
            fail(f"no recording with id {recording_id}; list them with GET /api/v1/recordings")
            return
        try:
            result = transcript_files.export(session, recording=recording, fmt=fmt, version=version,
                                 actor=None, redact=redacted, via="cli")
        except crud.NoTranscript as exc:
            fail(str(exc))
            return
    engine.dispose()
    if out is not None and str(out) == "-":
        sys.stdout.buffer.write(result.content)
        sys.stdout.flush()
        return
    target = out if out is not None else settings.transcripts_dir
    if target.is_dir():
        target = target / result.filename
    # Owner-only (it may hold restricted text), and whole or absent for any reader.
    write_private(target, result.content)
    typer.echo(f"wrote {target} ({len(result.content)} bytes)")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main CLI."""
    app.command("export")(export)
