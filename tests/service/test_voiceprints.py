"""Voice recognition under consent, on synthetic embeddings (fast; both databases).

The embeddings are stored on the speaker rows as the worker stores diarization's; the
rules under test are the service's: who may have a voiceprint, what naming a label does,
when suggestions are recomputed, and what is deleted when consent ends. Real audio end to
end is in test_voices_e2e.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from sqlmodel import Session, select

from pipelines.voices import AUTO_APPLY_THRESHOLD, VOICEPRINT_LIMIT
from service.crud import voices
from service.models.jobs import Job
from service.models.people import Person
from service.models.recordings import Speaker
from tests.factories import add_transcript, new_recording, person

DIM = 192
MODEL = "test-campplus:0123456789abcdef"


def _unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal(DIM)
    return v / np.linalg.norm(v)


def _near(base: np.ndarray, cosine: float, rng: np.random.Generator) -> list[float]:
    other = rng.standard_normal(DIM)
    other -= (other @ base) * base
    other /= np.linalg.norm(other)
    return [float(x) for x in cosine * base + math.sqrt(1 - cosine**2) * other]


def _recording(api, tmp_path: Path, freq: int, embeddings: dict[str, list[float] | None],
               participants: list[int] = ()) -> int:
    meta = {"title": f"访谈 {freq}", "language": "zh",
            "participants": [{"person_id": p} for p in participants]}
    rid = new_recording(api, tmp_path, meta=meta, freq=freq)
    add_transcript(api, rid, [(i * 2.0, i * 2.0 + 1.5, label, "你好")
                              for i, label in enumerate(embeddings)])
    with Session(api.engine) as session:
        for row in session.exec(select(Speaker).where(Speaker.recording_id == rid)):
            emb = embeddings[row.label]
            row.embedding, row.embedding_model = emb, (MODEL if emb else None)
            session.add(row)
        session.commit()
    return rid


def _consent(api, person_id: int, voiceprint: bool) -> int:
    r = api.client.post("/api/v1/consents", headers=api.headers("editor"), json={
        "person_id": person_id, "status": "granted", "voiceprint": voiceprint})
    assert r.status_code == 201, r.text
    assert r.json()["voiceprint"] is voiceprint
    return int(r.json()["id"])


def _speakers(api, rid: int, role: str = "researcher") -> dict[str, dict]:
    r = api.client.get(f"/api/v1/recordings/{rid}/speakers", headers=api.headers(role))
    assert r.status_code == 200, r.text
    return {s["label"]: s for s in r.json()}


def _name(api, rid: int, mapping: dict[str, int | None]) -> None:
    r = api.client.put(f"/api/v1/recordings/{rid}/speakers", json=mapping,
                       headers=api.headers("researcher"))
    assert r.status_code == 200, r.text


def _person(api, pid: int, role: str = "researcher") -> dict:
    r = api.client.get(f"/api/v1/people/{pid}", headers=api.headers(role))
    assert r.status_code == 200, r.text
    return r.json()


def _embedding(api, rid: int, label: str) -> list[float] | None:
    with Session(api.engine) as session:
        row = session.exec(select(Speaker).where(Speaker.recording_id == rid,
                                                 Speaker.label == label)).one()
        return row.embedding


def _audit_actions(api) -> list[str]:
    r = api.client.get("/api/v1/audit/log", params={"limit": 1000},
                       headers=api.headers("editor"))
    assert r.status_code == 200, r.text
    return [e["action"] for e in r.json()["data"]]


def test_naming_enrols_a_consenting_voice_and_suggests_it_elsewhere(api, tmp_path) -> None:
    rng = np.random.default_rng(16)
    yan_v, luo_v = _unit(rng), _unit(rng)
    yan = person(api, "闫俊杰")
    luo = person(api, "罗永浩")
    c_yan = _consent(api, yan, voiceprint=True)
    _consent(api, luo, voiceprint=False)
    assert _person(api, yan)["biometric_consent"] is True
    assert _person(api, luo)["biometric_consent"] is False

    a = _recording(api, tmp_path, 300, {"SPEAKER_00": list(yan_v), "SPEAKER_01": list(luo_v)})
    b = _recording(api, tmp_path, 400, {"SPEAKER_00": _near(luo_v, 0.9, rng),
                                        "SPEAKER_01": _near(yan_v, 0.85, rng)})
    assert all(s["suggestion"] is None for s in _speakers(api, b).values())

    _name(api, a, {"SPEAKER_00": yan, "SPEAKER_01": luo})
    # 闫俊杰 consented: enrolled. 罗永浩 did not: the named label's embedding is gone.
    assert _person(api, yan)["has_voiceprint"] is True
    assert _person(api, luo)["has_voiceprint"] is False
    assert _embedding(api, a, "SPEAKER_00") is not None
    assert _embedding(api, a, "SPEAKER_01") is None
    # Recording B's suggestions were recomputed by the enrolment.
    got = _speakers(api, b)
    assert got["SPEAKER_01"]["suggestion"]["person_id"] == yan
    assert got["SPEAKER_01"]["suggestion"]["name"] == "闫俊杰"
    assert abs(got["SPEAKER_01"]["suggestion"]["similarity"] - 0.85) < 0.01
    assert got["SPEAKER_00"]["suggestion"] is None  # never someone without consent
    # Accepting is the ordinary PUT; the same voice is then a second sample.
    _name(api, b, {"SPEAKER_01": yan})
    with Session(api.engine) as session:
        p = session.get(Person, yan)
        assert p is not None
        sources = [s["source"] for s in voices.samples_of(p)]
    assert sources == [f"recording {a} SPEAKER_00", f"recording {b} SPEAKER_01"]

    # Nothing biometric leaves the server, whatever the role.
    for role in ("author", "researcher", "editor", "admin"):
        for url in (f"/api/v1/recordings/{b}/speakers", f"/api/v1/recordings/{b}/transcript",
                    f"/api/v1/people/{yan}", f"/api/v1/recordings/{b}"):
            r = api.client.get(url, headers=api.headers(role))
            assert r.status_code == 200, (url, r.text)
            assert "embedding" not in r.text and '"voiceprint"' not in r.text, (role, url)

    # Setting the field false deletes the voiceprint, the named embeddings and suggestions.
    r = api.client.patch(f"/api/v1/consents/{c_yan}", json={"voiceprint": False},
                         headers=api.headers("editor"))
    assert r.status_code == 200, r.text
    assert _person(api, yan)["has_voiceprint"] is False
    assert _person(api, yan)["biometric_consent"] is False
    assert _embedding(api, a, "SPEAKER_00") is None
    assert _embedding(api, b, "SPEAKER_01") is None
    assert _embedding(api, b, "SPEAKER_00") is not None  # unnamed: kept
    assert all(s["suggestion"] is None for s in _speakers(api, b).values())
    assert "voiceprint-delete" in _audit_actions(api)


def test_withdrawal_and_erasure_delete_voiceprints_and_suggestions(api, tmp_path) -> None:
    rng = np.random.default_rng(17)
    yan_v, luo_v = _unit(rng), _unit(rng)
    yan = person(api, "闫俊杰")
    luo = person(api, "罗永浩")
    c_yan, c_luo = _consent(api, yan, True), _consent(api, luo, True)
    a = _recording(api, tmp_path, 300, {"SPEAKER_00": list(yan_v), "SPEAKER_01": list(luo_v)})
    b = _recording(api, tmp_path, 400, {"SPEAKER_00": _near(luo_v, 0.9, rng),
                                        "SPEAKER_01": _near(yan_v, 0.88, rng)})
    _name(api, a, {"SPEAKER_00": yan, "SPEAKER_01": luo})
    got = _speakers(api, b)
    assert got["SPEAKER_00"]["suggestion"]["person_id"] == luo
    assert got["SPEAKER_01"]["suggestion"]["person_id"] == yan

    r = api.client.post(f"/api/v1/consents/{c_luo}/withdraw", json={"reason": "不再同意"},
                        headers=api.headers("editor"))
    assert r.status_code == 200, r.text
    assert _person(api, luo)["has_voiceprint"] is False
    assert _embedding(api, a, "SPEAKER_01") is None
    got = _speakers(api, b)
    assert got["SPEAKER_00"]["suggestion"] is None
    assert got["SPEAKER_01"]["suggestion"]["person_id"] == yan

    r = api.client.post(f"/api/v1/people/{yan}/erase", headers=api.headers("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["voiceprint_removed"] is True
    # B's SPEAKER_01, and A's SPEAKER_00, whose own sample it is.
    assert r.json()["suggestions_removed"] == 2
    with Session(api.engine) as session:
        p = session.get(Person, yan)
        assert p is not None and p.voiceprint is None and not p.biometric_consent
        for row in session.exec(select(Speaker).where(Speaker.person_id == yan)):
            assert row.embedding is None
        assert all(row.suggestion_person_id is None for row in session.exec(select(Speaker)))
    assert _person(api, yan)["has_voiceprint"] is False
    # A new agreement for an erased-and-withdrawn person's old one changes nothing back.
    assert api.client.get(f"/api/v1/consents/{c_yan}",
                          headers=api.headers("editor")).json()["status"] == "withdrawn"
    actions = _audit_actions(api)
    assert actions.count("voiceprint-delete") == 2 and "voiceprint-enrol" in actions


def test_consent_given_later_enrols_named_labels_or_queues_recomputation(api, tmp_path) -> None:
    rng = np.random.default_rng(18)
    yan_v = _unit(rng)
    yan = person(api, "闫俊杰")
    a = _recording(api, tmp_path, 300, {"SPEAKER_00": list(yan_v), "SPEAKER_01": None})
    _name(api, a, {"SPEAKER_00": yan, "SPEAKER_01": yan})
    assert _embedding(api, a, "SPEAKER_00") is None  # named without consent: dropped
    c = _consent(api, yan, voiceprint=False)
    r = api.client.patch(f"/api/v1/consents/{c}", json={"voiceprint": True},
                         headers=api.headers("editor"))
    assert r.status_code == 200, r.text
    assert _person(api, yan)["biometric_consent"] is True
    # Both labels lack an embedding now: one worker job recomputes them from the audio.
    with Session(api.engine) as session:
        jobs = session.exec(select(Job).where(Job.kind == voices.VOICEPRINT_JOB)).all()
        assert [(j.recording_id, j.options["labels"], j.state) for j in jobs] == [
            (a, ["SPEAKER_00", "SPEAKER_01"], "queued")]


def test_a_voiceprint_is_bounded_and_auto_apply_is_a_setting(api, tmp_path) -> None:
    rng = np.random.default_rng(19)
    yan_v = _unit(rng)
    yan = person(api, "闫俊杰")
    _consent(api, yan, voiceprint=True)
    for i in range(VOICEPRINT_LIMIT + 2):
        rid = _recording(api, tmp_path, 300 + 10 * i, {"SPEAKER_00": _near(yan_v, 0.9, rng)})
        _name(api, rid, {"SPEAKER_00": yan})
    with Session(api.engine) as session:
        p = session.get(Person, yan)
        assert p is not None and len(voices.samples_of(p)) == VOICEPRINT_LIMIT
    close = _recording(api, tmp_path, 900, {"SPEAKER_00": _near(yan_v, 0.97, rng)})
    with Session(api.engine) as session:
        # Off by default: a suggestion waits for a click.
        voices.refresh_suggestions(session, [close])
        session.commit()
        row = session.exec(select(Speaker).where(Speaker.recording_id == close)).one()
        assert row.person_id is None and row.suggestion_person_id == yan
        assert (row.suggestion_similarity or 0) >= AUTO_APPLY_THRESHOLD
        voices.refresh_suggestions(session, [close], auto_apply=True)
        session.commit()
        session.refresh(row)
        assert row.person_id == yan
    assert "voiceprint-auto-apply" in _audit_actions(api)


def test_the_api_carries_the_voiceprint_field(api) -> None:
    yan = person(api, "闫俊杰")
    r = api.client.post("/api/v1/consents", headers=api.headers("editor"),
                        json={"person_id": yan, "status": "granted"})
    assert r.status_code == 201 and r.json()["voiceprint"] is False
    r = api.client.patch(f"/api/v1/consents/{r.json()['id']}", json={"voiceprint": None},
                         headers=api.headers("editor"))
    assert r.status_code == 422 and "voiceprint" in r.text


def test_the_pages_show_suggestions_with_accept_and_the_consent_field(api, tmp_path) -> None:
    from tests.web.test_pages import sign_in

    rng = np.random.default_rng(20)
    yan_v = _unit(rng)
    yan = person(api, "闫俊杰")
    _consent(api, yan, voiceprint=True)
    a = _recording(api, tmp_path, 300, {"SPEAKER_00": list(yan_v)})
    b = _recording(api, tmp_path, 400, {"SPEAKER_00": _near(yan_v, 0.83, rng)})
    _name(api, a, {"SPEAKER_00": yan})
    sign_in(api, "researcher")
    page = api.client.get(f"/recordings/{b}").text
    assert "sounds like 闫俊杰 (0.83)" in page
    assert f'class="small accept-suggestion" type="button" data-person="{yan}"' in page
    # The label named as the person it sounds like needs no suggestion.
    assert "sounds like" not in api.client.get(f"/recordings/{a}").text
    sign_in(api, "author")
    page = api.client.get(f"/recordings/{b}").text
    assert "sounds like 闫俊杰" in page and "accept-suggestion" not in page
    sign_in(api, "editor")
    page = api.client.get(f"/consent?recording={b}").text
    assert 'name="voiceprint"' in page


def test_voices_calibrate_reads_the_archives_named_voices(api, tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from service import config
    from service.cli import app

    rng = np.random.default_rng(21)
    yan_v, luo_v = _unit(rng), _unit(rng)
    yan, luo = person(api, "闫俊杰"), person(api, "罗永浩")
    _consent(api, yan, True)
    _consent(api, luo, True)
    for i in range(3):
        rid = _recording(api, tmp_path, 300 + 10 * i, {"SPEAKER_00": _near(yan_v, 0.8, rng),
                                                       "SPEAKER_01": _near(luo_v, 0.8, rng)})
        _name(api, rid, {"SPEAKER_00": yan, "SPEAKER_01": luo})
    extra = tmp_path / "impostors.json"
    extra.write_text(json.dumps([{"speaker": None, "recording": "podcast 1",
                                  "embedding": list(_unit(rng))}]), encoding="utf-8")
    monkeypatch.setattr(config, "get_settings", lambda: api.settings)
    runner = CliRunner()
    r = runner.invoke(app, ["voices", "calibrate", "--extra", str(extra), "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["model"] == MODEL and report["samples"] == 7
    assert report["same_speaker"]["count"] == 6  # 3 pairs per person, across recordings
    assert report["different_speaker"]["count"] == 9 + 6
    assert 0 < report["threshold"]["value"] <= 1 and report["eer"]["rate"] == 0
    r = runner.invoke(app, ["voices", "calibrate"])
    assert r.exit_code == 0 and "EER" in r.output and "threshold" in r.output, r.output
    r = runner.invoke(app, ["voices", "calibrate", "--model", "another"])
    assert r.exit_code == 2 and "Name the voices" in r.output


def test_deleting_a_recording_removes_the_samples_it_gave(api, tmp_path) -> None:
    rng = np.random.default_rng(22)
    yan_v = _unit(rng)
    yan = person(api, "闫俊杰")
    _consent(api, yan, voiceprint=True)
    a = _recording(api, tmp_path, 300, {"SPEAKER_00": list(yan_v)})
    b = _recording(api, tmp_path, 400, {"SPEAKER_00": _near(yan_v, 0.9, rng)})
    _name(api, a, {"SPEAKER_00": yan})
    assert _speakers(api, b)["SPEAKER_00"]["suggestion"]["person_id"] == yan
    r = api.client.delete(f"/api/v1/recordings/{a}", headers=api.headers("researcher"))
    assert r.status_code == 204, r.text
    assert _person(api, yan)["has_voiceprint"] is False
    assert _speakers(api, b)["SPEAKER_00"]["suggestion"] is None
    assert "voiceprint-unenrol" in _audit_actions(api)
