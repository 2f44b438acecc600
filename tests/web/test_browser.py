"""The issue's flow in a real browser, against a real server with the real pipeline.

Sign in, upload the sample recording, follow its job live, name a speaker, correct a
segment, search, make a quote by selecting words, link it to a chapter, verify a draft,
and see the quote blocked in the clearance report, then cleared once consent is recorded.
Every page is photographed at 1280 and 390 px into transcripts/screenshots/.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.factories import PYANNOTE_SAMPLE
from tests.web.conftest import SCREENSHOTS, Server

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("models_dir"),
              pytest.mark.timeout(300)]

WIDE, NARROW = 1280, 390
CORRECTED = "Sourcebook keeps every correction as a revision."


def shoot(page: Any, name: str) -> None:
    """Full-page screenshots at both widths; at 390 px nothing may scroll sideways."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width in (WIDE, NARROW):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=SCREENSHOTS / f"{name}-{width}.png", full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= width + 1, f"{name} is {overflow}px wide at {width}px"
    page.set_viewport_size({"width": WIDE, "height": 900})


def sign_in(page: Any, server: Server, role: str, path: str) -> None:
    page.context.clear_cookies()
    page.goto(server.url + path)
    assert "/login?next=" in page.url  # no cookie: the page sends us to sign in
    page.fill("input[name=token]", server.tokens[role])
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(re.escape(path.split("?")[0])))


# Every CSP violation, whatever the page: Chromium reports it on the console, and the
# event listener (an init script, which the page's CSP does not govern) names it too.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => console.error(
  `securitypolicyviolation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"} `
  + `at ${e.sourceFile}:${e.lineNumber} on ${location.pathname}`));
