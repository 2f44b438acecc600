// The access page: create users, issue and revoke tokens, disable, through /api/v1/users.
"use strict";

(() => {
  const { api, toast } = Sourcebook;

  // A new token is shown here once; a reload would lose it, so changes that show one
  // update the list in place instead of reloading.
  function showToken(name, token) {
    document.getElementById("token-user").textContent = name;
    document.getElementById("token-value").textContent = token;
    const box = document.getElementById("token-shown");
    box.hidden = false;
    box.scrollIntoView({ block: "nearest" });
  }

  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

  document.getElementById("copy-token")?.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(document.getElementById("token-value").textContent);
      toast("Token copied.");
    } catch { toast("Select the token and copy it by hand.", true); }
  });

  function bind(row) {
    const url = `/api/v1/users/${row.dataset.user}`;
    const name = row.dataset.name;
    const tokens = row.querySelector(".token-count");
    row.querySelector(".issue-token")?.addEventListener("click", async () => {
      try {
        const issued = await api("POST", `${url}/tokens`, { label: "access page" });
        showToken(`${issued.name} (${issued.role})`, issued.token);
        const n = Number.parseInt(tokens.textContent, 10) + 1;
        tokens.textContent = `${plural(n, "working token")}`;
      } catch (err) { toast(err.message, true); }
    });
    row.querySelector(".revoke-tokens")?.addEventListener("click", async () => {
      if (!window.confirm(`Revoke every token of ${name}? Their sign-ins and scripts stop working.`)) return;
      try {
        const done = await api("POST", `${url}/revoke`);
        toast(`${done.revoked} token(s) of ${done.name} revoked.`);
        tokens.textContent = "0 working tokens";
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

  for (const row of document.querySelectorAll("tr[data-user]")) bind(row);

  const form = document.getElementById("create-user");
  form?.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = form.elements.name.value.trim();
    try {
      const created = await api("POST", "/api/v1/users", { name, role: form.elements.role.value });
      showToken(`${created.name} (${created.role})`, created.token);
      form.reset();
      const row = document.getElementById("new-user-row").content.firstElementChild.cloneNode(true);
      row.dataset.user = created.id;
      row.dataset.name = created.name;
      row.querySelector(".user-name").textContent = created.name;
      row.querySelector(".user-role").value = created.role;
      row.querySelector(".user-role").setAttribute("aria-label", `Role of ${created.name}`);
      row.querySelector(".created").textContent = new Date().toISOString().slice(0, 10);
      document.getElementById("user-rows").append(row);
      bind(row);
      const count = document.getElementById("user-count");
      const n = Number(count.dataset.count) + 1;
      count.dataset.count = n;
      count.textContent = plural(n, "user");
    } catch (err) { toast(err.message, true); }
  });
})();
