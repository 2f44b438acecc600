"""Chapters: importing a book outline and draft, editing the tree, bad input.

The book is the repository's own (``tests/fixtures/book_draft.md``, fictional); one more
parser test reads the real seed book where SOURCEBOOK_SEEDS_DIR has it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from service.manuscript.outline import OutlineError, cn_number, parse
from tests.factories import BOOK, SEED_BOOK_NAME, seed_file, seeded_quote

MD = {"Content-Type": "text/markdown; charset=utf-8"}


def headers(api: Any, role: str = "author") -> dict[str, str]:
    return api.headers(role) | MD


def flatten(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for n in nodes:
        out.append(n)
        out.extend(flatten(n["children"]))
    return out


def import_book(api: Any, text: str | None = None, role: str = "author") -> Any:
    body = (text if text is not None else BOOK.read_text(encoding="utf-8")).encode()
    return api.client.post("/api/v1/chapters/import", content=body, headers=headers(api, role))


# ----------------------------------------------------------------------------- parser


def test_cn_numbers() -> None:
    assert [cn_number(x) for x in ("一", "十", "十一", "十六", "二十", "二十一", "105", "iv")] == [
        1, 10, 11, 16, 20, 21, 105, 4]


def test_parse_book_tree_shape() -> None:
    parsed = parse(BOOK.read_text(encoding="utf-8"))
    by = {(n.kind, n.number): n for n in parsed.nodes}
    assert parsed.counts() == {"book": 1, "part": 3, "chapter": 8, "section": 37}
    # Outline and draft headings of one chapter are one node; the outline's title wins.
    assert by[("chapter", "7")].title == "押注稀疏模型（2021年）"
    assert by[("chapter", "7")].parent == ("part", "3")
    assert by[("chapter", "2")].parent == ("part", "1")
    assert by[("section", "6.1.2")].parent == ("section", "6.1")
    assert by[("section", "7.2.3")].parent == ("section", "7.2")
    assert by[("section", "2.3")].parent == ("chapter", "2")
    # Parts lose their word-count note from the title but keep it in the summary.
    assert by[("part", "1")].title == "萌芽——一个工程师的问题"
    assert "约1.5万字" in (by[("part", "1")].summary_text or "")
    # Outline bullets are the chapter's summary; draft prose its manuscript.
    assert "上市与否的三重权衡" in (by[("chapter", "8")].summary_text or "")
    assert by[("chapter", "8")].manuscript_text is None
    s23 = by[("section", "2.3")].manuscript_text or ""
    assert "我们现在像一家‘外包工作室’" in s23
    s13 = by[("section", "1.3")].manuscript_text or ""
    assert s13.rstrip().endswith("一个年轻的研究员，即将开始怀疑他脚下的地基。")
    assert "已完成" not in s13  # the drafting note after the rule is not prose
    assert [t for _, t in parsed.notes] == [
        "第一编第一章已完成，约3000字。请问是否继续写第二章？", "第三章已完成。",
        "至此第二编完成，共三章。", "第七章已完成，约4000字。"]
    sections = {n.number for n in parsed.nodes if n.kind == "section" and n.number}
    assert {"1.1", "2.4", "3.3", "6.1.1", "6.4.3", "7.2.1", "7.4"} <= sections
    prologue = next(n for n in parsed.nodes if n.title == "开篇：雨夜的电话")
    assert prologue.parent == ("part", "1") and "不合时宜" in (prologue.manuscript_text or "")
    overview = next(n for n in parsed.nodes if n.title == "本书总览")
    assert overview.parent == by[("book", None)].key and overview.manuscript_text is None


def test_parse_seed_tree_shape() -> None:
    """The real seed book, whose headings are less regular than the fixture's."""
    parsed = parse(seed_file(SEED_BOOK_NAME).read_text(encoding="utf-8"))
    by = {(n.kind, n.number): n for n in parsed.nodes}
    assert parsed.counts()["part"] == 5
    assert parsed.counts()["chapter"] == 16
    assert [n.kind for n in parsed.nodes].count("book") == 1
    # Outline and draft headings of one chapter are one node; the outline's title wins.
    assert by[("chapter", "7")].title == "技术豪赌：All in MoE架构（2023年）"
    assert by[("chapter", "7")].parent == ("part", "3")
    assert by[("chapter", "2")].parent == ("part", "1")
    assert by[("section", "6.1.2")].parent == ("section", "6.1")
    assert by[("section", "2.3")].parent == ("chapter", "2")
    # Parts lose their word-count note from the title but keep it in the summary.
    assert by[("part", "1")].title == "潮涌——时代土壤与认知起源"
    assert "约1.5万字" in (by[("part", "1")].summary_text or "")
    # Outline bullets are the chapter's summary; draft prose its manuscript.
    assert "上市决策的多维考量" in (by[("chapter", "11")].summary_text or "")
    assert by[("chapter", "11")].manuscript_text is None
    s23 = by[("section", "2.3")].manuscript_text or ""
    assert "我们现在像一家‘AI咨询公司’" in s23
    s13 = by[("section", "1.3")].manuscript_text or ""
    assert s13.rstrip().endswith("一个关键人物，即将做出他的选择。")
    assert "已完成" not in s13  # the drafting note after the rule is not prose
    assert any("第一编第一章已完成" in t for _, t in parsed.notes)
    sections = {n.number for n in parsed.nodes if n.kind == "section" and n.number}
    assert {"1.1", "2.4", "3.5", "6.1.1", "7.4.3", "8.7", "9.4.3", "10.6"} <= sections
    prologue = next(n for n in parsed.nodes if n.title == "开篇：觉醒年代")
    assert prologue.parent == ("part", "1") and "信仰者的时代" in (prologue.manuscript_text or "")


