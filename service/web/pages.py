"""Sign-in, the recordings list (upload, live jobs) and the transcript page."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

import sqlalchemy as sa
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlmodel import col

from service.access import get_recording, recording_filter
from service.api.deps import AnyUser, Offset, SessionDep, Staff
from service.auth import (
    RESEARCH,
    SESSION_COOKIE,
    TokenRefused,
    authenticate,
    csrf_token,
    end_web_session,
    start_web_session,
)
from service.crud import corrections
from service.crud import jobs as job_crud
from service.crud import people as people_crud
from service.crud import recordings as rec_crud
from service.crud import transcripts as tr_crud
from service.models import transcripts
from service.models.jobs import JobState
from service.models.recordings import ParticipantRole, Recording, RecordingSource
from service.models.transcripts import Segment
from service.web import views
from service.web.common import STATIC_DIR, PageRoute, render, templates

router = APIRouter(route_class=PageRoute, include_in_schema=False)

PAGE_SIZE = 50
EXPORT_FORMATS = ("txt", "md", "srt", "vtt", "json", "docx")
#: What a restriction badge on a segment means, for the reader who meets it.
RESTRICTION_HELP = {
    "off_record": "Off the record: the speaker asked that this not be used. Authors see "
                  "[restricted]; editors see the text, which may inform but never be quoted.",
    "deep_background": "Deep background: may inform the book, never quoted or attributed. "
                       "Authors see [restricted].",
    "embargo": "Embargoed: may not be published before the date the restriction lifts "
               "(see the consent page).",
    "background": "Background: may be quoted only with the agreed descriptor, not by name.",
}


def _safe_next(target: str) -> str:
    """Only a path on this site: an absolute URL here would be an open redirect."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/recordings"
    return target


@router.get("/", response_class=RedirectResponse)
def home() -> RedirectResponse:
    return RedirectResponse("/recordings", status_code=303)


@router.get("/favicon.ico", response_class=FileResponse)
def favicon() -> FileResponse:
    """The icon, for browsers and tools that ask for /favicon.ico before reading the page."""
    return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml",
                        headers={"Cache-Control": "public, max-age=86400"})


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/recordings") -> HTMLResponse:
    """The sign-in form: paste the API token an admin gave you."""
    return templates.TemplateResponse(request, "login.html",
                                      {"next": _safe_next(next), "error": None, "user": None,
                                       "csrf": ""})


@router.post("/login", response_class=HTMLResponse)
def sign_in(request: Request, session: SessionDep, token: Annotated[str, Form()] = "",
            next: Annotated[str, Form()] = "/recordings") -> Response:
    """Check the token like the API does, then start a web session of its own: the
    HttpOnly, SameSite=Strict cookie holds a new session token, never the one typed in."""
    origin = request.headers.get("origin")
    if origin and origin not in ("null", f"{request.url.scheme}://{request.url.netloc}"):
        # Login CSRF: another site must not sign a visitor in under its own token.
        return templates.TemplateResponse(
            request, "login.html", {"next": "/recordings", "user": None, "csrf": "",
                                    "error": "Sign in from this site's own page."},
            status_code=403)
    token = token.strip()
    key, ttl = request.app.state.token_key, request.app.state.settings.token_ttl
    try:
        if not token:
            raise TokenRefused("Paste the API token an admin gave you "
                               "(sourcebook users create NAME --role ROLE).")
        user, _ = authenticate(session, key=key, token=token, ttl=ttl)
    except TokenRefused as exc:
        return templates.TemplateResponse(
            request, "login.html",
            {"next": _safe_next(next), "user": None, "csrf": "", "error": str(exc)},
            status_code=401)
    web_token = start_web_session(session, key=key, user=user, ttl=ttl)
    session.commit()
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(SESSION_COOKIE, web_token, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")
    return response


@router.post("/logout")
def sign_out(request: Request, session: SessionDep,
             csrf: Annotated[str, Form()] = "") -> Response:
    """End this browser's session: its session token is revoked; API tokens stay valid."""
    token = request.cookies.get(SESSION_COOKIE, "")
    if token and csrf != csrf_token(request.app.state.token_key, token):
        return Response("Sign out from the page's own button.", status_code=403)
    if token and end_web_session(session, key=request.app.state.token_key, token=token):
        session.commit()
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/recordings", response_class=HTMLResponse)
def recordings_page(request: Request, session: SessionDep, user: AnyUser,
                    q: str | None = Query(None, max_length=200),
                    offset: Offset = 0) -> HTMLResponse:
    """Recordings with status, duration, speakers and consent; upload for researchers."""
    rows, count = rec_crud.list_recordings(session, visible=recording_filter(user), q=q,
                                           limit=PAGE_SIZE, offset=offset)
    items = [rec_crud.to_public(session, r) for r in rows]
    people = people_crud.list_people(session, limit=1000)[0] if user.role in RESEARCH else []
    return render(request, user, "recordings.html", {
        "recordings": items, "count": count, "offset": offset, "page_size": PAGE_SIZE, "q": q,
        "consent": views.consent_states(session, items), "people": people,
        "sources": list(RecordingSource), "roles": list(ParticipantRole),
    })


@router.get("/recordings/jobs", response_class=HTMLResponse)
def jobs_fragment(request: Request, session: SessionDep, user: Staff) -> HTMLResponse:
    """The live job panel (htmx polls it): stage, progress and a cancel button."""
    jobs, _ = job_crud.list_jobs(session, visible=recording_filter(user), limit=8)
    active = any(j.state in (JobState.queued, JobState.running) for j in jobs)
    titles = dict(session.execute(
        sa.select(col(Recording.id), col(Recording.title))
        .where(col(Recording.id).in_({j.recording_id for j in jobs}))).tuples().all())
    return render(request, user, "_jobs.html", {"jobs": jobs, "active": active,
                                                "titles": titles})


@router.get("/recordings/{recording_id}", response_class=HTMLResponse)
def transcript_page(request: Request, recording_id: int, session: SessionDep, user: AnyUser,
                    version: int | None = Query(None, ge=1)) -> HTMLResponse:
    """The transcript with audio, speakers, corrections, restrictions and a timeline."""
    recording = rec_crud.to_public(session, get_recording(session, user, recording_id))
    try:
        transcript = tr_crud.for_page(
            session, tr_crud.get_transcript(session, recording_id=recording_id,
                                            version=version), user=user)
    except tr_crud.NoTranscript:
        transcript = None
    revisions: dict[int, list[transcripts.RevisionPublic]] = {}
    lanes: list[views.Lane] = []
    if transcript is not None:
        edited = [s.id for s in transcript.segments if s.edited]
        for sid in edited:
            segment = session.get(Segment, sid)
            assert segment is not None
            revisions[sid] = corrections.list_revisions(session, segment=segment, user=user,
                                                    limit=20)[0]
        names = {s.label: s.name or "" for s in transcript.speakers}
        lanes = views.timeline([(s.speaker, s.start, s.end) for s in transcript.segments],
                               names, recording.duration)
    people = people_crud.list_people(session, limit=1000)[0]
    return render(request, user, "transcript.html", {
        "recording": recording, "transcript": transcript, "revisions": revisions,
        "lanes": lanes, "people": people, "formats": EXPORT_FORMATS,
        # The interview's own participants head the speaker menus: SPEAKER_00 is one of
        # them far more often than anyone else in the archive.
        "participant_ids": {p.person_id for p in recording.participants},
        "restriction_help": RESTRICTION_HELP,
        "timeline_width": views.TIMELINE_WIDTH, "lane_height": views.LANE_HEIGHT,
    })
