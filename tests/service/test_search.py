"""Full-text search in Chinese and English, on SQLite (FTS5) and PostgreSQL (tsvector).

The corpus is the repository's own interview notes, tests/fixtures/interview_notes.md
(沈一舟 with 许青 and 顾岩; 林知远 with 周晓岚; all fictional), cut into segments, plus a
few English and mixed lines.
Expected counts are computed independently in Python from the segment texts.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from pipelines.text import cjk_spaced
from service import search as engine
from service.models.consent import Restriction, RestrictionLevel
from service.models.people import Person
from service.models.recordings import Access, Recording, RecordingStatus, Speaker
from service.models.transcripts import Segment
from service.models.users import Role
from service.search import (
    MARK_CLOSE,
    MARK_OPEN,
    MAX_QUERY_CHARS,
    QueryError,
    meta_token,
    parse_query,
    snippet,
)
from service.search.snippet import tokens_with_spans
from tests.factories import (
    BOOK,
    FOUNDER,
    FOUNDER_TRADITIONAL,
    HOST,
    INTERVIEW_TITLE,
    NOTES,
    add_transcript,
    person_payload,
    seed_files,
)

GUEST, CO_HOST_1, CO_HOST_2 = "沈一舟", "许青", "顾岩"

ENGLISH = [
    "Transformers changed everything, and the transformer is still the core of the model.",
    "Product-market fit matters more than the cost of tokens.",
    "We scale up agents only after we find the right application.",
    "Deep research needs a bigger model; a smaller one is cheaper and faster.",
    "Up and to the right: the scale of the market surprised us.",
    "Most transformers today are decoder-only.",
]
MIXED = [
    "我们的MoE架构比Dense模型更省算力，这是MiniMax的选择。",
    "MoE is a mixture of experts; 它不是唯一的路线。",
    "架构的选择决定了训练效率。",
]

Segs = list[tuple[float, float, str, str]]


@dataclass
class Corpus:
    """Recording id -> the segments stored as its current version."""

    shen: int
    lin: int
    english: int
    segments: dict[int, Segs]

    def all_texts(self, rec_ids: list[int] | None = None) -> list[str]:
        ids = rec_ids if rec_ids is not None else list(self.segments)
        return [s[3] for r in ids for s in self.segments[r]]


def _clean(line: str) -> str:
    line = re.sub(r"\*+", "", line).strip()
    return re.sub(r"^[-#>\s]+", "", line).strip()


def notes_sections() -> tuple[Segs, Segs]:
    """The two interviews of the notes as (start, end, label, text) segments."""
    text = NOTES.read_text(encoding="utf-8")
    body = text.split("---", 2)[2]
    shen_part, lin_part = body.split(f"\n# {FOUNDER}", 1)
    labels_shen = {GUEST: "SPEAKER_00", CO_HOST_1: "SPEAKER_01", CO_HOST_2: "SPEAKER_02"}
    labels_lin = {FOUNDER: "SPEAKER_00", HOST: "SPEAKER_01"}

    def cut(part: str, labels: dict[str, str]) -> Segs:
        out: Segs = []
        t = 0.0
        for raw in part.splitlines():
            if raw.lstrip().startswith("#"):
                continue
            line = _clean(raw)
            if len(line) < 4:
                continue
            label = "SPEAKER_00"
            m = re.match(r"^(\S{2,4})[：:]\s*", line)
            if m and m.group(1) in labels:
                label = labels[m.group(1)]
                line = line[m.end():]
            if not line:
                continue
            dur = max(2.0, len(line) * 0.22)
            out.append((round(t, 2), round(t + dur, 2), label, line))
            t += dur + 0.5
        return out

    return cut(shen_part, labels_shen), cut(lin_part, labels_lin)


def add_recording(api, title: str, *, owner: str = "researcher",
                  access: Access = Access.team) -> int:
    with Session(api.engine) as session:
        rec = Recording(
            title=title, sha256=hashlib.sha256(title.encode()).hexdigest(), size_bytes=1,
            duration=7200.0, format_name="wav", codec="pcm_s16le", sample_rate=16000,
            channels=1, media_path=f"{title}/original.wav", created_by=api.user_ids[owner],
            access=access, status=RecordingStatus.transcribed,
        )
        session.add(rec)
        session.commit()
        assert rec.id is not None
        return rec.id


def map_speaker(api, recording_id: int, label: str, person_id: int | None) -> None:
    with Session(api.engine) as session:
        speaker = session.exec(select(Speaker).where(
            Speaker.recording_id == recording_id, Speaker.label == label)).one()
        speaker.person_id = person_id
        session.add(speaker)
        session.commit()


def new_person(api, name: str) -> int:
    r = api.client.post("/api/v1/people", json=person_payload(name),
                        headers=api.headers("researcher"))
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


@pytest.fixture
def corpus(api) -> Corpus:
    shen_segs, lin_segs = notes_sections()
    lin_segs = lin_segs + [(9000.0 + i, 9000.5 + i, "SPEAKER_01", t) for i, t in enumerate(MIXED)]
    shen = add_recording(api, f"岚山播客：{GUEST}")
    lin = add_recording(api, INTERVIEW_TITLE)
    english = add_recording(api, "Podcast: scaling agents")
    add_transcript(api, shen, shen_segs)
    add_transcript(api, lin, lin_segs)
    en_segs = [(i * 10.0, i * 10.0 + 8, "SPEAKER_00", t) for i, t in enumerate(ENGLISH)]
    add_transcript(api, english, en_segs, language="en")
    return Corpus(shen, lin, english, {shen: shen_segs, lin: lin_segs, english: en_segs})


def find(api, role: str = "author", **params):
    r = api.client.get("/api/v1/search", params=params, headers=api.headers(role))
    assert r.status_code == 200, r.text
    return r.json()


def find_all(api, role: str = "author", **params) -> tuple[list[dict], int]:
    """Every hit, page by page, checking that count stays the same throughout."""
    hits: list[dict] = []
    count = None
    while True:
        page = find(api, role, limit=7, offset=len(hits), **params)
        assert count is None or page["count"] == count
        count = page["count"]
        hits += page["data"]
        if not page["data"]:
            break
    assert len(hits) == count
    assert len({h["segment_id"] for h in hits}) == count
    return hits, count


def contains_phrase(text: str, phrase: str, prefix: bool = False) -> bool:
    """Independent ground truth: the phrase's tokens side by side in the text's tokens."""
    have, want = cjk_spaced(text).split(), cjk_spaced(phrase).split()
    n = len(want)
    for i in range(len(have) - n + 1):
        if have[i:i + n - 1] == want[:-1] and (
            have[i + n - 1] == want[-1] or (prefix and have[i + n - 1].startswith(want[-1]))
        ):
            return True
    return False


# --- what must work ------------------------------------------------------------------


@pytest.mark.parametrize("q", ["林", "钱", "模型", "算力", "数据飞轮", "第一性原理", "产品经理"])
def test_chinese_queries_of_one_two_and_four_characters(api, corpus: Corpus, q: str) -> None:
    expected = sorted(t for t in corpus.all_texts() if contains_phrase(t, q))
    assert expected, f"the fixture should contain {q}"
    hits, count = find_all(api, q=q)
    assert count == len(expected)
    assert sorted(h["text"] for h in hits) == expected
    for h in hits:
        assert MARK_OPEN + q in h["snippet"] or (MARK_OPEN in h["snippet"] and q in h["text"])


def test_two_characters_must_be_adjacent_and_in_order(api, corpus: Corpus) -> None:
    # 飞轮 occurs; 轮飞 does not, though both characters are in the same segments.
    assert find(api, q="轮飞")["count"] == 0
    assert find(api, q="飞轮")["count"] > 0


def test_english_words_prefixes_and_phrases(api, corpus: Corpus) -> None:
    texts = corpus.all_texts()
    # A word is matched whole and regardless of case: "Transformer" in the interview notes
    # and "the transformer" in the English line, but not "Transformers".
    word = find(api, q="TRANSFORMER")
    assert word["count"] == sum(contains_phrase(t, "transformer") for t in texts) == 2
    prefix = find(api, q="transform*")
    assert prefix["count"] == sum(contains_phrase(t, "transform", True) for t in texts) == 3
    assert any(f"{MARK_OPEN}Transformers{MARK_CLOSE}" in h["snippet"] for h in prefix["data"])
    # A quoted phrase keeps word order; unquoted words need only all be there.
    phrase = find(api, q='"scale up"', limit=100)
    assert sorted(h["text"] for h in phrase["data"]) == sorted(
        t for t in texts if contains_phrase(t, "scale up"))
    assert ENGLISH[2] in {h["text"] for h in phrase["data"]}
    assert ENGLISH[4] not in {h["text"] for h in phrase["data"]}
    assert all(f"{MARK_OPEN}scale up{MARK_CLOSE}" in h["snippet"].lower() or
               f"{MARK_OPEN}scale-up{MARK_CLOSE}" in h["snippet"].lower()
               for h in phrase["data"])
    both = find(api, q="scale up")
    assert {h["text"] for h in both["data"]} >= {ENGLISH[2], ENGLISH[4]}
    assert find(api, q='"up scale"')["count"] == 0
    # Hyphenated words are phrases of their parts, found by the exact spelling.
    pmf = find(api, q="product-market fit")
    assert pmf["count"] == sum(contains_phrase(t, "product market") and
                               contains_phrase(t, "fit") for t in texts) == 2


def test_mixed_chinese_and_english_query(api, corpus: Corpus) -> None:
    hits, _ = find_all(api, q="MoE 架构")
    assert [h["text"] for h in hits] == [MIXED[0]]
    assert f"{MARK_OPEN}MoE架构{MARK_CLOSE}" in hits[0]["snippet"]
    # Each term alone finds more; together they are ANDed.
    assert find(api, q="MoE")["count"] == 2
    assert find(api, q="架构")["count"] >= 2


def test_traditional_script_finds_simplified_and_back(api, corpus: Corpus) -> None:
    simplified = find(api, q=FOUNDER)
    traditional = find(api, q=FOUNDER_TRADITIONAL)
    assert simplified["count"] == traditional["count"] > 0
    assert ({h["segment_id"] for h in simplified["data"]}
            == {h["segment_id"] for h in traditional["data"]})
    # A segment transcribed in traditional script is found by simplified, and its
    # snippet marks the original characters.
    rec = add_recording(api, "台北座談")
    add_transcript(api, rec, [(0.0, 5.0, "SPEAKER_00", "我認識閆俊傑很多年了，他對模型很執著。")])
    hits = find(api, q="闫俊杰", recording_id=rec)["data"]
    assert [h["snippet"] for h in hits] == [
        f"我認識{MARK_OPEN}閆俊傑{MARK_CLOSE}很多年了，他對模型很執著。"]
    assert find(api, q="认识", recording_id=rec)["count"] == 1


def test_filters_by_recording_language_and_person(api, corpus: Corpus) -> None:
    q = "模型"
    texts_yan = corpus.all_texts([corpus.lin])
    by_rec = find(api, q=q, recording_id=corpus.lin, limit=100)
    assert by_rec["count"] == sum(contains_phrase(t, q) for t in texts_yan)
    assert {h["recording_id"] for h in by_rec["data"]} == {corpus.lin}
    assert by_rec["data"][0]["recording_title"] == INTERVIEW_TITLE

    assert find(api, q="model", language="en")["count"] == 2
    assert find(api, q="model", language="zh")["count"] == 0

    yan_id = new_person(api, FOUNDER)
    map_speaker(api, corpus.lin, "SPEAKER_00", yan_id)
    said = [t for _, _, label, t in corpus.segments[corpus.lin] if label == "SPEAKER_00"]
    hits, count = find_all(api, q=q, person_id=yan_id)
    assert count == sum(contains_phrase(t, q) for t in said) > 0
    assert {(h["person_id"], h["name"], h["speaker"]) for h in hits} == {
        (yan_id, FOUNDER, "SPEAKER_00")}


def test_speaker_names_come_from_the_map_at_read_time(api, corpus: Corpus) -> None:
    zhang = new_person(api, CO_HOST_1)
    luo = new_person(api, HOST)
    q = "Agent如何scale up"
    hit = find(api, q=q, recording_id=corpus.shen)["data"][0]
    assert (hit["speaker"], hit["person_id"], hit["name"]) == ("SPEAKER_01", None, None)
    map_speaker(api, corpus.shen, "SPEAKER_01", luo)
    assert find(api, q=q, person_id=luo)["data"][0]["name"] == HOST
    map_speaker(api, corpus.shen, "SPEAKER_01", zhang)  # remapped: every search shows it
    hit = find(api, q=q, recording_id=corpus.shen)["data"][0]
    assert (hit["person_id"], hit["name"]) == (zhang, CO_HOST_1)
    assert find(api, q=q, person_id=luo)["count"] == 0


def test_snippet_is_cut_around_the_first_hit_of_a_long_segment(api, corpus: Corpus) -> None:
    long = max((s for s in corpus.segments[corpus.lin]), key=lambda s: len(s[3]))[3]
    assert len(long) > 120
    # Four Chinese characters first found late in the segment: the snippet starts with
    # "…" and holds the hit.
    word = next(long[i:i + 4] for i in range(len(long) - 30, 0, -1)
                if re.fullmatch(r"[\u4e00-\u9fff]{4}", long[i:i + 4])
                and long.index(long[i:i + 4]) > 60)
    hits = find(api, q=word, recording_id=corpus.lin, limit=100)["data"]
    hit = next(h for h in hits if h["text"] == long)
    snip = hit["snippet"]
    assert f"{MARK_OPEN}{word}{MARK_CLOSE}" in snip
    assert snip.startswith("…")
    plain = snip.replace(MARK_OPEN, "").replace(MARK_CLOSE, "").strip("…")
    assert plain in long and 60 <= len(plain) <= 90


def test_ranking_puts_denser_hits_first(api, corpus: Corpus) -> None:
    rec = add_recording(api, "ranking")
    dense = "闫俊杰，闫俊杰，还是闫俊杰。"
    sparse = ("我们聊了很多关于公司早期的故事，团队怎么从商汤出来，怎么融资，怎么招人，"
              "最后才提到闫俊杰对长期主义的看法，以及他对模型路线的判断和坚持。")
    once_short = "闫俊杰说过。"
    add_transcript(api, rec, [(0, 5, "SPEAKER_00", sparse), (5, 9, "SPEAKER_00", dense),
                              (9, 12, "SPEAKER_00", once_short)])
    texts = [h["text"] for h in find(api, q="闫俊杰", recording_id=rec)["data"]]
    assert texts == [dense, once_short, sparse]


def test_only_the_current_version_is_searched(api, corpus: Corpus) -> None:
    rec = add_recording(api, "versions")
    add_transcript(api, rec, [(0, 5, "SPEAKER_00", "第一版写成了米你马克斯。")])
    add_transcript(api, rec, [(0, 5, "SPEAKER_00", "第二版改成了MiniMax。")])
    assert find(api, q="米你马克斯")["count"] == 0
    hits = find(api, q="第二版")["data"]
    assert [(h["recording_id"], h["transcript_version"]) for h in hits] == [(rec, 2)]


def test_private_recordings_of_another_researcher_are_invisible(api, corpus: Corpus) -> None:
    api.add_user("researcher2", Role.researcher)
    theirs = add_recording(api, "private notes", owner="researcher2", access=Access.private)
    add_transcript(api, theirs, [(0, 5, "SPEAKER_00", "林知远私下说的一段话。")])
    everyone = find(api, "editor", q="林知远")["count"]
    assert find(api, "researcher", q="林知远")["count"] == everyone - 1
    assert find(api, "author", q="私下")["count"] == 0
    assert find(api, "editor", q="私下")["count"] == 1
    r = api.client.get("/api/v1/search", params={"q": "私下", "recording_id": theirs},
                       headers=api.headers("researcher"))
    assert r.status_code == 404 and "recording" in r.json()["detail"]


def test_authors_do_not_see_restricted_segments(api, corpus: Corpus) -> None:
    rec = add_recording(api, "off the record")
    add_transcript(api, rec, [
        (0.0, 10.0, "SPEAKER_00", "公开部分：MiniMax的路线是多模态。"),
        (10.0, 20.0, "SPEAKER_00", "这段不能公开：MiniMax的融资细节。"),
        (20.0, 30.0, "SPEAKER_00", "背景部分：MiniMax的团队。"),
        (30.0, 40.0, "SPEAKER_00", "深背景：MiniMax的董事会。"),
    ])
    with Session(api.engine) as session:
        session.add(Restriction(recording_id=rec, start=12.0, end=14.0,
                                level=RestrictionLevel.off_record))
        session.add(Restriction(recording_id=rec, start=20.0, end=30.0,
                                level=RestrictionLevel.background))
        session.add(Restriction(recording_id=rec, start=39.5, end=45.0,
                                level=RestrictionLevel.deep_background))
        session.commit()
    editor = find(api, "editor", q="minimax", recording_id=rec, limit=100)
    author = find(api, "author", q="minimax", recording_id=rec, limit=100)
    assert editor["count"] == 4
    assert author["count"] == 2 == len(author["data"])
    assert {h["start"] for h in author["data"]} == {0.0, 20.0}
    assert all("融资" not in h["text"] + h["snippet"] for h in author["data"])
    assert find(api, "author", q="融资细节")["count"] == 0
    assert find(api, "editor", q="融资细节")["count"] == 1
    assert find(api, "researcher", q="融资细节")["count"] == 1


def test_pagination_gives_every_hit_once_with_an_accurate_count(api, corpus: Corpus) -> None:
    hits, count = find_all(api, q="模型")
    assert count > 14  # more than two pages of 7
    everything = find(api, q="模型", limit=1000)
    assert [h["segment_id"] for h in everything["data"]] == [h["segment_id"] for h in hits]
    beyond = find(api, q="模型", offset=count + 5)
    assert beyond == {"data": [], "count": count, "count_exact": True, "ranked_within": None,
                      "expanded": []}


def test_index_follows_edits_and_deletes(api, corpus: Corpus) -> None:
    with Session(api.engine) as session:
        seg = session.exec(select(Segment).where(Segment.recording_id == corpus.english)
                           .order_by(Segment.idx)).first()
        assert seg is not None
        seg.text = "Corrected: the founder spoke about Hailuo video."
        seg.search_text = cjk_spaced(seg.text)
        session.add(seg)
        session.commit()
    assert find(api, q="hailuo")["count"] == 1
    assert find(api, q="everything")["count"] == 0
    with Session(api.engine) as session:
        session.delete(session.get(Recording, corpus.english))
        session.commit()
    assert find(api, q="hailuo")["count"] == 0
    assert find(api, q=FOUNDER)["count"] > 0


def test_a_speaker_correction_moves_the_segment_between_people(api, corpus: Corpus) -> None:
    """The index's speaker token follows a PATCH, so the person filter does too."""
    yan_id = new_person(api, FOUNDER)
    luo_id = new_person(api, HOST)
    map_speaker(api, corpus.lin, "SPEAKER_00", yan_id)
    map_speaker(api, corpus.lin, "SPEAKER_01", luo_id)
    hit = find(api, q="MoE 路线", person_id=luo_id)["data"][0]
    r = api.client.patch(f"/api/v1/segments/{hit['segment_id']}", json={"speaker": "SPEAKER_00"},
                         headers=api.headers("researcher"))
    assert r.status_code == 200, r.text
    assert find(api, q="MoE 路线", person_id=luo_id)["count"] == 0
    moved = find(api, q="MoE 路线", person_id=yan_id)["data"]
    assert [(h["segment_id"], h["name"]) for h in moved] == [(hit["segment_id"], FOUNDER)]


