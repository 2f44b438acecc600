"""Markdown book outline → a tree of book, parts (编), chapters (章) and sections (2.3, 6.1.2).

Real manuscripts do not use heading levels consistently (the seed book has chapters
at ``#``, ``###`` and as list items), so a node's kind and place come from its
*number*, not its level:

- ``第一编 …`` / ``Part 1`` is a part, ``第七章 …`` / ``Chapter 7`` a chapter, and
  ``6.1.2 …`` a section whose parent is section ``6.1`` (``2.3``: chapter 2).
- A heading holding a book title in 《…》 is the book (the root); two such headings with
  the same title (an outline and a draft of one book) are one node.
- Outline list items ``*   **第一章：…**`` are chapters; their nested bullets are the
  chapter's summary.
- Text under a heading whose title names an outline (大纲, 目录, outline, contents) is
  *summary*, until a heading at that level or higher; text anywhere else is the node's
  *manuscript*.
- A trailing ``---`` followed only by bold paragraphs ("第一章已完成，约3600字…") is a
  drafting note, not prose: it is left out of the manuscript and reported in ``notes``.
- Other headings (开篇, 本书总览) are unnumbered sections under the node whose heading
  is above them; a chapter appearing twice (outline and draft) is one node: the first
  occurrence gives the title, both add text.

Pure: no database, no I/O. ``service.crud.chapters`` matches the result to stored rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from service.errors import Invalid

__all__ = ["OutlineError", "ParsedNode", "ParsedOutline", "cn_number", "node_key", "parse"]

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5,
              "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_NUM = r"[零〇一二两三四五六七八九十百千\d]+"

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_PART = re.compile(rf"^第({_NUM})(?:编|篇|部分|部)\s*[：:、.．\s]*\s*(.*)$")
_PART_EN = re.compile(r"^part\s+(\d+|[ivxlc]+)\b[\s:.\-–—]*(.*)$", re.IGNORECASE)
_CHAPTER = re.compile(rf"^第({_NUM})章\s*[：:、.．\s]*\s*(.*)$")
_CHAPTER_EN = re.compile(r"^chapter\s+(\d+)\b[\s:.\-–—]*(.*)$", re.IGNORECASE)
_SECTION = re.compile(r"^(\d{1,3}(?:\.\d{1,3})+)\.?(?:\s+|[：:、]\s*)(.*)$")
_BOOK = re.compile(r"《([^》]{1,200})》")
_OUTLINE_WORDS = re.compile(r"大纲|目录|提纲|\boutline\b|table of contents|\bcontents\b",
                            re.IGNORECASE)
_WORD_COUNT = re.compile(r"[（(]\s*(?:约|approx\.?|about)?\s*[\d.,]+\s*万?\s*(?:字|words)\s*[)）]",
                         re.IGNORECASE)
_BULLET = re.compile(r"^(\s*)(?:[*+\-]|\d+[.)])\s+(.*)$")
_RULE = re.compile(r"^\s*(?:-{3,}|\*{3,}|_{3,})\s*$")
_BOLD_LINE = re.compile(r"^\s*\*\*.+\*\*[。.！!？?]?\s*$")
_ROMAN = {"i": 1, "v": 5, "x": 10, "l": 50, "c": 100}

MAX_TITLE = 500


class OutlineError(Invalid):
    """The text is not an outline this parser can read (for example: no headings)."""


@dataclass
class ParsedNode:
    kind: str
    number: str | None
    title: str
    parent: tuple[str, ...] | None
    key: tuple[str, ...]
    line: int
    level: int
    summary: list[str] = field(default_factory=list)
    manuscript: list[str] = field(default_factory=list)

    @property
    def summary_text(self) -> str | None:
        return _join(self.summary)

    @property
    def manuscript_text(self) -> str | None:
        return _join(self.manuscript)


@dataclass
class ParsedOutline:
    nodes: list[ParsedNode]
    #: Drafting notes left out of manuscripts: (line number, first 80 characters).
    notes: list[tuple[int, str]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for n in self.nodes:
            out[n.kind] = out.get(n.kind, 0) + 1
        return out


def cn_number(text: str) -> int:
    """``"十六"`` → 16, ``"二十一"`` → 21, ``"105"`` → 105; Roman numerals for English parts."""
    if text.isdigit():
        return int(text)
    low = text.lower()
    if low and all(ch in _ROMAN for ch in low):
        total = 0
        for i, ch in enumerate(low):
            v = _ROMAN[ch]
            total += -v if i + 1 < len(low) and _ROMAN[low[i + 1]] > v else v
        return total
    total, digit = 0, 0
    for ch in text:
        if ch in _CN_DIGITS:
            digit = _CN_DIGITS[ch]
        elif ch in _CN_UNITS:
            total += (digit or 1) * _CN_UNITS[ch]
            digit = 0
        else:
            raise ValueError(f"not a number: {text!r}")
    return total + digit


def clean_title(raw: str) -> str:
    """Strip Markdown emphasis and stray punctuation from a heading or list item."""
    text = re.sub(r"(\*\*|__|`)", "", raw)
    text = re.sub(r"(?<!\w)[*_](?=\S)|(?<=\S)[*_](?!\w)", "", text)
    return text.strip().strip("：:").strip()


def node_key(kind: str, number: str | None, title: str,
             parent: tuple[str, ...] | None) -> tuple[str, ...]:
    """How a node is recognised again on re-import: by number, else by parent and title."""
    if kind == "book":
        return ("book", _norm_title(title))
    if number:
        return (kind, number)
    return ("untitled-number", *(parent or ()), kind, _norm_title(title))


def _norm_title(title: str) -> str:
    return re.sub(r"[\s\W_]+", "", title).lower()


def _join(lines: list[str]) -> str | None:
    text = "\n".join(lines).strip("\n")
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text if text.strip() else None


def _classify(title: str) -> tuple[str, str | None, str, str | None]:
    """(kind, number, title without its number, word-count note) for a cleaned heading."""
    note = None
    m = _WORD_COUNT.search(title)
    if m:
        note = m.group(0).strip("（）() ")
        title = (title[: m.start()] + title[m.end():]).strip()
    for rx, kind in ((_PART, "part"), (_PART_EN, "part"), (_CHAPTER, "chapter"),
                     (_CHAPTER_EN, "chapter")):
        m = rx.match(title)
        if m:
            try:
                number = str(cn_number(m.group(1)))
            except ValueError:
                continue
            return kind, number, m.group(2).strip() or title, note
    m = _SECTION.match(title)
    if m and m.group(2).strip():
        return "section", m.group(1), m.group(2).strip(), note
    m = _BOOK.search(title)
    if m:
        return "book", None, m.group(1).strip(), note
    return "section", None, title, note


class _Builder:
    def __init__(self) -> None:
        self.nodes: dict[tuple[str, ...], ParsedNode] = {}
        self.order: list[tuple[str, ...]] = []
        self.book: ParsedNode | None = None
        self.part: ParsedNode | None = None
        self.chapter: ParsedNode | None = None
        self.current: ParsedNode | None = None

    def add(self, kind: str, number: str | None, title: str, line: int, level: int
            ) -> ParsedNode:
        parent = self._parent_for(kind, number, level)
        key = node_key(kind, number, title, parent.key if parent else None)
        node = self.nodes.get(key)
        if node is None:
            node = ParsedNode(kind=kind, number=number, title=title[:MAX_TITLE],
                              parent=parent.key if parent else None, key=key, line=line,
                              level=level)
            self.nodes[key] = node
            self.order.append(key)
        else:
            node.level = level
        if kind == "book":
            self.book, self.part, self.chapter = node, None, None
        elif kind == "part":
            self.part, self.chapter = node, None
        elif kind == "chapter":
            self.chapter = node
            if node.parent is not None and self.nodes[node.parent].kind == "part":
                self.part = self.nodes[node.parent]
        self.current = node
        return node

    def _parent_for(self, kind: str, number: str | None, level: int) -> ParsedNode | None:
        if kind == "book":
            return None
        if kind == "part":
            return self.book
        if kind == "chapter":
            existing = self.nodes.get(("chapter", number or ""))
            if existing is not None and existing.parent is not None:
                return self.nodes[existing.parent]
            return self.part or self.book
        if number:
            head = number.rsplit(".", 1)[0]
            parent = self.nodes.get(("section", head)) if "." in head else None
            if parent is None:
                parent = self.nodes.get(("chapter", head.split(".")[0]))
            return parent or self.chapter or self.part or self.book
        # An unnumbered heading: a child of the heading above it when deeper, else its sibling.
        cur = self.current
        while cur is not None and cur.level >= level and cur.parent is not None:
            cur = self.nodes[cur.parent]
        if cur is not None and cur.level >= level:
            return None if cur.kind != "book" else cur
        return cur


def parse(text: str) -> ParsedOutline:
    """Parse a Markdown outline or draft into nodes in document order."""
    b = _Builder()
    notes: list[tuple[int, str]] = []
    outline_level: int | None = None
    bullet_chapter: ParsedNode | None = None
    pending: list[tuple[int, str]] | None = None  # lines after a `---`, maybe a drafting note

    def target(node: ParsedNode | None) -> list[str] | None:
        if node is None:
            return None
        return node.summary if outline_level is not None else node.manuscript

    def flush_pending(as_note: bool) -> None:
        nonlocal pending
        if pending is None:
            return
        body = [t for _, t in pending if t.strip()]
        if as_note and body and all(_BOLD_LINE.match(t) for t in body):
            notes.extend((n, clean_title(t)[:80]) for n, t in pending if t.strip())
        elif body:
            dest = target(b.current)
            if dest is not None:
                dest.extend(["---", *(t for _, t in pending)])
        pending = None

    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        m = _HEADING.match(line)
        if m:
            flush_pending(as_note=True)
            bullet_chapter = None
            level = len(m.group(1))
            title = clean_title(m.group(2))
            if not title:
                continue
            if outline_level is not None and level <= outline_level:
                outline_level = None
            kind, number, name, note = _classify(title)
            node = b.add(kind, number, name, lineno, level)
            if note:
                node.summary.append(note)
            if outline_level is None and _OUTLINE_WORDS.search(title):
                outline_level = level
            continue
        if _RULE.match(line):
            flush_pending(as_note=False)
            bullet_chapter = None
            if outline_level is not None:
                # In an outline a rule closes the part: what follows is about the book.
                b.current, b.part, b.chapter = b.book, None, None
            else:
                pending = []
            continue
        if pending is not None:
            pending.append((lineno, line))
            continue
        bm = _BULLET.match(line)
        in_container = b.current is None or b.current.kind in ("book", "part")
        if bm and not bm.group(1) and (outline_level is not None or in_container):
            item = clean_title(bm.group(2))
            kind, number, name, note = _classify(item)
            if kind == "chapter":
                bullet_chapter = b.add("chapter", number, name, lineno,
                                       (b.current.level + 1) if b.current else 7)
                # Back to the part for text after the list.
                b.current = b.part or b.book or bullet_chapter
                if note:
                    bullet_chapter.summary.append(note)
                continue
            bullet_chapter = None
        if bullet_chapter is not None and (line.startswith((" ", "\t")) or not line):
            bullet_chapter.summary.append(line.strip() if not line.strip() else line[4:]
                                          if line.startswith("    ") else line.lstrip())
            continue
        bullet_chapter = None
        dest = target(b.current)
        if dest is not None:
            dest.append(line)
    flush_pending(as_note=True)
    nodes = [b.nodes[k] for k in b.order]
    if not nodes:
        raise OutlineError(
            "No headings found: the outline needs Markdown headings such as '# 第一编 …', "
            "'## 第一章 …' or '### 2.3 …' (or chapter list items '* 第一章：…')."
        )
    return ParsedOutline(nodes=nodes, notes=notes)
