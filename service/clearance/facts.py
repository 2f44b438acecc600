"""The facts clearance is judged on, read from the database, and every quote use assessed.

Clearance is never stored: ``clearance`` reads the agreements, restrictions and
approvals behind each quote used in a chapter, hands them to the pure rules
(``service.clearance.rules``) and returns rows. A report taken away is audited; the
consent page's view of it is not.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

from sqlmodel import Session, col, select

from service.clearance import rules
from service.crud import audit
from service.crud.chapters import chapter_label, reading_order, subtree_ids
from service.errors import NotFound
from service.models.chapters import Chapter
from service.models.consent import (
    ClearanceReport,
    ClearanceRow,
    ConsentAgreement,
    ConsentStatus,
    QuoteApproval,
    Restriction,
)
from service.models.people import Person
from service.models.quotes import ChapterQuote, Quote
from service.models.recordings import Recording
from service.models.users import User


def _facts(session: Session, quotes: Sequence[Quote], withdrawn_override: int | None,
           ) -> dict[int, rules.QuoteFacts]:
    person_ids = {q.person_id for q in quotes if q.person_id is not None}
    recording_ids = {q.recording_id for q in quotes if q.recording_id is not None}
    quote_ids = {q.id for q in quotes if q.id is not None}
    names = dict(session.exec(select(Person.id, Person.name)
                              .where(col(Person.id).in_(person_ids))).all()) if person_ids else {}
    agreements: dict[int, list[rules.AgreementFacts]] = {}
    if person_ids:
        for a in session.exec(select(ConsentAgreement)
                              .where(col(ConsentAgreement.person_id).in_(person_ids))):
            assert a.id is not None
            status = ConsentStatus.withdrawn if a.id == withdrawn_override else a.status
            agreements.setdefault(a.person_id, []).append(rules.AgreementFacts(
                id=a.id, status=status, attribution=a.attribution, recording_id=a.recording_id,
                descriptor=a.descriptor, approval_required=a.approval_required,
                embargo_until=a.embargo_until))
    restrictions: dict[int, list[rules.RestrictionFacts]] = {}
    if recording_ids:
        for r in session.exec(select(Restriction)
                              .where(col(Restriction.recording_id).in_(recording_ids))):
            assert r.id is not None
            restrictions.setdefault(r.recording_id, []).append(rules.RestrictionFacts(
                id=r.id, start=r.start, end=r.end, level=r.level, until=r.until))
    approvals: dict[int, rules.ApprovalFacts] = {}
    if quote_ids:
        for ap in session.exec(select(QuoteApproval)
                               .where(col(QuoteApproval.quote_id).in_(quote_ids))
                               .order_by(col(QuoteApproval.id))):
            approvals[ap.quote_id] = rules.ApprovalFacts(ap.decision, ap.approved_text)
    out: dict[int, rules.QuoteFacts] = {}
    for q in quotes:
        assert q.id is not None
        out[q.id] = rules.QuoteFacts(
            quote_id=q.id, recording_id=q.recording_id, start=q.start, end=q.end,
            person_id=q.person_id, person_name=names.get(q.person_id),
            verbatim=q.verbatim, edited=q.edited,
            agreements=tuple(agreements.get(q.person_id, ())) if q.person_id else (),
            restrictions=tuple(restrictions.get(q.recording_id, ())) if q.recording_id else (),
            approval=approvals.get(q.id),
        )
    return out


def clearance(session: Session, *, as_of: date, chapter_id: int | None = None,
              quote_ids: Iterable[int] | None = None, withdrawn_override: int | None = None,
              ) -> list[ClearanceRow]:
    """Assess every quote use in chapters (optionally one chapter's subtree, or some quotes).

    ``withdrawn_override`` assesses as if that agreement were withdrawn (impact previews).
    """
    query = (select(ChapterQuote, Quote, Chapter)
             .join(Quote, col(Quote.id) == ChapterQuote.quote_id)
             .join(Chapter, col(Chapter.id) == ChapterQuote.chapter_id))
    if chapter_id is not None:
        query = query.where(col(ChapterQuote.chapter_id).in_(subtree_ids(session, chapter_id)))
    if quote_ids is not None:
        ids = set(quote_ids)
        if not ids:
            return []
        query = query.where(col(ChapterQuote.quote_id).in_(ids))
    links = session.exec(query).all()
    quotes = list({q.id: q for _, q, _ in links}.values())
    facts = _facts(session, quotes, withdrawn_override)
    position = {cid: i for i, cid in enumerate(reading_order(session))}
    recording_ids = {q.recording_id for q in quotes if q.recording_id is not None}
    titles = dict(session.exec(select(Recording.id, Recording.title).where(
        col(Recording.id).in_(recording_ids))).all()) if recording_ids else {}
    rows: list[ClearanceRow] = []
    for link, quote, chapter in links:
        assert quote.id is not None and chapter.id is not None
        fact = facts[quote.id]
        result = rules.assess(fact, as_of=as_of)
        excerpt = None if result.status == rules.Status.blocked else fact.text_used
        rows.append(ClearanceRow(
            quote_id=quote.id, chapter_id=chapter.id, chapter=chapter_label(chapter),
            usage=link.usage.value, person_id=quote.person_id, speaker=fact.person_name,
            recording_id=quote.recording_id, recording_title=titles.get(quote.recording_id),
            start=quote.start, end=quote.end, status=result.status.value,
            attribution=result.attribution,
            attribution_level=result.attribution_level.value if result.attribution_level
            else None,
            reasons=[r.message for r in result.reasons],
            reason_codes=[r.code.value for r in result.reasons],
            agreement_id=result.agreement_id, excerpt=excerpt,
        ))
    rows.sort(key=lambda r: (position.get(r.chapter_id, 0), r.start, r.quote_id))
    return rows


def totals(rows: Sequence[ClearanceRow]) -> dict[str, int]:
    counts = {s.value: 0 for s in rules.Status}
    for r in rows:
        counts[r.status] += 1
    return counts


def clearance_view(session: Session, *, as_of: date, chapter_id: int | None,
                   ) -> ClearanceReport:
    """The clearance of a chapter (or the book), as the consent page shows it: not
    audited, since every page load (and the reload after each consent saved) would
    otherwise add an event."""
    if chapter_id is not None and session.get(Chapter, chapter_id) is None:
        raise NotFound(f"No chapter with id {chapter_id}. List chapters with GET "
                       "/api/v1/chapters.")
    rows = clearance(session, as_of=as_of, chapter_id=chapter_id)
    return ClearanceReport(data=rows, count=len(rows), as_of=as_of, chapter_id=chapter_id,
                           totals=totals(rows))


def clearance_report(session: Session, *, as_of: date, chapter_id: int | None,
                     actor: User | None, fmt: str) -> ClearanceReport:
    """The clearance as a report taken away (the API, a download, the CLI): audited."""
    report = clearance_view(session, as_of=as_of, chapter_id=chapter_id)
    audit.record(session, actor=actor, action="clearance-report",
                 object_type="chapter" if chapter_id is not None else "book",
                 object_id=chapter_id,
                 summary=f"as of {as_of}, {fmt}: {report.count} quote use(s), "
                 + ", ".join(f"{v} {k}" for k, v in report.totals.items()))
    session.commit()
    return report