def test_filter_tokens_of_the_index_are_not_searchable(api, corpus: Corpus) -> None:
    """The index also holds recording/language/speaker tokens; a query never sees them."""
    for q in (meta_token("r", corpus.shen), meta_token("l", "zh"),
              meta_token("p", 0), "search_meta:r1"):
        assert find(api, "editor", q=q)["count"] == 0, q


def test_a_new_version_replaces_the_old_one_in_every_filter(api, corpus: Corpus) -> None:
    rec = add_recording(api, "three versions")
    for n in (1, 2, 3):
        add_transcript(api, rec, [(0, 5, f"SPEAKER_0{n}", f"第{n}版：长期主义。")])
    hits = find(api, "editor", q="长期主义", recording_id=rec)["data"]
    assert [(h["transcript_version"], h["speaker"]) for h in hits] == [(3, "SPEAKER_03")]
    assert find(api, "editor", q="第1版")["count"] == find(api, "editor", q="第2版")["count"] == 0


def test_huge_result_sets_are_capped_and_ranked_within_the_newest(api, corpus: Corpus,
                                                                   monkeypatch) -> None:
    """With the cap and window made small, a common word shows both behaviours."""
    everything, total = find_all(api, q="模型")
    assert total > 14
    monkeypatch.setattr(engine.scope, "COUNT_CAP", 10)
    monkeypatch.setattr(engine.scope, "RANK_WINDOW", 6)
    first = find(api, q="模型", limit=100)
    assert (first["count"], first["count_exact"]) == (10, False)
    ids = [h["segment_id"] for h in first["data"]]
    assert sorted(ids) == sorted(h["segment_id"] for h in everything)  # nothing lost
    newest = sorted(ids, reverse=True)
    assert first["ranked_within"] == 6
    assert set(ids[:6]) == set(newest[:6])  # the window: the newest six, by relevance
    assert ids[6:] == newest[6:]  # then the rest, newest first
    paged: list[int] = []
    while page := find(api, q="模型", limit=4, offset=len(paged))["data"]:
        paged += [h["segment_id"] for h in page]
    assert paged == ids  # pages agree with one big page across the window's edge
    small = find(api, q="伯克希尔")
    assert small["count_exact"] is True and small["ranked_within"] is None


