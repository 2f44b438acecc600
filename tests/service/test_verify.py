"""Manuscript verification on a book draft: finding quotations, sourced/altered/unsourced.

The draft is the repository's own (``tests/fixtures/book_draft.md``); one more test counts
the quotations of the real seed draft where SOURCEBOOK_SEEDS_DIR has it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pipelines.text import normalise_for_match
from service.manuscript.quotations import find_quotations, named_person
from tests.factories import (
    BOOK,
    SEED_BOOK_NAME,
    add_transcript,
    name_speakers,
    person,
    recording,
    restrict,
    seed_file,
)

REPO = Path(__file__).resolve().parents[2]
MD = {"Content-Type": "text/markdown"}

# Quotations of the fixture draft (tests/fixtures/book_draft.md, fictional people).
A = "只有把稀疏模型做出来，才能用算得起的成本走向更大的规模。"
B = "我们现在像一家‘外包工作室’，靠卖工程师的工时赚钱。这不是一家模型公司该有的样子。"
C = ("写代码的人总以为难点在‘算法’，其实真正难的是‘数据’和‘耐心’。"
     "我们现在有了更好的训练框架，但离可靠的产品还很远。")
D = ("开源模型会一直存在...越来越多的开源模型开始追上最好的闭源模型。所以，模型能力会分散在很多"
     "团队手里，并且会变得越来越便宜。")
E = ("如果我自己出来做，不会做三个月就能见效的事。"
     "我要做需要两年、三年才能验证，但一旦验证就能守住很多年的事。")

# What was said on tape: B in traditional script, A by the host over two segments, D with
# words the author cut at the ellipsis, C and E reworded a little.
TAPE = [
    (0.0, 4.0, "SPEAKER_01", "今天我们聊聊你离开大公司以后的事。"),
    (4.0, 9.0, "SPEAKER_00", "我們現在像一家外包工作室，"),
    (9.0, 14.0, "SPEAKER_00", "靠賣工程師的工時賺錢。這不是一家模型公司該有的樣子。"),
    (14.0, 18.0, "SPEAKER_01", "你怎么看训练框架这件事？"),
    (18.0, 30.0, "SPEAKER_00", "写代码的人总以为难点在算法，其实真正难的是数据和耐心。"
                               "我们现在有了更强的训练框架，但离可靠的产品还差得很远。"),
    (30.0, 36.0, "SPEAKER_01", "只有把稀疏模型做出来，"),
    (36.0, 42.0, "SPEAKER_01", "才能用算得起的成本走向更大的规模。"),
    (42.0, 50.0, "SPEAKER_00", "开源模型会一直存在，这一点我很有把握。"),
    (50.0, 62.0, "SPEAKER_00", "越来越多的开源模型开始追上最好的闭源模型。"
                               "所以，模型能力会分散在很多团队手里，并且会变得越来越便宜。"),
    (62.0, 75.0, "SPEAKER_00", "如果我自己出来做，不会去做几个月就能见效的事。"
                               "我要做需要两年、三年才能验证，但一旦验证就能守住很多年的事。"),
]


def test_find_quotations_kinds() -> None:
    text = ('他说：“这是一个足够长的引用句子。”然后“短词”。\n'
            '唐杰表示：「智能体会在今年大规模落地。」\n'
            'Yan said: "We will keep building models every single day."\n'
            '\n闫俊杰在会上直言：\n> “我们现在像一家AI咨询公司，\n> 靠卖工程师的人时赚钱。”\n')
    found, short = find_quotations(text)
    assert [(q.kind, q.line) for q in found] == [("curly", 1), ("corner", 2), ("straight", 3),
                                                 ("block", 6)]
    assert found[3].text == "我们现在像一家AI咨询公司，\n靠卖工程师的人时赚钱。"
    assert short == 1
    people = [(1, "闫俊杰", ["Yan Junjie"]), (2, "唐杰", []), (3, "罗永浩", [])]
    assert named_person(found[1].context, people) == (2, "唐杰")
    assert named_person(found[3].context, people) == (1, "闫俊杰")
    assert named_person("他的朋友闫俊杰后来", people) is None  # no speech cue


def test_book_draft_quotations_found() -> None:
    found, short = find_quotations(BOOK.read_text(encoding="utf-8"))
    texts = [normalise_for_match(q.text) for q in found]
    for q in (A, B, C, D, E):
        assert normalise_for_match(q) in texts
    assert [q.kind for q in found].count("block") == 8
    assert len(found) == 59 and short == 19
    # Block quotes lose their outer marks; the named speaker is found before them.
    e = next(q for q in found if normalise_for_match(q.text) == normalise_for_match(E))
    assert e.kind == "block" and e.text == E
    a = next(q for q in found if q.text == A)
    assert named_person(a.context, [(1, "林知远", ["林知遠"]), (2, "苏晴", [])]) == (1, "林知远")


def test_seed_draft_quotations_found() -> None:
    """The real seed draft: many more quotations, blocks and quoted terms."""
    found, short = find_quotations(seed_file(SEED_BOOK_NAME).read_text(encoding="utf-8"))
    assert sum(q.kind == "block" for q in found) >= 40
    assert len(found) > 150 and short > 100


@pytest.fixture
def chapter(api) -> int:
    r = api.client.post("/api/v1/chapters", json={"kind": "book", "title": "传记"},
                        headers=api.headers("author"))
    return int(r.json()["id"])


def verify(api: Any, chapter: int, text: str, role: str = "author") -> Any:
    return api.client.post(f"/api/v1/chapters/{chapter}/verify", content=text.encode(),
                           headers=api.headers(role) | MD)


def test_book_draft_without_recordings_is_all_unsourced(api, chapter) -> None:
    text = BOOK.read_text(encoding="utf-8")
    r = verify(api, chapter, text)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == len(find_quotations(text)[0]) == 59
    assert body["unsourced"] == body["count"] and body["sourced"] == body["altered"] == 0
    assert all(item["matches"] == [] for item in body["data"])


def test_book_draft_against_an_interview(api, chapter, tmp_path: Path) -> None:
    yan = person(api, "林知远")
    luo = person(api, "周晓岚", kind="other")
    rec = recording(api, tmp_path, seconds=90, title="林知远对话周晓岚",
                    participants=[{"person_id": yan, "role": "interviewee"},
                                  {"person_id": luo, "role": "host"}])
    add_transcript(api, rec["id"], TAPE)
    name_speakers(api, rec["id"], {"SPEAKER_00": yan, "SPEAKER_01": luo})
    body = verify(api, chapter, BOOK.read_text(encoding="utf-8")).json()
    status = {normalise_for_match(i["quote_text"]): i for i in body["data"]}
    assert status[normalise_for_match(A)]["status"] == "sourced"
    assert status[normalise_for_match(B)]["status"] == "sourced"
    assert status[normalise_for_match(D)]["status"] == "sourced"
    assert status[normalise_for_match(C)]["status"] == "altered"
    assert status[normalise_for_match(E)]["status"] == "altered"
    # Exactly those: nothing else in the draft is on this tape.
    changed = {i["quote_text"] for i in body["data"] if i["status"] != "unsourced"}
    assert {normalise_for_match(t) for t in changed} == {
        normalise_for_match(q) for q in (A, B, C, D, E)}
    assert body["sourced"] == sum(1 for i in body["data"] if i["status"] == "sourced")
    a = status[normalise_for_match(A)]
    m = a["matches"][0]
    # Across two segments of one speaker; the draft names 林知远 but the host said it.
    assert (m["recording_id"], m["start"], m["end"]) == (rec["id"], 30.0, 42.0)
    assert m["similarity"] == 1.0 and m["person_id"] == luo and m["speaker"] == "SPEAKER_01"
    assert a["named_speaker"] == "林知远" and m["speaker_mismatch"] is True
    b = status[normalise_for_match(B)]["matches"][0]
    assert (b["start"], b["end"], b["person_id"]) == (4.0, 14.0, yan)
    assert b["speaker_mismatch"] is None or b["speaker_mismatch"] is False
    d = status[normalise_for_match(D)]["matches"][0]
    assert (d["start"], d["end"]) == (42.0, 62.0)
    c = status[normalise_for_match(C)]
    assert 0.8 <= c["matches"][0]["similarity"] < 1.0
    assert "[-强-]" in c["diff"] and "{+好+}" in c["diff"]
    assert "[-差得-]" in c["diff"]


def test_restricted_segments_never_match_for_authors(api, chapter, tmp_path: Path) -> None:
    rec = recording(api, tmp_path, seconds=90)
    add_transcript(api, rec["id"], TAPE)
    restrict(api, rec["id"], 10.0, 11.0)  # inside B's second segment
    text = f"他坦言：“{B}”\n\n又说：“{E}”\n"
    by_author = verify(api, chapter, text).json()
    assert [i["status"] for i in by_author["data"]] == ["unsourced", "altered"]
    assert "賺錢" not in str(by_author) and "赚钱" not in str(by_author["data"][0]["matches"])
    by_editor = verify(api, chapter, text, role="editor").json()
    assert [i["status"] for i in by_editor["data"]] == ["sourced", "altered"]


def test_private_recording_invisible_to_author(api, chapter, tmp_path: Path) -> None:
    rec = recording(api, tmp_path, seconds=90, access="private")
    add_transcript(api, rec["id"], TAPE)
    text = f"“{A}”"
    assert verify(api, chapter, text).json()["data"][0]["status"] == "unsourced"
    assert verify(api, chapter, text, role="editor").json()["data"][0]["status"] == "sourced"


def test_index_follows_new_versions(api, chapter, tmp_path: Path) -> None:
    rec = recording(api, tmp_path, seconds=90)
    add_transcript(api, rec["id"], TAPE)
    text = f"“{A}”"
    assert verify(api, chapter, text).json()["data"][0]["status"] == "sourced"
    add_transcript(api, rec["id"], [(a, b, s, t.replace("稀疏", "稠密")) for a, b, s, t in TAPE])
    again = verify(api, chapter, text).json()
    assert again["index_built"] is True
    assert again["data"][0]["status"] == "altered"
    assert again["data"][0]["matches"][0]["transcript_version"] == 2


def test_verify_bad_input_and_roles(api, chapter) -> None:
    huge = api.client.post(f"/api/v1/chapters/{chapter}/verify",
                           content=b"x" * (5 * 1024 * 1024), headers=api.headers("author") | MD)
    assert huge.status_code == 413
    assert verify(api, chapter, "“一句足够长的引用话语。”", role="researcher").status_code == 403
    assert verify(api, 9999, "“一句足够长的引用话语。”").status_code == 404
    pdf = api.client.post(f"/api/v1/chapters/{chapter}/verify", content=b"%PDF-1.7\x00\x01",
                          headers=api.headers("author") | {"Content-Type": "application/pdf"})
    assert pdf.status_code == 415


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_cli_prints_table(api, tmp_path: Path) -> None:
    rec = recording(api, tmp_path, seconds=90)
    add_transcript(api, rec["id"], TAPE)
    chapter_md = tmp_path / "chapter.md"
    chapter_md.write_text(f"# 第二章\n林知远直言：\n> “{B}”\n\n他又说：“{C}”\n\n"
                          "“这句话从来没有人说过。”\n")
    env = os.environ | {"SOURCEBOOK_DATABASE_URL": api.settings.database_url,
                        "SOURCEBOOK_DATA_DIR": str(tmp_path / "cli-data"),
                        "SOURCEBOOK_SECRET_KEY": "x"}
    out = subprocess.run([str(REPO / ".venv" / "bin" / "sourcebook"), "verify", str(chapter_md)],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:4] == ["#", "line", "status", "sim"]
    rows = [ln for ln in lines[2:] if ln[:4].strip().isdigit()]
    assert [r.split()[2] for r in rows] == ["sourced", "altered", "unsourced"]
    assert "diff:" in out.stdout
    assert "3 quotations: 1 sourced, 1 altered, 1 unsourced" in out.stdout
