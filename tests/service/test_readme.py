"""The README's walkthrough, run as written, and the samples it uses.

The walkthrough's ``sh`` blocks are taken from README.md itself (between the
``<!-- walkthrough`` and ``<!-- /walkthrough -->`` markers) and run with bash, ``set -euo
pipefail``, against a real ``sourcebook serve`` (SQLite, the embedded queue, its real
worker and the bundled models, as ``make run`` starts it): every command must succeed,
so the README cannot rot. ``sourcebook samples`` is checked on its own, with the seed
documents and without them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session

from service import auth
from service.config import Settings
from service.db import make_engine, migrate
from service.importers import parse_vtt
from service.manuscript.outline import parse as parse_outline
from service.manuscript.quotations import find_quotations
from service.models.users import Role
from service.samples import CALL_QUOTE, FILES
from tests.conftest import DEFAULT_MODELS_DIR, REPO, SECRET
from tests.factories import SEED_BOOK_NAME, SEED_NOTES_NAME, SEEDS_DIR, seed_file
from tests.live_server import free_port, running_serve

BIN = Path(sys.executable).parent
_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)


def walkthrough_script() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    begin = text.index("<!-- walkthrough")
    end = text.index("<!-- /walkthrough -->", begin)
    blocks = _BLOCK.findall(text[begin:end])
    assert len(blocks) >= 3, "the walkthrough markers in README.md enclose no sh blocks"
    return "\n".join(blocks)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOURCEBOOK_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYANNOTE_METRICS_ENABLED"] = "0"
    return env | extra


def samples(out: Path, *args: str, seeds: Path | None = None) -> subprocess.CompletedProcess[str]:
    extra = {"SOURCEBOOK_SEEDS_DIR": str(seeds)} if seeds else {}
    # Run from the folder above, to see that nothing else is written where it runs.
    return subprocess.run([str(BIN / "sourcebook"), "samples", str(out), *args],
                          cwd=out.parent, env=_env(**extra), capture_output=True, text=True,
                          timeout=120)


def ffprobe(path: Path) -> dict[str, float]:
    out = subprocess.run(["ffprobe", "-v", "error", "-of", "json", "-show_entries",
                          "format=duration:stream=sample_rate,channels,codec_type", str(path)],
                         check=True, capture_output=True, text=True).stdout
    info = json.loads(out)
    (stream,) = info["streams"]
    assert stream["codec_type"] == "audio"
    return {"duration": float(info["format"]["duration"]),
            "rate": float(stream["sample_rate"]), "channels": float(stream["channels"])}


def check_pdf(data: bytes) -> str:
    """Open the PDF as a reader does: trailer, cross-references, catalog, page, content.

    Returns the text shown on the page."""
    assert data.startswith(b"%PDF-1.") and data.rstrip().endswith(b"%%EOF")
    startxref = int(re.findall(rb"startxref\s+(\d+)", data)[-1])
    assert data[startxref:].startswith(b"xref")
    m = re.match(rb"xref\s+0 (\d+)\s+", data[startxref:])
    assert m
    count = int(m.group(1))
    rows = data[startxref + m.end(): startxref + m.end() + 20 * count]
    offsets = [int(rows[i * 20: i * 20 + 10]) for i in range(count)]
    objects: dict[int, bytes] = {}
    for number, offset in enumerate(offsets[1:], start=1):
        head = f"{number} 0 obj".encode()
        assert data[offset:].startswith(head), f"object {number} is not at its xref offset"
        objects[number] = data[offset + len(head): data.index(b"endobj", offset)]
    trailer = data[data.rindex(b"trailer"):]
    root = int(re.search(rb"/Root (\d+) 0 R", trailer).group(1))  # type: ignore[union-attr]
    assert b"/Type /Catalog" in objects[root]
    pages = int(re.search(rb"/Pages (\d+) 0 R", objects[root]).group(1))  # type: ignore[union-attr]
    kids = re.findall(rb"(\d+) 0 R", re.search(rb"/Kids \[(.*?)\]", objects[pages]).group(1))  # type: ignore[union-attr]
    assert len(kids) == 1
    page = objects[int(kids[0])]
    assert b"/Type /Page" in page and b"/MediaBox" in page
    contents = objects[int(re.search(rb"/Contents (\d+) 0 R", page).group(1))]  # type: ignore[union-attr]
    length = int(re.search(rb"/Length (\d+)", contents).group(1))  # type: ignore[union-attr]
    start = contents.index(b"stream\n") + len(b"stream\n")
    assert contents[start + length:].strip() == b"endstream", "stream /Length is wrong"
    stream = contents[start: start + length]
    return " ".join(s.decode("latin-1") for s in re.findall(rb"\((.*?)\) Tj", stream))


def check_samples(out: Path) -> tuple[list[str], str]:
    """Every sample is what it claims to be; returns the VTT's lines and the outline."""
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    call = ffprobe(out / "call.wav")
    assert call["duration"] == pytest.approx(30.0, abs=0.1) and call["channels"] == 1
    clip = ffprobe(out / "mandarin.wav")
    assert 20.0 <= clip["duration"] <= 30.0
    assert clip["rate"] == 16_000 and clip["channels"] == 1

    cues = parse_vtt((out / "interview.vtt").read_text(encoding="utf-8")).cues
    assert len(cues) >= 2 and len({c.speaker for c in cues}) == 2
    assert all(0 < c.start < c.end <= clip["duration"] for c in cues)
    assert all(re.search(r"[\u4e00-\u9fff]", c.text) for c in cues)

    outline = (out / "outline.md").read_text(encoding="utf-8")
    chapters = [n for n in parse_outline(outline).nodes if n.kind == "chapter"]
    assert len(chapters) >= 2

    quoted = [q.text for q in find_quotations((out / "draft.md").read_text("utf-8"))[0]]
    assert CALL_QUOTE[2] in quoted
    assert sum(c.text in quoted for c in cues) == 2, "the draft quotes two lines of the clip"

    text = check_pdf((out / "release.pdf").read_bytes())
    assert "Release and consent" in text
    return [c.text for c in cues], outline


