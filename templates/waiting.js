// The waiting page on a sleeping backend's own host. It asks Unshelver for the backend's state
// every two seconds through a reserved path and shows the steps, the time since the wake was
// asked for and the estimate of the time left. It reloads the page (and so lands the visitor
// where they wanted to go) only when Unshelver says the backend is ready or when the backend
// itself answers; an answer from Caddy or from Unshelver that is no status (Unshelver
// restarting: 502, 503, no connection) leaves the visitor here, told that it retries.
"use strict";

(function () {
  const STATUS_URL = "/.well-known/unshelver/status";
  // X-Served-By of the answers that are not the backend's (caddy/Caddyfile.template): Unshelver
  // itself, Unshelver standing in for a failed backend, and Caddy's own 503.
  const NOT_THE_BACKEND = new Set(["launcher", "launcher-fallback", "fallback-static"]);

  let latest = null;
  let reloading = false;

  function field(name) {
    return document.querySelector('[data-field="' + name + '"]');
  }

  function reload() {
    if (reloading) return;
    reloading = true;
    window.location.reload();
  }

  // Unshelver did not answer with a status: say so, and keep asking.
  function trouble(text) {
    const notice = field("connection");
    notice.textContent = text;
    notice.hidden = false;
  }

  // The time since the wake was asked for and the estimate of what is left; ticks every second
  // between two status answers.
  function renderProgress() {
    const progress = latest ? Unshelver.wakeProgress(latest) : null;
    field("progress").hidden = !progress;
    if (!progress) return;
    field("elapsed").textContent = progress.elapsed;
    field("estimate").textContent = progress.estimate;
  }

  function render(backend) {
    latest = backend;
    const label = document.querySelector("main").dataset.label || backend.label || "";
    document.title = backend.state_label + ": " + label;
    document.querySelector('[data-role="backend"]').className = "backend state-" + backend.state;
    field("state_label").textContent = backend.state_label || backend.state;
    field("explanation").textContent = backend.explanation || "";
    field("hint").textContent = backend.hint || "";
    Unshelver.showSteps(document.querySelector('[data-role="steps"]'), backend);
    // The public status has only the short summary of a failure, as "error".
    field("error").hidden = !backend.is_error;
    field("error_summary").textContent = backend.error || "";
    document.querySelector('[data-role="wake-form"]').hidden = !backend.can_wake;
    if (backend.wake_button) field("wake_button").textContent = backend.wake_button;
    renderProgress();
  }

  async function refresh() {
    if (reloading) return;
    let response;
    try {
      response = await fetch(STATUS_URL, { headers: { Accept: "application/json" }, cache: "no-store" });
    } catch (error) {
      trouble("Unshelver does not answer (it may be restarting); retrying\u2026");
      return;
    }
    const servedBy = response.headers.get("X-Served-By");
    const type = response.headers.get("Content-Type") || "";
    if (response.ok && type.startsWith("application/json")) {
      let backend = null;
      try {
        backend = await response.json();
      } catch (error) {
        backend = null;
      }
      if (backend && typeof backend.state === "string") {
        field("connection").hidden = true;
        if (backend.state === "ready") {
          document.title = "Ready: " + (document.querySelector("main").dataset.label || backend.label || "");
          reload();
          return;
        }
        render(backend);
        return;
      }
    }
    // The backend itself answered this path: it serves this host now.
    if (servedBy && !NOT_THE_BACKEND.has(servedBy)) {
      reload();
      return;
    }
    // Caddy's 502 or 503 while Unshelver restarts, or any other answer in Unshelver's name that
    // is no status: wait for Unshelver to come back.
    if (response.status >= 500 || servedBy) {
      trouble("Unshelver is restarting (HTTP " + response.status + "); retrying\u2026");
      return;
    }
    // An answer without Caddy's label that is no status of ours: the backend's own.
    reload();
  }

  document.addEventListener("DOMContentLoaded", () => {
    // Without JavaScript a <noscript> refresh reloads the page instead.
    refresh();
    setInterval(refresh, 2000);
    setInterval(renderProgress, 1000);
  });
})();
