"""`sourcebook audit`: the book's clearance, as a gate for a publication script."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from sqlmodel import Session

from service import config  # config.get_settings at call time: tests replace it
from service.cli.common import open_archive
from service.errors import SourcebookError
from service.filemodes import write_private

#: Exit codes: 0 nothing blocked; 1 something blocked (or, with --strict, awaiting
#: approval); 2 bad input.
EXIT_BLOCKED = 1
EXIT_USAGE = 2


def _parse_day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        typer.secho(f"error: --as-of must be a date like 2026-06-01 (got {value!r})",
                    fg=typer.colors.RED, err=True)
        raise typer.Exit(EXIT_USAGE) from None


def audit(
    as_of: Annotated[str, typer.Option("--as-of", help="Planned publication date, YYYY-MM-DD")],
    chapter_id: Annotated[int | None, typer.Option(help="Only this chapter (and below)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="md, csv or json")] = "md",
    out: Annotated[Path | None, typer.Option(help="Also write the report to this file")] = None,
    strict: Annotated[bool, typer.Option(help="Fail on quotes awaiting approval too")] = False,
) -> None:
    """Print the whole book's clearance; exit 1 if any quote use is blocked."""

    # The clearance facts and renderers (about 25 ms) load only when auditing.
    from service.clearance import facts, render

    day = _parse_day(as_of)
    if fmt not in ("md", "csv", "json"):
        typer.secho(f"error: --format must be md, csv or json (got {fmt!r})",
                    fg=typer.colors.RED, err=True)
        raise typer.Exit(EXIT_USAGE)
    settings = config.get_settings()
    engine = open_archive(settings)
    try:
        with Session(engine, expire_on_commit=False) as session:
            try:
                report = facts.clearance_report(session, as_of=day, chapter_id=chapter_id,
                                               actor=None, fmt=f"{fmt} (cli)")
            except SourcebookError as exc:
                typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
                raise typer.Exit(EXIT_USAGE) from None
    finally:
        engine.dispose()
    if fmt == "json":
        text = report.model_dump_json(indent=2) + "\n"
    elif fmt == "csv":
        text = render.render_csv(report)
    else:
        text = render.render_markdown(report)
    typer.echo(text, nl=False)
    if out is not None:
        write_private(out, text.encode("utf-8"))  # names people and their terms: owner-only
    t = report.totals
    failing = t["blocked"] + (t["needs_approval"] if strict else 0)
    typer.echo(f"{report.count} quote use(s) as of {day}: {t['cleared']} cleared, "
               f"{t['needs_approval']} need approval, {t['blocked']} blocked", err=True)
    if failing:
        raise typer.Exit(EXIT_BLOCKED)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main CLI."""
    app.command("audit")(audit)