# --- sourcebook samples --------------------------------------------------------------

def test_samples_without_seeds(tmp_path: Path) -> None:
    out = tmp_path / "s"
    r = samples(out, seeds=Path("/nonexistent"))
    assert r.returncode == 0, r.stderr
    for name in FILES:  # it says what it wrote, and from what
        assert str(out / name) in r.stdout
    assert "the project's own outline" in r.stdout and "the project's own notes" in r.stdout
    lines, outline = check_samples(out)
    own_notes = (REPO / "service" / "samples" / "notes.md").read_text(encoding="utf-8")
    assert all(line in own_notes for line in lines)
    assert outline == (REPO / "service" / "samples" / "outline.md").read_text(encoding="utf-8")
    assert sorted(os.listdir(tmp_path)) == ["s"]  # no data/ or database where it ran


def test_samples_from_seeds(tmp_path: Path) -> None:
    book_path, notes_path = seed_file(SEED_BOOK_NAME), seed_file(SEED_NOTES_NAME)
    r = samples(tmp_path, seeds=book_path.parent)
    assert r.returncode == 0, r.stderr
    assert book_path.name in r.stdout and notes_path.name in r.stdout
    lines, outline = check_samples(tmp_path)
    notes = notes_path.read_text(encoding="utf-8").replace("**", "")
    assert all(line in notes for line in lines)
    # The outline part of the seed book, without the drafts that follow it.
    book = book_path.read_text(encoding="utf-8")
    assert book.startswith(outline.rstrip("\n"))
    assert "第十六章" in outline and "1.1 全球浪潮" not in outline