def test_the_index_stays_exact_through_every_kind_of_write(api, corpus: Corpus) -> None:
    """Versions, mapping, remapping, a person's deletion, corrections, label merges and
    a recording's deletion; then FTS5 compares its index with the content view."""
    yan = new_person(api, FOUNDER)
    luo = new_person(api, HOST)
    said = {label: sum(contains_phrase(t, "模型") for _, _, lb, t in corpus.segments[corpus.lin]
                       if lb == label) for label in ("SPEAKER_00", "SPEAKER_01")}
    assert said["SPEAKER_00"] > 0 and said["SPEAKER_01"] > 0
    map_speaker(api, corpus.lin, "SPEAKER_00", yan)
    map_speaker(api, corpus.lin, "SPEAKER_01", yan)  # two labels, one person
    assert find(api, q="模型", person_id=yan)["count"] == sum(said.values())
    map_speaker(api, corpus.lin, "SPEAKER_01", luo)
    assert find(api, q="模型", person_id=yan)["count"] == said["SPEAKER_00"]
    assert find(api, q="模型", person_id=luo)["count"] == said["SPEAKER_01"]
    with Session(api.engine) as session:  # deleting a person unmaps their labels (SET NULL)
        session.delete(session.get(Person, luo))
        session.commit()
    assert find(api, q="模型", person_id=yan)["count"] == said["SPEAKER_00"]
    with Session(api.engine) as session:
        assert session.exec(select(Speaker).where(Speaker.person_id == luo)).first() is None
    add_transcript(api, corpus.english, [(0, 4, "SPEAKER_00", "A second take on agents.")],
                   language="en")
    map_speaker(api, corpus.english, "SPEAKER_00", yan)
    assert find(api, q="agents", person_id=yan)["count"] == 1
    with Session(api.engine) as session:
        seg = session.exec(select(Segment).where(Segment.recording_id == corpus.lin,
                                                 Segment.speaker == "SPEAKER_00")).first()
        assert seg is not None
        seg.speaker = "SPEAKER_01"
        session.add(seg)
        session.commit()
        session.delete(session.get(Recording, corpus.shen))
        session.commit()
    if api.engine.dialect.name == "sqlite":
        with api.engine.begin() as conn:  # raises if index and content disagree
            conn.exec_driver_sql(
                "INSERT INTO segment_fts(segment_fts, rank) VALUES ('integrity-check', 1)")
            with pytest.raises(sa.exc.IntegrityError, match="cannot be renamed"):
                conn.exec_driver_sql("UPDATE speaker SET label = 'X' WHERE id = "
                                     "(SELECT min(id) FROM speaker)")


