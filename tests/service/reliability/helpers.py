"""Real processes for the fault tests: `sourcebook serve`, a private Redis, a TCP proxy.

Everything listens on 127.0.0.1 on ports picked free at start. Nothing here touches the
machine's own services: Redis is a private ``redis-server`` the test owns (never the
one on 6379), and PostgreSQL is only ever cut off through the proxy, never stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from service.config import Settings
from tests.conftest import REPO
from tests.service.test_worker_process import env_for

READY_TIMEOUT_S = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(what: str, check: Callable[[], Any], timeout: float = 120.0,
             interval: float = 0.2) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, httpx.HTTPError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 15) -> None:
    """Stop a process group we started, escalating to SIGKILL."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


class Server:
    """`sourcebook serve` as a subprocess that can be killed and started again."""

    def __init__(self, settings: Settings, log: Path, port: int | None = None,
                 processes: int = 1) -> None:
        self.settings = settings
        self.log = log
        self.processes = processes
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = env_for(self.settings)
        env["SOURCEBOOK_LOG_LEVEL"] = "warning"
        env["SOURCEBOOK_WEB_WORKERS"] = str(self.processes)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--port", str(self.port)],
            cwd=REPO, env=env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(f"sourcebook serve on {self.url}", self._up, timeout=READY_TIMEOUT_S)

    def _up(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"serve exited with {self.proc.returncode}: {self.tail()}")
        return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200

    def kill9(self) -> None:
        """SIGKILL to the whole group: the supervisor and every server process at once."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)

    def pids(self) -> set[int]:
        """The supervisor and its server processes (to tell that none was restarted)."""
        assert self.proc is not None
        found = {self.proc.pid}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                    found.add(int(stat.parent.name))
        return found

    def tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""


class Worker:
    """One `sourcebook worker` process (its own models, its own name host:pid)."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "worker", "--workers", "1"],
            cwd=REPO, env=env_for(settings), stdout=log.open("ab"),
            stderr=subprocess.STDOUT, start_new_session=True,
        )

    @property
    def name(self) -> str:
        return f"{socket.gethostname()}:{self.proc.pid}"

    def wait_ready(self) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited: {self.log.read_text()[-3000:]}")
            return "thread(s) on" in self.log.read_text(errors="replace")
        wait_for(f"worker {self.proc.pid} to start", ready, timeout=READY_TIMEOUT_S)

    def pause(self) -> None:
        os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.killpg(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.resume()
        stop(self.proc)


class PrivateRedis:
    """A ``redis-server`` on a free port that keeps nothing on disk; restarting it loses all."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=(self.workdir / "redis.log").open("ab"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for("private redis", self._ping, timeout=30, interval=0.05)

    def _ping(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")

    def kill(self) -> None:
        """SIGKILL: whatever the queue held is gone, as after a crash of a non-persistent Redis."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)


class TcpProxy:
    """A thread-per-connection TCP relay to ``target``; ``down()`` cuts it off completely.

    Down means what a crashed or unreachable database looks like to a client: every
    open connection is dropped and new ones are refused (the port is closed).
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        self._acceptor = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._acceptor.start()

    def down(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone may not.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by down()
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


def short_clip(source: Path, out: Path, start: float, seconds: float) -> Path:
    """A slice of real speech, re-encoded as 16 kHz mono WAV (distinct bytes per slice)."""
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-ss", f"{start}",
                    "-t", f"{seconds}", "-i", str(source), "-ac", "1", "-ar", "16000",
                    str(out)], check=True)
    return out


def upload_file(client: httpx.Client, path: Path, title: str) -> httpx.Response:
    with path.open("rb") as f:
        return client.post("/api/v1/recordings",
                           files={"file": (path.name, f, "audio/wav")},
                           data={"meta": json.dumps({"title": title, "language": "en",
                                                     "num_speakers": 2})})


def files_under(root: Path) -> list[Path]:
    """Every regular file below ``root`` (temp uploads included), sorted."""
    return sorted(p for p in root.rglob("*") if p.is_file())


def start_slow_upload(port: int, token: str, declared_mb: int, send_mb: int) -> socket.socket:
    """Begin a multipart upload that declares ``declared_mb`` MiB, send ``send_mb``, then stall.

    The socket stays open, so the server is mid-request with a temp file on disk.
    """
    boundary = "sourcebook-kill-test"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"meta\"\r\n\r\n"
            '{"title": "killed mid-upload"}\r\n'
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            'filename="big.wav"\r\nContent-Type: audio/wav\r\n\r\n').encode()
    length = len(head) + declared_mb * (1 << 20) + len(f"\r\n--{boundary}--\r\n")
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall((f"POST /api/v1/recordings HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                  f"Authorization: Bearer {token}\r\n"
                  f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                  f"Content-Length: {length}\r\n\r\n").encode() + head)
    chunk = os.urandom(1 << 20)
    for _ in range(send_mb):
        sock.sendall(chunk)
    return sock