"""


def watch_csp(context: Any, page: Any) -> list[str]:
    """The CSP violations on ``page`` from now on (the list fills as they happen)."""
    violations: list[str] = []
    context.add_init_script(REPORT_VIOLATIONS)
    page.on("console", lambda msg: violations.append(msg.text) if (
        "securitypolicyviolation" in msg.text or "Content Security Policy" in msg.text)
        else None)
    return violations


def assert_csp_in_force(page: Any, violations: list[str]) -> None:
    """The detector works and the policy is on: an inline style and an inline handler
    added now are refused and reported."""
    page.evaluate("""() => {
        const style = document.createElement("style");
        style.textContent = "body { outline: 1px solid red }";
        document.head.append(style);
        const probe = document.createElement("div");
        probe.setAttribute("onclick", "window.__inline = true");
        document.body.append(probe);
        probe.click();
        probe.remove();
    }""")
    page.wait_for_function("() => true")  # let the console events arrive
    page.wait_for_timeout(200)
    assert page.evaluate("window.__inline === undefined")
    assert any("style-src" in v for v in violations), violations
    assert any("script-src" in v for v in violations), violations
    page.evaluate("() => document.head.lastElementChild.remove()")
    violations.clear()


def test_issue_flow(server: Server, browser: Any) -> None:
    other = server.api("POST", "/people", json={"name": "张三", "kind": "other"})
    assert other.status_code == 201, other.text
    context = browser.new_context(viewport={"width": WIDE, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    violations = watch_csp(context, page)

    # --- researcher: sign in, upload with a byte progress bar, follow the job live -----
    sign_in(page, server, "researcher", "/recordings")
    assert_csp_in_force(page, violations)
    shoot(page, "01-login-done-recordings-empty")
    # The interviewee is not in the archive yet: added from the upload form, ticked.
    page.fill("#upload input[name=new_person]", "闫俊杰")
    page.fill("#upload input[name=new_organisation]", "MiniMax")
    page.click("#add-person")
    added = page.locator(".participant:has-text('闫俊杰') input[name=participant]")
    added.wait_for()
    assert added.is_checked()
    person_id = int(added.get_attribute("value"))
    assert server.api("GET", f"/people/{person_id}").json()["organisation"] == "MiniMax"
    page.set_input_files("#upload input[name=file]", str(PYANNOTE_SAMPLE))
    page.fill("#upload input[name=title]", "样本访谈 sample interview")
    page.select_option("#upload select[name=language]", "en")
    page.fill("#upload input[name=num_speakers]", "2")
    page.click("#upload button[type=submit]")
    page.wait_for_selector("#upload-status:has-text('Uploaded')")
    # In the list at once, without a reload.
    assert "样本访谈" in page.text_content("#recording-rows tr.just-added")
    assert page.text_content("#recording-count") == "1 recording"
    loaded, total = page.eval_on_selector("#upload-progress", "e => [e.value, e.max]")
    assert loaded == total >= PYANNOTE_SAMPLE.stat().st_size
    page.wait_for_selector("tr.job.state-running", timeout=90_000)
    stage = page.text_content("tr.job td:nth-child(4)")
    assert stage in ("normalise", "transcribe", "diarize", "merge", "store")
    shoot(page, "02-recordings-job-running")
    page.wait_for_selector("tr.job.state-succeeded", timeout=180_000)
    page.reload()
    row = page.locator("table.recordings tbody tr").first
    assert "transcribed" in row.text_content()
    assert "闫俊杰: none" in row.text_content()  # no consent recorded yet
    font = page.evaluate("getComputedStyle(document.body).fontFamily")
    assert "Noto Sans CJK SC" in font and "Microsoft YaHei" in font
    shoot(page, "03-recordings-transcribed")

    # --- transcript: name a speaker, correct a segment, play from a segment ----------
    row.locator("a").first.click()
    page.wait_for_selector("#segments .seg")
    assert page.locator("#timeline rect").count() == page.locator(".seg").count()
    # Where the version came from, in words (not "faster-whisper tiny.en").
    assert "Version 1 of 1 · transcribed by Whisper" in page.text_content(".version-line")
    quoted = page.locator(".seg").nth(1)
    label = quoted.get_attribute("data-speaker")
    speaker_row = page.locator(f".speaker-row[data-label='{label}']")
    # The interview's participants come first in the menu, then everyone else.
    groups = speaker_row.locator("optgroup")
    assert groups.nth(0).get_attribute("label") == "In this interview"
    assert groups.nth(0).locator("option").all_text_contents() == ["闫俊杰"]
    assert "张三" in groups.nth(1).locator("option").all_text_contents()
    speaker_row.locator("select").select_option(str(person_id))
    speaker_row.locator(".save-speaker").click()
    page.wait_for_selector(f".speaker-row[data-label='{label}'] .speaker-name:has-text('闫俊杰')")
    assert "闫俊杰" in page.locator(".seg").nth(1).locator(".seg-speaker").text_content()
    first = page.locator(".seg").first
    first.locator(".edit-seg").click()
    first.locator("textarea").fill(CORRECTED)
    first.locator(".seg-edit button[type=submit]").click()
    page.wait_for_selector(f".seg >> text={CORRECTED}")
    assert "1 revision" in page.locator(".seg").first.locator("details.revisions").text_content()
    page.locator(".seg").nth(1).locator(".seg-time").click()
    page.wait_for_selector(".seg.playing")
    assert page.locator(".seg.playing").get_attribute("data-id") == \
        page.locator(".seg").nth(1).get_attribute("data-id")
    shoot(page, "04-transcript-researcher")

    # --- author: search, open the hit, select words, make a quote ---------------------
    sign_in(page, server, "author", "/search")
    page.fill("#q", "revision")
    page.press("#q", "Enter")
    page.wait_for_selector(".hit mark")
    hit = page.locator(".hit").first
    assert "revision" in hit.text_content().lower() and "样本访谈" in hit.text_content()
    shoot(page, "05-search")
    hit.locator("a").click()
    page.wait_for_selector(".seg.target")
    quoted = page.locator(".seg").nth(1)
    words = quoted.locator(".w")
    start_box, end_box = words.first.bounding_box(), words.last.bounding_box()
    page.mouse.move(start_box["x"] + 1, start_box["y"] + start_box["height"] / 2)
    page.mouse.down()
    page.mouse.move(end_box["x"] + end_box["width"] - 1, end_box["y"] + end_box["height"] / 2,
                    steps=5)
    page.mouse.up()
    page.wait_for_selector("#quote-bar:not([hidden])")
    shoot(page, "06-transcript-author-selection")
    page.click("#make-quote")
    page.wait_for_selector("#toast:has-text('Quote #')")
    quote_id = page.get_attribute("#toast", "data-quote")
    quote = server.api("GET", f"/quotes/{quote_id}", role="author").json()
    assert quote["person_id"] == person_id and quote["verbatim"]

    # --- chapters: import an outline, link the quote, copy its citation, verify a draft
    page.goto(server.url + "/chapters")
    page.click("summary:has-text('Import or update the outline')")
    page.fill("#outline-form textarea", "# 第一编 起点\n\n## 第一章 样本\n")
    page.click("#outline-form button[type=submit]")
    chapter = page.locator(".tree .node.depth-1:has-text('样本')")
    chapter_id = chapter.get_attribute("data-chapter")
    article = page.locator(f".quote[data-quote='{quote_id}']")
    # No chapter is chosen for the user: the menu starts at a placeholder that the form
    # refuses to send, so nothing lands on the book by accident.
    menu = article.locator("select[name=chapter_id]")
    assert menu.input_value() == ""
    assert menu.locator("option").first.text_content() == "Choose a chapter…"
    article.locator(".link-form button").click()
    assert not article.locator(".link-form").evaluate("f => f.checkValidity()")
    assert server.api("GET", f"/quotes/{quote_id}", role="author").json()["chapters"] == []
    menu.select_option(chapter_id)
    article.locator("select[name=usage]").select_option("drafted")
    article.locator(".link-form button").click()
    page.wait_for_selector(".chapter-quotes .usage-drafted")
    used = page.locator(f".quote[data-quote='{quote_id}'] .used-in").first.text_content()
    assert used == "第一章 样本 · drafted", used  # the outline wrote 第一章; stored as 1
    page.locator(f".quote[data-quote='{quote_id}'] .copy-citation").click()
    page.wait_for_selector(f"#citation-{quote_id}:has-text('闫俊杰')")
    page.select_option("#verify-form select[name=chapter_id]", chapter_id)
    page.fill("#verify-form textarea",
              f"他说：“{quote['verbatim']}”\n\n另有人说：“这是一段完全没有来源的引文，录音里没有。”\n")
    page.click("#verify-form button[type=submit]")
    page.wait_for_selector("#verify-results .verify-item")
    statuses = page.locator("#verify-results .badge").all_text_contents()
    assert statuses == ["sourced", "unsourced"], statuses
    assert page.locator("#verify-results a").count() >= 1
    # A match names the recording and the speaker, and links to that moment.
    match = page.locator("#verify-results a.verify-match").first
    assert "样本访谈" in match.text_content() and "闫俊杰" in match.text_content()
    assert "/recordings/" in match.get_attribute("href") and "?t=" in match.get_attribute("href")
    shoot(page, "07-chapters")

    # --- editor: blocked without consent, cleared once it is recorded -----------------
    sign_in(page, server, "editor", "/consent")
    report = page.locator(f"tr.clear-row[data-quote='{quote_id}']")
    assert "blocked" in report.get_attribute("class")
    assert report.locator(".reasons li").count() >= 1
    # The table shows what the quote says, not only its number.
    assert quote["verbatim"][:12] in report.locator(".quote-text").text_content()
    shoot(page, "08-consent-blocked")
    page.select_option("select[name=recording]", index=0)
    page.click("form:has(select[name=recording]) button[type=submit]")
    page.wait_for_selector("#consent-form")
    # The recording's own people head the person menu.
    groups = page.locator("#consent-form select[name=person_id] optgroup")
    assert groups.nth(0).get_attribute("label") == "In this interview"
    assert groups.nth(0).locator("option").all_text_contents() == ["闫俊杰"]
    page.select_option("#consent-form select[name=person_id]", label="闫俊杰")
    page.select_option("#consent-form select[name=status]", "granted")
    page.select_option("#consent-form select[name=attribution]", "on_record")
    page.click("#consent-form button[type=submit]")
    page.wait_for_selector("table.agreements .consent-granted")
    report = page.locator(f"tr.clear-row[data-quote='{quote_id}']")
    assert "clear-cleared" in report.get_attribute("class"), report.text_content()
    page.locator("table.agreements a:has-text('Impact')").first.click()
    page.wait_for_selector("#impact li")
    assert "样本 (drafted)" in page.text_content("#impact")
    shoot(page, "09-consent-cleared")
    # Withdrawal asks for its reason on the page; the quote is blocked again.
    page.click("details.withdraw summary")
    page.fill("form.withdraw-form input[name=reason]", "闫俊杰 asked to withdraw on 11-25")
    page.click("form.withdraw-form button[type=submit]")
    page.wait_for_selector("table.agreements .consent-withdrawn")
    assert "asked to withdraw" in page.text_content("table.agreements")
    report = page.locator(f"tr.clear-row[data-quote='{quote_id}']")
    assert "blocked" in report.get_attribute("class"), report.text_content()
    assert errors == [], errors
    # The whole flow, every page and role, ran under the CSP without one refusal.
    assert violations == [], violations
    context.close()


def test_api_docs_work_offline_under_the_csp(server: Server, browser: Any) -> None:
    context = browser.new_context(viewport={"width": WIDE, "height": 900})
    page = context.new_page()
    violations = watch_csp(context, page)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    elsewhere: list[str] = []
    page.on("request", lambda req: None if req.url.startswith(server.url)
            or req.url.startswith("data:") else elsewhere.append(req.url))
    page.goto(server.url + "/docs")
    page.wait_for_selector(".opblock-tag", timeout=30_000)
    assert page.locator(".opblock").count() > 20  # every route, rendered from /openapi.json
    page.locator(".opblock .opblock-summary").first.click()
    page.wait_for_selector(".opblock.is-open")
    shoot(page, "10-api-docs")
    assert elsewhere == [], elsewhere  # nothing from a CDN: it works offline
    assert errors == [] and violations == [], (errors, violations)
    context.close()
