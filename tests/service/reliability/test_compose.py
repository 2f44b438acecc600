"""docker-compose.yml and the Dockerfile describe what test_cluster.py starts by hand.

Docker itself is not available in CI, so this checks the files: the four services, two
worker replicas, health checks, shared volumes, the same commands and settings the
cluster test uses, that every file the image build copies exists, and the `gpu` profile's
CUDA worker (no GPU in CI: its settings are checked, not run).
"""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from pipelines.errors import ModelNotFoundError
from service.cli import app as cli_app
from tests.conftest import REPO


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return data


def test_compose_runs_api_two_workers_postgres_and_redis() -> None:
    services = _compose()["services"]
    assert set(services) == {"api", "worker", "worker-gpu", "postgres", "redis"}
    # Only the gpu profile starts the GPU worker; a plain `up` is the CPU cluster.
    assert services["worker-gpu"]["profiles"] == ["gpu"]
    assert all("profiles" not in s for n, s in services.items() if n != "worker-gpu")
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
    used = {v.split(":")[0] for s in services.values() for v in s.get("volumes", [])
            if not v.startswith(("./", "/"))}  # bind mounts of host folders need no declaring
    assert used <= declared, used - declared


def test_the_gpu_profile_adds_a_cuda_worker_beside_the_cpu_ones() -> None:
    from pipelines.device import DEVICE_CHOICES
    from pipelines.models import resolve_ct2_model
    from service.config import Settings

    services = _compose()["services"]
    gpu, worker = services["worker-gpu"], services["worker"]
    # The same worker as the CPU ones, on the same database, queue and shared volumes.
    assert gpu["command"] == worker["command"]
    assert gpu["healthcheck"]["test"] == worker["healthcheck"]["test"]
    assert gpu["depends_on"] == worker["depends_on"]
    for key, value in worker["environment"].items():
        assert gpu["environment"][key] == value, key
    assert set(worker["volumes"]) < set(gpu["volumes"])
    # One NVIDIA GPU reserved, and the worker told to use it (no silent CPU fallback).
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    env = gpu["environment"]
    assert env["SOURCEBOOK_DEVICE"] == "cuda" and "cuda" in DEVICE_CHOICES
    # Every SOURCEBOOK_ variable it sets is a setting (a typo would be silently ignored).
    fields = {f"SOURCEBOOK_{name.upper()}" for name in Settings.model_fields}
    assert {k for k in env if k.startswith("SOURCEBOOK_")} <= fields
    # large-v3 from a read-only mount of a local models folder, taken as a path.
    model = env["SOURCEBOOK_WHISPER_MODEL"]
    assert "large-v3" in model
    mounts = {v.split(":")[1]: v for v in gpu["volumes"]}
    mount = next(m for m in mounts if model.startswith(m + "/"))
    assert mounts[mount].endswith(":ro") and mounts[mount].startswith("./")
    with pytest.raises(ModelNotFoundError, match="large-v3"):
        resolve_ct2_model(model, REPO / "models")  # a path, not a bundled name
    # Built from the same Dockerfile with a CUDA torch index instead of the CPU one.
    assert gpu["build"]["context"] == "."
    index = gpu["build"]["args"]["TORCH_INDEX_URL"]
    assert re.fullmatch(r"https://download\.pytorch\.org/whl/cu\d+", index)
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in dockerfile
    assert "PIP_EXTRA_INDEX_URL=${TORCH_INDEX_URL}" in dockerfile
    assert gpu["image"] != _compose()["x-sourcebook"]["image"]


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
