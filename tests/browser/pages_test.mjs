// Browser tests of Unshelver's pages: the public launcher and the token-gated /control page, in
// real headless Chromium (Debian's `chromium`) driven by playwright-core. Each test asserts on what
// a user sees; every page is also watched for console errors, uncaught exceptions, CSP violations
// and responses without the security headers, and any of those fails the test that caused it.
//
// test_browser.py starts the daemon (sim backend `gpu`, control token in the environment) and a
// small server on another origin, then runs:
//
//   node pages_test.mjs --base-url http://127.0.0.1:PORT --foreign-url http://127.0.0.1:PORT2 \
//        --artifacts DIR [--only NAME[,NAME...]]
//
// The control token comes from $UNSHELVER_CONTROL_TOKEN (not argv, which `ps` shows); Chromium
// from $CHROMIUM, else /usr/bin/chromium. Screenshots of every step go to DIR as
// <test>--<nn>-<step>.png. Prints PASS/FAIL per test and exits 1 when any failed, 2 on a setup
// problem.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";

import { WAIT_MS, check, runDriver, sleep, textOf, waitForText, waitUntil } from "./driver_common.mjs";

const { values: options } = parseArgs({
  options: {
    "base-url": { type: "string" },
    "foreign-url": { type: "string" },
    artifacts: { type: "string" },
    only: { type: "string" },
  },
});
const BASE = options["base-url"];
const FOREIGN = options["foreign-url"];
const ARTIFACTS = options.artifacts;
const TOKEN = process.env.UNSHELVER_CONTROL_TOKEN || "";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
if (!BASE || !FOREIGN || !ARTIFACTS || !TOKEN) {
  console.error("usage: UNSHELVER_CONTROL_TOKEN=... node pages_test.mjs --base-url URL --foreign-url URL --artifacts DIR [--only NAMES]");
  process.exit(2);
}
mkdirSync(ARTIFACTS, { recursive: true });

const TEST_TIMEOUT_MS = 30_000;   // one test, all its steps
const BACKEND = "gpu";
// How the launcher labels the states (/control shows the states' names).
const LAUNCHER_LABEL = { asleep: "Asleep", waking: "Waking up", booting: "Starting services", ready: "Ready" };

// ---------------------------------------------------------------------------------------------
// Small text helpers (the assertions and waits are in driver_common.mjs).

// "4 min 59 s", "in 1 min 5 s", "59 s" -> seconds; null when the text holds no time.
function secondsIn(text) {
  const match = /(?:(\d+)\s*h\s*)?(?:(\d+)\s*min\s*)?(\d+)\s*s\b/.exec(text);
  if (!match) return null;
  return Number(match[1] || 0) * 3600 + Number(match[2] || 0) * 60 + Number(match[3]);
}

function pathOf(url) {
  return new URL(url, BASE).pathname;
}

function randomToken() {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  let token = "";
  for (let i = 0; i < 43; ++i) token += alphabet[Math.floor(Math.random() * alphabet.length)];
  return token;
}

// ---------------------------------------------------------------------------------------------
// Security headers: every response from the daemon must carry them.

