"""People: create, read, update, delete, each audited."""

from __future__ import annotations

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from service.crud import audit
from service.errors import Conflict
from service.models.base import utcnow
from service.models.consent import ConsentAgreement
from service.models.people import Person, PersonCreate, PersonUpdate
from service.models.quotes import Quote
from service.models.users import User


def create_person(session: Session, *, data: PersonCreate, actor: User) -> Person:
    person = Person.model_validate(data)
    session.add(person)
    session.flush()
    audit.record(session, actor=actor, action="create", object_type="person", object_id=person.id)
    session.commit()
    return person


def list_people(
    session: Session, *, q: str | None = None, limit: int = 100, offset: int = 0
) -> tuple[list[Person], int]:
    query = select(Person)
    if q:
        like = f"%{q}%"
        query = query.where(or_(col(Person.name).ilike(like), col(Person.organisation).ilike(like)))
    count = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(Person.id)).limit(limit).offset(offset)).all()
    return list(rows), count


def update_person(session: Session, *, person: Person, data: PersonUpdate, actor: User) -> Person:
    changes = data.model_dump(exclude_unset=True)
    for key, value in changes.items():
        setattr(person, key, value)
    person.updated_at = utcnow()
    session.add(person)
    audit.record(
        session,
        actor=actor,
        action="update",
        object_type="person",
        object_id=person.id,
        summary="fields: " + ", ".join(sorted(changes)),
    )
    session.commit()
    return person


class PersonInUse(Conflict):
    """The person has consent records or quotes that a plain delete would destroy."""


def delete_person(session: Session, *, person: Person, actor: User) -> None:
    consents = session.exec(
        select(func.count()).where(ConsentAgreement.person_id == person.id)
    ).one()
    quotes = session.exec(select(func.count()).where(Quote.person_id == person.id)).one()
    if consents or quotes:
        raise PersonInUse(
            f"{person.name} has {consents} consent record(s) and {quotes} quote(s); deleting "
            "would lose them. Use POST /api/v1/people/{id}/erase for an erasure request."
        )
    audit.record(session, actor=actor, action="delete", object_type="person", object_id=person.id)
    session.delete(person)
    session.commit()