def test_parse_refuses_text_without_headings() -> None:
    with pytest.raises(OutlineError, match="No headings"):
        parse("只是一段文字，没有任何标题。\n\n第二段。")


def test_english_outline() -> None:
    parsed = parse("# Part 1: Origins\n## Chapter 2: The Lab\n### 2.1 Early days\nProse.\n")
    assert [(n.kind, n.number, n.title) for n in parsed.nodes] == [
        ("part", "1", "Origins"), ("chapter", "2", "The Lab"), ("section", "2.1", "Early days")]
    assert parsed.nodes[2].manuscript_text == "Prose."


# ----------------------------------------------------------------------------- API


def test_import_book_builds_tree(api) -> None:
    r = import_book(api)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["created"] == body["count"] == len(flatten(body["data"]))
    assert len(body["data"]) == 1 and body["data"][0]["kind"] == "book"
    nodes = flatten(body["data"])
    parts = [n for n in nodes if n["kind"] == "part"]
    assert [p["number"] for p in parts] == ["1", "2", "3"]
    part2 = parts[1]
    assert [c["number"] for c in part2["children"]] == ["4", "5", "6"]
    assert [c["number"] for c in parts[2]["children"]] == ["7", "8"]
    ch6 = next(n for n in nodes if n["kind"] == "chapter" and n["number"] == "6")
    assert [c["number"] for c in ch6["children"]] == ["6.1", "6.2", "6.3", "6.4", "6.5"]
    assert [c["number"] for c in ch6["children"][0]["children"]] == ["6.1.1", "6.1.2"]
    assert len(body["notes"]) == 4 and all("完成" in n["text"] for n in body["notes"])
    s23 = next(n for n in nodes if n["number"] == "2.3")
    full = api.client.get(f"/api/v1/chapters/{s23['id']}", headers=api.headers("researcher"))
    assert full.status_code == 200
    assert "外包工作室" in full.json()["manuscript"]
    assert full.json()["path"][-1].startswith("Chapter 2")
    # Everyone may read the tree.
    tree = api.client.get("/api/v1/chapters", headers=api.headers("researcher")).json()
    assert tree["count"] == body["count"]


def test_reimport_updates_in_place_and_keeps_quote_links(api, tmp_path: Path) -> None:
    first = import_book(api).json()
    nodes = {n["number"] or n["title"]: n for n in flatten(first["data"])}
    quote_id = seeded_quote(api, tmp_path)
    s23 = nodes["2.3"]["id"]
    r = api.client.post(f"/api/v1/chapters/{s23}/quotes",
                        json={"quote_id": quote_id, "usage": "drafted"},
                        headers=api.headers("author"))
    assert r.status_code == 201, r.text
    text = BOOK.read_text(encoding="utf-8")
    edited = text.replace("## **2.3 第三次转身：定制模型的困局**",
                          "## **2.3 第三次转身：外包的困局**")
    edited = edited.replace("### **6.4.3 从防御到协同**", "")
    assert edited.count("\n") == text.count("\n")  # both edits happened
    assert "2.3 第三次转身：外包的困局" in edited and "6.4.3" not in edited
    again = import_book(api, edited).json()
    assert again["created"] == 0
    # Nothing is deleted: the section the document dropped is kept and reported.
    assert again["count"] == first["count"]
    assert again["not_in_document"] == [nodes["6.4.3"]["id"]]
    after = {n["number"] or n["title"]: n for n in flatten(again["data"])}
    assert after["2.3"]["id"] == s23 and after["2.3"]["title"] == "第三次转身：外包的困局"
    assert after["2.3"]["quote_count"] == 1
    assert {n["id"] for n in flatten(again["data"])} <= {n["id"] for n in flatten(first["data"])}
    listed = api.client.get(f"/api/v1/quotes?chapter_id={s23}", headers=api.headers("author"))
    assert [q["id"] for q in listed.json()["data"]] == [quote_id]
    # Unchanged re-import changes nothing.
    third = import_book(api, edited).json()
    assert third["created"] == 0 and third["updated"] == 0


