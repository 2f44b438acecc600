"""Schemathesis against the live ``/openapi.json``: no 500s, no response that breaks the schema.

Every operation in the served schema is fuzzed once per role, with that role's token, on a
fresh SQLite database seeded with a small book (people, three uploaded recordings with
transcripts, chapters, quotes, consents, restrictions, approvals), so that small ids exist
and most calls get past 404 into the code that does the work.

The same runs on PostgreSQL (``SOURCEBOOK_FUZZ_EXAMPLES_PG`` examples, default 3), whose
types and errors differ (integer ranges, NUL bytes in text, JSON without NaN).

Bounded for CI: ``SOURCEBOOK_FUZZ_EXAMPLES`` examples per operation and role (default 6),
no shrinking, a fixed seed (``SOURCEBOOK_FUZZ_SEED``; set it to ``random`` to explore).
Operations that destroy the seed data run after all the others, so the rest see it intact.
Nothing is excluded: the multipart upload gets a valid ``meta`` half the time so that random
bytes reach ffprobe (415); binary answers (audio, exports, consent documents) are checked
for status and media type only, as their bodies have no JSON schema.

Checks, and why only these:
- ``not_a_server_error``: no 5xx. An unhandled exception in a route reaches the test as
  that exception (the in-process client re-raises it) and is reported the same way.
- ``response_schema_conformance``: a documented JSON body matches its declared schema.
- ``content_type_conformance``: the media type is one the operation documents.
``status_code_conformance`` is left out: 401/403/404/409 are part of the contract in API.md
for every route but are not repeated in each operation's OpenAPI responses, so it would
flag the contract itself rather than a bug.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.python.asgi import ASGIClient
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance
from sqlmodel import Session

from service import auth
from service.app import create_app
from service.models.users import Role
from tests.conftest import POSTGRES_URL, _truncate_postgres, make_settings
from tests.factories import (
    BOOK,
    add_quote,
    create_recording,
    link,
    person,
    small_book,
)

EXAMPLES = int(os.environ.get("SOURCEBOOK_FUZZ_EXAMPLES", "6"))
EXAMPLES_PG = int(os.environ.get("SOURCEBOOK_FUZZ_EXAMPLES_PG", "3"))
SEED = os.environ.get("SOURCEBOOK_FUZZ_SEED", "20250301")
# Invalid inputs too (wrong types, missing fields): they must get a 4xx, never a 5xx.
NEGATIVE = os.environ.get("SOURCEBOOK_FUZZ_NEGATIVE", "1") != "0"
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
# Path ids are drawn from here half the time, so that calls reach seeded rows.
SEEDED_IDS = st.integers(min_value=1, max_value=10)
# Operations that must answer 2xx at least once per role (editors and admins may do more).
MIN_2XX = {"researcher": 20, "author": 20, "editor": 30, "admin": 40}
DESTRUCTIVE = ("DELETE", "/erase", "/withdraw")
# Slices of a book outline and draft (the repository's own, so that runs are the same on
# every machine): random text rarely has headings or quotations.
_BOOK = BOOK.read_text(encoding="utf-8").splitlines()
MARKDOWN = st.builds(lambda a, n: "\n".join(_BOOK[a:a + n]),
                     st.integers(0, len(_BOOK) - 1), st.integers(1, 200))
# Bodies shaped like a client's, drawn for half the examples of these operations, so that
# quote creation, uploads (through ffprobe) and imports get past "invalid input".
REALISTIC: dict[str, st.SearchStrategy[Any]] = {
    "POST /api/v1/quotes": st.one_of(
        st.fixed_dictionaries({"recording_id": st.integers(1, 3),
                               "start": st.floats(0, 40), "end": st.floats(0, 80)}),
        st.fixed_dictionaries({"segment_ids": st.lists(st.integers(1, 9), min_size=1,
                                                       max_size=4)})),
    "POST /api/v1/recordings": st.fixed_dictionaries({
        "file": st.binary(max_size=2000),
        "meta": st.builds(json.dumps, st.fixed_dictionaries(
            {"title": st.text(min_size=1, max_size=40)},
            optional={"participants": st.lists(st.fixed_dictionaries(
                {"person_id": st.integers(1, 5)}), max_size=2),
                "language": st.sampled_from(["zh", "en", "auto"])}))}),
    "POST /api/v1/chapters/import": MARKDOWN,
    "POST /api/v1/chapters/{chapter_id}/verify": MARKDOWN,
}


@dataclass
class Seeded:
    client: TestClient
    app: Any
    tokens: dict[str, str]

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    @property
    def engine(self) -> Any:
        return self.app.state.engine


@pytest.fixture
def seeded(tmp_path: Path, sqlite_template: Path) -> Iterator[Seeded]:
    db = tmp_path / "fuzz.db"
    shutil.copy(sqlite_template, db)
    yield from _seed(tmp_path, f"sqlite:///{db}")


@pytest.fixture
def seeded_pg(tmp_path: Path) -> Iterator[Seeded]:
    _truncate_postgres(POSTGRES_URL)
    yield from _seed(tmp_path, POSTGRES_URL)


def _seed(tmp_path: Path, database_url: str) -> Iterator[Seeded]:
    settings = make_settings(tmp_path, database_url)
    app = create_app(settings)
    with TestClient(app) as client:
        tokens: dict[str, str] = {}
        with Session(app.state.engine) as session:
            for role in Role:
                _, tokens[role.value] = auth.create_user(
                    session, key=settings.token_key(), name=role.value, role=role)
            session.commit()
        world = Seeded(client=client, app=app, tokens=tokens)
        ids = small_book(world, tmp_path)
        # A revision, so the revisions listing has a row to return.
        r = client.patch("/api/v1/segments/1",
                         json={"text": "大厂用两三倍薪资挖人的时候，怎么留人？"},
                         headers=world.headers("researcher"))
        assert r.status_code == 200, r.text
        assert ids["q_yao"] >= 8
        yield world


def _order(operation: Any) -> tuple[bool, str]:
    label = f"{operation.method.upper()} {operation.path}"
    return (any(mark in label for mark in DESTRUCTIVE), label)


def _fuzz_operation(operation: Any, session: ASGIClient, headers: dict[str, str],
                    statuses: Counter[int], examples: int = EXAMPLES) -> None:
    strategy = operation.as_strategy(GenerationMode.POSITIVE, headers=headers)
    if NEGATIVE:
        strategy |= operation.as_strategy(GenerationMode.NEGATIVE, headers=headers)

    @settings(max_examples=examples, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=strategy, data=st.data())
    def run(case: Any, data: st.DataObject) -> None:
        for name, value in list((case.path_parameters or {}).items()):
            if isinstance(value, int) and data.draw(st.booleans()):
                case.path_parameters[name] = data.draw(SEEDED_IDS)
        realistic = REALISTIC.get(operation.label)
        if realistic is not None and data.draw(st.booleans()):
            case.body = data.draw(realistic)
        response = case.call(session=session, headers=headers)
        statuses[response.status_code] += 1
        case.validate_response(response, checks=CHECKS, headers=headers)

    if SEED != "random":
        run = seed(int(SEED))(run)
    run()


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_fuzz_every_operation_as_role(seeded: Seeded, role: str) -> None:
    """Each documented operation, fuzzed with one role's token, stays within its schema."""
    _fuzz_all(seeded, role, EXAMPLES)


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.parametrize("role", [r.value for r in Role])
def test_fuzz_every_operation_as_role_on_postgres(seeded_pg: Seeded, role: str) -> None:
    """The same on PostgreSQL (other types, other errors: out-of-range ints, NUL bytes in
    text, JSON without NaN), with fewer examples per operation to keep CI short."""
    _fuzz_all(seeded_pg, role, EXAMPLES_PG)


