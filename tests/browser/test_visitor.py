"""Browser tests of the visitor's side (visitor_test.mjs): the waiting page and the launcher, in
real headless Chromium, through Debian's real Caddy with the gate routing that Unshelver loads.

One Caddy, one daemon and two small chat backends serve every driver test of the run:
  - http://chat.localhost:PORT/   backend `gpu` (a sim cloud in front of a chat backend whose
                                  health check passes only a second after each wake: the steps
                                  can be seen)
  - http://flaky.localhost:PORT/  backend `flaky`, whose first wake fails (sim.fail_wakes)
  - http://launcher.localhost:PORT/  the launcher
Chromium resolves every *.localhost name to the loopback address by itself. The driver reaches
Unshelver directly (127.0.0.1, with the control token) to arrange states; the pages it tests
go through Caddy. The driver can ask this module to stop and restart the daemon (a restart
while a waiting page is open) through a small control server on another loopback port.

    cd tests/browser && UNSHELVER_BIN=../../build/unshelver python3 -m unittest -v test_visitor
    UNSHELVER_BROWSER_TESTS=deep_link_kept_by_the_wake,...   runs only the named driver tests
"""
import http.server
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import harness  # noqa: E402
from caddy_harness import BareCaddy  # noqa: E402
from harness import Unshelver, free_port  # noqa: E402
from test_browser import SETUP_HINT, artifacts_dir, missing_tools, run_driver, stop_driver  # noqa: E402

DRIVER = os.path.join(HERE, "visitor_test.mjs")
DRIVER_TIMEOUT = 240  # seconds; the driver's own watchdog ends it after 210

CONFIG = """
app:
  title: Visitor test
  poll_interval_seconds: 0.1
listen: 127.0.0.1:{{port}}
state_dir: {workdir}/state
log_level: debug
activity_log_path: {workdir}/access.log
security:
  wake_burst: 1000
  # Long enough for a test to see the countdown, short enough for the tests that wake one after
  # another (visitor_test.mjs waits it out before a wake that must not meet it: WAKE_COOLDOWN_MS).
  wake_cooldown_seconds: 3
caddy:
  manage: true
  admin: http://127.0.0.1:{admin_port}
  integration: full
  routing: gate
  caddyfile: {workdir}/Caddyfile
  launcher_url: http://launcher.localhost:{caddy_port}
  bind: 127.0.0.1
  http_port: {caddy_port}
  auto_https: false
  drift_check_seconds: 1
  retry_max_seconds: 1
buttons:
  - id: gpu
    label: Chat GPU
    provider: sim
    public_base_url: http://chat.localhost:{caddy_port}/
    upstream: 127.0.0.1:{chat_port}
    idle_timeout_seconds: 120
    health:
      path: /health
      interval_seconds: 0.1
      timeout_seconds: 1
      successes_needed: 2
      attempts: 0
    sim:
      wake_seconds: 1.5
      boot_seconds: 0
      sleep_seconds: 0.3
  - id: flaky
    label: Flaky box
    provider: sim
    public_base_url: http://flaky.localhost:{caddy_port}/
    upstream: 127.0.0.1:{flaky_port}
    idle_timeout_seconds: 300
    health:
      path: /health
      interval_seconds: 0.1
      timeout_seconds: 1
      successes_needed: 2
      attempts: 0
    sim:
      wake_seconds: 0.5
      boot_seconds: 0
      sleep_seconds: 0.3
      fail_wakes: 1
"""