def test_create_edit_delete_chapter(api) -> None:
    h = api.headers("author")
    part = api.client.post("/api/v1/chapters", json={"kind": "part", "number": "1",
                                                     "title": "潮涌"}, headers=h)
    assert part.status_code == 201, part.text
    pid = part.json()["id"]
    ch = api.client.post("/api/v1/chapters", json={"kind": "chapter", "number": "2",
                                                   "title": "闫俊杰的算法人生", "parent_id": pid,
                                                   "manuscript": "2015年初，商汤科技成立。"},
                         headers=h).json()
    assert ch["path"] == ["Part 1: 潮涌"]
    r = api.client.patch(f"/api/v1/chapters/{ch['id']}", json={"title": "算法人生"}, headers=h)
    assert r.status_code == 200 and r.json()["title"] == "算法人生"
    assert r.json()["manuscript"] == "2015年初，商汤科技成立。"
    cycle = api.client.patch(f"/api/v1/chapters/{pid}", json={"parent_id": ch["id"]}, headers=h)
    assert cycle.status_code == 422 and "under itself" in cycle.json()["detail"]
    bad_parent = api.client.post("/api/v1/chapters", json={"title": "x", "parent_id": 999},
                                 headers=h)
    assert bad_parent.status_code == 422
    assert api.client.post("/api/v1/chapters", json={"title": "x"},
                           headers=api.headers("researcher")).status_code == 403
    assert api.client.delete(f"/api/v1/chapters/{pid}", headers=h).status_code == 204
    assert api.client.get(f"/api/v1/chapters/{ch['id']}", headers=h).status_code == 404
    log = api.client.get("/api/v1/audit/log?object_type=chapter",
                         headers=api.headers("editor")).json()
    assert [e["action"] for e in log["data"]][::-1] == ["create", "create", "update", "delete"]


@pytest.mark.parametrize("role,code", [("researcher", 403), ("author", 201), ("editor", 201),
                                       ("admin", 201)])
def test_import_roles(api, role: str, code: int) -> None:
    assert import_book(api, "# 第一编 潮涌\n## 第一章 前夜\n", role=role).status_code == code


def test_import_bad_input(api) -> None:
    post = api.client.post
    url = "/api/v1/chapters/import"
    as_json = post(url, json={"title": "第一章"}, headers=api.headers("author"))
    assert as_json.status_code == 415 and "text/markdown" in as_json.json()["detail"]
    json_as_md = post(url, content=b'{"chapters": ["\xe7\xac\xac"]}', headers=headers(api))
    assert json_as_md.status_code == 415 and "JSON" in json_as_md.json()["detail"]
    binary = post(url, content=b"\x89PNG\r\n\x1a\n\x00\x00\x00IHDR", headers=headers(api))
    assert binary.status_code == 415 and "binary" in binary.json()["detail"]
    latin1 = post(url, content="# Kapitel\xe9".encode("latin-1"), headers=headers(api))
    assert latin1.status_code == 415 and "UTF-8" in latin1.json()["detail"]
    plain = post(url, content="只是一段文字，没有标题。".encode(), headers=headers(api))
    assert plain.status_code == 422 and "No headings" in plain.json()["detail"]
    empty = post(url, content=b"  \n", headers=headers(api))
    assert empty.status_code == 422
    huge = post(url, content=b"# a\n" + b"x" * (5 * 1024 * 1024), headers=headers(api))
    assert huge.status_code == 413 and "MiB" in huge.json()["detail"]
    tree = api.client.get("/api/v1/chapters", headers=api.headers("author")).json()
    assert tree["count"] == 0
