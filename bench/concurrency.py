"""Two jobs at once vs the same two in sequence, on this machine's cores.

The whole pipeline (faster-whisper base int8 + diarization + merge, as a worker runs it)
on the pyannote sample looped to ``--minutes``, three ways in one process, each with its
models loaded before the clock starts:

* **sequence**: job A, then job B, each with ``job_threads(1)`` threads (all cores);
* **concurrent, the rule**: A and B in two threads (a worker with ``--workers 2``), each
  with ``job_threads(2)`` threads, so together they use the cores once;
* **concurrent, uncapped**: the same two threads with all cores each (what a worker did
  before the rule: every job sized its pools for the whole machine).

It prints each wall time and the ratios to the sequence, measured in this one run, and
the CPU seconds the process spent on each: on a machine shared with other work the
kernel gives a process a share of the cores that grows with its runnable threads, so
there the wall times favour more threads, while the CPU seconds still show what
oversubscription wastes (threads spinning and evicting each other's caches).

    .venv/bin/python bench/concurrency.py                 # 1.5 min of audio per job
    .venv/bin/python bench/concurrency.py --minutes 1 --skip-uncapped
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipelines.runner import ModelCache, RunOptions, run  # noqa: E402
from pipelines.threads import available_cores, job_threads, use_torch_threads  # noqa: E402

OPTIONS = RunOptions(model="base", language="en", compute_type="int8")


def sample() -> Path:
    import pyannote.audio

    return Path(pyannote.audio.__file__).parent / "sample" / "sample.wav"


def looped(src: Path, minutes: float, out: Path) -> Path:
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                    "-stream_loop", "-1", "-i", str(src), "-t", str(minutes * 60),
                    "-ac", "1", "-ar", "16000", str(out)], check=True)
    return out


def loaded(models_dir: Path, threads: int, warm: Path) -> ModelCache:
    """Models loaded and run once on a short clip (first-call allocations, file caches)."""
    cache = ModelCache(models_dir, keep=True, cpu_threads=threads)
    job(warm, cache, {})
    return cache


def job(audio: Path, cache: ModelCache, out: dict[str, Any]) -> None:
    # Per job thread: torch keeps its thread count per calling thread.
    use_torch_threads(cache.cpu_threads)
    t0 = time.perf_counter()
    result = run(audio, OPTIONS, models=cache)
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    out["stages"] = result.timings


def together(audio: Path, caches: list[ModelCache],
             ) -> tuple[float, list[dict[str, Any]], float]:
    outs: list[dict[str, Any]] = [{} for _ in caches]
    cpu0 = time.process_time()
    threads = [threading.Thread(target=job, args=(audio, c, o)) for c, o in zip(caches, outs,
                                                                             strict=True)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = round(time.perf_counter() - t0, 1)
    return wall, outs, round(time.process_time() - cpu0, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=1.5, help="audio per job")
    ap.add_argument("--models-dir", type=Path,
                    default=Path(os.environ.get("SOURCEBOOK_MODELS_DIR", REPO / "models")))
    ap.add_argument("--skip-uncapped", action="store_true")
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    args = ap.parse_args()
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")

    cores = available_cores()
    one, two = job_threads(1, cores=cores), job_threads(2, cores=cores)
    tmp = Path(tempfile.mkdtemp(prefix="sourcebook-concurrency-"))
    audio = looped(sample(), args.minutes, tmp / "looped.wav")
    warm = looped(sample(), 10 / 60, tmp / "warm.wav")
    print(f"{cores} cores; {args.minutes} min of audio per job; threads per job: "
          f"{one} alone, {two} with two at once", flush=True)

    full = loaded(args.models_dir, one, warm)
    load_before = os.getloadavg()[0]
    seq_a: dict[str, Any] = {}
    seq_b: dict[str, Any] = {}
    t0, cpu0 = time.perf_counter(), time.process_time()
    job(audio, full, seq_a)
    job(audio, full, seq_b)
    sequence = round(time.perf_counter() - t0, 1)
    seq_cpu = round(time.process_time() - cpu0, 1)
    print(f"sequence: {sequence} s ({seq_a['wall_s']} + {seq_b['wall_s']}), CPU {seq_cpu} s",
          flush=True)

    rule, rule_jobs, rule_cpu = together(
        audio, [loaded(args.models_dir, two, warm) for _ in range(2)])
    print(f"concurrent, {two} thread(s) each: {rule} s "
          f"({' / '.join(str(o['wall_s']) for o in rule_jobs)}), CPU {rule_cpu} s", flush=True)
    rows: dict[str, Any] = {
        "sequence": {"wall_s": sequence, "cpu_s": seq_cpu, "threads_per_job": one,
                     "jobs": [seq_a, seq_b]},
        "concurrent_rule": {"wall_s": rule, "cpu_s": rule_cpu, "threads_per_job": two,
                            "jobs": rule_jobs},
    }
    if not args.skip_uncapped:
        uncapped, uncapped_jobs, uncapped_cpu = together(
            audio, [full, loaded(args.models_dir, one, warm)])
        print(f"concurrent, {one} thread(s) each (uncapped): {uncapped} s "
              f"({' / '.join(str(o['wall_s']) for o in uncapped_jobs)}), CPU {uncapped_cpu} s",
              flush=True)
        rows["concurrent_uncapped"] = {"wall_s": uncapped, "cpu_s": uncapped_cpu,
                                       "threads_per_job": one, "jobs": uncapped_jobs}

    result = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
              "machine": f"{platform.machine()}, {cores} cores", "minutes": args.minutes,
              "loadavg_before": load_before, "loadavg_after": os.getloadavg()[0], **rows}
    print(f"\n{result['machine']}, {args.minutes} min per job, {result['date']}; "
          f"load average {load_before:.1f} -> {result['loadavg_after']:.1f}")
    print("| run | threads per job | wall s | / sequence | CPU s | / sequence |")
    print("|---|---|---|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {row['threads_per_job']} | {row['wall_s']} | "
              f"{row['wall_s'] / sequence:.2f} | {row['cpu_s']} | "
              f"{row['cpu_s'] / seq_cpu:.2f} |")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
