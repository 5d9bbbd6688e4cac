"""The cached public documents follow every change of a backend (issue 20: per-backend revisions).

The public /api/status, the launcher and /metrics keep each backend's part between changes and read
a backend's view again only when its own revision moved. A change that moves no revision leaves a
stale part behind for good (until that backend changes again). So after each kind of change (a
wake and its transitions, an access-log line, the wake estimate the event log learns, a shelve),
once the daemon is quiet, the cached documents must say what the full /api/status says: the full
document is written afresh from every backend's view at each request (sidecar/web/routes.cc).
"""
import http.client
import json
import os
import re
import tempfile
import time
import unittest
from datetime import datetime

from harness import ADMIN, Unshelver, free_port

PUBLIC = {"X-Forwarded-For": "198.51.100.70"}  # a visitor behind Caddy: the cached document
NAMES = ("gpu", "cpu", "tpu")
# What the public document shows of a backend (web::public_backend in sidecar/web/page_cache.cc).
PUBLIC_FIELDS = ("name", "label", "description", "state", "since", "last_activity", "idle_deadline",
                 "idle_timeout_seconds", "url", "error_reason", "desired", "wake_started_at",
                 "state_label", "explanation", "can_wake", "is_ready", "is_busy", "is_error", "auto_refresh",
                 "steps", "step", "hint", "wake_button", "idle_timeout_text")
TIME_FIELDS = ("since", "last_activity", "idle_deadline", "wake_started_at")


def config(workdir, port, access_log):
    backends = "".join(f"""
  - id: {name}
    label: Test {name.upper()}
    provider: sim
    host: {name}.localhost
    upstream_label: {name}
    idle_timeout_seconds: 600
    health:
      interval_seconds: 60  # once ready; until then it is probed fast
      timeout_seconds: 1
      successes_needed: 1
    sim:
      wake_seconds: 0.3
      boot_seconds: 0.2
      sleep_seconds: 0.2
""" for name in NAMES)
    backends += """
  - id: gated
    label: Test gated
    provider: sim
    host: gated.localhost
    upstream_label: gated
    routing: gate
    wake_on_request: true
    hold:
      max_seconds: 1
      retry_after_seconds: 1
    sim:
      wake_seconds: 30
"""
    return f"""
app:
  title: Page views test
  # Slow enough that no observation of the cloud comes between a change and the check: a steady
  # backend then changes by nothing but the change under test (a wake still polls fast).
  poll_interval_seconds: 60
listen: 127.0.0.1:{port}
state_dir: {workdir}/state
log_level: debug
activity_log_path: {access_log}
activity:
  stat_interval_seconds: 0.1
buttons:{backends}"""


def access_line(name):
    """One Caddy access-log line (JSON) for a request to backend `name` that ended now: its host,
    and its upstream label in X-Served-By."""
    return json.dumps({
        "level": "info", "ts": time.time(), "logger": "http.log.access.log1", "msg": "handled request",
        "request": {"remote_ip": "127.0.0.1", "remote_port": "40000", "proto": "HTTP/1.1", "method": "GET",
                    "host": f"{name}.localhost", "uri": "/", "headers": {"User-Agent": ["page-views-test"]}},
        "user_id": "", "duration": 0.01, "size": 10, "status": 200,
        "resp_headers": {"X-Served-By": [name]}}) + "\n"


