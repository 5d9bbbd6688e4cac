"""Shared helpers for the integration tests: run the real unshelver binary on 127.0.0.1.

Every test gets its own temporary directory, a free port and its own config; every process it
starts is stopped by the test itself (SIGTERM, then a check that it exited cleanly).
"""
import datetime
import http.server
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

BINARY = os.path.abspath(os.environ.get("UNSHELVER_BIN", os.path.join(os.path.dirname(__file__), "../../build/unshelver")))
SOURCE_DIR = os.environ.get("UNSHELVER_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))


# Every daemon and CLI these tests start runs with a control token and a session key, from the
# environment (as a deployment would keep them out of config.yaml). Set here, in this process's own
# environment, so that the daemons and the `unshelver` commands the tests run inherit the same
# values; a test that needs no token passes an environment without them.
CONTROL_TOKEN = os.environ.setdefault("UNSHELVER_CONTROL_TOKEN", secrets.token_urlsafe(32))
os.environ.setdefault("UNSHELVER_SECRET_KEY", secrets.token_urlsafe(32))
ADMIN = {"Authorization": f"Bearer {CONTROL_TOKEN}"}


# One policy for programs the tests need beside the binary ("peers": Caddy), the same as the C++
# loop tests' (tests/support/peers.h): CI installs them (scripts/setup test-tools), so a missing one
# FAILS the tests that need it; UNSHELVER_ALLOW_MISSING_PEERS=1 turns the failure into a skip where a
# peer is knowingly absent.
ALLOW_MISSING_PEERS_VARIABLE = "UNSHELVER_ALLOW_MISSING_PEERS"


def missing_peers_allowed():
    return os.environ.get(ALLOW_MISSING_PEERS_VARIABLE) == "1"


def missing_peer_message(name):
    return (f"{name} is not installed; install it with `scripts/setup test-tools`, or set "
            f"{ALLOW_MISSING_PEERS_VARIABLE}=1 to skip the tests that need it")


def require_peer(found, name):
    """A decorator for a TestCase class (or a test method) that needs the program `name`; `found` is
    its path, or None when it is missing. Present: the class as it is. Missing: every test fails with
    a message naming `scripts/setup test-tools`, or is skipped when missing peers are allowed."""
    def decorate(target):
        if found:
            return target
        if missing_peers_allowed():
            return unittest.skip(missing_peer_message(name))(target)
        if isinstance(target, type):
            original = target.setUp

            def setUp(self):
                self.fail(missing_peer_message(name))
                original(self)

            target.setUp = setUp
            return target

        def failing(self, *args, **kwargs):
            self.fail(missing_peer_message(name))

        failing.__name__ = target.__name__
        return failing
    return decorate


def poll(predicate, timeout, interval=0.02):
    """Calls `predicate` every `interval` seconds until it returns something true, and returns that;
    None once `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def sim_config(state_dir, port, idle_seconds=2, extra_backend="", extra_top=""):
    """A config with one simulated backend and short durations, as YAML text."""
    return f"""
app:
  title: Integration test
  poll_interval_seconds: 0.1
listen: 127.0.0.1:{port}
state_dir: {state_dir}
log_level: debug
http:
  header_timeout_seconds: 0.5
  idle_timeout_seconds: 5
  max_body_bytes: 1024
  max_header_bytes: 2048
buttons:
  - id: gpu
    label: Test GPU
    provider: sim
    idle_timeout_seconds: {idle_seconds}
    health:
      interval_seconds: 0.1
      timeout_seconds: 1
      successes_needed: 2
    sim:
      wake_seconds: 0.4
      boot_seconds: 0.3
      sleep_seconds: 0.3
{extra_backend}
{extra_top}
"""


class Unshelver:
    """One running unshelver process."""

    def __init__(self, config_text=None, workdir=None, args=None, port=None, env=None, cwd=None):
        self.workdir = workdir or tempfile.mkdtemp(prefix="unshelver-test-")
        self.port = port or free_port()
        self.config_path = os.path.join(self.workdir, "config.yaml")
        text = config_text if config_text is not None else sim_config(os.path.join(self.workdir, "state"), self.port)
        with open(self.config_path, "w") as config_file:
            config_file.write(text.replace("{port}", str(self.port)))
        self.log_path = os.path.join(self.workdir, "unshelver.log")
        self.args = args or ["run", "--config", self.config_path]
        self.env = env      # None: this process's environment
        self.cwd = cwd      # None: this process's working directory
        self.process = None

    def start(self):
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen([BINARY] + self.args, stdout=self.log, stderr=subprocess.STDOUT,
                                        env=self.env, cwd=self.cwd)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"unshelver exited with {self.process.returncode}:\n{self.output()}")
            try:
                if self.get("/healthz")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("unshelver did not answer /healthz within 10 s:\n" + self.output())

    def stop(self, expect_code=0):
        """SIGTERM, then require a clean exit (sanitizer builds also report leaks here)."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError("unshelver did not stop within 15 s of SIGTERM:\n" + self.output())
        finally:
            self.log.close()
        if expect_code is not None and code != expect_code:
            raise AssertionError(f"unshelver exited with {code}, expected {expect_code}:\n{self.output()}")
        self.assert_no_secret_leaked()
        return code

    def assert_no_secret_leaked(self):
        """The control token never appears in the daemon's output or in an event log (every test
        that stops a daemon checks this)."""
        if CONTROL_TOKEN in self.output():
            raise AssertionError("the control token appeared in unshelver's output")
        for directory, _, files in os.walk(self.workdir):
            for name in files:
                if ".jsonl" in name or name.endswith(".log"):
                    with open(os.path.join(directory, name), "rb") as file:
                        if CONTROL_TOKEN.encode() in file.read():
                            raise AssertionError(f"the control token appeared in {os.path.join(directory, name)}")

    def output(self):
        with open(self.log_path, "rb") as log:
            return log.read().decode(errors="replace")

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def request(self, method, path, headers=None, body=None, admin=False):
        """One request; `admin` adds the control token as a bearer token."""
        headers = dict(headers or {})
        if admin:
            headers.update(ADMIN)
        request = urllib.request.Request(self.url(path), method=method, data=body, headers=headers)
        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(request, timeout=5) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def get(self, path, headers=None):
        return self.request("GET", path, headers)

    def status(self):
        code, _, body = self.get("/api/status")
        assert code == 200, code
        return json.loads(body)

    def backend(self, name="gpu"):
        for backend in self.status()["backends"]:
            if backend["name"] == name:
                return backend
        raise KeyError(name)

    def wake(self, name="gpu", accept="application/json"):
        """An admin's wake (POST /control/wake/NAME with the control token): not rate limited, so
        tests can wake as often as they need. The public button's way is public_wake()."""
        return self.request("POST", f"/control/wake/{name}", {"Accept": accept}, b"", admin=True)

    def shelve(self, name="gpu"):
        return self.request("POST", f"/control/shelve/{name}", {"Accept": "application/json"}, b"", admin=True)

    def visitor_form(self, path="/", headers=None):
        """GETs a public page as a browser would; returns (the visitor cookie, the page's form token)."""
        code, response_headers, body = self.get(path, {"Accept": "text/html", **(headers or {})})
        assert code == 200, (code, body[:200])
        cookie = re.search(r"unshelver_visitor=([^;]+)", response_headers.get("Set-Cookie", ""))
        token = re.search(rb'name="form_token" value="([^"]+)"', body)
        assert cookie and token, (response_headers, body[:500])
        return cookie.group(1), token.group(1).decode()

    def public_wake(self, name="gpu", accept="application/json", headers=None):
        """The launcher's wake button: GET / for the visitor cookie and form token, then POST the form."""
        cookie, token = self.visitor_form("/", headers)
        return self.request("POST", f"/wake/{name}",
                            {"Accept": accept, "Cookie": f"unshelver_visitor={cookie}",
                             "Content-Type": "application/x-www-form-urlencoded", **(headers or {})},
                            f"form_token={token}".encode())

    def wait_until(self, predicate, timeout, what):
        """Polls `predicate` every 20 ms until it returns something true, and returns that."""
        value = poll(predicate, timeout)
        if value:
            return value
        raise AssertionError(f"timed out waiting for {what}; status: {self.status()}\n" + self.output()[-3000:])

    def wait_for_state(self, state, timeout, name="gpu"):
        """Polls /api/status every 50 ms; returns the states seen on the way (deduplicated)."""
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            current = self.backend(name)["state"]
            if not seen or seen[-1] != current:
                seen.append(current)
            if current == state:
                return seen
            time.sleep(0.05)
        raise AssertionError(f"{name} did not reach {state} within {timeout} s; saw {seen}\n" + self.output()[-4000:])


class FleetOnOneCloud(unittest.TestCase):
    """Several backends on one fake cloud, started together and left asleep (the shared-listing
    tests). SECRET is the cloud credential the daemon must never print."""
    SECRET = None

    def start_fleet(self, config_text, port, names):
        self.unshelver = Unshelver(config_text, workdir=self.workdir, port=port)
        self.unshelver.start()
        self.addCleanup(self.stop_fleet)
        for name in names:
            self.unshelver.wait_for_state("asleep", 15, name=name)
        return self.unshelver

    def stop_fleet(self):
        if self.unshelver.process and self.unshelver.process.poll() is None:
            self.unshelver.stop()
        self.assertNotIn(self.SECRET, self.unshelver.output())

    def assert_a_lone_backend_reads_its_machine(self, machine_id, settled_period):
        """With one backend on the cloud, no listing: its settled observation reads its machine
        (the subclass's last_seq, listings and reads_of ask the fake)."""
        u = self.start(["solo"])
        settled = self.last_seq()
        time.sleep(settled_period + 5)
        self.assertEqual(self.listings(settled), [])
        self.assertGreaterEqual(len(self.reads_of(machine_id, settled)), 1)
        self.assertEqual(u.backend("solo")["state"], "asleep")

    def wait_for_observations(self, names, after, timeout):
        """Waits until each of `names` has been observed (its status's observed_at) at or after the
        wall-clock time `after`, so that a check of how it was observed cannot pass vacuously."""
        def observed(name):
            at = self.unshelver.backend(name).get("observed_at")
            return at is not None and datetime.datetime.fromisoformat(at).timestamp() >= after
        self.unshelver.wait_until(lambda: all(observed(name) for name in names), timeout,
                                  f"a settled observation of each of {names}")

    def assert_asleep_without_own_reads(self, names, ids, since):
        """Each of `names` stayed asleep and error-free, and its machine was never read on its own
        since request `since` of the fake (reads_of, the subclass's: its cloud's single read)."""
        for name in names:
            self.assertEqual(self.reads_of(ids[name], since), [], name)
            backend = self.unshelver.backend(name)
            self.assertEqual(backend["state"], "asleep", name)
            self.assertEqual(backend["error"], "", name)
            self.assertEqual(backend["observe_error"], "", name)


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """A request handler for a test's own server: logs nothing, answers with reply()."""

    def reply(self, status, content_type, body):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class LoopbackServer:
    """A test's own small HTTP server on a free port of 127.0.0.1, answering with `handler` (a
    BaseHTTPRequestHandler class) in a background thread until stop()."""

    def __init__(self, handler):
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def raw_exchange(port, data, timeout=5.0, read_until_close=True):
    """Sends raw bytes and returns everything the server answered (until it closes or times out)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(data)
        chunks = []
        try:
            while True:
                chunk = connection.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if not read_until_close:
                    break
        except socket.timeout:
            pass
        return b"".join(chunks)
