"""Pipeline speed and accuracy, side by side in one run: the whole job against the ASR-only
job, our diarization against pyannote's own embedding step, and the bare model calls.

Modes (each runs in its own subprocess, so its peak RSS is its own and model loading is
measured apart from processing):
  asr-only       our job with diarization off (faster-whisper base int8 + VAD)
  ours-faster    the whole job: ASR + diarization + merge (the bundled pipeline)
  ours-before    the whole job with pyannote's SpeakerDiarization as it was before issue 18
                 (CAM++ run on every 10 s chunk, clustering unbounded): same weights
  bare-faster    faster-whisper + the pyannote pipeline called directly
  ours-openai, bare-openai   the same with openai-whisper (--openai)

Audio: the 30 s pyannote sample; a noisy variant (15 s of room noise, then the call with
the noise under it, 44.1 kHz stereo MP3); the sample looped to each of --minutes.
Whole-job modes are scored: DER against the sample's turns, WDER (bench/scoring.py)
against its transcript's speakers.

    .venv/bin/python bench/pipeline.py [--minutes 5,10] [--threads 2] [--modes ...]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
os.environ["PYANNOTE_METRICS_ENABLED"] = "0"

SAMPLE_DIR = REPO / ".venv/lib/python3.11/site-packages/pyannote/audio/sample"
SAMPLE = SAMPLE_DIR / "sample.wav"
#: Room noise under the call (pink + brown), and 15 s of it alone before the call.
NOISE_LEAD_S = 15.0
NOISE_AMPLITUDE = 0.02


def _wav16k(src: Path) -> tuple[object, float]:
    from pipelines.audio import load_waveform, normalise

    tmp = Path(tempfile.mkdtemp()) / "n.wav"
    normalise(src, tmp)
    audio = load_waveform(tmp)
    return audio, audio.size / 16000


def before_pipeline(models_dir: Path, out: Path) -> Path:
    """The bundled pipeline directory, run by pyannote's own SpeakerDiarization."""
    from pipelines.models import resolve_diarization_pipeline

    src = resolve_diarization_pipeline(None, models_dir)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for sub in ("segmentation", "embedding", "plda"):
        (out / sub).symlink_to(src / sub)
    lines = (src / "config.yaml").read_text().splitlines()
    drop = ("embedding_block:", "embedding_margin:", "max_clustered:")
    config = "\n".join(
        line.replace("pipelines.speaker_pipeline.SourcebookDiarization",
                     "pyannote.audio.pipelines.SpeakerDiarization")
        for line in lines if not line.strip().startswith(drop)
    )
    (out / "config.yaml").write_text(config + "\n")
    return out


