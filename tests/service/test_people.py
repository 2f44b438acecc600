"""People CRUD, on both databases."""

from __future__ import annotations

from tests.factories import person_payload


def test_people_crud_and_audit(api) -> None:
    h = api.headers("researcher")
    r = api.client.post("/api/v1/people", json=person_payload(
        "闫俊杰", alt_names=["Yan Junjie", "閆俊傑"], notes="founder and CEO"), headers=h)
    assert r.status_code == 201
    pid = r.json()["id"]
    assert r.json()["alt_names"] == ["Yan Junjie", "閆俊傑"]
    assert r.json()["has_voiceprint"] is False
    api.client.post("/api/v1/people", json=person_payload("李广密", kind="investor",
                                                         organisation="拾象"), headers=h)
    lst = api.client.get("/api/v1/people?limit=1", headers=api.headers("author")).json()
    assert lst["count"] == 2 and len(lst["data"]) == 1
    assert api.client.get("/api/v1/people?q=拾象", headers=h).json()["data"][0]["name"] == "李广密"
    r = api.client.patch(f"/api/v1/people/{pid}", json={"organisation": "MiniMax 稀宇科技"},
                         headers=h)
    assert r.status_code == 200 and r.json()["organisation"] == "MiniMax 稀宇科技"
    assert r.json()["name"] == "闫俊杰"
    assert api.client.delete(f"/api/v1/people/{pid}", headers=h).status_code == 204
    assert api.client.get(f"/api/v1/people/{pid}", headers=h).status_code == 404
    log = api.client.get(f"/api/v1/audit/log?object_type=person&object_id={pid}",
                         headers=api.headers("admin")).json()["data"]
    assert [e["action"] for e in log] == ["delete", "update", "create"]
    assert log[1]["summary"] == "fields: organisation"


def test_people_validation(api) -> None:
    h = api.headers("researcher")
    r = api.client.post("/api/v1/people", json={"name": ""}, headers=h)
    assert r.status_code == 422 and "name" in r.json()["detail"]
    r = api.client.post("/api/v1/people", json={"name": "x", "kind": "celebrity"}, headers=h)
    assert r.status_code == 422 and "kind" in r.json()["detail"]
    r = api.client.patch("/api/v1/people/999", json={"notes": "x"}, headers=h)
    assert r.status_code == 404


def test_audit_log_is_append_only(api) -> None:
    import pytest
    import sqlalchemy as sa

    api.client.post("/api/v1/people", json=person_payload(), headers=api.headers("researcher"))
    with api.engine.connect() as conn:
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            conn.execute(sa.text("UPDATE auditevent SET summary = 'forged'"))
        conn.rollback()
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            conn.execute(sa.text("DELETE FROM auditevent"))
