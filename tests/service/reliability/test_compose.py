"""docker-compose.yml and the Dockerfile describe what test_cluster.py starts by hand.

Docker itself is not available in CI, so this checks the files: the four services, two
worker replicas, health checks, shared volumes, the same commands and settings the
cluster test uses, and that every file the image build copies exists.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

import yaml
from typer.testing import CliRunner

from service.cli import app as cli_app
from tests.conftest import REPO


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return data


def test_compose_runs_api_two_workers_postgres_and_redis() -> None:
    services = _compose()["services"]
    assert set(services) == {"api", "worker", "postgres", "redis"}
    assert services["worker"]["deploy"]["replicas"] == 2
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
    api, worker = services["api"], services["worker"]
    assert api["command"][:2] == ["sourcebook", "serve"]
    assert worker["command"] == ["sourcebook", "worker"]
    assert "/readyz" in " ".join(api["healthcheck"]["test"])
    assert worker["healthcheck"]["test"][1:] == ["sourcebook", "worker", "--check"]
    for service in (api, worker):
        env = service["environment"]
        assert env["SOURCEBOOK_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert "@postgres:5432/" in env["SOURCEBOOK_DATABASE_URL"]
        assert env["SOURCEBOOK_REDIS_URL"].startswith("redis://redis:6379/")
        # Every API and worker container sees the same recordings and transcripts.
        mounts = dict(v.split(":")[::-1] for v in service["volumes"])
        assert mounts[env["SOURCEBOOK_RECORDINGS_DIR"]] == "recordings"
        assert mounts[env["SOURCEBOOK_TRANSCRIPTS_DIR"]] == "transcripts"
        for dep in ("postgres", "redis"):
            assert service["depends_on"][dep]["condition"] == "service_healthy"
    declared = set(_compose()["volumes"])
    used = {v.split(":")[0] for s in services.values() for v in s.get("volumes", [])}
    assert used <= declared, used - declared


def test_compose_commands_exist_in_the_cli() -> None:
    runner = CliRunner()
    for args in (["serve", "--help"], ["worker", "--help"]):
        result = runner.invoke(cli_app, args)
        assert result.exit_code == 0, result.output
    assert "--check" in runner.invoke(cli_app, ["worker", "--help"]).output
    assert "--workers" in runner.invoke(cli_app, ["serve", "--help"]).output


def test_every_file_the_image_copies_exists() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert _compose()["x-sourcebook"]["build"] == "."
    sources = []
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            parts = shlex.split(line)[1:]
            sources += parts[:-1]
    assert sources
    missing = [s for s in sources if not (REPO / s).exists()]
    assert not missing, missing
    # The make target the image runs exists.
    target = re.search(r"RUN make (?:\S+=\S+ )*(\S+)", dockerfile)
    assert target and re.search(rf"^{target.group(1)}:", (REPO / "Makefile").read_text(), re.M)
