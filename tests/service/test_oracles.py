"""Objects a caller may not see answer exactly like objects that do not exist (issue 13,
items 6 and 7): segment ids, chapter quote counts and sources, deleting and unlinking.

A researcher's private recording is invisible to another researcher and to authors.
Each probe is made twice, once at the invisible object and once at an id that does not
exist, and the two answers must match once the id itself is taken out.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from service.models.users import Role
from tests.factories import add_transcript, make_tone, upload
from tests.service import factories_consent as f

MISSING = 987654


@pytest.fixture
def private(api: Any, tmp_path: Path) -> dict[str, int]:
    api.tokens["other"] = api.add_user("另一位研究员", Role.researcher)
    r = upload(api, make_tone(tmp_path / "private.wav", seconds=12.0, freq=733),
               {"title": "私下的第三次访谈", "access": "private"})
    assert r.status_code == 201, r.text
    rid = r.json()["recording"]["id"]
    add_transcript(api, rid, [(0.0, 5.0, "SPEAKER_00", "第一段私下的话。"),
                              (5.0, 10.0, "SPEAKER_00", "第二段私下的话。")])
    segments = api.client.get(f"/api/v1/recordings/{rid}/transcript",
                              headers=api.headers("researcher")).json()["segments"]
    quote = api.client.post("/api/v1/quotes", json={"recording_id": rid, "start": 0.0,
                                                     "end": 5.0}, headers=api.headers("editor"))
    assert quote.status_code == 201, quote.text
    chapter = f.add_chapter(api, "不公开的来源", number="第九章")
    f.link(api, chapter, quote.json()["id"])
    return {"recording": rid, "segment": segments[0]["id"], "segment2": segments[1]["id"],
            "quote": quote.json()["id"], "chapter": chapter}


def _same(a: Any, b: Any, *ids: int) -> None:
    """Two answers are the same once the probed ids are taken out."""
    def clean(r: Any) -> tuple[int, str]:
        text = r.text
        for i in ids:
            text = re.sub(rf"\b{i}\b", "ID", text)
        return r.status_code, text
    assert clean(a) == clean(b)


@pytest.mark.parametrize("role", ["other", "author"])
def test_segment_ids_of_invisible_recordings_answer_like_missing_ones(api, private, role,
                                                                      tmp_path) -> None:
    h = api.headers(role)
    sid = private["segment"]
    for probe in (lambda i: api.client.get(f"/api/v1/segments/{i}/revisions", headers=h),
                  lambda i: api.client.post("/api/v1/quotes", json={"segment_ids": [i]},
                                            headers=h)):
        _same(probe(sid), probe(MISSING), sid, MISSING)
    if role == "other":
        a = api.client.patch(f"/api/v1/segments/{sid}", json={"text": "x"}, headers=h)
        b = api.client.patch(f"/api/v1/segments/{MISSING}", json={"text": "x"}, headers=h)
        _same(a, b, sid, MISSING)
        return
    # Mixed with a visible segment, the invisible one is still just missing (before the
    # fix this said "different recordings", telling it exists).
    r = upload(api, make_tone(tmp_path / "team.wav", seconds=6.0, freq=811),
               {"title": "公开访谈"})
    team = r.json()["recording"]["id"]
    add_transcript(api, team, [(0.0, 5.0, "SPEAKER_00", "公开的话。")])
    visible = api.client.get(f"/api/v1/recordings/{team}/transcript",
                             headers=h).json()["segments"][0]["id"]
    a = api.client.post("/api/v1/quotes", json={"segment_ids": [visible, sid]}, headers=h)
    b = api.client.post("/api/v1/quotes", json={"segment_ids": [visible, MISSING]}, headers=h)
    assert a.status_code == 404, a.text
    _same(a, b, sid, MISSING)


def test_chapter_counts_and_sources_leave_out_invisible_quotes(api, private) -> None:
    chapter = private["chapter"]
    author, editor = api.headers("author"), api.headers("editor")
    assert api.client.get(f"/api/v1/chapters/{chapter}", headers=editor).json()[
        "quote_count"] == 1
    assert api.client.get(f"/api/v1/chapters/{chapter}", headers=author).json()[
        "quote_count"] == 0
    tree = api.client.get("/api/v1/chapters", headers=author).json()["data"]
    node = next(n for n in tree if n["id"] == chapter)
    assert node["quote_count"] == 0
    sources = api.client.get(f"/api/v1/chapters/{chapter}/sources", headers=author).text
    empty = f.add_chapter(api, "空的一章", number="第十章")
    nothing = api.client.get(f"/api/v1/chapters/{empty}/sources", headers=author).text
    assert sources.splitlines()[2:] == nothing.splitlines()[2:]  # same after the title
    assert "私下" not in sources
    assert "私下的第三次访谈" in api.client.get(f"/api/v1/chapters/{chapter}/sources",
                                              headers=editor).text


def test_deleting_or_unlinking_an_invisible_quote_answers_like_a_missing_one(api,
                                                                            private) -> None:
    author = api.headers("author")
    qid, chapter = private["quote"], private["chapter"]
    _same(api.client.delete(f"/api/v1/quotes/{qid}", headers=author),
          api.client.delete(f"/api/v1/quotes/{MISSING}", headers=author), qid, MISSING)
    _same(api.client.delete(f"/api/v1/chapters/{chapter}/quotes/{qid}", headers=author),
          api.client.delete(f"/api/v1/chapters/{chapter}/quotes/{MISSING}", headers=author),
          qid, MISSING)
    # Nothing was removed.
    assert api.client.get(f"/api/v1/chapters/{chapter}", headers=api.headers("editor")
                          ).json()["quote_count"] == 1
