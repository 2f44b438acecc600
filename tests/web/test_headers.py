"""Security headers (issue 13, item 11) on every page, for every role, and every API route.

The pages show transcripts: without a CSP a stored script that got past escaping would
run, without X-Frame-Options they could be framed, and without ``no-store`` a browser or
proxy keeps withheld text after a restriction or sign-out. One middleware
(``service.api.headers``) sets them; these tests read them off real responses, including
errors, redirects, exports and audio, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from service.api.headers import CSP, DOCS_CSP
from service.web.common import STATIC_DIR
from tests.conftest import Api
from tests.factories import small_book
from tests.web.test_pages import sign_in

TEMPLATES = STATIC_DIR.parent / "templates"
COMMON = {"x-frame-options": "DENY", "x-content-type-options": "nosniff",
          "referrer-policy": "no-referrer"}

# What the CSP refuses in markup: inline scripts, inline handlers, javascript: URLs and
# style attributes (and <style> elements).
INLINE = [
    (re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>", re.I), "inline <script>"),
    (re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.I), "inline event handler"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
    (re.compile(r"<[a-z][^>]*\sstyle\s*=", re.I), "style attribute"),
    (re.compile(r"<style\b", re.I), "<style> element"),
]


def assert_secure(r: Any, *, cache: bool = False, csp: str = CSP) -> None:
    where = f"{r.request.method} {r.request.url.path} -> {r.status_code}"
    assert r.headers.get("content-security-policy") == csp, where
    for name, value in COMMON.items():
        assert r.headers.get(name) == value, (where, name)
    if not cache:
        assert r.headers.get("cache-control") == "no-store", where
    else:
        assert "no-store" not in r.headers.get("cache-control", ""), where


def assert_no_inline(html: str, where: str) -> None:
    for pattern, what in INLINE:
        m = pattern.search(html)
        assert m is None, (where, what, html[max(0, m.start() - 80):m.end() + 80] if m else "")


def test_every_page_as_every_role_sends_the_headers(api: Api, tmp_path: Path) -> None:
    ids = small_book(api, tmp_path)
    api.client.cookies.clear()
    for path in ("/", "/login", "/recordings", "/nowhere"):  # signed out: form, redirects
        assert_secure(api.client.get(path, follow_redirects=False))
    login = api.client.get("/login")
    assert_no_inline(login.text, "/login")
    assert_secure(api.client.post("/login", data={"token": "sb_wrong"}))
    pages = ["/recordings", f"/recordings/{ids['r_luo']}", f"/recordings/{ids['r_inv']}",
             "/recordings/jobs", "/search?q=钱", "/chapters", "/consent",
             f"/consent?recording={ids['r_luo']}", f"/consent?chapter={ids['ch5']}",
             "/recordings/999999"]
    for role in ("researcher", "author", "editor", "admin"):
        csrf = sign_in(api, role)
        for path in pages:
            r = api.client.get(path, follow_redirects=False)
            assert r.status_code in (200, 403, 404), (role, path, r.status_code)
            assert_secure(r)
            if r.headers["content-type"].startswith("text/html"):
                assert_no_inline(r.text, f"{role} {path}")
        assert_secure(api.client.post("/logout", data={"csrf": csrf}, follow_redirects=False))


def test_templates_and_scripts_need_no_unsafe_inline() -> None:
    for template in TEMPLATES.glob("*.html"):
        markup = re.sub(r"\{#.*?#\}", "", template.read_text(encoding="utf-8"), flags=re.S)
        assert_no_inline(markup, template.name)
    for script in STATIC_DIR.glob("*.js"):
        js = script.read_text(encoding="utf-8")
        for banned in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                       "eval(", "new Function", 'setAttribute("on', "setAttribute('on",
                       'setAttribute("style', ".style.cssText", "javascript:"):
            assert banned not in js, (script.name, banned)
    base = (TEMPLATES / "base.html").read_text(encoding="utf-8")
    assert '"includeIndicatorStyles": false' in base and '"allowEval": false' in base
    assert '"allowScriptTags": false' in base


def _path_values(ids: dict[str, int], api: Api) -> dict[str, Any]:
    consents = api.client.get("/api/v1/consents", headers=api.headers("editor")).json()
    transcript = api.client.get(f"/api/v1/recordings/{ids['r_luo']}/transcript",
                                headers=api.headers("editor")).json()
    jobs = api.client.get("/api/v1/jobs", headers=api.headers("admin")).json()
    return {"recording_id": ids["r_luo"], "person_id": ids["yan"], "chapter_id": ids["ch5"],
            "quote_id": ids["q_talent"], "consent_id": consents["data"][0]["id"],
            "segment_id": transcript["segments"][0]["id"], "job_id": jobs["data"][0]["id"],
            "user_id": api.user_ids["author"], "restriction_id": 1}


def test_every_api_route_sends_the_headers(api: Api, tmp_path: Path) -> None:
    ids = small_book(api, tmp_path)
    values = _path_values(ids, api)
    spec = api.client.get("/openapi.json")
    assert_secure(spec)
    seen = 0
    for path, methods in spec.json()["paths"].items():
        for method in methods:
            # Reads with real ids (the archive's content); writes aimed at ids that do not
            # exist, without a body: refusals must carry the headers as well.
            fill = values if method == "get" else {k: 999999 for k in values}
            url = re.sub(r"\{(\w+)\}", lambda m, fill=fill: str(fill.get(m[1], 1)), path)
            r = api.client.request(method.upper(), url, headers=api.headers("admin"))
            assert r.status_code < 500, (method, url, r.text[:300])
            assert_secure(r)
            seen += 1
    assert seen > 50


@pytest.mark.parametrize("role", ["researcher", "author"])
def test_downloads_and_audio_are_never_stored(api: Api, tmp_path: Path, role: str) -> None:
    ids = small_book(api, tmp_path)
    rid, h = ids["r_luo"], api.headers(role)
    for fmt in ("txt", "md", "srt", "vtt", "json", "docx"):
        r = api.client.get(f"/api/v1/recordings/{rid}/transcript/export",
                           params={"format": fmt}, headers=h)
        assert r.status_code == 200, r.text
        assert_secure(r)
    r = api.client.get(f"/api/v1/recordings/{rid}/audio", headers=h | {"Range": "bytes=0-99"})
    assert r.status_code == 206
    assert_secure(r)
    for fmt in ("csv", "md"):
        r = api.client.get("/api/v1/clearance", params={"format": fmt},
                           headers=api.headers("editor"))
        assert r.status_code == 200
        assert_secure(r)


def test_static_files_may_be_cached_and_docs_work_offline(api: Api) -> None:
    for path in ("/static/app.css", "/static/app.js", "/static/vendor/htmx.min.js",
                 "/static/vendor/swagger-ui/swagger-ui-bundle.js", "/static/docs.js"):
        r = api.client.get(path)
        assert r.status_code == 200, path
        assert_secure(r, cache=True)
    r = api.client.get("/docs")
    assert r.status_code == 200
    assert_secure(r, csp=DOCS_CSP)
    assert_no_inline(r.text, "/docs")
    # Every script and stylesheet comes from this server: no CDN, so it works offline.
    for ref in re.findall(r'(?:src|href)="([^"]+)"', r.text):
        assert ref.startswith("/static/"), ref
        assert api.client.get(ref).status_code == 200, ref
    assert api.client.get("/redoc").status_code == 404  # it could only load from a CDN
    vendor = STATIC_DIR / "vendor" / "swagger-ui"
    assert "Apache License" in (vendor / "LICENSE").read_text(encoding="utf-8")