def child(mode: str, src: Path, threads: int, models_dir: Path,
          pipeline_dir: Path | None) -> dict[str, object]:
    import torch

    torch.set_num_threads(threads)
    out: dict[str, object] = {"mode": mode}
    t0 = time.perf_counter()
    if mode in ("asr-only", "ours-faster", "ours-before", "ours-openai"):
        from pipelines.runner import ModelCache, RunOptions, run

        backend = "openai-whisper" if mode == "ours-openai" else "faster-whisper"
        diarize = mode != "asr-only"
        spec = str(pipeline_dir) if mode == "ours-before" and pipeline_dir else None
        cache = ModelCache(models_dir, keep=True, cpu_threads=threads)
        # Load first so that processing time is comparable with the bare calls.
        cache.asr(backend, "base", "int8")  # type: ignore[arg-type]
        if diarize:
            cache.diarizer(spec)
        out["load_s"] = time.perf_counter() - t0
        t1, c1 = time.perf_counter(), time.process_time()
        result = run(src, RunOptions(backend=backend, model="base",  # type: ignore[arg-type]
                                     diarize=diarize, diarization_pipeline=spec),
                     models=cache)
        out["process_s"] = time.perf_counter() - t1
        out["cpu_s"] = time.process_time() - c1
        out["stages"] = result.timings
        out["duration"] = result.audio.duration
        out["segments"] = len(result.segments)
        out["speakers"] = len(result.diarization.speakers)
        out["turns"] = [(t.start, t.end, t.speaker) for t in result.diarization.turns]
        out["words"] = [(w.start, w.end, s.speaker) for s in result.segments for w in s.words]
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
            t1, c1 = time.perf_counter(), time.process_time()
            segments, _ = model.transcribe(audio, beam_size=5, vad_filter=True,
                                           word_timestamps=True,
                                           condition_on_previous_text=False)
            n = len(list(segments))
            t2 = time.perf_counter()
            pipeline({"waveform": torch.from_numpy(audio)[None], "sample_rate": 16000})
            t3 = time.perf_counter()
            out["stages"] = {"transcribe": t2 - t1, "diarize": t3 - t2}
            out["process_s"] = t3 - t1
            out["cpu_s"] = time.process_time() - c1
            out["segments"] = n
        elif mode == "bare-openai":
            from pipelines.convert import load_openai_checkpoint

            model = load_openai_checkpoint(resolve_openai_checkpoint("base", models_dir))
            out["load_s"] = time.perf_counter() - t0
            t1, c1 = time.perf_counter(), time.process_time()
            r = model.transcribe(audio, beam_size=5, word_timestamps=True, fp16=False,
                                 condition_on_previous_text=False, temperature=0.0)
            out["stages"] = {"transcribe": time.perf_counter() - t1}
            out["process_s"] = time.perf_counter() - t1
            out["cpu_s"] = time.process_time() - c1
            out["segments"] = len(r["segments"])
        else:
            raise SystemExit(f"unknown mode {mode}")
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def noisy_call(out: Path) -> tuple[Path, float]:
    """The call behind room noise: 15 s of noise alone, then under the call. 44.1 kHz
    stereo MP3. Returns the path and the speech-to-noise ratio in dB."""
    import numpy as np
    from scoring import stm_turns

    dur = 30.0 + NOISE_LEAD_S
    noise = (f"anoisesrc=color=pink:amplitude={NOISE_AMPLITUDE}:sample_rate=44100:"
             f"duration={dur}:seed=3[p];anoisesrc=color=brown:amplitude="
             f"{2 * NOISE_AMPLITUDE}:sample_rate=44100:duration={dur}:seed=4[b]")
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(SAMPLE),
         "-filter_complex",
         f"{noise};[p][b]amix=inputs=2:normalize=0[n];"
         f"[0:a]aresample=44100,adelay={int(NOISE_LEAD_S * 1000)}:all=1[s];"
         "[n][s]amix=inputs=2:normalize=0:duration=first,"
         "aformat=channel_layouts=stereo[out]",
         "-map", "[out]", "-ar", "44100", "-ac", "2", "-c:a", "libmp3lame", "-b:a", "128k",
         str(out)],
        check=True,
    )
    audio, _ = _wav16k(out)
    x = np.asarray(audio)
    speech = np.zeros(len(x), dtype=bool)
    for a, b, _ in stm_turns(SAMPLE_DIR / "sample.stm", offset=NOISE_LEAD_S):
        speech[int(a * 16000):int(b * 16000)] = True
    lead = x[: int(NOISE_LEAD_S * 16000)]
    noise_power = float((lead**2).mean())
    speech_power = max(float((x[speech] ** 2).mean()) - noise_power, 1e-12)
    return out, 10 * float(np.log10(speech_power / noise_power))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", default="5,10", help="comma-separated looped lengths")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--openai", action="store_true", help="add the openai-whisper modes")
    ap.add_argument("--modes", default="", help="comma-separated subset of the modes")
    ap.add_argument("--no-short", action="store_true", help="skip the 30 s and noisy runs")
    ap.add_argument("--child", nargs=2, metavar=("MODE", "AUDIO"))
    ap.add_argument("--pipeline-dir", type=Path)
    args = ap.parse_args()
    models_dir = Path(os.environ.get("SOURCEBOOK_MODELS_DIR", REPO / "models"))
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]), args.threads, models_dir,
                               args.pipeline_dir)))
        return

    from scoring import der, rttm_turns, stm_turns, wder

    tmp = Path(tempfile.mkdtemp(prefix="sb-bench-"))
    before_dir = before_pipeline(models_dir, tmp / "before-pipeline")
    # (audio, reference turns, reference speakers of words)
    audios: list[tuple[Path, list, list]] = []
    if not args.no_short:
        audios.append((SAMPLE, rttm_turns(SAMPLE_DIR / "sample.rttm"),
                       stm_turns(SAMPLE_DIR / "sample.stm")))
        noisy, snr = noisy_call(tmp / "noisy-call.mp3")
        print(f"noisy variant: {NOISE_LEAD_S:g} s of room noise, then the call under it; "
              f"speech-to-noise {snr:.1f} dB; 44.1 kHz stereo MP3")
        audios.append((noisy, rttm_turns(SAMPLE_DIR / "sample.rttm", offset=NOISE_LEAD_S),
                       stm_turns(SAMPLE_DIR / "sample.stm", offset=NOISE_LEAD_S)))
    for minutes in (float(m) for m in args.minutes.split(",") if m):
        loops = max(1, round(minutes * 2))
        looped = tmp / f"sample-x{loops}-{minutes:g}min.wav"
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-stream_loop",
                        str(loops - 1), "-i", str(SAMPLE), "-c", "copy", str(looped)],
                       check=True)
        period = 30.0  # the sample's length
        audios.append((looped,
                       rttm_turns(SAMPLE_DIR / "sample.rttm", loops=loops, period=period),
                       stm_turns(SAMPLE_DIR / "sample.stm", loops=loops, period=period)))
    modes = ["asr-only", "ours-faster", "ours-before", "bare-faster"]
    if args.openai:
        modes += ["ours-openai", "bare-openai"]
    if args.modes:
        modes = [m for m in args.modes.split(",") if m]
    print(f"machine: {os.cpu_count()} CPUs, torch/CTranslate2 threads {args.threads}; "
          "base model, beam 5; load average at start "
          f"{os.getloadavg()[0]:.1f}")
    for audio, ref_turns, ref_words in audios:
        rows = {}
        for mode in modes:
            res = subprocess.run([sys.executable, __file__, "--threads", str(args.threads),
                                  "--pipeline-dir", str(before_dir), "--child", mode,
                                  str(audio)], capture_output=True, text=True)
            if res.returncode != 0:
                print(f"{mode} failed:\n{res.stderr[-2000:]}")
                continue
            rows[mode] = json.loads(res.stdout.strip().splitlines()[-1])
        if not rows:
            continue
        dur = next(iter(rows.values()))["duration"]
        print(f"\n== {audio.name}: {dur:.0f} s of audio (load average {os.getloadavg()[0]:.1f})")
        print(f"{'configuration':<13} {'load s':>6} {'RTF':>6} {'CPU s':>6}  "
              f"{'stages (RTF)':<50} {'peak RSS':>8}  {'spk':>3} {'DER':>6} {'WDER':>6}")
        for mode, r in rows.items():
            stages = " ".join(f"{k} {v / dur:.3f}" for k, v in r["stages"].items())
            score = ""
            if r.get("turns"):
                d = der(ref_turns, r["turns"])
                w, _ = wder(ref_words, r["words"])
                score = f"{r['speakers']:>3} {100 * d:5.1f}% {100 * w:5.1f}%"
            print(f"{mode:<13} {r['load_s']:6.1f} {r['process_s'] / dur:6.3f} "
                  f"{r['cpu_s']:6.1f}  {stages:<50} {r['peak_rss_mb']:6.0f} MB  {score}")
        if "asr-only" in rows:
            asr = rows["asr-only"]
            for mode in ("ours-faster", "ours-before"):
                if mode in rows:
                    r = rows[mode]
                    wall = r["process_s"] / asr["process_s"]
                    print(f"whole job / ASR-only job, {mode}: {wall:.2f} (wall), "
                          f"{r['cpu_s'] / asr['cpu_s']:.2f} (CPU)")
        if "ours-faster" in rows and "ours-before" in rows:
            a, b = rows["ours-faster"]["stages"], rows["ours-before"]["stages"]
            print(f"diarize stage, before / after: {b['diarize'] / a['diarize']:.1f}x")
        if "ours-faster" in rows and "bare-faster" in rows:
            ours, bare = rows["ours-faster"]["process_s"], rows["bare-faster"]["process_s"]
            print("overhead of our job over the bare model calls: "
                  f"{100 * (ours / bare - 1):+.1f} %")
        if "bare-faster" in rows and "bare-openai" in rows:
            fw = rows["bare-faster"]["stages"]["transcribe"]
            ow = rows["bare-openai"]["stages"]["transcribe"]
            print(f"faster-whisper int8+VAD vs openai-whisper (ASR only): {ow / fw:.1f}x faster")
        sys.stdout.flush()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
