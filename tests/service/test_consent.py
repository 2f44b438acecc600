"""Consent, restrictions, approvals, clearance reports, access reports and erasure.

Every test runs on SQLite and on PostgreSQL (the ``api`` fixture).
"""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select
from typer.testing import CliRunner

from service.cli import app as cli_app
from service.config import get_settings
from service.crud import consent as consent_crud
from service.models.consent import ConsentAgreement
from service.models.people import Person
from service.models.quotes import Quote
from service.models.recordings import Speaker
from service.models.transcripts import Revision, Segment
from tests import factories as f
from tests.factories import add_transcript

AS_OF = "2026-06-01"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(64) + b"\xff\xd9"


def h(api: Any, role: str = "editor") -> dict[str, str]:
    return api.headers(role)


def audit_events(api: Any, **params: Any) -> list[dict[str, Any]]:
    r = api.client.get("/api/v1/audit/log", params=params | {"limit": 1000},
                       headers=h(api, "admin"))
    assert r.status_code == 200, r.text
    events: list[dict[str, Any]] = r.json()["data"]
    return events


def stored_files(api: Any) -> list[str]:
    root = api.settings.recordings_dir
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and ("consents" in p.parts or ".tmp" in p.parts))


# --- roles ----------------------------------------------------------------------------

@pytest.fixture
def objects(api, tmp_path: Path) -> dict[str, int]:
    ids: dict[str, int] = {}
    ids["person"] = f.person(api, "闫俊杰")
    ids["rec"] = f.create_recording(api, tmp_path, "罗永浩对谈闫俊杰",
                                    [(ids["person"], "interviewee")], seconds=6.0)
    add_transcript(api, ids["rec"], [(0.0, 5.0, "SPEAKER_00", f.YAN_TALENT)])
    f.name_speakers(api, ids["rec"], {"SPEAKER_00": ids["person"]})
    ids["chapter"] = f.add_chapter(api, "黄金搭档与第一张蓝图", number="第四章")
    ids["quote"] = f.add_quote(api, ids["rec"], 0.0, 5.0, person_id=ids["person"],
                               speaker="SPEAKER_00", verbatim=f.YAN_TALENT)
    f.link(api, ids["chapter"], ids["quote"])
    ids["consent"] = f.consent(api, person_id=ids["person"])["id"]
    ids["restriction"] = f.restrict_via_api(api, ids["rec"], 1.0, 2.0, "background")["id"]
    return ids


# (name, method, path, kwargs, status for an allowed role, roles allowed). In this order,
# so that an allowed role's calls build on one another (withdraw after patch, erase last).
EDITORS = {"editor", "admin"}
ROUTES: list[tuple[str, str, str, dict[str, Any], int, set[str]]] = [
    ("create consent", "POST", "/api/v1/consents",
     {"json": {"person_id": "{person}", "recording_id": "{rec}", "status": "granted"}},
     201, EDITORS),
    ("list consents", "GET", "/api/v1/consents", {}, 200, EDITORS),
    ("read consent", "GET", "/api/v1/consents/{consent}", {}, 200, EDITORS),
    ("update consent", "PATCH", "/api/v1/consents/{consent}", {"json": {"notes": "n"}}, 200,
     EDITORS),
    ("attach document", "POST", "/api/v1/consents/{consent}/document",
     {"files": {"file": ("release.pdf", PDF, "application/pdf")}}, 200, EDITORS),
    ("read document", "GET", "/api/v1/consents/{consent}/document", {}, 200, EDITORS),
    ("impact", "GET", "/api/v1/consents/{consent}/impact", {}, 200, EDITORS),
    ("withdraw consent", "POST", "/api/v1/consents/{consent}/withdraw",
     {"json": {"reason": "changed their mind"}}, 200, EDITORS),
    ("create restriction", "POST", "/api/v1/recordings/{rec}/restrictions",
     {"json": {"start": 3.0, "end": 4.0, "level": "off_record"}}, 201, EDITORS),
    ("list restrictions", "GET", "/api/v1/recordings/{rec}/restrictions", {}, 200, EDITORS),
    ("delete restriction", "DELETE", "/api/v1/recordings/{rec}/restrictions/{restriction}",
     {}, 204, EDITORS),
    ("record approval", "POST", "/api/v1/quotes/{quote}/approval",
     {"json": {"decision": "requested"}}, 201, EDITORS),
    ("read approval", "GET", "/api/v1/quotes/{quote}/approval", {}, 200, EDITORS),
    ("clearance json", "GET", "/api/v1/clearance", {"params": {"as_of": AS_OF}}, 200, EDITORS),
    ("clearance csv", "GET", "/api/v1/clearance", {"params": {"format": "csv"}}, 200, EDITORS),
    ("clearance md", "GET", "/api/v1/clearance",
     {"params": {"format": "md", "chapter_id": "{chapter}"}}, 200, EDITORS),
    ("person report", "GET", "/api/v1/people/{person}/report", {}, 200, EDITORS),
    ("erase person", "POST", "/api/v1/people/{person}/erase", {}, 200, {"admin"}),
]