def _fuzz_all(seeded: Seeded, role: str, examples: int) -> None:
    spec = seeded.client.get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(spec)
    # Not entered as a context manager: the TestClient above owns the app's lifespan,
    # and entering would start a second one on the same app.
    session = ASGIClient(seeded.app)
    operations = sorted((result.ok() for result in schema.get_all_operations()), key=_order)
    assert len(operations) >= 60, [op.label for op in operations]

    failures: list[str] = []
    seen: dict[str, Counter[int]] = {}
    started = time.perf_counter()
    for operation in operations:
        try:
            seen[operation.label] = Counter()
            _fuzz_operation(operation, session, seeded.headers(role), seen[operation.label],
                            examples)
        # FailureGroup is a BaseExceptionGroup; one report for every operation that fails.
        except (Exception, FailureGroup) as exc:
            notes = "\n".join(getattr(exc, "__notes__", []))
            failures.append(f"--- {operation.label} as {role}\n{exc}\n{notes}"[:4000])
    elapsed = time.perf_counter() - started
    ok = sorted(label for label, counts in seen.items() if any(200 <= c < 300 for c in counts))
    print(f"{role}: {len(operations)} operations x {examples} examples in {elapsed:.1f}s; "
          f"{sum(sum(c.values()) for c in seen.values())} calls; "
          f"{len(ok)} operations answered 2xx at least once")
    for label, counts in seen.items():
        print(f"  {label}: {dict(sorted(counts.items()))}")
    assert not failures, "\n".join(failures)
    # A guard on the seeding: were every id unknown, all of this would only test 404s.
    assert len(ok) >= MIN_2XX[role], ok


