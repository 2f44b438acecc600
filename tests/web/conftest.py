"""A real `sourcebook serve` on a free port and one headless Debian Chromium, per module.

The server runs on SQLite with the embedded queue and the bundled models, exactly as
`make run` does; the browser is Debian's /usr/bin/chromium (Playwright never downloads one).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from service import auth
from service.config import Settings
from service.db import make_engine, migrate
from service.models.users import Role
from tests.conftest import DEFAULT_MODELS_DIR, REPO, SECRET
from tests.live_server import free_port, running_serve

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO / "transcripts" / "screenshots"


@dataclass
class Server:
    url: str
    tokens: dict[str, str]
    log: Path

    def api(self, method: str, path: str, role: str = "admin", **kw: Any) -> httpx.Response:
        return httpx.request(method, f"{self.url}/api/v1{path}", timeout=30,
                             headers={"Authorization": f"Bearer {self.tokens[role]}"}, **kw)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("web-e2e")
    settings = Settings(data_dir=root / "data", database_url=f"sqlite:///{root / 'sb.db'}",
                        recordings_dir=root / "rec", transcripts_dir=root / "tr",
                        models_dir=models_dir, secret_key=SECRET)
    engine = make_engine(settings)
    migrate(engine, settings)
    tokens: dict[str, str] = {}
    with Session(engine) as session:
        for role in Role:
            tokens[role.value] = auth.create_user(session, key=settings.token_key(),
                                                  name=f"{role.value}-李", role=role)[1]
        session.commit()
    engine.dispose()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOURCEBOOK_")}
    env |= {"SOURCEBOOK_DATABASE_URL": settings.database_url,
            "SOURCEBOOK_DATA_DIR": str(settings.data_dir),
            "SOURCEBOOK_RECORDINGS_DIR": str(settings.recordings_dir),
            "SOURCEBOOK_TRANSCRIPTS_DIR": str(settings.transcripts_dir),
            "SOURCEBOOK_MODELS_DIR": str(DEFAULT_MODELS_DIR),
            "SOURCEBOOK_SECRET_KEY": SECRET, "SOURCEBOOK_PORT": str(port),
            # English sample audio: tiny.en keeps the real pipeline within the time budget.
            "SOURCEBOOK_WHISPER_MODEL": "tiny.en", "SOURCEBOOK_EMBEDDED_WORKERS": "1",
            "SOURCEBOOK_LOG_LEVEL": "warning", "PYANNOTE_METRICS_ENABLED": "0"}
    with running_serve([sys.executable, "-m", "service.cli", "serve"], cwd=REPO, env=env,
                       log=root / "serve.log") as url:
        yield Server(url=url, tokens=tokens, log=root / "serve.log")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make system-deps installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield b
        finally:
            b.close()
