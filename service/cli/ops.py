"""`sourcebook fsck`, `export-archive` and `import-archive`: fixity checks and backups.

Exit codes: 0 all well; 1 problems found (fsck) or the archive was refused; 2 the
command could not run (bad arguments, database unreachable).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
import typer
from sqlmodel import Session

from service import config  # config.get_settings at call time: tests replace it
from service.cli.common import open_archive
from service.crud import audit
from service.db import make_engine
from service.storage import Storage

EXIT_PROBLEMS = 1
EXIT_USAGE = 2


def _error(message: str, code: int) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def fsck(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
    jobs: Annotated[int, typer.Option(min=1, max=64, help="Files hashed in parallel")] = min(
        4, os.cpu_count() or 1),
) -> None:
    """Re-hash every stored file against the database; exit 1 on missing, corrupt or orphaned."""

    # The checker and the archive tools load only when their command runs.
    from service.ops import fsck as checker

    settings = config.get_settings()
    # A check changes nothing: an archive of an older schema is not upgraded by it.
    engine = open_archive(settings, upgrade=False)
    try:
        report = checker.check(engine, Storage(settings.recordings_dir), jobs=jobs,
                               partial_stale_seconds=settings.job_stale_seconds)
    except sa.exc.OperationalError as exc:
        raise _error(f"cannot read the database: {exc.orig}", EXIT_USAGE) from None
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        typer.echo(checker.format_table(report))
    if not report.ok:
        raise typer.Exit(EXIT_PROBLEMS)


def export_archive(
    directory: Annotated[Path, typer.Argument(help="New directory for the bag")],
) -> None:
    """Write the whole archive (rows and files) as a BagIt bag to DIRECTORY."""
    from service.ops import archive  # see fsck: loaded only when the command runs

    settings = config.get_settings()
    engine = open_archive(settings)
    try:
        try:
            result = archive.export_archive(engine, settings, directory)
        except archive.ArchiveError as exc:
            raise _error(str(exc), EXIT_PROBLEMS) from None
        except sa.exc.OperationalError as exc:
            raise _error(f"cannot read the database: {exc.orig}", EXIT_USAGE) from None
        with Session(engine) as session:
            audit.record(session, actor=None, action="export-archive", object_type="archive",
                         summary=f"{result.total_rows} rows, {result.files} files, "
                                 f"{result.bytes} bytes (cli)")
            session.commit()
    finally:
        engine.dispose()
    typer.echo(f"wrote {result.path}: {result.total_rows} rows in {len(result.rows)} tables, "
               f"{result.files} files ({result.bytes / 1e6:.1f} MB) in {result.seconds:.1f} s")


def import_archive(
    directory: Annotated[Path, typer.Argument(help="An exported archive (BagIt bag)")],
) -> None:
    """Validate a bag and restore it into an empty database and recordings directory."""
    from service.ops import archive  # see fsck: loaded only when the command runs

    settings = config.get_settings()
    settings.ensure_dirs()
    engine = make_engine(settings)
    try:
        result = archive.import_archive(engine, settings, directory)
    except archive.ArchiveError as exc:
        raise _error(str(exc), EXIT_PROBLEMS) from None
    except sa.exc.OperationalError as exc:
        raise _error(f"cannot write the database: {exc.orig}", EXIT_USAGE) from None
    finally:
        engine.dispose()
    typer.echo(f"restored {result.total_rows} rows in {len(result.rows)} tables and "
               f"{result.files} files ({result.bytes / 1e6:.1f} MB) in {result.seconds:.1f} s")
    typer.echo("API tokens are not archived: issue new ones with "
               "`sourcebook users token NAME`.")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main CLI."""
    app.command("fsck")(fsck)
    app.command("export-archive")(export_archive)
    app.command("import-archive")(import_archive)
