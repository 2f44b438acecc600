"""Bounded request bodies (issue 13, item 4), attacked through the real app.

The attacks: a 208 MB JSON person was stored (and every ``GET /people`` then returned
256 MB), and 1 200 multipart fields of 250 KB each were held in memory by the upload.
Some tests drive the app's ASGI interface with a body that is produced chunk by chunk,
to count how much of it the server pulled before it answered.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, func, select

from service.api.limits import IMPORT_ROUTES, UPLOAD_ROUTES
from service.api.upload import MAX_FIELD_BYTES
from service.models.people import Person
from service.models.recordings import Recording, RecordingMeta
from tests.conftest import Api
from tests.factories import make_tone, person, person_payload, upload

CHUNK = 64 * 1024


class Streamed:
    """The result of one request whose body the server pulled chunk by chunk."""

    def __init__(self, status: int, body: bytes, pulled: int) -> None:
        self.status = status
        self.body = body
        self.pulled = pulled

    def json(self) -> Any:
        return json.loads(self.body)


def stream(api: Api, method: str, path: str, headers: dict[str, str],
           chunks: Iterator[bytes]) -> Streamed:
    """Send ``chunks`` as a chunked body (no Content-Length) straight into the app."""
    pulled = 0
    status = 0
    body = bytearray()

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        pulled += 1
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 50000),
             "server": ("testserver", 80),
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    asyncio.run(api.client.app(scope, receive, send))  # type: ignore[arg-type]
    return Streamed(status, bytes(body), pulled)


def people(api: Api) -> int:
    with Session(api.engine) as session:
        return session.exec(select(func.count()).select_from(Person)).one()


def recordings(api: Api) -> int:
    with Session(api.engine) as session:
        return session.exec(select(func.count()).select_from(Recording)).one()


# ----------------------------------------------------------------------------- JSON

def test_an_oversized_json_person_gets_413_and_nothing_is_stored(api: Api) -> None:
    huge = person_payload("巨人", alt_names=["名" * 100] * 8000)  # ~2.4 MB of JSON
    r = api.client.post("/api/v1/people", json=huge, headers=api.headers("researcher"))
    assert r.status_code == 413, r.text[:300]
    assert "1024 KiB" in r.json()["detail"] and "SOURCEBOOK_MAX_JSON_KB" in r.json()["detail"]
    assert people(api) == 0

    pid = api.client.post("/api/v1/people", json=person_payload(),
                          headers=api.headers("researcher")).json()["id"]
    r = api.client.patch(f"/api/v1/people/{pid}", json={"notes": "x" * (2 << 20)},
                         headers=api.headers("researcher"))
    assert r.status_code == 413
    assert api.client.get(f"/api/v1/people/{pid}",
                          headers=api.headers("researcher")).json()["notes"] is None


def test_a_chunked_json_body_is_cut_off_at_the_limit(api: Api) -> None:
    """No Content-Length to go by: the server stops pulling once the limit is crossed."""
    head = json.dumps(person_payload("流式"))[:-1].encode() + b', "alt_names": ["'

    def body() -> Iterator[bytes]:
        yield head
        for _ in range(200):  # 12.5 MiB if it were all read
            yield b"a" * CHUNK
        yield b'"]}'

    r = stream(api, "POST", "/api/v1/people",
               api.headers("researcher") | {"Content-Type": "application/json"}, body())
    assert r.status == 413 and "SOURCEBOOK_MAX_JSON_KB" in r.json()["detail"]
    assert r.pulled <= 1024 * 1024 // CHUNK + 2
    assert people(api) == 0


def test_list_fields_are_bounded_too(api: Api) -> None:
    """Under the byte limit, a list still cannot grow without bound."""
    r = api.client.post("/api/v1/people", json=person_payload(alt_names=["x"] * 51),
                        headers=api.headers("researcher"))
    assert r.status_code == 422 and "alt_names" in r.json()["detail"]
    r = api.client.post("/api/v1/people", json=person_payload(alt_names=["Yan Junjie"] * 3),
                        headers=api.headers("researcher"))
    assert r.status_code == 201


def test_imports_have_their_own_larger_limit(api: Api, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A transcript or manuscript over the JSON limit is still accepted (up to
    SOURCEBOOK_MAX_IMPORT_MB); made visible here with a tiny JSON limit."""
    monkeypatch.setattr(api.settings, "max_json_kb", 1)
    rid = upload(api, make_tone(tmp_path / "a.wav")).json()["recording"]["id"]
    cues = "".join(f"{i}\n00:00:{i:02d},000 --> 00:00:{i:02d},900\n第{i}句话，长期主义。\n\n"
                   for i in range(1, 60))
    assert len(cues.encode()) > 2048
    r = api.client.post(f"/api/v1/recordings/{rid}/transcript", content=cues.encode(),
                        headers=api.headers("researcher") | {"Content-Type": "text/srt"})
    assert r.status_code == 201, r.text
    chapter = api.client.post("/api/v1/chapters", json={"title": "第七章"},
                              headers=api.headers("author")).json()["id"]
    manuscript = "他说：“我们很早就决定做 MoE 架构。”\n\n" + "正文。" * 1000
    r = api.client.post(f"/api/v1/chapters/{chapter}/verify", content=manuscript.encode(),
                        headers=api.headers("author") | {"Content-Type": "text/markdown"})
    assert r.status_code == 200, r.text
    r = api.client.post("/api/v1/people", json=person_payload(notes="n" * 2000),
                        headers=api.headers("researcher"))
    assert r.status_code == 413 and "1 KiB" in r.json()["detail"]

    monkeypatch.setattr(api.settings, "max_import_mb", 1)
    big = ("正文。" * 120_000).encode()  # 1.08 MiB
    r = api.client.post(f"/api/v1/chapters/{chapter}/verify", content=big,
                        headers=api.headers("author") | {"Content-Type": "text/markdown"})
    assert r.status_code == 413 and "SOURCEBOOK_MAX_IMPORT_MB" in r.json()["detail"]


