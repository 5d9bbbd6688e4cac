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
//
// What every driver needs (the command line, TestRun, logging in, the runner) is in
// driver_common.mjs.
import {
  BACKEND, BASE, FOREIGN, TOKEN, WAIT_MS, check, loginAsAdmin, login, pathOf, precondition, randomToken, runTests,
  secondsIn, sleep, submit, textOf, waitForText, waitUntil,
} from "./driver_common.mjs";

if (!FOREIGN) {
  console.error("usage: pages_test.mjs needs --foreign-url URL (another origin, for the forged post)");
  process.exit(2);
}

// How the launcher labels the states (/control shows the same labels, from the server).
const LAUNCHER_LABEL = { asleep: "Asleep", waking: "Waking up", booting: "Starting services", ready: "Ready" };

// ---------------------------------------------------------------------------------------------
// Page helpers.

async function wakeForm(page) {
  const form = page.locator(`section#backend-${BACKEND} form[data-role="wake-form"]`);
  check((await form.count()) === 1, "the launcher has no wake form for gpu");
  return form;
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

// The message the page shows after an action (the flash of the POST-redirect-GET).
async function flashText(page) {
  return textOf(page.locator("#flash"));
}

// Checks the message after an action: visible, and matching `pattern`.
async function checkFlash(t, page, pattern, what) {
  const text = await flashText(page);
  check(await page.locator("#flash").isVisible() && pattern.test(text), `after ${what} the page says ${JSON.stringify(text)}, expected ${pattern}`);
}

// The width the page's content needs beyond the window's (0: no horizontal scrolling).
async function horizontalOverflow(page) {
  return page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
}

// An ISO 8601 timestamp as the status document and the event log write them.
const ISO_TIME = /\d{4}-\d\d-\d\dT\d\d:\d\d/;

// Each row's time cell in the events table: its text and its <time datetime>.
async function eventTimes(page) {
  return page.locator("table#events tbody tr td:first-child").evaluateAll((cells) => cells.map((cell) => {
    const time = cell.querySelector("time");
    return { text: cell.textContent.trim(), datetime: time ? time.getAttribute("datetime") : null };
  }));
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
  for (const name of ["state_label", "cloud_status", "upstream", "last_activity", "countdown"]) {
    check((await field(section, name).count()) >= 1, `/control shows no [data-field=${name}]`);
  }
  check((await textOf(field(section, "state_label"))) === LAUNCHER_LABEL.asleep, `the state shown is ${JSON.stringify(await textOf(field(section, "state_label")))}, expected the launcher's label ${LAUNCHER_LABEL.asleep}`);
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
  check(!(await page.locator("#flash").isVisible()), "the page shows an action's message before any action");

  const woke = await submit(page, section.locator('form[data-role="wake-form"] button').first(), `/control/wake/${BACKEND}`);
  check(woke.status() === 303, `the control wake answered ${woke.status()}, expected 303`);
  check(pathOf(page.url()) === "/control", `after wake the browser is on ${page.url()}, expected /control`);
  await t.shot(page, "wake-pressed");
  await checkFlash(t, page, /^Wake requested: GPU box is starting\./, "Wake now");
  check(!new URL(page.url()).search.includes("done="), `the message's parameter stays in the address bar (${page.url()}), so a reload would repeat it`);
  await waitForText(field(controlSection(page), "state_label"), /^Ready$/, "the state shown on /control to become Ready (without a reload)");
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

  // Human times in the events table (as the script writes them), the exact time kept in <time>.
  const times = await eventTimes(page);
  check(times.length >= 3, `the events table has ${times.length} rows`);
  for (const { text, datetime } of times) {
    check(!ISO_TIME.test(text), `an event's time shows as ${JSON.stringify(text)}, an ISO string`);
    check(/just now|\bago\b|\d/.test(text), `an event's time shows as ${JSON.stringify(text)}, not a human time`);
    check(datetime && ISO_TIME.test(datetime), `an event's time has no <time datetime> with the exact time (${JSON.stringify(datetime)})`);
  }
  const since = await textOf(field(controlSection(page), "since"));
  check(!ISO_TIME.test(since) && since.length > 0, `"since" shows ${JSON.stringify(since)}`);

  // Wake on a backend that is already awake: the page says truthfully that nothing was done.
  const again = await submit(page, controlSection(page).locator('form[data-role="wake-form"] button').first(), `/control/wake/${BACKEND}`);
  check(again.status() === 303, `the second wake answered ${again.status()}`);
  await t.shot(page, "wake-when-ready");
  await checkFlash(t, page, /GPU box was already awake\. Nothing was done: Wake does not extend the idle time/, "Wake now on a ready backend");

  // "Shelve now" cuts off whoever is using the backend: it asks first, and sends nothing yet.
  let posted = 0;
  const countPosts = (request) => {
    if (request.method() === "POST" && pathOf(request.url()) === `/control/shelve/${BACKEND}`) posted += 1;
  };
  page.on("request", countPosts);
  const confirmBox = controlSection(page).locator('[data-role="shelve-confirm"]');
  check(!(await confirmBox.isVisible()), "the shelve confirmation shows before Shelve now is pressed");
  await controlSection(page).locator('form[data-role="shelve-form"] button').first().click();
  await confirmBox.waitFor({ state: "visible", timeout: 3000 });
  await t.shot(page, "shelve-asks");
  check(/cut off/.test(await textOf(confirmBox)), `the confirmation says ${JSON.stringify(await textOf(confirmBox))}; it should say who is cut off`);
  await sleep(500);
  check(posted === 0, `Shelve now posted ${posted} shelve request(s) before the confirmation`);
  check((await t.backend()).state === "ready", "Shelve now shelved the backend before the confirmation");
  // Cancel: nothing happens.
  await confirmBox.locator('[data-role="shelve-cancel"]').click();
  await confirmBox.waitFor({ state: "hidden", timeout: 3000 });
  check(posted === 0 && (await t.backend()).state === "ready", "Cancel shelved the backend");
  page.off("request", countPosts);

  await controlSection(page).locator('form[data-role="shelve-form"] button').first().click();
  const shelved = await submit(page, confirmBox.locator("button", { hasText: "Yes, shelve now" }), `/control/shelve/${BACKEND}`);
  check(shelved.status() === 303, `the confirmed shelve answered ${shelved.status()}, expected 303`);
  check(pathOf(page.url()) === "/control", `after shelve the browser is on ${page.url()}, expected /control`);
  await checkFlash(t, page, /^Shelve requested: GPU box is going to sleep/, "Yes, shelve now");
  await t.shot(page, "shelved");
  await waitForText(field(controlSection(page), "state_label"), /^Asleep$/, "the state shown on /control to become Asleep");
  await waitForText(field(controlSection(page), "countdown"), /not while asleep/i, "the countdown to say 'not while asleep'", 3000);
  await t.shot(page, "asleep-again");

  // Shelving what already sleeps: said so.
  await controlSection(page).locator('form[data-role="shelve-form"] button').first().click();
  await submit(page, confirmBox.locator("button", { hasText: "Yes, shelve now" }), `/control/shelve/${BACKEND}`);
  await checkFlash(t, page, /GPU box was already asleep or going to sleep\. Nothing was done\./, "shelving an asleep backend");
  await t.shot(page, "shelve-when-asleep");
}

async function control_works_without_javascript(t) {
  await precondition(t);
  const page = await t.newPage({ javaScriptEnabled: false });
  await loginAsAdmin(t, page);
  check((await textOf(field(controlSection(page), "state_label"))) === "Asleep", `without JavaScript the state shown is ${JSON.stringify(await textOf(field(controlSection(page), "state_label")))}`);
  check(/not while asleep/i.test(await textOf(field(controlSection(page), "countdown"))), `without JavaScript the time left shows ${JSON.stringify(await textOf(field(controlSection(page), "countdown")))}`);
  for (const { text, datetime } of await eventTimes(page)) {
    check(!ISO_TIME.test(text) && /\d\d:\d\d/.test(text), `without JavaScript an event's time shows as ${JSON.stringify(text)}`);
    check(datetime && ISO_TIME.test(datetime), `without JavaScript an event's time has no <time datetime> (${JSON.stringify(datetime)})`);
  }

  const woke = await submit(page, controlSection(page).locator('form[data-role="wake-form"] button').first(), `/control/wake/${BACKEND}`);
  check(woke.status() === 303 && pathOf(page.url()) === "/control", `the plain POST wake answered ${woke.status()} and left the browser on ${page.url()}`);
  await checkFlash(t, page, /^Wake requested: GPU box is starting\./, "Wake now without JavaScript");
  await t.shot(page, "wake-posted");
  // Without JavaScript nothing updates by itself: reload like a user would.
  let state = "";
  await waitUntil("the state shown after reloads to become Ready", async () => {
    await page.goto("/control");
    state = await textOf(field(controlSection(page), "state_label"));
    return state === "Ready";
  }, { every: 300, describe: () => JSON.stringify(state) });
  const left = await textOf(field(controlSection(page), "countdown"));
  await t.shot(page, "ready");
  const seconds = secondsIn(left);
  check(seconds !== null && seconds > 240 && seconds <= 300, `without JavaScript the time left shows ${JSON.stringify(left)}, expected just under 5 min in plain text`);
  const rows = await eventRows(page);
  check(rows.some((row) => /unshelve_requested/.test(row)), `without JavaScript the events table does not show the wake: ${JSON.stringify(rows.slice(0, 5))}`);

  // The shelve form's only submit (no script to ask first) leads to the server's confirmation,
  // and shelves nothing.
  const asked = await submit(page, controlSection(page).locator('form[data-role="shelve-form"] button').first(), `/control/shelve/${BACKEND}`);
  check(asked.status() === 303, `the unconfirmed shelve answered ${asked.status()}, expected 303 to the confirmation`);
  const confirmBox = controlSection(page).locator('[data-role="shelve-confirm"]');
  check(await confirmBox.isVisible(), `after Shelve now without JavaScript no confirmation shows (${page.url()})`);
  await t.shot(page, "shelve-asks");
  await sleep(500);
  const still = await t.backend();
  check(still.state === "ready" && still.desired === "awake", `an unconfirmed shelve shelved the backend: ${still.state}, desired ${still.desired}`);

  const shelved = await submit(page, confirmBox.locator("button", { hasText: "Yes, shelve now" }), `/control/shelve/${BACKEND}`);
  check(shelved.status() === 303, `the confirmed plain POST shelve answered ${shelved.status()}`);
  await checkFlash(t, page, /^Shelve requested: GPU box is going to sleep/, "Yes, shelve now without JavaScript");
  check(!(await confirmBox.isVisible()), "the confirmation still shows after the shelve");
  await t.shot(page, "shelved");
  await waitUntil("the state shown after reloads to become Asleep", async () => {
    await page.goto("/control");
    state = await textOf(field(controlSection(page), "state_label"));
    return state === "Asleep";
  }, { every: 300, describe: () => JSON.stringify(state) });
  await t.shot(page, "asleep-again");
}

// The harness (test_browser.py) stops and starts the daemon on the same port when asked.
async function daemon(t, action) {
  const response = await t.api.fetch(`${FOREIGN}/daemon/${action}`, { method: "POST", failOnStatusCode: false, timeout: 30_000 });
  check(response.status() === 200, `the harness could not ${action} the daemon: ${response.status()} ${await response.text()}`);
}

async function control_says_when_its_data_is_stale(t) {
  await precondition(t);
  const page = await t.newPage();
  await loginAsAdmin(t, page);
  const banner = page.locator("#stale-banner");
  check(!(await banner.isVisible()), "the stale banner shows while Unshelver answers");
  // The page's refreshes fail while the daemon is down: Chromium logs them.
  t.expectProblem(/ERR_CONNECTION_REFUSED|Failed to load resource|net::ERR/);
  await daemon(t, "stop");
  try {
    await waitForText(banner, /^Unshelver does not answer since \d\d?:\d\d.*; the data below is from then\.$/, "the stale banner while Unshelver is stopped", 8000);
    await t.shot(page, "stale");
  } finally {
    await daemon(t, "start");
  }
  await banner.waitFor({ state: "hidden", timeout: 8000 });
  await t.shot(page, "answers-again");
  check((await textOf(field(controlSection(page), "state_label"))) === "Asleep", "after the restart the page does not show the state");
}

async function pages_fit_a_phone(t) {
  await precondition(t);
  const phone = { width: 390, height: 844 };
  const page = await t.newPage({ viewport: phone });
  await page.goto("/control/login");
  await t.shot(page, "login");
  let overflow = await horizontalOverflow(page);
  check(overflow <= 0, `the login page needs ${overflow} px of horizontal scrolling at 390 px`);
  await page.locator("#token").fill(TOKEN);
  await submit(page, page.locator("#login-button"), "/control/login");
  check(pathOf(page.url()) === "/control", `after login at 390 px the browser is on ${page.url()}`);
  // Enough events for a real table: a wake and its shelve.
  const section = controlSection(page);
  await submit(page, section.locator('form[data-role="wake-form"] button').first(), `/control/wake/${BACKEND}`);
  await waitForText(field(controlSection(page), "state_label"), /^Ready$/, "the backend to be Ready");
  await controlSection(page).locator('form[data-role="shelve-form"] button').first().click();
  await t.shot(page, "control-confirm");
  overflow = await horizontalOverflow(page);
  check(overflow <= 0, `/control with the shelve confirmation needs ${overflow} px of horizontal scrolling at 390 px`);
  await submit(page, controlSection(page).locator('[data-role="shelve-confirm"] button').first(), `/control/shelve/${BACKEND}`);
  await waitUntil("the events table to show the shelve", async () => (await eventRows(page)).some((row) => /shelve_requested/.test(row)), { timeout: 5000 });
  await t.shot(page, "control");
  overflow = await horizontalOverflow(page);
  check(overflow <= 0, `/control needs ${overflow} px of horizontal scrolling at 390 px`);
  const table = await page.locator("table#events").evaluate((node) => node.getBoundingClientRect().right);
  check(table <= phone.width, `the events table ends at ${table} px, beyond the 390 px window`);
  await t.waitForBackend("asleep", `${BACKEND} to be asleep after the test`);
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
  control_says_when_its_data_is_stale,
  pages_fit_a_phone,
  logout_ends_the_session,
  public_wake_through_the_page,
];

runTests(TESTS);
