// Formatting shared by every page's script: human durations and times instead of ISO strings.
// Loaded before the page's own script; it defines one global, `Unshelver`, and touches nothing else.
"use strict";

window.Unshelver = (function () {
  // "45 s", "3 min 20 s", "2 h 5 min", "3 d 4 h": the two largest units, so a glance is enough.
  function duration(seconds) {
    if (!Number.isFinite(seconds)) return "";
    let rest = Math.max(0, Math.round(seconds));
    const units = [["d", 86400], ["h", 3600], ["min", 60], ["s", 1]];
    const parts = [];
    for (const [name, size] of units) {
      if (parts.length === 2) break;
      const count = Math.floor(rest / size);
      rest -= count * size;
      if (count > 0 || (parts.length === 0 && size === 1)) parts.push(count + " " + name);
      else if (parts.length === 1) break;  // "2 h" rather than "2 h 0 min".
    }
    return parts.join(" ");
  }

  // A point in time relative to now: "just now", "5 min ago", "in 3 min"; more than a day away, the
  // local date and time (the visitor's own time zone, which the server does not know).
  function relative(iso, now = Date.now()) {
    const at = Date.parse(iso);
    if (!Number.isFinite(at)) return "";
    const seconds = (at - now) / 1000;
    if (Math.abs(seconds) < 10) return "just now";
    if (Math.abs(seconds) >= 86400) {
      return new Date(at).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
    }
    return seconds < 0 ? duration(-seconds) + " ago" : "in " + duration(seconds);
  }

  // The local clock time of a point in time, e.g. "14:02" (for "since 14:02").
  function clock(iso) {
    const at = Date.parse(iso);
    return Number.isFinite(at) ? new Date(at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "";
  }

  // The steps of a wake (the status JSON's `steps`) on a page's <ol data-role="steps">, whose
  // items carry data-step: done ones and the current one marked; hidden while no wake is under way.
  function showSteps(list, backend) {
    if (!list) return;
    list.hidden = !backend.step;
    for (const step of backend.steps || []) {
      const item = list.querySelector('[data-step="' + step.key + '"]');
      if (!item) continue;
      item.className = step.is_done ? "done" : step.is_current ? "current" : "";
      if (step.is_current) item.setAttribute("aria-current", "step");
      else item.removeAttribute("aria-current");
    }
  }

  // A wake under way: the seconds since it was asked for, and "; about 2 min left" from the
  // backend's usual wake time (wake_estimate_seconds, when it has finished wakes before) or
  // "; taking longer than usual". null while no wake is under way.
  function wakeProgress(backend, now = Date.now()) {
    const started = backend.wake_started_at ? Date.parse(backend.wake_started_at) : NaN;
    if (!backend.step || backend.state === "ready" || !Number.isFinite(started)) return null;
    const elapsed = Math.max(0, (now - started) / 1000);
    let estimate = "";
    if (typeof backend.wake_estimate_seconds === "number") {
      const left = backend.wake_estimate_seconds - elapsed;
      // From a minute on, whole minutes rounded up: "about 1 min" with 40 s left promises too much.
      estimate = left <= 0 ? "; taking longer than usual"
                           : "; about " + duration(left < 60 ? left : Math.ceil(left / 60) * 60) + " left";
    }
    return { elapsed: duration(elapsed), estimate };
  }

  return { duration, relative, clock, showSteps, wakeProgress };
})();
