"""Load: 50 concurrent clients against a real `sourcebook serve` on PostgreSQL.

Builds a populated archive in its own database (``--database-url``, default
``sourcebook_load`` on 127.0.0.1; created if missing, rebuilt unless ``--reuse``):
``--recordings`` interviews of ``--segments`` segments each (7.2 s per segment, text cut
from the seed documents as in bench/search.py, per-character word timings as Whisper
gives for Chinese), one succeeded job per recording and a speaker named in one in ten.
Then it starts `sourcebook serve` (no workers) and runs ``--clients`` asyncio clients
(httpx, one keep-alive connection each) for ``--seconds``. Each client loops, back to
back or with ``--think`` seconds' pause on average (a person reading), over a mix of
what the web pages and API clients do most:

* search (40 %): ``GET /api/v1/search?q=`` with typical Chinese and English queries;
* transcript (30 %): ``GET /api/v1/recordings/{id}/transcript`` (the whole transcript);
* job poll (30 %): ``GET /api/v1/jobs/{id}``.

It reports requests/s, p50/p95/p99 latency and errors (status >= 400 or a transport
error) per endpoint and overall, and writes them as JSON with ``--out``.

``--with-job`` measures the API beside a running transcription, in the same run: first
the load on an idle machine, then the same load again while a job runs. ``embedded``
(the default of the flag) uploads the pyannote sample looped to ``--job-minutes`` to the
server itself, whose embedded worker (the `serve` default without Redis) runs it; ``cli``
runs `sourcebook transcribe` on it beside the server instead, as a user at a terminal
would; ``embedded,cli`` measures both. It prints p95 idle vs with the job.

    .venv/bin/python bench/load.py                      # 60 s, 50 clients
    .venv/bin/python bench/load.py --seconds 10 --reuse # a quick look
    .venv/bin/python bench/load.py --think 1 --seconds 20 --with-job embedded,cli
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlmodel import Session

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.search import SECONDS_PER_SEGMENT, Generator  # noqa: E402
from service import auth  # noqa: E402
from service.config import Settings  # noqa: E402
from service.crud.transcripts import SegmentIn, add_version  # noqa: E402
from service.db import make_engine, migrate  # noqa: E402
from service.models.jobs import Job, JobStage, JobState  # noqa: E402
from service.models.people import Person  # noqa: E402
from service.models.recordings import Recording, RecordingStatus  # noqa: E402
from service.models.users import Role  # noqa: E402

SECRET = "load-bench-secret"
QUERIES = ["模型", "闫俊杰", "第一性原理", "钱", "agent", "transform*", '"deep research"',
           "MoE 架构", "创业", "伯克希尔", "AGI", "的"]
MIX = {"search": 0.4, "transcript": 0.3, "job": 0.3}
CJK = re.compile(r"[\u3400-\u9fff]")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_database(url: str) -> None:
    target = sa.engine.make_url(url)
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                              {"n": target.database}).first()
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


def words_for(text: str, start: float, end: float, rng: random.Random) -> list[dict[str, Any]]:
    """Word timings shaped like Whisper's: one per CJK character, Latin words whole."""
    tokens = re.findall(r"[\u3400-\u9fff]|[A-Za-z][A-Za-z'-]*", text)
    if not tokens:
        return []
    step = (end - start) / len(tokens)
    return [{"start": round(start + i * step, 3), "end": round(start + (i + 1) * step, 3),
             "text": t, "probability": round(rng.uniform(0.6, 1.0), 4)}
            for i, t in enumerate(tokens)]


