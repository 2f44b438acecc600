"""A real `sourcebook serve` in a subprocess, for the tests that drive one from outside."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def running_serve(cmd: list[str], *, cwd: Path, env: dict[str, str], log: Path,
                  ) -> Iterator[str]:
    """Start ``cmd`` (a `sourcebook serve`) on ``env["SOURCEBOOK_PORT"]``, wait until it
    answers /healthz, yield its URL, and stop it afterwards."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{env['SOURCEBOOK_PORT']}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sourcebook serve did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