class ChatBackend:
    """A stand-in chat app: any path answers a small HTML page naming it; /health fails until
    `boot` seconds after Unshelver has seen the simulated VM run (vm_running()), like a service
    starting on it, and fails again once the VM no longer runs (Unshelver probes while waking too)."""

    def __init__(self, name, vm_running, boot=1.0):
        backend = self
        self.boot = boot
        self.vm_running = vm_running
        self.booted_at = None
        self.lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/health":
                    ok = backend.probe()
                    body = b"ok\n" if ok else b"starting\n"
                    self.send_response(200 if ok else 503)
                    self.send_header("Content-Type", "text/plain")
                else:
                    body = (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{name} chat</title></head>"
                            f"<body><h1 id=chat>{name} chat</h1><p id=path>{self.path}</p></body></html>").encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # Chromium left the page (a reload) before the answer came

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def probe(self):
        running = self.vm_running()
        with self.lock:
            now = time.monotonic()
            if not running:
                self.booted_at = None
            elif self.booted_at is None:  # the first probe since the VM runs
                self.booted_at = now + self.boot
            return self.booted_at is not None and now >= self.booted_at

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class DaemonControl:
    """POST /stop and POST /start on a loopback port: the driver stops and restarts the daemon
    while a page is open (Caddy then answers 502 for it)."""

    def __init__(self, test):
        control = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                try:
                    if self.path == "/stop":
                        test.daemon.stop()
                    elif self.path == "/start":
                        test.start_daemon()
                    else:
                        self.send_error(404)
                        return
                    self.send_response(204)
                except Exception as error:  # reported to the driver, which fails the test
                    self.send_response(500)
                    print(f"daemon control {self.path}: {error}", flush=True)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()
        control.server = self.server

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class VisitorBrowserTest(unittest.TestCase):
    def setUp(self):
        missing = missing_tools()
        if missing:
            self.fail("browser tests cannot run: " + "; ".join(missing) + ". " + SETUP_HINT)
        if shutil.which("caddy") is None:
            self.fail("browser tests of the visitor's pages need Caddy (scripts/setup test-tools installs it)")
        self.artifacts = os.path.join(artifacts_dir(), "visitor")
        os.makedirs(self.artifacts, exist_ok=True)
        for name in os.listdir(self.artifacts):  # only this run's screenshots
            if name.endswith(".png") or name.endswith(".log"):
                os.remove(os.path.join(self.artifacts, name))
        self.tmp = tempfile.mkdtemp(prefix="unshelver-visitor-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.driver_tmp = os.path.join(self.tmp, "driver")
        os.mkdir(self.driver_tmp)
        self.token = getattr(harness, "CONTROL_TOKEN", None) or secrets.token_urlsafe(32)
        self.env = dict(os.environ, UNSHELVER_CONTROL_TOKEN=self.token,
                        UNSHELVER_SECRET_KEY=os.environ.get("UNSHELVER_SECRET_KEY") or secrets.token_urlsafe(32))

        self.daemon = None
        self.chat = ChatBackend("gpu", lambda: self.vm_running("gpu"))
        self.addCleanup(self.chat.stop)
        self.flaky = ChatBackend("flaky", lambda: self.vm_running("flaky"), boot=0.3)
        self.addCleanup(self.flaky.stop)
        self.workdir = os.path.join(self.tmp, "daemon")
        os.mkdir(self.workdir)
        self.caddy = BareCaddy(self.workdir)
        self.addCleanup(self.caddy.stop)
        self.port = free_port()
        self.config = CONFIG.format(workdir=self.workdir, admin_port=self.caddy.admin_port, caddy_port=self.caddy.port,
                                    chat_port=self.chat.port, flaky_port=self.flaky.port)
        self.daemons = []
        self.addCleanup(self.stop_daemons)
        self.start_daemon()
        self.control = DaemonControl(self)
        self.addCleanup(self.control.stop)
        self.driver = None
        self.addCleanup(self.stop_driver)

    def vm_running(self, name):
        """Whether Unshelver last saw the simulated VM `name` running (False while it cannot be asked)."""
        try:
            return self.daemon is not None and self.daemon.backend(name)["cloud_status"] == "ACTIVE"
        except (OSError, AssertionError, KeyError, ValueError):
            return False

    def start_daemon(self):
        self.daemon = Unshelver(self.config, workdir=self.workdir, port=self.port, env=self.env)
        self.daemons.append(self.daemon)
        self.daemon.start()
        deadline = time.monotonic() + 10
        while not (self.daemon.status().get("caddy") or {}).get("loaded_at"):
            if time.monotonic() > deadline:
                raise AssertionError("Unshelver did not load its routing into Caddy\n" + self.daemon.output()[-3000:])
            time.sleep(0.05)

    def stop_daemons(self):
        for number, daemon in enumerate(self.daemons):
            try:
                if daemon.process.poll() is None:
                    daemon.stop()
            finally:
                if os.path.exists(daemon.log_path):
                    shutil.copyfile(daemon.log_path, os.path.join(self.artifacts, f"unshelver-{number}.log"))

    def stop_driver(self):
        stop_driver(self.driver, self.driver_tmp)

    def test_visitor_pages_in_headless_chromium(self):
        command = ["node", DRIVER, "--unshelver-url", f"http://127.0.0.1:{self.port}",
                   "--caddy-port", str(self.caddy.port), "--daemon-control", self.control.url,
                   "--artifacts", self.artifacts]
        run_driver(self, command, self.token, self.driver_tmp, DRIVER_TIMEOUT, self.artifacts,
                   lambda: self.daemon.output())


if __name__ == "__main__":
    unittest.main()