def populate(engine: sa.Engine, recordings: int, segments: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    gen = Generator(rng)
    t0 = time.perf_counter()
    with Session(engine) as session:
        person = Person(name="闫俊杰", organisation="MiniMax")
        session.add(person)
        session.commit()
        person_id = person.id
    for r in range(recordings):
        with Session(engine) as session:
            title = f"load interview {r}"
            rec = Recording(
                title=title, sha256=hashlib.sha256(title.encode()).hexdigest(), size_bytes=1,
                duration=segments * SECONDS_PER_SEGMENT, format_name="wav", codec="pcm_s16le",
                sample_rate=16000, channels=1, media_path=f"{r}/original.wav",
                status=RecordingStatus.transcribed, language="zh",
            )
            session.add(rec)
            session.flush()
            assert rec.id is not None
            job = Job(recording_id=rec.id, state=JobState.succeeded, stage=JobStage.store,
                      progress=1.0, attempts=1, worker="load-bench")
            session.add(job)
            session.flush()
            segs = []
            for i in range(segments):
                text, language = gen.segment()
                start = i * SECONDS_PER_SEGMENT
                end = start + SECONDS_PER_SEGMENT - 0.3
                segs.append(SegmentIn(start=start, end=end, speaker=f"SPEAKER_0{i % 2}",
                                      text=text, language=language,
                                      words=words_for(text, start, end, rng)))
            add_version(session, recording_id=rec.id, segments=segs, backend="bench",
                        model="generated", language="zh", created_by=None, job_id=job.id)
            if r % 10 == 0:
                session.execute(sa.text(
                    "UPDATE speaker SET person_id = :p WHERE recording_id = :r AND "
                    "label = 'SPEAKER_00'"), {"p": person_id, "r": rec.id})
            session.commit()
        if r % max(1, recordings // 10) == 0:
            print(f"  loaded {r + 1}/{recordings} recordings", flush=True)
    return {"load_s": round(time.perf_counter() - t0, 1)}


def counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(sa.text(f'SELECT count(*) FROM "{t}"')).scalar_one()
                for t in ("recording", "segment", "job")}


def parse_mix(text: str) -> dict[str, float]:
    mix = {}
    for part in text.split(","):
        name, _, weight = part.partition("=")
        if name.strip() not in MIX:
            raise argparse.ArgumentTypeError(f"unknown request kind {name!r}; use {list(MIX)}")
        mix[name.strip()] = float(weight or 1)
    return mix


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def client_loop(client: httpx.AsyncClient, deadline: float, ids: dict[str, list[int]],
                      rng: random.Random, out: dict[str, list[float]],
                      errors: dict[str, list[str]], think: float = 0.0,
                      mix: dict[str, float] = MIX) -> None:
    names, weights = zip(*mix.items(), strict=True)
    if think:
        # People do not all click at the same instant: each starts after a pause of
        # its own, so the run measures a steady state rather than one 50-request burst.
        await asyncio.sleep(rng.expovariate(1 / think))
    while time.monotonic() < deadline:
        kind = rng.choices(names, weights)[0]
        if kind == "search":
            url, params = "/api/v1/search", {"q": rng.choice(QUERIES), "limit": "20"}
        elif kind == "transcript":
            url, params = f"/api/v1/recordings/{rng.choice(ids['recording'])}/transcript", {}
        else:
            url, params = f"/api/v1/jobs/{rng.choice(ids['job'])}", {}
        t0 = time.perf_counter()
        try:
            r = await client.get(url, params=params)
            await r.aread()
            status = r.status_code
        except httpx.HTTPError as exc:
            status, detail = 0, f"{type(exc).__name__}: {exc}"
        else:
            detail = r.text[:200] if status >= 400 else ""
        out[kind].append((time.perf_counter() - t0) * 1000)
        if status == 0 or status >= 400:
            errors[kind].append(f"{status} {detail}")
        if think:
            # A person reads a page before the next click: exponential pauses around
            # ``think`` seconds, so 50 clients are 50 people, not 50 tight loops.
            await asyncio.sleep(rng.expovariate(1 / think))


def summarise(lat: dict[str, list[float]], errors: dict[str, list[str]], seconds: float,
              ) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    everything = [v for k in lat for v in lat[k]]
    for name, values in [*sorted(lat.items()), ("overall", everything)]:
        errs = (sum(len(v) for v in errors.values()) if name == "overall"
                else len(errors.get(name, [])))
        rows[name] = {"requests": len(values), "rps": round(len(values) / seconds, 1),
                      "p50_ms": round(pct(values, 50), 1), "p95_ms": round(pct(values, 95), 1),
                      "p99_ms": round(pct(values, 99), 1),
                      "mean_ms": round(statistics.fmean(values), 1) if values else None,
                      "errors": errs}
    return rows


async def run_load(base: str, token: str, clients: int, seconds: float,
                   ids: dict[str, list[int]], seed: int, think: float = 0.0,
                   mix: dict[str, float] = MIX) -> dict[str, Any]:
    lat: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, list[str]] = defaultdict(list)
    # Built before the clock starts: making an httpx client takes ~20 ms of this event
    # loop's time, and 50 of them inside the run were counted as a second of latency.
    pool = [httpx.AsyncClient(base_url=base, timeout=30,
                              headers={"Authorization": f"Bearer {token}"})
            for _ in range(clients)]
    try:
        started = time.monotonic()
        deadline = started + seconds
        await asyncio.gather(*(client_loop(pool[i], deadline, ids, random.Random(seed + i),
                                           lat, errors, think, mix)
                               for i in range(clients)))
        elapsed = time.monotonic() - started
    finally:
        for client in pool:
            await client.aclose()
    return {"elapsed_s": round(elapsed, 1), "endpoints": summarise(lat, errors, elapsed),
            "error_samples": {k: v[:5] for k, v in errors.items()}}


