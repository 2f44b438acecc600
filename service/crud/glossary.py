"""Glossary terms: create, list, update, delete, each audited.

Search reads the glossary at query time (``service.search.aliases``), so nothing here
touches the search index.
"""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, col, select

from service.crud import audit
from service.errors import Conflict, Invalid
from service.models.base import utcnow
from service.models.glossary import GlossaryCreate, GlossaryPublic, GlossaryTerm, GlossaryUpdate
from service.models.people import Person
from service.models.users import User
from service.search.aliases import key, pinyin_forms

#: A team glossary is hundreds of terms; the bound keeps every search's name index small.
MAX_TERMS = 5000


class TermExists(Conflict):
    """Another glossary term already has this name."""


class GlossaryFull(Conflict):
    """The glossary holds MAX_TERMS terms."""


def to_public(term: GlossaryTerm) -> GlossaryPublic:
    pinyin = list(pinyin_forms(term.term)) if term.kind == "person" else []
    return GlossaryPublic.model_validate(term, update={"pinyin": pinyin})


def _check_unique(session: Session, name: str, *, other_than: int | None = None) -> None:
    wanted = key(name)
    if not wanted:
        raise Invalid(f"The term {name!r} has no letters, digits or Chinese characters; "
                         "give a name that search can find.")
    for tid, term in session.exec(select(GlossaryTerm.id, GlossaryTerm.term)).all():
        if tid != other_than and key(term) == wanted:
            raise TermExists(f"The glossary already has {term!r} (term #{tid}); add the "
                             "name as one of its aliases or edit that term instead.")


def _clean_aliases(term: str, aliases: list[str]) -> list[str]:
    """Aliases without duplicates, without the term itself, without unsearchable ones."""
    seen = {key(term)}
    out: list[str] = []
    for alias in aliases:
        k = key(alias)
        if k and k not in seen:
            seen.add(k)
            out.append(alias)
    return out


def create_term(session: Session, *, data: GlossaryCreate, actor: User) -> GlossaryTerm:
    if session.exec(select(func.count()).select_from(GlossaryTerm)).one() >= MAX_TERMS:
        raise GlossaryFull(f"The glossary holds {MAX_TERMS} terms, its limit; delete terms "
                           "that are no longer needed.")
    _check_unique(session, data.term)
    term = GlossaryTerm.model_validate(data)
    term.aliases = _clean_aliases(term.term, term.aliases)
    session.add(term)
    session.flush()
    audit.record(session, actor=actor, action="create", object_type="glossary",
                 object_id=term.id)
    session.commit()
    return term


def list_terms(session: Session, *, q: str | None = None, limit: int = 100,
               offset: int = 0) -> tuple[list[GlossaryTerm], int]:
    query = select(GlossaryTerm)
    if q:
        query = query.where(col(GlossaryTerm.term).ilike(f"%{q}%"))
    count = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(GlossaryTerm.term), col(GlossaryTerm.id))
                        .limit(limit).offset(offset)).all()
    return list(rows), count


def update_term(session: Session, *, term: GlossaryTerm, data: GlossaryUpdate,
                actor: User) -> GlossaryTerm:
    changes = data.model_dump(exclude_unset=True)
    if "term" in changes:
        _check_unique(session, changes["term"], other_than=term.id)
    for name, value in changes.items():
        setattr(term, name, value)
    term.aliases = _clean_aliases(term.term, list(term.aliases))
    term.updated_at = utcnow()
    session.add(term)
    audit.record(session, actor=actor, action="update", object_type="glossary",
                 object_id=term.id, summary="fields: " + ", ".join(sorted(changes)))
    session.commit()
    return term


def delete_term(session: Session, *, term: GlossaryTerm, actor: User) -> None:
    audit.record(session, actor=actor, action="delete", object_type="glossary",
                 object_id=term.id)
    session.delete(term)
    session.commit()


def unlisted_organisations(session: Session) -> list[str]:
    """Organisations named on people that no glossary term names yet: the page offers
    them as terms to add (their other names are the team's to give)."""
    known = {key(n) for term, aliases in session.exec(
        select(GlossaryTerm.term, GlossaryTerm.aliases)).all() for n in (term, *aliases)}
    orgs = session.exec(select(Person.organisation).where(
        col(Person.organisation).is_not(None)).distinct()).all()
    return sorted({o for o in orgs if o and key(o) and key(o) not in known})
