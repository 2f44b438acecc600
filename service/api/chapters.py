"""/api/v1/chapters: the book's tree, quote links, sources and manuscript verification."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.responses import PlainTextResponse

from service.access import get_recording
from service.api.deps import AnyUser, Author, SessionDep
from service.crud import bibliography
from service.crud import chapters as crud
from service.crud import quotes as quote_crud
from service.errors import NotFound, not_found
from service.manuscript import quotations, verify
from service.models.base import Page
from service.models.chapters import (
    Chapter,
    ChapterCreate,
    ChapterImportResult,
    ChapterPublic,
    ChapterTree,
    ChapterUpdate,
    ChapterUse,
)
from service.models.people import Person
from service.models.quotes import ChapterQuoteCreate, ChapterQuotePublic

router = APIRouter(tags=["chapters"])

#: Largest Markdown body accepted by import and verify: a whole book is well under 1 MiB.
MAX_TEXT_BYTES = 4 * 1024 * 1024
_TEXT_TYPES = ("text/markdown", "text/x-markdown", "text/plain")

MARKDOWN_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"text/markdown": {"schema": {"type": "string"}}},
    }
}


async def markdown_body(request: Request) -> str:
    """The request body as Markdown text: size-capped, UTF-8, not binary, not JSON."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype and ctype not in _TEXT_TYPES:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            f"Send the text as text/markdown (got {ctype}), e.g. curl --data-binary @chapter.md "
            "-H 'Content-Type: text/markdown'.",
        )
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_TEXT_BYTES:
        raise _too_large()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_TEXT_BYTES:
            raise _too_large()
        chunks.append(chunk)
    raw = b"".join(chunks)
    if b"\x00" in raw:
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                            "The body is binary, not Markdown text. Export the chapter as .md "
                            "(UTF-8) and send that.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                            "The body is not UTF-8 text. Save the Markdown as UTF-8 and send it "
                            "again.") from None
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            json.loads(stripped)
        except ValueError:
            pass
        else:
            raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                                "The body is JSON, not Markdown. Send the outline or chapter "
                                "text itself as text/markdown.")
    if not text.strip():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            "The body is empty; send the Markdown text.")
    return text


def _too_large() -> HTTPException:
    return HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        f"The text is over {MAX_TEXT_BYTES // (1024 * 1024)} MiB. Send one part or chapter at a "
        "time.",
    )


MarkdownBody = Annotated[str, Depends(markdown_body)]


def _get(session: SessionDep, chapter_id: int) -> Chapter:
    chapter = session.get(Chapter, chapter_id)
    if chapter is None:
        raise not_found("chapter", chapter_id)
    return chapter


@router.post("/chapters/import", status_code=status.HTTP_201_CREATED,
             response_model=ChapterImportResult, openapi_extra=MARKDOWN_BODY,
             responses={413: {"description": "Body over 4 MiB."},
                        415: {"description": "Not Markdown text (binary, JSON, not UTF-8)."},
                        422: {"description": "No headings."}})
def import_chapters(text: MarkdownBody, session: SessionDep, user: Author) -> ChapterImportResult:
    """Build or update the part/chapter/section tree from a Markdown outline or draft."""
    return crud.import_outline(session, text=text, actor=user)


@router.get("/chapters", response_model=ChapterTree)
def list_chapters(session: SessionDep, user: AnyUser) -> ChapterTree:
    """The whole tree of parts, chapters and sections."""
    return crud.tree(session, user=user)


@router.post("/chapters", status_code=status.HTTP_201_CREATED, response_model=ChapterPublic)
def create_chapter(data: ChapterCreate, session: SessionDep, user: Author) -> ChapterPublic:
    """Create one part, chapter or section."""
    return crud.to_public(session, crud.create_chapter(session, data=data, actor=user),
                          user=user)


@router.get("/chapters/{chapter_id}", response_model=ChapterPublic)
def read_chapter(chapter_id: int, session: SessionDep, user: AnyUser) -> ChapterPublic:
    """Read one node with its manuscript."""
    return crud.to_public(session, _get(session, chapter_id), user=user)