def looped_sample(out: Path, minutes: float) -> Path:
    """The pyannote sample (two people on the phone) looped to ``minutes``."""
    import pyannote.audio

    src = Path(pyannote.audio.__file__).parent / "sample" / "sample.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                    "-stream_loop", "-1", "-i", str(src), "-t", str(minutes * 60),
                    "-ac", "1", "-ar", "16000", str(out)], check=True)
    return out


def job_state(base: str, token: str, job_id: int) -> dict[str, Any]:
    r = httpx.get(f"{base}/api/v1/jobs/{job_id}", timeout=10,
                  headers={"Authorization": f"Bearer {token}"})
    r.raise_for_status()
    state: dict[str, Any] = r.json()
    return state


def with_job(how: str, base: str, token: str, audio: Path, env: dict[str, str], tmp: Path,
             args: argparse.Namespace) -> dict[str, Any]:
    """The load again while a transcription runs: the server's own worker runs it
    (``embedded``), or `sourcebook transcribe` beside the server (``cli``)."""
    proc: subprocess.Popen[bytes] | None = None
    job_id: int | None = None
    if how == "embedded":
        with audio.open("rb") as f:
            r = httpx.post(f"{base}/api/v1/recordings", timeout=120,
                           headers={"Authorization": f"Bearer {token}"},
                           files={"file": (f"job-{time.time_ns()}.wav", f, "audio/wav")},
                           data={"meta": json.dumps({"title": f"load job {time.time_ns()}",
                                                     "language": "en"})})
        r.raise_for_status()
        job_id = int(r.json()["job"]["id"])
        # Measure model work, not the upload's normalising: wait for the ASR to start,
        # then for its model to load.
        for _ in range(1200):
            state = job_state(base, token, job_id)
            if state["state"] != "queued" and state["stage"] != "normalise":
                break
            time.sleep(0.25)
        label = "embedded worker job"
    else:
        out = tmp / "cli"
        out.mkdir(exist_ok=True)
        proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "transcribe", str(audio), "--language", "en",
             "--out", str(out)], cwd=REPO, env=env,
            stdout=(tmp / "transcribe.log").open("wb"), stderr=subprocess.STDOUT)
        label = "`sourcebook transcribe` beside"
    time.sleep(5)  # the models load
    try:
        measured = asyncio.run(run_load(base, token, args.clients, args.seconds, {
            "recording": list(args.ids["recording"]), "job": list(args.ids["job"])},
            args.seed + 1, args.think, args.mix))
        if job_id is not None:
            throughout = job_state(base, token, job_id)["state"] == "running"
        else:
            assert proc is not None
            throughout = proc.poll() is None
    finally:
        if job_id is not None:
            httpx.post(f"{base}/api/v1/jobs/{job_id}/cancel", timeout=30,
                       headers={"Authorization": f"Bearer {token}"})
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
    return measured | {"label": label, "job_ran_throughout": throughout}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--think", type=float, default=0.0,
                    help="mean pause (s) between one client's requests; 0: back to back")
    ap.add_argument("--recordings", type=int, default=120)
    ap.add_argument("--segments", type=int, default=250, help="per recording (7.2 s each)")
    ap.add_argument("--database-url", default=os.environ.get(
        "SOURCEBOOK_LOAD_DATABASE_URL",
        "postgresql+psycopg://postgres@127.0.0.1:5432/sourcebook_load"))
    ap.add_argument("--reuse", action="store_true", help="keep an already populated database")
    ap.add_argument("--server-workers", type=int, default=1,
                    help="`sourcebook serve --workers N`: web server processes")
    ap.add_argument("--mix", type=parse_mix, default=MIX,
                    help="request mix, e.g. 'job=1' or 'search=2,transcript=1' "
                         "(default: search=0.4,transcript=0.3,job=0.3)")
    ap.add_argument("--with-job", nargs="?", const="embedded", default="",
                    help="also measure while a job runs: 'embedded' (the server's own "
                         "worker), 'cli' (`sourcebook transcribe` beside it) or both, "
                         "comma-separated")
    ap.add_argument("--job-minutes", type=float, default=6,
                    help="audio of the job: long enough to outlast the measurement")
    ap.add_argument("--seed", type=int, default=20261125)
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    args = ap.parse_args()

    ensure_database(args.database_url)
    tmp = Path(tempfile.mkdtemp(prefix="sourcebook-load-"))
    settings = Settings(database_url=args.database_url, secret_key=SECRET, data_dir=tmp / "data",
                        recordings_dir=tmp / "recordings", transcripts_dir=tmp / "transcripts")
    engine = make_engine(settings)
    have = None
    if args.reuse:
        try:
            have = counts(engine)
        except sa.exc.ProgrammingError:
            have = None
    info: dict[str, Any] = {}
    if not have or not have["segment"]:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        migrate(engine, settings)
        print(f"populating {args.recordings} recordings x {args.segments} segments ...")
        info = populate(engine, args.recordings, args.segments, args.seed)
    with Session(engine) as session:
        name = f"load-{os.getpid()}"
        _, token = auth.create_user(session, key=settings.token_key(), name=name,
                                    role=Role.researcher)
        session.commit()
    with engine.connect() as conn:
        ids = {"recording": list(conn.execute(sa.text("SELECT id FROM recording")).scalars()),
               "job": list(conn.execute(sa.text("SELECT id FROM job")).scalars())}
    info |= counts(engine)
    engine.dispose()
    args.ids = ids

    jobs = [j.strip() for j in args.with_job.split(",") if j.strip()]
    unknown = set(jobs) - {"embedded", "cli"}
    if unknown:
        ap.error(f"--with-job: unknown {sorted(unknown)}; use embedded and/or cli")
    port = free_port()
    models_dir = os.environ.get("SOURCEBOOK_MODELS_DIR", str(REPO / "models"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOURCEBOOK_")} | {
        "SOURCEBOOK_MODELS_DIR": models_dir,
        "SOURCEBOOK_DATABASE_URL": args.database_url, "SOURCEBOOK_SECRET_KEY": SECRET,
        "SOURCEBOOK_DATA_DIR": str(tmp / "data"),
        "SOURCEBOOK_RECORDINGS_DIR": str(tmp / "recordings"),
        "SOURCEBOOK_TRANSCRIPTS_DIR": str(tmp / "transcripts"),
        # The embedded worker (a child process of `serve`) only when it is measured.
        "SOURCEBOOK_EMBEDDED_WORKERS": "1" if "embedded" in jobs else "0",
        "SOURCEBOOK_LOG_LEVEL": "warning",
        "PYANNOTE_METRICS_ENABLED": "0"}
    log = (tmp / "serve.log").open("wb")
    server = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--port", str(port),
                               "--workers", str(args.server_workers)],
                              cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        # Warm-up: first requests compile queries, fill the pool and the OpenCC tables.
        asyncio.run(run_load(base, token, args.clients, 3, ids, args.seed - 1))
        print(f"running {args.clients} clients for {args.seconds:.0f} s against {base} ...")
        load_before = os.getloadavg()[0]
        result = asyncio.run(run_load(base, token, args.clients, args.seconds, ids, args.seed,
                                      args.think, args.mix))
        beside: dict[str, Any] = {}
        if jobs:
            audio = looped_sample(tmp / "job.wav", args.job_minutes)
        for how in jobs:
            print(f"running {args.clients} clients for {args.seconds:.0f} s beside a "
                  f"{how} job ...", flush=True)
            beside[how] = with_job(how, base, token, audio, env, tmp, args)
    finally:
        server.terminate()
        server.wait(timeout=30)
    result |= {"clients": args.clients, "think_s": args.think, "mix": args.mix,
               "server_workers": args.server_workers,
               "database": info, "loadavg_before": load_before,
               "loadavg_after": os.getloadavg()[0]}
    print(f"\n{args.clients} clients (think {args.think} s), {args.server_workers} server "
          "process(es), "
          f"{result['elapsed_s']} s; database {info}; "
          f"load average {load_before:.1f} -> {result['loadavg_after']:.1f}")
    print("| endpoint | requests | req/s | p50 ms | p95 ms | p99 ms | errors |")
    print("|---|---|---|---|---|---|---|")
    for name, row in result["endpoints"].items():
        print(f"| {name} | {row['requests']} | {row['rps']} | {row['p50_ms']} | "
              f"{row['p95_ms']} | {row['p99_ms']} | {row['errors']} |")
    if result["error_samples"]:
        print("error samples:", json.dumps(result["error_samples"], ensure_ascii=False)[:2000])
    if beside:
        result["with_job"] = beside
        idle = result["endpoints"]["overall"]
        print("\n| case | requests | p50 ms | p95 ms | p99 ms | errors | p95 / idle |")
        print("|---|---|---|---|---|---|---|")
        print(f"| idle | {idle['requests']} | {idle['p50_ms']} | {idle['p95_ms']} | "
              f"{idle['p99_ms']} | {idle['errors']} | 1.00 |")
        for measured in beside.values():
            row = measured["endpoints"]["overall"]
            note = "" if measured["job_ran_throughout"] else " (the job ended during the run)"
            print(f"| {measured['label']}{note} | {row['requests']} | {row['p50_ms']} | "
                  f"{row['p95_ms']} | {row['p99_ms']} | {row['errors']} | "
                  f"{row['p95_ms'] / idle['p95_ms']:.2f} |")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
