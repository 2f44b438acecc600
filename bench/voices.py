"""Voice recognition: calibration on real speech, held-out accuracy, matching cost.

Builds a labelled set from what is available offline (generated under bench/out/voices/,
never committed), embeds it the way production does, and prints the tables of
bench/RESULTS.md "Voices":

- the pyannote sample (30 s, two people on a phone line, reference turns in sample.rttm)
  split into two halves at 18.0 s (A: 0-18 s, B: 18-30 s; each person talks 5-7 s in
  each), each half re-encoded 7 ways (clean, phone band 300-3400 Hz at 8 kHz mu-law, MP3
  24 kbit/s, MP3 44.1 kHz stereo, pink noise at 20/10/5 dB SNR), each DIARIZED like an
  upload (normalise -> diarize): the labels' centroids are what production compares.
  Labels are mapped to the reference speakers by overlap with the RTTM;
- single-speaker pieces of 1.5-3.5 s cut from those halves at reference turns (where only
  one person talks), embedded with pipelines.voices.embed_labels: short, so harder;
- impostors of unknown identity: pytest-audioeval's clips (1-4.5 s, 9 languages; who speaks
  them is not documented, so they are only compared with the pyannote speakers, never with
  each other), clean and phone band, embedded whole;
- espeak-ng voices (formant synthesis, 12 voices x 2 texts, clean and phone band),
  diarized: impostors against the real speakers, and, reported apart, same-voice pairs
  across texts (synthetic voices are unrealistically consistent).

    .venv/bin/python bench/voices.py [--rebuild] [--skip-timing]

The first run takes 20-40 minutes on 2 cores (about 70 diarizations); later runs read
bench/out/voices/embeddings.json. To re-tune on your own interviews, see "How to re-tune"
in bench/RESULTS.md (pipelines.voices.calibrate over named recordings).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ["PYANNOTE_METRICS_ENABLED"] = "0"

from pipelines.voices import (  # noqa: E402
    AUTO_APPLY_THRESHOLD,
    MARGIN,
    THRESHOLD,
    Calibration,
    Distribution,
    LabelledEmbedding,
    calibrate,
    equal_error_rate,
    match,
    operating_point,
    pair_scores,
    unit,
)

OUT = REPO / "bench" / "out" / "voices"
SITE = REPO / ".venv" / "lib" / "python3.11" / "site-packages"
SAMPLE = SITE / "pyannote" / "audio" / "sample"
AUDIOEVAL = SITE / "pytest_audioeval" / "samples" / "audio"
SPLIT = 18.0
HALVES = {"A": (0.0, SPLIT), "B": (SPLIT, 30.0)}
# Reference turns where one person talks alone (sample.rttm), 1.5-3.5 s each.
PIECES = {
    "speaker90": [(8.32, 10.02), (11.03, 14.49), (18.59, 21.49)],
    "speaker91": [(14.70, 17.92), (21.78, 24.80), (24.80, 27.85)],
}
CONDITIONS = ("clean", "phone8k", "mp3-24k", "mp3-44k-stereo", "snr20", "snr10", "snr5")
ESPEAK_VOICES = (
    "en-us+m1", "en-us+m3", "en-us+m5", "en-gb+m7", "en-us+f2", "en-us+f4",
    "en-gb-scotland+m2", "en-us+croak", "en-us+klatt", "en-us+Andy",
    "cmn-latn-pinyin+m3", "cmn-latn-pinyin+f2",
)
ESPEAK_TEXTS = {
    "en": (
        "We started the company in a small office above a noodle shop, and for the first "
        "year nobody believed the models would ever be good enough.",
        "The board met again on Thursday. Investors wanted a product by the summer, but the "
        "research team asked for six more months of training.",
    ),
    "cmn": (
        "我们当时在一个很小的办公室里开始创业，第一年几乎没有人相信这些模型会变得足够好。",
        "董事会星期四又开了一次会，投资人希望夏天就能看到产品，但是研究团队还想再训练六个月。",
    ),
}


# --------------------------------------------------------------------------- audio


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n)
    freqs[0] = freqs[1]
    noise = np.fft.irfft(spectrum / np.sqrt(freqs), n)
    return noise / np.sqrt(np.mean(noise**2))


def speech_rms(x: np.ndarray, rate: int = 16000) -> float:
    """RMS over the louder half of 20 ms frames: the speech, not the pauses."""
    frame = rate // 50
    n = x.size // frame
    energy = np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1)
    loud = energy[energy >= np.median(energy)]
    return float(np.sqrt(np.mean(loud)))


def encode(src_wav: Path, condition: str, out_dir: Path, seed: int = 0) -> Path:
    """``src_wav`` (16 kHz mono) re-encoded under ``condition``; the file an upload would be."""
    from pipelines.audio import load_waveform

    stem = f"{src_wav.stem}.{condition}"
    if condition == "clean":
        dst = out_dir / f"{stem}.wav"
        ffmpeg("-i", str(src_wav), "-c:a", "pcm_s16le", str(dst))
    elif condition == "phone8k":
        dst = out_dir / f"{stem}.wav"
        ffmpeg("-i", str(src_wav), "-af", "highpass=f=300,lowpass=f=3400",
               "-ar", "8000", "-c:a", "pcm_mulaw", str(dst))
    elif condition == "mp3-24k":
        dst = out_dir / f"{stem}.mp3"
        ffmpeg("-i", str(src_wav), "-ac", "1", "-c:a", "libmp3lame", "-b:a", "24k", str(dst))
    elif condition == "mp3-44k-stereo":
        dst = out_dir / f"{stem}.mp3"
        ffmpeg("-i", str(src_wav), "-ar", "44100", "-ac", "2", "-c:a", "libmp3lame",
               "-b:a", "128k", str(dst))
    elif condition.startswith("snr"):
        snr = float(condition[3:])
        x = load_waveform(src_wav).astype(np.float64)
        rng = np.random.default_rng(seed)
        noise = pink_noise(x.size, rng) * speech_rms(x) / 10 ** (snr / 20)
        y = x + noise
        y /= max(1.0, float(np.max(np.abs(y))) / 0.99)
        dst = out_dir / f"{stem}.wav"
        _write_wav(dst, (y * 32767).astype("<i2").tobytes())
    else:
        raise ValueError(condition)
    return dst


def _write_wav(path: Path, pcm: bytes) -> None:
    import wave

    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm)


def upload(path: Path) -> np.ndarray:
    """What the worker does with an upload: normalise to 16 kHz mono, load."""
    from pipelines.audio import load_waveform, normalise

    norm = path.with_suffix(path.suffix + ".norm.wav")
    normalise(path, norm)
    return load_waveform(norm)


def reference_turns(start: float, end: float) -> list[tuple[float, float, str]]:
    turns = []
    for line in (SAMPLE / "sample.rttm").read_text().splitlines():
        f = line.split()
        t0, t1, spk = float(f[3]), float(f[3]) + float(f[4]), f[7]
        lo, hi = max(t0, start), min(t1, end)
        if hi > lo:
            turns.append((lo - start, hi - start, spk))
    return turns


def overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


# --------------------------------------------------------------------------- build


def build() -> list[dict[str, Any]]:
    import torch

    from pipelines.diarize import load_diarizer
    from pipelines.models import resolve_diarization_pipeline
    from pipelines.types import SpeakerTurn
    from pipelines.voices import embed_labels, embedder_from_diarizer

    torch.set_num_threads(2)
    audio_dir = OUT / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    diarizer = load_diarizer(resolve_diarization_pipeline(None, REPO / "models"))
    embedder = embedder_from_diarizer(diarizer)
    records: list[dict[str, Any]] = []

    def vec(v: Any) -> list[float] | None:
        a = np.asarray(v, dtype=np.float64)
        return [round(float(x), 6) for x in a] if np.all(np.isfinite(a)) else None

    # 1. halves of the pyannote sample, diarized; 2. single-speaker pieces, embedded.
    for half, (h0, h1) in HALVES.items():
        src = audio_dir / f"half{half}.wav"
        ffmpeg("-ss", str(h0), "-t", str(h1 - h0), "-i", str(SAMPLE / "sample.wav"),
               "-ar", "16000", "-ac", "1", "-c:a", "pcm_s16le", str(src))
        ref = reference_turns(h0, h1)
        for ci, cond in enumerate(CONDITIONS):
            wave = upload(encode(src, cond, audio_dir, seed=ci))
            t = time.perf_counter()
            result = diarizer.diarize(wave)
            elapsed = time.perf_counter() - t
            recomputed = embed_labels(embedder, wave, result.turns)
            for label in result.speakers:
                own = [(x.start, x.end) for x in result.turns if x.speaker == label]
                speech = sum(e - s for s, e in own)
                by_ref: dict[str, float] = {}
                for r0, r1, spk in ref:
                    by_ref[spk] = by_ref.get(spk, 0.0) + sum(overlap(s, e, r0, r1) for s, e in own)
                truth = max(by_ref, key=lambda k: by_ref[k]) if by_ref else None
                purity = by_ref.get(truth, 0.0) / speech if truth and speech else 0.0
                centroid = result.embeddings.get(label)
                rec = recomputed.get(label)
                records.append({
                    "kind": "half", "content": half, "condition": cond, "label": label,
                    "speaker": truth, "purity": round(purity, 3), "speech_s": round(speech, 2),
                    "labels_in_recording": len(result.speakers), "diarize_s": round(elapsed, 2),
                    "embedding": vec(centroid) if centroid is not None else None,
                    "recomputed": vec(rec) if rec is not None else None,
                    "turns": [(x.start, x.end) for x in result.turns if x.speaker == label],
                })
            print(f"half {half} {cond}: {len(result.speakers)} labels", flush=True)
            for spk, spans in PIECES.items():
                for p0, p1 in spans:
                    if not (h0 <= p0 and p1 <= h1):
                        continue
                    turn = SpeakerTurn(start=p0 - h0, end=p1 - h0, speaker=spk)
                    emb = embed_labels(embedder, wave, [turn])[spk]
                    records.append({
                        "kind": "piece", "content": f"{spk}@{p0:.2f}", "condition": cond,
                        "label": spk, "speaker": spk, "speech_s": round(p1 - p0, 2),
                        "embedding": vec(emb) if emb is not None else None,
                    })

    # 3. pytest-audioeval clips: unknown speakers, embedded whole.
    for clip in sorted(AUDIOEVAL.glob("*/*.wav")):
        name = f"{clip.parent.name}/{clip.stem}"
        for ci, cond in enumerate(("clean", "phone8k")):
            tmp = audio_dir / f"ae-{clip.parent.name}-{clip.stem}.wav"
            ffmpeg("-i", str(clip), "-ar", "16000", "-ac", "1", "-c:a", "pcm_s16le", str(tmp))
            wave = upload(encode(tmp, cond, audio_dir, seed=ci))
            turn = SpeakerTurn(start=0.0, end=wave.size / 16000, speaker="clip")
            emb = embed_labels(embedder, wave, [turn])["clip"]
            if emb is None:
                # Under 2 s of speech embed_labels refuses (as pyannote would); embed the
                # whole clip anyway: as an impostor, a short clip is the harder case.
                n = min(wave.size, 160000)
                padded = np.zeros((1, 160000), np.float32)
                padded[0, :n] = wave[:n]
                mask = np.zeros((1, 1000), np.float32)
                mask[0, : n // 160] = 1.0
                emb = np.asarray(embedder(padded, mask))[0]
            records.append({
                "kind": "audioeval", "content": name, "condition": cond, "label": "clip",
                "speaker": None, "speech_s": round(wave.size / 16000, 2),
                "embedding": vec(emb),
            })
        print(f"audioeval {name}", flush=True)

    # 4. espeak-ng voices, diarized.
    for voice in ESPEAK_VOICES:
        lang = "cmn" if voice.startswith("cmn") else "en"
        for ti, text in enumerate(ESPEAK_TEXTS[lang]):
            if lang == "cmn":
                # Debian's cmn dictionary spells out many characters as code points:
                # read tone-numbered pinyin instead (as tests/fixtures/mixed.py does).
                from pypinyin import Style, lazy_pinyin

                text = " ".join(lazy_pinyin(text, style=Style.TONE3,
                                            neutral_tone_with_five=True))
            raw = audio_dir / f"espeak-{voice}-{ti}.raw.wav"
            subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True)
            src = audio_dir / f"espeak-{voice}-{ti}.wav"
            ffmpeg("-i", str(raw), "-ar", "16000", "-ac", "1", "-c:a", "pcm_s16le", str(src))
            for ci, cond in enumerate(("clean", "phone8k")):
                wave = upload(encode(src, cond, audio_dir, seed=ci))
                result = diarizer.diarize(wave)
                speech = {
                    lb: sum(t.end - t.start for t in result.turns if t.speaker == lb)
                    for lb in result.speakers
                }
                if not speech:
                    continue
                label = max(speech, key=lambda k: speech[k])
                emb = result.embeddings.get(label)
                records.append({
                    "kind": "espeak", "content": f"{voice}#{ti}", "condition": cond,
                    "label": label, "speaker": f"espeak:{voice}",
                    "labels_in_recording": len(result.speakers),
                    "speech_s": round(speech[label], 2),
                    "embedding": vec(emb) if emb is not None else None,
                })
        print(f"espeak {voice}", flush=True)

    (OUT / "embeddings.json").write_text(json.dumps(records), encoding="utf-8")
    return records


# --------------------------------------------------------------------------- report


def samples(records: list[dict[str, Any]], *, kinds: set[str],
            unknown: set[str] = frozenset(), min_purity: float = 0.8) -> list[LabelledEmbedding]:
    """Labelled embeddings of the given kinds; kinds in ``unknown`` lose their identity
    (impostors only: compared with known speakers, never with each other)."""
    out = []
    for r in records:
        if r["kind"] not in kinds or r["embedding"] is None:
            continue
        if r["kind"] == "half" and (r["speaker"] is None or r["purity"] < min_purity):
            continue
        speaker = None if r["kind"] in unknown or r["speaker"] is None else r["speaker"]
        recording = f"{r['kind']}:{r['content']}" if speaker is not None else \
            f"{r['kind']}:{r['content']}:{r['condition']}"
        out.append(LabelledEmbedding(speaker, recording, tuple(r["embedding"])))
    return out


def fmt_dist(name: str, d: Distribution) -> str:
    return (f"| {name} | {d.count} | {d.min:.3f} | {d.p1:.3f} | {d.p5:.3f} | {d.median:.3f} | "
            f"{d.p95:.3f} | {d.p99:.3f} | {d.max:.3f} |")


def print_calibration(title: str, cal: Calibration) -> None:
    print(f"\n### {title}\n")
    print("| pairs | n | min | p1 | p5 | median | p95 | p99 | max |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(fmt_dist("same speaker", cal.same))
    print(fmt_dist("different speakers", cal.different))
    print()
    print("| point | threshold | FAR | FRR |")
    print("|---|---|---|---|")
    for name, p in (("EER", cal.eer), ("suggest", cal.suggest), ("auto-apply", cal.auto_apply)):
        print(f"| {name} | {p.threshold:.3f} | {p.far:.4f} | {p.frr:.4f} |")
    i = cal.identification
    print(f"\nEER {100 * (cal.eer.far + cal.eer.frr) / 2:.2f} %; margin {cal.margin:.3f}")
    print(f"identification at the suggestion threshold and margin: {i.trials} labels of known "
          f"speakers: {i.correct} right, {i.wrong} wrong, {i.unsuggested} without suggestion; "
          f"{i.impostor_trials} impostor labels: {i.impostor_suggested} suggested; "
          f"lead of right best guesses over threshold: min {i.correct_gaps.min:.3f}, median "
          f"{i.correct_gaps.median:.3f}; wrong best guesses over threshold: {i.wrong_gaps.count}"
          f" (largest lead {i.wrong_gaps.max:.3f})")


def at_fixed(title: str, same: np.ndarray, diff: np.ndarray) -> None:
    print(f"\n{title}: n_same={same.size} n_diff={diff.size}")
    for t in (THRESHOLD, AUTO_APPLY_THRESHOLD):
        p = operating_point(same, diff, t)
        print(f"  at {t:.2f}: FAR {p.far:.4f} FRR {p.frr:.4f}")
    if same.size and diff.size:
        e = equal_error_rate(same, diff)
        print(f"  EER {100 * (e.far + e.frr) / 2:.2f} % at {e.threshold:.3f}")


def heldout(records: list[dict[str, Any]]) -> None:
    """Name both voices from half A (clean), recognise half B's labels in every condition."""
    named = {
        r["speaker"]: np.array([r["embedding"]])
        for r in records
        if r["kind"] == "half" and r["content"] == "A" and r["condition"] == "clean"
        and r["embedding"] is not None and r["purity"] >= 0.8
    }
    print("\n### Held-out recognition: voices named in half A (clean), half B re-encoded\n")
    print("| half B as | label -> truth | suggestion | similarity | right |")
    print("|---|---|---|---|---|")
    total = right = 0
    for cond in CONDITIONS:
        rows = [r for r in records if r["kind"] == "half" and r["content"] == "B"
                and r["condition"] == cond and r["embedding"] is not None]
        got = match({r["label"]: r["embedding"] for r in rows}, named)
        for r in rows:
            s = got[r["label"]]
            ok = s is not None and s.person_id == r["speaker"]
            total += 1
            right += ok
            print(f"| {cond} | {r['label']} -> {r['speaker']} | "
                  f"{s.person_id if s else '-'} | {s.similarity:.3f} |"
                  f" {'yes' if ok else 'NO'} |" if s else
                  f"| {cond} | {r['label']} -> {r['speaker']} | none | - | NO |")
    print(f"\n{right}/{total} labels suggested correctly, 0 wrong expected")
    # Both directions, every condition of the enrolment half x every condition of the probe.
    outcomes = {"right": 0, "wrong": 0, "none": 0}
    for a_cond in CONDITIONS:
        for probe_half, enrol_half in (("A", "B"), ("B", "A")):
            prints = {
                r["speaker"]: np.array([r["embedding"]]) for r in records
                if r["kind"] == "half" and r["content"] == enrol_half
                and r["condition"] == a_cond and r["embedding"] is not None and r["purity"] >= .8
            }
            for b_cond in CONDITIONS:
                rows = [r for r in records if r["kind"] == "half" and r["content"] == probe_half
                        and r["condition"] == b_cond and r["embedding"] is not None]
                got = match({r["label"]: r["embedding"] for r in rows}, prints)
                for r in rows:
                    s = got[r["label"]]
                    key = "none" if s is None else ("right" if s.person_id == r["speaker"]
                                                    else "wrong")
                    outcomes[key] += 1
    print(f"all 7x7 conditions, both directions: {outcomes}")


