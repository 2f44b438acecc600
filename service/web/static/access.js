// The access page: create users, issue and revoke tokens, disable, through /api/v1/users.
"use strict";

(() => {
  const { api, toast } = Sourcebook;

  // A new token is shown here once; a reload would lose it, so the list is not reloaded.
  function showToken(name, token) {
    document.getElementById("token-user").textContent = name;
    document.getElementById("token-value").textContent = token;
    const box = document.getElementById("token-shown");
    box.hidden = false;
    box.scrollIntoView({ block: "nearest" });
  }

  document.getElementById("copy-token")?.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(document.getElementById("token-value").textContent);
      toast("Token copied.");
    } catch { toast("Select the token and copy it by hand.", true); }
  });

  const form = document.getElementById("create-user");
  form?.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = form.elements.name.value.trim();
    try {
      const created = await api("POST", "/api/v1/users", { name, role: form.elements.role.value });
      showToken(`${created.name} (${created.role})`, created.token);
      form.reset();
      toast(`${created.name} created; reload the page to see them in the list.`);
    } catch (err) { toast(err.message, true); }
  });

  for (const row of document.querySelectorAll("tr[data-user]")) {
    const url = `/api/v1/users/${row.dataset.user}`;
    const name = row.dataset.name;
    row.querySelector(".issue-token")?.addEventListener("click", async () => {
      try {
        const issued = await api("POST", `${url}/tokens`, { label: "access page" });
        showToken(`${issued.name} (${issued.role})`, issued.token);
      } catch (err) { toast(err.message, true); }
    });
    row.querySelector(".revoke-tokens")?.addEventListener("click", async () => {
      if (!window.confirm(`Revoke every token of ${name}? Their sign-ins and scripts stop working.`)) return;
      try {
        const done = await api("POST", `${url}/revoke`);
        toast(`${done.revoked} token(s) of ${done.name} revoked.`);
        setTimeout(() => location.reload(), 800);
      } catch (err) { toast(err.message, true); }
    });
    for (const [selector, disabled] of [[".disable-user", true], [".enable-user", false]]) {
      row.querySelector(selector)?.addEventListener("click", async () => {
        try {
          await api("PATCH", url, { disabled });
          location.reload();
        } catch (err) { toast(err.message, true); }
      });
    }
    row.querySelector(".user-role")?.addEventListener("change", async (event) => {
      try {
        const account = await api("PATCH", url, { role: event.target.value });
        toast(`${account.name} is now ${account.role}.`);
      } catch (err) { toast(err.message, true); location.reload(); }
    });
  }
})();
