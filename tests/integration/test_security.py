"""The control surface's and the public wake's protections, against the real binary.

- Wrong control tokens answer 401 and are counted; the first of a client's minute is recorded as a
  `login_failed` event, the rest in a summary (issue 15 §3).
- Brute force is slowed: past the burst a client's wrong tokens are refused (429 + Retry-After)
  and no longer recorded one by one, while other clients are not affected; the right token is
  never refused, so that failing on purpose from the admin's address locks nobody out (§4).
- X-Forwarded-For is believed only from the proxy: with http.proxy_socket, only on that socket;
  a local TCP client is recorded and rate limited as itself, whatever it claims (§4). Through
  the real Caddy, the managed configuration reaches Unshelver over the socket (launcher, gate).
- A logout survives a restart with the same secret key (§5).
- The token in a query string never authenticates; sessions are signed cookies with the right
  flags (Secure behind https), end at logout even for a copied cookie, and forms need their
  anti-forgery token.
- The public wake needs the page's form token with its visitor cookie, refuses bots, is rate
  limited per client and has a global cool-down.
- Security headers on every page; the public status hides cloud details; /metrics is valid
  exposition format (checked by prom_check, and by promtool when installed).
- harness.Unshelver.stop() checks that the token never reached the daemon's log or event log.
"""
import http.client
import json
import os
import re
import socket
import subprocess
import tempfile
import time
import unittest

import prom_check
from caddy_harness import CADDY, BareCaddy, FakeBackend
from harness import ADMIN, BINARY, CONTROL_TOKEN, Unshelver, require_peer, sim_config
from test_routing import routing_config

SECURITY = """
security:
  login_burst: 3
  login_refill_seconds: 600
  wake_burst: 2
  wake_refill_seconds: 600
  wake_cooldown_seconds: 600
"""

FORM = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"}


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a Unix socket, as Caddy speaks to Unshelver's proxy socket."""

    def __init__(self, path):
        super().__init__("localhost", timeout=5)
        self.socket_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(self.socket_path)


