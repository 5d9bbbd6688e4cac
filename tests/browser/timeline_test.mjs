// Browser tests of the control page's timelines (templates/timeline.js, issue 16): after a few
// wakes, each backend's SVG shows its awake and asleep periods and a bar per wake, with a summary
// and the estimate; it fits a phone's width; and without JavaScript the server's summary line
// stands in. Started by test_timeline.py; the helpers are driver_common.mjs's.
import { join } from "node:path";

import {
  ARTIFACTS, BACKEND, TOKEN, check, loginAsAdmin, precondition, runTests, waitUntil,
} from "./driver_common.mjs";

const WAKES = 1;  // a wake on the sim during the test (~2 s): new events reach the timeline too
const SEEDED_WAKES = 6;  // in the event log that test_timeline.py writes before the daemon starts

// Wakes and shelves the backend through the control API (a script's bearer token), `count` times.
async function wakeAndShelve(t, count) {
  const admin = { Accept: "application/json", Authorization: `Bearer ${TOKEN}` };
  for (let i = 0; i < count; ++i) {
    await precondition(t);
    const woke = await t.fetch("POST", `/control/wake/${BACKEND}`, { headers: admin });
    check(woke.status() === 202, `the control API's wake answered ${woke.status()}`);
    await t.waitForBackend("ready", `${BACKEND} to be ready after wake ${i + 1}`);
    const shelved = await t.fetch("POST", `/control/shelve/${BACKEND}`, { headers: admin });
    check(shelved.status() === 202, `the control API's shelve answered ${shelved.status()}`);
    await t.waitForBackend("asleep", `${BACKEND} to be asleep after shelve ${i + 1}`);
  }
  // The last completion is in the history once its record is written.
  return waitUntil("the wakes in the admin status's history", async () => {
    const backend = await t.fetch("GET", "/api/status", { headers: { Accept: "application/json", Authorization: `Bearer ${TOKEN}` } });
    const found = (await backend.json()).backends.find((b) => b.name === BACKEND);
    return found.history.wakes.length >= count && typeof found.wake_estimate_seconds === "number" ? found : null;
  });
}

// What the timeline of the backend shows.
async function timeline(page) {
  const container = page.locator(`[data-timeline="${BACKEND}"]`);
  await waitUntil("the timeline to be drawn", async () => (await container.getAttribute("data-drawn")) === "true");
  return container.evaluate((element) => {
    const svg = element.querySelector("svg");
    const box = svg ? svg.getBoundingClientRect() : null;
    return {
      summary: (element.querySelector(".timeline-summary") || {}).textContent || "",
      awake: element.querySelectorAll("rect.timeline-awake").length,
      asleep: element.querySelectorAll("rect.timeline-asleep").length,
      wakes: element.querySelectorAll("rect.timeline-wake").length,
      days: element.querySelectorAll("line.timeline-day").length,
      label: svg ? svg.getAttribute("aria-label") : "",
      left: box ? box.left : -1,
      right: box ? box.right : -1,
      height: box ? box.height : 0,
      viewport: window.innerWidth,
      scrollWidth: element.scrollWidth,
      clientWidth: element.clientWidth,
    };
  });
}

async function timeline_shows_periods_wakes_and_the_estimate(t) {
  const backend = await wakeAndShelve(t, WAKES);
  const page = await t.newPage();
  await loginAsAdmin(t, page);
  const shown = await timeline(page);
  await page.locator(`[data-timeline="${BACKEND}"]`).scrollIntoViewIfNeeded();
  await t.shot(page, "timeline");
  // The log's wakes (read at start-up) and the test's, one bar each.
  check(backend.history.wakes.length === SEEDED_WAKES + WAKES,
    `the history holds ${backend.history.wakes.length} wakes, expected ${SEEDED_WAKES} from the log and ${WAKES} new`);
  check(shown.awake >= SEEDED_WAKES + WAKES, `expected at least ${SEEDED_WAKES + WAKES} awake periods, saw ${shown.awake}`);
  check(shown.asleep >= 1, `expected asleep periods, saw ${shown.asleep}`);
  check(shown.wakes === backend.history.wakes.length,
    `expected ${backend.history.wakes.length} wake bars (one per wake in the history), saw ${shown.wakes}`);
  check(shown.days >= 6, `expected a line per day of the last 7, saw ${shown.days}`);
  check(new RegExp(`${backend.history.wakes.length} wakes, a wake takes about \\d`).test(shown.summary),
    `the summary is ${JSON.stringify(shown.summary)}`);
  check(shown.label.startsWith("Last 7 days: awake"), `the chart's label is ${JSON.stringify(shown.label)}`);
  check(shown.height > 20, `the chart is ${shown.height} px tall`);
}

async function timeline_fits_a_phone(t) {
  await precondition(t);
  const page = await t.newPage({ viewport: { width: 390, height: 844 } });
  await loginAsAdmin(t, page);
  const shown = await timeline(page);
  await page.locator(`[data-timeline="${BACKEND}"]`).scrollIntoViewIfNeeded();
  await t.shot(page, "timeline-390px");
  // The timeline alone, at the phone's scale, to look at.
  await page.locator(`[data-timeline="${BACKEND}"]`).screenshot({ path: join(ARTIFACTS, `${t.name}--timeline-only.png`) });
  check(shown.viewport === 390, `the viewport is ${shown.viewport} px wide`);
  check(shown.left >= 0 && shown.right <= 390, `the chart spans ${shown.left}..${shown.right} px on a 390 px screen`);
  check(shown.scrollWidth <= shown.clientWidth, `the timeline scrolls sideways (${shown.scrollWidth} > ${shown.clientWidth})`);
}

async function timeline_without_javascript_is_a_summary(t) {
  await precondition(t);
  const page = await t.newPage({ javaScriptEnabled: false });
  await loginAsAdmin(t, page);
  const container = page.locator(`[data-timeline="${BACKEND}"]`);
  const text = ((await container.textContent()) || "").replace(/\s+/g, " ").trim();
  await container.scrollIntoViewIfNeeded();
  await t.shot(page, "timeline-no-javascript");
  check(/^awake .+ in the last 7 days, \d+ wakes?(, a wake takes about .+)?$/.test(text), `the summary is ${JSON.stringify(text)}`);
  check((await container.locator("svg").count()) === 0, "an SVG without JavaScript?");
}

runTests([
  timeline_shows_periods_wakes_and_the_estimate,
  timeline_fits_a_phone,
  timeline_without_javascript_is_a_summary,
]);