@router.patch("/chapters/{chapter_id}", response_model=ChapterPublic)
def update_chapter(chapter_id: int, data: ChapterUpdate, session: SessionDep,
                   user: Author) -> ChapterPublic:
    """Change a node's title, number, summary, manuscript or place in the tree."""
    chapter = _get(session, chapter_id)
    crud.update_chapter(session, chapter=chapter, data=data, actor=user)
    return crud.to_public(session, chapter, user=user)


@router.delete("/chapters/{chapter_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_chapter(chapter_id: int, session: SessionDep, user: Author) -> Response:
    """Delete a node, the nodes below it and their quote links (the quotes stay)."""
    crud.delete_chapter(session, chapter=_get(session, chapter_id), actor=user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/chapters/{chapter_id}/quotes", status_code=status.HTTP_201_CREATED,
             response_model=ChapterQuotePublic)
def link_quote(chapter_id: int, data: ChapterQuoteCreate, session: SessionDep,
               user: Author) -> ChapterQuotePublic:
    """Link a quote to a chapter as candidate, drafted or published (again: new usage)."""
    chapter = _get(session, chapter_id)
    quote_crud.get_quote(session, user=user, quote_id=data.quote_id)
    link = quote_crud.link_quote(session, chapter=chapter, data=data, actor=user)
    public = ChapterQuotePublic.model_validate(link)
    public.chapter_label = crud.chapter_label(chapter)
    return public


@router.delete("/chapters/{chapter_id}/quotes/{quote_id}",
               status_code=status.HTTP_204_NO_CONTENT)
def unlink_quote(chapter_id: int, quote_id: int, session: SessionDep, user: Author) -> Response:
    """Remove a quote from a chapter (the quote stays)."""
    _get(session, chapter_id)
    not_linked = HTTPException(status.HTTP_404_NOT_FOUND,
                               f"Quote {quote_id} is not linked to chapter {chapter_id}.")
    try:
        quote_crud.get_editable_quote(session, user=user, quote_id=quote_id)
    except NotFound:
        raise not_linked from None  # a quote the caller may not see is not there
    if not quote_crud.unlink_quote(session, chapter_id=chapter_id, quote_id=quote_id,
                                   actor=user):
        raise not_linked
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/chapters/{chapter_id}/sources", response_class=PlainTextResponse,
            responses={200: {"content": {"text/markdown": {}}}})
def read_sources(chapter_id: int, session: SessionDep, user: AnyUser) -> PlainTextResponse:
    """A Markdown bibliography of every interview the chapter and its sections quote."""
    text = bibliography.sources_markdown(session, chapter=_get(session, chapter_id), user=user)
    return PlainTextResponse(text, media_type="text/markdown; charset=utf-8")


@router.post("/chapters/{chapter_id}/verify", response_model=verify.VerifyReport,
             openapi_extra=MARKDOWN_BODY,
             responses={413: {"description": "Body over 4 MiB."},
                        415: {"description": "Not Markdown text."}})
def verify_chapter(
    chapter_id: int,
    text: MarkdownBody,
    request: Request,
    session: SessionDep,
    user: Author,
    min_chars: int = Query(quotations.MIN_CHARS, ge=2, le=200,
                           description="Shorter quoted text is a term, not a remark"),
) -> verify.VerifyReport:
    """Find every quotation in the text and say whether a recording backs it."""
    _get(session, chapter_id)
    return verify.verify_text(session, request.app.state.engine, text=text, user=user,
                              min_chars=min_chars, chapter_id=chapter_id)


@router.get("/recordings/{recording_id}/chapters", response_model=Page[ChapterUse])
def recording_chapters(recording_id: int, session: SessionDep,
                       user: AnyUser) -> Page[ChapterUse]:
    """Which chapters depend on this interview."""
    get_recording(session, user, recording_id)
    uses = crud.chapters_using(session, user=user, recording_id=recording_id)
    return Page(data=uses, count=len(uses))


@router.get("/people/{person_id}/chapters", response_model=Page[ChapterUse])
def person_chapters(person_id: int, session: SessionDep, user: AnyUser) -> Page[ChapterUse]:
    """Which chapters depend on this person's words."""
    if session.get(Person, person_id) is None:
        raise not_found("person", person_id)
    uses = crud.chapters_using(session, user=user, person_id=person_id)
    return Page(data=uses, count=len(uses))
