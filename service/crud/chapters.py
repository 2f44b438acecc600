"""Chapters: the book's tree, its import from Markdown, and what each chapter depends on."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from service.access import can_see_recording, recording_filter
from service.crud import audit
from service.errors import Invalid
from service.manuscript import outline
from service.models.base import utcnow
from service.models.chapters import (
    Chapter,
    ChapterCreate,
    ChapterImportNote,
    ChapterImportResult,
    ChapterKind,
    ChapterNode,
    ChapterPublic,
    ChapterTree,
    ChapterUpdate,
    ChapterUse,
)
from service.models.quotes import ChapterQuote, Quote
from service.models.recordings import Recording
from service.models.users import User


class ChapterProblem(Invalid):
    """A tree change that would break the tree (a cycle, an unknown parent)."""


_CN_DIGITS = "零一二三四五六七八九"


def _cn(n: int) -> str:
    """7 -> 七, 16 -> 十六, 21 -> 二十一, 105 -> 一百零五 (the numbers of a book's outline)."""
    if n < 10:
        return _CN_DIGITS[n]
    if n < 20:
        return "十" + (_CN_DIGITS[n % 10] if n % 10 else "")
    if n < 100:
        return _CN_DIGITS[n // 10] + "十" + (_CN_DIGITS[n % 10] if n % 10 else "")
    if n < 1000:
        rest = n % 100
        tail = "" if not rest else ("零" + _cn(rest) if rest < 10 else
                                    (_CN_DIGITS[1] + _cn(rest) if rest < 20 else _cn(rest)))
        return _CN_DIGITS[n // 100] + "百" + tail
    return str(n)


def chapter_label(chapter: Chapter | ChapterNode) -> str:
    """How people name a chapter: its number and title ("第七章 技术豪赌").

    An imported outline keeps a part's or chapter's number as a plain integer (the key
    re-imports match on); it is named again the way the outline wrote it: 第七章 in a
    Chinese book, Chapter 7 in an English one.
    """
    number, title = chapter.number, chapter.title
    if not number:
        return title
    if number.isdigit() and chapter.kind in (ChapterKind.chapter, ChapterKind.part):
        if any("\u4e00" <= ch <= "\u9fff" for ch in title):
            unit = "章" if chapter.kind == ChapterKind.chapter else "编"
            return f"第{_cn(int(number))}{unit} {title}"
        word = "Chapter" if chapter.kind == ChapterKind.chapter else "Part"
        return f"{word} {number} {title}"
    return f"{number} {title}"


def chapter_labels(session: Session, chapter_ids: set[int]) -> dict[int, str]:
    """id -> :func:`chapter_label` for these chapters, in one query."""
    if not chapter_ids:
        return {}
    rows = session.exec(select(Chapter).where(col(Chapter.id).in_(chapter_ids))).all()
    return {c.id: chapter_label(c) for c in rows if c.id is not None}


def all_chapters(session: Session) -> list[Chapter]:
    return list(session.exec(select(Chapter).order_by(col(Chapter.position), col(Chapter.id))))


def _children(rows: list[Chapter]) -> dict[int | None, list[Chapter]]:
    kids: dict[int | None, list[Chapter]] = defaultdict(list)
    for c in rows:
        kids[c.parent_id].append(c)
    return kids


def subtree_ids(session: Session, chapter_id: int) -> list[int]:
    """The chapter and every node below it (a part covers its chapters and sections)."""
    kids = _children(all_chapters(session))
    out, todo = [], [chapter_id]
    seen: set[int] = set()
    while todo:
        cid = todo.pop()
        if cid in seen:  # only a tree edited by hand could loop; never walk it twice
            continue
        seen.add(cid)
        out.append(cid)
        todo.extend(c.id for c in kids.get(cid, []) if c.id is not None)
    return out


def reading_order(session: Session) -> list[int]:
    """Every chapter id in reading order (depth first by position), for stable reports."""
    kids = _children(all_chapters(session))
    order: list[int] = []

    def walk(parent: int | None) -> None:
        for c in kids.get(parent, []):
            assert c.id is not None
            order.append(c.id)
            walk(c.id)

    walk(None)
    return order


def _countable(user: User | None) -> Any:
    """SQL on Quote: a quote ``user`` may know of (erased ones, and those of recordings
    the user may see); a quote of an invisible recording must not show in a count."""
    if user is None:
        return True
    return col(Quote.recording_id).is_(None) | col(Quote.recording_id).in_(
        select(Recording.id).where(recording_filter(user)))


def _quote_counts(session: Session, user: User | None) -> dict[int, int]:
    rows = session.exec(
        select(ChapterQuote.chapter_id, func.count())
        .join(Quote, col(Quote.id) == col(ChapterQuote.quote_id))
        .where(_countable(user)).group_by(col(ChapterQuote.chapter_id))
    ).all()
    return dict(rows)


def tree(session: Session, *, user: User | None, root_id: int | None = None) -> ChapterTree:
    """The whole tree (or the subtree under ``root_id``), children in position order;
    quote counts as ``user`` may know them."""
    rows = all_chapters(session)
    kids = _children(rows)
    counts = _quote_counts(session, user)

    def node(c: Chapter) -> ChapterNode:
        assert c.id is not None
        return ChapterNode(
            id=c.id, kind=c.kind, number=c.number, title=c.title, summary=c.summary,
            parent_id=c.parent_id, position=c.position,
            manuscript_chars=len(c.manuscript or ""), quote_count=counts.get(c.id, 0),
            children=[node(k) for k in kids.get(c.id, [])],
        )

    roots = [c for c in rows if c.id == root_id] if root_id is not None else kids.get(None, [])
    data = [node(c) for c in roots]

    def size(n: ChapterNode) -> int:
        return 1 + sum(size(k) for k in n.children)

    return ChapterTree(data=data, count=sum(size(n) for n in data))


def path_of(session: Session, chapter: Chapter) -> list[str]:
    out: list[str] = []
    seen: set[int] = set()
    parent_id = chapter.parent_id
    while parent_id is not None and parent_id not in seen:
        seen.add(parent_id)
        parent = session.get(Chapter, parent_id)
        if parent is None:
            break
        out.append(label(parent))
        parent_id = parent.parent_id
    return out[::-1]


def label(c: Chapter) -> str:
    """"第六章 第一场战役…", "6.1 产品的诞生…", "第二编 …": how a writer names the node."""
    if c.number and c.kind == ChapterKind.part:
        return f"Part {c.number}: {c.title}"
    if c.number and c.kind == ChapterKind.chapter:
        return f"Chapter {c.number}: {c.title}"
    return f"{c.number} {c.title}" if c.number else c.title


def to_public(session: Session, chapter: Chapter, *, user: User | None) -> ChapterPublic:
    assert chapter.id is not None
    children = session.exec(
        select(Chapter.id).where(Chapter.parent_id == chapter.id)
        .order_by(col(Chapter.position), col(Chapter.id))
    ).all()
    quotes = session.exec(
        select(func.count()).select_from(ChapterQuote)
        .join(Quote, col(Quote.id) == col(ChapterQuote.quote_id))
        .where(ChapterQuote.chapter_id == chapter.id, _countable(user))
    ).one()
    return ChapterPublic(
        **chapter.model_dump(), path=path_of(session, chapter),
        children=[i for i in children if i is not None], quote_count=quotes,
    )


def _check_parent(session: Session, chapter_id: int | None, parent_id: int | None) -> None:
    if parent_id is None:
        return
    if session.get(Chapter, parent_id) is None:
        raise ChapterProblem(f"No chapter with id {parent_id} to be the parent.")
    if chapter_id is not None and parent_id in subtree_ids(session, chapter_id):
        raise ChapterProblem("A chapter cannot be moved under itself or one of its sections.")


def create_chapter(session: Session, *, data: ChapterCreate, actor: User) -> Chapter:
    _check_parent(session, None, data.parent_id)
    chapter = Chapter.model_validate(data)
    session.add(chapter)
    session.flush()
    audit.record(session, actor=actor, action="create", object_type="chapter",
                 object_id=chapter.id, summary=f"{chapter.kind.value} {chapter.number or ''}")
    session.commit()
    return chapter


def update_chapter(session: Session, *, chapter: Chapter, data: ChapterUpdate,
                   actor: User) -> Chapter:
    changes = data.model_dump(exclude_unset=True)
    if "title" in changes and changes["title"] is None:
        raise ChapterProblem("title cannot be empty.")
    if "parent_id" in changes:
        _check_parent(session, chapter.id, changes["parent_id"])
    changed = sorted(k for k, v in changes.items() if getattr(chapter, k) != v)
    for key in changed:
        setattr(chapter, key, changes[key])
    if changed:
        chapter.updated_at = utcnow()
        session.add(chapter)
        audit.record(session, actor=actor, action="update", object_type="chapter",
                     object_id=chapter.id, summary="changed " + ", ".join(changed))
        session.commit()
    return chapter


def delete_chapter(session: Session, *, chapter: Chapter, actor: User) -> None:
    """Delete a node with everything under it and their quote links (not the quotes)."""
    ids = subtree_ids(session, chapter.id or 0)
    audit.record(session, actor=actor, action="delete", object_type="chapter",
                 object_id=chapter.id, summary=f"with {len(ids) - 1} node(s) below")
    # Children first: the FK cascade is not relied on for SQLite databases created
    # without foreign keys enforced.
    for cid in reversed(ids):
        for link in session.exec(select(ChapterQuote).where(ChapterQuote.chapter_id == cid)):
            session.delete(link)
        # No ORM relationship orders these deletes; flushed together, the node can go first
        # and the database's cascade removes the links the ORM then expects to delete.
        session.flush()
        node = session.get(Chapter, cid)
        if node is not None:
            session.delete(node)
        session.flush()
    session.commit()


def _existing_keys(rows: list[Chapter]) -> dict[tuple[int | None, tuple[str, ...]], Chapter]:
    """Stored nodes by (book id, outline key), the way ``outline.node_key`` names them."""
    by_id = {c.id: c for c in rows}
    keys: dict[int, tuple[str, ...]] = {}

    def key_of(c: Chapter, depth: int = 0) -> tuple[str, ...]:
        assert c.id is not None
        if c.id in keys:
            return keys[c.id]
        parent = by_id.get(c.parent_id) if c.parent_id is not None else None
        parent_key = key_of(parent, depth + 1) if parent is not None and depth < 50 else None
        k = outline.node_key(c.kind.value, c.number, c.title, parent_key)
        keys[c.id] = k
        return k

    def book_of(c: Chapter) -> int | None:
        seen: set[int] = set()
        cur: Chapter | None = c
        while cur is not None and cur.id not in seen:
            assert cur.id is not None
            seen.add(cur.id)
            if cur.kind == ChapterKind.book:
                return cur.id
            cur = by_id.get(cur.parent_id) if cur.parent_id is not None else None
        return None

    return {(None if c.kind == ChapterKind.book else book_of(c), key_of(c)): c for c in rows}


def import_outline(session: Session, *, text: str, actor: User) -> ChapterImportResult:
    """Build or update the tree from a Markdown outline/draft (one commit, audited).

    Nodes are matched to stored ones by number (parts, chapters, sections), else by
    parent and title, within the same book; matched nodes keep their ids and so their
    quote links. Text the document has for a node replaces the stored text; a node the
    document gives no text keeps what it had (re-importing the bare outline does not
    wipe manuscripts). Nothing stored is deleted: nodes the document no longer has are
    listed in ``not_in_document``.
    """
    parsed = outline.parse(text)
    rows = all_chapters(session)
    existing = _existing_keys(rows)
    by_title: dict[tuple[int | None, str, str], Chapter] = {}
    for (book, _), c in existing.items():
        by_title.setdefault((book, c.kind.value, outline.node_key("x", None, c.title, None)[-1]),
                            c)
    made: dict[tuple[str, ...], Chapter] = {}
    positions: dict[tuple[str, ...] | None, int] = defaultdict(int)
    created = updated = unchanged = 0
    book_id: int | None = None
    for node in parsed.nodes:
        parent = made.get(node.parent) if node.parent else None
        book_scope = None if node.kind == "book" else book_id
        match = existing.get((book_scope, node.key))
        if match is None and node.kind != "book":
            norm = outline.node_key("x", None, node.title, None)[-1]
            candidate = by_title.get((book_scope, node.kind, norm))
            if candidate is not None and candidate not in made.values():
                match = candidate
        position = positions[node.parent]
        positions[node.parent] += 1
        values: dict[str, Any] = {
            "kind": ChapterKind(node.kind), "number": node.number, "title": node.title,
            "parent_id": parent.id if parent else None, "position": position,
        }
        if node.summary_text is not None:
            values["summary"] = node.summary_text[:20_000]
        if node.manuscript_text is not None:
            values["manuscript"] = node.manuscript_text
        if match is None:
            chapter = Chapter(**values)
            session.add(chapter)
            session.flush()
            created += 1
        else:
            chapter = match
            diff = [k for k, v in values.items() if getattr(chapter, k) != v]
            for k in diff:
                setattr(chapter, k, values[k])
            if diff:
                chapter.updated_at = utcnow()
                session.add(chapter)
                updated += 1
            else:
                unchanged += 1
        made[node.key] = chapter
        if node.kind == "book":
            book_id = chapter.id
    session.flush()
    touched = {c.id for c in made.values()}
    leftover = sorted(c.id for (book, _), c in existing.items()
                      if c.id is not None and c.id not in touched and book == book_id
                      and c.kind != ChapterKind.book)
    counts = parsed.counts()
    audit.record(session, actor=actor, action="import", object_type="chapter",
                 object_id=book_id,
                 summary=f"{created} created, {updated} updated, {unchanged} unchanged; "
                 + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    session.commit()
    whole = tree(session, user=actor, root_id=book_id)
    return ChapterImportResult(
        data=whole.data, count=whole.count, created=created, updated=updated,
        unchanged=unchanged, not_in_document=leftover,
        notes=[ChapterImportNote(line=n, text=t) for n, t in parsed.notes],
    )


def chapters_using(session: Session, *, user: User, recording_id: int | None = None,
                   person_id: int | None = None) -> list[ChapterUse]:
    """Chapters linked to quotes of a recording or of a person (visible recordings only)."""
    query = (
        select(ChapterQuote, Quote, Recording)
        .join(Quote, col(Quote.id) == col(ChapterQuote.quote_id))
        .join(Recording, col(Recording.id) == col(Quote.recording_id))
    )
    if recording_id is not None:
        query = query.where(Quote.recording_id == recording_id)
    if person_id is not None:
        query = query.where(Quote.person_id == person_id)
    uses: dict[int, ChapterUse] = {}
    for link, quote, recording in session.exec(query).all():
        if not can_see_recording(user, recording):
            continue
        use = uses.get(link.chapter_id)
        if use is None:
            chapter = session.get(Chapter, link.chapter_id)
            if chapter is None:
                continue
            use = uses[link.chapter_id] = ChapterUse(
                chapter_id=link.chapter_id, kind=chapter.kind, number=chapter.number,
                title=chapter.title, path=path_of(session, chapter))
        assert quote.id is not None
        use.quote_ids.append(quote.id)
        if link.usage.value not in use.usages:
            use.usages.append(link.usage.value)
    return sorted(uses.values(), key=lambda u: u.chapter_id)
