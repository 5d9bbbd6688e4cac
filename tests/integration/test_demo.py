"""scripts/demo end to end, with Debian's real Caddy: the demo starts Caddy with its admin API
only, Unshelver loads the managed routing into it, a taken port is replaced by a free one (and
said so), the waiting page's Wake form reaches Unshelver through Caddy and wakes the machine, the
backend then answers through Caddy, and the CLI command the demo prints works as printed. One
demo run serves the whole class (about 15 s: the demo's simulated wake takes 6 s)."""
import html.parser
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import textwrap
import threading
import time
import unittest
import urllib.parse

from caddy_harness import CADDY
from harness import BINARY, SOURCE_DIR, free_port, require_peer

DEMO = os.path.join(os.path.abspath(SOURCE_DIR), "scripts", "demo")
BANNER_END = "Ctrl-C stops the demo."


def start_demo(args, env=None):
    """scripts/demo --no-build with this test's binary; a thread collects its output lines."""
    environment = dict(os.environ, UNSHELVER_BIN=BINARY, **(env or {}))
    environment.pop("UNSHELVER_CONTROL_TOKEN", None)  # the demo's own token file must be what counts
    process = subprocess.Popen([DEMO, "--no-build", *args], cwd=os.path.abspath(SOURCE_DIR), env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    process.lines = []
    process.reader = threading.Thread(target=lambda: process.lines.extend(process.stdout), daemon=True)
    process.reader.start()
    return process


def read_until(process, marker, timeout):
    """The demo's output up to the line holding `marker`, or up to its exit."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(marker in line for line in process.lines):
            return "".join(process.lines)
        if process.poll() is not None:
            time.sleep(0.2)  # the last lines
            return "".join(process.lines)
        time.sleep(0.05)
    raise AssertionError(f"the demo printed no {marker!r} within {timeout} s:\n" + "".join(process.lines))


def stop(process):
    """SIGTERM to the demo (it stops Caddy and Unshelver itself); its whole group if it hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    process.reader.join(timeout=5)
    process.stdout.close()


class WakeForm(html.parser.HTMLParser):
    """The waiting page's wake form: its action and its fields, as a browser would send them."""

    def __init__(self):
        super().__init__()
        self.action = None
        self.fields = {}
        self._inside = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and "/.well-known/unshelver/wake" in (attrs.get("action") or ""):
            self.action = attrs["action"]
            self._inside = True
        elif tag == "input" and self._inside and attrs.get("name"):
            self.fields[attrs["name"]] = attrs.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self._inside = False


@require_peer(CADDY, "caddy")
class DemoTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.workdir = tempfile.mkdtemp(prefix="unshelver-demo-")
        # Caddy's HTTP port and its admin port (the next one, by default) are taken: the demo must
        # choose others and say so.
        cls.blockers = []
        cls.taken_port = cls.block(0)
        cls.admin_taken = cls.block(cls.taken_port + 1)
        cls.listen_port = free_port()
        cls.demo = start_demo(["--port", str(cls.taken_port), "--listen-port", str(cls.listen_port),
                               "--dir", cls.workdir])
        try:
            cls.output = read_until(cls.demo, BANNER_END, timeout=60)
        except BaseException:
            cls.tearDownClass()
            raise
        found = re.search(r"launcher: +http://launcher\.localhost:(\d+)/", cls.output)
        cls.caddy_port = int(found.group(1)) if found else None

    @classmethod
    def block(cls, port):
        """Listens on 127.0.0.1:port (0: any free one); the port, or None when it is not free."""
        blocker = socket.socket()
        try:
            blocker.bind(("127.0.0.1", port))
        except (OSError, OverflowError):
            blocker.close()
            return None
        blocker.listen()
        cls.blockers.append(blocker)
        return blocker.getsockname()[1]

    @classmethod
    def tearDownClass(cls):
        stop(cls.demo)
        for blocker in cls.blockers:
            blocker.close()

    def setUp(self):
        self.assertIn(BANNER_END, self.output, "the demo did not start:\n" + self.output)
        self.assertIsNotNone(self.caddy_port, self.output)

    def through_caddy(self, method, host, path, headers=None, body=None):
        """(status, headers, body) of one request to Caddy for `host`, as a browser sends it."""
        connection = http.client.HTTPConnection("127.0.0.1", self.caddy_port, timeout=10)
        try:
            connection.request(method, path, body=body,
                               headers={"Host": f"{host}:{self.caddy_port}", **(headers or {})})
            response = connection.getresponse()
            return response.status, response.headers, response.read().decode("utf-8", "replace")
        finally:
            connection.close()

    def daemon_state(self):
        connection = http.client.HTTPConnection("127.0.0.1", self.listen_port, timeout=5)
        try:
            connection.request("GET", "/api/status")
            return json.loads(connection.getresponse().read())["backends"][0]["state"]
        finally:
            connection.close()

    def wait_for_state(self, wanted, timeout):
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            state = self.daemon_state()
            if state in wanted:
                return state
            time.sleep(0.1)
        self.fail(f"the backend is {state}, not {wanted}, after {timeout} s")

    def test_1_taken_port_is_replaced_and_said(self):
        self.assertRegex(self.output, rf"Port {self.taken_port} \(Caddy's HTTP port\) is taken: using \d+ instead")
        self.assertNotEqual(self.caddy_port, self.taken_port)
        if self.admin_taken:
            self.assertRegex(self.output, rf"Port {self.admin_taken} \(Caddy's admin API\) is taken: using \d+ instead")
        # The URLs come first after that message; the logs are files, named.
        self.assertIn(f"http://chat.localhost:{self.caddy_port}/", self.output)
        for log in ("unshelver.log", "caddy.log", "access.log"):
            self.assertIn(os.path.join(self.workdir, "logs", log), self.output)
        # The routing is the managed one: Unshelver's rendered Caddyfile, with the gate.
        with open(os.path.join(self.workdir, "Caddyfile")) as rendered:
            self.assertIn("forward_auth", rendered.read())
        status, _, body = self.through_caddy("GET", "launcher.localhost", "/healthz")
        self.assertEqual(status, 200, body)

    def test_2_wake_form_of_the_waiting_page_wakes_through_caddy(self):
        self.assertEqual(self.daemon_state(), "asleep")
        # A visitor's browser asks for a deep link on the backend's host while it sleeps.
        status, headers, page = self.through_caddy("GET", "chat.localhost", "/c/conversation-42?model=llama",
                                                   {"Accept": "text/html"})
        self.assertEqual(status, 503, page[:300])
        form = WakeForm()
        form.feed(page)
        self.assertIsNotNone(form.action, "no wake form on the waiting page:\n" + page[:2000])
        cookies = "; ".join(value.split(";", 1)[0] for value in headers.get_all("Set-Cookie") or [])
        # The Wake button: a form POST through Caddy, with the page's token and cookie.
        status, headers, body = self.through_caddy(
            "POST", "chat.localhost", form.action,
            {"Accept": "text/html", "Cookie": cookies, "Content-Type": "application/x-www-form-urlencoded",
             "Origin": f"http://chat.localhost:{self.caddy_port}"},
            urllib.parse.urlencode(form.fields))
        self.assertEqual(status, 303, f"the wake form through Caddy got {status}: {body[:300]}")
        self.assertNotEqual(headers.get("X-Served-By"), "fallback-static")
        # The machine wakes, then the backend itself answers through Caddy.
        self.wait_for_state({"waking", "booting", "ready"}, 10)
        self.wait_for_state({"ready"}, 30)
        status, headers, body = self.through_caddy("GET", "chat.localhost", "/c/conversation-42",
                                                   {"Accept": "text/html"})
        self.assertEqual(status, 200, body[:300])
        self.assertEqual(headers.get("X-Served-By"), "gpu")

    def test_3_cli_status_works_as_printed(self):
        printed = re.search(r"by script: +(.+)", self.output)
        self.assertIsNotNone(printed, self.output)
        environment = {key: value for key, value in os.environ.items() if key != "UNSHELVER_CONTROL_TOKEN"}
        result = subprocess.run(shlex.split(printed.group(1)), cwd=os.path.abspath(SOURCE_DIR), env=environment,
                                capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("gpu", result.stdout)


class DemoCaddyFailureTest(unittest.TestCase):
    """A Caddy that cannot start, or none installed: the demo says what failed (with the end of
    Caddy's log) and stops, and never prints URLs that would lead nowhere."""

    def failed_demo(self, args, path):
        """The output of a demo run with this PATH, which must end by itself with exit code 1."""
        demo = start_demo(args, env={"PATH": path})
        try:
            output = read_until(demo, "never printed", timeout=30)
            self.assertEqual(demo.wait(timeout=10), 1, output)
        finally:
            stop(demo)
        return output

    def test_demo_stops_with_the_reason(self):
        workdir = tempfile.mkdtemp(prefix="unshelver-demo-fail-")
        fake_bin = os.path.join(workdir, "bin")
        os.mkdir(fake_bin)
        fake_caddy = os.path.join(fake_bin, "caddy")
        with open(fake_caddy, "w") as script:
            script.write(textwrap.dedent("""\
                #!/bin/sh
                echo 'Error: loading initial config: listen tcp 127.0.0.1:2019: bind: address already in use' >&2
                exit 1
                """))
        os.chmod(fake_caddy, 0o755)
        output = self.failed_demo(["--port", str(free_port()), "--listen-port", str(free_port()),
                                   "--dir", os.path.join(workdir, "demo")],
                                  path=fake_bin + os.pathsep + os.environ["PATH"])
        self.assertIn("Caddy could not start", output)
        self.assertIn("address already in use", output)
        self.assertNotIn("launcher:", output)

    def test_demo_without_caddy_says_to_install_it(self):
        # A PATH with only what the demo runs before it looks for Caddy.
        bare_bin = tempfile.mkdtemp(prefix="unshelver-demo-path-")
        for tool in ("bash", "dirname"):
            os.symlink(shutil.which(tool), os.path.join(bare_bin, tool))
        output = self.failed_demo(["--port", str(free_port())], path=bare_bin)
        self.assertIn("Caddy is not installed", output)
        self.assertIn("apt-get install caddy", output)


if __name__ == "__main__":
    unittest.main()
