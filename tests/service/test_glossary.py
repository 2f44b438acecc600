"""Search by any of a name (issue 18 item 5): the glossary, people's names and pinyin.

A small archive of its own: one interview of 罗永浩 with 闫俊杰 (his speech mapped to
him, others naming him in simplified and traditional script, as 闫总, in pinyin) and
English and Chinese lines about MiniMax under its other names. Runs on SQLite and
PostgreSQL (the ``api`` fixture).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pytest
from sqlmodel import Session, select

from service.models.consent import Restriction, RestrictionLevel
from service.models.recordings import Recording, RecordingStatus, Speaker
from service.search import parse_query, snippet
from service.search.aliases import Entry, NameIndex, expand, pinyin_forms
from tests.factories import add_transcript, consent, person

SPEECH = "我们做的是通用模型，不是只做一个应用。"      # 闫俊杰 speaking, no name in it
EXACT = "闫俊杰你当时为什么要创业？"                  # 罗永浩 naming him
TRADITIONAL = "閆俊傑的公司後來融了很多錢。"
NICKNAME = "大家私下都叫他闫总。"
PINYIN = "Yan Junjie founded the company in 2021."
UNRELATED = "模型越来越便宜了。"
WITHHELD = "这段不能写：闫总和罗永浩聊的融资细节。"

MINIMAX = "MiniMax trains its own foundation models."
XIYU = "稀宇科技是这家公司的工商注册名。"
HAILUO = "海螺AI的视频生成很受欢迎。"


@dataclass
class Archive:
    yan: int
    luo: int
    talk: int
    about: int


def _recording(api, title: str) -> int:
    with Session(api.engine) as session:
        rec = Recording(
            title=title, sha256=hashlib.sha256(title.encode()).hexdigest(), size_bytes=1,
            duration=600.0, format_name="wav", codec="pcm_s16le", sample_rate=16000,
            channels=1, media_path=f"{title}/original.wav", created_by=api.user_ids["researcher"],
            status=RecordingStatus.transcribed,
        )
        session.add(rec)
        session.commit()
        assert rec.id is not None
        return rec.id


def _map(api, recording_id: int, label: str, person_id: int) -> None:
    with Session(api.engine) as session:
        speaker = session.exec(select(Speaker).where(
            Speaker.recording_id == recording_id, Speaker.label == label)).one()
        speaker.person_id = person_id
        session.add(speaker)
        session.commit()


def _term(api, role: str = "researcher", **body) -> dict:
    r = api.client.post("/api/v1/glossary", json=body, headers=api.headers(role))
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture
def archive(api) -> Archive:
    yan = person(api, "闫俊杰", alt_names=["Yan Junjie"])
    luo = person(api, "罗永浩", organisation="锤子科技")
    talk = _recording(api, "罗永浩对谈闫俊杰")
    add_transcript(api, talk, [
        (0.0, 5.0, "SPEAKER_00", SPEECH),
        (5.0, 10.0, "SPEAKER_01", EXACT),
        (10.0, 15.0, "SPEAKER_01", TRADITIONAL),
        (15.0, 20.0, "SPEAKER_01", NICKNAME),
        (20.0, 25.0, "SPEAKER_01", UNRELATED),
        (30.0, 35.0, "SPEAKER_01", WITHHELD),
    ])
    _map(api, talk, "SPEAKER_00", yan)
    _map(api, talk, "SPEAKER_01", luo)
    about = _recording(api, "Podcast about MiniMax")
    add_transcript(api, about, [
        (0.0, 5.0, "SPEAKER_00", PINYIN),
        (5.0, 10.0, "SPEAKER_00", MINIMAX),
        (10.0, 15.0, "SPEAKER_00", XIYU),
        (15.0, 20.0, "SPEAKER_00", HAILUO),
    ])
    with Session(api.engine) as session:
        session.add(Restriction(recording_id=talk, start=31.0, end=32.0,
                                level=RestrictionLevel.off_record))
        session.commit()
    _term(api, term="闫俊杰", aliases=["闫总"], kind="person")
    _term(api, "editor", term="MiniMax", aliases=["稀宇科技", "海螺AI"], kind="organisation")
    return Archive(yan, luo, talk, about)


def find(api, role: str = "author", **params) -> dict:
    r = api.client.get("/api/v1/search", params={"limit": 100} | params,
                       headers=api.headers(role))
    assert r.status_code == 200, r.text
    body: dict = r.json()
    assert body["count"] == len(body["data"])
    return body


def texts(api, role: str = "author", **params) -> set[str]:
    return {h["text"] for h in find(api, role, **params)["data"]}


ABOUT_YAN = {SPEECH, EXACT, TRADITIONAL, NICKNAME, PINYIN}


@pytest.mark.parametrize("q", ["Yan Junjie", "yanjunjie", "閆俊傑", "闫总", "闫俊杰",
                               "YAN JUNJIE", "junjie yan"])
def test_any_name_finds_what_he_said_and_what_was_said_about_him(api, archive: Archive,
                                                                  q: str) -> None:
    assert texts(api, q=q) == ABOUT_YAN


@pytest.mark.parametrize("q", ["MiniMax", "稀宇科技", "海螺AI", "minimax", "海螺ai"])
def test_an_organisations_names_find_each_other(api, archive: Archive, q: str) -> None:
    assert texts(api, q=q) == {MINIMAX, XIYU, HAILUO}


def test_without_aliases_only_what_was_typed_is_found(api, archive: Archive) -> None:
    assert texts(api, q="闫总", aliases="false") == {NICKNAME}
    assert texts(api, q="海螺AI", aliases="false") == {HAILUO}
    assert texts(api, q="Yan Junjie", aliases="false") == {PINYIN}


def test_exact_matches_rank_first_then_other_names_then_speech(api, archive: Archive) -> None:
    order = [h["text"] for h in find(api, q="闫俊杰")["data"]]
    # 閆俊傑 is what was typed, in another script: the index folds it, so it is exact.
    assert set(order[:2]) == {EXACT, TRADITIONAL}
    assert set(order[2:4]) == {NICKNAME, PINYIN}
    assert order[4] == SPEECH
    order = [h["text"] for h in find(api, q="闫总")["data"]]
    assert order[0] == NICKNAME and order[-1] == SPEECH
    order = [h["text"] for h in find(api, q="海螺AI")["data"]]
    assert order[0] == HAILUO


def test_other_names_are_marked_in_snippets_and_listed(api, archive: Archive) -> None:
    body = find(api, q="闫总")
    snippets = {h["text"]: h["snippet"] for h in body["data"]}
    assert "«闫俊杰»" in snippets[EXACT]
    assert "«閆俊傑»" in snippets[TRADITIONAL]
    assert "«Yan Junjie»" in snippets[PINYIN]
    assert "«" not in snippets[SPEECH]
    [term] = body["expanded"]
    assert term["typed"] == "闫 总"
    assert {"闫 俊 杰", "yan junjie", "junjie yan"} <= set(term["alternatives"])
    assert term["people"] == ["闫俊杰"] and term["person_ids"] == [archive.yan]
    assert find(api, q="模型")["expanded"] == []


def test_the_speaker_filter_keeps_working(api, archive: Archive) -> None:
    assert texts(api, q="Yan Junjie", person_id=archive.luo) == {EXACT, TRADITIONAL, NICKNAME}
    assert texts(api, q="闫总", person_id=archive.yan) == {SPEECH}
    assert texts(api, q="模型", person_id=archive.yan) == {SPEECH}
    # Two terms: what he said about models (his speech, and the name beside 模型).
    assert texts(api, q="闫俊杰 模型") == {SPEECH}


def test_a_glossary_edit_counts_from_the_next_search(api, archive: Archive) -> None:
    [term] = api.client.get("/api/v1/glossary", params={"q": "MiniMax"},
                            headers=api.headers("author")).json()["data"]
    r = api.client.patch(f"/api/v1/glossary/{term['id']}", json={"aliases": ["稀宇科技"]},
                         headers=api.headers("editor"))
    assert r.status_code == 200, r.text
    assert texts(api, q="海螺AI") == {HAILUO}
    assert texts(api, q="MiniMax") == {MINIMAX, XIYU}
    r = api.client.delete(f"/api/v1/glossary/{term['id']}", headers=api.headers("researcher"))
    assert r.status_code == 204
    assert texts(api, q="稀宇科技") == {XIYU}
    # A person's new alt name is searched by at once too.
    r = api.client.patch(f"/api/v1/people/{archive.yan}", json={"alt_names": ["IO"]},
                         headers=api.headers("researcher"))
    assert r.status_code == 200, r.text
    assert PINYIN in texts(api, q="闫俊杰")  # the pinyin is derived, not an alt name
    assert SPEECH in texts(api, q="IO")


def test_expanded_search_never_shows_withheld_text_to_authors(api, archive: Archive) -> None:
    for q in ["闫总", "闫俊杰", "Yan Junjie", "罗永浩"]:
        hits = find(api, q=q)["data"]
        assert all("融资细节" not in h["text"] + h["snippet"] for h in hits), q
    assert WITHHELD in texts(api, "editor", q="Yan Junjie")
    assert WITHHELD in texts(api, "researcher", q="闫俊杰")
    # Withholding by agreement: 闫俊杰 asked for deep background in this recording, so
    # his speech (matched by his name without containing it) is withheld from authors.
    consent(api, person_id=archive.yan, recording_id=archive.talk,
            attribution="deep_background")
    for q in ["闫俊杰", "yanjunjie", "闫总"]:
        body = find(api, q=q)
        assert SPEECH not in {h["text"] for h in body["data"]}, q
        assert body["count"] == len(ABOUT_YAN) - 1, q
    assert SPEECH in texts(api, "editor", q="闫总")


def test_glossary_api_roles_and_validation(api, archive: Archive) -> None:
    r = api.client.post("/api/v1/glossary", json={"term": "字节跳动"},
                        headers=api.headers("author"))
    assert r.status_code == 403
    listed = api.client.get("/api/v1/glossary", headers=api.headers("author")).json()
    assert listed["count"] == 2
    assert {t["term"] for t in listed["data"]} == {"闫俊杰", "MiniMax"}
    by_term = {t["term"]: t for t in listed["data"]}
    assert by_term["闫俊杰"]["pinyin"] == ["yan junjie", "junjie yan"]
    assert by_term["MiniMax"]["pinyin"] == []
    r = api.client.post("/api/v1/glossary", json={"term": "minimax"},
                        headers=api.headers("researcher"))
    assert r.status_code == 409 and "MiniMax" in r.json()["detail"]
    for body in [{"term": "？！"}, {"term": ""}, {"term": "x" * 101},
                 {"term": "字节", "aliases": ["a"] * 31}, {"term": "字节", "aliases": [""]},
                 {"term": "字节", "kind": "planet"}]:
        r = api.client.post("/api/v1/glossary", json=body, headers=api.headers("editor"))
        assert r.status_code == 422, (body, r.text)
        assert r.json()["detail"]
    made = _term(api, term="字节跳动", aliases=["ByteDance", "bytedance", "字节跳动", "抖音"])
    assert made["aliases"] == ["ByteDance", "抖音"]
    r = api.client.patch(f"/api/v1/glossary/{made['id']}", json={"term": None},
                         headers=api.headers("editor"))
    assert r.status_code == 422
    assert api.client.get("/api/v1/glossary/999999",
                          headers=api.headers("author")).status_code == 404
    expansion = api.client.get("/api/v1/glossary/expand", params={"q": "字节跳动 模型"},
                               headers=api.headers("author")).json()
    assert expansion["expanded"] == [{
        "typed": "字 节 跳 动", "alternatives": ["bytedance", "抖 音"], "people": [],
        "person_ids": []}]


def test_glossary_page_lists_terms_and_offers_unlisted_organisations(api, archive: Archive,
                                                                      ) -> None:
    page = api.client.get("/glossary", headers=api.headers("author"))
    assert page.status_code == 200
    assert "稀宇科技" in page.text and "海螺AI" in page.text
    assert "锤子科技" not in page.text  # suggestions are for those who may edit
    page = api.client.get("/glossary", headers=api.headers("researcher"))
    assert "锤子科技" in page.text
    assert "glossary-form" in page.text


# --- the parts, without a database --------------------------------------------------


def test_pinyin_of_chinese_names_without_tones() -> None:
    assert pinyin_forms("闫俊杰") == ("yan junjie", "junjie yan")
    assert pinyin_forms("閆俊傑") == ("yan junjie", "junjie yan")
    assert pinyin_forms("姚顺雨") == ("yao shunyu", "shunyu yao")
    assert pinyin_forms("欧阳娜娜") == ("ouyang nana", "nana ouyang")
    assert pinyin_forms("MiniMax") == ()
    assert pinyin_forms("闫") == ()


def test_expansion_prefers_the_longest_name_and_never_expands_prefixes() -> None:
    index = NameIndex([Entry("person", 1, "person", ("闫俊杰", "Yan Junjie")),
                       Entry("person", 2, "person", ("Yan",))])
    [term] = expand(parse_query("Yan Junjie"), index).terms
    assert term.speakers == (1,)
    terms = expand(parse_query("yan*"), index).terms
    assert not terms[0].expanded
    parsed = parse_query("闫俊杰 说")
    expanded = expand(parsed, index)
    assert [t.expanded for t in expanded.terms] == [True, False]
    assert expand(parse_query("模型"), index) == parse_query("模型")
    assert snippet("Yan Junjie 和闫俊杰", expanded) == "«Yan Junjie» 和«闫俊杰»"
