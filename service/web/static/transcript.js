// The transcript page: audio synced with the text, speaker naming, corrections, quotes.
"use strict";

(() => {
  const page = document.getElementById("transcript-page");
  if (!page) return;
  const recordingId = Number(page.dataset.recording);
  const duration = Number(page.dataset.duration) || 1;
  const audio = document.getElementById("player");
  const segments = Array.from(document.querySelectorAll(".seg"));
  const starts = segments.map((s) => Number(s.dataset.start));
  const playhead = document.getElementById("playhead");
  const timelineWidth = 1000;
  let playing = null;

  // --- audio <-> text ---------------------------------------------------------------
  function segmentAt(t) {
    // Last segment starting at or before t (binary search: transcripts run to thousands).
    let lo = 0, hi = starts.length - 1, found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (starts[mid] <= t) { found = mid; lo = mid + 1; } else hi = mid - 1;
    }
    if (found < 0) return null;
    const seg = segments[found];
    return t < Number(seg.dataset.end) ? seg : null;
  }

  function highlight(t) {
    const seg = segmentAt(t);
    if (seg !== playing) {
      playing?.classList.remove("playing");
      seg?.classList.add("playing");
      playing = seg;
    }
    if (playhead) {
      const x = (t / duration) * timelineWidth;
      playhead.setAttribute("x1", x);
      playhead.setAttribute("x2", x);
    }
  }

  function seek(t, play) {
    if (!audio) return;
    audio.currentTime = t;
    highlight(t);
    if (play) audio.play().catch(() => {});
  }

  audio?.addEventListener("timeupdate", () => highlight(audio.currentTime));
  audio?.addEventListener("seeked", () => highlight(audio.currentTime));
  audio?.addEventListener("error", () => {
    audio.hidden = true;
    document.getElementById("audio-note").hidden = false;
  });
  document.addEventListener("click", (event) => {
    const target = event.target.closest("[data-seek]");
    if (target) seek(Number(target.dataset.seek), true);
  });

  // The sticky player's height, for scroll-margin-top (app.css): a heading or segment
  // that a link or a seek scrolls to lands below the player, never under it.
  const playerBar = document.getElementById("player-bar");
  if (playerBar) {
    const setHeight = () => document.documentElement.style.setProperty(
      "--player-h", `${Math.ceil(playerBar.getBoundingClientRect().height)}px`);
    setHeight();
    if (window.ResizeObserver) new ResizeObserver(setHeight).observe(playerBar);
  }

  // ?t=754.5, ?t=12:34 or ?t=1:02:03, like the forms' time fields.
  const toSeconds = (text) => text.split(":").reduce((acc, part) => acc * 60 + Number(part), 0);
  const at = new URLSearchParams(location.search).get("t");
  if (at !== null && Number.isFinite(toSeconds(at))) {
    const t = toSeconds(at);
    const seg = segmentAt(t + 0.001);
    seg?.scrollIntoView({ block: "center" });
    seg?.classList.add("target");
    if (audio) {
      const go = () => seek(t, false);
      if (audio.readyState >= 1) go(); else audio.addEventListener("loadedmetadata", go, { once: true });
    }
  }

  // --- speakers ---------------------------------------------------------------------
  for (const row of document.querySelectorAll(".speaker-row")) {
    // Accepting a voice suggestion is the ordinary speaker-map PUT.
    const accept = row.querySelector(".accept-suggestion");
    accept?.addEventListener("click", async () => {
      try {
        await Sourcebook.api("PUT", `/api/v1/recordings/${recordingId}/speakers`,
          { [row.dataset.label]: Number(accept.dataset.person) });
        location.reload();
      } catch (err) { Sourcebook.toast(err.message, true); }
    });
    row.querySelector(".save-speaker")?.addEventListener("click", async () => {
      const value = row.querySelector(".speaker-person").value;
      try {
        await Sourcebook.api("PUT", `/api/v1/recordings/${recordingId}/speakers`,
          { [row.dataset.label]: value ? Number(value) : null });
        location.reload();
      } catch (err) { Sourcebook.toast(err.message, true); }
    });
  }

  // --- corrections: the ✎ beside the speaker swaps the text for its editor in place --
  for (const seg of segments) {
    const form = seg.querySelector(".seg-edit");
    if (!form) continue;
    const button = seg.querySelector(".edit-seg");
    const text = seg.querySelector(".seg-text");
    const open = (on) => {
      form.hidden = !on;
      text.hidden = on;
      button.setAttribute("aria-expanded", String(on));
      seg.classList.toggle("editing", on);
    };
    button.addEventListener("click", () => {
      open(form.hidden);
      if (!form.hidden) form.elements.text.focus();
    });
    form.querySelector(".cancel-edit").addEventListener("click", () => open(false));
    form.elements.text.addEventListener("keydown", (event) => {
      if (event.key === "Escape") { open(false); button.focus(); }
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        await Sourcebook.api("PATCH", `/api/v1/segments/${seg.dataset.id}`, { text: form.elements.text.value });
        location.reload();
      } catch (err) { Sourcebook.toast(err.message, true); }
    });
  }

  // --- quotes from a selection ------------------------------------------------------
  const bar = document.getElementById("quote-bar");
  if (!bar) return;
  const preview = document.getElementById("quote-preview");
  let span = null;

  function selectedSpan() {
    const sel = window.getSelection();
    if (!sel || sel.isCollapsed || sel.rangeCount === 0) return null;
    const range = sel.getRangeAt(0);
    const container = document.getElementById("segments");
    if (!container.contains(range.commonAncestorContainer)) return null;
    // Only the segments the selection runs through: a 3-hour interview has ~75 000
    // words, and this runs on every selectionchange.
    const segOf = (node) => (node.nodeType === 1 ? node : node.parentElement)?.closest(".seg");
    const first = segments.indexOf(segOf(range.startContainer));
    const last = segments.indexOf(segOf(range.endContainer));
    const touched = segments.slice(Math.max(first, 0), last < 0 ? segments.length : last + 1);
    const words = touched.flatMap((s) => Array.from(s.querySelectorAll(".w")))
      .filter((w) => range.intersectsNode(w));
    if (words.length) {
      return { body: { recording_id: recordingId, start: Number(words[0].dataset.s), end: Number(words[words.length - 1].dataset.e) },
               text: sel.toString() };
    }
    // Segments without word times (e.g. corrected ones): quote them whole.
    const segs = touched.filter((s) => range.intersectsNode(s.querySelector(".seg-text")));
    if (!segs.length) return null;
    return { body: { segment_ids: segs.map((s) => Number(s.dataset.id)) }, text: sel.toString() };
  }

  // The bar floats just above the selection (below it when the sticky player leaves no
  // room above), so it never covers the selected words or the line that follows them.
  function placeBar() {
    const sel = window.getSelection();
    if (!sel || sel.rangeCount === 0) return;
    const rects = Array.from(sel.getRangeAt(0).getClientRects()).filter((r) => r.width && r.height);
    if (!rects.length) return;
    const top = Math.min(...rects.map((r) => r.top));
    const bottom = Math.max(...rects.map((r) => r.bottom));
    const left = Math.min(...rects.map((r) => r.left));
    const gap = 6;
    const height = bar.offsetHeight;
    const width = bar.offsetWidth;
    const player = document.getElementById("player-bar")?.getBoundingClientRect().bottom || 0;
    const y = top - height - gap >= Math.max(player, 0) ? top - height - gap : bottom + gap;
    const x = Math.max(gap, Math.min(left, document.documentElement.clientWidth - width - gap));
    bar.style.top = `${Math.round(y + window.scrollY)}px`;
    bar.style.left = `${Math.round(x + window.scrollX)}px`;
  }

  window.addEventListener("resize", () => { if (!bar.hidden) placeBar(); });

  document.addEventListener("selectionchange", () => {
    span = selectedSpan();
    bar.hidden = span === null;
    if (span) {
      preview.textContent = `“${span.text.trim().slice(0, 120)}”`;
      placeBar();
    }
  });

  document.getElementById("make-quote").addEventListener("click", async () => {
    if (!span) return;
    try {
      const quote = await Sourcebook.api("POST", "/api/v1/quotes", span.body);
      bar.hidden = true;
      window.getSelection().removeAllRanges();
      const box = document.getElementById("toast");
      Sourcebook.toast(`Quote #${quote.id} made: ${quote.verbatim.slice(0, 60)}`);
      box.dataset.quote = quote.id;
    } catch (err) { Sourcebook.toast(err.message, true); }
  });
})();
