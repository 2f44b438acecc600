"""The role table of API.md, one test per role per route group, plus 401 and 404."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select

from service.auth import token_digest
from service.models.users import ApiToken, Role
from tests.factories import make_tone, person_payload, upload

ROLES = [r.value for r in Role]

# group -> (method, path template, json body, roles allowed)
GROUPS: dict[str, tuple[str, str, object, set[str]]] = {
    "me": ("GET", "/api/v1/me", None, set(ROLES)),
    "users": ("GET", "/api/v1/users", None, {"admin"}),
    "people-read": ("GET", "/api/v1/people/{person}", None, set(ROLES)),
    "people-write": ("PATCH", "/api/v1/people/{person}", {"notes": "n"}, {"researcher", "admin"}),
    "recordings-read": ("GET", "/api/v1/recordings/{rec}", None, set(ROLES)),
    "recordings-write": ("PATCH", "/api/v1/recordings/{rec}", {"notes": "n"},
                         {"researcher", "admin"}),
    "recordings-upload": ("POST", "/api/v1/recordings", None, {"researcher", "admin"}),
    "audio": ("GET", "/api/v1/recordings/{rec}/audio", None, set(ROLES)),
    "jobs-read": ("GET", "/api/v1/jobs/{job}", None, {"researcher", "editor", "admin"}),
    "jobs-cancel": ("POST", "/api/v1/jobs/999999/cancel", None, {"researcher", "admin"}),
    "audit": ("GET", "/api/v1/audit/log", None, {"editor", "admin"}),
    # The later areas: each has its own detailed role tests; this keeps the whole table
    # in one place.
    "transcript-read": ("GET", "/api/v1/recordings/{rec}/transcript", None, set(ROLES)),
    "speakers": ("PUT", "/api/v1/recordings/{rec}/speakers", {}, {"researcher", "admin"}),
    "search": ("GET", "/api/v1/search?q=MiniMax", None, set(ROLES)),
    "chapters-read": ("GET", "/api/v1/chapters", None, set(ROLES)),
    "quotes": ("GET", "/api/v1/quotes", None, {"author", "editor", "admin"}),
    "consents": ("GET", "/api/v1/consents", None, {"editor", "admin"}),
    "clearance": ("GET", "/api/v1/clearance", None, {"editor", "admin"}),
}


@pytest.fixture
def objects(api, tmp_path: Path) -> dict[str, int]:
    person = api.client.post("/api/v1/people", json=person_payload(),
                             headers=api.headers("researcher")).json()
    body = upload(api, make_tone(tmp_path / "a.wav")).json()
    return {"person": person["id"], "rec": body["recording"]["id"], "job": body["job"]["id"]}


def _call(api, group: str, objects: dict[str, int], headers: dict[str, str]):
    method, path, body, _ = GROUPS[group]
    return api.client.request(method, path.format(**objects), json=body, headers=headers)


@pytest.mark.parametrize("group", sorted(GROUPS))
@pytest.mark.parametrize("role", ROLES)
def test_role_table(api, objects, group: str, role: str) -> None:
    r = _call(api, group, objects, api.headers(role))
    if role in GROUPS[group][3]:
        assert r.status_code not in (401, 403), (group, role, r.text)
    else:
        assert r.status_code == 403, (group, role, r.text)
        assert role in r.json()["detail"] and "needs one of" in r.json()["detail"]


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_missing_and_bad_tokens_give_401(api, objects, group: str) -> None:
    r = _call(api, group, objects, {})
    assert r.status_code == 401 and "Bearer" in r.json()["detail"]
    assert r.headers["www-authenticate"] == "Bearer"
    r = _call(api, group, objects, {"Authorization": "Bearer sb_not-a-real-token"})
    assert r.status_code == 401 and "Invalid" in r.json()["detail"]


def test_tokens_are_stored_hashed_only(api) -> None:
    with Session(api.engine) as session:
        digests = session.exec(select(ApiToken.digest)).all()
    for token in api.tokens.values():
        assert token not in digests
        assert token_digest(api.settings.token_key(), token) in digests


def test_revoked_token_is_refused(api) -> None:
    with Session(api.engine) as session:
        row = session.exec(select(ApiToken).where(
            ApiToken.digest == token_digest(api.settings.token_key(), api.tokens["author"]))).one()
        row.revoked = True
        session.add(row)
        session.commit()
    assert api.client.get("/api/v1/me", headers=api.headers("author")).status_code == 401


def test_private_recording_is_404_for_others(api, tmp_path: Path) -> None:
    other = api.add_user("researcher-2", Role.researcher)
    body = upload(api, make_tone(tmp_path / "p.wav"), {"title": "Sensitive", "access": "private"})
    rid, jid = body.json()["recording"]["id"], body.json()["job"]["id"]
    hidden = {"Authorization": f"Bearer {other}"}
    for method, path in [("GET", f"/api/v1/recordings/{rid}"),
                         ("PATCH", f"/api/v1/recordings/{rid}"),
                         ("GET", f"/api/v1/recordings/{rid}/audio"),
                         ("POST", f"/api/v1/recordings/{rid}/transcribe"),
                         ("DELETE", f"/api/v1/recordings/{rid}"),
                         ("GET", f"/api/v1/jobs/{jid}"),
                         ("POST", f"/api/v1/jobs/{jid}/cancel")]:
        r = api.client.request(method, path, headers=hidden,
                               json={} if method in ("PATCH", "POST") else None)
        assert r.status_code == 404, (method, path, r.text)
        assert "No " in r.json()["detail"]
    listing = api.client.get("/api/v1/recordings", headers=hidden).json()
    assert listing["count"] == 0
    assert api.client.get(f"/api/v1/recordings/{rid}", headers=api.headers("author")
                          ).status_code == 404
    # The uploader, editors and admins see it.
    for role in ("researcher", "editor", "admin"):
        assert api.client.get(f"/api/v1/recordings/{rid}", headers=api.headers(role)
                              ).status_code == 200


def test_unknown_ids_give_404(api) -> None:
    for path in ("/api/v1/recordings/424242", "/api/v1/people/424242", "/api/v1/jobs/424242"):
        r = api.client.get(path, headers=api.headers("admin"))
        assert r.status_code == 404 and "424242" in r.json()["detail"]


def test_admin_creates_users_and_the_token_works_once_shown(api) -> None:
    r = api.client.post("/api/v1/users", json={"name": "张三", "role": "author"},
                        headers=api.headers("admin"))
    assert r.status_code == 201
    token = r.json()["token"]
    me = api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me == {"id": r.json()["id"], "name": "张三", "role": "author"}
    assert all("token" not in u for u in api.client.get(
        "/api/v1/users", headers=api.headers("admin")).json()["data"])
    dup = api.client.post("/api/v1/users", json={"name": "张三", "role": "author"},
                          headers=api.headers("admin"))
    assert dup.status_code == 409
