"""Upload a large generated WAV through a running service; print MB/s and server RSS growth.

Starts `sourcebook serve` on a free port with throw-away storage (no workers, so the
measurement is the upload path alone), generates a WAV of --size-mb with ffmpeg,
streams it as multipart from a generator (the client never holds it in memory), and
reads the server's VmRSS before and VmHWM (peak RSS) after from /proc.

    .venv/bin/python bench/upload.py --size-mb 1024
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def make_wav(path: Path, size_mb: int) -> None:
    # 48 kHz stereo s16 = 192 000 bytes/s; pink noise so it is real, non-silent audio.
    seconds = size_mb * 1024 * 1024 / 192_000
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
         f"anoisesrc=color=pink:sample_rate=48000:amplitude=0.2:duration={seconds:.1f}",
         "-ac", "2", "-c:a", "pcm_s16le", str(path)],
        check=True,
    )


def body(path: Path, boundary: str, chunk: int = 1 << 20):
    meta = json.dumps({"title": f"bench upload {path.stat().st_size} bytes"})
    yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"meta\"\r\n\r\n{meta}\r\n"
           f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
           f"filename=\"bench.wav\"\r\nContent-Type: audio/wav\r\n\r\n").encode()
    with path.open("rb") as f:
        while data := f.read(chunk):
            yield data
    yield f"\r\n--{boundary}--\r\n".encode()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size-mb", type=int, default=1024)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="sb-bench-") as tmp_s:
        tmp = Path(tmp_s)
        wav = tmp / "big.wav"
        t0 = time.perf_counter()
        make_wav(wav, args.size_mb)
        size = wav.stat().st_size
        print(f"generated {size / 1e6:.0f} MB WAV in {time.perf_counter() - t0:.1f} s")
        port = free_port()
        env = os.environ | {
            "SOURCEBOOK_DATA_DIR": str(tmp / "data"),
            "SOURCEBOOK_RECORDINGS_DIR": str(tmp / "recordings"),
            "SOURCEBOOK_TRANSCRIPTS_DIR": str(tmp / "transcripts"),
            "SOURCEBOOK_EMBEDDED_WORKERS": "0",
            "SOURCEBOOK_MAX_UPLOAD_MB": str(args.size_mb + 64),
            "SOURCEBOOK_LOG_LEVEL": "warning",
        }
        subprocess.run([sys.executable, "-m", "service.cli", "migrate"], env=env, cwd=REPO,
                       check=True, capture_output=True)
        token = subprocess.run(
            [sys.executable, "-m", "service.cli", "users", "create", "bench", "--role",
             "researcher"], env=env, cwd=REPO, check=True, capture_output=True, text=True,
        ).stdout.strip().splitlines()[-1]
        server = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
            env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(200):
                try:
                    if httpx.get(f"{base}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            # Warm the process (imports, first request) so the baseline is fair.
            httpx.get(f"{base}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
            rss_before = proc_kb(server.pid, "VmRSS")
            boundary = "sourcebook-bench-boundary"
            t0 = time.perf_counter()
            r = httpx.post(
                f"{base}/api/v1/recordings",
                content=body(wav, boundary),
                headers={"Authorization": f"Bearer {token}",
                         "Content-Type": f"multipart/form-data; boundary={boundary}"},
                timeout=600,
            )
            elapsed = time.perf_counter() - t0
            peak = proc_kb(server.pid, "VmHWM")
            assert r.status_code == 201, r.text
            rec = r.json()["recording"]
            print(f"upload: {size / 1e6:.0f} MB in {elapsed:.1f} s = "
                  f"{size / 1e6 / elapsed:.0f} MB/s (includes sha256, ffprobe and a decode check)")
            print(f"server RSS before {rss_before / 1024:.0f} MiB, peak {peak / 1024:.0f} MiB, "
                  f"growth {(peak - rss_before) / 1024:.1f} MiB (target < 100 MiB)")
            print(f"stored recording {rec['id']}: {rec['duration']:.0f} s of audio, "
                  f"sha256 {rec['sha256'][:16]}…")
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
