// The generic part of the browser drivers (visitor_test.mjs directly, the others through
// driver_common.mjs): assertions, waiting for what a user should see, launching Debian's Chromium
// and running the tests.
import { existsSync } from "node:fs";
import { join } from "node:path";

export const SETUP_HINT = "install them with `scripts/setup test` (Chromium, Node.js) and `npm ci --prefix tests/browser` (playwright-core)";
export const WAIT_MS = 10_000;  // one wait for something the user should see

export class Failure extends Error {}

export function check(condition, message) {
  if (!condition) throw new Failure(message);
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Calls `probe` every `every` ms until it returns something truthy, and returns that. On timeout
// the message includes what the last probe saw (`describe` of its last value).
export async function waitUntil(what, probe, { timeout = WAIT_MS, every = 100, describe = null } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await probe();
      if (last) return last;
    } catch (error) {
      last = `(${error.message.split("\n")[0]})`;
    }
    if (Date.now() >= deadline) {
      throw new Failure(`timed out after ${timeout} ms waiting for ${what}; last saw: ${describe ? describe(last) : JSON.stringify(last)}`);
    }
    await sleep(every);
  }
}

// The text a locator shows, whitespace collapsed ("" when it is not there).
export async function textOf(locator) {
  if ((await locator.count()) === 0) return "";
  return ((await locator.first().textContent({ timeout: 2000 })) || "").replace(/\s+/g, " ").trim();
}

// Waits until the locator's text matches `pattern`; returns the text.
export async function waitForText(locator, pattern, what, timeout = WAIT_MS) {
  let seen = "";
  await waitUntil(what, async () => {
    seen = await textOf(locator);
    return pattern.test(seen);
  }, { timeout, describe: () => JSON.stringify(seen) });
  return seen;
}

// Loads playwright-core and starts headless Chromium; exits 2 with a hint when either is missing.
export async function launchChromium(chromium) {
  if (!existsSync(chromium)) {
    console.error(`FAIL setup: Chromium not found at ${chromium}; ${SETUP_HINT}`);
    process.exit(2);
  }
  let playwright;
  try {
    playwright = await import("playwright-core");
  } catch (error) {
    console.error(`FAIL setup: cannot load playwright-core (${error.message.split("\n")[0]}); ${SETUP_HINT}`);
    process.exit(2);
  }
  // Chromium refuses to run as root with its sandbox; root is what CI containers run as.
  const asRoot = typeof process.getuid === "function" && process.getuid() === 0;
  const browser = await playwright.chromium.launch({
    executablePath: chromium, headless: true, args: asRoot ? ["--no-sandbox"] : [], timeout: 30_000,
  });
  return { playwright, browser };
}

// Saves a full-page screenshot of a test's `number`th step as ARTIFACTS/<test>--<nn>-<step>.png
// and says where; a failed screenshot is reported, not thrown (it must not fail the test).
export async function screenshot(page, artifacts, testName, number, step) {
  const file = join(artifacts, `${testName}--${String(number).padStart(2, "0")}-${step}.png`);
  try {
    await page.screenshot({ path: file, fullPage: true, timeout: WAIT_MS });
    console.log(`  screenshot ${file}`);
  } catch (error) {
    console.log(`  screenshot ${file} failed: ${error.message.split("\n")[0]}`);
  }
}

export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Failure(`${what} took longer than ${ms} ms`)), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Runs each test (an async function of its TestRun, made by `makeRun(name)`) within `timeoutMs`,
// then the run's finish() (its page problems); prints PASS/FAIL per test and a summary. Returns
// the exit code: 0 when every test passed, 1 otherwise.
export async function runTests(tests, { only, makeRun, timeoutMs }) {
  const wanted = only ? new Set(only.split(",")) : null;
  const selected = tests.filter((test) => !wanted || wanted.has(test.name));
  check(selected.length > 0, `no test is named ${only}`);
  const started = Date.now();
  const failed = [];
  for (const test of selected) {
    const t = makeRun(test.name);
    const testStarted = Date.now();
    console.log(`RUN  ${test.name}`);
    let error = null;
    try {
      await withTimeout(test(t), timeoutMs, test.name);
    } catch (caught) {
      error = caught;
    }
    let problems = [];
    try {
      problems = await withTimeout(t.finish(), WAIT_MS, `${test.name}'s clean-up`);
    } catch (caught) {
      problems = [caught.message];
    }
    const seconds = ((Date.now() - testStarted) / 1000).toFixed(1);
    if (!error && problems.length === 0) {
      console.log(`PASS ${test.name} (${seconds} s)`);
      continue;
    }
    failed.push(test.name);
    console.log(`FAIL ${test.name} (${seconds} s)`);
    if (error) console.log(`  ${error instanceof Failure ? error.message : error.stack}`.replace(/\n/g, "\n  "));
    for (const problem of problems) console.log(`  page problem: ${problem}`);
  }
  const total = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`${selected.length - failed.length} passed, ${failed.length} failed in ${total} s${failed.length ? ": " + failed.join(", ") : ""}`);
  return failed.length === 0 ? 0 : 1;
}

// A driver's whole run: a watchdog that ends the process after `watchdogMs` whatever happens (a
// hung browser must not hold the test run), Chromium, an API request context on `apiBaseURL`,
// then runTests with `makeRun(name, browser, api)`; exits with its code (2 on a setup problem).
export function runDriver({ tests, only, chromium, apiBaseURL, artifacts, makeRun, testTimeoutMs, watchdogMs }) {
  const watchdog = setTimeout(() => {
    console.log(`FAIL the browser tests took longer than ${watchdogMs / 1000} s; giving up`);
    process.exit(1);
  }, watchdogMs);
  watchdog.unref();
  const main = async () => {
    const started = Date.now();
    const { playwright, browser } = await launchChromium(chromium);
    const api = await playwright.request.newContext({ baseURL: apiBaseURL, timeout: WAIT_MS });
    console.log(`Chromium ${browser.version()} started in ${Date.now() - started} ms; artifacts in ${artifacts}`);
    try {
      return await runTests(tests, { only, makeRun: (name) => makeRun(name, browser, api), timeoutMs: testTimeoutMs });
    } finally {
      await api.dispose().catch(() => {});
      await withTimeout(browser.close(), WAIT_MS, "closing Chromium").catch((error) => console.log(error.message));
    }
  };
  main().then(
    (code) => process.exit(code),
    (error) => {
      console.log(`FAIL ${error instanceof Failure ? error.message : error.stack}`);
      process.exit(1);
    },
  );
}
