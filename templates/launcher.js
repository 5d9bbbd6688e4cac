// Live status for the launcher page. The page works without this script (plain forms and a
// reload); the script only keeps the state, the steps, the times and the buttons current, and
// sends the visitor to the backend once it is ready after they pressed wake. Every word about a
// state comes from the status JSON (state_label, steps, hint, wake_button): no copy of them here.
"use strict";

(function () {
  const wokenHere = new Set(JSON.parse(sessionStorage.getItem("unshelver.woken") || "[]"));

  function remember() {
    sessionStorage.setItem("unshelver.woken", JSON.stringify(Array.from(wokenHere)));
  }

  function render(backend) {
    const section = document.getElementById("backend-" + backend.name);
    if (!section) return;
    section.className = "backend state-" + backend.state;
    const node = (name) => section.querySelector('[data-field="' + name + '"]');
    const set = (name, text) => {
      const found = node(name);
      if (found) found.textContent = text;
    };
    set("state_label", backend.state_label || backend.state);
    set("since", backend.since ? Unshelver.clock(backend.since) : "");
    set("last_activity", backend.last_activity ? Unshelver.relative(backend.last_activity) : "none yet");
    set("idle_deadline", backend.idle_deadline ? Unshelver.relative(backend.idle_deadline) : "not while asleep");
    if (backend.idle_timeout_seconds) set("idle_timeout", "after " + Unshelver.duration(backend.idle_timeout_seconds) + " without use");

    Unshelver.showSteps(section.querySelector('[data-role="steps"]'), backend);
    const progress = Unshelver.wakeProgress(backend);
    node("progress").hidden = !progress;
    if (progress) {
      set("elapsed", progress.elapsed);
      set("estimate", progress.estimate);
    }

    // The public status has only the short summary, as "error"; an admin's has both, and the
    // visitors' pages show the summary to them too (the cloud's text is for /control).
    node("error").hidden = !backend.is_error;
    set("error_summary", backend.error_summary || backend.error || "");
    set("error_hint", backend.hint || "");
    const ready = backend.state === "ready";
    const form = section.querySelector('[data-role="wake-form"]');
    form.hidden = ready;
    const button = form.querySelector("button");
    button.disabled = !!backend.is_busy;
    if (backend.wake_button) button.textContent = backend.wake_button;
    const link = section.querySelector('[data-role="open-link"]');
    link.hidden = !ready;
    if (backend.url) link.href = backend.url;
    if (ready && wokenHere.has(backend.name) && backend.url) {
      wokenHere.delete(backend.name);
      remember();
      window.location.assign(backend.url);
    }
  }

  let latest = null;
  async function refresh() {
    try {
      const response = await fetch("/api/status", { headers: { Accept: "application/json" }, cache: "no-store" });
      if (response.ok) {
        latest = await response.json();
        latest.backends.forEach(render);
      }
    } catch (error) {
      // The sidecar restarting or the network blinking: try again on the next tick.
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll('[data-role="wake-form"]').forEach((form) => {
      form.addEventListener("submit", () => {
        wokenHere.add(form.closest("[data-backend]").dataset.backend);
        remember();
      });
    });
    refresh();
    setInterval(refresh, 2000);
    // The times move every second between refreshes.
    setInterval(() => { if (latest) latest.backends.forEach(render); }, 1000);
  });
})();
