"""The ``sourcebook`` command line."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from service.config import Settings, get_settings

app = typer.Typer(help="Sourcebook: an interview archive for non-fiction writers.",
                  no_args_is_help=True)
users_app = typer.Typer(help="Manage users and their API tokens.", no_args_is_help=True)
models_app = typer.Typer(help="Install and list the local model weights.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(models_app, name="models")


def _settings() -> Settings:
    settings = get_settings()
    settings.ensure_dirs()
    return settings


def _fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@app.command()
def migrate() -> None:
    """Bring the database schema to the latest version."""
    from service.db import make_engine
    from service.db import migrate as run_migrations

    settings = _settings()
    run_migrations(make_engine(settings), settings)
    typer.echo("database is at the latest schema")


@users_app.command("create")
def users_create(
    name: str,
    role: Annotated[str, typer.Option(help="researcher, author, editor or admin")],
) -> None:
    """Create a user; the token is printed once, as the last line."""
    from sqlmodel import Session

    from service import auth
    from service.crud import audit
    from service.db import make_engine
    from service.db import migrate as run_migrations
    from service.models.users import Role

    try:
        role_value = Role(role)
    except ValueError:
        _fail(f"unknown role {role!r}; use one of: researcher, author, editor, admin")
        return
    settings = _settings()
    engine = make_engine(settings)
    run_migrations(engine, settings)
    with Session(engine) as session:
        try:
            user, token = auth.create_user(
                session, key=settings.token_key(), name=name, role=role_value,
                ttl=settings.token_ttl,
            )
        except ValueError as exc:
            _fail(str(exc))
            return
        audit.record(session, actor=None, action="create", object_type="user",
                     object_id=user.id, summary=f"role {role_value.value} (cli)")
        session.commit()
        typer.echo(f"created user {user.name!r} (id {user.id}, role {role_value.value}).")
        typer.echo("This token is shown once; keep it secret:")
        typer.echo(token)


@users_app.command("token")
def users_token(name: str) -> None:
    """Issue an additional token for an existing user (printed once, last line)."""
    from sqlmodel import Session, select

    from service import auth
    from service.crud import audit
    from service.db import make_engine
    from service.db import migrate as run_migrations
    from service.models.users import User

    settings = _settings()
    engine = make_engine(settings)
    run_migrations(engine, settings)
    with Session(engine) as session:
        user = session.exec(select(User).where(User.name == name)).first()
        if user is None:
            _fail(f"no user named {name!r}; create one with `sourcebook users create`")
            return
        token = auth.issue_token(session, key=settings.token_key(), user=user, label="cli",
                                 ttl=settings.token_ttl)
        audit.record(session, actor=None, action="token", object_type="user", object_id=user.id)
        session.commit()
        typer.echo(token)


@users_app.command("list")
def users_list() -> None:
    """List users: id, name, role, state and last use."""
    from sqlmodel import Session

    from service import auth
    from service.db import make_engine

    settings = _settings()
    with Session(make_engine(settings)) as session:
        for a in auth.accounts(session, ttl=settings.token_ttl):
            used = f"{a.last_used_at:%Y-%m-%d %H:%M}" if a.last_used_at else "never used"
            state = "disabled" if a.disabled else "active"
            typer.echo(f"{a.id}\t{a.name}\t{a.role.value}\t{state}\t{used}\t"
                       f"{a.active_tokens} token(s)")


def _change_user(name: str, what: str) -> None:
    """revoke, disable or enable the user ``name``, audited as done from the CLI."""
    from sqlmodel import Session, select

    from service import auth
    from service.crud import audit
    from service.db import make_engine
    from service.db import migrate as run_migrations
    from service.models.users import User

    settings = _settings()
    engine = make_engine(settings)
    run_migrations(engine, settings)
    with Session(engine) as session:
        user = session.exec(select(User).where(User.name == name)).first()
        if user is None:
            _fail(f"no user named {name!r}; `sourcebook users list` shows who there is")
            return
        if what == "revoke":
            count = auth.revoke_tokens(session, user=user)
            summary = f"{count} token(s) revoked (cli)"
            message = (f"revoked {count} token(s) of {name!r}; issue a new one with "
                       f"`sourcebook users token {name}`.")
        else:
            # The CLI is the way back in, so it may disable the last admin too.
            disabled = what == "disable"
            changed = user.disabled != disabled
            user.disabled = disabled
            session.add(user)
            summary = f"{what}d (cli)"
            message = (f"{name!r} is {what}d" if changed else f"{name!r} was already {what}d")
            if disabled:
                message += "; their tokens give 401 until `sourcebook users enable` is run."
        audit.record(session, actor=None, action="revoke" if what == "revoke" else "update",
                     object_type="user", object_id=user.id, summary=summary)
        session.commit()
        typer.echo(message)


@users_app.command("revoke")
def users_revoke(name: str) -> None:
    """Revoke every token of a user (API tokens and web sign-ins)."""
    _change_user(name, "revoke")


@users_app.command("disable")
def users_disable(name: str) -> None:
    """Disable a user: their tokens give 401 (and say why) until enabled again."""
    _change_user(name, "disable")


@users_app.command("enable")
def users_enable(name: str) -> None:
    """Enable a disabled user again (revoked tokens stay revoked)."""
    _change_user(name, "enable")


@models_app.command("install")
def models_install() -> None:
    """Assemble the bundled models under SOURCEBOOK_MODELS_DIR (offline, idempotent)."""
    from pipelines.errors import ModelError
    from pipelines.models import install_models

    settings = _settings()
    try:
        installed = install_models(settings.models_dir, progress=lambda m: typer.echo(m))
    except ModelError as exc:
        _fail(str(exc))
        return
    for info in installed:
        typer.echo(f"{info.name:<28} {info.kind:<9} {info.size_bytes / 1e6:9.1f} MB  {info.path}")


@models_app.command("list")
def models_list() -> None:
    """Show the installed models with sizes and checksums."""
    from pipelines.models import list_models

    settings = _settings()
    found = list_models(settings.models_dir)
    if not found:
        typer.echo(f"no models in {settings.models_dir}; run `sourcebook models install`")
        raise typer.Exit(1)
    for info in found:
        typer.echo(
            f"{info.name:<28} {info.kind:<9} {info.size_bytes / 1e6:9.1f} MB  "
            f"sha256 {info.sha256[:16]}…  {info.path}"
        )


@app.command()
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
    import uvicorn

    from service.app import create_app

    settings = _settings()
    if host:
        settings.host = host
    if port:
        settings.port = port
    if admin_token:
        _print_admin_token(settings)
    typer.echo(f"Sourcebook on http://{settings.host}:{settings.port}  "
               f"(API docs: http://{settings.host}:{settings.port}/docs)")
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


@app.command()
def worker(
    workers: Annotated[int, typer.Option(help="Job threads in this process.")] = 1,
    check: Annotated[bool, typer.Option(help="Only check database and queue; exit 0 if ok.")
                     ] = False,
) -> None:
    """Run a queue worker: Huey on Redis when SOURCEBOOK_REDIS_URL is set, else SQLite."""
    import logging

    import sqlalchemy as sa

    from pipelines.runner import ModelCache
    from service import tasks
    from service.db import make_engine
    from service.db import migrate as run_migrations
    from service.queue import HueyQueue, make_huey
    from service.storage import Storage

    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
    settings = _settings()
    engine = make_engine(settings)
    queue = HueyQueue(make_huey(settings))
    if check:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        queue.ping()
        typer.echo("ok")
        return
    logging.basicConfig(level=os.environ.get("SOURCEBOOK_LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_migrations(engine, settings)
    storage = Storage(settings.recordings_dir)
    storage.ensure()
    ctx = tasks.WorkerContext(settings=settings, engine=engine, storage=storage,
                              models=ModelCache(settings.models_dir, keep=True), queue=queue)
    tasks.set_context(ctx)
    recovery = tasks.Recovery(ctx)
    recovery.start()
    typer.echo(f"worker {ctx.name}: {workers} thread(s) on "
               f"{'Redis' if settings.redis_url else 'the SQLite queue'}")
    queue.consumer(workers).run()


def _print_admin_token(settings: Settings) -> None:
    from sqlmodel import Session, select

    from service import auth
    from service.crud import audit
    from service.db import make_engine
    from service.db import migrate as run_migrations
    from service.models.users import Role, User

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


@app.command()
def transcribe(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    language: Annotated[str, typer.Option(help="auto, zh, en, ...")] = "auto",
    backend: Annotated[str, typer.Option(help="faster-whisper or openai-whisper")] = "",
    model: Annotated[str, typer.Option(help="base, tiny.en, or a local model path")] = "",
    num_speakers: Annotated[int | None, typer.Option(help="Exact speaker count, if known")
                            ] = None,
    diarize: Annotated[bool, typer.Option(help="Find who spoke when")] = True,
    out: Annotated[Path | None, typer.Option(help="Output folder (default: next to FILE)")
                   ] = None,
    formats: Annotated[str, typer.Option(help="Comma-separated: txt,srt,json,vtt,md")
                       ] = "txt,srt,json",
) -> None:
    """Transcribe a file locally, without a server; writes txt, srt and json."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from pipelines.errors import PipelineError
    from pipelines.export import WRITERS, ExportDoc, ExportSegment
    from pipelines.runner import STAGE_WEIGHTS, ModelCache, RunOptions, run

    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
    settings = _settings()
    chosen = [f.strip() for f in formats.split(",") if f.strip()]
    unknown = [f for f in chosen if f not in WRITERS]
    if unknown:
        _fail(f"unknown format(s) {', '.join(unknown)}; choose from {', '.join(WRITERS)}")
    backend = backend or settings.asr_backend
    if backend not in ("faster-whisper", "openai-whisper"):
        _fail(f"unknown backend {backend!r}; use faster-whisper or openai-whisper")
    default_model = (settings.whisper_model if backend == "faster-whisper"
                     else settings.openai_whisper_model)
    options = RunOptions(
        backend=backend,  # type: ignore[arg-type]
        model=model or default_model,
        language=language,
        beam_size=settings.beam_size,
        compute_type=settings.compute_type,
        diarize=diarize,
        num_speakers=num_speakers,
        diarization_pipeline=settings.diarization_pipeline or None,
    )
    stages = [s for s in STAGE_WEIGHTS if diarize or s != "diarize"]
    with Progress(TextColumn("{task.description:<10}"), BarColumn(),
                  TextColumn("{task.percentage:>5.1f}%"), TimeElapsedColumn()) as bar:
        ids = {s: bar.add_task(s, total=1.0) for s in stages}

        def progress(stage: str, fraction: float) -> None:
            if stage in ids:
                bar.update(ids[stage], completed=fraction)

        try:
            result = run(file, options, models=ModelCache(settings.models_dir, keep=False,
                                                          cpu_threads=0), progress=progress)
        except PipelineError as exc:
            _fail(str(exc))
            return
    doc = ExportDoc(
        title=file.name,
        language=result.language,
        metadata={"source": file.name, "language": result.language,
                  "model": f"{result.transcription.backend} {result.transcription.model}"},
        segments=[ExportSegment(start=s.start, end=s.end, speaker=s.speaker, label=s.speaker,
                                text=s.text, language=s.language,
                                words=tuple({"start": w.start, "end": w.end, "text": w.text,
                                             "probability": w.probability} for w in s.words))
                  for s in result.segments],
    )
    from service.filemodes import write_private

    target = out or file.parent
    for fmt in chosen:
        path = target / f"{file.stem}.{fmt}"
        write_private(path, WRITERS[fmt](doc).encode("utf-8"))
        typer.echo(f"wrote {path}")
    speakers = len({s.speaker for s in result.segments})
    typer.echo(f"{len(result.segments)} segments, {speakers} speaker(s), language "
               f"{result.language}; stage seconds: {result.timings}")


def _register_areas() -> None:
    from service import cli_chapters, cli_consent, cli_ops, cli_voices, cli_workbench

    for area in (cli_workbench, cli_chapters, cli_consent, cli_ops, cli_voices):
        area.register(app)


_register_areas()

if __name__ == "__main__":
    app()