# --- bad input -----------------------------------------------------------------------


HOSTILE = [
    '"', '""', '"闫俊杰', '闫俊杰"', "*", "**", "闫*", "transform**", "NEAR", "NEAR(a b)",
    "a NEAR b", "NEAR/2", "-", "-模型", "模型 -算力", "--", "AND OR NOT", "OR", "NOT 模型",
    "(", ")", "(模型", "模型)", ":", "search_text:模型", "segment_fts:x", "^模型", "模型^",
    "'", "''; DROP TABLE segment; --", "\\", "%", "_", "+模型", "{模型}", "[模型]",
    "模型 & 算力", "模型 | 算力", "!模型", "<->", "模型 <-> 算力", "模型:*", "'模型':*",
    "\x00", "模型\x00算力", "\u200b", "ＭｏＥ", "😀", "😀模型", "é", "e\u0301",
    "閆俊傑*", "“数据飞轮”", "「第一性原理」", "〝模型〞", "x" * 499, "模" * 500,
]


def test_hostile_queries_never_break_the_engine(api, corpus: Corpus) -> None:
    answers = {}
    for q in HOSTILE:
        r = api.client.get("/api/v1/search", params={"q": q}, headers=api.headers("author"))
        assert r.status_code in (200, 422), (q, r.text)
        body = r.json()
        if r.status_code == 422:
            assert isinstance(body["detail"], str) and len(body["detail"]) > 20
        else:
            assert body["count"] >= len(body["data"])
        answers[q] = r.status_code
    # Operators and quotes around real words still search for the words.
    for q in ['"闫俊杰', "-模型", "(模型", "模型:*", "'模型':*", "NOT 模型", "“数据飞轮”"]:
        assert answers[q] == 200
    assert find(api, q="(模型")["count"] == find(api, q="模型")["count"] > 0


