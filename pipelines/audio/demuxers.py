"""Which ffmpeg demuxer may read a user's file: only allowed ones, chosen from the content.

See :mod:`pipelines.audio` for why: a demuxer ffmpeg picks by itself may follow a playlist.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from pipelines.audio import tools
from pipelines.audio.tools import ACCEPTED, PROBE_TIMEOUT_S, clean_stderr, not_decodable, url
from pipelines.errors import AudioError
from pipelines.types import AudioInfo

#: ffmpeg demuxers of what recorders, phones, cameras, browsers and editors write.
#: Each reads only the file it is given: none of them opens another file or a URL.
#: (mov can, through external data references; see :func:`_input_args`.)
ALLOWED_DEMUXERS: tuple[str, ...] = (
    "wav",  # WAV, Broadcast WAV, RF64 (field recorders)
    "w64",  # Sony Wave64
    "mp3",  # MP3, MP2
    "mov",  # M4A, MP4, MOV, 3GP (phones, Zoom, cameras): "mov,mp4,m4a,3gp,3g2,mj2"
    "ogg",  # Ogg Opus and Vorbis (WhatsApp, Signal, Telegram voice notes)
    "flac",
    "matroska",  # MKV, MKA, WebM (browser recordings): "matroska,webm"
    "aac",  # raw ADTS AAC
    "amr",  # AMR voice memos of older phones
    "amrnb",
    "amrwb",
    "caf",  # Apple Core Audio (iOS)
    "aiff",
    "wv",  # WavPack
    "ac3",
    "eac3",
    "asf",  # WMA, WMV (Windows voice recorders)
    "avi",
    "mpegts",  # MTS, M2TS (camcorders)
    "mpeg",  # MPEG program stream (.mpg, .vob)
)

#: A whitelist no demuxer matches: ffmpeg probes the content, names its choice in the
#: refusal, and no demuxer reads the file.
_DETECT_ONLY = "none"
_NOT_ALLOWED_RE = re.compile(r"\[([\w,]+) @ (?:0x)?[0-9a-fA-F]+\] Format not on whitelist")
#: Names for the refused formats a user is likely to try, in the refusal message.
_REFUSED_KINDS = {
    "hls": "an HLS playlist (.m3u8)",
    "concat": "an ffmpeg concat list",
    "sdp": "an SDP session description",
    "dash": "a DASH manifest",
    "image2": "a numbered image sequence",
    "tty": "a text file",
}


def input_args(demuxer: str) -> list[str]:
    """ffmpeg/ffprobe options for reading a user's file (they go before its ``-i``/URL).

    ``-f`` forces the demuxer :func:`detect_demuxer` allowed, so nothing in the file can
    make ffmpeg switch to a playlist or list format. ``-protocol_whitelist file`` means
    the input, and anything a demuxer might try to open from it, can only be a local
    file: no http, tcp, udp, rtp, data: or crypto URLs, and not ``pipe:`` (our stdin)
    either. mov/mp4 can point a track at data in another file (``dref`` alias atoms);
    ffmpeg leaves that off by default, and we say so explicitly so that a different
    default can never turn it on.
    """
    if demuxer not in ALLOWED_DEMUXERS:
        raise ValueError(f"demuxer {demuxer!r} is not in ALLOWED_DEMUXERS")
    args = ["-f", demuxer, "-protocol_whitelist", "file"]
    if demuxer == "mov":
        args += ["-enable_drefs", "0", "-use_absolute_path", "0"]
    return args


def allowed(format_name: str) -> str | None:
    """The allowed demuxer of an ffmpeg format name ("mov,mp4,m4a,3gp,3g2,mj2" -> "mov")."""
    return next((n for n in format_name.split(",") if n in ALLOWED_DEMUXERS), None)


def check_file(path: Path) -> None:
    if not path.is_file():
        raise AudioError(f"{path.name} does not exist or is not a file.")
    if path.stat().st_size == 0:
        raise AudioError(f"{path.name} is empty (0 bytes): the upload or copy failed. {ACCEPTED}")


def detect_demuxer(path: Path) -> str:
    """The demuxer for ``path``, chosen by ffmpeg from its content; only an allowed one.

    ffmpeg's probe sees the first bytes (the name does not count: an ``.m3u8`` called
    ``.mp3`` is still a playlist) and names the demuxer it would use; the empty format
    whitelist stops it before that demuxer reads the file. Raises :class:`AudioError` for
    a format outside :data:`ALLOWED_DEMUXERS` (playlists, file lists, images, text ...) and
    for content ffmpeg does not recognise at all.
    """
    path = Path(path)
    check_file(path)
    ffprobe = tools.find_ffprobe()
    opts = ["-format_whitelist", _DETECT_ONLY, "-protocol_whitelist", "file"]
    if ffprobe is not None:
        tool, cmd = "ffprobe", [ffprobe, "-v", "error", *opts, url(path)]
    else:
        tool = "ffmpeg"
        cmd = [tools.find_ffmpeg(), "-nostdin", "-hide_banner", "-v", "error", *opts,
               "-i", url(path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                              stdin=subprocess.DEVNULL, timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise not_decodable(path, f"no answer within {PROBE_TIMEOUT_S:.0f} s", tool) from None
    found = _NOT_ALLOWED_RE.search(proc.stderr)
    if found is None:
        raise not_decodable(path, clean_stderr(proc.stderr, path), tool)
    name = found.group(1)
    demuxer = allowed(name)
    if demuxer is None:
        kind = _REFUSED_KINDS.get(name.split(",")[0], f"a file in the {name!r} format")
        raise AudioError(
            f"{path.name} is {kind}, not a recording in a format this archive accepts. "
            f"Playlists, file lists and other formats that point at other files or URLs are "
            f"refused, and so are formats recorders do not write. {ACCEPTED}"
        )
    return demuxer


def demuxer_of(info: AudioInfo) -> str:
    demuxer = allowed(info.format_name)
    if demuxer is None:  # only a probe result from elsewhere can get here
        raise AudioError(f"The {info.format_name!r} format is not accepted. {ACCEPTED}")
    return demuxer
