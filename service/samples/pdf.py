"""A one-page PDF written by hand: enough for a sample signed release.

PDF 1.4 with the standard Helvetica font (every reader has it, nothing is embedded), so
the text must be Latin-1; a correct cross-reference table, so readers open it without
repairing it.
"""

from __future__ import annotations

__all__ = ["one_page_pdf"]


def _literal(text: str) -> bytes:
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return b"(" + escaped.encode("latin-1") + b")"


def one_page_pdf(title: str, lines: list[str]) -> bytes:
    """An A4 page with ``title`` in bold and ``lines`` below it, one per line."""
    text = [b"BT", b"/F2 16 Tf", b"72 770 Td", _literal(title) + b" Tj", b"/F1 11 Tf",
            b"15 TL", b"0 -10 Td"]
    text += [b"T* " + _literal(line) + b" Tj" for line in lines]
    text.append(b"ET")
    content = b"\n".join(text)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R /F2 5 0 R >> >> /Contents 6 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Title " + _literal(title) + b" /Producer (Sourcebook samples) >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += (b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
            % (len(objects) + 1, len(objects), xref))
    return bytes(out)
