// Quotes and chapters: outline import, linking, citations, draft verification.
"use strict";

(() => {
  const { api, toast, el, clock } = Sourcebook;

  document.getElementById("outline-form")?.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("POST", "/api/v1/chapters/import", event.target.elements.text.value, "text/markdown; charset=utf-8");
      location.reload();
    } catch (err) { toast(err.message, true); }
  });

  for (const article of document.querySelectorAll(".quote")) {
    const id = article.dataset.quote;
    article.querySelector(".link-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const f = event.target.elements;
      try {
        await api("POST", `/api/v1/chapters/${f.chapter_id.value}/quotes`, { quote_id: Number(id), usage: f.usage.value });
        location.reload();
      } catch (err) { toast(err.message, true); }
    });
    article.querySelector(".copy-citation").addEventListener("click", async () => {
      try {
        const { citation } = await api("GET", `/api/v1/quotes/${id}/citation?style=chicago`);
        document.getElementById(`citation-${id}`).textContent = citation;
        try {
          await navigator.clipboard.writeText(citation);
          toast("Citation copied.");
        } catch {
          // No clipboard permission (e.g. plain http on another host): select it instead.
          const range = document.createRange();
          range.selectNodeContents(document.getElementById(`citation-${id}`));
          getSelection().removeAllRanges();
          getSelection().addRange(range);
          toast("Citation selected: press Ctrl+C to copy.");
        }
      } catch (err) { toast(err.message, true); }
    });
  }

  const verifyForm = document.getElementById("verify-form");
  verifyForm?.addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = verifyForm.elements;
    const list = document.getElementById("verify-results");
    list.replaceChildren();
    try {
      const report = await api("POST", `/api/v1/chapters/${f.chapter_id.value}/verify`, f.text.value, "text/markdown; charset=utf-8");
      const items = report.data;
      for (const item of items) {
        const li = el("li", { class: `verify-item status-${item.status}` },
          el("span", { class: `badge verify-${item.status}` }, item.status), " ",
          el("q", {}, item.quote_text));
        for (const m of item.matches || []) {
          // Names, not ids: the recording's title, who said it, and a link to the moment.
          const who = m.person_name || m.speaker;
          li.append(" → ", el("a", { class: "verify-match", href: `/recordings/${m.recording_id}?t=${m.start}` },
            `${m.recording_title || "a recording"} · ${who} · ${clock(m.start)}`),
            ` (${Math.round((m.similarity || 0) * 100)}%)`);
        }
        list.append(li);
      }
      if (!items.length) list.append(el("li", { class: "muted" }, "No quotations found in the text."));
    } catch (err) { toast(err.message, true); }
  });
})();
