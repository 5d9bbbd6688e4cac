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

  // "about 2 min left" from the backend's usual wake time, or "taking longer than usual"; "" when
  // the backend has no finished wake to go by.
  function estimate(backend, elapsed) {
    if (typeof backend.wake_estimate_seconds !== "number") return "";
    const left = backend.wake_estimate_seconds - elapsed;
    if (left <= 0) return "; taking longer than usual";
    return "; about " + Unshelver.duration(left < 60 ? left : Math.ceil(left / 60) * 60) + " left";
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

    const steps = section.querySelector('[data-role="steps"]');
    steps.hidden = !backend.step;
    for (const step of backend.steps || []) {
      const item = steps.querySelector('[data-step="' + step.key + '"]');
      if (!item) continue;
      item.className = step.is_done ? "done" : step.is_current ? "current" : "";
      if (step.is_current) item.setAttribute("aria-current", "step");
      else item.removeAttribute("aria-current");
    }
    const started = backend.wake_started_at ? Date.parse(backend.wake_started_at) : NaN;
    const progress = node("progress");
    progress.hidden = !backend.step || backend.state === "ready" || !Number.isFinite(started);
    if (!progress.hidden) {
      const elapsed = Math.max(0, (Date.now() - started) / 1000);
      set("elapsed", Unshelver.duration(elapsed));
      set("estimate", estimate(backend, elapsed));
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
