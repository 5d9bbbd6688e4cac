// The waiting page on a sleeping backend's own host. It asks Unshelver for the backend's state
// every two seconds through a reserved path; once the backend is ready, Caddy sends this host to
// the backend, so the page reloads itself and the visitor lands where they wanted to go.
"use strict";

(function () {
  const labels = {
    unknown: "Checking", asleep: "Asleep", waking: "Waking up", booting: "Starting services",
    ready: "Ready", sleeping: "Going to sleep", error: "Error",
  };

  async function refresh() {
    let backend;
    try {
      const response = await fetch("/.well-known/unshelver/status", {
        headers: { Accept: "application/json" }, cache: "no-store",
      });
      if (!response.ok || !(response.headers.get("Content-Type") || "").startsWith("application/json")) {
        // No longer answered by Unshelver: the backend serves this host now.
        window.location.reload();
        return;
      }
      backend = await response.json();
    } catch (error) {
      return;  // Unshelver restarting or the network blinking: try again on the next tick.
    }
    if (backend.state === "ready") {
      window.location.reload();
      return;
    }
    const main = document.querySelector("main");
    main.dataset.state = backend.state;
    document.querySelector('[data-field="state_label"]').textContent = labels[backend.state] || backend.state;
    document.querySelector('[data-field="explanation"]').textContent = backend.explanation || "";
    const error = document.querySelector('[data-field="error"]');
    error.hidden = backend.state !== "error";
    // The public status has only the short summary, as "error"; an admin's has both, and the
    // visitors' pages show the summary to them too (the cloud's text is for /control).
    error.textContent = backend.error_summary || backend.error || "";
    document.querySelector('[data-role="wake-form"]').hidden = !backend.can_wake;
  }

  document.addEventListener("DOMContentLoaded", () => {
    // Without JavaScript a <noscript> refresh reloads the page instead.
    setInterval(refresh, 2000);
  });
})();
