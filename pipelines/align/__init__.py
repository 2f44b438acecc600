"""Forced alignment: time a GIVEN text (a correction, an imported cue) against its audio.

Whisper's cross-attention, in the heads known to follow the audio (the model's
``alignment_heads``), is read while the decoder is fed the given text; dynamic time
warping over those attention weights gives each text token the frames it was spoken
in (20 ms resolution). faster-whisper (``ctranslate2.models.Whisper.align``) and
openai-whisper (``whisper.timing.find_alignment``) both do this for their own word
timestamps; here the same machinery is fed a text the model did not produce. No new
weights: the aligner wraps the Whisper model the worker already loaded for ASR.

::

    aligner = Aligner.for_backend(models.asr("faster-whisper", "base", "int8")[0])
    result = aligner.align(window, "我们很早就决定做 MoE 架构。", start=12.3, end=17.9,
                           offset=window_start)
    result.timing      # "aligned" or "estimated"
    result.words       # frozen Words, absolute times, one per CJK character

Words are the product's words (:func:`pipelines.text.word_spans`): one per CJK
character, Latin words whole, punctuation attached to the word before. A Whisper
token covering several characters ("我们") is shared between them by character count;
a word's time runs from its first pronounced character to its last, so punctuation
(which often soaks up a pause in the attention) never stretches a word.

It says when it fails and never invents times. Each span is checked:

- ``silence``: voice activity detection (Silero, shipped with faster-whisper) finds
  (almost) no speech inside the span;
- ``not_spoken``: the text is unlikely given the audio: the mean log-probability per
  token of the text, given the audio, under the model (teacher forcing) is below
  :attr:`AlignSettings.min_log_prob` (-3.0; -3.8 for Chinese). Measured with tiny.en
  and base (bench/RESULTS.md, "Alignment"): right English text -0.04..-2.5 (human
  reference cues included), right Chinese text -0.3..-3.3 (a synthetic voice
  included); another segment's text, or half of it replaced, -3.75..-5.5; unrelated
  or other-language text -4.7..-10.6;
- ``degenerate``: the words came out crammed (more than 15 words a second), mostly
  zero-length, outside their own span in a shared window, or the text is longer than
  Whisper reads at once (440 tokens in 30 s);
- ``unsupported``: Chinese text and an English-only model;
- ``no_audio``, ``empty``: the span is not in the audio given, the text has no words.

A failed span keeps its words spread over the span by character share
(:func:`estimate_words`, the service's rule for corrections), flagged ``estimated``.

Where the times come from, and their limits:

- The warping path must start on the window's first frame and end on its last, so
  speech in a margin that is not in the text pulls the first (last) words towards it.
  Margins are therefore cut at the pause before (after) the span; where speech runs
  through the span's edge there is no pause, and the span's own edge (the ASR's or
  the cue's) bounds the window instead. The first spoken token's start is then capped
  at twice the median token duration before its end and moved to the speech onset.
- Word edges that fall in non-speech are moved onto the speech inside the word.
- Whisper reads 30 s at a time. Spans up to 30 s with their margins are aligned in
  one window; consecutive spans of one language (an import's cues) share a window
  when they fit (one encoder pass per ~30 s of audio); a longer span is aligned in
  consecutive windows: the words expected in a window are estimated from the share of
  the remaining text over the remaining *speech* (VAD), aligned, the words that end
  before the window's last 4 s are kept and the next window starts after them. A
  window that fails leaves its words estimated (the span is then "estimated") and the
  next one carries on from where they were expected to end.
- The times are as good as the model's attention: 20 ms frames; for base and tiny
  models the median distance to the ASR's own word starts is 10-20 ms, p95 about
  120 ms (80-90 ms with Whisper's full 30 s context, :attr:`AlignSettings.min_context`,
  at four times the CPU); against true turn starts and ends (the mixed fixture) the
  median is 35-40 ms, p95 about 100 ms (bench/RESULTS.md).
- Tokenisation is Whisper's own BPE (tiktoken, from openai-whisper's assets), not the
  CTranslate2 model's ``tokenizer.json``, whose merges differ for multilingual models.

Modules: :mod:`~pipelines.align.spans` (what to align, thresholds, estimates),
:mod:`~pipelines.align.engines` (tokens and attention timing per Whisper backend),
:mod:`~pipelines.align.speech` (voice activity), :mod:`~pipelines.align.timing` (token
times to word times) and :mod:`~pipelines.align.aligner` (windows, checks, results).
"""

from pipelines.align.aligner import Aligner, load_aligner
from pipelines.align.spans import (
    AUDIO_MARGIN,
    DEFAULT_MARGIN,
    MAX_WINDOW,
    AlignSettings,
    AlignSpan,
    align_language,
    estimate_words,
    window_bounds,
    word_cut,
)

__all__ = [
    "AUDIO_MARGIN",
    "DEFAULT_MARGIN",
    "MAX_WINDOW",
    "AlignSettings",
    "AlignSpan",
    "Aligner",
    "align_language",
    "estimate_words",
    "load_aligner",
    "window_bounds",
    "word_cut",
]
