"""User text made safe for the documents people take away: spreadsheets and Markdown.

Every CSV and every Markdown document built from archive data (titles, names, chapter
titles, descriptors, transcript text) goes through these two functions, in the service
and in the exports alike, so that a hostile title cannot become a formula in the
editor's spreadsheet or HTML in whatever renders the Markdown.

- :func:`csv_text` writes rows with every field quoted, and :func:`csv_cell` puts a
  single quote before a value a spreadsheet would evaluate (OWASP, "CSV Injection":
  cells starting with ``= + - @``, tab or carriage return; here also NUL and line feed,
  leading whitespace before those, and the full-width forms that some locales' office
  suites evaluate as well).
- :func:`md_text` escapes text for any place in a Markdown document: no raw HTML, no
  link, image or code, nothing that ends a table cell or a line, nothing that starts a
  heading, list, quote or rule. It keeps brackets and ``>`` that cannot form a link or
  a quote readable, since transcripts are full of ``[laughs]`` and ``[restricted]``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence

#: First characters that make a spreadsheet read a cell as a formula (or a DDE call).
FORMULA_TRIGGERS = frozenset("=+-@\t\r\n\x00\uff1d\uff0b\uff0d\uff20")


def csv_cell(value: object) -> str:
    """A value as a cell no spreadsheet evaluates: ``'`` before a formula trigger."""
    text = "" if value is None else str(value)
    if not text:
        return text
    # Some spreadsheets skip leading blanks before deciding that a cell is a formula.
    if text[0] in FORMULA_TRIGGERS or text.lstrip()[:1] in FORMULA_TRIGGERS:
        return "'" + text
    return text


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A CSV document: every field quoted (a separator inside a value never starts a new
    cell) and every cell passed through :func:`csv_cell`."""
    buf = io.StringIO()
    writer = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow([csv_cell(h) for h in header])
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
    return buf.getvalue()


# Backslash first, so that the escapes added after it are not themselves escaped.
_MD_ANYWHERE = re.compile(r"([\\`*_~|])")
# A "]" followed by "(", "[" or ":" (optionally after one space) is the only way to make
# a link, an image, a reference or a footnote; a lone "[laughs]" stays as it is.
_MD_LINK_CLOSE = re.compile(r"\](?=\s?[(\[:])")
_MD_ENTITY = re.compile(r"&(?=#?[0-9A-Za-z]+;)")
# At the start of a line: heading, quote, list item, thematic break or setext underline.
_MD_LINE_START = re.compile(r"^([#>+=-])|^(\d{1,9})([.)])")


def md_text(value: object) -> str:
    """Text for any place in a Markdown document (heading, list item, table cell, paragraph).

    Line breaks (and every other run of whitespace) become one space, so the text stays on
    its line and inside its table cell. A "]" that ends the text is left as it is: the
    document around it must not put "(", "[" or ":" right after an escaped value.
    """
    text = " ".join(("" if value is None else str(value)).replace("\x00", "").split())
    text = _MD_ANYWHERE.sub(r"\\\1", text)
    text = _MD_ENTITY.sub("&amp;", text)
    text = text.replace("<", "&lt;")
    text = _MD_LINK_CLOSE.sub(r"\\]", text)
    return _MD_LINE_START.sub(lambda m: f"\\{m[1]}" if m[1] else f"{m[2]}\\{m[3]}", text)