function headerProblems(headers) {
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

class TestRun {
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
  async newPage({ javaScriptEnabled = true } = {}) {
    const context = await this.browser.newContext({ baseURL: BASE, javaScriptEnabled, viewport: { width: 1000, height: 800 } });
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
    const file = join(ARTIFACTS, `${this.name}--${String(this.shots).padStart(2, "0")}-${step}.png`);
    try {
      await page.screenshot({ path: file, fullPage: true, timeout: WAIT_MS });
      console.log(`  screenshot ${file}`);
    } catch (error) {
      console.log(`  screenshot ${file} failed: ${error.message.split("\n")[0]}`);
    }
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

async function wakeForm(page) {
  const form = page.locator(`section#backend-${BACKEND} form[data-role="wake-form"]`);
  check((await form.count()) === 1, "the launcher has no wake form for gpu");
  return form;
}

// Clicks a submit button and returns the response to the POST it sends (a 303 when redirected).
async function submit(page, button, path) {
  const posted = page.waitForResponse((r) => r.request().method() === "POST" && pathOf(r.url()) === path, { timeout: WAIT_MS });
  await button.click();
  const response = await posted;
  await page.waitForLoadState("load");
  return response;
}

// Logs in on the login form; returns the response to the POST.
async function login(page, token = TOKEN) {
  const form = await page.goto("/control/login");
  check(form.status() === 200 && (await page.locator("form#login-form #token").count()) === 1,
    `GET /control/login answered ${form.status()} without a login form with #token`);
  await page.locator("#token").fill(token);
  return submit(page, page.locator("#login-button"), "/control/login");
}

async function loginAsAdmin(t, page) {
  const response = await login(page);
  check(response.status() === 303, `login with the right token answered ${response.status()}, expected 303`);
  check(pathOf(page.url()) === "/control", `after login the browser is on ${page.url()}, expected /control`);
  await t.shot(page, "logged-in");
}

// The text of each row of the events table on /control.
async function eventRows(page) {
  return (await page.locator("table#events tbody tr").allTextContents()).map((text) => text.replace(/\s+/g, " ").trim());
}

function controlSection(page) {
  return page.locator(`section#backend-${BACKEND}[data-backend="${BACKEND}"]`);
}

function field(section, name) {
  return section.locator(`[data-field="${name}"]`);
}

// Most tests start from the backend asleep. One that failed may have left it awake: it is then
// shelved through the control API (a script's bearer token), so that one failure does not fail
// every later test too.
async function precondition(t) {
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

// A form's method, action path and its hidden form_token.
async function describeForm(form) {
  return {
    method: ((await form.getAttribute("method")) || "get").toLowerCase(),
    action: pathOf((await form.getAttribute("action")) || ""),
    tokens: await form.locator('input[type="hidden"][name="form_token"]').count(),
    token: (await form.locator('input[name="form_token"]').count()) ? await form.locator('input[name="form_token"]').first().inputValue() : "",
    buttons: await form.locator('button[type="submit"], button:not([type]), input[type="submit"]').count(),
  };
}

async function checkForm(form, what, action) {
  const shape = await describeForm(form);
  check(shape.method === "post", `${what}: method is ${shape.method}, expected post`);
  check(shape.action === action, `${what}: action is ${shape.action}, expected ${action}`);
  check(shape.tokens === 1 && shape.token.length >= 16, `${what}: expected one hidden form_token with a value, found ${shape.tokens} (${JSON.stringify(shape.token)})`);
  check(shape.buttons >= 1, `${what}: no submit button`);
  return shape;
}

async function cookie(page, name) {
  return (await page.context().cookies(BASE)).find((c) => c.name === name);
}

// Refused wakes must leave the backend asleep with no new events that wake it.
async function checkNotWoken(t, seqBefore, what) {
  await sleep(1000);  // a wake shows at once (asleep -> waking when it is accepted); a margin
  const backend = await t.backend();
  check(backend.state === "asleep" && backend.desired !== "awake",
    `${what} woke the backend: it is ${backend.state}, desired ${backend.desired} by ${backend.desired_by}`);
  const events = await t.eventsAfter(seqBefore);
  const waking = events.filter((e) => e.to === "waking" || e.action === "unshelve_requested");
  check(waking.length === 0, `${what} recorded a wake: ${JSON.stringify(waking)}`);
}

// ---------------------------------------------------------------------------------------------
// The tests, in the order they run. Each starts from the backend asleep and leaves it asleep,
// except the last, which wakes it from the launcher.

async function security_headers_on_every_kind_of_response(t) {
  const requests = [
    ["GET", "/", { Accept: "text/html" }],
    ["GET", "/api/status", { Accept: "application/json" }],
    ["GET", "/static/launcher.js", {}],
    ["GET", "/static/style.css", {}],
    ["GET", "/healthz", {}],
    ["GET", "/no/such/page", { Accept: "text/html" }],
    ["GET", `/wake/${BACKEND}`, { Accept: "text/html" }],          // 405
    ["GET", "/control", { Accept: "text/html" }],                  // 303 to the login page
    ["GET", "/control", { Accept: "application/json" }],           // 401 for a script
    ["GET", "/control/login", { Accept: "text/html" }],
  ];
  const problemsBefore = t.problems.length;
  for (const [method, path, headers] of requests) {
    const response = await t.fetch(method, path, { headers });
    console.log(`  ${method} ${path} -> ${response.status()}`);
  }
  check(t.problems.length === problemsBefore, `responses without the security headers:\n    ${t.problems.slice(problemsBefore).join("\n    ")}`);
}

async function launcher_shows_the_backend_and_sets_the_visitor_cookie(t) {
  await precondition(t);
  const page = await t.newPage();
  const response = await page.goto("/");
  check(response.status() === 200, `GET / answered ${response.status()}`);
  const section = page.locator(`section#backend-${BACKEND}`);
  await section.waitFor({ state: "visible" });
  await t.shot(page, "launcher-asleep");
  check((await textOf(section.locator("h2"))).includes("GPU box"), `the section's heading is ${JSON.stringify(await textOf(section.locator("h2")))}`);
  check((await textOf(field(section, "state_label"))) === "Asleep", `the state shown is ${JSON.stringify(await textOf(field(section, "state_label")))}, expected Asleep`);
  const form = await wakeForm(page);
  await checkForm(form, "the wake form", `/wake/${BACKEND}`);
  check(await form.locator("button").first().isVisible() && await form.locator("button").first().isEnabled(), "the wake button is not a visible, enabled button");
  check(!(await section.locator('a[data-role="open-link"]').isVisible()), "the open link shows while the backend sleeps");

  const visitor = await cookie(page, "unshelver_visitor");
  check(visitor, `GET / set no unshelver_visitor cookie (cookies: ${JSON.stringify(await page.context().cookies())})`);
  check(visitor.httpOnly === true, "the unshelver_visitor cookie is not HttpOnly");
  check(visitor.sameSite === "Strict", `the unshelver_visitor cookie is SameSite=${visitor.sameSite}, expected Strict`);
  check(!(await page.evaluate(() => document.cookie)).includes("unshelver_visitor"), "the page's script can read the visitor cookie");
  check(t.responses > 0, "no response from the daemon was seen by the header check");
}

async function csp_blocks_inline_scripts(t) {
  // The violation listener is what catches CSP problems in every other test: show that it does,
  // and that the launcher's CSP refuses an injected inline script.
  const page = await t.newPage();
  await page.goto("/");
  t.expectProblem(/CSP violation|Content Security Policy/);
  await page.evaluate(() => {
    const script = document.createElement("script");
    script.textContent = "document.body.dataset.injected = 'ran';";
    document.body.append(script);
  });
  await waitUntil("a CSP violation report for the injected inline script", () => t.problems.some((p) => /CSP violation.*script-src/.test(p)));
  check((await page.evaluate(() => document.body.dataset.injected)) === undefined, "an injected inline script ran despite the CSP");
}

async function forged_post_from_another_origin_is_refused(t) {
  await precondition(t);
  const seq = await t.lastSeq();
  const page = await t.newPage();
  await page.goto("/");  // the victim has visited the launcher: a visitor cookie exists
  t.expectProblem(/status of 403/);
  // 127.0.0.1 on another port is another origin but the same site: the SameSite cookie IS sent,
  // so only the form token can refuse it. localhost is another site: no cookie at all.
  const sameSite = new URL(FOREIGN);
  const crossSite = new URL(FOREIGN);
  crossSite.hostname = "localhost";
  for (const [step, origin] of [["same-site", sameSite.origin], ["cross-site", crossSite.origin]]) {
    const posted = page.waitForResponse((r) => r.request().method() === "POST" && r.url() === `${BASE}/wake/${BACKEND}`, { timeout: WAIT_MS });
    await page.goto(`${origin}/forged.html`);  // submits its form to /wake/gpu by itself
    const response = await posted;
    await page.waitForLoadState("load");
    await t.shot(page, `forged-${step}-answer`);
    check(response.status() === 403, `the forged POST from ${origin} answered ${response.status()}, expected 403`);
  }
  await checkNotWoken(t, seq, "a forged POST from another origin");
}

async function wrong_form_token_is_refused(t) {
  await precondition(t);
  const seq = await t.lastSeq();
  t.expectProblem(/status of 403/);
  // Another visitor's valid token does not go with this visitor's cookie.
  const other = await t.newPage();
  await other.goto("/");
  const othersToken = (await describeForm(await wakeForm(other))).token;
  check(othersToken, "the other visitor's page has no form_token");

  const page = await t.newPage();
  for (const [step, tamper] of [
    ["another-visitors-token", () => othersToken],
    ["altered-token", (own) => own.slice(0, -2) + (own.endsWith("AA") ? "BB" : "AA")],
    ["no-token", null],
  ]) {
    await page.goto("/");
    const form = await wakeForm(page);
    const input = form.locator('input[name="form_token"]');
    if (tamper === null) {
      await input.evaluateAll((nodes) => nodes.forEach((node) => node.remove()));
    } else {
      const own = await input.inputValue();
      await input.evaluate((node, value) => { node.value = value; }, tamper(own));
    }
    const response = await submit(page, form.locator("button").first(), `/wake/${BACKEND}`);
    await t.shot(page, step);
    check(response.status() === 403, `a wake POST with ${step} answered ${response.status()}, expected 403`);
  }
  await checkNotWoken(t, seq, "a wake POST with a wrong form_token");
}

async function control_without_a_session_redirects_to_login(t) {
  const page = await t.newPage();
  const response = await page.goto("/control");
  const first = response.request().redirectedFrom();
  check(first, `GET /control without a session was not redirected (it answered ${response.status()} at ${page.url()})`);
  const redirect = await first.response();
  check(redirect.status() === 303, `GET /control answered ${redirect.status()}, expected 303`);
  check(pathOf(await redirect.headerValue("location")) === "/control/login", `GET /control redirected to ${await redirect.headerValue("location")}`);
  check(pathOf(page.url()) === "/control/login", `the browser ended on ${page.url()}`);
  await t.shot(page, "login-page");

  const form = page.locator("form#login-form");
  check((await form.count()) === 1, "the login page has no form#login-form");
  await checkForm(form, "the login form", "/control/login");
  const token = form.locator("input#token");
  check((await token.count()) === 1, "the login form has no input#token");
  check((await token.getAttribute("name")) === "token" && (await token.getAttribute("type")) === "password",
    `input#token is name=${await token.getAttribute("name")} type=${await token.getAttribute("type")}, expected name=token type=password`);
  check(await page.locator("form#login-form button#login-button").isVisible(), "no visible button#login-button in the login form");
  check((await page.locator("#login-error").count()) === 0 || !(await page.locator("#login-error").isVisible()), "the login page shows an error before any attempt");
  check(!(await cookie(page, "unshelver_session")), "a session cookie exists without a login");
}

async function login_with_a_wrong_token_shows_the_form_again(t) {
  const page = await t.newPage();
  t.expectProblem(/status of 401/);
  const wrong = randomToken();
  const response = await login(page, wrong);
  await t.shot(page, "wrong-token");
  check(response.status() === 401, `login with a wrong token answered ${response.status()}, expected 401`);
  check(pathOf(page.url()) === "/control/login", `after a wrong token the browser is on ${page.url()}`);
  check(await page.locator("#login-error").isVisible(), "no visible #login-error after a wrong token");
  check((await textOf(page.locator("#login-error"))).length > 0, "#login-error is empty");
  check(await page.locator("form#login-form input#token").isVisible(), "the login form is not shown again");
  check(!(await page.content()).includes(wrong), "the page echoes the wrong token");
  check(!(await cookie(page, "unshelver_session")), "a wrong token got a session cookie");
  // And /control is still closed.
  await page.goto("/control");
  check(pathOf(page.url()) === "/control/login", `after a wrong token GET /control shows ${page.url()}`);
}

async function login_sets_a_strict_session_cookie_and_shows_the_control_page(t) {
  await precondition(t);
  const page = await t.newPage();
  await loginAsAdmin(t, page);
  const session = await cookie(page, "unshelver_session");
  check(session, `no unshelver_session cookie after login (cookies: ${(await page.context().cookies()).map((c) => c.name).join(", ")})`);
  check(session.httpOnly === true, "the session cookie is not HttpOnly");
  check(session.sameSite === "Strict", `the session cookie is SameSite=${session.sameSite}, expected Strict`);
  check(session.secure === false, "the session cookie is Secure over plain http (the browser would never send it back)");
  check(!(await page.evaluate(() => document.cookie)).includes("unshelver_session"), "the page's script can read the session cookie");

  const section = controlSection(page);
  check((await section.count()) === 1, `no section#backend-${BACKEND}[data-backend=${BACKEND}] on /control`);
  for (const name of ["state", "cloud_status", "upstream", "last_activity", "countdown"]) {
    check((await field(section, name).count()) >= 1, `/control shows no [data-field=${name}]`);
  }
  check(/asleep/i.test(await textOf(field(section, "state"))), `the state shown is ${JSON.stringify(await textOf(field(section, "state")))}, expected asleep`);
  check(/SHELVED/i.test(await textOf(field(section, "cloud_status"))), `the cloud status shown is ${JSON.stringify(await textOf(field(section, "cloud_status")))}`);
  const upstream = (await t.backend()).upstream;
  check((await textOf(field(section, "upstream"))) === upstream, `the upstream shown is ${JSON.stringify(await textOf(field(section, "upstream")))}, expected ${upstream}`);
  await waitForText(field(section, "countdown"), /not while asleep/i, "the countdown to say 'not while asleep'", 3000);
  for (const selector of ["#routing-mode", "#outbox", "table#events"]) {
    check((await page.locator(selector).count()) === 1, `/control has no ${selector}`);
  }
  check((await page.locator("table#events tbody tr").count()) >= 1, "the events table has no rows (the start-up observation is an event)");
  await checkForm(section.locator('form[data-role="wake-form"]'), "the control wake form", `/control/wake/${BACKEND}`);
  await checkForm(section.locator('form[data-role="shelve-form"]'), "the control shelve form", `/control/shelve/${BACKEND}`);
  await checkForm(page.locator("form#logout-form"), "the logout form", "/control/logout");
}

async function control_wake_countdown_events_and_shelve(t) {
  await precondition(t);
  const page = await t.newPage();
  await loginAsAdmin(t, page);
  const section = controlSection(page);
  const rowsBefore = new Set(await eventRows(page));

  const woke = await submit(page, section.locator('form[data-role="wake-form"] button').first(), `/control/wake/${BACKEND}`);
  check(woke.status() === 303, `the control wake answered ${woke.status()}, expected 303`);
  check(pathOf(page.url()) === "/control", `after wake the browser is on ${page.url()}, expected /control`);
  await t.shot(page, "wake-pressed");
  await waitForText(field(controlSection(page), "state"), /ready/i, "the state shown on /control to become ready (without a reload)");
  await t.shot(page, "ready");
  await waitForText(field(controlSection(page), "cloud_status"), /ACTIVE/, "the cloud status to show ACTIVE", 3000);
  check(!/none yet/.test(await textOf(field(controlSection(page), "last_activity"))), "the last activity still shows 'none yet' after the wake");

  const countdown = field(controlSection(page), "countdown");
  const first = await waitForText(countdown, /\d+\s*min\s*\d+\s*s/, "the countdown to show minutes and seconds", 3000);
  const firstSeconds = secondsIn(first);
  check(firstSeconds > 240 && firstSeconds <= 300, `the countdown shows ${JSON.stringify(first)}, expected just under 5 min`);
  await sleep(2200);
  const second = await textOf(countdown);
  const secondSeconds = secondsIn(second);
  await t.shot(page, "countdown");
  check(secondSeconds !== null && secondSeconds < firstSeconds && secondSeconds >= firstSeconds - 4,
    `the countdown went from ${JSON.stringify(first)} to ${JSON.stringify(second)} in 2.2 s; expected it to go down by about 2 s`);
  check((await t.backend()).state === "ready", "the backend is not ready according to /api/status");

  // The table is kept current by the page's script too: the wake and its completion are new rows.
  let added = [];
  await waitUntil("the events table to show the wake and its completion as new rows", async () => {
    added = (await eventRows(page)).filter((row) => !rowsBefore.has(row));
    return added.some((row) => /unshelve_requested/.test(row)) && added.some((row) => /unshelve_complete/.test(row));
  }, { timeout: 5000, describe: () => JSON.stringify(added) });
  await t.shot(page, "events");

  const shelved = await submit(page, controlSection(page).locator('form[data-role="shelve-form"] button').first(), `/control/shelve/${BACKEND}`);
  check(shelved.status() === 303, `the control shelve answered ${shelved.status()}, expected 303`);
  check(pathOf(page.url()) === "/control", `after shelve the browser is on ${page.url()}, expected /control`);
  await waitForText(field(controlSection(page), "state"), /asleep/i, "the state shown on /control to become asleep");
  await waitForText(field(controlSection(page), "countdown"), /not while asleep/i, "the countdown to say 'not while asleep'", 3000);
  await t.shot(page, "asleep-again");
}

async function control_works_without_javascript(t) {
  await precondition(t);
  const page = await t.newPage({ javaScriptEnabled: false });
  await loginAsAdmin(t, page);
  check(/asleep/i.test(await textOf(field(controlSection(page), "state"))), `without JavaScript the state shown is ${JSON.stringify(await textOf(field(controlSection(page), "state")))}`);
  check(/not while asleep/i.test(await textOf(field(controlSection(page), "countdown"))), `without JavaScript the time left shows ${JSON.stringify(await textOf(field(controlSection(page), "countdown")))}`);

  const woke = await submit(page, controlSection(page).locator('form[data-role="wake-form"] button').first(), `/control/wake/${BACKEND}`);
  check(woke.status() === 303 && pathOf(page.url()) === "/control", `the plain POST wake answered ${woke.status()} and left the browser on ${page.url()}`);
  await t.shot(page, "wake-posted");
  // Without JavaScript nothing updates by itself: reload like a user would.
  let state = "";
  await waitUntil("the state shown after reloads to become ready", async () => {
    await page.reload();
    state = await textOf(field(controlSection(page), "state"));
    return /ready/i.test(state);
  }, { every: 300, describe: () => JSON.stringify(state) });
  const left = await textOf(field(controlSection(page), "countdown"));
  await t.shot(page, "ready");
  const seconds = secondsIn(left);
  check(seconds !== null && seconds > 240 && seconds <= 300, `without JavaScript the time left shows ${JSON.stringify(left)}, expected just under 5 min in plain text`);
  const rows = await eventRows(page);
  check(rows.some((row) => /unshelve_requested/.test(row)), `without JavaScript the events table does not show the wake: ${JSON.stringify(rows.slice(0, 5))}`);

  const shelved = await submit(page, controlSection(page).locator('form[data-role="shelve-form"] button').first(), `/control/shelve/${BACKEND}`);
  check(shelved.status() === 303, `the plain POST shelve answered ${shelved.status()}`);
  await waitUntil("the state shown after reloads to become asleep", async () => {
    await page.reload();
    state = await textOf(field(controlSection(page), "state"));
    return /asleep/i.test(state);
  }, { every: 300, describe: () => JSON.stringify(state) });
  await t.shot(page, "asleep-again");
}

async function logout_ends_the_session(t) {
  const page = await t.newPage();
  await loginAsAdmin(t, page);
  const session = await cookie(page, "unshelver_session");
  check(session, "no session cookie after login");
  const response = await submit(page, page.locator("form#logout-form button").first(), "/control/logout");
  check(response.status() === 303, `logout answered ${response.status()}, expected 303`);
  check(pathOf(page.url()) === "/control/login", `after logout the browser is on ${page.url()}, expected /control/login`);
  await t.shot(page, "logged-out");
  check(!(await cookie(page, "unshelver_session")), "the session cookie is still in the browser after logout");
  await page.goto("/control");
  check(pathOf(page.url()) === "/control/login", `after logout GET /control shows ${page.url()}, expected the login page`);

  // A copy of the old cookie (taken before logout) no longer opens /control either.
  const copy = await t.newPage();
  await copy.context().addCookies([session]);
  await copy.goto("/control");
  await t.shot(copy, "old-cookie");
  check(pathOf(copy.url()) === "/control/login", `the session cookie still opens /control after logout (${copy.url()})`);
}

async function public_wake_through_the_page(t) {
  await precondition(t);
  const page = await t.newPage();
  await page.goto("/");
  const form = await wakeForm(page);
  const response = await submit(page, form.locator("button").first(), `/wake/${BACKEND}`);
  check(response.status() === 303, `the wake POST answered ${response.status()}, expected 303 back to the launcher`);
  check(pathOf(page.url()) === "/", `after wake the browser is on ${page.url()}, expected /`);
  await t.shot(page, "wake-pressed");

  // The page moves by itself: waking/booting, then ready, and then it sends the visitor to the
  // backend (the sim backend answers on its own port). Note every label shown on the way.
  const backendUrl = (await t.backend()).url;
  check(backendUrl, "/api/status gives the backend no url");
  const labels = [];
  let shotBooting = false;
  await waitUntil("the launcher to send the visitor to the backend once it is ready", async () => {
    if (page.url().startsWith(backendUrl)) return true;
    try {
      const label = await textOf(page.locator(`section#backend-${BACKEND} [data-field="state_label"]`));
      if (label && labels[labels.length - 1] !== label) labels.push(label);
      if (label === LAUNCHER_LABEL.booting && !shotBooting) {
        shotBooting = true;
        await t.shot(page, "booting");
      }
    } catch (error) {
      // The page is navigating away.
    }
    return page.url().startsWith(backendUrl);
  }, { every: 50, describe: () => `${page.url()} after labels ${JSON.stringify(labels)}` });
  await page.waitForLoadState("load");
  await t.shot(page, "at-backend");
  console.log(`  labels shown: ${labels.join(" -> ")}`);
  check(labels.includes(LAUNCHER_LABEL.waking) || labels.includes(LAUNCHER_LABEL.booting),
    `the launcher never showed the backend waking up; labels: ${JSON.stringify(labels)}`);
  check((await t.backend()).state === "ready", "the visitor was sent on before the backend was ready");

  // Back on the launcher: Ready, an open link to the backend, no wake form.
  await page.goto("/");
  const section = page.locator(`section#backend-${BACKEND}`);
  await waitForText(field(section, "state_label"), /^Ready$/, "the launcher to show Ready", 3000);
  const link = section.locator('a[data-role="open-link"]');
  check(await link.isVisible(), "no visible open link when the backend is ready");
  check((await link.getAttribute("href")) === backendUrl, `the open link goes to ${await link.getAttribute("href")}, expected ${backendUrl}`);
  check(!(await section.locator('form[data-role="wake-form"]').isVisible()), "the wake form still shows when the backend is ready");
  await t.shot(page, "launcher-ready");
}

const TESTS = [
  security_headers_on_every_kind_of_response,
  launcher_shows_the_backend_and_sets_the_visitor_cookie,
  csp_blocks_inline_scripts,
  forged_post_from_another_origin_is_refused,
  wrong_form_token_is_refused,
  control_without_a_session_redirects_to_login,
  login_with_a_wrong_token_shows_the_form_again,
  login_sets_a_strict_session_cookie_and_shows_the_control_page,
  control_wake_countdown_events_and_shelve,
  control_works_without_javascript,
  logout_ends_the_session,
  public_wake_through_the_page,
];

// ---------------------------------------------------------------------------------------------
// The runner.

runDriver({
  tests: TESTS, only: options.only, chromium: CHROMIUM, apiBaseURL: BASE, artifacts: ARTIFACTS,
  makeRun: (name, browser, api) => new TestRun(name, browser, api), testTimeoutMs: TEST_TIMEOUT_MS, watchdogMs: 150_000,
});