def test_the_sign_in_form_is_bounded(api: Api) -> None:
    api.client.cookies.clear()
    r = api.client.post("/login", data={"token": "sb_" + "x" * (2 << 20)},
                        follow_redirects=False)
    assert r.status_code == 413


# ----------------------------------------------------------------------------- multipart

BOUNDARY = "sourcebook-test-boundary"


def part(name: str, data: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return (f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data
            + b"\r\n")


def multipart_headers(api: Api, role: str = "researcher") -> dict[str, str]:
    return api.headers(role) | {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def test_many_extra_fields_are_refused_without_holding_them(api: Api, tmp_path: Path) -> None:
    """1 200 fields of 250 KB (300 MB): refused at the first unexpected part."""
    media = make_tone(tmp_path / "a.wav").read_bytes()

    def body() -> Iterator[bytes]:
        yield part("meta", json.dumps({"title": "many fields"}).encode())
        field = b"v" * (250 * 1024)
        for i in range(1200):
            data = part(f"x{i}", field)
            for at in range(0, len(data), CHUNK):
                yield data[at:at + CHUNK]
        yield part("file", media, "a.wav") + f"--{BOUNDARY}--\r\n".encode()

    r = stream(api, "POST", "/api/v1/recordings", multipart_headers(api), body())
    assert r.status == 400, r.body[:300]
    assert "'x0'" in r.json()["detail"] and "'file' and 'meta'" in r.json()["detail"]
    assert r.pulled <= 3
    assert recordings(api) == 0


def test_upload_parts_other_than_file_and_meta_are_refused(api: Api, tmp_path: Path) -> None:
    wav = make_tone(tmp_path / "a.wav")
    with wav.open("rb") as f:
        r = api.client.post("/api/v1/recordings", headers=api.headers("researcher"),
                            files={"file": ("a.wav", f, "audio/wav")},
                            data={"meta": json.dumps({"title": "t"}), "notes": "hello"})
    assert r.status_code == 400
    assert "Unexpected part 'notes'" in r.json()["detail"]
    assert "'file' and 'meta'" in r.json()["detail"]
    # Twice the same part is refused as well.
    body = (part("meta", b'{"title": "a"}') + part("meta", b'{"title": "b"}')
            + part("file", wav.read_bytes(), "a.wav") + f"--{BOUNDARY}--\r\n".encode())
    r = api.client.post("/api/v1/recordings", content=body, headers=multipart_headers(api))
    assert r.status_code == 400 and "exactly one 'meta'" in r.json()["detail"]
    assert recordings(api) == 0
    assert not list((api.settings.recordings_dir).rglob("*.part"))


def test_an_oversized_meta_part_gets_413(api: Api, tmp_path: Path) -> None:
    wav = make_tone(tmp_path / "a.wav")
    meta = json.dumps({"title": "t", "notes": "n" * MAX_FIELD_BYTES}).encode()
    body = (part("meta", meta) + part("file", wav.read_bytes(), "a.wav")
            + f"--{BOUNDARY}--\r\n".encode())
    r = api.client.post("/api/v1/recordings", content=body, headers=multipart_headers(api))
    assert r.status_code == 413 and "'meta' part is over 64 KiB" in r.json()["detail"]
    assert recordings(api) == 0
    # A normal upload right after works.
    assert upload(api, wav).status_code == 201


def test_a_huge_part_header_is_refused(api: Api) -> None:
    """python-multipart bounds part headers itself (4 KiB a line, 8 a part); this pins
    that, since the upload parser buffers headers (it passed before issue 13 too)."""
    header = b'Content-Disposition: form-data; name="meta"; x="' + b"h" * (1 << 20) + b'"'

    def body() -> Iterator[bytes]:
        data = f"--{BOUNDARY}\r\n".encode() + header + b"\r\n\r\n{}\r\n"
        for at in range(0, len(data), CHUNK):
            yield data[at:at + CHUNK]

    r = stream(api, "POST", "/api/v1/recordings", multipart_headers(api), body())
    assert r.status == 400 and "header" in r.json()["detail"]
    assert r.pulled <= 2


def test_the_consent_document_accepts_only_its_file(api: Api) -> None:
    signer = person(api, "签署人")
    consent = api.client.post("/api/v1/consents", headers=api.headers("editor"), json={
        "person_id": signer, "status": "granted", "form": "signed",
        "attribution": "on_record", "approval_required": False}).json()["id"]

    def body() -> Iterator[bytes]:
        for i in range(1200):
            yield part(f"x{i}", b"v" * (250 * 1024))
        yield part("file", b"%PDF-1.4\n%%EOF\n", "r.pdf") + f"--{BOUNDARY}--\r\n".encode()

    r = stream(api, "POST", f"/api/v1/consents/{consent}/document",
               multipart_headers(api, "editor"), body())
    assert r.status == 400 and "only the part 'file'." in r.json()["detail"]
    assert r.pulled <= 2


# ----------------------------------------------------------------------------- schemas

def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        if "$ref" in node:
            found.add(node["$ref"].rsplit("/", 1)[-1])
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def _unbounded(schema: dict[str, Any], where: str, out: list[str]) -> None:
    for key in ("anyOf", "oneOf", "allOf"):
        for alt in schema.get(key, []):
            _unbounded(alt, where, out)
    kind = schema.get("type")
    if kind == "array":
        if "maxItems" not in schema:
            out.append(f"{where}: array without maxItems")
        _unbounded(schema.get("items", {}), f"{where}[]", out)
    elif kind == "string":
        if ("maxLength" not in schema and "enum" not in schema and "const" not in schema
                and schema.get("format") not in ("date", "date-time", "binary")):
            out.append(f"{where}: string without maxLength")
    elif kind == "object":
        for name, prop in schema.get("properties", {}).items():
            _unbounded(prop, f"{where}.{name}", out)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            if "maxProperties" not in schema:
                out.append(f"{where}: object without maxProperties")
            if "maxLength" not in schema.get("propertyNames", {}):
                out.append(f"{where}: object keys without maxLength")
            _unbounded(extra, f"{where}{{}}", out)


def test_every_request_schema_bounds_its_lists_and_strings(api: Api) -> None:
    """A new unbounded field in any request body fails here."""
    spec = api.client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    problems: list[str] = []
    names: set[str] = set()
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            body = op.get("requestBody")
            if not body:
                continue
            _refs(body, names)
            for ctype, content in body.get("content", {}).items():
                inline = content.get("schema", {})
                if ctype == "application/json" and "$ref" not in inline and (
                        inline.get("type") != "object" or inline.get("additionalProperties")):
                    _unbounded(inline, f"{method.upper()} {path}", problems)
    todo = list(names)
    while todo:  # schemas reached from other schemas (participants, ...)
        found: set[str] = set()
        _refs(schemas[todo.pop()], found)
        todo += [n for n in found - names]
        names |= found
    for name in sorted(names):
        _unbounded(schemas[name], name, problems)
    # The upload's meta part is JSON too, validated by RecordingMeta.
    meta = RecordingMeta.model_json_schema()
    for name, sub in meta.get("$defs", {}).items():
        _unbounded(sub, name, problems)
    _unbounded(meta, "RecordingMeta", problems)
    assert problems == []
    assert {"PersonCreate", "PersonUpdate", "ChapterCreate", "JobOptions",
            "QuoteCreate"} <= names


def test_the_limit_routes_name_real_routes(api: Api) -> None:
    """The body limits pick routes by path: each pattern must match an actual route."""
    spec = api.client.get("/openapi.json").json()
    paths = [re.sub(r"\{[^}]+\}", "1", path)
             for path, operations in spec["paths"].items() if "post" in operations]
    for pattern in (*UPLOAD_ROUTES, *IMPORT_ROUTES):
        assert any(pattern.match(p) for p in paths), pattern.pattern