def moment(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def same_value(field, ours, fresh):
    if field in TIME_FIELDS and isinstance(ours, str) and isinstance(fresh, str):
        # The cache keeps a time that moved by less than a millisecond (web::same_for_pages).
        return abs(moment(ours) - moment(fresh)) < 0.002
    return ours == fresh


class CachedDocumentsFollowEveryChangeTest(unittest.TestCase):
    def setUp(self):
        workdir = tempfile.mkdtemp(prefix="unshelver-page-views-")
        self.access_log = os.path.join(workdir, "access.log")
        open(self.access_log, "w").close()
        port = free_port()
        self.daemon = Unshelver(config(workdir, port, self.access_log), workdir=workdir, port=port)
        self.daemon.start()
        self.addCleanup(self.daemon.stop)
        for name in NAMES + ("gated",):
            self.daemon.wait_for_state("asleep", 10, name)

    def public_entry(self, name):
        _, _, body = self.daemon.get("/api/status", PUBLIC)
        return [entry for entry in json.loads(body)["backends"] if entry["name"] == name][0]

    def gate_figures(self):
        """gated's hold outcomes as /metrics shows them (cached), and as the full document does."""
        _, _, metrics = self.daemon.get("/metrics", ADMIN)
        shown = {match.group(1): int(float(match.group(2))) for match in re.finditer(
            r'^unshelver_gate_holds_total{backend="gated",outcome="(\w+)"} (\S+)$', metrics.decode(), re.M)}
        gate = self.daemon.backend("gated")["gate"]
        fresh = {outcome: gate[outcome] for outcome in ("released", "failed", "expired", "gone", "refused")}
        return shown, fresh

    def differences(self):
        """What the cached documents say otherwise than the full document, read right after them."""
        _, _, body = self.daemon.get("/api/status", PUBLIC)
        public = {entry["name"]: entry for entry in json.loads(body)["backends"]}
        _, _, metrics = self.daemon.get("/metrics", ADMIN)
        fresh = {entry["name"]: entry for entry in self.daemon.status()["backends"]}
        found = []
        for name, entry in fresh.items():
            if name not in NAMES:
                continue
            shown = public[name]
            for field in PUBLIC_FIELDS:
                if not same_value(field, shown.get(field), entry.get(field)):
                    found.append(f"{name}.{field}: public {shown.get(field)!r}, fresh {entry.get(field)!r}")
            for field, fresh_value in (("error", entry.get("error_summary", "")),
                                       ("wake_estimate_seconds", entry.get("wake_estimate_seconds"))):
                if shown.get(field) != fresh_value:
                    found.append(f"{name}.{field}: public {shown.get(field)!r}, fresh {fresh_value!r}")
            state = re.search(rf'^unshelver_backend_state{{backend="{name}",state="(\w+)"}} 1$',
                              metrics.decode(), re.M)
            if not state or state.group(1) != entry["state"]:
                found.append(f"{name}: /metrics state {state and state.group(1)}, fresh {entry['state']}")
            activity = re.search(rf'^unshelver_backend_last_activity_timestamp_seconds{{backend="{name}"}} (\S+)$',
                                 metrics.decode(), re.M)
            fresh_activity = moment(entry["last_activity"]) if entry.get("last_activity") else None
            if (activity is None) != (fresh_activity is None) or (
                    activity and abs(float(activity.group(1)) - fresh_activity) > 0.002):
                found.append(f"{name}: /metrics last activity {activity and activity.group(1)}, "
                             f"fresh {entry.get('last_activity')}")
        return found

    def assert_documents_follow(self, what):
        """Within a few seconds (the daemon's own transitions may come between two reads), the
        cached documents agree with the fresh one, and keep agreeing while the daemon is quiet."""
        deadline = time.monotonic() + 10
        found = self.differences()
        while found and time.monotonic() < deadline:
            time.sleep(0.1)
            found = self.differences()
        self.assertEqual(found, [], f"after {what}, the cached documents are stale")

    def test_wake_activity_estimate_and_shelve(self):
        self.assert_documents_follow("start-up")
        self.daemon.wake("gpu")
        # Read from the cache as often as it answers, so that it follows gpu through every state
        # of the wake and reads it as ready before the event log has written the wake (whose
        # duration becomes the estimate: a change that the written event alone marks, though
        # the cloud's fast polls after an early ready move gpu's revision again as well).
        deadline = time.monotonic() + 10
        while self.public_entry("gpu")["state"] != "ready":
            self.assertLess(time.monotonic(), deadline, "gpu was not ready within 10 s")
        # The wake's duration, once its event is written, is the backend's estimate.
        self.daemon.wait_until(lambda: self.daemon.backend("gpu").get("wake_estimate_seconds") is not None,
                               10, "gpu's wake estimate")
        self.assert_documents_follow("gpu's wake")
        gpu = self.public_entry("gpu")
        self.assertEqual(gpu["state"], "ready")
        self.assertIsNotNone(gpu["wake_estimate_seconds"])

        # Activity of a sleeping backend moves its last activity alone (no transition follows).
        with open(self.access_log, "a") as log:
            log.write(access_line("cpu"))
        self.daemon.wait_until(lambda: self.daemon.backend("cpu").get("last_activity"), 10, "cpu's activity")
        self.assert_documents_follow("an access-log line of cpu")
        self.assertTrue(self.public_entry("cpu")["last_activity"])

        # And of an awake one, which moves its idle deadline too.
        before = self.daemon.backend("gpu").get("last_activity")
        time.sleep(0.05)
        with open(self.access_log, "a") as log:
            log.write(access_line("gpu"))
        self.daemon.wait_until(lambda: self.daemon.backend("gpu").get("last_activity") != before, 10,
                               "gpu's activity")
        self.assert_documents_follow("an access-log line of gpu")

        self.daemon.shelve("gpu")
        self.daemon.wait_for_state("asleep", 10, "gpu")
        self.assert_documents_follow("gpu's shelve")
        launcher = self.daemon.get("/", {"Accept": "text/html", **PUBLIC})[2].decode()
        for name in NAMES:
            self.assertIn(f"Test {name.upper()}", launcher)

    def test_a_hold_that_runs_out_shows_in_the_metrics(self):
        self.assertEqual(self.gate_figures()[0].get("expired"), 0)
        connection = http.client.HTTPConnection("127.0.0.1", self.daemon.port, timeout=30)
        self.addCleanup(connection.close)
        # As Caddy's forward_auth asks (README "The gate"): held while gated wakes, which takes
        # longer than the hold may last. (The wake's own observations move gated's revision too,
        # so this checks that the gate's figures agree rather than that their own mark is seen.)
        connection.request("GET", "/.unshelver/gate/gated", headers={
            "Host": "gated.localhost", "X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/",
            "X-Forwarded-For": "127.0.0.1", "Accept": "application/json"})
        response = connection.getresponse()
        response.read()
        self.assertEqual(response.status, 503)
        deadline = time.monotonic() + 10
        shown, fresh = self.gate_figures()
        while shown != fresh and time.monotonic() < deadline:
            time.sleep(0.1)
            shown, fresh = self.gate_figures()
        self.assertEqual(shown, fresh)
        self.assertEqual(fresh["expired"], 1)


if __name__ == "__main__":
    unittest.main()
