// Live updates for the control page. The page works without this script (plain forms, a reload
// every 30 s); the script keeps the state, the countdown to the idle shutdown and the recent
// events current. It reads /api/status and /api/events with the session cookie the login set.
"use strict";

(function () {
  function timeLeft(deadline) {
    if (!deadline) return "not while asleep";
    const at = Date.parse(deadline);
    if (Number.isNaN(at)) return "unknown";
    const seconds = Math.round((at - Date.now()) / 1000);
    if (seconds <= 0) return "any moment now";
    let text = "";
    if (seconds >= 3600) text += Math.floor(seconds / 3600) + " h ";
    if (seconds >= 60) text += (Math.floor(seconds / 60) % 60) + " min ";
    return text + (seconds % 60) + " s";
  }

  function tick() {
    document.querySelectorAll('[data-field="countdown"]').forEach((node) => {
      node.textContent = timeLeft(node.dataset.deadline);
    });
  }

  function render(backend) {
    const section = document.getElementById("backend-" + backend.name);
    if (!section) return;
    section.className = "backend state-" + backend.state;
    const set = (field, text) => {
      const node = section.querySelector('[data-field="' + field + '"]');
      if (node) node.textContent = text;
    };
    set("state", backend.state);
    set("since", backend.since ? new Date(backend.since).toLocaleString() : "");
    set("cloud_status", backend.cloud_status || "");
    set("upstream", backend.upstream || "");
    set("routing", backend.routing || "not managed");
    set("desired", backend.desired + " (" + (backend.desired_by || "") + ")");
    set("last_activity", backend.last_activity ? new Date(backend.last_activity).toLocaleString() : "none yet");
    const gate = backend.gate;
    if (gate) {
      set("gate", gate.held + " held now, " + gate.in_flight + " in flight; " + gate.held_total + " held in all: " +
        gate.released + " released, " + gate.expired + " expired, " + gate.refused + " refused, " + gate.failed +
        " failed, " + gate.gone + " gone; longest hold " + gate.longest_hold_ms + " ms");
    }
    const error = section.querySelector('[data-field="error"]');
    error.hidden = !backend.error;
    error.textContent = backend.error || "";
    section.querySelector('[data-field="countdown"]').dataset.deadline = backend.idle_deadline || "";
  }

  function renderEvents(events) {
    const body = document.querySelector("#events tbody");
    if (!body) return;
    const rows = events.slice().reverse().map((event) => {
      const row = document.createElement("tr");
      const change = (event.from || "") + (event.to ? " \u2192 " + event.to : "");
      [event.ts, event.backend, event.action, event.actor, change, event.detail].forEach((text) => {
        const cell = document.createElement("td");
        cell.textContent = text || "";
        row.appendChild(cell);
      });
      return row;
    });
    body.replaceChildren(...rows);
  }

  async function refresh() {
    try {
      const [status, events] = await Promise.all([
        fetch("/api/status", { headers: { Accept: "application/json" }, cache: "no-store" }),
        fetch("/api/events?limit=20", { headers: { Accept: "application/json" }, cache: "no-store" }),
      ]);
      if (status.status === 401 || events.status === 401) {
        window.location.assign("/control/login");
        return;
      }
      if (status.ok) {
        const document_ = await status.json();
        document_.backends.forEach(render);
        const swift = document_.events && document_.events.swift;
        const outbox = document.getElementById("outbox");
        if (outbox && swift && typeof swift.outbox === "number") outbox.textContent = swift.outbox + " event(s) waiting for Swift";
      }
      if (events.ok) renderEvents((await events.json()).events || []);
      tick();
    } catch (error) {
      // The sidecar restarting or the network blinking: try again on the next refresh.
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    tick();
    setInterval(tick, 1000);
    setInterval(refresh, 2000);
  });
})();