def test_operators_are_searched_as_words(api, corpus: Corpus) -> None:
    texts = corpus.all_texts()
    # "-模型" is not "NOT 模型"; "NOT" and "OR" are ordinary (rare) words.
    assert find(api, q="-模型")["count"] == sum(contains_phrase(t, "模型") for t in texts)
    assert find(api, q="模型 OR 算力")["count"] == 0
    assert find(api, q='"MoE"')["count"] == 2
    assert find(api, q="model NEAR")["count"] == 0


def test_random_garbage_never_gives_500(api, corpus: Corpus) -> None:
    rng = random.Random(20261125)
    alphabet = list('"*-():^{}[]\'\\%_+|&!<>~@#$;,.?/ \t') + list("闫俊杰模型算力 aAzZ09") + [
        "NEAR", "AND", "OR", "NOT", "閆", "ＭｏＥ", "\u0301", "😀"]
    for _ in range(120):
        q = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 25)))
        r = api.client.get("/api/v1/search", params={"q": q}, headers=api.headers("author"))
        assert r.status_code in (200, 422), (q, r.text)


@pytest.mark.parametrize("q", ["", "   ", "\t\n", "!!!", "。，、", "***", '""', "- ( ) :"])
def test_empty_or_punctuation_only_query_is_422(api, corpus: Corpus, q: str) -> None:
    r = api.client.get("/api/v1/search", params={"q": q}, headers=api.headers("author"))
    assert r.status_code == 422
    assert "query" in r.json()["detail"]


