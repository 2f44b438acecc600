"""Forced alignment (pipelines/align/): accuracy, failure detection and speed, one run.

Accuracy
  1. ASR text re-aligned: transcribe (faster-whisper int8 + VAD, as the worker does),
     then align each segment's own text over the segment (+ margin) and compare each
     word's start with the ASR's: the pyannote sample, pytest-audioeval's English and
     Chinese clips, and the generated mixed Mandarin/English fixture.
  2. Reference transcripts aligned as an import would be (cue by cue, shared windows):
     the pyannote sample's sample.stm (sentence cues; each word compared with where the
     ASR put the same word, matched by text in order) and the mixed fixture's turns
     (whose starts and ends are exact: the synthetic voice is trimmed).
  3. Failure detection: the mean token log-probability of right and wrong texts, and
     which of them the checks flag.

Speed (side by side in this one process, so the machine's load hits both alike)
  4. Aligning a 10-second segment: wall and CPU seconds (median of 5).
  5. An imported transcript vs transcribing it: the pyannote sample looped to N minutes
     is transcribed, and its ASR segments (text only, as cues with their spans) are
     aligned with ``Aligner.align_spans``; at two lengths, to show it is linear.

    .venv/bin/python bench/align.py [--minutes 10] [--threads 2] [--skip-speed]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ["PYANNOTE_METRICS_ENABLED"] = "0"

from pipelines.align import Aligner, AlignSettings, AlignSpan, window_bounds  # noqa: E402
from pipelines.asr.base import AsrOptions  # noqa: E402
from pipelines.runner import ModelCache  # noqa: E402
from pipelines.text import is_spoken, word_spans  # noqa: E402
from pipelines.types import Alignment, Transcription, Word  # noqa: E402
from tests.fixtures.timing import start_errors, starts_by_char  # noqa: E402

SR = 16_000
SITE = REPO / ".venv/lib/python3.11/site-packages"
SAMPLE = SITE / "pyannote/audio/sample"
AUDIOEVAL = SITE / "pytest_audioeval/samples/audio"


def decode(path: Path) -> np.ndarray:
    raw = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "f32le",
                          "-ac", "1", "-ar", str(SR), "-"], check=True, capture_output=True).stdout
    return np.frombuffer(raw, dtype=np.float32).copy()


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def since(t: tuple[float, float]) -> tuple[float, float]:
    return time.perf_counter() - t[0], time.process_time() - t[1]


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


# ----------------------------------------------------------------------------- accuracy


def align_window(aligner: Aligner, audio: np.ndarray, text: str, start: float, end: float,
                 language: str) -> Alignment:
    w0, w1 = window_bounds(start, end, len(audio) / SR)
    return aligner.align(audio[round(w0 * SR):round(w1 * SR)], text, start=start, end=end,
                         offset=w0, language=language)


def realign(aligner: Aligner, audio: np.ndarray, tr: Transcription,
            language: str) -> dict[str, Any]:
    errors: list[float] = []
    not_first: list[float] = []
    flagged = 0
    for seg in tr.segments:
        r = align_window(aligner, audio, seg.text.strip(), seg.start, seg.end, language)
        if r.timing != "aligned":
            flagged += 1
            continue
        a, b = starts_by_char(seg.words), starts_by_char(r.words)
        first = min(a) if a else -1
        for k in a:
            if k in b:
                errors.append(abs(b[k] - a[k]))
                if k != first:
                    not_first.append(abs(b[k] - a[k]))
    return {"segments": len(tr.segments), "flagged": flagged, "errors": errors,
            "not_first": not_first}


def realign_errors(asr: Sequence[Word], r: Alignment) -> list[float]:
    return start_errors(asr, r.words) if r.timing == "aligned" else []


def stats(errors: Sequence[float]) -> str:
    if not errors:
        return "n 0"
    e = np.asarray(errors)
    median, p95 = 1000 * np.median(e), 1000 * np.percentile(e, 95)
    return (f"n {len(e):3d}  median {median:4.0f} ms  p95 {p95:4.0f} ms  "
            f"within 0.25 s {np.mean(e <= 0.25):4.0%}")


def stm_cues() -> list[AlignSpan]:
    cues = []
    for line in (SAMPLE / "sample.stm").read_text().splitlines():
        f = line.split(" ", 5)
        cues.append(AlignSpan(f[5], float(f[3]), float(f[4]), "en"))
    return cues


def by_text_order(asr: Sequence[Word], aligned: Sequence[Word]) -> list[float]:
    """Start differences of the same words, matched by text in order (a small lookahead
    skips words one side has and the other has not)."""
    def key(w: Word) -> str:
        return "".join(ch for ch in w.text.lower() if is_spoken(ch))

    ref = [(key(w), w.start) for w in asr]
    out: list[float] = []
    j = 0
    for w in aligned:
        k = key(w)
        for jj in range(j, min(j + 6, len(ref))):
            if ref[jj][0] == k:
                out.append(abs(ref[jj][1] - w.start))
                j = jj + 1
                break
    return out


def accuracy(models: ModelCache, tmp: Path) -> dict[str, Any]:
    from tests.fixtures.mixed import build

    report: dict[str, Any] = {}
    sample = decode(SAMPLE / "sample.wav")
    en_clips = [decode(p) for p in sorted((AUDIOEVAL / "en").glob("*.wav"))]
    zh_clips = [decode(p) for p in sorted((AUDIOEVAL / "zh").glob("*.wav"))]
    wav, turns = build(tmp / "mixed")
    mixed = decode(wav)
    print("\n== 1. ASR text re-aligned over its own segment (+0.75 s margins)")
    print("   'all': every word; 'not first': without each segment's first word, whose ASR")
    print("   start is the weakest (see section 2 for ground truth)")
    for model in ("tiny.en", "base"):
        asr, _ = models.asr("faster-whisper", model, "int8")
        aligner = models.aligner("faster-whisper", model, "int8")
        sets: list[tuple[str, list[np.ndarray], str]] = [
            ("pyannote sample (en)", [sample], "en"), ("audioeval en clips", en_clips, "en")]
        if model == "base":
            sets += [("audioeval zh clips", zh_clips, "zh"), ("mixed fixture (zh/en)", [mixed],
                                                             "auto")]
        total: list[float] = []
        for name, clips, language in sets:
            errors: list[float] = []
            not_first: list[float] = []
            segs = flagged = 0
            for audio in clips:
                tr = asr.transcribe(audio, AsrOptions(language=language))
                r = realign(aligner, audio, tr, language)
                errors += r["errors"]
                not_first += r["not_first"]
                segs += r["segments"]
                flagged += r["flagged"]
            if name != "mixed fixture (zh/en)":
                total += errors
            print(f"{model:7} {name:24} segments {segs:2d} flagged {flagged}  all: {stats(errors)}")
            print(f"{'':7} {'':24} {'':20} not first: {stats(not_first)}")
            report[f"realign {model} {name}"] = {
                "all": stats(errors), "not_first": stats(not_first), "segments": segs,
                "flagged": flagged}
        print(f"{model:7} {'sample + clips':24} {'':20} all: {stats(total)}")
        report[f"realign {model} sample+clips"] = stats(total)

    print("\n== 1b. Encoder context: windows padded to 10 s (default) or to Whisper's 30 s")
    print("   ASR text re-aligned, pyannote sample + audioeval clips; CPU s of the alignments")
    for model, clips, language in (("tiny.en", [sample, *en_clips], "en"),
                                   ("base", [sample, *en_clips, *zh_clips], "auto")):
        asr, _ = models.asr("faster-whisper", model, "int8")
        shared = models.aligner("faster-whisper", model, "int8")
        trs = [(a, asr.transcribe(a, AsrOptions(language=language))) for a in clips]
        for context in (10.0, 30.0):
            aligner = shared.with_settings(AlignSettings(min_context=context))
            ctx_errors: list[float] = []
            lps: list[float] = []
            t = clock()
            for a, tr in trs:
                for seg in tr.segments:
                    al = align_window(aligner, a, seg.text.strip(), seg.start, seg.end, language)
                    ctx_errors += realign_errors(seg.words, al)
                    lps += [al.log_prob] if al.log_prob is not None else []
            _, cpu = since(t)
            print(f"   {model:7} context {context:4.0f} s: {stats(ctx_errors)}  cpu {cpu:5.1f} s  "
                  f"log-prob of right text {min(lps):.2f}..{max(lps):.2f}")
            report[f"context {model} {context:g}"] = {"stats": stats(ctx_errors),
                                                     "cpu_s": round(cpu, 1)}

    print("\n== 2. Reference transcripts aligned as imports (align_spans, shared windows)")
    for model in ("tiny.en", "base"):
        asr, _ = models.asr("faster-whisper", model, "int8")
        aligner = models.aligner("faster-whisper", model, "int8")
        tr = asr.transcribe(sample, AsrOptions(language="en"))
        results = aligner.align_spans(sample, stm_cues())
        aligned = [r for r in results if r.timing == "aligned"]
        words = [w for r in aligned for w in r.words]
        vs_asr = by_text_order(tr.words, words)
        cue_start = [abs(r.words[0].start - r.start) for r in aligned]
        print(f"{model:7} sample.stm: {len(aligned)}/{len(results)} cues aligned "
              f"{[r.failure for r in results if r.failure]}")
        print(f"{'':7}   words vs ASR words (text order): {stats(vs_asr)}")
        print(f"{'':7}   first word vs the cue's hand-marked start: {stats(cue_start)}")
        report[f"stm {model}"] = {"aligned": f"{len(aligned)}/{len(results)}",
                                  "vs_asr": stats(vs_asr), "cue_start": stats(cue_start)}
    aligner = models.aligner("faster-whisper", "base", "int8")
    t = clock()
    results = aligner.align_spans(mixed, [AlignSpan(x.text, x.start, x.end) for x in turns])
    wall, cpu = since(t)
    ok = [(r, x) for r, x in zip(results, turns, strict=True) if r.timing == "aligned"]
    first = [abs(r.words[0].start - x.start) for r, x in ok]
    last = [abs(r.words[-1].end - x.end) for r, x in ok]
    print(f"base    mixed fixture turns: {len(ok)}/{len(turns)} aligned "
          f"{[r.reason for r in results if r.reason]}")
    print(f"{'':7}   first word start vs true turn start: {stats(first)}")
    print(f"{'':7}   last word end vs true turn end:      {stats(last)}")
    asr, _ = models.asr("faster-whisper", "base", "int8")
    tr = asr.transcribe(mixed, AsrOptions(language="auto"))
    asr_first = []
    for x in turns:
        near = [w for w in tr.words if x.start - 1.5 <= w.start <= x.end]
        if near:
            asr_first.append(abs(near[0].start - x.start))
    print(f"{'':7}   (the ASR's own first word vs true turn start: {stats(asr_first)})")
    report["mixed turns"] = {"aligned": f"{len(ok)}/{len(turns)}", "first": stats(first),
                             "last": stats(last), "asr_first": stats(asr_first),
                             "wall_s": round(wall, 1), "cpu_s": round(cpu, 1)}
    # One long cue: seven turns (~54 s) as one span.
    group = turns[:7]
    text = "".join(x.text if x.language == "zh" else f" {x.text} " for x in group)
    one = aligner.align(mixed, text, start=group[0].start, end=group[-1].end)
    k = 0
    errs = []
    for x in group:
        errs.append(abs(one.words[k].start - x.start))
        k += len(word_spans(x.text))
    print(f"base    one {group[-1].end - group[0].start:.0f} s cue (7 turns): {one.timing}; "
          f"turn starts {stats(errs)}")
    report["long cue"] = {"timing": one.timing, "turn_starts": stats(errs)}
    report["failures"] = failures(models, sample, turns, mixed)
    return report


def failures(models: ModelCache, sample: np.ndarray, turns: Sequence[Any],
             mixed: np.ndarray) -> dict[str, Any]:
    """Log-probabilities of right and wrong texts, and what the checks make of them."""
    print("\n== 3. Failure detection: mean token log-probability (min..max) and flags")
    rng = np.random.default_rng(0)
    strangers = ["Purple elephants negotiate quantum tax refunds on Mars tomorrow.",
                 "The committee approved a new budget for the railway museum in Denver.",
                 "Please remember to water the tomatoes before the storm arrives."]
    zh_strangers = ["我们很早就决定做架构，因为成本和效果都更好。", "天气预报说明天会下大雨。",
                    "公司在香港上市之后，你的压力是不是更大了？"]
    out: dict[str, Any] = {}
    for model in ("tiny.en", "base"):
        asr, _ = models.asr("faster-whisper", model, "int8")
        aligner = models.aligner("faster-whisper", model, "int8")
        tr = asr.transcribe(sample, AsrOptions(language="en"))
        cases: dict[str, list[Alignment]] = {}

        def add(name: str, r: Alignment, cases: dict[str, list[Alignment]] = cases) -> None:
            cases.setdefault(name, []).append(r)

        segs = tr.segments
        for i, s in enumerate(segs):
            words = s.text.split()
            add("right: ASR text", align_window(aligner, sample, s.text, s.start, s.end, "en"))
            one = list(words)
            one[len(one) // 2] = "banana"
            add("right but one word wrong", align_window(aligner, sample, " ".join(one), s.start,
                                                         s.end, "en"))
            add("wrong: another segment's text",
                align_window(aligner, sample, segs[(i + 1) % len(segs)].text, s.start, s.end,
                             "en"))
            add("wrong: unrelated English", align_window(aligner, sample, strangers[i % 3],
                                                         s.start, s.end, "en"))
            half = words[: len(words) // 2] + strangers[i % 3].split()[: len(words) // 2]
            add("wrong: half replaced", align_window(aligner, sample, " ".join(half), s.start,
                                                     s.end, "en"))
            add("wrong: Chinese over English", align_window(aligner, sample, zh_strangers[i % 3],
                                                            s.start, s.end, "auto"))
        for c in stm_cues():
            add("right: reference cue (sample.stm)",
                align_window(aligner, sample, c.text, c.start, c.end, "en"))
        if model == "base":
            zh = [x for x in turns if x.language == "zh"]
            for i, x in enumerate(zh):
                add("right: mixed fixture turn (zh)",
                    align_window(aligner, mixed, x.text, x.start, x.end, "auto"))
                add("wrong: another zh turn's text",
                    align_window(aligner, mixed, zh[(i + 3) % len(zh)].text, x.start, x.end,
                                 "auto"))
            for p in sorted((AUDIOEVAL / "zh").glob("*.wav")):
                a = decode(p)
                ref = p.with_suffix(".txt").read_text(encoding="utf-8").strip()
                add("right: audioeval zh reference", aligner.align(a, ref, start=0,
                                                                   end=len(a) / SR))
                add("wrong: English over Chinese", aligner.align(
                    a, strangers[1], start=0, end=len(a) / SR))
        noise = (rng.standard_normal(8 * SR) * 0.01).astype(np.float32)
        for text in ("Thank you.", "Hello there, how are you?", "谢谢大家的收听。"):
            add("silence: zeros", aligner.align(np.zeros(8 * SR, np.float32), text, start=1,
                                                end=6))
            add("silence: noise", aligner.align(noise, text, start=1, end=6))
        print(f"-- {model} (flag thresholds: log-prob < -3.0 Latin, < -3.8 Chinese)")
        for name, rs in cases.items():
            lps = [r.log_prob for r in rs if r.log_prob is not None]
            flags: dict[str, int] = {}
            for r in rs:
                flags[r.failure or "aligned"] = flags.get(r.failure or "aligned", 0) + 1
            rng_s = f"{min(lps):6.2f}..{max(lps):6.2f}" if lps else "      -       "
            print(f"   {name:36} n {len(rs):2d}  log-prob {rng_s}  {flags}")
            out[f"{model} {name}"] = {"n": len(rs), "log_prob": rng_s.strip(), "flags": flags}
    return out


# ----------------------------------------------------------------------------- speed


def timed(fn: Callable[[], Any], repeat: int = 5) -> tuple[float, float, Any]:
    walls, cpus = [], []
    result = None
    for _ in range(repeat):
        t = clock()
        result = fn()
        w, c = since(t)
        walls.append(w)
        cpus.append(c)
    return float(np.median(walls)), float(np.median(cpus)), result


def speed(models: ModelCache, minutes: Sequence[float], tmp: Path) -> dict[str, Any]:
    report: dict[str, Any] = {}
    sample = decode(SAMPLE / "sample.wav")
    print(f"\n== 4. One 10-second segment (load average {load()})")
    print("   wall and CPU seconds (CPU: all threads of this process), median of 5;")
    print("   with 1 thread, CPU seconds are what an idle core would take in wall time")
    from pipelines.align import load_aligner
    from pipelines.models import resolve_ct2_model

    one_thread = {m: load_aligner(resolve_ct2_model(m, models.models_dir), cpu_threads=1)
                  for m in ("tiny.en", "base")}
    for backend, model in (("faster-whisper", "tiny.en"), ("faster-whisper", "base"),
                           ("30 s context", "tiny.en"), ("30 s context", "base"),
                           ("openai-whisper", "base"), ("1 thread", "tiny.en"),
                           ("1 thread", "base")):
        if backend == "1 thread":
            aligner = one_thread[model]
        elif backend == "30 s context":
            shared = models.aligner("faster-whisper", model, "int8")  # type: ignore[arg-type]
            aligner = shared.with_settings(AlignSettings(min_context=30.0))
        else:
            aligner = models.aligner(backend, model, "int8")  # type: ignore[arg-type]
        text = ("This is Diane in New Jersey. And I'm Sheila in Texas, originally from Chicago."
                " Oh, I'm originally from Chicago also.")
        aligner.align(sample, text, start=12.54, end=20.11)  # warm-up
        window = sample[round(9.0 * SR):round(23.0 * SR)]

        def once(a: Aligner = aligner, t: str = text, w: np.ndarray = window) -> Alignment:
            return a.align(w, t, start=12.2, end=22.2, offset=9.0)

        wall, cpu, r = timed(once)
        print(f"   {backend:15} {model:8} wall {wall:5.2f} s  cpu {cpu:5.2f} s  ({r.timing})")
        report[f"10 s segment {backend} {model}"] = {"wall_s": round(wall, 3),
                                                     "cpu_s": round(cpu, 3)}
    asr, _ = models.asr("faster-whisper", "base", "int8")
    aligner = models.aligner("faster-whisper", "base", "int8")
    print(f"\n== 5. Imported transcript vs transcription (base int8, load average {load()})")
    for m in minutes:
        long = tmp / f"sample-{m:g}min.wav"
        loops = max(1, round(m * 2))
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-stream_loop",
                        str(loops - 1), "-i", str(SAMPLE / "sample.wav"), "-c", "copy",
                        str(long)], check=True)
        audio = decode(long)
        dur = len(audio) / SR
        t = clock()
        tr = asr.transcribe(audio, AsrOptions(language="en"))
        asr_wall, asr_cpu = since(t)
        cues = [AlignSpan(s.text.strip(), s.start, s.end, "en") for s in tr.segments]
        t = clock()
        results = aligner.align_spans(audio, cues)
        al_wall, al_cpu = since(t)
        ok = sum(r.timing == "aligned" for r in results)
        print(f"   {dur / 60:5.1f} min, {len(cues)} cues: transcribe wall {asr_wall:6.1f} s "
              f"cpu {asr_cpu:6.1f} s | align wall {al_wall:6.1f} s cpu {al_cpu:6.1f} s | "
              f"ratio wall {al_wall / asr_wall:.3f} cpu {al_cpu / asr_cpu:.3f} | "
              f"align RTF {al_wall / dur:.3f} | {ok}/{len(cues)} aligned  (load {load()})")
        report[f"import {m:g} min"] = {
            "duration_s": round(dur, 1), "cues": len(cues), "aligned": ok,
            "transcribe_wall_s": round(asr_wall, 1), "transcribe_cpu_s": round(asr_cpu, 1),
            "align_wall_s": round(al_wall, 1), "align_cpu_s": round(al_cpu, 1),
            "ratio_wall": round(al_wall / asr_wall, 3), "ratio_cpu": round(al_cpu / asr_cpu, 3),
            "align_rtf": round(al_wall / dur, 4)}
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--minutes", type=float, nargs="+", default=[2.0, 10.0],
                    help="lengths of the looped sample for the import comparison")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    models_dir = Path(os.environ.get("SOURCEBOOK_MODELS_DIR", REPO / "models"))
    models = ModelCache(models_dir, keep=True, cpu_threads=args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="sb-align-"))
    print(f"machine: {os.cpu_count()} CPUs, {args.threads} threads per model; "
          f"load average at start {load()}")
    report: dict[str, Any] = {}
    if not args.skip_accuracy:
        report["accuracy"] = accuracy(models, tmp)
    if not args.skip_speed:
        report["speed"] = speed(models, args.minutes, tmp)
    print(f"\nload average at end {load()}")
    if args.json:
        args.json.write_text(json.dumps(report, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
