"""Long recordings hold: the whole job (ASR + diarization + merge) on 10 minutes and on
3 hours of the same generated material (bench/longaudio.py), side by side in one run.

Each length runs `pipelines.runner.run` in its own process, as `sourcebook transcribe`
does (models loaded per stage and dropped after it), with base int8 + VAD. The parent
samples the child's /proc status every 0.2 s (VmRSS and RssAnon: memory it owns, not the
memory-mapped WAV's pages) and tags each sample with the stage then running; ru_maxrss
from wait4 is the peak resident set. DER and WDER are scored against the generated turns.

    .venv/bin/python bench/long.py [--hours 3] [--short-minutes 10] [--threads 2]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
os.environ["PYANNOTE_METRICS_ENABLED"] = "0"


def child(wav: Path, out: Path, marks: Path, threads: int, models_dir: Path,
          diarize_only: bool) -> None:
    import torch

    torch.set_num_threads(threads)
    from pipelines.runner import ModelCache, RunOptions, run

    def on_stage(stage: str) -> None:
        with marks.open("a") as f:
            f.write(f"{time.time()} {stage}\n")

    t0 = time.perf_counter()
    if diarize_only:
        # The diarize stage as run() does it, without ASR: normalise, map, diarize.
        from pipelines.audio import load_waveform, normalise

        on_stage("normalise")
        normalised = out.with_suffix(".normalised.wav")
        info = normalise(wav, normalised)
        audio = load_waveform(normalised)
        on_stage("diarize")
        cache = ModelCache(models_dir, keep=False, cpu_threads=threads)
        diarization = cache.diarizer(None).diarize(audio)
        timings = {"diarize": time.perf_counter() - t0}
        turns, words, duration = diarization.turns, [], info.duration
        speakers = len(diarization.speakers)
    else:
        started: list[str] = []

        def progress(stage: str, _fraction: float) -> None:
            if stage not in started:
                started.append(stage)
                on_stage(stage)

        result = run(wav, RunOptions(model="base"),
                     models=ModelCache(models_dir, keep=False, cpu_threads=threads),
                     progress=progress)
        timings, turns, duration = result.timings, result.diarization.turns, result.audio.duration
        words = [(w.start, w.end, s.speaker) for s in result.segments for w in s.words]
        speakers = len(result.diarization.speakers)
    on_stage("done")
    doc = {
        "process_s": time.perf_counter() - t0,
        "duration": duration,
        "timings": timings,
        "turns": [(t.start, t.end, t.speaker) for t in turns],
        "words": words,
        "speakers": speakers,
    }
    out.write_text(json.dumps(doc))


def _sample(pid: int, samples: list[tuple[float, int, int]]) -> None:
    status = Path(f"/proc/{pid}/status")
    while True:
        try:
            text = status.read_text()
        except OSError:
            return
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if "RssAnon" not in fields or "Z" in fields.get("State", ""):
            return
        samples.append((time.time(), int(fields["VmRSS"].split()[0]),
                        int(fields["RssAnon"].split()[0])))
        time.sleep(0.2)


def measure(wav: Path, workdir: Path, threads: int, diarize_only: bool) -> dict[str, object]:
    out, marks = workdir / f"{wav.stem}.json", workdir / f"{wav.stem}.marks"
    marks.unlink(missing_ok=True)
    log = workdir / f"{wav.stem}.log"
    with log.open("w") as log_f:
        extra = ["--diarize-only"] if diarize_only else []
        proc = subprocess.Popen([sys.executable, __file__, "--threads", str(threads), *extra,
                                 "--child", str(wav), str(out), str(marks)], stdout=log_f,
                                stderr=subprocess.STDOUT)
        samples: list[tuple[float, int, int]] = []
        sampler = threading.Thread(target=_sample, args=(proc.pid, samples), daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{wav.name} failed:\n{log.read_text()[-3000:]}")
    doc = json.loads(out.read_text())
    stages = [line.split() for line in marks.read_text().splitlines()]
    peaks: dict[str, tuple[int, int]] = {}
    for (t0, stage), (t1, _) in itertools.pairwise(stages):
        inside = [(rss, anon) for t, rss, anon in samples if float(t0) <= t < float(t1)]
        if inside:
            peaks[stage] = (max(r for r, _ in inside), max(a for _, a in inside))
    doc["stage_peaks_mb"] = {k: (round(r / 1024), round(a / 1024)) for k, (r, a) in peaks.items()}
    doc["peak_rss_mb"] = usage.ru_maxrss / 1024
    # CPU seconds of the job's process: less sensitive than wall time to other work on a
    # shared machine (both are reported).
    doc["cpu_s"] = usage.ru_utime + usage.ru_stime
    doc["peak_anon_mb"] = max((a for _, _, a in samples), default=0) / 1024
    return doc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hours", type=float, default=3.0)
    ap.add_argument("--short-minutes", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-long", action="store_true", help="only the short recording")
    ap.add_argument("--diarize-only", action="store_true",
                    help="the diarize stage alone (no ASR): its time and memory at length")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/sourcebook-bench-long"))
    ap.add_argument("--child", nargs=3, metavar=("WAV", "OUT", "MARKS"))
    args = ap.parse_args()
    models_dir = Path(os.environ.get("SOURCEBOOK_MODELS_DIR", REPO / "models"))
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]), Path(args.child[2]), args.threads,
              models_dir, args.diarize_only)
        return

    from longaudio import build
    from scoring import der, rttm_turns, wder

    lengths = [args.short_minutes * 60] + ([] if args.skip_long else [args.hours * 3600])
    what = ("the diarize stage alone" if args.diarize_only else
            "base int8 + VAD, models loaded per stage (as `sourcebook transcribe`)")
    print(f"machine: {os.cpu_count()} CPUs, threads {args.threads}; {what}; "
          f"load average {os.getloadavg()[0]:.1f}")
    rows = []
    for seconds in lengths:
        workdir = args.workdir / f"{seconds:.0f}s"
        wav, rttm = workdir / "long.wav", workdir / "long.rttm"
        if not (wav.is_file() and rttm.is_file()):  # the generator is seeded: same file
            wav, rttm = build(workdir, seconds)
        t0 = time.perf_counter()
        doc = measure(wav, workdir, args.threads, args.diarize_only)
        doc["wall_s"] = time.perf_counter() - t0
        print(f"load average {os.getloadavg()[0]:.1f} at the end of {seconds / 60:.0f} min")
        reference = rttm_turns(rttm)
        doc["der"] = der(reference, doc["turns"])
        doc["wder"], doc["words_scored"] = wder(reference, doc["words"]) if doc["words"] else (
            float("nan"), 0)
        doc["ref_speakers"] = len({s for _, _, s in reference})
        rows.append(doc)
        dur = float(doc["duration"])
        timings = doc["timings"]
        print(f"\n== {dur / 60:.0f} min: job {doc['process_s']:.0f} s, RTF "
              f"{doc['process_s'] / dur:.3f}, CPU {doc['cpu_s']:.0f} s = "
              f"{doc['cpu_s'] / dur:.3f} s per second of audio (" + ", ".join(
                  f"{k} {v / dur:.3f}" for k, v in timings.items()) + ")")
        print(f"   peak RSS {doc['peak_rss_mb']:.0f} MB, peak RssAnon {doc['peak_anon_mb']:.0f} MB;"
              " per stage (RSS, anon) MB: " + ", ".join(
                  f"{k} {v[0]}/{v[1]}" for k, v in doc["stage_peaks_mb"].items()))
        print(f"   speakers {doc['speakers']} (reference {doc['ref_speakers']}), "
              f"DER {100 * doc['der']:.1f} %, WDER {100 * doc['wder']:.1f} % "
              f"over {doc['words_scored']} words")
        sys.stdout.flush()
    if len(rows) == 2:
        short, long_ = rows
        ratio = (long_["process_s"] / long_["duration"]) / (short["process_s"] / short["duration"])
        cpu_ratio = (long_["cpu_s"] / long_["duration"]) / (short["cpu_s"] / short["duration"])
        print(f"\nRTF at {args.hours:g} h / RTF at {args.short_minutes:g} min: {ratio:.2f} "
              f"(target <= 1.2; CPU seconds per audio second: {cpu_ratio:.2f}); peak RSS at "
              f"{args.hours:g} h: {long_['peak_rss_mb'] / 1024:.2f} GB (target < 3)")


if __name__ == "__main__":
    main()
