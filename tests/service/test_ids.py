"""A deleted object's id is never given to a new one (issue 13, item 12).

On SQLite a plain INTEGER PRIMARY KEY hands out the highest id in use plus one, so
deleting the newest quote and making another reused its id, and the audit log then
named two quotes by one id. Each type the audit log names is created, deleted and
created again, through the API where it has a delete route, on both databases.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from service import auth
from service.models.consent import ConsentAgreement
from service.models.users import ApiToken, Role, User
from tests import factories as f
from tests.factories import make_tone, upload

SRT = ("1\n00:00:00,000 --> 00:00:04,000\n我们很早就决定做长期主义。\n\n"
       "2\n00:00:04,000 --> 00:00:08,000\n第二句话。\n")


def _ok(r: Any) -> Any:
    assert r.status_code in (200, 201, 204), (r.request.url, r.status_code, r.text)
    return r.json() if r.status_code != 204 else None


class Archive:
    """One of each audited object, made through the API; returns their ids."""

    def __init__(self, api: Any, tmp_path: Path) -> None:
        self.api, self.tmp_path, self.n = api, tmp_path, 0

    def make(self) -> dict[str, Any]:
        api, self.n = self.api, self.n + 1
        ids: dict[str, Any] = {"person": f.person(api, f"受访者{self.n}")}
        tone = make_tone(self.tmp_path / f"ids-{self.n}.wav", seconds=8.0, freq=500 + self.n)
        created = _ok(upload(api, tone, {"title": f"访谈 {self.n}", "language": "zh"}))
        rid = ids["recording"] = created["recording"]["id"]
        ids["job"] = created["job"]["id"]
        view = _ok(api.client.post(
            f"/api/v1/recordings/{rid}/transcript", content=SRT.encode(),
            headers=api.headers("researcher") | {"Content-Type": "application/x-subrip"}))
        ids["transcript"] = view["version"], rid
        ids["segment"] = [s["id"] for s in view["segments"]]
        ids["chapter"] = _ok(api.client.post(
            "/api/v1/chapters", json={"kind": "chapter", "title": f"第{self.n}章"},
            headers=api.headers("author")))["id"]
        ids["quote"] = _ok(api.client.post(
            "/api/v1/quotes", json={"recording_id": rid, "start": 0, "end": 4},
            headers=api.headers("author")))["id"]
        ids["restriction"] = _ok(api.client.post(
            f"/api/v1/recordings/{rid}/restrictions",
            json={"start": 4, "end": 6, "level": "off_record"},
            headers=api.headers("editor")))["id"]
        ids["consent"] = f.consent(api, person_id=ids["person"])["id"]
        return ids

    def delete(self, ids: dict[str, Any]) -> None:
        api, rid = self.api, ids["recording"]
        _ok(api.client.delete(f"/api/v1/quotes/{ids['quote']}", headers=api.headers("author")))
        _ok(api.client.delete(f"/api/v1/recordings/{rid}/restrictions/{ids['restriction']}",
                              headers=api.headers("editor")))
        _ok(api.client.delete(f"/api/v1/chapters/{ids['chapter']}",
                              headers=api.headers("author")))
        # Agreements have no delete route (a person's erasure removes them): directly.
        with Session(api.engine) as session:
            session.delete(session.get(ConsentAgreement, ids["consent"]))
            session.commit()
        # The recording takes its job, transcript versions and segments with it.
        _ok(api.client.delete(f"/api/v1/recordings/{rid}", headers=api.headers("researcher")))
        _ok(api.client.delete(f"/api/v1/people/{ids['person']}",
                              headers=api.headers("researcher")))


def _transcript_id(api: Any, rid: int) -> int:
    from service.models.transcripts import Transcript

    with Session(api.engine) as session:
        t = session.exec(select(Transcript).where(Transcript.recording_id == rid)).one()
        assert t.id is not None
        return t.id


def test_deleted_ids_are_never_given_out_again(api: Any, tmp_path: Path) -> None:
    archive = Archive(api, tmp_path)
    first = archive.make()
    first_transcript = _transcript_id(api, first["recording"])
    archive.delete(first)
    second = archive.make()
    for kind in ("person", "recording", "job", "chapter", "quote", "restriction", "consent"):
        assert second[kind] > first[kind], (kind, first[kind], second[kind])
    assert min(second["segment"]) > max(first["segment"])
    assert _transcript_id(api, second["recording"]) > first_transcript

    # What the reuse broke: the old id's audit events are the old quote's alone.
    events = _ok(api.client.get("/api/v1/audit/log", headers=api.headers("editor"), params={
        "object_type": "quote", "object_id": str(first["quote"])}))["data"]
    assert sorted(e["action"] for e in events) == ["create", "delete"]


def test_users_and_tokens_ids_are_never_given_out_again(api: Any) -> None:
    key = api.settings.token_key()

    def newest() -> tuple[int, int]:
        with Session(api.engine) as session:
            user, _ = auth.create_user(session, key=key, name="temp", role=Role.author)
            session.commit()
            token = session.exec(select(ApiToken).where(ApiToken.user_id == user.id)).one()
            assert user.id is not None and token.id is not None
            return user.id, token.id

    user_id, token_id = newest()
    with Session(api.engine) as session:
        session.delete(session.get(User, user_id))  # its tokens go with it
        session.commit()
    again = newest()
    assert again[0] > user_id and again[1] > token_id