def impostor_check(records: list[dict[str, Any]]) -> None:
    """Voiceprints of both real speakers (every condition of half A): is any impostor
    label suggested as one of them?"""
    prints: dict[str, list[list[float]]] = {}
    for r in records:
        if r["kind"] == "half" and r["content"] == "A" and r["embedding"] and r["purity"] >= .8:
            prints.setdefault(r["speaker"], []).append(r["embedding"])
    pv = {k: np.array(v[:8]) for k, v in prints.items()}
    n = wrong = 0
    for r in records:
        if r["kind"] in ("espeak", "audioeval") and r["embedding"] is not None:
            n += 1
            s = match({"x": r["embedding"]}, pv)["x"]
            wrong += s is not None
    print(f"\nimpostor labels against both real voiceprints (7 samples each): "
          f"{wrong}/{n} suggested (want 0)")


def scoring_comparison(records: list[dict[str, Any]]) -> None:
    """max vs top-2 mean with multi-sample voiceprints (all 7 conditions of the other half)."""
    print("\n### Person score: max vs mean of top 2 "
          "(voiceprint = 7 conditions of the other half)\n")
    print("| scoring | true person: min / median | other people and impostors: max / p99 |"
          " EER |")
    print("|---|---|---|---|")
    from pipelines.voices import score_table

    for scoring in ("max", "top2"):
        true_s, false_s = [], []
        for probe_half, enrol_half in (("A", "B"), ("B", "A")):
            prints: dict[str, list[list[float]]] = {}
            for r in records:
                if r["kind"] == "half" and r["content"] == enrol_half and r["embedding"] \
                        and r["purity"] >= .8:
                    prints.setdefault(r["speaker"], []).append(r["embedding"])
            for r in records:
                if r["embedding"] is None:
                    continue
                if r["kind"] == "half" and r["content"] == probe_half and r["purity"] >= .8:
                    truth = r["speaker"]
                elif r["kind"] in ("espeak", "audioeval"):
                    truth = None
                else:
                    continue
                table = score_table({"x": r["embedding"]}, prints, scoring=scoring)  # type: ignore[arg-type]
                for person, s in zip(table.people, table.scores[0], strict=True):
                    (true_s if person == truth else false_s).append(float(s))
        t, f = np.array(true_s), np.array(false_s)
        e = equal_error_rate(t, f)
        print(f"| {scoring} | {t.min():.3f} / {np.median(t):.3f} | {f.max():.3f} / "
              f"{np.percentile(f, 99):.3f} | {100 * (e.far + e.frr) / 2:.2f} % |")