def over_socket(path, method, target, headers):
    connection = UnixHTTPConnection(path)
    try:
        connection.request(method, target, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def with_proxy_socket(config_text, path):
    """The config with http.proxy_socket set (sim_config has an `http` section already)."""
    return config_text.replace("\nhttp:\n", f"\nhttp:\n  proxy_socket: {path}\n", 1)


def cookie_of(headers, name):
    found = re.search(rf"{name}=([^;]*)", headers.get("Set-Cookie", ""))
    return found.group(1) if found else None


class SecurityTest(unittest.TestCase):
    def setUp(self):
        self.daemon = Unshelver()
        state = os.path.join(self.daemon.workdir, "state")
        with open(self.daemon.config_path, "w") as config:
            config.write(sim_config(state, self.daemon.port, idle_seconds=300, extra_top=SECURITY))
        self.daemon.start()

    def tearDown(self):
        self.daemon.stop()

    # --- helpers ------------------------------------------------------------------------------

    def login(self, token, client=None):
        """Submits the login form as a browser at `client` (an X-Forwarded-For address) would."""
        extra = {"X-Forwarded-For": client} if client else {}
        visitor, form_token = self.daemon.visitor_form("/control/login", extra)
        body = f"form_token={form_token}&token={token}".encode()
        return self.daemon.request("POST", "/control/login",
                                   {**FORM, **extra, "Cookie": f"unshelver_visitor={visitor}"}, body)

    def session(self):
        code, headers, body = self.login(CONTROL_TOKEN)
        self.assertEqual(code, 303, body)
        return cookie_of(headers, "unshelver_session")

    def events(self, until=lambda events: True):
        """The recorded events, once `until` holds for them (they are reported after their fsync)."""
        deadline = time.monotonic() + 5
        while True:
            code, _, body = self.daemon.get("/api/events?limit=1000", ADMIN)
            self.assertEqual(code, 200, body)
            events = json.loads(body)["events"]
            if until(events) or time.monotonic() > deadline:
                return events
            time.sleep(0.05)

    def metrics(self):
        code, headers, body = self.daemon.get("/metrics")
        self.assertEqual(code, 200, body)
        self.assertEqual(headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8")
        return body.decode()

    # --- authentication -----------------------------------------------------------------------

    def test_wrong_token_is_401_recorded_and_counted(self):
        code, _, body = self.login("not-the-token-" + "x" * 30)
        self.assertEqual(code, 401)
        self.assertIn(b'id="login-error"', body)
        code, headers, _ = self.daemon.get("/api/status", {"Authorization": "Bearer wrong-token"})
        self.assertEqual(code, 401)
        self.assertIn("Bearer", headers["WWW-Authenticate"])
        failed = [e for e in self.events(lambda es: sum(e["action"] == "login_failed" for e in es) >= 1)
                  if e["action"] == "login_failed"]
        # Failed logins are noise (issue 15 §3): the first of a client's minute is recorded at once,
        # the second waits for the minute's summary.
        time.sleep(0.3)  # any further event would have been recorded by now
        failed = [e for e in self.events() if e["action"] == "login_failed"]
        self.assertEqual(len(failed), 1, failed)
        self.assertTrue(all(e["actor"] == "control" for e in failed))
        self.assertIn("unshelver_login_failures_total 2", self.metrics())

    def test_brute_force_is_refused_past_the_burst(self):
        for attempt in range(3):
            self.assertEqual(self.login(f"guess-{attempt}", client="198.51.100.7")[0], 401)
        code, headers, _ = self.login("guess-3", client="198.51.100.7")
        self.assertEqual(code, 429)
        self.assertGreater(int(headers["Retry-After"]), 500)
        # The right token is still accepted: the limit is on failures, and the admin may share the
        # address of whoever fails on purpose.
        self.assertEqual(self.login(CONTROL_TOKEN, client="198.51.100.7")[0], 303)
        code, _, _ = self.daemon.get("/api/status", {**ADMIN, "X-Forwarded-For": "198.51.100.7"})
        self.assertEqual(code, 200)
        # Another client is not affected.
        self.assertEqual(self.login(CONTROL_TOKEN, client="203.0.113.9")[0], 303)
        self.assertIn("unshelver_login_rate_limited_total 1", self.metrics())
        # Refused attempts are not events of their own (an attacker could flood the log); of the
        # three wrong tokens the first is, the other two wait for the minute's summary (issue 15 §3).
        time.sleep(0.3)  # any further event would have been recorded by now
        self.assertEqual(len([e for e in self.events() if e["action"] == "login_failed"]), 1)

    def test_failing_on_purpose_from_loopback_does_not_lock_out_the_cli(self):
        """Issue 15 §4: wrong tokens from 127.0.0.1, some with forged X-Forwarded-For, then the
        admin's CLI with the right token works at once."""
        for attempt in range(6):
            forged = {"X-Forwarded-For": f"1.2.3.{attempt}"} if attempt % 2 else {}
            code, _, _ = self.daemon.get("/api/status", {"Authorization": "Bearer wrong", **forged})
            self.assertIn(code, (401, 429))
        self.assertEqual(self.daemon.get("/api/status", {"Authorization": "Bearer wrong"})[0], 429)
        result = subprocess.run([BINARY, "shelve", "gpu", "--config", self.daemon.config_path],
                                capture_output=True, text=True, timeout=20)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        result = subprocess.run([BINARY, "status", "--config", self.daemon.config_path],
                                capture_output=True, text=True, timeout=20)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_a_logout_survives_a_restart(self):
        """Issue 15 §5: the same secret key after a restart must not revive a logged-out cookie."""
        session = self.session()
        other = self.session()
        cookie = {"Cookie": f"unshelver_session={session}"}
        _, _, page = self.daemon.get("/control", {**cookie, "Accept": "text/html"})
        form_token = re.search(rb'name="form_token" value="([^"]+)"', page).group(1).decode()
        code, _, _ = self.daemon.request("POST", "/control/logout", {**FORM, **cookie},
                                         f"form_token={form_token}".encode())
        self.assertEqual(code, 303)
        self.daemon.stop()
        self.daemon.start()
        code, _, _ = self.daemon.request("POST", "/control/shelve/gpu", {**FORM, **cookie, "Accept": "application/json"},
                                         f"form_token={form_token}".encode())
        self.assertEqual(code, 401, "a logged-out cookie works again after a restart")
        code, _, _ = self.daemon.get("/control", {**cookie, "Accept": "application/json"})
        self.assertEqual(code, 401)
        # Another admin's session was not ended by that logout.
        code, _, _ = self.daemon.get("/control", {"Cookie": f"unshelver_session={other}", "Accept": "application/json"})
        self.assertEqual(code, 200)

    def test_token_in_a_query_string_does_not_authenticate(self):
        for path in (f"/control?token={CONTROL_TOKEN}", f"/api/status?token={CONTROL_TOKEN}",
                     f"/control/wake/gpu?control_token={CONTROL_TOKEN}"):
            code, _, body = self.daemon.request("GET" if "wake" not in path else "POST", path, {"Accept": "text/html"})
            self.assertEqual(code, 400, (path, body))
            self.assertIn(b"never accepted in a URL", body)
        code, _, _ = self.daemon.get(f"/api/events?token={CONTROL_TOKEN}")
        self.assertEqual(code, 401)
        self.assertEqual(self.daemon.backend()["desired"], "asleep")

    def test_session_cookie_flags_and_logout(self):
        code, headers, _ = self.login(CONTROL_TOKEN)
        self.assertEqual((code, headers["Location"]), (303, "/control"))
        set_cookie = headers["Set-Cookie"]
        for flag in ("HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"):
            self.assertIn(flag, set_cookie)
        self.assertNotIn("Secure", set_cookie)  # plain http on loopback
        self.assertNotIn(CONTROL_TOKEN, set_cookie)
        session = cookie_of(headers, "unshelver_session")

        code, _, page = self.daemon.get("/control", {"Cookie": f"unshelver_session={session}", "Accept": "text/html"})
        self.assertEqual(code, 200)
        self.assertIn(b'id="backend-gpu"', page)
        # A tampered cookie is no session: browsers go to the login form.
        tampered = session[:-2] + ("AA" if not session.endswith("AA") else "BB")
        code, headers, _ = self.daemon.get("/control", {"Cookie": f"unshelver_session={tampered}",
                                                        "Accept": "text/html"})
        self.assertEqual((code, headers["Location"]), (303, "/control/login"))

        form_token = re.search(rb'id="logout-form">\s*<input type="hidden" name="form_token" value="([^"]+)"',
                               page).group(1).decode()
        code, headers, _ = self.daemon.request("POST", "/control/logout",
                                               {**FORM, "Cookie": f"unshelver_session={session}"},
                                               f"form_token={form_token}".encode())
        self.assertEqual((code, headers["Location"]), (303, "/control/login"))
        self.assertIn("Max-Age=0", headers["Set-Cookie"])
        # A copy of the cookie kept after logout no longer works.
        code, _, _ = self.daemon.get("/control", {"Cookie": f"unshelver_session={session}",
                                                  "Accept": "application/json"})
        self.assertEqual(code, 401)
        actions = [e["action"] for e in self.events(lambda es: "logout" in [e["action"] for e in es])]
        self.assertIn("login", actions)
        self.assertIn("logout", actions)

    def test_cookies_are_secure_behind_https(self):
        https = {"X-Forwarded-For": "203.0.113.5", "X-Forwarded-Proto": "https"}
        _, headers, _ = self.daemon.get("/", {"Accept": "text/html", **https})
        self.assertIn("Secure", headers["Set-Cookie"])
        visitor, form_token = self.daemon.visitor_form("/control/login", https)
        code, headers, _ = self.daemon.request(
            "POST", "/control/login", {**FORM, **https, "Cookie": f"unshelver_visitor={visitor}"},
            f"form_token={form_token}&token={CONTROL_TOKEN}".encode())
        self.assertEqual(code, 303)
        self.assertIn("; Secure", headers["Set-Cookie"])

    def test_control_forms_need_their_form_token(self):
        session = self.session()
        cookie = {"Cookie": f"unshelver_session={session}"}
        code, _, _ = self.daemon.request("POST", "/control/wake/gpu", {**FORM, **cookie}, b"")
        self.assertEqual(code, 403)
        code, _, _ = self.daemon.request("POST", "/control/wake/gpu", {**FORM, **cookie}, b"form_token=forged")
        self.assertEqual(code, 403)
        self.assertEqual(self.daemon.backend()["desired"], "asleep")
        _, _, page = self.daemon.get("/control", {**cookie, "Accept": "text/html"})
        form_token = re.search(rb'name="form_token" value="([^"]+)"', page).group(1).decode()
        code, headers, _ = self.daemon.request("POST", "/control/wake/gpu", {**FORM, **cookie},
                                               f"form_token={form_token}".encode())
        # Back to the page, which says what was done (the message of issue 16).
        self.assertEqual((code, headers["Location"]), (303, "/control?done=wake_requested&backend=gpu#backend-gpu"))
        self.daemon.wait_for_state("ready", 10)
        self.assertEqual(self.daemon.backend()["desired_by"], "control")

    def test_manual_shelve_path_needs_the_token(self):
        self.daemon.wake()
        self.daemon.wait_for_state("ready", 10)
        self.assertEqual(self.daemon.request("POST", "/admin-shelve", {}, b"")[0], 401)
        self.assertEqual(self.daemon.request("GET", "/admin-shelve", ADMIN)[0], 405)
        code, _, body = self.daemon.request("POST", "/admin-shelve", {"Accept": "application/json"}, b"", admin=True)
        self.assertEqual(code, 202, body)
        self.daemon.wait_for_state("asleep", 10)
        self.assertEqual(self.daemon.backend()["desired_by"], "manual-shelve")

    # --- the public wake ----------------------------------------------------------------------

    def test_public_wake_needs_the_pages_form_token_and_cookie(self):
        visitor, form_token = self.daemon.visitor_form()
        for headers, body in (({}, b""),                                                 # nothing
                              ({"Cookie": f"unshelver_visitor={visitor}"}, b"form_token=forged"),
                              ({}, f"form_token={form_token}".encode()),               # token, no cookie
                              ({"Cookie": "unshelver_visitor=another-visitor-id-1234"},
                               f"form_token={form_token}".encode())):
            code, _, _ = self.daemon.request("POST", "/wake/gpu", {**FORM, **headers}, body)
            self.assertEqual(code, 403, (headers, body))
        self.assertEqual(self.daemon.backend()["desired"], "asleep")
        self.assertIn('unshelver_wake_requests_total{route="launcher",result="forged"} 4', self.metrics())
        code, headers, _ = self.daemon.public_wake(accept="text/html")
        self.assertEqual((code, headers["Location"]), (303, "/"))
        self.daemon.wait_for_state("ready", 10)
        self.assertEqual(self.daemon.backend()["desired_by"], "public-button")

    def test_bots_cannot_wake(self):
        code, _, body = self.daemon.public_wake(headers={"User-Agent": "UptimeRobot/2.0"})
        self.assertEqual(code, 403, body)
        self.assertIn(b"not allowed to wake", body)
        self.assertEqual(self.daemon.backend()["desired"], "asleep")

    def test_public_wake_is_rate_limited_per_client_with_a_global_cooldown(self):
        alice = {"X-Forwarded-For": "198.51.100.20"}
        self.assertEqual(self.daemon.public_wake(headers=alice)[0], 202)
        self.assertEqual(self.daemon.public_wake(headers=alice)[0], 202)  # already waking: harmless
        code, headers, _ = self.daemon.public_wake(headers=alice)
        self.assertEqual(code, 429)
        self.assertGreater(int(headers["Retry-After"]), 0)
        self.daemon.wait_for_state("ready", 10)
        self.daemon.shelve()
        self.daemon.wait_for_state("asleep", 10)
        # Another client may ask, but a second start within the cool-down is refused for everyone.
        code, headers, body = self.daemon.public_wake(headers={"X-Forwarded-For": "203.0.113.30"})
        self.assertEqual(code, 429, body)
        self.assertIn(b"moments ago", body)
        self.assertEqual(self.daemon.backend()["desired"], "asleep")
        metrics = self.metrics()
        self.assertIn('unshelver_wake_requests_total{route="launcher",result="rate_limited"} 1', metrics)
        self.assertIn('unshelver_wake_requests_total{route="launcher",result="cooldown"} 1', metrics)

    # --- what every page carries, what the public sees --------------------------------------------

    def test_security_headers_on_every_page(self):
        for method, path, headers in (("GET", "/", {"Accept": "text/html"}), ("GET", "/control/login", {}),
                                      ("GET", "/control", {"Accept": "text/html"}), ("GET", "/api/status", {}),
                                      ("GET", "/metrics", {}), ("GET", "/nope", {}), ("POST", "/wake/gpu", {}),
                                      ("GET", "/static/control.js", {})):
            _, response, _ = self.daemon.request(method, path, headers, b"" if method == "POST" else None)
            policy = response["Content-Security-Policy"]
            self.assertIn("script-src 'self'", policy, path)
            self.assertNotIn("unsafe-inline", policy, path)
            self.assertIn("frame-ancestors 'none'", policy, path)
            self.assertEqual(response["X-Frame-Options"], "DENY", path)
            self.assertEqual(response["X-Content-Type-Options"], "nosniff", path)
            self.assertIn("Referrer-Policy", response, path)

    def test_public_status_hides_cloud_details(self):
        self.daemon.wake()
        self.daemon.wait_for_state("ready", 10)
        code, _, body = self.daemon.get("/api/status", {"X-Forwarded-For": "198.51.100.40"})
        self.assertEqual(code, 200)
        public = json.loads(body)
        backend = public["backends"][0]
        self.assertEqual(backend["state"], "ready")
        for hidden in ("upstream", "cloud_status", "desired_reason", "desired_by"):
            self.assertNotIn(hidden, backend)
        for hidden in ("events", "caddy", "activity", "openstack"):
            self.assertNotIn(hidden, public)
        # Admins, and local clients without a proxy in between, see everything.
        self.assertIn("upstream", json.loads(self.daemon.get("/api/status", {**ADMIN, "X-Forwarded-For": "1.2.3.4"})[2])
                      ["backends"][0])
        self.assertIn("events", self.daemon.status())

    # --- metrics --------------------------------------------------------------------------------

    def test_metrics_are_valid_exposition_format(self):
        self.daemon.wake()
        self.daemon.wait_for_state("ready", 10)
        text = self.metrics()
        self.assertEqual(prom_check.check(text), [])
        ran, problems = prom_check.promtool_check(text)
        self.assertEqual(problems, [], text)
        print(f"\n/metrics: {len(text.splitlines())} lines, prom_check clean, promtool {'clean' if ran else 'not installed'}")
        for expected in ('unshelver_backend_state{backend="gpu",state="ready"} 1',
                         'unshelver_backend_state{backend="gpu",state="asleep"} 0',
                         'unshelver_wakes_total{backend="gpu",actor="control",outcome="ready"} 1',
                         'unshelver_wake_duration_seconds_count{backend="gpu"} 1',
                         'unshelver_wake_duration_seconds_bucket{backend="gpu",le="+Inf"} 1',
                         'unshelver_backend_idle_deadline_timestamp_seconds{backend="gpu"}',
                         'unshelver_http_requests_total{route="control_action",status="202"} 1',
                         'unshelver_events_recorded_total',
                         '# TYPE unshelver_wake_duration_seconds histogram'):
            self.assertIn(expected, text)
        # Not for visitors behind the proxy.
        code, _, _ = self.daemon.get("/metrics", {"X-Forwarded-For": "198.51.100.50"})
        self.assertEqual(code, 401)
        code, _, _ = self.daemon.get("/metrics", {**ADMIN, "X-Forwarded-For": "198.51.100.50"})
        self.assertEqual(code, 200)


class ProxySocketTest(unittest.TestCase):
    """Issue 15 §4 with http.proxy_socket: forwarded addresses are believed only on the socket."""

    def setUp(self):
        self.daemon = Unshelver()
        self.socket_path = os.path.join(self.daemon.workdir, "http.sock")
        state = os.path.join(self.daemon.workdir, "state")
        with open(self.daemon.config_path, "w") as config:
            config.write(with_proxy_socket(sim_config(state, self.daemon.port, idle_seconds=300, extra_top=SECURITY),
                                           self.socket_path))
        self.daemon.start()

    def tearDown(self):
        self.daemon.stop()

    def failures(self, count):
        deadline = time.monotonic() + 5
        while True:
            events = json.loads(self.daemon.get("/api/events?limit=1000", ADMIN)[2])["events"]
            failed = [e for e in events if e["action"] == "login_failed"]
            if len(failed) >= count or time.monotonic() > deadline:
                return failed
            time.sleep(0.05)

    def test_a_local_tcp_client_is_itself_whatever_it_forwards(self):
        self.assertEqual(os.stat(self.socket_path).st_mode & 0o777, 0o660)
        for attempt in range(3):
            code, _, _ = self.daemon.get("/api/status", {"Authorization": "Bearer wrong",
                                                         "X-Forwarded-For": f"1.2.3.{attempt}"})
            self.assertEqual(code, 401)
        # One bucket, the real peer's: a fresh forged address does not buy a fresh burst.
        code, _, _ = self.daemon.get("/api/status", {"Authorization": "Bearer wrong", "X-Forwarded-For": "1.2.3.4"})
        self.assertEqual(code, 429)
        # One client, so one record: the audit trail writes a client's first failure of the minute
        # and summarises the rest (issue 15 §3); three forged clients would have made three.
        time.sleep(0.3)  # any further record would have been written by now
        failed = self.failures(1)
        self.assertEqual(len(failed), 1, failed)
        for event in failed:
            self.assertIn("from 127.0.0.1", event["detail"])
            self.assertNotIn("1.2.3.", event["detail"])
        # X-Forwarded-Proto is not believed either: no Secure cookie for plain http.
        _, headers, _ = self.daemon.get("/", {"Accept": "text/html", "X-Forwarded-Proto": "https"})
        self.assertNotIn("Secure", headers["Set-Cookie"])

        # Over the socket, the header is the proxy's and names the visitor.
        code, _, _ = over_socket(self.socket_path, "GET", "/api/status",
                                 {"Authorization": "Bearer wrong", "X-Forwarded-For": "198.51.100.4"})
        self.assertEqual(code, 401)
        self.assertTrue(any("from 198.51.100.4" in e["detail"] for e in self.failures(2)))
        _, headers, _ = over_socket(self.socket_path, "GET", "/", {"Accept": "text/html", "X-Forwarded-Proto": "https",
                                                                   "X-Forwarded-For": "198.51.100.4"})
        self.assertIn("Secure", headers["Set-Cookie"])
        # A visitor through the proxy is not a local client.
        code, _, _ = over_socket(self.socket_path, "GET", "/metrics", {"X-Forwarded-For": "198.51.100.4"})
        self.assertEqual(code, 401)
        self.daemon.stop()
        self.assertFalse(os.path.exists(self.socket_path), "the socket is removed at shutdown")


class ProxySocketFileTest(unittest.TestCase):
    """What Unshelver finds at http.proxy_socket: a socket left by a run that did not stop cleanly
    is replaced; any other file is never deleted, and start-up fails."""

    def daemon_with_socket_at(self):
        daemon = Unshelver()
        path = os.path.join(daemon.workdir, "http.sock")
        with open(daemon.config_path, "w") as config:
            config.write(with_proxy_socket(sim_config(os.path.join(daemon.workdir, "state"), daemon.port), path))
        return daemon, path

    def test_a_stale_socket_is_replaced_and_another_file_kept(self):
        daemon, path = self.daemon_with_socket_at()
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(path)
        stale.close()  # the file stays, as after kill -9
        daemon.start()
        self.assertEqual(over_socket(path, "GET", "/healthz", {})[0], 200)
        daemon.stop()

        daemon, path = self.daemon_with_socket_at()
        with open(path, "w") as precious:
            precious.write("not a socket\n")
        with self.assertRaises(AssertionError) as refused:
            daemon.start()
        self.assertIn("is not a socket", str(refused.exception))
        with open(path) as precious:
            self.assertEqual(precious.read(), "not a socket\n")


@require_peer(CADDY, "caddy")
class CaddyOverProxySocketTest(unittest.TestCase):
    """The managed Caddy configuration reaches Unshelver over its proxy socket: the launcher and
    the gate's forward_auth (issue 15 §4)."""

    def test_launcher_and_gate_through_caddy_over_the_socket(self):
        workdir = tempfile.mkdtemp(prefix="unshelver-socket-")
        backend = FakeBackend()
        self.addCleanup(backend.stop)
        caddy = BareCaddy(workdir)
        self.addCleanup(caddy.stop)
        socket_path = os.path.join(workdir, "http.sock")
        config = routing_config(workdir, caddy, backend, routing="gate") + f"http:\n  proxy_socket: {socket_path}\n"
        daemon = Unshelver(config, workdir=workdir)
        daemon.start()
        self.addCleanup(daemon.stop)
        daemon.wait_until(lambda: daemon.status()["caddy"].get("loaded_at"), 10, "the first load into Caddy")
        with open(os.path.join(workdir, "Caddyfile")) as caddyfile:
            rendered = caddyfile.read()
        self.assertIn(f"unix/{socket_path}", rendered)
        self.assertNotIn(f"127.0.0.1:{daemon.port}", rendered)

        def through_caddy(method, host, path, headers=None):
            connection = http.client.HTTPConnection("127.0.0.1", caddy.port, timeout=10)
            try:
                connection.request(method, path, body=b"" if method == "POST" else None,
                                   headers={"Host": f"{host}:{caddy.port}", **(headers or {})})
                response = connection.getresponse()
                return response.status, dict(response.getheaders()), response.read()
            finally:
                connection.close()

        code, _, body = through_caddy("GET", "launcher.localhost", "/", {"Accept": "text/html"})
        self.assertEqual(code, 200, body[:300])
        self.assertIn(b"Test GPU", body)
        # Asleep: the gate (forward_auth over the socket) keeps the request from the backend.
        code, headers, _ = through_caddy("GET", "chat.localhost", "/", {"Accept": "text/html"})
        self.assertNotEqual(headers.get("X-Served-By"), "gpu")
        code, _, body = through_caddy("POST", "launcher.localhost", "/control/wake/gpu",
                                      {"Accept": "application/json", **ADMIN})
        self.assertEqual(code, 202, body)
        daemon.wait_for_state("ready", 10)
        code, headers, _ = through_caddy("GET", "chat.localhost", "/health")
        self.assertEqual((code, headers.get("X-Served-By")), (200, "gpu"))


if __name__ == "__main__":
    unittest.main()
