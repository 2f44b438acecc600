"""/api/v1 consent routes: agreements, restrictions, approvals, clearance, access, erasure.

Everything here is the editors' (API.md: "editor: consent, approvals, audits"); erasure
is the admins'. Domain errors from ``service.crud.consent`` become HTTP errors here.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, PlainTextResponse
from python_multipart.multipart import parse_options_header

from service.access import get_recording
from service.api.deps import Admin, Editor, Limit, Offset, SessionDep
from service.api.upload import receive_multipart
from service.clearance import facts, render
from service.crud import consent as crud
from service.crud import person_data
from service.errors import not_found
from service.models.base import Page
from service.models.consent import (
    ApprovalHistory,
    ApprovalIn,
    ApprovalPublic,
    ClearanceReport,
    ClearanceRow,
    ConsentAgreement,
    ConsentCreate,
    ConsentPublic,
    ConsentStatus,
    ConsentUpdate,
    ErasureSummary,
    PersonReport,
    Restriction,
    RestrictionCreate,
    RestrictionPublic,
    Withdrawal,
    WithdrawIn,
)
from service.models.people import Person
from service.models.quotes import Quote
from service.storage import Storage, StorageFullError

router = APIRouter(tags=["consent"])

AsOf = Query(None, description="Planned publication date (YYYY-MM-DD); default: today")


def _agreement(session: SessionDep, consent_id: int) -> ConsentAgreement:
    agreement = session.get(ConsentAgreement, consent_id)
    if agreement is None:
        raise not_found("consent agreement", consent_id)
    return agreement


def _quote(session: SessionDep, quote_id: int) -> Quote:
    quote = session.get(Quote, quote_id)
    if quote is None:
        raise not_found("quote", quote_id)
    return quote


def _person(session: SessionDep, person_id: int) -> Person:
    person = session.get(Person, person_id)
    if person is None:
        raise not_found("person", person_id)
    return person


# --- agreements ---------------------------------------------------------------------

@router.post("/consents", status_code=status.HTTP_201_CREATED, response_model=ConsentPublic)
def create_consent(data: ConsentCreate, request: Request, session: SessionDep,
                   user: Editor) -> ConsentPublic:
    """Record a consent agreement for a person (one recording, or all of theirs).

    ``voiceprint: true`` on a granted agreement allows voice recognition of the person."""
    agreement = crud.create_agreement(session, data=data, actor=user,
                                      enqueue=request.app.state.jobs.enqueue)
    return crud.to_public(session, agreement)


@router.get("/consents", response_model=Page[ConsentPublic])
def list_consents(
    session: SessionDep,
    user: Editor,
    limit: Limit = 100,
    offset: Offset = 0,
    person_id: int | None = None,
    recording_id: int | None = None,
    status: ConsentStatus | None = None,
) -> Page[ConsentPublic]:
    """List consent agreements."""
    rows, count = crud.list_agreements(session, person_id=person_id, recording_id=recording_id,
                                       status=status, limit=limit, offset=offset)
    return Page(data=[crud.to_public(session, a) for a in rows], count=count)


@router.get("/consents/{consent_id}", response_model=ConsentPublic)
def read_consent(consent_id: int, session: SessionDep, user: Editor) -> ConsentPublic:
    """Read one consent agreement."""
    return crud.to_public(session, _agreement(session, consent_id))


@router.patch("/consents/{consent_id}", response_model=ConsentPublic)
def update_consent(consent_id: int, data: ConsentUpdate, request: Request,
                   session: SessionDep, user: Editor) -> ConsentPublic:
    """Change an agreement's terms (withdrawal has its own route).

    Setting ``voiceprint`` to false (or withdrawing) deletes the person's voiceprint and
    the suggestions built from it at once, unless another agreement still allows it."""
    agreement = crud.update_agreement(session, agreement=_agreement(session, consent_id),
                                      data=data, actor=user,
                                      enqueue=request.app.state.jobs.enqueue)
    return crud.to_public(session, agreement)


@router.post("/consents/{consent_id}/document", response_model=ConsentPublic,
             openapi_extra={"requestBody": {"required": True, "content": {
                 "multipart/form-data": {"schema": {
                     "type": "object", "required": ["file"],
                     "properties": {"file": {"type": "string", "format": "binary"}}}}}}})
async def attach_consent_document(consent_id: int, request: Request, session: SessionDep,
                                  user: Editor) -> ConsentPublic:
    """Attach the signed release (PDF, PNG or JPEG, at most 20 MiB) as part ``file``."""
    agreement = await run_in_threadpool(_agreement, session, consent_id)
    ctype, _ = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data":
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                            "Send the release as multipart/form-data with a 'file' part, e.g. "
                            "curl -F file=@release.pdf.")
    storage: Storage = request.app.state.storage
    try:
        upload = await receive_multipart(request, storage=storage,
                                         max_bytes=crud.MAX_DOCUMENT_BYTES, fields=())
    except StorageFullError:
        raise HTTPException(507, "The storage volume is full; nothing was stored.") from None
    try:
        if upload.tmp_path is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                "Missing 'file' part: attach the release, e.g. "
                                "curl -F file=@release.pdf.")
        agreement = await run_in_threadpool(
            crud.attach_document, session, storage=storage, agreement=agreement,
            tmp_path=upload.tmp_path, size=upload.size, sha256=upload.sha256, actor=user)
    finally:
        upload.discard()  # a no-op once the file was moved into place
    return crud.to_public(session, agreement)


@router.get("/consents/{consent_id}/document", response_class=FileResponse)
def read_consent_document(consent_id: int, request: Request, session: SessionDep,
                          user: Editor) -> FileResponse:
    """Download the signed release."""
    agreement = _agreement(session, consent_id)
    path = crud.document_file(request.app.state.storage, agreement)
    if path is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            f"Consent #{consent_id} has no signed release attached; attach one "
                            "with POST /api/v1/consents/{id}/document.")
    return FileResponse(path, media_type=agreement.document_type or "application/octet-stream",
                        filename=f"consent-{consent_id}{path.suffix}")


@router.post("/consents/{consent_id}/withdraw", response_model=Withdrawal)
def withdraw_consent(consent_id: int, data: WithdrawIn, session: SessionDep, user: Editor,
                     as_of: date | None = AsOf) -> Withdrawal:
    """Withdraw an agreement (kept, with date and reason); lists the quote uses it blocks."""
    agreement, impact = crud.withdraw_agreement(
        session, agreement=_agreement(session, consent_id), reason=data.reason,
        actor=user, as_of=as_of)
    return Withdrawal(consent=crud.to_public(session, agreement), impact=impact)


@router.get("/consents/{consent_id}/impact", response_model=Page[ClearanceRow])
def read_withdrawal_impact(consent_id: int, session: SessionDep, user: Editor,
                           as_of: date | None = AsOf) -> Page[ClearanceRow]:
    """Which quotes, in which chapters, at which usage, a withdrawal blocks (or would)."""
    rows = crud.withdrawal_impact(session, agreement=_agreement(session, consent_id),
                                  as_of=as_of)
    return Page(data=rows, count=len(rows))


# --- restrictions -------------------------------------------------------------------

@router.post("/recordings/{recording_id}/restrictions", status_code=status.HTTP_201_CREATED,
             response_model=RestrictionPublic)
def create_restriction(recording_id: int, data: RestrictionCreate, session: SessionDep,
                       user: Editor) -> RestrictionPublic:
    """Restrict a time range of a recording (every transcript version)."""
    recording = get_recording(session, user, recording_id)
    restriction = crud.create_restriction(session, recording=recording, data=data,
                                          actor=user)
    return crud.restriction_public(restriction, recording.title)


@router.get("/recordings/{recording_id}/restrictions", response_model=Page[RestrictionPublic])
def list_restrictions(recording_id: int, session: SessionDep,
                      user: Editor) -> Page[RestrictionPublic]:
    """List a recording's restrictions, in time order."""
    recording = get_recording(session, user, recording_id)
    rows = crud.list_restrictions(session, recording_id=recording_id)
    return Page(data=[crud.restriction_public(r, recording.title) for r in rows],
                count=len(rows))


