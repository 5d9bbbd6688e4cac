"""Browser tests: the launcher and /control pages in real headless Chromium (pages_test.mjs).

Starts the real daemon through the integration harness (a sim backend `gpu`, a random control
token and secret key in its environment), a tiny server on another origin that serves a page
posting a forged wake, and then the Node driver, whose output is streamed. Screenshots of every
step are kept in $UNSHELVER_ARTIFACTS/browser/ (default tests/artifacts/browser/).

Chromium, Node.js and playwright-core are required, not optional: CI installs them
(`scripts/setup test`, `npm ci --prefix tests/browser`), so a missing one fails the test instead
of skipping it, which would hide a broken setup.

    cd tests/browser && UNSHELVER_BIN=../../build/unshelver python3 -m unittest -v test_browser
    UNSHELVER_BROWSER_TESTS=public_wake_through_the_page,...   runs only the named driver tests
"""
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import harness  # noqa: E402
from harness import SOURCE_DIR, LoopbackServer, QuietHandler, Unshelver  # noqa: E402

DRIVER = os.path.join(HERE, "pages_test.mjs")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SETUP_HINT = ("Install them with `scripts/setup test` (Chromium, Node.js, npm) and "
              "`npm ci --prefix tests/browser` (playwright-core)")
DRIVER_TIMEOUT = 180  # seconds; the driver's own watchdog ends it after 150

# Sim durations as the brief of these tests has them; the idle timeout is long enough for the
# countdown on /control to show minutes.
CONFIG = """
app:
  title: Browser test
  poll_interval_seconds: 0.2
listen: 127.0.0.1:{{port}}
state_dir: {state_dir}
log_level: debug
security:
  # Several refused and accepted wakes and logins come from the one test client in a few seconds.
  wake_burst: 100
  wake_cooldown_seconds: 0
  login_burst: 20
buttons:
  - id: gpu
    label: GPU box
    provider: sim
    idle_timeout_minutes: 5
    health:
      interval_seconds: 0.1
      timeout_seconds: 1
      successes_needed: 2
    sim:
      wake_seconds: 1
      boot_seconds: 0.5
      sleep_seconds: 0.5
"""

# Served from another origin: posts a wake to the daemon as soon as it loads, the way a hostile
# site would. It cannot know the visitor's form token, so it sends none.
FORGED_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Another site</title></head>
<body>
<h1>Another site</h1>
<p>This page posts a wake to Unshelver by itself.</p>
<form id="forged" method="post" action="{action}">
  <input type="hidden" name="reason" value="forged">
  <button type="submit">Win a prize</button>
</form>
<script>document.getElementById("forged").submit();</script>
</body></html>
"""


def artifacts_dir():
    root = os.environ.get("UNSHELVER_ARTIFACTS") or os.path.join(SOURCE_DIR, "tests", "artifacts")
    return os.path.abspath(os.path.join(root, "browser"))


def missing_tools():
    """What is missing to run the browser tests, as sentences; empty when nothing is."""
    missing = []
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        missing.append(f"Chromium is not at {CHROMIUM} (set $CHROMIUM to use another)")
    node = shutil.which("node")
    if node is None:
        missing.append("node is not on PATH")
    else:
        version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
        match = re.match(r"v(\d+)\.", version)
        if not match or int(match.group(1)) < 18:
            missing.append(f"node {version} is too old (18 or later is needed)")
    if not os.path.isfile(os.path.join(HERE, "node_modules", "playwright-core", "package.json")):
        missing.append(f"playwright-core is not installed in {os.path.join(HERE, 'node_modules')}")
    return missing


class ForeignOrigin(LoopbackServer):
    """A tiny HTTP server on another port of 127.0.0.1: another origin than the daemon's. It also
    stops and starts the daemon for the driver (POST /daemon/stop, /daemon/start): the control
    page's stale banner is tested against a daemon that is really gone, then back on its port."""

    def __init__(self, forged_action, daemon_actions):
        page = FORGED_PAGE.format(action=forged_action).encode()

        class Handler(QuietHandler):
            def do_POST(self):
                action = daemon_actions.get(self.path)
                if action is None:
                    self.send_error(404)
                    return
                try:
                    action()
                    self.reply(200, "text/plain; charset=utf-8", b"done\n")
                except Exception as error:  # noqa: BLE001 - reported to the driver, which fails the test
                    self.reply(500, "text/plain; charset=utf-8", str(error).encode(errors="replace")[:2000])

            def do_GET(self):
                if self.path.split("?")[0] != "/forged.html":
                    self.send_error(404)
                    return
                self.reply(200, "text/html; charset=utf-8", page)

        super().__init__(Handler)


def kill_chromium_with_profile_in(directory):
    """SIGKILLs every process started with --user-data-dir under `directory` (Playwright makes
    Chromium's profile in the driver's TMPDIR): the ones a killed driver left behind. Returns their
    pids. (Chromium normally exits by itself when the driver's pipe closes; this is the backstop.)
    Chromium's child processes rewrite their command line into one space-separated string."""
    prefix = b"--user-data-dir=" + os.path.join(directory, "").encode()
    killed = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if int(pid) != os.getpid() and any(arg.startswith(prefix) for arg in re.split(rb"[\0 ]", cmdline.read())):
                    os.kill(int(pid), signal.SIGKILL)
                    killed.append(int(pid))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            pass
    return killed


