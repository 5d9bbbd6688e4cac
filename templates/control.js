// Live updates for the control page. The page works without this script (plain forms, a reload
// every 30 s, a confirmation page before a shelve); the script keeps the state, the countdown to
// the idle shutdown and the recent events current, shows times as people read them (common.js,
// loaded first), asks for the confirmation of a shelve on the page itself, and says so when
// Unshelver stops answering. It reads /api/status and /api/events with the session cookie the
// login set.
"use strict";

(function () {
  const REFRESH_MS = 2000;
  const format = window.Unshelver;
  // When Unshelver last answered with data (the page's own load counts): the stale banner names it.
  let answeredAt = new Date();
  let stale = false;

  function timeLeft(deadline, pinned) {
    if (!deadline) return pinned ? "not while pinned awake" : "not while asleep";
    const at = Date.parse(deadline);
    if (Number.isNaN(at)) return "unknown";
    const seconds = Math.round((at - Date.now()) / 1000);
    if (seconds <= 0) return "any moment now";
    return format.duration(seconds);
  }

  // A <time> element shows its datetime as people read it; the exact time stays in its title.
  function showTime(node, iso, fallback) {
    node.dateTime = iso || "";
    node.title = iso ? new Date(iso).toLocaleString() + " (" + iso + ")" : "";
    node.textContent = iso ? format.relative(iso) : fallback;
  }

  // "since 14:02 (5 min ago)": the clock time tells when, the relative time how long.
  function showSince(node, iso) {
    node.dateTime = iso || "";
    node.title = iso || "";
    node.textContent = iso ? format.clock(iso) + " (" + format.relative(iso) + ")" : "";
  }

  function tick() {
    document.querySelectorAll('[data-field="countdown"]').forEach((node) => {
      node.textContent = timeLeft(node.dataset.deadline, node.dataset.pinned === "yes");
    });
    document.querySelectorAll("time[data-field=since]").forEach((node) => showSince(node, node.getAttribute("datetime")));
    document.querySelectorAll("time[data-field=last_activity], #events time").forEach((node) => {
      const iso = node.getAttribute("datetime");
      if (iso) showTime(node, iso, "");
    });
  }

  // Why a backend is awake: the same words as the page's server-side text (control_routes.cc).
  const awakeWords = {
    "visitor": "a visitor woke it",
    "api-request": "an API request woke it",
    "window": "keep-warm window",
    "pre-warm": "pre-warmed ahead of the expected first use",
    "admin-pin": "pinned awake by an admin",
    "admin-wake": "an admin woke it",
    "cloud": "started outside Unshelver, or found running",
  };
  function awakeText(backend) {
    if (!backend.awake_reason) return "not awake";
    const text = awakeWords[backend.awake_reason] || backend.awake_reason;
    return backend.held_until ? text + "; held awake until " + format.clock(backend.held_until) : text;
  }

  function render(backend) {
    const section = document.getElementById("backend-" + backend.name);
    if (!section) return;
    Array.from(section.classList).forEach((name) => {
      if (name.startsWith("state-")) section.classList.remove(name);
    });
    section.classList.add("state-" + backend.state);
    const set = (field, text) => {
      const node = section.querySelector('[data-field="' + field + '"]');
      if (node) node.textContent = text;
    };
    // The label comes from the server, as on the launcher: no copy of the labels here.
    set("state_label", backend.state_label || backend.state);
    showSince(section.querySelector('[data-field="since"]'), backend.since);
    set("cloud_status", backend.cloud_status || "");
    set("upstream", backend.upstream || "");
    set("leader", backend.ha ? backend.ha.text : "this instance (no etcd)");
    set("routing", backend.routing || "not managed");
    set("desired", backend.desired + " (" + (backend.desired_by || "") + ")");
    showTime(section.querySelector('[data-field="last_activity"]'), backend.last_activity, "none yet");
    set("awake_because", awakeText(backend));
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
    section.querySelector('[data-field="countdown"]').dataset.pinned =
      backend.pinned && backend.awake_reason ? "yes" : "";
  }

  function renderEvents(events) {
    const body = document.querySelector("#events tbody");
    if (!body) return;
    const labels = Array.from(document.querySelectorAll("#events thead th"), (th) => th.textContent);
    const rows = events.slice().reverse().map((event) => {
      const row = document.createElement("tr");
      const change = (event.from || "") + (event.to ? " \u2192 " + event.to : "");
      [event.ts, event.backend, event.action, event.actor, change, event.detail].forEach((text, index) => {
        const cell = document.createElement("td");
        cell.dataset.label = labels[index] || "";
        if (index === 0) {
          const time = document.createElement("time");
          showTime(time, event.ts, "");
          cell.appendChild(time);
        } else {
          cell.textContent = text || "";
        }
        row.appendChild(cell);
      });
      return row;
    });
    body.replaceChildren(...rows);
  }

  // The banner over data that is no longer current, and its removal once answers come back.
  function showStale(isStale) {
    const banner = document.getElementById("stale-banner");
    if (!banner) return;
    stale = isStale;
    banner.hidden = !isStale;
    banner.textContent = isStale
      ? "Unshelver does not answer since " + format.clock(answeredAt.toISOString()) + "; the data below is from then."
      : "";
  }

  // A JSON document, or an error: a proxy's error page (Caddy's 502 while Unshelver restarts) is
  // not one.
  async function json(response) {
    if (!response.ok) throw new Error("HTTP " + response.status);
    const type = response.headers.get("Content-Type") || "";
    if (!type.includes("application/json")) throw new Error("not JSON: " + type);
    return response.json();
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
      const [statusDocument, eventsDocument] = await Promise.all([json(status), json(events)]);
      statusDocument.backends.forEach(render);
      const swift = statusDocument.events && statusDocument.events.swift;
      const outbox = document.getElementById("outbox");
      if (outbox && swift && typeof swift.outbox === "number") outbox.textContent = swift.outbox + " event(s) waiting for Swift";
      const controllers = document.getElementById("controllers");
      if (controllers) controllers.textContent = statusDocument.ha ? statusDocument.ha.summary : "one instance (no etcd)";
      renderEvents(eventsDocument.events || []);
      answeredAt = new Date();
      if (stale) showStale(false);
      tick();
    } catch (error) {
      // Unshelver restarting, stopped, or the network gone: the data shown is from the last
      // answer, and the page says so until answers come back.
      if (!stale) showStale(true);
    }
  }

  // Shelving cuts off whoever uses the backend: "Shelve now" only opens the confirmation, whose
  // "Yes, shelve now" posts with confirm=yes. (Without this script the server asks instead.)
  function setUpConfirmations() {
    document.querySelectorAll("section.backend").forEach((section) => {
      const form = section.querySelector('form[data-role="shelve-form"]');
      const confirm = section.querySelector('[data-role="shelve-confirm"]');
      const cancel = section.querySelector('[data-role="shelve-cancel"]');
      if (!form || !confirm) return;
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        confirm.hidden = false;
        confirm.querySelector("button").focus();
      });
      if (cancel) {
        cancel.addEventListener("click", (event) => {
          event.preventDefault();
          confirm.hidden = true;
          form.querySelector("button").focus();
        });
      }
    });
  }

  // The message after an action is for this visit: a reload or a bookmark must not repeat it.
  function forgetActionParameters() {
    const url = new URL(window.location.href);
    if (!url.searchParams.has("done") && !url.searchParams.has("confirm")) return;
    ["done", "backend", "confirm"].forEach((name) => url.searchParams.delete(name));
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  }

  document.addEventListener("DOMContentLoaded", () => {
    setUpConfirmations();
    forgetActionParameters();
    tick();
    setInterval(tick, 1000);
    setInterval(refresh, REFRESH_MS);
  });
})();
