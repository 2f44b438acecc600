// Editors: record consent, restrict a span or lift it, withdraw an agreement.
"use strict";

(() => {
  const { api, toast } = Sourcebook;

  const consentForm = document.getElementById("consent-form");
  consentForm?.addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = consentForm.elements;
    const body = {
      person_id: Number(f.person_id.value),
      recording_id: f.scope.value === "recording" ? Number(consentForm.dataset.recording) : null,
      status: f.status.value, form: f.form.value, attribution: f.attribution.value,
      approval_required: f.approval_required.checked,
      voiceprint: f.voiceprint.checked,
    };
    if (f.descriptor.value) body.descriptor = f.descriptor.value;
    if (f.signed_at.value) body.signed_at = f.signed_at.value;
    try {
      await api("POST", "/api/v1/consents", body);
      location.reload();
    } catch (err) { toast(err.message, true); }
  });

  const restrictionForm = document.getElementById("restriction-form");
  restrictionForm?.addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = restrictionForm.elements;
    // Sent as typed: the API reads seconds, 12:34 and 1:02:03 alike (service/models/clock.py).
    const body = { start: f.start.value.trim(), end: f.end.value.trim(), level: f.level.value };
    if (f.reason.value) body.reason = f.reason.value;
    try {
      await api("POST", `/api/v1/recordings/${restrictionForm.dataset.recording}/restrictions`, body);
      location.reload();
    } catch (err) { toast(err.message, true); }
  });

  // The <details> around each button is the confirmation: a second, deliberate click.
  const restrictions = document.querySelector("ul.restrictions");
  for (const button of document.querySelectorAll("ul.restrictions button[data-restriction]")) {
    button.addEventListener("click", async () => {
      try {
        await api("DELETE", `/api/v1/recordings/${restrictions.dataset.recording}` +
                  `/restrictions/${button.dataset.restriction}`);
        location.reload();
      } catch (err) { toast(err.message, true); }
    });
  }

  for (const button of document.querySelectorAll("button.toggle-voiceprint")) {
    button.addEventListener("click", async () => {
      const on = button.dataset.voiceprint !== "true";
      try {
        await api("PATCH", `/api/v1/consents/${button.dataset.consent}`, { voiceprint: on });
        location.reload();
      } catch (err) { toast(err.message, true); }
    });
  }

  for (const form of document.querySelectorAll("form.withdraw-form")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const reason = form.elements.reason.value.trim();
      if (!reason) return;
      try {
        await api("POST", `/api/v1/consents/${form.dataset.consent}/withdraw`, { reason });
        location.reload();
      } catch (err) { toast(err.message, true); }
    });
  }
})();