def _fill(value: Any, ids: dict[str, int]) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return ids[value[1:-1]]
    return value


def _call(api: Any, route: tuple[Any, ...], ids: dict[str, int],
          headers: dict[str, str]) -> Any:
    _, method, path, kwargs, _, _ = route
    kw = {k: (v if k == "files" else _fill(v, ids)) for k, v in kwargs.items()}
    return api.client.request(method, path.format(**ids), headers=headers, **kw)


@pytest.mark.parametrize("role", ["researcher", "author", "editor", "admin"])
def test_role_table(api, objects: dict[str, int], role: str) -> None:
    """Each role on every consent and clearance route: the success code, or 403."""
    for route in ROUTES:
        name, _, _, _, ok, allowed = route
        r = _call(api, route, objects, h(api, role))
        if role in allowed:
            assert r.status_code == ok, (name, role, r.status_code, r.text)
        else:
            assert r.status_code == 403, (name, role, r.status_code, r.text)
            assert role in r.json()["detail"]


def test_no_token_gives_401_everywhere(api, objects: dict[str, int]) -> None:
    for route in ROUTES:
        r = _call(api, route, objects, {})
        assert r.status_code == 401, (route[0], r.text)


# --- agreements -----------------------------------------------------------------------

def test_consent_create_read_update_and_audit(api, tmp_path: Path) -> None:
    person = f.person(api, "闫俊杰")
    rec = f.create_recording(api, tmp_path, "访谈", [(person, "interviewee")])
    general = f.consent(api, person_id=person, attribution="background",
                        descriptor="MiniMax 创始人", embargo_until="2026-03-01",
                        signed_at="2025-03-01", notes="签于上海")
    assert general["status"] == "granted" and general["recording_id"] is None
    assert general["person_name"] == "闫俊杰" and general["has_document"] is False
    specific = f.consent(api, person_id=person, recording_id=rec, status="pending")
    r = api.client.get(f"/api/v1/consents/{specific['id']}", headers=h(api))
    assert r.json()["recording_id"] == rec and r.json()["status"] == "pending"

    # A second active agreement in the same scope is a conflict, naming the existing one.
    r = api.client.post("/api/v1/consents", json={"person_id": person}, headers=h(api))
    assert r.status_code == 409 and f"#{general['id']}" in r.json()["detail"]
    for body, code in (({"person_id": 999_999}, 422),
                       ({"person_id": person, "recording_id": 999_999}, 422),
                       ({"person_id": person, "status": "withdrawn"}, 422),
                       ({"person_id": person, "attribution": "somewhere"}, 422)):
        r = api.client.post("/api/v1/consents", json=body, headers=h(api))
        assert r.status_code == code, (body, r.text)
        assert r.json()["detail"]

    r = api.client.patch(f"/api/v1/consents/{specific['id']}",
                         json={"status": "granted", "approval_required": True}, headers=h(api))
    assert r.status_code == 200 and r.json()["approval_required"] is True
    r = api.client.patch(f"/api/v1/consents/{specific['id']}", json={"status": "withdrawn"},
                         headers=h(api))
    assert r.status_code == 422 and "withdraw" in r.json()["detail"]

    r = api.client.get("/api/v1/consents", params={"person_id": person, "status": "granted"},
                       headers=h(api))
    assert r.json()["count"] == 2
    r = api.client.get("/api/v1/consents", params={"recording_id": rec}, headers=h(api))
    assert [c["id"] for c in r.json()["data"]] == [specific["id"]]
    assert api.client.get("/api/v1/consents/999999", headers=h(api)).status_code == 404

    events = audit_events(api, object_type="consent")
    assert {(e["action"], e["object_id"]) for e in events} >= {
        ("create", str(general["id"])), ("create", str(specific["id"])),
        ("update", str(specific["id"]))}
    assert all("签于上海" not in e["summary"] for e in events)


@pytest.mark.parametrize(("data", "media_type"),
                         [(PDF, "application/pdf"), (PNG, "image/png"), (JPEG, "image/jpeg")])
