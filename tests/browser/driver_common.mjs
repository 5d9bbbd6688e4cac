// What the browser drivers that log in share (pages_test.mjs, timeline_test.mjs), on top of the
// generic driver_base.mjs: the command line, TestRun (a test's browser contexts,
// screenshots, and the problems seen on its pages: console errors, uncaught exceptions, CSP
// violations, responses without the security headers), logging in, and the runner.
//
// A driver imports what it needs and ends with `runTests([...its tests])`. Its command line:
//   node DRIVER --base-url http://127.0.0.1:PORT --artifacts DIR [--foreign-url URL] [--only NAME,...]
// The control token comes from $UNSHELVER_CONTROL_TOKEN (not argv, which `ps` shows); Chromium
// from $CHROMIUM, else /usr/bin/chromium. Screenshots go to DIR as <test>--<nn>-<step>.png.
import { mkdirSync } from "node:fs";
import { parseArgs } from "node:util";

import { Failure, WAIT_MS, check, runDriver, screenshot, sleep, textOf, waitForText, waitUntil } from "./driver_base.mjs";

export { Failure, WAIT_MS, check, sleep, textOf, waitForText, waitUntil };

const { values: options } = parseArgs({
  options: {
    "base-url": { type: "string" },
    "foreign-url": { type: "string" },
    artifacts: { type: "string" },
    only: { type: "string" },
  },
});
export const BASE = options["base-url"];
export const FOREIGN = options["foreign-url"];
export const ARTIFACTS = options.artifacts;
export const TOKEN = process.env.UNSHELVER_CONTROL_TOKEN || "";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
if (!BASE || !ARTIFACTS || !TOKEN) {
  console.error(`usage: UNSHELVER_CONTROL_TOKEN=... node ${process.argv[1]} --base-url URL --artifacts DIR [--foreign-url URL] [--only NAMES]`);
  process.exit(2);
}
mkdirSync(ARTIFACTS, { recursive: true });

export const TEST_TIMEOUT_MS = 30_000;   // one test, all its steps
export const BACKEND = "gpu";

// ---------------------------------------------------------------------------------------------
// More small helpers (the assertions and waits themselves are driver_base.mjs's).

export function secondsIn(text) {
  const match = /(?:(\d+)\s*h\s*)?(?:(\d+)\s*min\s*)?(\d+)\s*s\b/.exec(text);
  if (!match) return null;
  return Number(match[1] || 0) * 3600 + Number(match[2] || 0) * 60 + Number(match[3]);
}

export function pathOf(url) {
  return new URL(url, BASE).pathname;
}

export function randomToken() {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  let token = "";
  for (let i = 0; i < 43; ++i) token += alphabet[Math.floor(Math.random() * alphabet.length)];
  return token;
}

// ---------------------------------------------------------------------------------------------
// Security headers: every response from the daemon must carry them.

export function headerProblems(headers) {
  const problems = [];
  const csp = headers["content-security-policy"];
  if (!csp) {
    problems.push("no Content-Security-Policy");
  } else {
    const directives = Object.fromEntries(csp.split(";").map((d) => d.trim().split(/\s+/)).filter((d) => d[0]).map((d) => [d[0].toLowerCase(), d.slice(1)]));
    const scripts = directives["script-src"] || directives["default-src"];
    if (!scripts) problems.push(`CSP restricts no scripts (${csp})`);
    for (const sources of [scripts, directives["script-src-elem"], directives["script-src-attr"]]) {
      if (sources && sources.includes("'unsafe-inline'")) problems.push(`CSP allows 'unsafe-inline' scripts (${csp})`);
    }
  }
  if ((headers["x-frame-options"] || "").toUpperCase() !== "DENY") problems.push(`X-Frame-Options is ${JSON.stringify(headers["x-frame-options"])}, not DENY`);
  if ((headers["x-content-type-options"] || "").toLowerCase() !== "nosniff") problems.push(`X-Content-Type-Options is ${JSON.stringify(headers["x-content-type-options"])}, not nosniff`);
  if (!headers["referrer-policy"]) problems.push("no Referrer-Policy");
  return problems;
}

