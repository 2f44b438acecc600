"""The pages day to day (issue 17, items 10, 11, 13 and 14), through TestClient on SQLite
and PostgreSQL: ISO dates and live statuses on the recordings list, clock times in forms
and the API, the inline correction pencil, refusals that keep the navigation, a favicon,
hints when a search finds nothing, and the admins' access page.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from service.auth import CSRF_HEADER
from service.models.clock import ACCEPTED, BadClock, parse_clock
from tests.conftest import Api
from tests.factories import add_transcript, create_recording, recording
from tests.web.test_pages import sign_in

NAV = ('<a href="/recordings"', '<a href="/search"', '<a href="/glossary"')


# --- item 10: the recordings list ---------------------------------------------------------

def test_recordings_show_iso_dates_and_a_location_without_a_date(api: Api,
                                                                 tmp_path: Path) -> None:
    dated = recording(api, tmp_path, title="有日期", recorded_at="2025-03-01T14:30",
                      location="上海")
    placed = recording(api, tmp_path, title="只有地点", location="北京 海淀")
    sign_in(api, "researcher")
    page = api.client.get("/recordings").text
    row = page.split(f'data-recording="{dated["id"]}"', 1)[1].split("</tr>", 1)[0]
    assert '<div class="muted when-where">2025-03-01 · 上海</div>' in row
    row = page.split(f'data-recording="{placed["id"]}"', 1)[1].split("</tr>", 1)[0]
    assert '<div class="muted when-where">北京 海淀</div>' in row
    # The status badge carries the value the page's script refreshes.
    assert f'data-status="{dated["status"]}"' in row or 'data-status="queued"' in row
    # No locale-formatted date pickers (Chromium shows those as mm/dd/yyyy in en-US).
    assert 'type="date' not in page and "datetime-local" not in page
    assert 'placeholder="2025-03-01 14:30"' in page
    transcript = api.client.get(f"/recordings/{dated['id']}").text
    assert "· 2025-03-01" in transcript and "上海" in transcript
    sign_in(api, "editor")
    consent = api.client.get("/consent", params={"recording": dated["id"]}).text
    assert 'type="date' not in consent and 'placeholder="2025-03-01"' in consent


def test_the_recordings_script_polls_the_list_api_for_statuses(api: Api) -> None:
    """The list follows statuses itself (the browser test watches it happen)."""
    script = api.client.get("/static/recordings.js").text
    assert "/api/v1/recordings?" in script and "data-status" not in script.split("PENDING")[0]
    assert 'new Set(["queued", "processing"])' in script
    # What the script reads is what the list API answers: status, duration, speakers.
    r = api.client.get("/api/v1/recordings", params={"limit": 50, "offset": 0},
                       headers=api.headers("author"))
    assert r.status_code == 200 and "data" in r.json()


# --- item 11: clock times in forms and the API ---------------------------------------------

@pytest.mark.parametrize(("typed", "seconds"), [
    ("754", 754.0), ("754.5", 754.5), (" 12:34 ", 754.0), ("1:02:03", 3723.0),
    ("0:05.25", 5.25), ("62:00", 3720.0), (90, 90.0), (1.5, 1.5),
])
def test_clock_accepts_seconds_and_clock_strings(typed: str | float, seconds: float) -> None:
    assert parse_clock(typed) == seconds


@pytest.mark.parametrize("typed", ["", "abc", "1:75", "1:60:00", "12:34:56:78", "nan", "1e999",
                                   "12.34.56", True, "1" * 33, 10**400])
def test_clock_refuses_the_rest_naming_the_formats(typed: str | bool) -> None:
    with pytest.raises(BadClock, match=re.escape(ACCEPTED.split(",")[0])):
        parse_clock(typed)


def test_restriction_and_quote_times_accept_clock_strings(api: Api, tmp_path: Path) -> None:
    rid = int(recording(api, tmp_path, seconds=120.0, title="时间格式")["id"])
    add_transcript(api, rid, [(0.0, 40.0, "SPEAKER_00", "第一段话，讲了很多事情。"),
                              (40.0, 100.0, "SPEAKER_01", "第二段话，也讲了很多。")])
    url = f"/api/v1/recordings/{rid}/restrictions"
    r = api.client.post(url, json={"start": "1:02", "end": "1:30.5", "level": "background"},
                        headers=api.headers("editor"))
    assert r.status_code == 201, r.text
    assert (r.json()["start"], r.json()["end"]) == (62.0, 90.5)
    r = api.client.post(url, json={"start": 5, "end": "0:00:10", "level": "background"},
                        headers=api.headers("editor"))
    assert r.status_code == 201, r.text
    assert (r.json()["start"], r.json()["end"]) == (5.0, 10.0)
    for bad in ("1:75", "ten", "03/01"):
        r = api.client.post(url, json={"start": bad, "end": 20, "level": "background"},
                            headers=api.headers("editor"))
        assert r.status_code == 422, r.text
        detail = r.json()["detail"]
        assert "start" in detail and "12:34" in detail and "1:02:03" in detail, detail
    r = api.client.post("/api/v1/quotes",
                        json={"recording_id": rid, "start": "0:01", "end": "0:20"},
                        headers=api.headers("author"))
    assert r.status_code == 201, r.text
    r = api.client.post("/api/v1/quotes",
                        json={"recording_id": rid, "start": "0:01", "end": "twenty"},
                        headers=api.headers("author"))
    assert r.status_code == 422 and "h:mm:ss (1:02:03)" in r.json()["detail"], r.text
    schema = api.client.get("/openapi.json").json()["components"]["schemas"]
    start = schema["RestrictionCreate"]["properties"]["start"]
    assert {"type": "string", "maxLength": 32,
            "examples": ["12:34", "1:02:03", "754.5"]} in start["anyOf"]
    # The consent page's form takes the same spellings, and says so.
    sign_in(api, "editor")
    page = api.client.get("/consent", params={"recording": rid}).text
    form = page.split('id="restriction-form"', 1)[1].split("</form>", 1)[0]
    assert 'type="number"' not in form and 'placeholder="12:34"' in form
    assert f'title="{ACCEPTED}"' in form


def test_transcript_corrects_inline_with_a_pencil_under_a_compact_player(
        api: Api, tmp_path: Path) -> None:
    rid = create_recording(api, tmp_path, "铅笔")
    add_transcript(api, rid, [(0.0, 1.0, "SPEAKER_00", "第一句。"),
                              (1.0, 2.0, "SPEAKER_01", "第二句。")])
    sign_in(api, "researcher")
    page = api.client.get(f"/recordings/{rid}").text
    assert page.count('class="icon edit-seg"') == 2 and ">Correct<" not in page
    assert 'aria-label="Correct the text at 0:01"' in page
    # Only the audio sticks to the top; versions and exports scroll away with the page.
    player = page.split('id="player-bar"', 1)[1].split("</div>", 1)[0]
    assert "<audio" in player and "Export" not in player
    sign_in(api, "author")
    page = api.client.get(f"/recordings/{rid}").text
    assert "edit-seg" not in page and 'id="quote-bar"' in page
    css = api.client.get("/static/app.css").text
    assert "scroll-margin-top: calc(var(--player-h" in css


# --- item 13: refusals keep the navigation, a favicon, hints for empty searches ------------

def test_refusals_keep_the_navigation_of_the_signed_in_user(api: Api) -> None:
    sign_in(api, "author")
    for path, status in (("/consent", 403), ("/access", 403), ("/recordings/999999", 404)):
        r = api.client.get(path)
        assert r.status_code == status, path
        for link in NAV:
            assert link in r.text, (path, link)
        assert "author · author" in r.text and 'action="/logout"' in r.text
        assert 'href="/chapters"' in r.text  # the author's own pages stay one click away
    api.client.cookies.clear()
    assert api.client.get("/consent", follow_redirects=False).status_code == 303


def test_the_app_serves_a_favicon_every_page_names(api: Api) -> None:
    for path in ("/favicon.ico", "/static/favicon.svg"):
        r = api.client.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
        assert r.text.lstrip().startswith("<svg")
    assert '<link rel="icon" href="/static/favicon.svg"' in api.client.get("/login").text


def test_a_search_that_finds_nothing_says_what_to_try(api: Api, tmp_path: Path) -> None:
    rid = create_recording(api, tmp_path, "搜索提示")
    add_transcript(api, rid, [(0.0, 2.0, "SPEAKER_00", "我们讨论了数据飞轮。")])
    sign_in(api, "author")
    page = api.client.get("/search", params={"q": "数据飞轮"}).text
    assert "Things to try" not in page
    page = api.client.get("/search", params={"q": "数据飞轮 火星殖民",
                                             "language": "en"}).text
    assert "Nothing found for “数据飞轮 火星殖民”" in page
    assert "Remove the filters" in page and 'href="/search?q=' in page
    assert "Use fewer words" in page
    assert "/search?q=%E6%95%B0%E6%8D%AE%E9%A3%9E%E8%BD%AE&amp;language=en" in page
    assert "pinyin" in page and 'href="/glossary"' in page
    page = api.client.get("/search", params={"q": '"火星 殖民"'}).text
    assert "Drop the quotation marks" in page and "Remove the filters" not in page


# --- item 14: the access page ---------------------------------------------------------------

def test_admins_create_revoke_and_see_last_use_on_the_access_page(api: Api) -> None:
    csrf = sign_in(api, "admin")
    page = api.client.get("/access")
    assert page.status_code == 200
    assert '<a href="/access" aria-current="page">Access</a>' in page.text
    for role in ("researcher", "author", "editor", "admin"):
        assert f'data-name="{role}"' in page.text
    # The page's script creates through the API with the cookie and the CSRF header.
    r = api.client.post("/api/v1/users", json={"name": "新作者", "role": "author"},
                        headers={CSRF_HEADER: csrf})
    assert r.status_code == 201, r.text
    created = r.json()
    token, uid = created["token"], created["id"]
    row = _row(api.client.get("/access").text, uid)
    assert "never" in row and "1 working token" in row and token not in row
    assert '<option value="author" selected>' in row
    me = api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["name"] == "新作者"
    row = _row(api.client.get("/access").text, uid)
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", row) and "never" not in row
    r = api.client.post(f"/api/v1/users/{uid}/revoke", headers={CSRF_HEADER: csrf})
    assert r.status_code == 200 and r.json()["revoked"] == 1
    assert api.client.get("/api/v1/me",
                          headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert "0 working tokens" in _row(api.client.get("/access").text, uid)
    r = api.client.patch(f"/api/v1/users/{uid}", json={"disabled": True},
                         headers={CSRF_HEADER: csrf})
    assert r.status_code == 200
    row = _row(api.client.get("/access").text, uid)
    assert "disabled" in row and "enable-user" in row
    # Without the CSRF header the cookie alone creates nobody.
    assert api.client.post("/api/v1/users", json={"name": "x", "role": "admin"}).status_code == 403


@pytest.mark.parametrize("role", ["researcher", "author", "editor"])
def test_only_admins_see_the_access_page(api: Api, role: str) -> None:
    sign_in(api, role)
    r = api.client.get("/access")
    assert r.status_code == 403 and "Not allowed" in r.text and "admin" in r.text
    assert 'href="/access"' not in r.text and '<a href="/recordings"' in r.text
    assert 'href="/access"' not in api.client.get("/recordings").text


def _row(page: str, user_id: int) -> str:
    return page.split(f'<tr data-user="{user_id}"', 1)[1].split("</tr>", 1)[0]
