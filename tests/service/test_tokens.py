"""Taking access back (issue 13, item 5): revoke, disable, expiry, and web sessions.

Each test performs the attack through the real app on SQLite and PostgreSQL: a token
that should have stopped working is used again and must get 401.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from service import auth
from service.app import create_app
from service.auth import SESSION_COOKIE, csrf_token
from service.models.audit import AuditEvent
from service.models.base import utcnow
from service.models.users import ApiToken, Role, User
from tests.conftest import Api, make_settings


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def me(api: Api, token: str) -> int:
    return api.client.get("/api/v1/me", headers=bearer(token)).status_code


def audited(api: Api, action: str, user_id: int) -> list[str]:
    with Session(api.engine) as session:
        return [e.summary for e in session.exec(select(AuditEvent).where(
            AuditEvent.action == action, AuditEvent.object_type == "user",
            AuditEvent.object_id == str(user_id))).all()]


def test_revoke_ends_every_token_of_the_user_and_only_theirs(api: Api) -> None:
    first = api.add_user("被撤销", Role.researcher)
    uid = api.user_ids["被撤销"]
    second = api.client.post(f"/api/v1/users/{uid}/tokens", json={"label": "laptop"},
                             headers=api.headers("admin"))
    assert second.status_code == 201, second.text
    assert second.json()["label"] == "laptop" and second.json()["name"] == "被撤销"
    second_token = second.json()["token"]
    assert me(api, first) == me(api, second_token) == 200

    # Only an admin may take tokens back.
    r = api.client.post(f"/api/v1/users/{uid}/revoke", headers=api.headers("editor"))
    assert r.status_code == 403
    r = api.client.post(f"/api/v1/users/{uid}/revoke", headers=api.headers("admin"))
    assert r.status_code == 200, r.text
    assert r.json() == {"user_id": uid, "name": "被撤销", "revoked": 2}

    for token in (first, second_token):
        r = api.client.get("/api/v1/me", headers=bearer(token))
        assert r.status_code == 401 and "revoked" in r.json()["detail"]
    assert me(api, api.tokens["researcher"]) == 200  # another user's token still works
    assert audited(api, "revoke", uid) == ["2 token(s) revoked"]

    # A new token issued after the revocation works.
    fresh = api.client.post(f"/api/v1/users/{uid}/tokens", headers=api.headers("admin"))
    assert me(api, fresh.json()["token"]) == 200
    assert api.client.post("/api/v1/users/424242/revoke",
                           headers=api.headers("admin")).status_code == 404


def test_a_disabled_user_gets_401_saying_so_until_enabled(api: Api) -> None:
    token = api.add_user("停用", Role.author)
    uid = api.user_ids["停用"]
    r = api.client.patch(f"/api/v1/users/{uid}", json={"disabled": True},
                         headers=api.headers("admin"))
    assert r.status_code == 200 and r.json()["disabled"] is True
    r = api.client.get("/api/v1/search?q=x", headers=bearer(token))
    assert r.status_code == 401
    assert "disabled" in r.json()["detail"] and "admin" in r.json()["detail"]
    # The web sign-in refuses it the same way.
    api.client.cookies.clear()
    page = api.client.post("/login", data={"token": token}, follow_redirects=False)
    assert page.status_code == 401 and "disabled" in page.text

    r = api.client.patch(f"/api/v1/users/{uid}", json={"disabled": False},
                         headers=api.headers("admin"))
    assert r.status_code == 200 and r.json()["disabled"] is False
    assert me(api, token) == 200
    assert audited(api, "update", uid) == ["disabled", "enabled"]
    assert api.client.patch(f"/api/v1/users/{uid}", json={"disabled": None},
                            headers=api.headers("admin")).status_code == 422
    assert api.client.patch(f"/api/v1/users/{uid}", json={"disabled": True},
                            headers=api.headers("researcher")).status_code == 403


def test_the_last_enabled_admin_cannot_be_disabled_or_demoted(api: Api) -> None:
    admin_id = api.user_ids["admin"]
    for body in ({"disabled": True}, {"role": "editor"}):
        r = api.client.patch(f"/api/v1/users/{admin_id}", json=body,
                             headers=api.headers("admin"))
        assert r.status_code == 409 and "last enabled admin" in r.json()["detail"]
    assert me(api, api.tokens["admin"]) == 200
    api.add_user("second-admin", Role.admin)
    r = api.client.patch(f"/api/v1/users/{admin_id}", json={"role": "editor"},
                         headers=api.headers("admin"))
    assert r.status_code == 200 and r.json()["role"] == "editor"


def test_users_list_shows_state_and_last_use_never_tokens(api: Api) -> None:
    token = api.add_user("从未使用", Role.author)
    rows = {u["name"]: u for u in api.client.get(
        "/api/v1/users", headers=api.headers("admin")).json()["data"]}
    assert rows["从未使用"]["last_used_at"] is None and rows["从未使用"]["disabled"] is False
    assert rows["从未使用"]["active_tokens"] == 1
    assert rows["admin"]["last_used_at"] is not None  # it just made this request
    assert me(api, token) == 200
    row = api.client.get(f"/api/v1/users/{api.user_ids['从未使用']}",
                         headers=api.headers("admin")).json()
    assert row["last_used_at"] is not None
    assert not any("token" in u for u in rows.values())
    # /me keeps its documented shape.
    assert set(api.client.get("/api/v1/me", headers=bearer(token)).json()) == {
        "id", "name", "role"}


def test_the_web_session_is_its_own_token_and_sign_out_leaves_the_api_token(api: Api,
                                                                           ) -> None:
    token_a = api.tokens["author"]
    api.client.cookies.clear()
    r = api.client.post("/login", data={"token": token_a}, follow_redirects=False)
    assert r.status_code == 303
    cookie = api.client.cookies[SESSION_COOKIE]
    assert cookie != token_a and cookie.startswith("sb_")
    with Session(api.engine) as session:
        row = session.exec(select(ApiToken).where(ApiToken.digest == auth.token_digest(
            api.settings.token_key(), cookie))).one()
        assert row.label == auth.WEB_SESSION_LABEL and row.expires_at is not None
        assert row.expires_at - utcnow() <= auth.WEB_SESSION_LIFETIME
        assert row.expires_at - utcnow() > auth.WEB_SESSION_LIFETIME - timedelta(minutes=5)
    page = api.client.get("/recordings")
    assert page.status_code == 200
    csrf = re.search(r'<meta name="csrf" content="([0-9a-f]+)">', page.text)
    assert csrf is not None and csrf.group(1) == csrf_token(api.settings.token_key(), cookie)

    r = api.client.post("/logout", data={"csrf": csrf.group(1)}, follow_redirects=False)
    assert r.status_code == 303
    api.client.cookies.clear()
    # The browser's token is dead everywhere; the API token typed in at sign-in is not.
    assert me(api, cookie) == 401
    api.client.cookies.set(SESSION_COOKIE, cookie)
    assert api.client.get("/recordings", follow_redirects=False).status_code == 303
    api.client.cookies.clear()
    assert me(api, token_a) == 200

    # Signing in again deletes the ended session's row instead of piling them up.
    api.client.post("/login", data={"token": token_a}, follow_redirects=False)
    with Session(api.engine) as session:
        sessions = session.exec(select(ApiToken).where(
            ApiToken.user_id == api.user_ids["author"],
            ApiToken.label == auth.WEB_SESSION_LABEL)).all()
        assert len(sessions) == 1 and not sessions[0].revoked
    api.client.cookies.clear()


def test_signing_out_an_old_cookie_holding_an_api_token_keeps_that_token(api: Api) -> None:
    """Cookies set before sign-ins had their own tokens hold the API token itself."""
    api.client.cookies.clear()
    api.client.cookies.set(SESSION_COOKIE, api.tokens["editor"])
    csrf = csrf_token(api.settings.token_key(), api.tokens["editor"])
    assert api.client.post("/logout", data={"csrf": csrf},
                           follow_redirects=False).status_code == 303
    api.client.cookies.clear()
    assert me(api, api.tokens["editor"]) == 200


def test_a_revoked_user_is_signed_out_of_the_web_too(api: Api) -> None:
    api.client.cookies.clear()
    api.client.post("/login", data={"token": api.tokens["researcher"]},
                    follow_redirects=False)
    assert api.client.get("/recordings", follow_redirects=False).status_code == 200
    api.client.post(f"/api/v1/users/{api.user_ids['researcher']}/revoke",
                    headers=api.headers("admin"))
    r = api.client.get("/recordings", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    api.client.cookies.clear()


def test_reserved_label_and_unknown_user_for_new_tokens(api: Api) -> None:
    uid = api.user_ids["author"]
    r = api.client.post(f"/api/v1/users/{uid}/tokens", json={"label": "web session"},
                        headers=api.headers("admin"))
    assert r.status_code == 422 and "reserved" in r.json()["detail"]
    assert api.client.post("/api/v1/users/424242/tokens",
                           headers=api.headers("admin")).status_code == 404
    assert api.client.post(f"/api/v1/users/{uid}/tokens",
                           headers=api.headers("author")).status_code == 403


@pytest.fixture
def ttl_api(tmp_path: Path, database_url: str) -> Iterator[Api]:
    """An app with SOURCEBOOK_TOKEN_TTL_DAYS=7."""
    settings = make_settings(tmp_path, database_url, token_ttl_days=7)
    with TestClient(create_app(settings)) as client:
        result = Api(client=client, settings=settings)
        result.tokens["admin"] = result.add_user("admin", Role.admin)
        yield result


def _age_tokens(api: Api, name: str, days: int) -> None:
    """Move a user's tokens ``days`` into the past, as if issued then."""
    with Session(api.engine) as session:
        user = session.exec(select(User).where(User.name == name)).one()
        for t in session.exec(select(ApiToken).where(ApiToken.user_id == user.id)).all():
            t.created_at = t.created_at - timedelta(days=days)
            if t.expires_at is not None:
                t.expires_at = t.expires_at - timedelta(days=days)
            session.add(t)
        session.commit()


