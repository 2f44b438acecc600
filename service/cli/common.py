"""What every command shares: the settings, the archive, and failing with a message and a code."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import sqlalchemy as sa
import typer
from sqlalchemy.engine import make_url

from service.config import Settings, get_settings
from service.db import current_revision, make_engine, migrate

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

#: Exit code of a command that could not run: no archive, or one it cannot read.
EXIT_NO_ARCHIVE = 2


def load_settings() -> Settings:
    settings = get_settings()
    settings.ensure_dirs()
    return settings


def fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def archive_name(settings: Settings) -> str:
    """The database as a person can find it: the SQLite file, or the URL without password."""

    url = make_url(settings.database_url)
    if settings.is_sqlite and url.database:
        return url.database
    return url.render_as_string(hide_password=True)


def open_archive(settings: Settings, *, announce: bool = True, upgrade: bool = True) -> Engine:
    """The engine of an existing archive, brought to the latest schema (with ``upgrade``).

    A missing or never-migrated database, or one that cannot be read, ends the command
    with one line that names it and the fix, and creates nothing: a command run with the
    wrong settings must not start a second, empty archive. With ``announce`` a line on
    stderr names the archive used, so output never leaves a doubt which one it was.
    """
    # alembic takes about 0.2 s to import: only commands that open the archive need it.
    from alembic.util import CommandError

    where = archive_name(settings)
    fix = ("run `sourcebook migrate` to create it, or point SOURCEBOOK_HOME or "
           "SOURCEBOOK_DATABASE_URL at the archive you mean")
    if settings.is_sqlite and where != ":memory:" and not Path(where).is_file():
        fail(f"no archive at {where}: {fix}", EXIT_NO_ARCHIVE)
    engine = make_engine(settings)
    try:
        if current_revision(engine) is None:
            fail(f"no archive at {where} (the database has no Sourcebook tables): {fix}",
                 EXIT_NO_ARCHIVE)
        if upgrade:
            # An archive of an older version is upgraded, as `sourcebook serve` would.
            migrate(engine, settings)
    except sa.exc.DBAPIError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(
            exc.orig).__name__
        fail(f"cannot open the archive at {where}: {reason}", EXIT_NO_ARCHIVE)
    except CommandError as exc:
        engine.dispose()
        fail(f"cannot upgrade the archive at {where}: {exc} (is this checkout older than "
             "the one that wrote it?)", EXIT_NO_ARCHIVE)
    except typer.Exit:
        engine.dispose()
        raise
    if announce:
        typer.echo(f"archive: {where}", err=True)
    return engine