def recompute_agreement(records: list[dict[str, Any]]) -> None:
    cos = []
    for r in records:
        if r["kind"] == "half" and r["embedding"] and r.get("recomputed"):
            a, b = unit(r["embedding"]), unit(r["recomputed"])
            if a is not None and b is not None:
                cos.append(float(a @ b))
    d = Distribution.of(cos)
    print(f"\nrecomputed (embed_labels) vs pyannote centroid, {d.count} labels: "
          f"cosine min {d.min:.4f} median {d.median:.4f}")


def _median_ms(f: Any, n: int = 50) -> tuple[float, float]:
    f()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times)), 1000 * max(times)


def timing(records: list[dict[str, Any]]) -> None:
    import torch

    from pipelines.diarize import load_diarizer
    from pipelines.models import resolve_diarization_pipeline
    from pipelines.runner import ModelCache, RunOptions, run
    from pipelines.types import SpeakerTurn
    from pipelines.voices import (
        MAX_WINDOWS,
        Voiceprints,
        embed_labels,
        embedder_from_diarizer,
        enrol,
    )

    torch.set_num_threads(2)
    print(f"\n### Cost (load average {os.getloadavg()[0]:.1f} at start)\n")
    rng = np.random.default_rng(1)
    prints: dict[int, np.ndarray] = {i: rng.standard_normal((8, 192)) for i in range(1000)}
    labels = {r["label"]: r["embedding"] for r in records
              if r["kind"] == "half" and r["content"] == "B" and r["condition"] == "clean"}
    stacked = Voiceprints.of(prints)
    med, worst = _median_ms(lambda: match(labels, stacked))
    print(f"match {len(labels)} labels against 1 000 people x 8 samples, stacked once "
          f"(Voiceprints.of): median {med:.2f} ms, max {worst:.2f} ms")
    med, worst = _median_ms(lambda: match(labels, prints))
    print(f"the same from a dict of arrays (stacked on every call): median {med:.2f} ms, "
          f"max {worst:.2f} ms")
    stored = {i: [[float(x) for x in row] for row in m] for i, m in prints.items()}
    med, _ = _median_ms(lambda: Voiceprints.of(stored), n=5)
    print(f"Voiceprints.of from stored lists of floats (as JSON gives them): {med:.1f} ms")
    full = [(f"r{k}", [float(x) for x in row]) for k, row in enumerate(prints[0])]
    med, _ = _median_ms(lambda: enrol(full, "new", rng.standard_normal(192)), n=20)
    print(f"enrol into a full voiceprint (8 samples): {med:.2f} ms")

    # A job on the 30 s sample, and recognition's share of it.
    cache = ModelCache(REPO / "models", keep=True, cpu_threads=2)
    cache.asr("faster-whisper", "base", "int8")  # type: ignore[arg-type]
    cache.diarizer(None)
    t = time.perf_counter()
    result = run(SAMPLE / "sample.wav",
                 RunOptions(backend="faster-whisper", model="base"),  # type: ignore[arg-type]
                 models=cache)
    job_s = time.perf_counter() - t
    rtf = job_s / 30.0
    t = time.perf_counter()
    match(dict(result.diarization.embeddings), Voiceprints.of(prints))
    match_s = time.perf_counter() - t
    print(f"job on sample.wav (30 s, faster-whisper base int8 + diarization): {job_s:.2f} s, "
          f"RTF {rtf:.2f} (stages: "
          f"{json.dumps({k: round(v, 2) for k, v in result.timings.items()})})")
    print(f"recognition after a job (stack 1 000 voiceprints + match; the embeddings come "
          f"with diarization): {1000 * match_s:.1f} ms = {100 * match_s / job_s:.2f} % of the job")

    diarizer = load_diarizer(resolve_diarization_pipeline(None, REPO / "models"))
    from pipelines.audio import load_waveform, normalise

    norm = OUT / "audio" / "sample.norm.wav"
    normalise(SAMPLE / "sample.wav", norm)
    wave = load_waveform(norm)
    embedder = embedder_from_diarizer(diarizer)
    turns = result.diarization.turns
    first = sorted({x.speaker for x in turns})[0]
    embed_labels(embedder, wave, turns, labels=[first])  # warm
    # What naming one label of a recording stored before embeddings costs, once.
    print("\n| recording | recompute one label's embedding | share of that recording's job |")
    print("|---|---|---|")
    for minutes in (0.5, 10, 60):
        reps = round(minutes * 2)
        long_wave = np.tile(wave, reps)
        long_turns = [SpeakerTurn(x.start + 30.0 * i, x.end + 30.0 * i, x.speaker)
                      for i in range(reps) for x in turns]
        t = time.perf_counter()
        embed_labels(embedder, long_wave, long_turns, labels=[first])
        took = time.perf_counter() - t
        est_job = rtf * 60 * minutes
        print(f"| {minutes:g} min{' (the sample)' if reps == 1 else ' (sample repeated)'} | "
              f"{took:.2f} s (at most {MAX_WINDOWS} windows of 10 s) | "
              f"{100 * took / est_job:.1f} % of {est_job:.0f} s |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rebuild", action="store_true", help="regenerate audio and embeddings")
    ap.add_argument("--skip-timing", action="store_true")
    args = ap.parse_args()
    cache = OUT / "embeddings.json"
    if args.rebuild or not cache.is_file():
        t = time.perf_counter()
        records = build()
        print(f"built in {time.perf_counter() - t:.0f} s")
    else:
        records = json.loads(cache.read_text(encoding="utf-8"))

    halves = [r for r in records if r["kind"] == "half"]
    print("## Labelled set\n")
    print(f"halves diarized: {len({(r['content'], r['condition']) for r in halves})}; labels "
          f"{len(halves)} (purity >= 0.8: {sum(r['purity'] >= 0.8 for r in halves)}); "
          f"labels per recording: "
          f"{sorted({(r['content'], r['condition'], r['labels_in_recording']) for r in halves})}")
    print(f"pieces: {sum(r['kind'] == 'piece' for r in records)}, audioeval clips: "
          f"{sum(r['kind'] == 'audioeval' for r in records)}, espeak labels: "
          f"{sum(r['kind'] == 'espeak' for r in records)}")
    recompute_agreement(records)

    main_set = samples(records, kinds={"half", "audioeval", "espeak"},
                       unknown={"audioeval", "espeak"})
    cal = calibrate(main_set)
    print_calibration("Calibration (production path: diarized halves' label centroids; "
                      "impostors: audioeval + espeak)", cal)
    chosen = (cal.suggest.threshold, cal.margin, cal.auto_apply.threshold)
    shipped = (THRESHOLD, MARGIN, AUTO_APPLY_THRESHOLD)
    print(f"\nchosen (threshold, margin, auto-apply) = {chosen}; "
          f"pipelines/voices/matching.py ships {shipped}"
          f"{'' if np.allclose(chosen, shipped) else '  <-- DIFFERENT: update it'}")

    # Subsets, at the chosen constants.
    real = samples(records, kinds={"half"})
    s, d = pair_scores(real)
    at_fixed("real vs real only (the two pyannote speakers, same phone line)", s, d)
    only_ae = samples(records, kinds={"half", "audioeval"}, unknown={"audioeval"})
    _, d_ae = pair_scores(only_ae)
    at_fixed("impostors: audioeval clips", s, np.setdiff1d(d_ae, d))
    only_es = samples(records, kinds={"half", "espeak"}, unknown={"espeak"})
    _, d_es = pair_scores(only_es)
    at_fixed("impostors: espeak voices", s, np.setdiff1d(d_es, d))
    pieces = samples(records, kinds={"piece", "audioeval", "espeak"},
                     unknown={"audioeval", "espeak"})
    print_calibration("Short pieces (1.5-3.5 s, reference turns, embed_labels)",
                      calibrate(pieces))
    synth = samples(records, kinds={"espeak"})
    s_syn, d_syn = pair_scores(synth)
    print("\n### espeak-ng voices among themselves (synthetic; reported apart)\n")
    print("| pairs | n | min | p1 | p5 | median | p95 | p99 | max |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(fmt_dist("same voice, other text", Distribution.of(s_syn)))
    print(fmt_dist("different voices", Distribution.of(d_syn)))

    scoring_comparison(records)
    heldout(records)
    impostor_check(records)
    if not args.skip_timing:
        timing(records)


if __name__ == "__main__":
    main()