def test_missing_query_is_422(api) -> None:
    r = api.client.get("/api/v1/search", headers=api.headers("author"))
    assert r.status_code == 422 and "q" in r.json()["detail"]


def test_ten_thousand_character_query_is_422_naming_the_limit(api, corpus: Corpus) -> None:
    # (90 000 bytes of percent-encoded Chinese would exceed the client's URL limit.)
    for q in ["闫a" * 5_000, "a " * 5_000, '"' * 10_000, "NEAR(" * 2_000]:
        r = api.client.get("/api/v1/search", params={"q": q}, headers=api.headers("author"))
        assert r.status_code == 422
        assert str(MAX_QUERY_CHARS) in r.json()["detail"]


def test_too_short_prefix_and_too_many_terms_are_422(api, corpus: Corpus) -> None:
    r = api.client.get("/api/v1/search", params={"q": "a*"}, headers=api.headers("author"))
    assert r.status_code == 422 and "prefix" in r.json()["detail"]
    many = " ".join(f"w{i}" for i in range(40))
    r = api.client.get("/api/v1/search", params={"q": many}, headers=api.headers("author"))
    assert r.status_code == 422 and "terms" in r.json()["detail"]


def test_unknown_person_is_404_and_no_token_is_401(api, corpus: Corpus) -> None:
    r = api.client.get("/api/v1/search", params={"q": "模型", "person_id": 999_999},
                       headers=api.headers("author"))
    assert r.status_code == 404 and "person" in r.json()["detail"]
    assert api.client.get("/api/v1/search", params={"q": "模型"}).status_code == 401


