"""Probe, validate and normalise media with ffmpeg.

Every ffmpeg call gets an argument list (never a shell string) and every path goes in
as ``file:/absolute/path``, so a file named ``-i`` or ``http:x`` is only ever a file.
Audio streams through ffmpeg; nothing here holds a whole recording in memory except
:func:`load_waveform`, which a model needs anyway.

A user's file is untrusted, and some ffmpeg formats are made of references: an HLS
playlist or a concat list names other files or URLs, and ffmpeg follows them (a 112-byte
``.m3u8`` naming another recording's stored path once made that recording readable to
its uploader). So no demuxer ffmpeg would pick by itself ever reads a user's file:

1. :func:`detect_demuxer` lets ffmpeg look at the content with an empty format
   whitelist. It probes the first bytes, names the demuxer it would use, and stops before
   that demuxer reads anything (``Format not on whitelist``). Only names in
   :data:`ALLOWED_DEMUXERS` go on; everything else is refused.
2. Every later ffprobe/ffmpeg call forces that demuxer (``-f``), allows only the
   ``file`` protocol for the input, and for mov/mp4 keeps external data references off
   (:func:`_input_args`).

Modules: :mod:`~pipelines.audio.tools` (the binaries, error messages),
:mod:`~pipelines.audio.demuxers` (the allow-list and detection), :mod:`~pipelines.audio.probe`
(probe, check_decodable), :mod:`~pipelines.audio.normalise` and :mod:`~pipelines.audio.wav`
(reading normalised audio).
"""

from pipelines.audio.demuxers import ALLOWED_DEMUXERS, detect_demuxer
from pipelines.audio.normalise import SILENCE_DBFS, normalise
from pipelines.audio.probe import check_decodable, probe
from pipelines.audio.tools import find_ffmpeg, find_ffprobe
from pipelines.audio.wav import SAMPLE_RATE, load_waveform

__all__ = [
    "ALLOWED_DEMUXERS",
    "SAMPLE_RATE",
    "SILENCE_DBFS",
    "check_decodable",
    "detect_demuxer",
    "find_ffmpeg",
    "find_ffprobe",
    "load_waveform",
    "normalise",
    "probe",
]
