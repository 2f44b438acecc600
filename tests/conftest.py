"""Shared fixtures: an app on a fresh SQLite database and one on PostgreSQL.

API tests take the ``api`` fixture, which is parametrised over both databases.
PostgreSQL is the ``test`` database on 127.0.0.1:5432 (override with
SOURCEBOOK_TEST_POSTGRES_URL); it is migrated once per session and truncated
before each test.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session

from service import auth
from service.app import create_app
from service.config import Settings
from service.db import make_engine, migrate
from service.models.users import Role

os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")

REPO = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get(
    "SOURCEBOOK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
DEFAULT_MODELS_DIR = Path(os.environ.get("SOURCEBOOK_MODELS_DIR", REPO / "models"))
SECRET = "test-secret-key-not-for-production"


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """The shared models directory (SOURCEBOOK_MODELS_DIR or <repo>/models), installed once."""
    from pipelines.models import install_models

    install_models(DEFAULT_MODELS_DIR)  # idempotent: cheap when already installed
    return DEFAULT_MODELS_DIR


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file; each test copies it instead of migrating again."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    settings = Settings(database_url=f"sqlite:///{path}", secret_key=SECRET)
    engine = make_engine(settings)
    migrate(engine, settings)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


_pg_migrated = False


def _truncate_postgres(url: str) -> None:
    global _pg_migrated
    settings = Settings(database_url=url, secret_key=SECRET)
    engine = make_engine(settings)
    try:
        if not _pg_migrated:
            with engine.begin() as conn:
                conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
            migrate(engine, settings)
            _pg_migrated = True
        with engine.begin() as conn:
            tables = [
                t for t in sa.inspect(conn).get_table_names() if t != "alembic_version"
            ]
            conn.exec_driver_sql(
                "TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"
            )
    finally:
        engine.dispose()


def make_settings(tmp_path: Path, database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "database_url": database_url,
        "recordings_dir": tmp_path / "recordings",
        "transcripts_dir": tmp_path / "transcripts",
        "models_dir": DEFAULT_MODELS_DIR,
        "secret_key": SECRET,
        "embedded_workers": 0,
        # In-process job threads share the test's monkeypatches and skip a process
        # start; test_embedded_worker runs the real `serve` default (a child process).
        "embedded_mode": "thread",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> str:
    if request.param == "sqlite":
        path = tmp_path / "sourcebook.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    _truncate_postgres(POSTGRES_URL)
    return POSTGRES_URL


@dataclass
class Api:
    """A running app with a TestClient and one token per role."""

    client: TestClient
    settings: Settings
    tokens: dict[str, str] = field(default_factory=dict)
    user_ids: dict[str, int] = field(default_factory=dict)

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def get(self, url: str, role: str = "admin", **kw: object) -> object:
        return self.client.get(url, headers=self.headers(role), **kw)  # type: ignore[arg-type]

    @property
    def engine(self) -> sa.Engine:
        engine: sa.Engine = self.client.app.state.engine  # type: ignore[attr-defined]
        return engine

    def add_user(self, name: str, role: Role) -> str:
        with Session(self.engine) as session:
            user, token = auth.create_user(
                session, key=self.settings.token_key(), name=name, role=role
            )
            session.commit()
            assert user.id is not None
            self.user_ids[name] = user.id
        return token


@pytest.fixture
def api(tmp_path: Path, database_url: str) -> Iterator[Api]:
    settings = make_settings(tmp_path, database_url)
    app = create_app(settings)
    with TestClient(app) as client:
        result = Api(client=client, settings=settings)
        for role in Role:
            result.tokens[role.value] = result.add_user(role.value, role)
        yield result
