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
        status.textContent = `Uploaded: recording ${data.recording.id}, job ${data.job.id} queued.`;
        status.dataset.recording = data.recording.id;
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