def stop_driver(driver, driver_tmp):
    """Ends a driver started by run_driver (None: none was) and whatever Chromium it left: a driver
    that was killed cannot close its Chromium (Playwright starts it in its own process group), so
    whatever still runs with a profile in `driver_tmp` is ended too."""
    if driver is not None:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        driver.stdout.close()
    leftovers = kill_chromium_with_profile_in(driver_tmp)
    if leftovers:
        print(f"killed Chromium processes left behind: {leftovers}", flush=True)


def run_driver(test, command, token, driver_tmp, timeout, artifacts, daemon_output):
    """Runs a Node driver (with --only from $UNSHELVER_BROWSER_TESTS, e.g.
    public_wake_through_the_page,..., and the control token in its environment, not its argv),
    streaming its output, and fails `test` with each FAIL line and the lines under it (what went
    wrong) when it does not pass in `timeout` s. Returns the process, for stop_driver()."""
    only = os.environ.get("UNSHELVER_BROWSER_TESTS")
    if only:
        command = command + ["--only", only]
    env = dict(os.environ, UNSHELVER_CONTROL_TOKEN=token, CHROMIUM=CHROMIUM, TMPDIR=driver_tmp,
               NODE_NO_WARNINGS="1")
    driver = subprocess.Popen(command, cwd=HERE, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    test.driver = driver
    lines = []

    def stream():
        for raw in driver.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            lines.append(line)
            print(line, flush=True)

    reader = threading.Thread(target=stream, daemon=True)
    reader.start()
    try:
        code = driver.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        # SIGTERM first: Playwright's handler closes Chromium; the cleanup kills what remains.
        driver.terminate()
        try:
            driver.wait(timeout=10)
        except subprocess.TimeoutExpired:
            driver.kill()
        test.fail(f"the browser tests did not finish within {timeout} s")
    reader.join(timeout=10)
    if code != 0:
        # Each FAIL line with the lines under it (what went wrong), without the passing tests.
        failures, in_failure = [], False
        for line in lines:
            if not line.startswith("  "):
                in_failure = line.startswith("FAIL")
            if in_failure and "screenshot " not in line:
                failures.append(line)
        test.fail(f"browser tests failed (exit {code}); screenshots in {artifacts}\n" + "\n".join(failures)
                  + "\n--- daemon log (end) ---\n" + daemon_output()[-3000:])
    return driver


class BrowserDriverCase(unittest.TestCase):
    """The daemon, the foreign origin and a Node driver (driver_common.mjs) for one test method;
    a test calls run_driver(path). Other starters (test_timeline.py) derive from it."""

    # A subdirectory of the browser artifacts for a starter's own screenshots and daemon log.
    ARTIFACTS_SUBDIR = ""

    # Everything started is stopped by the cleanups, in reverse order, also when setUp fails
    # half-way (tearDown would not run then).
    def setUp(self):
        missing = missing_tools()
        if missing:
            self.fail("browser tests cannot run: " + "; ".join(missing) + ". " + SETUP_HINT)
        self.artifacts = os.path.join(artifacts_dir(), self.ARTIFACTS_SUBDIR) if self.ARTIFACTS_SUBDIR else artifacts_dir()
        os.makedirs(self.artifacts, exist_ok=True)
        for name in os.listdir(self.artifacts):  # only this run's screenshots
            if name.endswith(".png") or name == "unshelver.log":
                os.remove(os.path.join(self.artifacts, name))
        self.tmp = tempfile.mkdtemp(prefix="unshelver-browser-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.driver_tmp = os.path.join(self.tmp, "driver")  # the driver's TMPDIR: Chromium's profile
        os.mkdir(self.driver_tmp)

        # A random 43-character token and key per run (32 random bytes, base64url). The harness
        # makes one when it is imported and checks that it never leaks into the daemon's output.
        self.token = getattr(harness, "CONTROL_TOKEN", None) or secrets.token_urlsafe(32)
        env = dict(os.environ, UNSHELVER_CONTROL_TOKEN=self.token,
                   UNSHELVER_SECRET_KEY=os.environ.get("UNSHELVER_SECRET_KEY") or secrets.token_urlsafe(32))
        workdir = os.path.join(self.tmp, "daemon")
        os.mkdir(workdir)
        self.daemon = Unshelver(CONFIG.format(state_dir=os.path.join(workdir, "state")), workdir=workdir, env=env)
        self.addCleanup(self.stop_daemon)
        self.prepare_state(os.path.join(workdir, "state"))
        self.daemon.start()
        self.foreign = ForeignOrigin(self.daemon.url("/wake/gpu"),
                                     {"/daemon/stop": self.daemon.stop, "/daemon/start": self.daemon.start})
        self.addCleanup(self.foreign.stop)
        self.driver = None
        self.addCleanup(self.stop_driver)

    def prepare_state(self, state_dir):
        """Called before the daemon starts, with its state_dir (not yet created)."""

    def stop_driver(self):
        stop_driver(self.driver, self.driver_tmp)

    def stop_daemon(self):
        try:
            self.daemon.stop()
        finally:
            if os.path.exists(self.daemon.log_path):
                log = os.path.join(self.artifacts, "unshelver.log")
                shutil.copyfile(self.daemon.log_path, log)
                print(f"daemon log: {log}", flush=True)

    def run_driver(self, driver):
        command = ["node", driver, "--base-url", f"http://127.0.0.1:{self.daemon.port}",
                   "--foreign-url", self.foreign.url, "--artifacts", self.artifacts]
        self.driver = run_driver(self, command, self.token, self.driver_tmp, DRIVER_TIMEOUT, self.artifacts,
                                 self.daemon.output)



class BrowserTest(BrowserDriverCase):
    def test_pages_in_headless_chromium(self):
        self.run_driver(DRIVER)


if __name__ == "__main__":
    unittest.main()