def test_document_is_checked_by_content_and_stored_with_sha256(api, data: bytes,
                                                                media_type: str) -> None:
    person = f.person(api, "李明远")
    c = f.consent(api, person_id=person)
    # The name says .txt: only the bytes count.
    r = api.client.post(f"/api/v1/consents/{c['id']}/document", headers=h(api),
                        files={"file": ("scan.txt", data, "text/plain")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["has_document"] is True and body["document_type"] == media_type
    assert body["document_sha256"] == hashlib.sha256(data).hexdigest()
    files = stored_files(api)
    assert len(files) == 1 and files[0].startswith("consents/")
    assert "scan" not in files[0]
    assert (api.settings.recordings_dir / files[0]).read_bytes() == data
    r = api.client.get(f"/api/v1/consents/{c['id']}/document", headers=h(api))
    assert r.status_code == 200 and r.content == data
    assert r.headers["content-type"].startswith(media_type)
    [event] = audit_events(api, object_type="consent", action="attach-document")
    assert hashlib.sha256(data).hexdigest() in event["summary"]


def test_replacing_a_document_deletes_the_old_file(api) -> None:
    c = f.consent(api, person_id=f.person(api, "罗永浩"))
    url = f"/api/v1/consents/{c['id']}/document"
    assert api.client.post(url, headers=h(api), files={"file": ("a.pdf", PDF)}).status_code == 200
    first = stored_files(api)
    assert api.client.post(url, headers=h(api), files={"file": ("b.png", PNG)}).status_code == 200
    second = stored_files(api)
    assert len(second) == 1 and second != first and second[0].endswith(".png")


@pytest.mark.parametrize(("files", "code"), [
    ({"file": ("release.pdf", b"not a pdf at all, just text", "application/pdf")}, 415),
    ({"file": ("release.pdf", b"GIF89a" + bytes(40), "application/pdf")}, 415),
    ({"file": ("release.pdf", b"", "application/pdf")}, 400),
    # Only the part 'file' is accepted (issue 13): anything else is refused unread.
    ({"other": ("release.pdf", PDF, "application/pdf")}, 400),
])
def test_bad_documents_leave_nothing_behind(api, files: dict[str, Any], code: int) -> None:
    c = f.consent(api, person_id=f.person(api, "李明远"))
    r = api.client.post(f"/api/v1/consents/{c['id']}/document", headers=h(api), files=files)
    assert r.status_code == code, r.text
    assert r.json()["detail"]
    assert stored_files(api) == []
    body = api.client.get(f"/api/v1/consents/{c['id']}", headers=h(api)).json()
    assert body["has_document"] is False and body["document_sha256"] is None
    assert audit_events(api, action="attach-document") == []


def test_document_size_cap_gives_413(api, monkeypatch: pytest.MonkeyPatch) -> None:
    c = f.consent(api, person_id=f.person(api, "李明远"))
    url = f"/api/v1/consents/{c['id']}/document"
    # Over the real 20 MiB cap: refused from Content-Length before a byte is stored.
    big = PDF + bytes(consent_crud.MAX_DOCUMENT_BYTES)
    r = api.client.post(url, headers=h(api), files={"file": ("big.pdf", big)})
    assert r.status_code == 413, r.text
    # Under a small cap with the body streamed: refused mid-stream, temp file removed.
    monkeypatch.setattr(consent_crud, "MAX_DOCUMENT_BYTES", 1024)
    r = api.client.post(url, headers=h(api), files={"file": ("big.pdf", PDF + bytes(300_000))})
    assert r.status_code == 413, r.text
    assert stored_files(api) == []


def test_document_needs_multipart_and_an_existing_agreement(api) -> None:
    c = f.consent(api, person_id=f.person(api, "李明远"))
    r = api.client.post(f"/api/v1/consents/{c['id']}/document", headers=h(api), content=PDF)
    assert r.status_code == 415
    r = api.client.post("/api/v1/consents/999999/document", headers=h(api),
                        files={"file": ("a.pdf", PDF)})
    assert r.status_code == 404
    r = api.client.get(f"/api/v1/consents/{c['id']}/document", headers=h(api))
    assert r.status_code == 404 and "no signed release" in r.json()["detail"]


# --- withdrawal -----------------------------------------------------------------------

def test_withdrawal_keeps_the_record_and_lists_what_it_blocks(api, tmp_path: Path) -> None:
    ids = f.small_book(api, tmp_path)
    # Preview before withdrawing: the investor's two quote uses in chapter 4.
    r = api.client.get(f"/api/v1/consents/{ids['c_inv']}/impact", params={"as_of": AS_OF},
                       headers=h(api))
    assert r.status_code == 200
    preview = r.json()
    assert {(row["quote_id"], row["chapter_id"], row["usage"]) for row in preview["data"]} == {
        (ids["q_terms"], ids["ch4"], "drafted"), (ids["q_off"], ids["ch4"], "candidate")}

    r = api.client.post(f"/api/v1/consents/{ids['c_inv']}/withdraw",
                        json={"reason": "投资人要求撤回"}, headers=h(api))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["consent"]["status"] == "withdrawn"
    assert body["consent"]["withdrawal_reason"] == "投资人要求撤回"
    assert body["consent"]["withdrawn_at"]
    assert body["consent"]["attribution"] == "background"  # the terms are kept
    impact = body["impact"]
    assert {(row["quote_id"], row["chapter"], row["usage"]) for row in impact} == {
        (ids["q_terms"], "第四章 黄金搭档与第一张蓝图", "drafted"),
        (ids["q_off"], "第四章 黄金搭档与第一张蓝图", "candidate")}
    assert all(row["status"] == "blocked" and "agreement_withdrawn" in row["reason_codes"]
               for row in impact)

    report = api.client.get("/api/v1/clearance", params={"as_of": AS_OF},
                            headers=h(api)).json()
    terms = next(row for row in report["data"] if row["quote_id"] == ids["q_terms"])
    assert terms["status"] == "blocked"

    r = api.client.post(f"/api/v1/consents/{ids['c_inv']}/withdraw", json={"reason": "again"},
                        headers=h(api))
    assert r.status_code == 409
    r = api.client.patch(f"/api/v1/consents/{ids['c_inv']}", json={"notes": "x"},
                         headers=h(api))
    assert r.status_code == 409
    r = api.client.post(f"/api/v1/consents/{ids['c_yan']}/withdraw", json={"reason": ""},
                        headers=h(api))
    assert r.status_code == 422
    [event] = audit_events(api, action="withdraw")
    assert event["object_id"] == str(ids["c_inv"]) and "投资人" not in event["summary"]
    assert "2 quote use(s) blocked" in event["summary"]


def test_withdrawal_scope_follows_the_applicable_agreement(api, tmp_path: Path) -> None:
    ids = f.small_book(api, tmp_path)
    # 罗永浩's recording-specific agreement covers only his quote on that recording.
    r = api.client.get(f"/api/v1/consents/{ids['c_luo']}/impact", headers=h(api))
    assert [row["quote_id"] for row in r.json()["data"]] == [ids["q_luo"]]
    # A recording-specific agreement for 闫俊杰 takes his quotes on that recording away
    # from the person-wide one: withdrawing the person-wide one then blocks nothing.
    f.consent(api, person_id=ids["yan"], recording_id=ids["r_luo"])
    r = api.client.post(f"/api/v1/consents/{ids['c_yan']}/withdraw",
                        json={"reason": "superseded"}, headers=h(api))
    assert r.status_code == 200 and r.json()["impact"] == []


# --- restrictions ---------------------------------------------------------------------

def test_restrictions_create_list_delete(api, tmp_path: Path) -> None:
    rec = f.create_recording(api, tmp_path, "早期投资人访谈", seconds=120.0, fmt=f.SMALL_WAV)
    url = f"/api/v1/recordings/{rec}/restrictions"
    a = f.restrict_via_api(api, rec, 60.0, 90.0, "off_record", reason="别写这段",
                           imposed_by="李明远")
    b = f.restrict_via_api(api, rec, 10.0, 20.0, "embargo", until="2026-09-01")
    r = api.client.get(url, headers=h(api))
    assert [x["id"] for x in r.json()["data"]] == [b["id"], a["id"]]
    assert r.json()["data"][0]["until"] == "2026-09-01" and r.json()["count"] == 2
    assert a["level"] == "off_record" and a["created_by"] == api.user_ids["editor"]

    for body in ({"start": 5, "end": 5, "level": "background"},
                 {"start": 9, "end": 3, "level": "background"},
                 {"start": -1, "end": 3, "level": "background"},
                 {"start": 1, "end": 3, "level": "embargo"},
                 {"start": 1, "end": 3, "level": "secret"}):
        r = api.client.post(url, json=body, headers=h(api))
        assert r.status_code == 422, (body, r.text)
    r = api.client.post("/api/v1/recordings/999999/restrictions",
                        json={"start": 0, "end": 1, "level": "off_record"}, headers=h(api))
    assert r.status_code == 404

    other = f.create_recording(api, tmp_path, "另一段")
    r = api.client.delete(f"/api/v1/recordings/{other}/restrictions/{a['id']}", headers=h(api))
    assert r.status_code == 404
    r = api.client.delete(f"{url}/{a['id']}", headers=h(api))
    assert r.status_code == 204
    assert [x["id"] for x in api.client.get(url, headers=h(api)).json()["data"]] == [b["id"]]
    events = audit_events(api, object_type="restriction")
    assert [e["action"] for e in events] == ["delete", "create", "create"]
    assert all("别写" not in e["summary"] for e in events)


def test_a_restriction_outside_the_recording_is_refused_naming_its_length(api,
                                                                         tmp_path: Path) -> None:
    rec = f.recording(api, tmp_path, seconds=20.0, title="二十秒的录音")["id"]
    url = f"/api/v1/recordings/{rec}/restrictions"
    for start, end in ((1800, 1920), (15, 21), (20.6, 25)):
        r = api.client.post(url, json={"start": start, "end": end, "level": "off_record"},
                            headers=h(api))
        assert r.status_code == 422, r.text
        assert r.json()["detail"].startswith(
            "This recording is 0:20 long (20.0 s); a restriction must end by then "
            f"(got {start:g}-{end:g} s)"), r.json()["detail"]
    assert api.client.get(url, headers=h(api)).json()["count"] == 0
    # To the end, or a fraction past it (the container's duration can be that far off).
    for start, end in ((15, 20), (19, 20.3)):
        f.restrict_via_api(api, rec, start, end, "off_record")
    assert api.client.get(url, headers=h(api)).json()["count"] == 2


# --- approvals ------------------------------------------------------------------------

def _row(api: Any, quote_id: int, as_of: str = AS_OF) -> dict[str, Any]:
    r = api.client.get("/api/v1/clearance", params={"as_of": as_of}, headers=h(api))
    assert r.status_code == 200, r.text
    row: dict[str, Any] = next(x for x in r.json()["data"] if x["quote_id"] == quote_id)
    return row


def test_approval_lifecycle_drives_clearance(api, tmp_path: Path) -> None:
    ids = f.small_book(api, tmp_path)
    q = ids["q_tradeoff"]
    url = f"/api/v1/quotes/{q}/approval"
    assert _row(api, q)["status"] == "needs_approval"
    r = api.client.post(url, json={"decision": "approved"}, headers=h(api))
    assert r.status_code == 201
    assert r.json()["approved_text"] == f.YAN_TRADEOFF and r.json()["matches_current_text"]
    assert r.json()["decided_by"] == api.user_ids["editor"]
    assert _row(api, q)["status"] == "cleared"

    # The author tightens the wording: the approval no longer covers the text used.
    with Session(api.engine) as session:
        quote = session.get(Quote, q)
        assert quote is not None
        quote.edited = "不能啥都想要。把一小部分事做到最好，已经非常不容易了。"
        session.add(quote)
        session.commit()
    row = _row(api, q)
    assert row["status"] == "needs_approval" and row["reason_codes"] == ["approval_text_changed"]
    history = api.client.get(url, headers=h(api)).json()
    assert history["current"]["matches_current_text"] is False
    assert [a["decision"] for a in history["history"]] == ["requested", "approved"]

    r = api.client.post(url, json={"decision": "approved",
                                   "approved_text": "不能啥都想要。把一小部分事做到最好，"
                                                    "已经非常不容易了。"}, headers=h(api))
    assert r.status_code == 201
    assert _row(api, q)["status"] == "cleared"
    r = api.client.post(url, json={"decision": "rejected"}, headers=h(api))
    assert _row(api, q)["status"] == "blocked"
    r = api.client.post(url, json={"decision": "rejected", "approved_text": "x"},
                        headers=h(api))
    assert r.status_code == 422
    assert api.client.post("/api/v1/quotes/999999/approval", json={"decision": "requested"},
                           headers=h(api)).status_code == 404
    events = audit_events(api, object_type="quote", action="approval")
    assert len(events) == 3 + 3  # three from the book, three here
    assert all("不能" not in e["summary"] for e in events)


# --- clearance reports ----------------------------------------------------------------

EXPECTED = {  # quote -> (status, attribution) as of 2026-06-01
    "q_terms": ("cleared", "一位早期投资人"),
    "q_off": ("blocked", None),
    "q_talent": ("cleared", "闫俊杰"),
    "q_tokens": ("blocked", None),
    "q_yao": ("blocked", None),
    "q_tradeoff": ("needs_approval", "闫俊杰"),
    "q_joy": ("blocked", None),
    "q_luo": ("cleared", "罗永浩"),
}


def test_clearance_json_for_the_small_book(api, tmp_path: Path) -> None:
    ids = f.small_book(api, tmp_path)
    r = api.client.get("/api/v1/clearance", params={"as_of": AS_OF}, headers=h(api))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == 8 and body["as_of"] == AS_OF
    assert body["totals"] == {"cleared": 3, "needs_approval": 1, "blocked": 4}
    got = {row["quote_id"]: (row["status"], row["attribution"]) for row in body["data"]}
    assert got == {ids[k]: v for k, v in EXPECTED.items()}
    # Reading order: chapter 4, 5, then 12.
    assert [row["chapter_id"] for row in body["data"]] == [ids["ch4"]] * 2 + [ids["ch5"]] * 3 \
        + [ids["ch12"]] * 3
    by_quote = {row["quote_id"]: row for row in body["data"]}
    assert by_quote[ids["q_off"]]["reason_codes"] == ["restriction_off_record"]
    assert by_quote[ids["q_off"]]["excerpt"] is None
    assert by_quote[ids["q_tokens"]]["reason_codes"] == ["restriction_embargo",
                                                         "approval_missing"]
    assert by_quote[ids["q_yao"]]["reason_codes"] == ["agreement_pending"]
    assert by_quote[ids["q_joy"]]["reason_codes"] == ["approval_rejected"]
    assert by_quote[ids["q_terms"]]["attribution_level"] == "background"
    assert by_quote[ids["q_talent"]]["excerpt"] == f.YAN_TALENT
    assert all(row["reasons"] for row in body["data"] if row["status"] != "cleared")

    # After the embargo lifts, the tokens quote only awaits approval.
    assert _row(api, ids["q_tokens"], "2026-09-01")["status"] == "needs_approval"
    # A part's report covers its chapters; a chapter's only itself.
    r = api.client.get("/api/v1/clearance", params={"chapter_id": ids["part2"]},
                       headers=h(api))
    assert {row["chapter_id"] for row in r.json()["data"]} == {ids["ch4"], ids["ch5"]}
    r = api.client.get("/api/v1/clearance", params={"chapter_id": ids["ch12"]}, headers=h(api))
    assert r.json()["count"] == 3
    assert api.client.get("/api/v1/clearance", params={"chapter_id": 999999},
                          headers=h(api)).status_code == 404
    for bad in ({"as_of": "June 1"}, {"format": "pdf"}):
        assert api.client.get("/api/v1/clearance", params=bad,
                              headers=h(api)).status_code == 422


def test_clearance_csv_and_markdown_reports(api, tmp_path: Path) -> None:
    ids = f.small_book(api, tmp_path)
    r = api.client.get("/api/v1/clearance", params={"as_of": AS_OF, "format": "csv"},
                       headers=h(api))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "clearance-book-2026-06-01.csv" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 8
    assert {int(x["quote_id"]): (x["status"], x["attribution"] or None) for x in rows} == {
        ids[k]: v for k, v in EXPECTED.items()}
    assert "embargoed until 2026-09-01" in next(
        x for x in rows if int(x["quote_id"]) == ids["q_tokens"])["reasons"]

    r = api.client.get("/api/v1/clearance", params={"as_of": AS_OF, "format": "md"},
                       headers=h(api))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/markdown")
    md = r.text
    assert md.startswith("# Clearance report")
    assert "3 cleared, 1 need approval, 4 blocked" in md
    assert "## Blocked: must not be printed" in md
    for heading in ("## 第四章 黄金搭档与第一张蓝图", "## 第十二章 从科学家到CEO：角色的痛苦迁徙"):
        assert heading in md
    assert "attribute by descriptor only as “一位早期投资人”" in md
    assert f.YAN_TALENT in md
    # Words that may not be printed are not in a report meant to be sent.
    for secret in (f.INVESTOR_OFF, f.YAN_TOKENS, f.YAO_FLYWHEEL, f.YAN_JOY):
        assert secret not in md and secret not in r.text
    events = audit_events(api, action="clearance-report")
    assert [e["summary"].split(":")[0] for e in events] == ["as of 2026-06-01, md",
                                                           "as of 2026-06-01, csv"]
    assert all(e["actor"] == "editor" and f.YAN_TALENT not in e["summary"] for e in events)


def test_cli_audit_gates_publication(api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     request: pytest.FixtureRequest) -> None:
    ids = f.small_book(api, tmp_path)
    for key, value in {"SOURCEBOOK_DATABASE_URL": api.settings.database_url,
                       "SOURCEBOOK_DATA_DIR": str(tmp_path / "cli-data"),
                       "SOURCEBOOK_RECORDINGS_DIR": str(api.settings.recordings_dir),
                       "SOURCEBOOK_TRANSCRIPTS_DIR": str(tmp_path / "cli-transcripts"),
                       "SOURCEBOOK_MODELS_DIR": str(tmp_path / "cli-models")}.items():
        monkeypatch.setenv(key, value)
    # get_settings() is cached per process: read this test's environment, and leave
    # nothing of it behind for the next test.
    get_settings.cache_clear()
    request.addfinalizer(get_settings.cache_clear)
    runner = CliRunner()
    result = runner.invoke(cli_app, ["audit", "--as-of", AS_OF])
    assert result.exit_code == 1, result.output
    assert "3 cleared, 1 need approval, 4 blocked" in result.output
    assert "## Blocked: must not be printed" in result.output

    # Only chapter 4's part, with the off-record quote dropped: nothing blocked.
    with Session(api.engine) as session:
        session.delete(session.get(Quote, ids["q_off"]))
        session.commit()
    out = tmp_path / "report.csv"
    result = runner.invoke(cli_app, ["audit", "--as-of", AS_OF, "--chapter-id",
                                     str(ids["ch4"]), "--format", "csv", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8").count("\n") == 2  # header + one quote use
    result = runner.invoke(cli_app, ["audit", "--as-of", AS_OF, "--chapter-id",
                                     str(ids["ch12"]), "--strict"])
    assert result.exit_code == 1
    assert runner.invoke(cli_app, ["audit", "--as-of", "soon"]).exit_code == 2
    assert runner.invoke(cli_app, ["audit", "--as-of", AS_OF, "--chapter-id",
                                   "999999"]).exit_code == 2
    events = audit_events(api, action="clearance-report")
    assert len(events) == 3 and all(e["actor"] == "system" for e in events)


# --- access report and erasure --------------------------------------------------------

def test_person_report_lists_everything_held(api, tmp_path: Path) -> None:
    ids = f.small_book(api, tmp_path)
    api.client.post(f"/api/v1/consents/{ids['c_yan']}/document", headers=h(api),
                    files={"file": ("release.pdf", PDF)})
    r = api.client.get(f"/api/v1/people/{ids['yan']}/report", headers=h(api))
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["person"]["name"] == "闫俊杰"
    [rec] = report["recordings"]
    assert rec["recording_id"] == ids["r_luo"] and rec["participant_roles"] == ["interviewee"]
    assert rec["speaker_labels"] == ["SPEAKER_01"] and rec["segments"] == 4
    assert rec["segment_texts"] is None
    assert {q["quote_id"] for q in report["quotes"]} == {
        ids["q_talent"], ids["q_tokens"], ids["q_tradeoff"], ids["q_joy"]}
    talent = next(q for q in report["quotes"] if q["quote_id"] == ids["q_talent"])
    assert talent["chapters"] == [{"chapter_id": ids["ch5"],
                                   "chapter": "第五章 路径选择：为何是“模型+产品”双轮驱动？",
                                   "usage": "published"}]
    assert [c["id"] for c in report["consents"]] == [ids["c_yan"]]
    assert report["consents"][0]["has_document"] is True
    assert len(report["approvals"]) == 3
    actions = {(e["object_type"], e["action"]) for e in report["audit_events"]}
    assert {("person", "create"), ("consent", "create"), ("consent", "attach-document"),
            ("quote", "approval")} <= actions

    r = api.client.get(f"/api/v1/people/{ids['yan']}/report",
                       params={"include_segments": True}, headers=h(api))
    texts = [s["text"] for s in r.json()["recordings"][0]["segment_texts"]]
    assert texts == [f.YAN_TALENT, f.YAN_TOKENS, f.YAN_TRADEOFF, f.YAN_JOY]
    assert f.LUO_Q not in r.text  # the interviewer's words are not theirs
    assert api.client.get("/api/v1/people/999999/report", headers=h(api)).status_code == 404
    events = audit_events(api, action="access-report")
    assert len(events) == 2 and all(f.YAN_TALENT not in e["summary"] for e in events)


def _fts_hits(api: Any, phrase: str) -> list[int]:
    """Segment ids the full-text index finds for a phrase, straight from the database."""
    from pipelines.text import cjk_spaced

    query = cjk_spaced(phrase)
    with api.engine.connect() as conn:
        if api.engine.dialect.name == "sqlite":
            rows = conn.execute(sa.text("SELECT rowid FROM segment_fts WHERE segment_fts "
                                        "MATCH :q"), {"q": f'"{query}"'}).scalars().all()
        else:
            rows = conn.execute(sa.text(
                "SELECT id FROM segment WHERE to_tsvector('simple', search_text) @@ "
                "phraseto_tsquery('simple', :q)"), {"q": query}).scalars().all()
    return sorted(rows)


def test_erasure_removes_the_person_everywhere(api, tmp_path: Path) -> None:
    ids = f.small_book(api, tmp_path)
    rec = ids["r_luo"]
    # A second transcript version, a correction with a revision, voiceprints, a release.
    add_transcript(api, rec, [(0.0, 6.0, "SPEAKER_00", f.LUO_Q),
                              (6.0, 14.0, "SPEAKER_01", f.YAN_TALENT + "。")])
    with Session(api.engine) as session:
        seg = session.exec(select(Segment).where(Segment.recording_id == rec,
                                                 Segment.speaker == "SPEAKER_01")).first()
        assert seg is not None and seg.id is not None
        session.add(Revision(segment_id=seg.id, before_text="旧的说法", after_text=seg.text,
                             before_speaker="SPEAKER_01", after_speaker="SPEAKER_01"))
        person = session.get(Person, ids["yan"])
        assert person is not None
        person.voiceprint = {"samples": [{"source": f"recording {rec} SPEAKER_01",
                                          "model": "m", "embedding": [0.1] * 8}]}
        person.biometric_consent = True
        session.add(person)
        speaker = session.exec(select(Speaker).where(Speaker.recording_id == rec,
                                                     Speaker.label == "SPEAKER_01")).one()
        speaker.embedding = [0.2] * 8
        session.add(speaker)
        session.commit()
    api.client.post(f"/api/v1/consents/{ids['c_yan']}/document", headers=h(api),
                    files={"file": ("release.pdf", PDF)})
    assert len(stored_files(api)) == 1
    assert _fts_hits(api, "最优秀的人") and _fts_hits(api, "两三倍薪资")

    r = api.client.post(f"/api/v1/people/{ids['yan']}/erase", headers=h(api, "admin"))
    assert r.status_code == 200, r.text
    summary = r.json()
    assert summary == {"person_id": ids["yan"], "segments_redacted": 5,
                       "transcript_versions": 2, "revisions_deleted": 1, "quotes_deleted": 4,
                       "documents_removed": 1, "voiceprint_removed": True,
                       "speaker_embeddings_removed": 1, "consents_closed": 1,
                       "suggestions_removed": 0}

    # The erased words are gone from the index on this database; others' words stay.
    for phrase in ("最优秀的人", "Token消耗", "不能啥都想要", "一起合作"):
        assert _fts_hits(api, phrase) == [], phrase
    assert _fts_hits(api, "两三倍薪资")
    with Session(api.engine) as session:
        segs = session.exec(select(Segment).where(Segment.recording_id == rec,
                                                  Segment.speaker == "SPEAKER_01")).all()
        assert len(segs) == 5
        assert all(s.text == "[erased]" and s.words == [] and s.search_text == "" for s in segs)
        assert session.exec(select(Revision)).all() == []
        assert session.exec(select(Quote).where(Quote.person_id == ids["yan"])).all() == []
        assert session.get(Quote, ids["q_luo"]) is not None
        person = session.get(Person, ids["yan"])
        assert person is not None and person.voiceprint is None
        assert person.biometric_consent is False and "闫俊杰" not in person.name
        agreement = session.get(ConsentAgreement, ids["c_yan"])
        assert agreement is not None and agreement.status == "withdrawn"
        assert agreement.document_path is None
        assert session.exec(select(Speaker).where(Speaker.recording_id == rec,
                                                  Speaker.label == "SPEAKER_01")
                            ).one().embedding is None
    assert stored_files(api) == []
    # The transcript read shows the redaction in every version.
    for version in (1, 2):
        body = api.client.get(f"/api/v1/recordings/{rec}/transcript",
                              params={"version": version}, headers=h(api)).json()
        assert f.YAN_TALENT not in str(body) and "[erased]" in str(body)
    # Clearance no longer lists the erased quotes; the access report holds nothing of them.
    report = api.client.get("/api/v1/clearance", headers=h(api)).json()
    assert {row["quote_id"] for row in report["data"]}.isdisjoint(
        {ids["q_talent"], ids["q_tokens"], ids["q_tradeoff"], ids["q_joy"]})
    r = api.client.get(f"/api/v1/people/{ids['yan']}/report",
                       params={"include_segments": True}, headers=h(api))
    assert f.YAN_TALENT not in r.text and r.json()["quotes"] == []
    assert "闫俊杰" not in r.json()["person"]["name"]  # (recording titles are not erased)
    # One audit event, without content; earlier events are untouched.
    [event] = audit_events(api, action="erase")
    assert event["object_type"] == "person" and event["object_id"] == str(ids["yan"])
    assert "闫俊杰" not in event["summary"] and "最优秀" not in event["summary"]
    assert audit_events(api, object_type="consent", action="create")
    assert api.client.post("/api/v1/people/999999/erase",
                           headers=h(api, "admin")).status_code == 404


def test_erased_words_are_not_found_by_the_search_api(api, tmp_path: Path) -> None:
    """Through GET /search (built in the search issue): before erasure found, after not."""
    ids = f.small_book(api, tmp_path)
    r = api.client.get("/api/v1/search", params={"q": "最优秀的人"}, headers=h(api))
    assert r.status_code == 200, r.text
    assert r.json()["count"] >= 1
    api.client.post(f"/api/v1/people/{ids['yan']}/erase", headers=h(api, "admin"))
    for q in ("最优秀的人", "Token消耗", "不能啥都想要"):
        r = api.client.get("/api/v1/search", params={"q": q}, headers=h(api, "admin"))
        assert r.status_code == 200 and r.json() == {"data": [], "count": 0, "count_exact": True,
                                                "ranked_within": None, "expanded": []}, (q, r.text)
    r = api.client.get("/api/v1/search", params={"q": "两三倍薪资"}, headers=h(api))
    assert r.json()["count"] == 1
