"""A clearance report as a file: CSV for a spreadsheet, Markdown to read.

Every value that came from a user is escaped for its format (``pipelines.escaping``):
a cell cannot become a formula, a title cannot become Markdown structure.
"""

from __future__ import annotations

from pipelines.escaping import csv_text, md_text
from pipelines.export import hms
from service.models.base import utcnow
from service.models.consent import (
    Attribution,
    ClearanceReport,
)

CSV_COLUMNS = ("quote_id", "chapter_id", "chapter", "usage", "status", "attribution",
               "attribution_level", "speaker", "person_id", "recording_id", "recording_title",
               "start", "end", "reasons")


def render_csv(report: ClearanceReport) -> str:
    """The report as a spreadsheet; titles and names cannot become formulas (csv_text)."""
    return csv_text(CSV_COLUMNS, (
        [r.quote_id, r.chapter_id, r.chapter, r.usage, r.status, r.attribution or "",
         r.attribution_level or "", r.speaker or "", r.person_id or "", r.recording_id or "",
         r.recording_title or "", f"{r.start:.2f}", f"{r.end:.2f}", "; ".join(r.reasons)]
        for r in report.data))


_STATUS_WORDS = {"cleared": "cleared", "needs_approval": "needs approval", "blocked": "BLOCKED"}


def _short(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def render_markdown(report: ClearanceReport, *, title: str = "Clearance report") -> str:
    """A report an editor can send: the blocked uses first, then every chapter in order.

    Every value from the archive goes through ``md_text``: a title or a name cannot add
    HTML, a link or a table column to the report.
    """
    t = report.totals
    scope = (f"chapter {md_text(report.data[0].chapter)}"
             if report.chapter_id is not None and report.data
             else "the whole book" if report.chapter_id is None
             else f"chapter id {report.chapter_id}")
    lines = [
        f"# {md_text(title)}",
        "",
        f"- Planned publication date: **{report.as_of.isoformat()}**",
        f"- Scope: {scope}",
        f"- Generated: {utcnow():%Y-%m-%d %H:%M} UTC",
        f"- Quote uses: **{report.count}**: {t['cleared']} cleared, "
        f"{t['needs_approval']} need approval, {t['blocked']} blocked",
        "",
    ]
    if report.count == 0:
        lines += ["No quotes are linked to chapters in this scope.", ""]
        return "\n".join(lines)
    blocked = [r for r in report.data if r.status == "blocked"]
    if blocked:
        lines += ["## Blocked: must not be printed", "",
                  "| Chapter | Quote | Usage | Speaker | Why |", "|---|---|---|---|---|"]
        for r in blocked:
            why = "<br>".join(md_text(x) for x in r.reasons)
            lines.append(f"| {md_text(r.chapter)} | #{r.quote_id} | {r.usage} | "
                         f"{md_text(r.speaker or 'unidentified')} | {why} |")
        lines.append("")
    current: int | None = None
    for r in report.data:
        if r.chapter_id != current:
            if current is not None:
                lines.append("")
            current = r.chapter_id
            lines += [f"## {md_text(r.chapter)}", ""]
        where = (f"《{md_text(r.recording_title)}》 {hms(r.start)}–{hms(r.end)}"
                 if r.recording_id is not None else "recording deleted")
        head = f"- **Quote #{r.quote_id}** ({r.usage}; {where}): **{_STATUS_WORDS[r.status]}**"
        if r.attribution:
            how = "by name" if r.attribution_level == Attribution.on_record.value else \
                "by descriptor only"
            head += f"; attribute {how} as “{md_text(r.attribution)}”"
        lines.append(head)
        if r.excerpt:
            lines.append(f"  > {md_text(_short(r.excerpt))}")
        elif r.status == "blocked":
            lines.append("  > (text withheld)")
        lines += [f"  - {md_text(reason)}" for reason in r.reasons]
    lines.append("")
    return "\n".join(lines)
