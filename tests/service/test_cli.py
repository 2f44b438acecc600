"""The `sourcebook` command line, run as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import DEFAULT_MODELS_DIR, REPO


def run_cli(tmp_path: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOURCEBOOK_")}
    env |= {
        "SOURCEBOOK_DATA_DIR": str(tmp_path / "data"),
        "SOURCEBOOK_RECORDINGS_DIR": str(tmp_path / "recordings"),
        "SOURCEBOOK_TRANSCRIPTS_DIR": str(tmp_path / "transcripts"),
        "SOURCEBOOK_MODELS_DIR": str(DEFAULT_MODELS_DIR),
        "PYANNOTE_METRICS_ENABLED": "0",
    }
    return subprocess.run([sys.executable, "-m", "service.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, check=check, timeout=900)


def test_users_create_prints_the_token_last_and_it_works(tmp_path: Path) -> None:
    assert "at the latest schema" in run_cli(tmp_path, "migrate").stdout
    out = run_cli(tmp_path, "users", "create", "李研", "--role", "researcher")
    token = out.stdout.strip().splitlines()[-1]
    assert token.startswith("sb_") and len(token) > 40
    assert token not in (tmp_path / "data" / "sourcebook.db").read_bytes().decode("latin-1")
    listed = run_cli(tmp_path, "users", "list").stdout
    assert "李研\tresearcher" in listed
    dup = run_cli(tmp_path, "users", "create", "李研", "--role", "author", check=False)
    assert dup.returncode != 0 and "already exists" in dup.stderr
    bad = run_cli(tmp_path, "users", "create", "x", "--role", "boss", check=False)
    assert bad.returncode != 0 and "researcher, author, editor, admin" in bad.stderr
    # The secret key was generated into the data dir, owner-only.
    key = tmp_path / "data" / "secret_key"
    assert key.stat().st_mode & 0o077 == 0


def test_users_revoke_disable_enable_take_access_back(tmp_path: Path) -> None:
    """The CLI's revoke and disable reach a running app's next request (SQLite here; the
    same functions serve the API, tested on both databases in test_tokens)."""
    from fastapi.testclient import TestClient
    from sqlmodel import Session, select

    from service.app import create_app
    from service.config import Settings
    from service.models.audit import AuditEvent

    run_cli(tmp_path, "migrate")
    token = run_cli(tmp_path, "users", "create", "王五", "--role", "author"
                    ).stdout.strip().splitlines()[-1]
    settings = Settings(data_dir=tmp_path / "data", recordings_dir=tmp_path / "recordings",
                        transcripts_dir=tmp_path / "transcripts", models_dir=DEFAULT_MODELS_DIR,
                        embedded_workers=0)
    with TestClient(create_app(settings)) as client:
        def me() -> httpx.Response:
            return client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})

        assert me().status_code == 200
        assert "disabled" in run_cli(tmp_path, "users", "disable", "王五").stdout
        r = me()
        assert r.status_code == 401 and "disabled" in r.json()["detail"]
        assert "王五\tauthor\tdisabled" in run_cli(tmp_path, "users", "list").stdout
        run_cli(tmp_path, "users", "enable", "王五")
        assert me().status_code == 200
        out = run_cli(tmp_path, "users", "revoke", "王五").stdout
        assert "revoked 1 token(s)" in out
        r = me()
        assert r.status_code == 401 and "revoked" in r.json()["detail"]
        missing = run_cli(tmp_path, "users", "revoke", "nobody", check=False)
        assert missing.returncode == 1 and "no user named" in missing.stderr
        with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
            actions = [(e.action, e.summary) for e in session.exec(
                select(AuditEvent).where(AuditEvent.object_type == "user")
                .order_by(AuditEvent.id)).all()]
    assert actions[1:] == [("update", "disabled (cli)"), ("update", "enabled (cli)"),
                           ("revoke", "1 token(s) revoked (cli)")]


def test_serve_prints_an_admin_token_and_answers(tmp_path: Path) -> None:
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOURCEBOOK_")}
    env |= {"SOURCEBOOK_DATA_DIR": str(tmp_path / "data"),
            "SOURCEBOOK_RECORDINGS_DIR": str(tmp_path / "rec"),
            "SOURCEBOOK_TRANSCRIPTS_DIR": str(tmp_path / "tr"),
            "SOURCEBOOK_MODELS_DIR": str(DEFAULT_MODELS_DIR),
            "SOURCEBOOK_PORT": str(port), "SOURCEBOOK_EMBEDDED_WORKERS": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--admin-token"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        lines = []
        assert proc.stdout is not None
        while True:
            line = proc.stdout.readline()
            lines.append(line)
            if "Ctrl-C" in line or not line:
                break
        token = next(ln.split("=", 1)[1].strip() for ln in lines
                     if "SOURCEBOOK_TOKEN=" in ln)
        printed = "".join(lines)
        assert f"http://127.0.0.1:{port}/docs" in printed
        assert f"http://127.0.0.1:{port}/login" in printed
        assert str(tmp_path / "data" / "sourcebook.db") in printed
        for _ in range(100):
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/v1/me",
                              headers={"Authorization": f"Bearer {token}"})
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert r.json()["role"] == "admin"
        assert httpx.get(f"http://127.0.0.1:{port}/openapi.json").status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _home_env(home: Path, database_url: str | None = None) -> dict[str, str]:
    """An environment that names only the Sourcebook home (and the shared weights)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOURCEBOOK_")}
    env |= {"SOURCEBOOK_HOME": str(home), "SOURCEBOOK_MODELS_DIR": str(DEFAULT_MODELS_DIR),
            "PYANNOTE_METRICS_ENABLED": "0",
            # This checkout's code, whatever folder the command runs in.
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
                                                        os.environ.get("PYTHONPATH")]))}
    if database_url:
        env["SOURCEBOOK_DATABASE_URL"] = database_url
    return env


