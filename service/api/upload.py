"""Streaming multipart upload: bytes go straight to a temp file, hashed on the way.

Starlette's own form parser spools the whole file first and only then lets us see
it, so an oversized upload would be written out in full before we could refuse it.
This parser feeds each chunk from the socket into the temp file and the sha256, and
stops as soon as the size limit is crossed.
"""

from __future__ import annotations

import hashlib
import unicodedata
from typing import IO

from fastapi import HTTPException, Request, status
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from service.storage import ReceivedUpload, Storage, StorageFullError, is_disk_full

#: The largest non-file part (the upload's ``meta`` JSON).
MAX_FIELD_BYTES = 64 * 1024
#: Room for multipart headers and the meta part on top of the file's own limit.
ENVELOPE_BYTES = MAX_FIELD_BYTES + 64 * 1024


def _bad(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_400_BAD_REQUEST, detail)


def _over(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail)


def check_filename(raw: bytes) -> str:
    """The uploaded name as metadata; refuse names that could be mistaken for paths."""
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad(
            "The file name is not valid UTF-8. Rename the file and upload it again."
        ) from None
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise _bad(
            "The file name contains control characters (such as NUL). "
            "Rename the file and upload it again."
        )
    if "/" in name or "\\" in name or name in {".", ".."} or len(name) > 255:
        raise _bad(
            "The file name must be a plain name of at most 255 characters, without '/' or "
            f"'\\' or '..' path parts (got {name[:80]!r}). Rename the file and upload again."
        )
    return name


class _Receiver:
    def __init__(self, storage: Storage, file_field: str, max_bytes: int,
                 fields: tuple[str, ...]) -> None:
        self.storage = storage
        self.file_field = file_field
        self.max_bytes = max_bytes
        #: The only other parts accepted; anything else is refused before it is read.
        self.fields = fields
        self.result = ReceivedUpload()
        self._hash = hashlib.sha256()
        self._out: IO[bytes] | None = None
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._part_name: str | None = None
        self._part_is_file = False
        self._field_buf = bytearray()

    # python-multipart callbacks -------------------------------------------------
    def on_part_begin(self) -> None:
        self._headers = {}
        self._part_name = None
        self._part_is_file = False
        self._field_buf = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field = b""
        self._header_value = b""

    def _accepted(self) -> str:
        names = [self.file_field, *self.fields]
        listed = " and ".join(f"'{n}'" for n in names)
        return f"the parts {listed}, once each" if len(names) > 1 else f"the part {listed}"

    def on_headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        self._part_name = name
        if name != self.file_field and name not in self.fields:
            raise _bad(f"Unexpected part {name[:50]!r}: this upload accepts only "
                       f"{self._accepted()}.")
        if name in self.result.fields:
            raise _bad(f"Send exactly one '{name}' part.")
        if name == self.file_field:
            if self.result.tmp_path is not None:
                raise _bad(f"Send exactly one '{self.file_field}' part.")
            self._part_is_file = True
            self.result.filename = check_filename(params.get(b"filename", b"") or b"upload")
            self.result.tmp_path = self.storage.new_temp()
            self._out = self.result.tmp_path.open("wb")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._part_is_file:
            assert self._out is not None
            self.result.size += len(chunk)
            if self.result.size > self.max_bytes:
                raise _over(_too_large(self.max_bytes))
            self._hash.update(chunk)
            self._out.write(chunk)
        else:
            self._field_buf += chunk
            if len(self._field_buf) > MAX_FIELD_BYTES:
                raise _over(
                    f"The '{self._part_name}' part is over {MAX_FIELD_BYTES // 1024} KiB; "
                    "it holds the recording's metadata, not its content.")

    def on_part_end(self) -> None:
        if self._part_is_file:
            assert self._out is not None
            self._out.close()
            self._out = None
            self.result.sha256 = self._hash.hexdigest()
        elif self._part_name is not None:
            self.result.fields[self._part_name] = bytes(self._field_buf)

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None


def _too_large(max_bytes: int) -> str:
    return (
        f"The file is larger than the limit of {max_bytes // (1024 * 1024)} MiB. "
        "Split the recording, compress it (e.g. to 64 kbit/s Opus), or raise "
        "SOURCEBOOK_MAX_UPLOAD_MB."
    )


async def receive_multipart(
    request: Request, *, storage: Storage, max_bytes: int, file_field: str = "file",
    fields: tuple[str, ...] = ("meta",),
) -> ReceivedUpload:
    """Stream a multipart body to disk. On any error nothing is left behind.

    Only ``file_field`` and ``fields`` are accepted, each once; any other part is a 400
    the moment its headers arrive, so no part is held that nobody reads.
    """
    content_type = request.headers.get("content-type", "")
    ctype, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            "Send the upload as multipart/form-data with a 'file' part (the media) and a "
            "'meta' part (JSON), e.g. curl -F file=@interview.m4a -F 'meta={\"title\":\"…\"}'.",
        )
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > max_bytes + ENVELOPE_BYTES:
        # Refuse before reading a byte: the client learns at once, the disk stays empty.
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, _too_large(max_bytes))

    receiver = _Receiver(storage, file_field, max_bytes, fields)
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": receiver.on_part_begin,
            "on_part_data": receiver.on_part_data,
            "on_part_end": receiver.on_part_end,
            "on_header_field": receiver.on_header_field,
            "on_header_value": receiver.on_header_value,
            "on_header_end": receiver.on_header_end,
            "on_headers_finished": receiver.on_headers_finished,
        },
    )
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        receiver.close()
        receiver.result.discard()
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"The multipart body is malformed ({exc}). Let your HTTP client build it, "
            "e.g. curl -F file=@interview.m4a -F meta=@meta.json.",
        ) from None
    except OSError as exc:
        receiver.close()
        receiver.result.discard()
        if is_disk_full(exc):
            raise StorageFullError(exc.errno, "no space left for the upload") from exc
        raise
    except BaseException:
        # Includes the client going away mid-upload (ClientDisconnect) and any parser
        # error: the temp file must not outlive the request.
        receiver.close()
        receiver.result.discard()
        raise
    receiver.close()
    return receiver.result
