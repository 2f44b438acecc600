// Shared by every page: calls to /api/v1 with the session cookie and the CSRF header.
"use strict";

const Sourcebook = (() => {
  const csrf = () => document.querySelector('meta[name="csrf"]')?.content || "";

  // fetch() against the REST API; throws an Error carrying the API's "detail" message.
  async function api(method, url, body, contentType) {
    const headers = { "X-Sourcebook-CSRF": csrf(), Accept: "application/json" };
    let payload = body;
    if (body !== undefined && contentType === undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    } else if (contentType) {
      headers["Content-Type"] = contentType;
    }
    const response = await fetch(url, { method, headers, body: payload, credentials: "same-origin" });
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = text; }
    if (!response.ok) {
      const detail = data && typeof data === "object" && data.detail ? data.detail : `${response.status} ${response.statusText}`;
      throw new Error(detail);
    }
    return data;
  }

  // A short message at the bottom of the screen (textContent: never HTML).
  function toast(message, isError) {
    const box = document.getElementById("toast");
    if (!box) return;
    box.textContent = message;
    box.className = isError ? "show error" : "show";
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { box.className = ""; }, isError ? 8000 : 3000);
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v; else node.setAttribute(k, v);
    }
    for (const child of children) node.append(child);
    return node;
  }

  function clock(seconds) {
    const t = Math.floor(seconds), h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), s = t % 60;
    const mm = String(m).padStart(h ? 2 : 1, "0"), ss = String(s).padStart(2, "0");
    return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
  }

  return { api, toast, el, clock, csrf };
})();