def _cli_in(folder: Path, env: dict[str, str], *args: str,
            check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "service.cli", *args], cwd=folder, env=env,
                          capture_output=True, text=True, check=check, timeout=300)


def test_the_cli_and_the_server_find_one_archive_from_any_folder(tmp_path: Path,
                                                                 database_url: str) -> None:
    """Commands run in unrelated folders create nothing there and use the home's archive:
    a token made in one folder works on a server started in another."""
    import socket
    import time

    home, here, there = tmp_path / "home", tmp_path / "here", tmp_path / "there"
    for d in (home, here, there):
        d.mkdir()
    sqlite = database_url.startswith("sqlite")
    env = _home_env(home, None if sqlite else database_url)
    archive = str(home / "data" / "sourcebook.db") if sqlite else "postgresql"
    made = _cli_in(here, env, "migrate")
    assert archive in made.stdout
    out = _cli_in(here, env, "users", "create", "李研", "--role", "researcher")
    token = out.stdout.strip().splitlines()[-1]
    assert f"archive: {archive}" in out.stderr
    listed = _cli_in(there, env, "users", "list")
    assert "李研\tresearcher" in listed.stdout and archive in listed.stderr

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve"], cwd=there,
        env=env | {"SOURCEBOOK_PORT": str(port), "SOURCEBOOK_EMBEDDED_WORKERS": "0",
                   "SOURCEBOOK_LOG_LEVEL": "warning"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(300):
            try:
                me = httpx.get(f"http://127.0.0.1:{port}/api/v1/me",
                               headers={"Authorization": f"Bearer {token}"})
                break
            except httpx.TransportError:
                assert server.poll() is None, server.communicate()[0]
                time.sleep(0.1)
        assert me.status_code == 200, me.text
        assert me.json()["name"] == "李研"
    finally:
        server.terminate()
        printed = server.communicate(timeout=30)[0]
    assert "/login" in printed and archive in printed
    assert list(here.iterdir()) == [] and list(there.iterdir()) == []
    if sqlite:
        assert (home / "data" / "secret_key").exists()


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_missing_archive_gives_one_line_naming_the_fix(tmp_path: Path) -> None:
    home, here = tmp_path / "home", tmp_path / "here"
    home.mkdir()
    here.mkdir()
    env = _home_env(home)
    db = home / "data" / "sourcebook.db"
    for args in (["users", "list"], ["users", "create", "李研", "--role", "author"],
                 ["users", "token", "李研"], ["audit", "--as-of", "2030-01-01"],
                 ["export", "1"], ["fsck"], ["export-archive", str(tmp_path / "bag")]):
        line = _one_line(_cli_in(here, env, *args, check=False))
        assert line == (f"error: no archive at {db}: run `sourcebook migrate` to create it, or "
                        "point SOURCEBOOK_HOME or SOURCEBOOK_DATABASE_URL at the archive you "
                        "mean"), args
    assert list(home.iterdir()) == [] and list(here.iterdir()) == []


def test_an_unmigrated_database_gives_one_line_naming_the_fix(tmp_path: Path,
                                                              database_url: str) -> None:
    import sqlalchemy as sa

    home, here = tmp_path / "home", tmp_path / "here"
    home.mkdir()
    here.mkdir()
    if database_url.startswith("sqlite"):
        db = home / "data" / "sourcebook.db"
        db.parent.mkdir()
        engine = sa.create_engine(f"sqlite:///{db}")
        url, schema = None, None
    else:
        # A schema of its own, without Sourcebook's tables, stands for a fresh database.
        schema = "cli_unmigrated"
        engine = sa.create_engine(database_url)
        url = f"{database_url}?options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        if schema:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        conn.exec_driver_sql(f"CREATE TABLE {schema + '.' if schema else ''}notes (x INTEGER)")
    try:
        env = _home_env(home, url)
        for args in (["users", "list"], ["users", "create", "李研", "--role", "author"]):
            line = _one_line(_cli_in(here, env, *args, check=False))
            assert "no archive at" in line and "no Sourcebook tables" in line, line
            assert "run `sourcebook migrate`" in line
        with engine.connect() as conn:
            assert sa.inspect(conn).get_table_names(schema=schema) == ["notes"]
    finally:
        if schema:
            with engine.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        engine.dispose()
    assert list(here.iterdir()) == []
    if not schema:
        # Nothing beside the database, either: no secret key, no queue.
        assert sorted(p.name for p in (home / "data").iterdir()) == ["sourcebook.db"]


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_an_unreachable_database_gives_one_line(tmp_path: Path, database_url: str) -> None:
    import sqlalchemy as sa

    missing = sa.engine.make_url(database_url).set(database="sourcebook_no_such_db")
    env = _home_env(tmp_path, missing.render_as_string(hide_password=False))
    line = _one_line(_cli_in(tmp_path, env, "users", "list", check=False))
    assert line.startswith("error: cannot open the archive at postgresql") and (
        "sourcebook_no_such_db" in line), line


def test_settings_resolve_against_the_home_not_the_working_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from service.config import Settings

    home, here = tmp_path / "home", tmp_path / "here"
    home.mkdir()
    here.mkdir()
    (home / ".env").write_text("SOURCEBOOK_RECORDINGS_DIR=media\nSOURCEBOOK_PORT=8123\n")
    (here / ".env").write_text("SOURCEBOOK_PORT=9999\nSOURCEBOOK_DATA_DIR=elsewhere\n")
    for key in [k for k in os.environ if k.startswith("SOURCEBOOK_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("SOURCEBOOK_HOME", str(home))
    monkeypatch.chdir(here)
    s = Settings()
    assert (s.data_dir, s.recordings_dir, s.transcripts_dir, s.models_dir) == (
        home / "data", home / "media", home / "transcripts", home / "models")
    assert s.port == 8123
    assert s.database_url == f"sqlite:///{home / 'data' / 'sourcebook.db'}"
    monkeypatch.delenv("SOURCEBOOK_HOME")
    assert Settings().data_dir == REPO / "data"  # a checkout is its own home


def test_the_serve_banner_names_the_pages_the_docs_and_how_to_stop() -> None:
    from service.cli.server import banner
    from service.config import Settings

    text = banner(Settings(host="127.0.0.1", port=8000, database_url="sqlite:////srv/sb.db"))
    assert "http://127.0.0.1:8000/login" in text and "http://127.0.0.1:8000/docs" in text
    assert "/srv/sb.db" in text
    assert "foreground" in text and "Ctrl-C" in text


def test_models_list_shows_sizes_and_checksums(tmp_path: Path) -> None:
    from pipelines.models import install_models

    install_models(DEFAULT_MODELS_DIR)
    out = run_cli(tmp_path, "models", "list").stdout
    for name in ("whisper-base-ct2", "whisper-tiny.en-ct2", "whisper-base.pt",
                 "pyannote-diarization"):
        assert name in out
    assert "sha256" in out and "MB" in out


def test_models_list_on_an_empty_dir_names_the_fix(tmp_path: Path) -> None:
    env_dir = tmp_path / "empty-models"
    out = subprocess.run([sys.executable, "-m", "service.cli", "models", "list"], cwd=REPO,
                         env={**os.environ, "SOURCEBOOK_MODELS_DIR": str(env_dir),
                              "SOURCEBOOK_DATA_DIR": str(tmp_path / "d")},
                         capture_output=True, text=True)
    assert out.returncode == 1 and "sourcebook models install" in out.stdout


@pytest.mark.slow
def test_transcribe_a_file_writes_txt_srt_json(tmp_path: Path) -> None:
    from tests.factories import PYANNOTE_SAMPLE

    src = tmp_path / "call.wav"
    src.write_bytes(PYANNOTE_SAMPLE.read_bytes())
    out = run_cli(tmp_path, "transcribe", str(src), "--model", "tiny.en", "--language", "en",
                  "--num-speakers", "2")
    for ext in ("txt", "srt", "json"):
        assert (tmp_path / f"call.{ext}").stat().st_size > 100, out.stdout
    txt = (tmp_path / "call.txt").read_text()
    assert "SPEAKER_00" in txt and "SPEAKER_01" in txt
    assert "2 speaker(s)" in out.stdout
    bad = run_cli(tmp_path, "transcribe", str(src), "--formats", "pdf", check=False)
    assert bad.returncode != 0 and "unknown format" in bad.stderr


def _watch_anonymous_memory(pid: int) -> list[int]:
    """Samples of /proc/PID/status RssAnon (KiB), every 0.1 s until the process exits.

    The list fills in from a daemon thread; read it after the process was waited for.
    """
    import threading
    import time

    samples: list[int] = []

    def sample() -> None:
        status = Path(f"/proc/{pid}/status")
        while True:
            try:
                text = status.read_text()
            except OSError:
                return
            line = next((x for x in text.splitlines() if x.startswith("RssAnon:")), None)
            if line is None or "State:\tZ" in text:
                return
            samples.append(int(line.split()[1]))
            time.sleep(0.1)

    threading.Thread(target=sample, daemon=True).start()
    return samples


@pytest.mark.slow
def test_transcribe_a_two_hour_file_in_bounded_memory(tmp_path: Path) -> None:
    """Two hours of audio: speech every 20 minutes in low noise, tiny.en, no diarization.

    Diarizing two hours takes too long for CI on two cores (bench/pipeline.py measures
    diarization speed); this checks the streaming normalise, the memory-mapped load and
    the ASR path on a long file, and that the output reaches the end of the recording.
    """
    from tests.factories import PYANNOTE_SAMPLE

    src = tmp_path / "two-hours.m4a"
    # Low pink noise for 2 h, with the sample mixed in at 0, 20, 40 ... 100 minutes.
    delays = [i * 1200 for i in range(6)]
    inputs, filters = [], []
    for i, d in enumerate(delays):
        inputs += ["-i", str(PYANNOTE_SAMPLE)]
        filters.append(f"[{i + 1}:a]adelay={d * 1000}:all=1[s{i}]")
    mix = "".join(f"[s{i}]" for i in range(len(delays)))
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
         "anoisesrc=color=pink:amplitude=0.002:sample_rate=16000:duration=7200", *inputs,
         "-filter_complex",
         ";".join(filters) + f";[0:a]{mix}amix=inputs={len(delays) + 1}:normalize=0:"
         "duration=first[out]",
         "-map", "[out]", "-ac", "1", "-c:a", "aac", "-b:a", "32k", str(src)],
        check=True, timeout=600,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOURCEBOOK_")}
    env |= {"SOURCEBOOK_DATA_DIR": str(tmp_path / "data"),
            "SOURCEBOOK_MODELS_DIR": str(DEFAULT_MODELS_DIR), "PYANNOTE_METRICS_ENABLED": "0"}
    log = tmp_path / "transcribe.log"
    with log.open("w") as log_f:  # a file, not a pipe: nobody reads a pipe during wait4
        proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "transcribe", str(src), "--model", "tiny.en",
             "--language", "en", "--no-diarize", "--out", str(tmp_path / "out")],
            cwd=REPO, env=env, stdout=log_f, stderr=subprocess.STDOUT)
        anon_peak = _watch_anonymous_memory(proc.pid)
        _, status, usage = os.wait4(proc.pid, 0)
    output = log.read_text()
    assert os.waitstatus_to_exitcode(status) == 0, output[-3000:]
    peak_mb = usage.ru_maxrss / 1024
    anon_mb = max(anon_peak) / 1024 if anon_peak else 0.0
    print(f"\ntwo-hour file: peak RSS {peak_mb:.0f} MB, anonymous {anon_mb:.0f} MB; "
          f"{output.strip().splitlines()[-1]}")
    # 2 h of 16 kHz float32 is 460 MB; tiny.en, VAD and their buffers come on top. Runs
    # here peaked at 1.8-2.6 GB (RssAnon, memory the process owns, is nearly all of it;
    # the memory-mapped WAV's pages are the rest), so the bounds leave that spread room
    # while still failing for any path that holds the decoded source at its own rate
    # (2 h of 48 kHz stereo float32 alone is 2.8 GB) or copies the audio several times.
    assert anon_peak, "RssAnon of the transcribe process was never read"
    assert anon_mb < 3000
    # ru_maxrss adds file-backed pages (libraries, the model, the memory-mapped WAV),
    # which the kernel may drop at will. They came to 1.6-2.0 GB more on the 2026-12-01
    # machine than on earlier ones (peak 4.6 GB with RssAnon under 3 GB); the memory the
    # process owns is the bound above, and this one only catches a gross regression.
    assert peak_mb < 5500
    import json as _json

    doc = _json.loads((tmp_path / "out" / "two-hours.json").read_text())
    starts = [s["start"] for s in doc["segments"]]
    assert max(starts) > 6000, "the last speech, at 100 minutes, must be transcribed"
    assert min(starts) < 30


def test_a_worker_told_cuda_without_a_gpu_refuses_to_start(tmp_path: Path) -> None:
    from pipelines.device import cuda_visible

    if cuda_visible():
        pytest.skip("this machine has a CUDA device: the worker would start")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOURCEBOOK_")}
    env |= {"SOURCEBOOK_DATA_DIR": str(tmp_path / "data"), "SOURCEBOOK_DEVICE": "cuda",
            "SOURCEBOOK_RECORDINGS_DIR": str(tmp_path / "recordings"),
            "SOURCEBOOK_TRANSCRIPTS_DIR": str(tmp_path / "transcripts")}
    out = subprocess.run([sys.executable, "-m", "service.cli", "worker"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 1
    assert "SOURCEBOOK_DEVICE=cuda but no CUDA device is visible" in out.stderr
    assert "set SOURCEBOOK_DEVICE=cpu" in out.stderr
