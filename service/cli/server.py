"""`sourcebook migrate`, `serve` and `worker`: the database, the API and the queue."""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated

import sqlalchemy as sa
import typer
from sqlmodel import Session, select

from pipelines.device import resolve_device
from pipelines.errors import ModelError
from service import auth
from service.cli.common import archive_name, fail, load_settings
from service.config import Settings
from service.crud import audit
from service.db import make_engine
from service.db import migrate as run_migrations
from service.models.users import Role, User


def migrate() -> None:
    """Create the archive, or bring its database to the latest schema."""

    settings = load_settings()
    run_migrations(make_engine(settings), settings)
    typer.echo(f"the archive at {archive_name(settings)} is at the latest schema")


def banner(settings: Settings) -> str:
    """What `serve` (and so `make run`) prints before the server starts: where to go."""
    base = f"http://{settings.host}:{settings.port}"
    return (f"Sourcebook on {base}\n"
            f"  Web pages: {base}/login  (sign in with a token)\n"
            f"  API docs:  {base}/docs\n"
            f"  Archive:   {archive_name(settings)}\n"
            "The server runs in the foreground of this terminal: press Ctrl-C to stop it, "
            "and use another terminal for `sourcebook` commands or curl.")


def serve(
    host: Annotated[str | None, typer.Option(help="Default: SOURCEBOOK_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="Default: SOURCEBOOK_PORT")] = None,
    admin_token: Annotated[
        bool, typer.Option(help="Issue and print a fresh admin token before starting.")
    ] = False,
    workers: Annotated[int | None, typer.Option(
        min=1, help="Web server processes. Default: SOURCEBOOK_WEB_WORKERS")] = None,
) -> None:
    """Start the API (and, without Redis, the embedded job workers)."""
    # uvicorn and the app (FastAPI, about 0.6 s) load only to serve.
    import uvicorn

    from service.app import create_app

    settings = load_settings()
    if host:
        settings.host = host
    if port:
        settings.port = port
    if admin_token:
        _print_admin_token(settings)
    typer.echo(banner(settings))
    log_level = os.environ.get("SOURCEBOOK_LOG_LEVEL", "info")
    processes = workers or settings.web_workers
    if processes > 1:
        # Several processes need an import string; each builds its app from the same
        # environment (host and port only matter to the listener, given here).
        uvicorn.run("service.app:create_app", factory=True, workers=processes,
                    host=settings.host, port=settings.port, log_level=log_level)
        return
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                log_level=log_level)


def worker(
    workers: Annotated[int, typer.Option(
        min=1, help="Job threads in this process; each gets cores / N CPU threads "
        "(SOURCEBOOK_JOB_THREADS overrides).")] = 1,
    check: Annotated[bool, typer.Option(help="Only check database and queue; exit 0 if ok.")
                     ] = False,
) -> None:
    """Run a queue worker: Huey on Redis when SOURCEBOOK_REDIS_URL is set, else SQLite."""

    # The worker (huey, the job runner) loads only to work.
    from service.worker import process
    from service.worker.queue import HueyQueue, make_huey

    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
    settings = load_settings()
    if check:
        engine = make_engine(settings)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        HueyQueue(make_huey(settings)).ping()
        typer.echo("ok")
        return
    try:  # before anything is migrated or claimed: a worker on the wrong device never starts
        device = resolve_device(settings.device)
    except ModelError as exc:
        fail(str(exc))
        return
    logging.basicConfig(level=os.environ.get("SOURCEBOOK_LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    process.run(settings, workers, device)


def _print_admin_token(settings: Settings) -> None:
    engine = make_engine(settings)
    run_migrations(engine, settings)
    with Session(engine) as session:
        user = session.exec(select(User).where(User.name == "admin")).first()
        if user is None:
            user, token = auth.create_user(
                session, key=settings.token_key(), name="admin", role=Role.admin,
                ttl=settings.token_ttl,
            )
        else:
            token = auth.issue_token(session, key=settings.token_key(), user=user, label="serve",
                                     ttl=settings.token_ttl)
        audit.record(session, actor=None, action="token", object_type="user", object_id=user.id,
                     summary="admin token issued by `serve --admin-token`")
        session.commit()
    typer.echo("Admin token (shown once):")
    typer.echo(f"  {token}")
    typer.echo(f"  export SOURCEBOOK_TOKEN={token}")
    sys.stdout.flush()


def register(app: typer.Typer) -> None:
    app.command()(migrate)
    app.command()(serve)
    app.command()(worker)