def test_samples_refuse_to_overwrite(tmp_path: Path) -> None:
    assert samples(tmp_path, seeds=Path("/nonexistent")).returncode == 0
    (tmp_path / "draft.md").write_text("my own draft", encoding="utf-8")
    r = samples(tmp_path, seeds=Path("/nonexistent"))
    assert r.returncode == 1
    assert "draft.md" in r.stderr and "--force" in r.stderr and "Traceback" not in r.stderr
    assert (tmp_path / "draft.md").read_text(encoding="utf-8") == "my own draft"
    r = samples(tmp_path, "--force", seeds=Path("/nonexistent"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "draft.md").read_text(encoding="utf-8") != "my own draft"


def test_samples_say_what_is_missing(tmp_path: Path) -> None:
    """Without espeak-ng: one line naming it and how to install it; nothing written."""
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("ffmpeg", "ffprobe"):
        (tools / tool).symlink_to(shutil.which(tool) or tool)
    out = tmp_path / "s"
    r = subprocess.run([str(BIN / "sourcebook"), "samples", str(out)], cwd=tmp_path,
                       env=_env(PATH=str(tools), SOURCEBOOK_SEEDS_DIR="/nonexistent"),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert "espeak-ng is not installed" in r.stderr and "make setup" in r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists()


def test_walkthrough_is_marked_in_readme() -> None:
    script = walkthrough_script()
    assert "sourcebook samples" in script and "wait_job" in script
    # Ids come from responses: no literal /recordings/1 or /chapters/12 left.
    assert not re.search(r"/(recordings|chapters|quotes|consents|jobs|segments)/\d", script)


# --- the walkthrough against a live server --------------------------------------------

@pytest.fixture
def live(tmp_path: Path, models_dir: Path) -> Iterator[tuple[str, str, dict[str, str]]]:
    """(API base URL, admin token, environment) of a `sourcebook serve` as `make run` runs it."""
    root = tmp_path / "server"
    settings = Settings(data_dir=root / "data", database_url=f"sqlite:///{root / 'sb.db'}",
                        recordings_dir=root / "rec", transcripts_dir=root / "tr",
                        models_dir=models_dir, secret_key=SECRET)
    engine = make_engine(settings)
    migrate(engine, settings)
    with Session(engine) as session:
        _, token = auth.create_user(session, key=settings.token_key(), name="admin",
                                    role=Role.admin)
        session.commit()
    engine.dispose()
    port = free_port()
    env = _env(SOURCEBOOK_DATABASE_URL=settings.database_url,
               SOURCEBOOK_DATA_DIR=str(settings.data_dir),
               SOURCEBOOK_RECORDINGS_DIR=str(settings.recordings_dir),
               SOURCEBOOK_TRANSCRIPTS_DIR=str(settings.transcripts_dir),
               SOURCEBOOK_MODELS_DIR=str(DEFAULT_MODELS_DIR), SOURCEBOOK_SECRET_KEY=SECRET,
               SOURCEBOOK_PORT=str(port), SOURCEBOOK_LOG_LEVEL="warning",
               # The seed documents where they are (the samples' own material otherwise).
               SOURCEBOOK_SEEDS_DIR=str(SEEDS_DIR if (SEEDS_DIR / SEED_BOOK_NAME).is_file()
                                        else Path("/nonexistent")))
    with running_serve([str(BIN / "sourcebook"), "serve"], cwd=root, env=env,
                       log=root / "serve.log") as url:
        yield f"{url}/api/v1", token, env


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_readme_walkthrough_runs(tmp_path: Path, live: tuple[str, str, dict[str, str]]) -> None:
    api, token, env = live
    work = tmp_path / "work"
    work.mkdir()
    script = "set -euo pipefail\n" + walkthrough_script()
    r = subprocess.run(["bash", "-c", script], cwd=work, capture_output=True, text=True,
                       env=env | {"API": api, "SOURCEBOOK_TOKEN": token, "TMPDIR": str(work)},
                       timeout=1700)  # two real transcriptions, on shared cores
    print(r.stdout)  # what a reader sees: shown with -s, and on failure
    assert r.returncode == 0, f"stdout:\n{r.stdout[-6000:]}\nstderr:\n{r.stderr[-4000:]}"
    # What a reader is told to expect is there: sourced quotations, a named speaker.
    sourced = re.search(r'"sourced": (\d+)', r.stdout)
    assert sourced and int(sourced.group(1)) >= 2, r.stdout[-3000:]
    assert "Sheila" in r.stdout
    assert not any(work.glob("*.db")) and not (work / "data").exists()