// ---------------------------------------------------------------------------------------------
// One test's context: its browser contexts, screenshots, and the problems seen on its pages.

export class TestRun {
  constructor(name, browser, api) {
    this.name = name;
    this.browser = browser;
    this.api = api;
    this.contexts = [];
    this.problems = [];
    this.expected = [];      // patterns of problems this test causes on purpose
    this.pending = [];       // header checks still running
    this.responses = 0;      // daemon responses whose headers were checked
    this.shots = 0;
  }

  // A problem this test causes on purpose (a 403 logged by the console, say) and must not fail on.
  expectProblem(pattern) {
    this.expected.push(pattern);
  }

  problem(text) {
    this.problems.push(text);
  }

  // A new browser context (own cookies) with one page, watched for problems.
  // `viewport`: 390 x 844 for a phone.
  async newPage({ javaScriptEnabled = true, viewport = { width: 1000, height: 800 } } = {}) {
    const context = await this.browser.newContext({ baseURL: BASE, javaScriptEnabled, viewport });
    context.setDefaultTimeout(WAIT_MS);
    context.setDefaultNavigationTimeout(WAIT_MS);
    this.contexts.push(context);
    // CSP violations as the page sees them. The listener is installed through the DevTools
    // protocol, which the page's CSP does not govern; it cannot run with JavaScript disabled,
    // where Chromium's own console message about the violation is still caught below.
    await context.exposeBinding("__unshelverCspViolation", (source, text) => this.problem(`CSP violation on ${source.page ? source.page.url() : "?"}: ${text}`));
    await context.addInitScript(() => {
      document.addEventListener("securitypolicyviolation", (event) => {
        window.__unshelverCspViolation(`${event.violatedDirective} blocked ${event.blockedURI || "inline"} (${event.sourceFile || "?"}:${event.lineNumber})`);
      });
    });
    const page = await context.newPage();
    page.on("console", (message) => {
      // Chromium fetches /favicon.ico by itself (the pages name no icon) and logs its 404; that
      // is the browser's request, not the page's.
      if (pathOf(message.location().url || "/") === "/favicon.ico") return;
      if (message.type() === "error") this.problem(`console error on ${page.url()}: ${message.text()} (${message.location().url || "?"})`);
    });
    page.on("pageerror", (error) => this.problem(`uncaught exception on ${page.url()}: ${error.message}`));
    page.on("response", (response) => {
      if (!response.url().startsWith(BASE + "/")) return;  // the sim backend, the foreign page
      this.pending.push(response.allHeaders().then((headers) => this.checkHeaders(response.request().method(), response.url(), response.status(), headers), () => {}));
    });
    return page;
  }

  checkHeaders(method, url, status, headers) {
    this.responses += 1;
    for (const problem of headerProblems(headers)) this.problem(`${method} ${pathOf(url)} -> ${status}: ${problem}`);
  }

  // A request from outside the browser (no redirects followed); its headers are checked too.
  async fetch(method, path, { headers = {} } = {}) {
    const response = await this.api.fetch(path, { method, headers, maxRedirects: 0, failOnStatusCode: false, timeout: WAIT_MS });
    this.checkHeaders(method, response.url(), response.status(), response.headers());
    return response;
  }

  async backend() {
    const response = await this.fetch("GET", "/api/status", { headers: { Accept: "application/json" } });
    check(response.status() === 200, `/api/status answered ${response.status()}`);
    const backend = (await response.json()).backends.find((b) => b.name === BACKEND);
    check(backend, `/api/status has no backend ${BACKEND}`);
    return backend;
  }

