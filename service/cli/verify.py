"""`sourcebook verify chapter.md`: every quotation of a draft checked against the tapes."""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Annotated

import typer
from sqlmodel import Session

from service import config  # config.get_settings at call time: tests replace it
from service.cli.common import open_archive
from service.manuscript.quotations import MIN_CHARS
from service.manuscript.verify import VerifyReport, verify_text
from service.models.users import Role, User


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _fit(text: str, width: int) -> str:
    """Cut and pad to ``width`` terminal columns (CJK characters take two)."""
    text = " ".join(text.split())
    out: list[str] = []
    used = 0
    for ch in text:
        w = _width(ch)
        if used + w > width:
            if out:
                out[-1] = "…"
            break
        out.append(ch)
        used += w
    return "".join(out) + " " * max(0, width - _width("".join(out)))


def format_table(report: VerifyReport, *, quote_width: int = 44) -> str:
    """The verification report as a fixed-width table, one row per quotation."""
    head = (f"{'#':>4}  {'line':>5}  {'status':<9}  {'sim':>5}  {'recording':>9}  "
            f"{'time':>8}  {_fit('speaker', 14)}  quote")
    rows = [head, "-" * (_width(head) + quote_width - 5)]
    for item in report.data:
        m = item.matches[0] if item.matches else None
        sim = f"{m.similarity:.2f}" if m else "-"
        rec = str(m.recording_id) if m else "-"
        when = "-"
        speaker = "-"
        if m:
            total = int(m.start)
            when = f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"
            speaker = m.person_name or m.speaker
            if m.speaker_mismatch:
                speaker = f"!{speaker}≠{item.named_speaker}"
        rows.append(f"{item.index:>4}  {item.line:>5}  {item.status:<9}  {sim:>5}  {rec:>9}  "
                    f"{when:>8}  {_fit(speaker, 14)}  {_fit(item.quote_text, quote_width)}")
        if item.diff:
            rows.append(" " * 12 + "diff: " + _fit(item.diff, quote_width + 40).rstrip())
    rows.append("")
    rows.append(f"{report.count} quotations: {report.sourced} sourced, {report.altered} altered, "
                f"{report.unsourced} unsourced ({report.ignored_short} short quoted terms "
                f"skipped); {report.segments_indexed} segments searched in "
                f"{report.match_seconds:.2f} s (index {report.index_seconds:.2f} s).")
    return "\n".join(rows)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main CLI."""

    @app.command("verify")
    def verify_command(
        path: Annotated[Path, typer.Argument(help="The chapter's Markdown file", exists=True,
                                             dir_okay=False, readable=True)],
        role: Annotated[str, typer.Option(help="See what this role may see: author or "
                                               "editor")] = "editor",
        min_chars: Annotated[int, typer.Option(help="Shorter quoted text is a term")] = MIN_CHARS,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead")] = False,
    ) -> None:
        """Check every quotation of a chapter against the transcripts; print a table."""

        try:
            viewer = User(name="cli", role=Role(role))
        except ValueError:
            typer.secho(f"error: unknown role {role!r}; use author or editor", err=True,
                        fg=typer.colors.RED)
            raise typer.Exit(2) from None
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            typer.secho(f"error: {path} is not UTF-8 text", err=True, fg=typer.colors.RED)
            raise typer.Exit(2) from None
        engine = open_archive(config.get_settings(), announce=not as_json)
        with Session(engine) as session:
            report = verify_text(session, engine, text=text, user=viewer, min_chars=min_chars)
        engine.dispose()
        typer.echo(report.model_dump_json(indent=2) if as_json else format_table(report))
