"""Pipeline speed, side by side in one run: our job vs the bare model calls,
faster-whisper (int8 + VAD) vs openai-whisper, per-stage RTF and peak RSS.

Each configuration runs in its own subprocess, so peak RSS (ru_maxrss) is its own and
model loading is measured apart from processing. Audio: the 30 s pyannote sample and a
generated ~10 minute recording (the sample looped), both through every configuration.

    .venv/bin/python bench/pipeline.py [--minutes 10] [--threads 2] [--skip-openai]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ["PYANNOTE_METRICS_ENABLED"] = "0"


def _wav16k(src: Path) -> tuple[object, float]:
    from pipelines.audio import load_waveform, normalise

    tmp = Path(tempfile.mkdtemp()) / "n.wav"
    normalise(src, tmp)
    audio = load_waveform(tmp)
    return audio, audio.size / 16000


def child(mode: str, src: Path, threads: int, models_dir: Path) -> dict[str, object]:
    import torch

    torch.set_num_threads(threads)
    out: dict[str, object] = {"mode": mode}
    t0 = time.perf_counter()
    if mode.startswith("ours"):
        from pipelines.runner import ModelCache, RunOptions, run

        backend = "openai-whisper" if mode == "ours-openai" else "faster-whisper"
        cache = ModelCache(models_dir, keep=True, cpu_threads=threads)
        # Load first so that processing time is comparable with the bare calls.
        cache.asr(backend, "base", "int8")  # type: ignore[arg-type]
        cache.diarizer(None)
        out["load_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        result = run(src, RunOptions(backend=backend, model="base"),  # type: ignore[arg-type]
                     models=cache)
        out["process_s"] = time.perf_counter() - t1
        out["stages"] = result.timings
        out["duration"] = result.audio.duration
        out["segments"] = len(result.segments)
        out["speakers"] = len(result.diarization.speakers)
    else:
        from pipelines.models import (
            resolve_ct2_model,
            resolve_diarization_pipeline,
            resolve_openai_checkpoint,
        )

        audio, duration = _wav16k(src)
        out["duration"] = duration
        if mode == "bare-faster":
            from faster_whisper import WhisperModel
            from pyannote.audio import Pipeline

            model = WhisperModel(str(resolve_ct2_model("base", models_dir)), device="cpu",
                                 compute_type="int8", cpu_threads=threads)
            pipeline = Pipeline.from_pretrained(resolve_diarization_pipeline(None, models_dir))
            out["load_s"] = time.perf_counter() - t0
            t1 = time.perf_counter()
            segments, _ = model.transcribe(audio, beam_size=5, vad_filter=True,
                                           word_timestamps=True,
                                           condition_on_previous_text=False)
            n = len(list(segments))
            t2 = time.perf_counter()
            pipeline({"waveform": torch.from_numpy(audio)[None], "sample_rate": 16000})
            t3 = time.perf_counter()
            out["stages"] = {"transcribe": t2 - t1, "diarize": t3 - t2}
            out["process_s"] = t3 - t1
            out["segments"] = n
        elif mode == "bare-openai":
            from pipelines.convert import load_openai_checkpoint

            model = load_openai_checkpoint(resolve_openai_checkpoint("base", models_dir))
            out["load_s"] = time.perf_counter() - t0
            t1 = time.perf_counter()
            r = model.transcribe(audio, beam_size=5, word_timestamps=True, fp16=False,
                                 condition_on_previous_text=False, temperature=0.0)
            out["stages"] = {"transcribe": time.perf_counter() - t1}
            out["process_s"] = time.perf_counter() - t1
            out["segments"] = len(r["segments"])
        else:
            raise SystemExit(f"unknown mode {mode}")
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-openai", action="store_true")
    ap.add_argument("--modes", default="", help="comma-separated subset of the four modes")
    ap.add_argument("--child", nargs=2, metavar=("MODE", "AUDIO"))
    args = ap.parse_args()
    models_dir = Path(os.environ.get("SOURCEBOOK_MODELS_DIR", REPO / "models"))
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]), args.threads, models_dir)))
        return

    sample = (REPO / ".venv/lib/python3.11/site-packages/pyannote/audio/sample/sample.wav")
    tmp = Path(tempfile.mkdtemp(prefix="sb-bench-"))
    long = tmp / f"long-{args.minutes:g}min.wav"
    loops = max(1, round(args.minutes * 2))
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-stream_loop", str(loops - 1),
                    "-i", str(sample), "-c", "copy", str(long)], check=True)
    modes = ["ours-faster", "bare-faster"]
    if not args.skip_openai:
        modes += ["ours-openai", "bare-openai"]
    if args.modes:
        modes = [m for m in args.modes.split(",") if m]
    print(f"machine: {os.cpu_count()} CPUs, torch threads {args.threads}; base model, beam 5")
    for audio in (sample, long):
        rows = {}
        for mode in modes:
            res = subprocess.run([sys.executable, __file__, "--threads", str(args.threads),
                                  "--child", mode, str(audio)], capture_output=True, text=True)
            if res.returncode != 0:
                print(f"{mode} failed:\n{res.stderr[-2000:]}")
                continue
            rows[mode] = json.loads(res.stdout.strip().splitlines()[-1])
        dur = next(iter(rows.values()))["duration"]
        print(f"\n== {audio.name}: {dur:.0f} s of audio")
        header = f"{'configuration':<14} {'load s':>7} {'RTF':>6}  {'stages (RTF)':<48}"
        print(f"{header} {'peak RSS':>9}")
        for mode, r in rows.items():
            stages = " ".join(f"{k} {v / dur:.3f}" for k, v in r["stages"].items())
            print(f"{mode:<14} {r['load_s']:7.1f} {r['process_s'] / dur:6.3f}  {stages:<48} "
                  f"{r['peak_rss_mb']:7.0f} MB")
        if "ours-faster" in rows and "bare-faster" in rows:
            ours, bare = rows["ours-faster"]["process_s"], rows["bare-faster"]["process_s"]
            print("overhead of our job over the bare model calls: "
                  f"{100 * (ours / bare - 1):+.1f} %")
        if "bare-faster" in rows and "bare-openai" in rows:
            fw = rows["bare-faster"]["stages"]["transcribe"]
            ow = rows["bare-openai"]["stages"]["transcribe"]
            print(f"faster-whisper int8+VAD vs openai-whisper (ASR only): {ow / fw:.1f}x faster")
        if "ours-faster" in rows and "ours-openai" in rows:
            print(f"our pipeline, faster-whisper path vs openai-whisper path: "
                  f"{rows['ours-openai']['process_s'] / rows['ours-faster']['process_s']:.1f}x")


if __name__ == "__main__":
    main()