  async waitForBackend(state, what, timeout = WAIT_MS) {
    let seen = null;
    await waitUntil(what, async () => {
      seen = await this.backend();
      return seen.state === state;
    }, { timeout, every: 100, describe: () => (seen ? `${seen.state} (desired ${seen.desired} by ${seen.desired_by})` : "nothing") });
    return seen;
  }

  // The events recorded after `seq` (the API is local-only or token-guarded; the token is sent).
  async eventsAfter(seq) {
    const response = await this.fetch("GET", `/api/events?after=${seq}&backend=${BACKEND}&limit=100`, {
      headers: { Accept: "application/json", Authorization: `Bearer ${TOKEN}` },
    });
    check(response.status() === 200, `/api/events answered ${response.status()}`);
    return (await response.json()).events;
  }

  async lastSeq() {
    const response = await this.fetch("GET", `/api/events?backend=${BACKEND}&limit=1`, {
      headers: { Accept: "application/json", Authorization: `Bearer ${TOKEN}` },
    });
    check(response.status() === 200, `/api/events answered ${response.status()}`);
    return (await response.json()).last_seq;
  }

  async shot(page, step) {
    this.shots += 1;
    await screenshot(page, ARTIFACTS, this.name, this.shots, step);
  }

  // The problems not expected by the test; closes its browser contexts.
  async finish() {
    await Promise.all(this.pending);
    await Promise.all(this.contexts.map((context) => context.close().catch(() => {})));
    return this.problems.filter((text) => !this.expected.some((pattern) => pattern.test(text)));
  }
}

// ---------------------------------------------------------------------------------------------
// Page helpers.

// Clicks a submit button and returns the response to the POST it sends (a 303 when redirected).
export async function submit(page, button, path) {
  const posted = page.waitForResponse((r) => r.request().method() === "POST" && pathOf(r.url()) === path, { timeout: WAIT_MS });
  await button.click();
  const response = await posted;
  await page.waitForLoadState("load");
  return response;
}

// Logs in on the login form; returns the response to the POST.
export async function login(page, token = TOKEN) {
  const form = await page.goto("/control/login");
  check(form.status() === 200 && (await page.locator("form#login-form #token").count()) === 1,
    `GET /control/login answered ${form.status()} without a login form with #token`);
  await page.locator("#token").fill(token);
  return submit(page, page.locator("#login-button"), "/control/login");
}

export async function loginAsAdmin(t, page) {
  const response = await login(page);
  check(response.status() === 303, `login with the right token answered ${response.status()}, expected 303`);
  check(pathOf(page.url()) === "/control", `after login the browser is on ${page.url()}, expected /control`);
  await t.shot(page, "logged-in");
}

// Most tests start from the backend asleep. One that failed may have left it awake: it is then
// shelved through the control API (a script's bearer token), so that one failure does not fail
// every later test too.
export async function precondition(t) {
  const backend = await t.backend();
  if (backend.state === "asleep") return;
  if (backend.desired === "awake") {
    const response = await t.fetch("POST", `/control/shelve/${BACKEND}`, {
      headers: { Accept: "application/json", Authorization: `Bearer ${TOKEN}` },
    });
    console.log(`  precondition: ${BACKEND} was ${backend.state}; the control API's shelve answered ${response.status()}`);
    check(response.status() < 400, `precondition: ${BACKEND} is ${backend.state} (an earlier test left it awake) and the control API cannot shelve it (${response.status()})`);
  }
  await t.waitForBackend("asleep", `${BACKEND} to be asleep before the test`);
}

// ---------------------------------------------------------------------------------------------
// The runner.

// Runs the tests, in order, and ends the process with 0 when all passed, 1 otherwise. Whatever
// happens, the process ends: a hung browser must not hold the test run.
export function runTests(tests) {
  runDriver({
    tests, only: options.only, chromium: CHROMIUM, apiBaseURL: BASE, artifacts: ARTIFACTS,
    makeRun: (name, browser, api) => new TestRun(name, browser, api), testTimeoutMs: TEST_TIMEOUT_MS,
    watchdogMs: 150_000,
  });
}
