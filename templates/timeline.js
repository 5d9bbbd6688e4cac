// The control page's timelines: per backend, an inline SVG of its awake and asleep periods over
// the last 7 days, with a bar per completed wake as tall as the wake took. Drawn from the admin
// status's `history` (/api/status with the session cookie), refreshed every minute. Without this
// script, each timeline's container keeps the one-line summary the server rendered into it.
// Loaded after common.js (Unshelver.duration, Unshelver.relative).
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const WEEK_MS = 7 * 24 * 3600 * 1000;
  // The drawing is as wide in its own units as its container is in pixels when it is drawn (so
  // that its text has the page's size), and scales with the container after that (viewBox): a
  // phone shows all 7 days without scrolling sideways.
  const MIN_WIDTH = 280;
  const BAND_TOP = 2;
  const BAND_HEIGHT = 18;
  const LABEL_Y = 33;
  const BARS_TOP = 40;
  const BARS_BOTTOM = 72;
  const HEIGHT = 74;
  const REFRESH_MS = 60000;

  function element(name, attributes, text) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function duration(seconds) {
    return window.Unshelver ? Unshelver.duration(seconds) : Math.round(seconds) + " s";
  }

  function median(values) {
    const sorted = values.slice().sort((a, b) => a - b);
    const middle = Math.floor(sorted.length / 2);
    return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  }

  // "awake 12 h in the last 7 days, 9 wakes, a wake takes about 2 min": what the server writes
  // without JavaScript, from the same data.
  function summary(history, estimate) {
    let awake = 0;
    for (const period of history.periods) {
      if (period.state === "awake") awake += (Date.parse(period.to) - Date.parse(period.from)) / 1000;
    }
    const wakes = history.wakes.length;
    let text = "awake " + duration(awake) + " in the last 7 days, " + wakes + (wakes === 1 ? " wake" : " wakes");
    if (typeof estimate === "number") text += ", a wake takes about " + duration(estimate);
    return text;
  }

  function draw(history, estimate, now, width) {
    const WIDTH = Math.max(MIN_WIDTH, Math.round(width));
    const start = now - WEEK_MS;
    const x = (time) => Math.max(0, Math.min(WIDTH, ((time - start) / WEEK_MS) * WIDTH));
    const svg = element("svg", {
      viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
      class: "timeline-chart",
      role: "img",
      "aria-label": "Last 7 days: " + summary(history, estimate),
    });
    // Unknown stretches (before the log's first record, an error) stay the background colour.
    svg.appendChild(element("rect", { x: 0, y: BAND_TOP, width: WIDTH, height: BAND_HEIGHT, class: "timeline-unknown" }));
    for (const period of history.periods) {
      const from = x(Date.parse(period.from));
      const to = x(Date.parse(period.to));
      if (!(to > from)) continue;
      const rect = element("rect", {
        x: from.toFixed(2),
        y: BAND_TOP,
        // At least a hairline, so that a short wake still shows.
        width: Math.max(0.6, to - from).toFixed(2),
        height: BAND_HEIGHT,
        class: period.state === "awake" ? "timeline-awake" : "timeline-asleep",
      });
      rect.appendChild(element("title", {}, `${period.state} ${duration((Date.parse(period.to) - Date.parse(period.from)) / 1000)}`));
      svg.appendChild(rect);
    }
    // A line and the weekday at each local midnight.
    const midnight = new Date(start);
    midnight.setHours(24, 0, 0, 0);
    for (let day = midnight.getTime(); day < now; ) {
      const at = x(day);
      svg.appendChild(element("line", { x1: at, x2: at, y1: BAND_TOP, y2: BARS_BOTTOM, class: "timeline-day" }));
      if (at < WIDTH - 24) {
        const label = new Date(day).toLocaleDateString([], { weekday: "short" });
        svg.appendChild(element("text", { x: at + 2, y: LABEL_Y, class: "timeline-label" }, label));
      }
      const next = new Date(day);
      next.setDate(next.getDate() + 1);
      day = next.getTime();
    }
    // The wakes: a bar each, the tallest as tall as the area.
    const longest = Math.max(1, ...history.wakes.map((wake) => wake.seconds));
    svg.appendChild(element("line", { x1: 0, x2: WIDTH, y1: BARS_BOTTOM, y2: BARS_BOTTOM, class: "timeline-axis" }));
    for (const wake of history.wakes) {
      const height = Math.max(1.5, ((BARS_BOTTOM - BARS_TOP) * wake.seconds) / longest);
      const bar = element("rect", {
        x: Math.min(WIDTH - 3, x(Date.parse(wake.requested_at))).toFixed(2),
        y: (BARS_BOTTOM - height).toFixed(2),
        width: 3,
        height: height.toFixed(2),
        class: "timeline-wake",
      });
      const when = window.Unshelver ? Unshelver.relative(wake.requested_at, now) : wake.requested_at;
      bar.appendChild(element("title", {}, `wake took ${duration(wake.seconds)} (${when})`));
      svg.appendChild(bar);
    }
    return svg;
  }

  function render(backend, now) {
    const container = document.querySelector(`[data-timeline="${CSS.escape(backend.name)}"]`);
    if (!container || !backend.history) return;
    const history = { periods: backend.history.periods || [], wakes: backend.history.wakes || [] };
    const text = document.createElement("p");
    text.className = "timeline-summary";
    text.textContent = summary(history, backend.wake_estimate_seconds);
    const legend = document.createElement("p");
    legend.className = "timeline-legend";
    const longest = Math.max(0, ...history.wakes.map((wake) => wake.seconds));
    const wakeWords = history.wakes.length > 0 ? "wake duration (longest " + duration(longest) + ")" : "wake duration";
    for (const [kind, words] of [["awake", "awake"], ["asleep", "asleep"], ["wake", wakeWords]]) {
      const key = document.createElement("span");
      key.className = "timeline-key timeline-key-" + kind;
      legend.append(key, " " + words + " ");
    }
    const width = container.clientWidth;
    container.replaceChildren(text, draw(history, backend.wake_estimate_seconds, now, width), legend);
    container.dataset.drawn = "true";
  }

  async function refresh() {
    try {
      const response = await fetch("/api/status", { headers: { Accept: "application/json" }, cache: "no-store" });
      if (!response.ok) return;
      const status = await response.json();
      const now = Date.now();
      for (const backend of status.backends || []) render(backend, now);
    } catch (error) {
      // Unshelver does not answer: the timelines keep what they show (control.js says it is stale).
    }
  }

  function start() {
    refresh();
    setInterval(refresh, REFRESH_MS);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