# --- pure parts ----------------------------------------------------------------------


def test_parse_query_folds_and_escapes() -> None:
    assert parse_query("閆俊傑").fts5() == '"闫 俊 杰"'
    assert parse_query("MoE 架构").fts5() == '"moe" "架 构"'
    assert parse_query('"Deep Research" agent*').tsquery() == (
        "('deep' <-> 'research') & ('agent':*)")
    assert parse_query("NEAR(a b)").fts5() == '"near a" "b"'
    assert parse_query("闫*").fts5() == '"闫"'  # one character is a whole token already
    with pytest.raises(QueryError):
        parse_query("()")


def _assert_snippet_tokens_match_the_index(lines: list[str]) -> None:
    # The snippet maps hits back to original positions with its own tokenizer; it must
    # produce exactly the index's tokens, or hits would be marked in the wrong place.
    for line in [*lines, "ＭｏＥ架構", "ﬁne-tuning", "Ⅻ章", "café", "e\u0301cole"]:
        tokens = tokens_with_spans(line)
        assert " ".join(t for t, _, _ in tokens) == cjk_spaced(line), line
        for tok, a, b in tokens:
            assert cjk_spaced(line[a:b]).replace(" ", "") == tok, (line, tok)


def test_snippet_tokens_line_up_with_the_index_for_all_fixture_text() -> None:
    lines = [ln for f in (BOOK, NOTES)
             for ln in f.read_text(encoding="utf-8").splitlines() if ln.strip()]
    assert len(lines) > 250
    _assert_snippet_tokens_match_the_index([*lines, *ENGLISH, *MIXED])


def test_snippet_tokens_line_up_with_the_index_for_all_seed_text() -> None:
    """The real seed documents: more text, more odd characters."""
    lines = [ln for f in seed_files("*.txt")
             for ln in f.read_text(encoding="utf-8").splitlines() if ln.strip()]
    assert len(lines) > 1000
    _assert_snippet_tokens_match_the_index(lines)


def test_snippet_marks_the_original_text() -> None:
    text = "罗永浩问：MiniMax的MoE架構和Transformer有什么关系？闫俊杰答：MoE是Transformer的一种。"
    assert snippet(text, parse_query("moe 架构")) == (
        "罗永浩问：MiniMax的«MoE架構»和Transformer有什么关系？闫俊杰答：«MoE»是Transformer的一种。")
    assert snippet(text, parse_query("transform*")).count(MARK_OPEN) == 2
    long = "开场白。" * 40 + "闫俊杰" + "结尾。" * 40
    cut = snippet(long, parse_query("闫俊杰"))
    assert cut.startswith("…") and cut.endswith("…") and "«闫俊杰»" in cut
    assert len(cut) <= 80 + 4