# Regression tests for what the fuzzer found, on both databases (the ``api`` fixture).

@pytest.mark.parametrize(("kind", "field"), [
    ("people", "name"), ("people", "alt_names"), ("people", "kind"),
    ("recordings", "title"), ("recordings", "source"), ("recordings", "access"),
    ("chapters", "kind"), ("chapters", "position"),
])
def test_null_for_a_required_field_is_422_and_changes_nothing(
        api: Any, tmp_path: Path, kind: str, field: str) -> None:
    """Update bodies may leave a NOT NULL field out, but a null used to reach the database."""
    role = "author" if kind == "chapters" else "researcher"
    if kind == "people":
        oid = person(api, "闫俊杰", organisation="MiniMax")
    elif kind == "recordings":
        oid = create_recording(api, tmp_path, "罗永浩对谈闫俊杰")
    else:
        r = api.client.post("/api/v1/chapters", headers=api.headers(role), json={
            "kind": "chapter", "number": "第四章", "title": "黄金搭档与第一张蓝图"})
        assert r.status_code == 201, r.text
        oid = r.json()["id"]
    url = f"/api/v1/{kind}/{oid}"
    before = api.client.get(url, headers=api.headers(role)).json()
    r = api.client.patch(url, json={field: None}, headers=api.headers(role))
    assert r.status_code == 422, r.text
    assert f"'{field}' cannot be null" in r.json()["detail"]
    after = api.client.get(url, headers=api.headers(role)).json()
    assert after[field] == before[field] and after["updated_at"] == before["updated_at"]
    # Leaving it out still works, and an explicit null stays allowed where the column is nullable.
    nullable = {"people": "organisation", "recordings": "location", "chapters": "number"}[kind]
    r = api.client.patch(url, json={nullable: None}, headers=api.headers(role))
    assert r.status_code == 200 and r.json()[nullable] is None, r.text