@router.delete("/recordings/{recording_id}/restrictions/{restriction_id}",
               status_code=status.HTTP_204_NO_CONTENT)
def delete_restriction(recording_id: int, restriction_id: int, session: SessionDep,
                       user: Editor) -> Response:
    """Lift a restriction."""
    get_recording(session, user, recording_id)
    restriction = session.get(Restriction, restriction_id)
    if restriction is None or restriction.recording_id != recording_id:
        raise not_found("restriction", restriction_id)
    crud.delete_restriction(session, restriction=restriction, actor=user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- approvals ----------------------------------------------------------------------

@router.post("/quotes/{quote_id}/approval", status_code=status.HTTP_201_CREATED,
             response_model=ApprovalPublic)
def record_quote_approval(quote_id: int, data: ApprovalIn, session: SessionDep,
                          user: Editor) -> ApprovalPublic:
    """Record an approval request or the interviewee's decision on a quote."""
    quote = _quote(session, quote_id)
    row = crud.record_approval(session, quote=quote, data=data, actor=user)
    return crud.approval_public(row, quote)


@router.get("/quotes/{quote_id}/approval", response_model=ApprovalHistory)
def read_quote_approval(quote_id: int, session: SessionDep, user: Editor) -> ApprovalHistory:
    """The quote's current approval and its history."""
    return crud.approvals_of(session, quote=_quote(session, quote_id))


# --- clearance ----------------------------------------------------------------------

@router.get("/clearance", response_model=ClearanceReport,
            responses={200: {"content": {"text/csv": {}, "text/markdown": {}}}})
def read_clearance(
    session: SessionDep,
    user: Editor,
    chapter_id: int | None = Query(None, description="A chapter, section or part (with all "
                                   "below it); default: the whole book"),
    as_of: date | None = AsOf,
    format: Literal["json", "csv", "md"] = Query("json"),
) -> ClearanceReport | Response:
    """May each quote used in chapters be printed on ``as_of``, and how attributed?"""
    day = as_of or date.today()
    report = facts.clearance_report(session, as_of=day, chapter_id=chapter_id, actor=user,
                                   fmt=format)
    if format == "json":
        return report
    scope = f"chapter-{chapter_id}" if chapter_id is not None else "book"
    if format == "csv":
        body, media, ext = render.render_csv(report), "text/csv; charset=utf-8", "csv"
    else:
        body, media, ext = render.render_markdown(report), "text/markdown; charset=utf-8", "md"
    return PlainTextResponse(body, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="clearance-{scope}-{day}.{ext}"'})


# --- access requests and erasure ----------------------------------------------------

@router.get("/people/{person_id}/report", response_model=PersonReport)
def read_person_report(
    person_id: int, session: SessionDep, user: Editor,
    include_segments: bool = Query(False, description="Also the text of every segment "
                                   "they speak, in every transcript version"),
) -> PersonReport:
    """Everything held about a person and where it is used (for an access request)."""
    return person_data.person_report(session, person=_person(session, person_id), actor=user,
                              include_segments=include_segments)


@router.post("/people/{person_id}/erase", response_model=ErasureSummary)
def erase_person(person_id: int, request: Request, session: SessionDep,
                 user: Admin) -> ErasureSummary:
    """Erase a person's voiceprint, releases, quotes and words (an erasure request)."""
    return person_data.erase_person(session, storage=request.app.state.storage,
                             person=_person(session, person_id), actor=user)
