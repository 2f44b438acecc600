"""The pages name things (issue 17 items 7, 8, 9, 12), through TestClient on both DBs.

Chapter menus start at "Choose a chapter…"; "Used in" names chapters; the clearance
table shows each quote's text as the reader may read it; the transcript page and the
recordings list show the speakers of the current version and say where the version
came from; the consent page's person menu starts with the recording's people.
"""

from __future__ import annotations

import re
from pathlib import Path

from markupsafe import escape
from sqlmodel import Session, select

from service.models.users import User
from service.visibility import RESTRICTED_TEXT
from service.web import book
from tests.conftest import Api
from tests.factories import (
    INVESTOR_OFF,
    INVESTOR_TERMS,
    YAN_TALENT,
    add_transcript,
    create_recording,
    name_speakers,
    person,
    small_book,
)
from tests.web.test_pages import sign_in

VTT = """WEBVTT

00:00.000 --> 00:03.000
<v 主持人>你好，欢迎来到节目。

00:03.000 --> 00:06.000
<v 闫俊杰>谢谢邀请。
"""


def _selects(page: str, name: str) -> list[str]:
    return re.findall(rf'<select name="{name}"[^>]*>(.*?)</select>', page, re.S)


def test_chapter_menus_have_no_default_and_links_name_chapters(api: Api,
                                                               tmp_path: Path) -> None:
    ids = small_book(api, tmp_path)
    sign_in(api, "author")
    page = api.client.get("/chapters").text
    menus = _selects(page, "chapter_id")
    assert len(menus) >= 2  # one per quote, and the draft check
    for menu in menus:
        first = re.match(r"\s*<option([^>]*)>([^<]*)</option>", menu)
        assert first is not None, menu[:200]
        assert first.group(2) == "Choose a chapter…"
        assert 'value=""' in first.group(1) and "selected" in first.group(1)
        assert menu.count("selected") == 1  # no chapter is chosen for the user
    for tag in re.findall(r'<select name="chapter_id"[^>]*>', page):
        assert "required" in tag
    # "Used in" names the chapter (number and title), not its id.
    used = re.findall(r'<span class="chip used-in">([^<]*)</span>', page)
    assert "第五章 路径选择：为何是“模型+产品”双轮驱动？ · published" in used
    assert "第十二章 从科学家到CEO：角色的痛苦迁徙 · candidate" in used
    assert len(used) == 8 and not any(re.match(r"#\d", u) for u in used)
    assert ids


def test_transcript_page_and_list_show_the_current_versions_speakers(
        api: Api, tmp_path: Path) -> None:
    yan = person(api, "闫俊杰")
    person(api, "主持人")
    rid = create_recording(api, tmp_path, "两个版本的访谈", [(yan, "interviewee")], seconds=8.0)
    add_transcript(api, rid, [(0.0, 3.0, "SPEAKER_00", "你好"),
                              (3.0, 6.0, "SPEAKER_01", "谢谢")], backend="faster-whisper")
    name_speakers(api, rid, {"SPEAKER_01": yan})
    r = api.client.post(f"/api/v1/recordings/{rid}/transcript", content=VTT.encode(),
                        headers=api.headers("researcher") | {"Content-Type": "text/vtt"})
    assert r.status_code in (200, 201), r.text
    sign_in(api, "researcher")
    page = api.client.get(f"/recordings/{rid}").text
    line = re.search(r'<div class="muted version-line">(.*?)\n', page)
    assert line is not None and line.group(1).strip() == \
        "Version 2 of 2 · imported from WebVTT", line.group(1) if line else page[:500]
    labels = re.findall(r'<div class="speaker-row" data-label="([^"]+)">', page)
    assert labels == ["主持人", "闫俊杰"]
    old = api.client.get(f"/recordings/{rid}", params={"version": 1}).text
    assert "Version 1 of 2 · transcribed by Whisper test" in old
    assert re.findall(r'<div class="speaker-row" data-label="([^"]+)">', old) == \
        ["SPEAKER_00", "SPEAKER_01"]
    listing = api.client.get("/recordings").text
    row = listing.split("两个版本的访谈", 1)[1].split("</tr>", 1)[0]
    assert "SPEAKER_00" not in row and "SPEAKER_01" not in row
    assert row.count('<span class="chip">闫俊杰</span>') == 1
    assert '<span class="chip">主持人</span>' in row


def test_clearance_table_shows_each_quotes_text(api: Api, tmp_path: Path) -> None:
    ids = small_book(api, tmp_path)
    sign_in(api, "editor")
    page = api.client.get("/consent", params={"as_of": "2026-10-01"}).text
    rows = re.findall(r'<tr class="clear-row[^"]*" data-quote="(\d+)">\s*<td>(.*?)</td>',
                      page, re.S)
    texts = {int(qid): cell for qid, cell in rows}
    assert str(escape(YAN_TALENT))[:30] in texts[ids["q_talent"]]
    assert str(escape(INVESTOR_TERMS))[:30] in texts[ids["q_terms"]]
    assert all(not cell.lstrip().startswith("#") for cell in texts.values())
    # Editors read everything; the rule of service.visibility withholds from authors
    # the off-the-record quote, which the same table would then show as [restricted].
    with Session(api.engine) as session:
        author = session.exec(select(User).where(User.name == "author")).one()
        editor = session.exec(select(User).where(User.name == "editor")).one()
        quote_ids = {ids["q_off"], ids["q_terms"]}
        as_author = book._quote_texts(session, author, quote_ids)
        as_editor = book._quote_texts(session, editor, quote_ids)
    assert as_author[ids["q_off"]] == RESTRICTED_TEXT
    assert as_author[ids["q_terms"]] == INVESTOR_TERMS
    assert as_editor[ids["q_off"]] == INVESTOR_OFF
    assert str(escape(INVESTOR_OFF))[:20] in texts[ids["q_off"]]


def test_consent_person_menu_and_impact_wording(api: Api, tmp_path: Path) -> None:
    ids = small_book(api, tmp_path)
    sign_in(api, "editor")
    page = api.client.get("/consent", params={"recording": ids["r_luo"]}).text
    menu = _selects(page, "person_id")[0]
    groups = re.findall(r'<optgroup label="([^"]+)">(.*?)</optgroup>', menu, re.S)
    assert [g for g, _ in groups] == ["In this interview", "Everyone else"]
    here = re.findall(r">([^<]+)</option>", groups[0][1])
    elsewhere = re.findall(r">([^<]+)</option>", groups[1][1])
    assert sorted(here) == ["罗永浩", "闫俊杰"]
    assert "李明远" in elsewhere and "姚顺雨" in elsewhere and "闫俊杰" not in elsewhere
    # An agreement no quote rests on: nothing would be blocked, said plainly.
    spare = api.client.post("/api/v1/consents", headers=api.headers("editor"), json={
        "person_id": ids["yao"], "recording_id": ids["r_luo"], "status": "granted"})
    assert spare.status_code == 201, spare.text
    page = api.client.get("/consent", params={"recording": ids["r_luo"],
                                              "impact": spare.json()["id"]}).text
    impact = page.split('id="impact"', 1)[1]
    assert "Nothing would be blocked" in impact and "would block these uses" not in impact
    # One that quotes rest on lists them by their text and chapter.
    page = api.client.get("/consent", params={"recording": ids["r_luo"],
                                              "impact": ids["c_yan"]}).text
    impact = page.split('id="impact"', 1)[1]
    assert "A withdrawal would block these uses:" in impact
    assert str(escape(YAN_TALENT))[:20] in impact and "第五章" in impact
