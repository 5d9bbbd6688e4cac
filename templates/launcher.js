// Live status for the launcher page. The page works without this script (plain forms and a
// reload); the script only keeps the state, the countdown and the buttons current, and sends the
// visitor to the backend once it is ready after they pressed wake.
"use strict";

(function () {
  const labels = {
    unknown: "Checking", asleep: "Asleep", waking: "Waking up", booting: "Starting services",
    ready: "Ready", sleeping: "Going to sleep", error: "Error",
  };
  const wokenHere = new Set(JSON.parse(sessionStorage.getItem("unshelver.woken") || "[]"));

  function remember() {
    sessionStorage.setItem("unshelver.woken", JSON.stringify(Array.from(wokenHere)));
  }

  function countdown(deadline) {
    if (!deadline) return "not while asleep";
    const seconds = Math.round((Date.parse(deadline) - Date.now()) / 1000);
    if (seconds <= 0) return "any moment now";
    const minutes = Math.floor(seconds / 60);
    return "in " + (minutes > 0 ? minutes + " min " : "") + (seconds % 60) + " s";
  }

  function render(backend) {
    const section = document.getElementById("backend-" + backend.name);
    if (!section) return;
    section.className = "backend state-" + backend.state;
    const set = (field, text) => {
      const node = section.querySelector('[data-field="' + field + '"]');
      if (node) node.textContent = text;
    };
    set("state_label", labels[backend.state] || backend.state);
    set("since", backend.since ? new Date(backend.since).toLocaleTimeString() : "");
    set("last_activity", backend.last_activity ? new Date(backend.last_activity).toLocaleString() : "none yet");
    set("idle_deadline", countdown(backend.idle_deadline));
    const error = section.querySelector('[data-field="error"]');
    error.hidden = backend.state !== "error";
    // The public status has only the short summary, as "error"; an admin's has both, and the
    // visitors' pages show the summary to them too (the cloud's text is for /control).
    error.textContent = backend.error_summary || backend.error || "";
    const ready = backend.state === "ready";
    const form = section.querySelector('[data-role="wake-form"]');
    form.hidden = ready;
    form.querySelector("button").disabled = ["unknown", "waking", "booting", "sleeping"].includes(backend.state);
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
    // The countdown moves every second between refreshes.
    setInterval(() => { if (latest) latest.backends.forEach(render); }, 1000);
  });
})();
