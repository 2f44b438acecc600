"""Voice recognition end to end: real audio, a real app, the real worker code, both databases.

Two recordings of the same two real voices: the halves of pyannote's sample (0-18 s as
WAV, 18-30 s uploaded as a 44.1 kHz stereo MP3; tests/pipelines/test_voices.py measures
the same halves without the service). One person consents to voice recognition, the other
at first does not; consent given later makes the worker recompute the dropped embedding
from the audio; withdrawal and erasure delete voiceprints and suggestions.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from service.app import create_app
from service.models.jobs import Job
from service.models.people import Person
from service.models.recordings import Speaker
from service.models.users import Role
from tests.conftest import Api, make_settings
from tests.factories import PYANNOTE_SAMPLE, upload

SPLIT_S = 18.0

pytestmark = pytest.mark.skipif(not PYANNOTE_SAMPLE.is_file(),
                                reason="pyannote.audio's sample recording is not installed")


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


@pytest.fixture
def voice_api(tmp_path: Path, database_url: str, models_dir: Path):
    settings = make_settings(tmp_path, database_url, whisper_model="tiny.en")
    with TestClient(create_app(settings)) as client:
        api = Api(client=client, settings=settings)
        for role in Role:
            api.tokens[role.value] = api.add_user(role.value, role)
        yield api


def _transcribe(api: Api, path: Path, title: str) -> int:
    from service.worker import tasks
    from tests.service.test_jobs import _context

    body = upload(api, path, {"title": title, "language": "en"}).json()
    tasks.execute(_context(api), body["job"]["id"])
    _job_succeeded(api, body["job"]["id"])
    return int(body["recording"]["id"])


def _job_succeeded(api: Api, job_id: int) -> None:
    with Session(api.engine) as s:
        job = s.get(Job, job_id)
        assert job is not None and job.state == "succeeded", job and job.error


def _truth(api: Api, rid: int, offset: float) -> dict[str, str]:
    """Label -> reference speaker with the most overlap: the researcher naming by ear."""
    ref = []
    for line in PYANNOTE_SAMPLE.with_suffix(".rttm").read_text().splitlines():
        f = line.split()
        ref.append((float(f[3]) - offset, float(f[3]) + float(f[4]) - offset, f[7]))
    segs = api.client.get(f"/api/v1/recordings/{rid}/transcript",
                          headers=api.headers("researcher")).json()["segments"]
    score: dict[str, dict[str, float]] = {}
    for s in segs:
        for r0, r1, spk in ref:
            ov = max(0.0, min(s["end"], r1) - max(s["start"], r0))
            score.setdefault(s["speaker"], {}).setdefault(spk, 0.0)
            score[s["speaker"]][spk] += ov
    return {label: max(v, key=v.__getitem__) for label, v in score.items()}


def _speakers(api: Api, rid: int, role: str = "researcher") -> dict[str, dict]:
    r = api.client.get(f"/api/v1/recordings/{rid}/speakers", headers=api.headers(role))
    assert r.status_code == 200, r.text
    return {s["label"]: s for s in r.json()}


def _embeddings(api: Api, person_id: int) -> list[object]:
    """Every stored embedding tied to the person: voiceprint samples and named labels."""
    with Session(api.engine) as s:
        p = s.get(Person, person_id)
        assert p is not None
        found: list[object] = list((p.voiceprint or {}).get("samples", []))
        found += [r.embedding for r in s.exec(select(Speaker).where(
            Speaker.person_id == person_id)) if r.embedding is not None]
        return found


def test_voices_named_in_one_recording_are_suggested_in_another(voice_api: Api,
                                                                 tmp_path: Path) -> None:
    from service.worker import tasks
    from tests.service.test_jobs import _context

    api = voice_api
    a_wav, b_mp3 = tmp_path / "a.wav", tmp_path / "b.mp3"
    ffmpeg("-i", str(PYANNOTE_SAMPLE), "-t", str(SPLIT_S), str(a_wav))
    ffmpeg("-ss", str(SPLIT_S), "-i", str(PYANNOTE_SAMPLE), "-ar", "44100", "-ac", "2",
           "-c:a", "libmp3lame", "-b:a", "128k", str(b_mp3))
    h_ed = api.headers("editor")
    ids = {}
    for name, ref in (("闫俊杰", "speaker90"), ("罗永浩", "speaker91")):
        r = api.client.post("/api/v1/people", json={"name": name},
                            headers=api.headers("researcher"))
        ids[ref] = r.json()["id"]
    consents = {}
    for ref, voiceprint in (("speaker90", True), ("speaker91", False)):
        r = api.client.post("/api/v1/consents", headers=h_ed, json={
            "person_id": ids[ref], "status": "granted", "voiceprint": voiceprint})
        assert r.status_code == 201, r.text
        consents[ref] = r.json()["id"]

    a = _transcribe(api, a_wav, "Half A")
    a_truth = _truth(api, a, 0.0)
    assert sorted(a_truth.values()) == ["speaker90", "speaker91"]
    assert all(s["suggestion"] is None for s in _speakers(api, a).values())

    # Name both voices of A. Only 闫俊杰 (speaker90) consented to voice recognition.
    r = api.client.put(f"/api/v1/recordings/{a}/speakers", headers=api.headers("researcher"),
                       json={label: ids[ref] for label, ref in a_truth.items()})
    assert r.status_code == 200, r.text
    assert _embeddings(api, ids["speaker91"]) == []  # dropped on naming, never enrolled
    assert len(_embeddings(api, ids["speaker90"])) == 2  # a voiceprint sample + the label

    # B is recognised as part of its transcription.
    b = _transcribe(api, b_mp3, "Half B, 44.1 kHz stereo MP3")
    b_truth = _truth(api, b, SPLIT_S)
    assert sorted(b_truth.values()) == ["speaker90", "speaker91"]
    got = _speakers(api, b)
    for label, ref in b_truth.items():
        sug = got[label]["suggestion"]
        if ref == "speaker90":
            assert sug is not None and sug["person_id"] == ids[ref], got
            assert sug["name"] == "闫俊杰" and sug["similarity"] >= 0.70
        else:
            assert sug is None or sug["person_id"] != ids["speaker91"], got

    # Consent given later: the worker recomputes the dropped embedding from A's audio.
    r = api.client.patch(f"/api/v1/consents/{consents['speaker91']}", headers=h_ed,
                         json={"voiceprint": True})
    assert r.status_code == 200, r.text
    with Session(api.engine) as s:
        job = s.exec(select(Job).where(Job.kind == "voiceprint")).one()
    tasks.execute(_context(api), job.id)
    _job_succeeded(api, job.id)
    # Both labels of B are now suggested correctly.
    got = _speakers(api, b)
    for label, ref in b_truth.items():
        sug = got[label]["suggestion"]
        assert sug is not None and sug["person_id"] == ids[ref], got
    # Authors see names and similarities, never an embedding.
    assert "embedding" not in api.client.get(f"/api/v1/recordings/{b}/speakers",
                                             headers=api.headers("author")).text

    # Withdrawal: that person's suggestion and voiceprint are gone at once.
    r = api.client.post(f"/api/v1/consents/{consents['speaker91']}/withdraw", headers=h_ed,
                        json={"reason": "withdrawn by phone"})
    assert r.status_code == 200, r.text
    person = api.client.get(f"/api/v1/people/{ids['speaker91']}", headers=h_ed).json()
    assert person["has_voiceprint"] is False and person["biometric_consent"] is False
    assert _embeddings(api, ids["speaker91"]) == []
    got = _speakers(api, b)
    assert all(s["suggestion"] is None or s["suggestion"]["person_id"] != ids["speaker91"]
               for s in got.values())

    # Erasure: no embedding of that person anywhere, archive export included.
    r = api.client.post(f"/api/v1/people/{ids['speaker90']}/erase",
                        headers=api.headers("admin"))
    assert r.status_code == 200, r.text
    assert _embeddings(api, ids["speaker90"]) == []
    assert all(s["suggestion"] is None for s in _speakers(api, b).values())
    from service.ops.archive import export_archive

    bag = export_archive(api.engine, api.settings, tmp_path / "bag").path
    rows = (bag / "data" / "tables" / "person.jsonl").read_text(encoding="utf-8")
    assert '"samples"' not in rows
