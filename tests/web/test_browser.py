"""The issue's flow in a real browser, against a real server with the real pipeline.

Sign in, upload the sample recording, follow its job live, name a speaker, correct a
segment, search, make a quote by selecting words, link it to a chapter, verify a draft,
and see the quote blocked in the clearance report, then cleared once consent is recorded.
Every page is photographed at 1280 and 390 px into transcripts/screenshots/.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
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
        # Let the page's resize handlers run (the quote bar re-places itself) first.
        page.evaluate("() => new Promise((done) => requestAnimationFrame(() => "
                      "requestAnimationFrame(done)))")
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
    page.fill("#upload input[name=recorded_at]", "2025-03-01")
    page.fill("#upload input[name=location]", "上海")
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
    # The list's own row follows the status too, without a reload (issue 17 item 10).
    page.wait_for_selector("tr.just-added [data-status='transcribed']", timeout=30_000)
    assert page.locator("tr.just-added .chip").count() >= 1  # its speakers, as they came
    page.reload()
    row = page.locator("table.recordings tbody tr").first
    assert "transcribed" in row.text_content()
    assert row.locator(".when-where").text_content() == "2025-03-01 · 上海"  # ISO, any locale
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
    # The longest segment after the first (which is corrected below) is named and quoted:
    # the sample's int8 ASR cuts differ a little between CPUs, and a scrap of a few words
    # is too short for the verifier to count as a quotation.
    lengths = [len(t.strip()) for t in page.locator(".seg .seg-text").all_text_contents()]
    q = max(range(1, len(lengths)), key=lambda i: lengths[i])
    quoted = page.locator(".seg").nth(q)
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
    assert "闫俊杰" in page.locator(".seg").nth(q).locator(".seg-speaker").text_content()
    first = page.locator(".seg").first
    # Correcting is inline: the pencil swaps the text for its editor, in place.
    first.locator(".edit-seg").click()
    assert first.locator("textarea").is_visible() and not first.locator(".seg-text").is_visible()
    first.locator("textarea").press("Escape")
    assert first.locator(".seg-text").is_visible() and not first.locator("textarea").is_visible()
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
    # The segment a link lands on is below the sticky player, not under it.
    page.wait_for_timeout(300)
    player_bottom = page.locator("#player-bar").bounding_box()["y"] + \
        page.locator("#player-bar").bounding_box()["height"]
    assert page.locator(".seg.target").bounding_box()["y"] >= player_bottom - 1
    quoted = page.locator(".seg").nth(q)
    words = quoted.locator(".w")
    start_box, end_box = words.first.bounding_box(), words.last.bounding_box()
    page.mouse.move(start_box["x"] + 1, start_box["y"] + start_box["height"] / 2)
    page.mouse.down()
    page.mouse.move(end_box["x"] + end_box["width"] - 1, end_box["y"] + end_box["height"] / 2,
                    steps=5)
    page.mouse.up()
    page.wait_for_selector("#quote-bar:not([hidden])")
    # The bar floats beside the selection: it covers neither the selected words nor the
    # line below them.
    bar = page.locator("#quote-bar").bounding_box()
    covered = page.evaluate("""([x, y, w, h]) => {
        const hit = (r) => r.left < x + w && x < r.right && r.top < y + h && y < r.bottom;
        const sel = window.getSelection().getRangeAt(0);
        const seg = sel.endContainer.parentElement.closest('.seg');
        const next = seg.nextElementSibling;
        const rects = [...sel.getClientRects()];
        if (next) rects.push(...next.querySelector('.seg-text').getClientRects());
        return rects.filter(hit).length;
    }""", [bar["x"], bar["y"], bar["width"], bar["height"]])
    assert covered == 0, bar
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
    # A page the role may not see keeps the navigation (issue 17 item 13).
    page.goto(server.url + "/consent")
    assert page.locator("header.top nav a[href='/chapters']").count() == 1
    assert "Not allowed" in page.text_content("main")
    shoot(page, "12-forbidden-author")
    # A search that finds nothing says what to try.
    page.goto(server.url + "/search?q=火星殖民 计划&language=zh")
    assert "Use fewer words" in page.text_content(".no-results")
    shoot(page, "13-search-nothing-found")

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
    # --- admin: the access page creates a user and shows the token once -------------
    sign_in(page, server, "admin", "/access")
    page.fill("#create-user input[name=name]", "新来的作者")
    page.select_option("#create-user select[name=role]", "author")
    page.click("#create-user button[type=submit]")
    page.wait_for_selector("#token-shown:not([hidden])")
    token = page.text_content("#token-value")
    assert token.startswith("sb_")
    bearer = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{server.url}/api/v1/me", headers=bearer).json()["name"] == "新来的作者"
    # In the list at once, without the reload that would lose the token.
    row = page.locator("tr[data-name='新来的作者']")
    assert "never" in row.locator(".last-used").text_content()
    assert page.text_content("#user-count") == "5 users"
    shoot(page, "11-access")
    page.on("dialog", lambda dialog: dialog.accept())
    row.locator(".revoke-tokens").click()
    page.wait_for_selector("#toast:has-text('1 token(s) of 新来的作者 revoked')")
    assert row.locator(".token-count").text_content() == "0 working tokens"
    page.reload()
    row = page.locator("tr[data-name='新来的作者']")
    assert "UTC" in row.locator(".last-used").text_content()  # its token was used once
    assert httpx.get(f"{server.url}/api/v1/me", headers=bearer).status_code == 401
    page.goto(server.url + "/glossary")
    shoot(page, "14-glossary")
    page.context.clear_cookies()
    page.goto(server.url + "/login")
    shoot(page, "00-login")
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


def test_restrictions_outside_the_recording_are_refused_and_can_be_deleted(
        server: Server, browser: Any, tmp_path: Any) -> None:
    """On the consent page: a span past the end is refused with the recording's length,
    and a restriction is deleted after its confirmation is opened."""
    import json

    from tests.factories import make_tone

    tone = make_tone(tmp_path / "restricted.wav", seconds=20.0, freq=523,
                     fmt=["-ar", "8000", "-c:a", "pcm_u8"])
    with tone.open("rb") as f:
        r = server.api("POST", "/recordings", role="researcher",
                       files={"file": ("restricted.wav", f, "application/octet-stream")},
                       data={"meta": json.dumps({"title": "限制与删除", "language": "zh"})})
    assert r.status_code == 201, r.text
    rid = r.json()["recording"]["id"]
    restriction = server.api("POST", f"/recordings/{rid}/restrictions", role="editor",
                             json={"start": 5, "end": 9.5, "level": "off_record",
                                   "reason": "私下谈话"})
    assert restriction.status_code == 201, restriction.text

    context = browser.new_context(viewport={"width": WIDE, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    violations = watch_csp(context, page)
    sign_in(page, server, "editor", f"/consent?recording={rid}")
    page.fill("#restriction-form input[name=start]", "1800")
    page.fill("#restriction-form input[name=end]", "1920")
    page.click("#restriction-form button[type=submit]")
    page.wait_for_selector("#toast.error")
    assert "This recording is 0:20 long" in page.text_content("#toast")
    item = page.locator("ul.restrictions li", has_text="私下谈话")
    assert "0:05–0:09" in item.text_content()
    item.locator("details.delete-restriction summary").click()
    assert "read and hear 0:05–0:09 again" in item.text_content()
    shoot(page, "11-consent-restriction-delete")
    item.locator("button[data-restriction]").click()
    page.wait_for_selector("ul.restrictions li.muted:has-text('None.')")
    listed = server.api("GET", f"/recordings/{rid}/restrictions", role="editor").json()
    assert listed["count"] == 0
    assert errors == [] and violations == [], (errors, violations)
    context.close()