def test_tokens_expire_after_the_ttl_setting(ttl_api: Api) -> None:
    api = ttl_api
    r = api.client.post("/api/v1/users", json={"name": "临时", "role": "author"},
                        headers=api.headers("admin"))
    token = r.json()["token"]
    assert me(api, token) == 200
    with Session(api.engine) as session:
        row = session.exec(select(ApiToken).where(ApiToken.digest == auth.token_digest(
            api.settings.token_key(), token))).one()
        assert row.expires_at is not None
        assert timedelta(days=6) < row.expires_at - utcnow() <= timedelta(days=7)
    _age_tokens(api, "临时", 8)
    r = api.client.get("/api/v1/me", headers=bearer(token))
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    rows = {u["name"]: u for u in api.client.get(
        "/api/v1/users", headers=api.headers("admin")).json()["data"]}
    assert rows["临时"]["active_tokens"] == 0

    # A token issued before the setting existed (no expires_at) expires by its age too.
    old = api.add_user("旧令牌", Role.author)
    with Session(api.engine) as session:
        assert session.exec(select(ApiToken.expires_at).where(
            ApiToken.user_id == api.user_ids["旧令牌"])).one() is None
    assert me(api, old) == 200
    _age_tokens(api, "旧令牌", 8)
    assert me(api, old) == 401

    # A web sign-in lasts the TTL when that is shorter than the usual 14 days.
    fresh = api.add_user("网页", Role.author)
    api.client.post("/login", data={"token": fresh}, follow_redirects=False)
    cookie = api.client.cookies[SESSION_COOKIE]
    api.client.cookies.clear()
    with Session(api.engine) as session:
        row = session.exec(select(ApiToken).where(ApiToken.digest == auth.token_digest(
            api.settings.token_key(), cookie))).one()
        assert row.expires_at is not None
        assert timedelta(days=6) < row.expires_at - utcnow() <= timedelta(days=7)


def test_without_a_ttl_tokens_do_not_expire(api: Api) -> None:
    _age_tokens(api, "author", 3650)
    assert me(api, api.tokens["author"]) == 200