def test_numbers_too_large_for_the_database_are_client_errors(api: Any) -> None:
    """Ids and offsets beyond 64 bits used to be an unhandled OverflowError on SQLite."""
    huge = 2**70
    h = api.headers("admin")
    pid = person(api, "闫俊杰")
    for method, url, body in [
        ("GET", f"/api/v1/people/{huge}", None),
        ("POST", f"/api/v1/recordings/{huge}/transcribe", {}),
        ("GET", f"/api/v1/quotes?person_id={huge}", None),
        ("GET", f"/api/v1/people?offset={huge}", None),
        ("POST", "/api/v1/consents", {"person_id": huge, "status": "granted", "form": "signed",
                                      "attribution": "on_record", "approval_required": False}),
        ("PATCH", f"/api/v1/recordings/{huge}", {"title": "x"}),
    ]:
        r = api.client.request(method, url, json=body, headers=h)
        # SQLite cannot even bind the number (422); PostgreSQL compares it and finds nothing.
        assert r.status_code in (404, 422), (method, url, r.status_code, r.text)
        assert isinstance(r.json()["detail"], str)
    r = api.client.get(f"/api/v1/people/{pid}", headers=h)
    assert r.status_code == 200


def test_documented_422_body_is_the_one_sent(api: Any) -> None:
    """FastAPI documents 422 as ``{detail: [...]}``; every 422 here is ``{"detail": str}``."""
    spec = api.client.get("/openapi.json").json()
    error = spec["components"]["schemas"]["HTTPValidationError"]
    assert error["properties"]["detail"] == {"type": "string", "title": "Detail"}
    assert error["required"] == ["detail"]
    h = api.headers("researcher")
    r = api.client.get("/api/v1/people?limit=0", headers=h)  # request validation
    assert r.status_code == 422 and isinstance(r.json()["detail"], str)
    assert r.json()["errors"][0]["loc"] == ["query", "limit"]
    pid = person(api, "闫俊杰")
    r = api.client.patch(f"/api/v1/people/{pid}", json={"name": ""}, headers=h)
    assert r.status_code == 422 and isinstance(r.json()["detail"], str)
    r = api.client.get("/api/v1/search?q=", headers=h)  # an HTTPException(422) from a route
    assert r.status_code == 422 and isinstance(r.json()["detail"], str)


def test_deleting_a_chapter_with_quote_links_is_clean(api: Any, tmp_path: Path) -> None:
    """The links go before their chapter; otherwise the ORM warns of rows already gone."""
    h = api.headers("author")
    part = api.client.post("/api/v1/chapters", headers=h, json={
        "kind": "part", "number": "第二编", "title": "启航——非共识的创立"}).json()["id"]
    chapter = api.client.post("/api/v1/chapters", headers=h, json={
        "kind": "chapter", "number": "第四章", "title": "黄金搭档与第一张蓝图",
        "parent_id": part}).json()["id"]
    yan = person(api, "闫俊杰")
    rec = create_recording(api, tmp_path, "罗永浩对谈闫俊杰", [(yan, "interviewee")])
    quote = add_quote(api, rec, 0.0, 6.0, person_id=yan, speaker="SPEAKER_00",
                      verbatim="首先钱要到位，但对最优秀的人来说，钱可能排在第二位。")
    link(api, chapter, quote)
    link(api, part, quote)
    with warnings.catch_warnings():
        warnings.simplefilter("error", sa.exc.SAWarning)
        r = api.client.delete(f"/api/v1/chapters/{part}", headers=h)
    assert r.status_code == 204, r.text
    assert api.client.get(f"/api/v1/chapters/{chapter}", headers=h).status_code == 404
    assert api.client.get(f"/api/v1/quotes/{quote}", headers=h).status_code == 200
    with api.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM chapterquote")).scalar_one() == 0


def test_nul_in_text_is_a_client_error_on_postgres(api: Any) -> None:
    """PostgreSQL text cannot hold NUL; the driver's DataError used to be a 500."""
    r = api.client.post("/api/v1/people", json={"name": "闫\x00俊杰"},
                        headers=api.headers("researcher"))
    if api.settings.is_sqlite:
        assert r.status_code == 201, r.text  # SQLite stores it as given
    else:
        assert r.status_code == 422, r.text
        assert "NUL" in r.json()["detail"]
        r = api.client.get("/api/v1/people", headers=api.headers("researcher"))
        assert r.json()["count"] == 0
