// The glossary page: add, change and delete terms through /api/v1/glossary.
"use strict";

(() => {
  const { api, toast } = Sourcebook;
  const lines = (text) => text.split("\n").map((s) => s.trim()).filter(Boolean);
  const form = document.getElementById("glossary-form");

  form?.addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = event.target.elements;
    try {
      await api("POST", "/api/v1/glossary", {
        term: f.term.value, aliases: lines(f.aliases.value), kind: f.kind.value,
        notes: f.notes.value || null,
      });
      location.reload();
    } catch (err) { toast(err.message, true); }
  });

  for (const button of document.querySelectorAll(".suggest")) {
    button.addEventListener("click", () => {
      form.elements.term.value = button.dataset.term;
      form.elements.kind.value = "organisation";
      form.elements.aliases.focus();
    });
  }

  for (const row of document.querySelectorAll("tr[data-term]")) {
    const url = `/api/v1/glossary/${row.dataset.term}`;
    row.querySelector(".save")?.addEventListener("click", async () => {
      try {
        await api("PATCH", url, { aliases: lines(row.querySelector(".aliases").value) });
        toast("Saved: search uses the new names from now on.");
      } catch (err) { toast(err.message, true); }
    });
    row.querySelector(".delete")?.addEventListener("click", async () => {
      if (!confirm("Delete this term? Search stops finding its names for each other.")) return;
      try {
        await api("DELETE", url);
        row.remove();
      } catch (err) { toast(err.message, true); }
    });
  }
})();
