"""The pages through TestClient: sign-in, redirects, roles, 404s, CSRF and escaping.

Every page must refuse exactly what the API refuses; these tests pin that down per page,
on SQLite and PostgreSQL (the ``api`` fixture).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from markupsafe import escape
from sqlmodel import Session

from service.auth import CSRF_HEADER, SESSION_COOKIE, csrf_token
from service.models.recordings import Recording
from tests.conftest import Api
from tests.factories import add_transcript, create_recording, person, small_book

PAGES = ("/recordings", "/search?q=x", "/chapters", "/consent", "/recordings/1")


def sign_in(api: Api, role: str) -> str:
    """Sign in through the form, as a browser would; returns the page's CSRF value."""
    api.client.cookies.clear()
    r = api.client.post("/login", data={"token": api.tokens[role], "next": "/search"},
                        follow_redirects=False)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/search"
    # The cookie holds the sign-in's own session token; the CSRF value derives from it.
    return csrf_token(api.settings.token_key(), api.client.cookies[SESSION_COOKIE])


@pytest.mark.parametrize("path", PAGES)
def test_a_page_without_a_cookie_redirects_to_sign_in(api: Api, path: str) -> None:
    api.client.cookies.clear()
    r = api.client.get(path, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login?next=%2F")


def test_sign_in_sets_an_httponly_strict_cookie_and_sign_out_clears_it(api: Api) -> None:
    api.client.cookies.clear()
    r = api.client.post("/login", data={"token": api.tokens["author"]}, follow_redirects=False)
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain http in the test client
    page = api.client.get("/recordings")
    assert page.status_code == 200 and "author · author" in page.text
    csrf = re.search(r'<meta name="csrf" content="([0-9a-f]+)">', page.text)
    assert csrf is not None
    r = api.client.post("/logout", data={"csrf": "wrong"}, follow_redirects=False)
    assert r.status_code == 403
    r = api.client.post("/logout", data={"csrf": csrf.group(1)}, follow_redirects=False)
    assert r.status_code == 303 and f'{SESSION_COOKIE}=""' in r.headers["set-cookie"]
    assert api.client.get("/recordings", follow_redirects=False).status_code == 303


def test_a_bad_token_is_refused_and_next_never_leaves_the_site(api: Api) -> None:
    api.client.cookies.clear()
    r = api.client.post("/login", data={"token": "sb_nope"}, follow_redirects=False)
    assert r.status_code == 401 and SESSION_COOKIE not in r.headers.get("set-cookie", "")
    for target in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        r = api.client.post("/login", data={"token": api.tokens["author"], "next": target},
                            follow_redirects=False)
        assert r.headers["location"] == "/recordings"
    r = api.client.post("/login", data={"token": api.tokens["author"]},
                        headers={"Origin": "https://evil.example"}, follow_redirects=False)
    assert r.status_code == 403
    # A cookie whose token was revoked is dropped on the way to sign-in.
    api.client.cookies.clear()
    api.client.cookies.set(SESSION_COOKIE, "sb_revoked")
    r = api.client.get("/chapters", follow_redirects=False)
    assert r.status_code == 303 and f'{SESSION_COOKIE}=""' in r.headers["set-cookie"]


def test_each_page_checks_the_role_like_the_api(api: Api, tmp_path: Path) -> None:
    rid = create_recording(api, tmp_path, "角色测试")
    expected = {
        "researcher": {"/chapters": 403, "/consent": 403, "/recordings/jobs": 200},
        "author": {"/chapters": 200, "/consent": 403, "/recordings/jobs": 403},
        "editor": {"/chapters": 200, "/consent": 200, "/recordings/jobs": 200},
        "admin": {"/chapters": 200, "/consent": 200, "/recordings/jobs": 200},
    }
    for role, pages in expected.items():
        sign_in(api, role)
        for path, status in (pages | {"/recordings": 200, "/search": 200,
                                      f"/recordings/{rid}": 200}).items():
            r = api.client.get(path, follow_redirects=False)
            assert r.status_code == status, (role, path, r.text[:300])
            if status == 403:
                assert "Not allowed" in r.text and "may not do this" in r.text
    sign_in(api, "author")
    page = api.client.get("/recordings").text
    assert 'id="upload"' not in page and "/chapters" in page and "/consent" not in page
    sign_in(api, "researcher")
    page = api.client.get("/recordings").text
    assert 'id="upload"' in page and 'href="/chapters"' not in page


def test_invisible_and_missing_objects_are_404(api: Api, tmp_path: Path) -> None:
    rid = create_recording(api, tmp_path, "私人录音")
    r = api.client.patch(f"/api/v1/recordings/{rid}", json={"access": "private"},
                         headers=api.headers("researcher"))
    assert r.status_code == 200, r.text
    sign_in(api, "author")
    for path in (f"/recordings/{rid}", "/recordings/999999", f"/search?q=x&recording={rid}",
                 "/search?q=x&person=424242"):
        r = api.client.get(path)
        assert r.status_code == 404, path
        assert "Not found" in r.text
    assert "私人录音" not in api.client.get("/recordings").text
    sign_in(api, "editor")
    assert api.client.get(f"/recordings/{rid}").status_code == 200
    assert api.client.get("/consent?impact=999999").status_code == 404
    assert api.client.get("/consent?chapter=999999").status_code == 404


def test_cookie_writes_need_the_csrf_header_bearer_writes_do_not(api: Api) -> None:
    csrf = sign_in(api, "researcher")
    body = {"name": "跨站"}
    # What a cross-site form or fetch can send: the cookie, no custom header.
    r = api.client.post("/api/v1/people", json=body)
    assert r.status_code == 403 and CSRF_HEADER in r.json()["detail"]
    r = api.client.post("/api/v1/people", data=body)
    assert r.status_code == 403
    r = api.client.post("/api/v1/people", json=body, headers={CSRF_HEADER: "0" * 32})
    assert r.status_code == 403
    # Reads with the cookie alone are fine (links, <audio src>, exports).
    assert api.client.get("/api/v1/me").json()["role"] == "researcher"
    r = api.client.post("/api/v1/people", json=body, headers={CSRF_HEADER: csrf})
    assert r.status_code == 201, r.text
    api.client.cookies.clear()
    r = api.client.post("/api/v1/people", json={"name": "持令牌"},
                        headers=api.headers("researcher"))
    assert r.status_code == 201


def test_user_text_is_escaped_everywhere(api: Api, tmp_path: Path) -> None:
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    pid = person(api, f"张三{evil}")
    rid = create_recording(api, tmp_path, f"标题{evil}", [(pid, "interviewee")])
    add_transcript(api, rid, [(0.0, 3.0, "SPEAKER_00", f"你好 {evil} 世界")])
    sign_in(api, "editor")
    pages = [api.client.get(p).text for p in
             ("/recordings", f"/recordings/{rid}", "/search?q=世界", "/chapters",
              f"/consent?recording={rid}")]
    for html in pages:
        assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in pages[1]
    assert "<mark>世</mark>" in pages[2] or "<mark>世界</mark>" in pages[2]


def test_pages_show_the_book_state(api: Api, tmp_path: Path) -> None:
    ids = small_book(api, tmp_path)
    sign_in(api, "author")
    page = api.client.get(f"/recordings/{ids['r_inv']}").text
    # Authors see the off-the-record span as restricted, without its words.
    assert "[restricted]" in page and "另一家基金" not in page
    assert 'class="seg restricted restricted-off_record' in page
    assert "<svg" in page and page.count("<rect") == 2
    chapters = api.client.get("/chapters").text
    assert "黄金搭档与第一张蓝图" in chapters and "usage-drafted" in chapters
    hits = api.client.get("/search", params={"q": "数据飞轮"}).text
    assert f'/recordings/{ids["r_yao"]}?t=0.0#seg-' in hits and "姚顺雨" in hits
    sign_in(api, "editor")
    page = api.client.get(f"/recordings/{ids['r_inv']}").text
    assert "另一家基金" in page and "off record" in page  # marked, not hidden
    assert 'title="Off the record: the speaker asked' in page  # the badge says what it means
    consent = api.client.get("/consent", params={"chapter": ids["ch4"],
                                                 "as_of": "2026-10-01"}).text
    assert "clear-blocked" in consent and "clear-cleared" in consent
    consent = api.client.get("/consent", params={"recording": ids["r_luo"],
                                                 "impact": ids["c_yan"]}).text
    assert "Impact of withdrawing agreement" in consent and "第五章" in consent

    def reports() -> int:
        r = api.client.get("/api/v1/audit/log", params={"action": "clearance-report"},
                           headers=api.headers("admin"))
        return int(r.json()["count"])

    # Looking at the page is not an audited report (it reloads after every change);
    # taking the report away is.
    viewed = reports()
    for _ in range(3):
        assert api.client.get("/consent").status_code == 200
    assert reports() == viewed
    assert api.client.get("/api/v1/clearance", params={"format": "md"}).status_code == 200
    assert reports() == viewed + 1
    sign_in(api, "researcher")
    listing = api.client.get("/recordings").text
    assert "consent-granted" in listing and "consent-pending" in listing
    jobs = api.client.get("/recordings/jobs").text  # each job names its recording
    with Session(api.engine) as session:
        title = session.get(Recording, ids["r_inv"]).title
    assert f'<a href="/recordings/{ids["r_inv"]}">{escape(title)}</a>' in jobs


def test_the_chapter_tree_shows_every_linked_quote_whatever_the_page(
        api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The quote list is paged; the tree is not, so no chapter loses quotes from view."""
    from sqlmodel import Session, func, select

    from service.models.quotes import ChapterQuote
    from service.web import book

    small_book(api, tmp_path)
    with Session(api.engine) as session:
        links = session.exec(select(func.count()).select_from(ChapterQuote)).one()
    assert links >= 2
    monkeypatch.setattr(book, "QUOTES_SHOWN", 1)
    sign_in(api, "editor")
    page = api.client.get("/chapters").text
    tree = page.split('class="chapter-quotes"', 1)[1] if 'class="chapter-quotes"' in page else ""
    assert page.count('<span class="badge usage-') == links, tree[:500]
