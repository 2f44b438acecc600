// The recordings list keeps its statuses live; upload with a byte progress bar (XHR
// reports upload progress; fetch cannot).
"use strict";

// While a recording on this page is queued or processing, ask the API for the page's
// rows every few seconds and update their status, duration and speakers in place: the
// list says "transcribed" the moment it is, without a reload.
const RecordingsLive = (() => {
  const rows = document.getElementById("recording-rows");
  if (!rows) return { watch() {} };
  const PENDING = new Set(["queued", "processing"]);
  const EVERY_MS = 2000;
  let timer = null;

  const pending = () => Array.from(rows.querySelectorAll("tr[data-recording]"))
    .some((tr) => PENDING.has(tr.querySelector("[data-status]")?.dataset.status));

  function update(tr, rec) {
    const { el, clock } = Sourcebook;
    const badge = tr.querySelector("[data-status]");
    if (badge && badge.dataset.status !== rec.status) {
      badge.dataset.status = rec.status;
      badge.className = `badge status-${rec.status}`;
      badge.textContent = rec.status;
    }
    const cells = tr.children;
    if (cells[2] && rec.duration) cells[2].textContent = clock(rec.duration);
    if (cells[3] && rec.speakers && rec.speakers.length) {
      cells[3].replaceChildren(...rec.speakers.map((sp) => el("span", { class: "chip" }, sp.name || sp.label)));
    }
  }

  async function poll() {
    timer = null;
    if (!document.hidden) {
      const here = new URLSearchParams(location.search);
      const query = new URLSearchParams({ limit: "50", offset: here.get("offset") || "0" });
      if (here.get("q")) query.set("q", here.get("q"));
      try {
        const page = await Sourcebook.api("GET", `/api/v1/recordings?${query}`);
        const byId = new Map(page.data.map((r) => [String(r.id), r]));
        for (const tr of rows.querySelectorAll("tr[data-recording]")) {
          const rec = byId.get(tr.dataset.recording);
          if (rec) update(tr, rec);
        }
      } catch { /* signed out or offline: try again on the next tick */ }
    }
    watch();
  }

  function watch() {
    if (timer === null && pending()) timer = setTimeout(poll, EVERY_MS);
  }

  watch();
  return { watch };
})();

(() => {
  const form = document.getElementById("upload");
  if (!form) return;
  const bar = document.getElementById("upload-progress");
  const status = document.getElementById("upload-status");

  function meta() {
    const f = new FormData(form);
    const out = { title: f.get("title"), source: f.get("source") };
    // As typed (2025-03-01 or 2025-03-01 14:30): the interview's own local time, shown
    // back as the same date, never shifted by the browser's time zone.
    const when = (f.get("recorded_at") || "").trim();
    if (when) out.recorded_at = when.replace(" ", "T");
    if (f.get("location")) out.location = f.get("location");
    if (f.get("language")) out.language = f.get("language");
    if (f.get("num_speakers")) out.num_speakers = Number(f.get("num_speakers"));
    out.participants = f.getAll("participant").map((id) => ({
      person_id: Number(id), role: f.get(`role-${id}`) || "interviewee",
    }));
    return out;
  }

  // The list shows a new upload at once, without a reload, and follows its status.
  function showNewRecording(rec) {
    const rows = document.getElementById("recording-rows");
    if (!rows) return;
    const { el, clock } = Sourcebook;
    const none = () => el("span", { class: "muted" }, "–");
    const row = el("tr", { class: "just-added", "data-recording": rec.id },
      el("td", {}, el("a", { href: `/recordings/${rec.id}` }, rec.title)),
      el("td", {}, el("span", { class: `badge status-${rec.status}`, "data-status": rec.status }, rec.status)),
      el("td", { "data-label": "Duration" }, clock(rec.duration || 0)),
      el("td", { "data-label": "Speakers" }, none()),
      el("td", { "data-label": "Consent" }, none())); // consent: shown once the page is next loaded
    rows.prepend(row);
    RecordingsLive.watch();
    const count = document.getElementById("recording-count");
    if (count) {
      const n = Number(count.dataset.count) + 1;
      count.dataset.count = n;
      count.textContent = `${n} recording${n === 1 ? "" : "s"}`;
    }
  }

  // A person who is not in the archive yet can be added here and ticked at once.
  const addPerson = document.getElementById("add-person");
  addPerson?.addEventListener("click", async () => {
    const name = form.elements.new_person.value.trim();
    if (!name) {
      Sourcebook.toast("Type the person's name first.", true);
      return;
    }
    const body = { name };
    const organisation = form.elements.new_organisation.value.trim();
    if (organisation) body.organisation = organisation;
    try {
      const person = await Sourcebook.api("POST", "/api/v1/people", body);
      const item = document.getElementById("participant-template").content.cloneNode(true);
      const box = item.querySelector("input");
      box.value = person.id;
      box.checked = true; // ticked for this upload, not by default for the next one
      item.querySelector(".participant-name").textContent = person.name;
      item.querySelector("select").name = `role-${person.id}`;
      item.querySelector("select").setAttribute("aria-label", `Role of ${person.name}`);
      addPerson.closest(".add-person").before(item);
      document.getElementById("no-people")?.remove();
      form.elements.new_person.value = "";
      form.elements.new_organisation.value = "";
    } catch (err) { Sourcebook.toast(err.message, true); }
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const file = form.elements.file.files[0];
    if (!file) return;
    const body = new FormData();
    body.append("meta", JSON.stringify(meta()));
    body.append("file", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/v1/recordings");
    xhr.setRequestHeader("X-Sourcebook-CSRF", Sourcebook.csrf());
    bar.hidden = false;
    bar.max = file.size;
    bar.value = 0;
    form.querySelector("button[type=submit]").disabled = true;
    xhr.upload.onprogress = (e) => {
      if (!e.lengthComputable) return;
      bar.max = e.total;
      bar.value = e.loaded;
      status.textContent = `${(e.loaded / 1048576).toFixed(1)} of ${(e.total / 1048576).toFixed(1)} MB`;
    };
    xhr.onload = () => {
      form.querySelector("button[type=submit]").disabled = false;
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch { data = null; }
      if (xhr.status === 201) {
        status.replaceChildren("Uploaded ",
          Sourcebook.el("a", { href: `/recordings/${data.recording.id}` }, data.recording.title),
          `: job ${data.job.id} is queued; its progress is below.`);
        status.dataset.recording = data.recording.id;
        showNewRecording(data.recording);
        form.reset();
        if (window.htmx) htmx.trigger(document.body, "sb:uploaded");
      } else {
        const detail = data && data.detail ? data.detail : `Upload failed (${xhr.status}).`;
        status.textContent = detail;
        Sourcebook.toast(detail, true);
      }
    };
    xhr.onerror = () => {
      form.querySelector("button[type=submit]").disabled = false;
      status.textContent = "The connection broke during the upload; try again.";
    };
    xhr.send(body);
  });
})();
