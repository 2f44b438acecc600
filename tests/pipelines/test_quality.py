"""Quality of the whole pipeline on real models: DER, WER and CER against references.

* the pyannote sample (30 s, two speakers, telephone English) with its RTTM and STM:
  DER <= 10 % (no collar) and WER <= 0.25 with whisper base through `runner.run`;
* a generated mixed Mandarin/English interview with three voices (tests/fixtures/mixed.py):
  the speaker count must come out right; CER (Mandarin) and WER (English) are printed
  and kept loose, since synthetic voices are not how people speak.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipelines.runner import ModelCache, RunOptions, RunResult, run
from pipelines.text import normalise_for_match
from tests.pipelines.conftest import SAMPLE_DIR

pytestmark = pytest.mark.slow

RESULTS: dict[str, float] = {}


def der(result: RunResult, rttm: Path) -> float:
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.diarization import DiarizationErrorRate

    ref = Annotation()
    for line in rttm.read_text().splitlines():
        parts = line.split()
        start, dur, spk = float(parts[3]), float(parts[4]), parts[7]
        ref[Segment(start, start + dur)] = spk
    hyp = Annotation()
    for t in result.diarization.turns:
        hyp[Segment(t.start, t.end)] = t.speaker
    return float(DiarizationErrorRate(collar=0.0)(ref, hyp))


def norm_en(text: str) -> str:
    text = re.sub(r"[^a-z0-9' ]+", " ", text.lower())
    return " ".join(text.split())


@pytest.fixture(scope="module")
def models(models_dir: Path) -> ModelCache:
    return ModelCache(models_dir, keep=True)


def test_sample_der_and_wer_with_base(models: ModelCache) -> None:
    import jiwer

    result = run(SAMPLE_DIR / "sample.wav", RunOptions(model="base", language="en"),
                 models=models)
    d = der(result, SAMPLE_DIR / "sample.rttm")
    ref = " ".join(line.split(maxsplit=5)[5] for line in
                   (SAMPLE_DIR / "sample.stm").read_text().splitlines() if line.strip())
    hyp = " ".join(s.text for s in result.segments)
    wer = jiwer.wer(norm_en(ref), norm_en(hyp))
    print(f"\nsample: DER {d:.3f}  WER {wer:.3f}  timings {result.timings}")
    assert len(result.diarization.speakers) == 2
    assert d <= 0.10
    assert wer <= 0.25
    # Every word sits inside its segment; segments are ordered and single-speaker.
    last_end = 0.0
    for seg in result.segments:
        assert seg.start >= last_end - 1e-6
        last_end = seg.end
        assert all(seg.start - 1e-6 <= w.start <= w.end <= seg.end + 1e-6 for w in seg.words)


def test_mixed_mandarin_english_three_voices(models: ModelCache, tmp_path: Path) -> None:
    import jiwer

    from tests.fixtures.mixed import build

    wav, turns = build(tmp_path)
    # "auto": faster-whisper then detects the language per segment (mixed interviews).
    result = run(wav, RunOptions(model="base", language="auto"), models=models)
    found = len(result.diarization.speakers)
    d = der(result, tmp_path / "mixed.rttm")
    # Hypothesis words are matched to reference turns by time (word midpoint inside the
    # turn), so each language is scored on what was said in it, whatever the detector said.
    words = [w for seg in result.segments for w in seg.words]

    def said_in(turn) -> str:
        from pipelines.text import join_tokens

        return join_tokens(w.text for w in words if turn.start - 0.3 <= (w.start + w.end) / 2
                           <= turn.end + 0.3)

    zh_turns = [t for t in turns if t.language == "zh"]
    en_turns = [t for t in turns if t.language == "en"]
    cer = jiwer.cer("".join(normalise_for_match(t.text) for t in zh_turns),
                    "".join(normalise_for_match(said_in(t)) for t in zh_turns))
    wer = jiwer.wer(norm_en(" ".join(t.text for t in en_turns)),
                    norm_en(" ".join(said_in(t) for t in en_turns)))
    report = {"duration_s": turns[-1].end, "speakers_found": found, "der": round(d, 3),
              "cer_zh": round(cer, 3), "wer_en": round(wer, 3), "timings": result.timings}
    print("\nmixed fixture:", json.dumps(report))
    assert found == 3, report
    # English turns come through well; espeak's pinyin Mandarin is barely intelligible
    # (even to people), so the Mandarin CER is reported, not held to a target.
    assert wer < 0.5, report
