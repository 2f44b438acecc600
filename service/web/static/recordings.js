// Upload with a byte progress bar (XHR reports upload progress; fetch cannot).
"use strict";

(() => {
  const form = document.getElementById("upload");
  if (!form) return;
  const bar = document.getElementById("upload-progress");
  const status = document.getElementById("upload-status");

  function meta() {
    const f = new FormData(form);
    const out = { title: f.get("title"), source: f.get("source") };
    if (f.get("recorded_at")) out.recorded_at = new Date(f.get("recorded_at")).toISOString();
    if (f.get("location")) out.location = f.get("location");
    if (f.get("language")) out.language = f.get("language");
    if (f.get("num_speakers")) out.num_speakers = Number(f.get("num_speakers"));
    out.participants = f.getAll("participant").map((id) => ({
      person_id: Number(id), role: f.get(`role-${id}`) || "interviewee",
    }));
    return out;
  }

  // The list shows a new upload at once, without a reload (its status then lives in
  // the job panel until the page is next loaded).
  function showNewRecording(rec) {
    const rows = document.getElementById("recording-rows");
    if (!rows) return;
    const { el, clock } = Sourcebook;
    const none = () => el("span", { class: "muted" }, "–");
    const row = el("tr", { class: "just-added" },
      el("td", {}, el("a", { href: `/recordings/${rec.id}` }, rec.title)),
      el("td", {}, el("span", { class: `badge status-${rec.status}` }, rec.status)),
      el("td", {}, clock(rec.duration || 0)),
      el("td", {}, none()),
      el("td", {}, none())); // consent: shown once the page is next loaded
    rows.prepend(row);
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
