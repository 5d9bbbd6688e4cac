"""Issue 17: webhooks from a persistent outbox, through the real binary (README "Webhooks").

A receiver in this process (a small HTTP server on 127.0.0.1) accepts, answers 500, answers 404,
answers too late (after the delivery's timeout) and refuses connections in turn, while a simulated
backend wakes and sleeps; Unshelver is killed with SIGKILL while the receiver is down, and started
again. At the end every event of the local event log has reached the receiver exactly once, in
seq order, each with a valid HMAC-SHA256 signature over "<timestamp>.<body>"; a second receiver
that asked for one action got exactly those events; status and /metrics count the failures; the
secrets never appear in Unshelver's output. A stop (SIGTERM) while the receiver is answering a
delivery waits for that answer, so the restart does not send the event again.
"""
import hashlib
import hmac
import http.server
import json
import os
import secrets
import signal
import tempfile
import threading
import time
import unittest

from harness import Unshelver, free_port, sim_config
from prom_check import check

SECRET = "hook-secret-" + secrets.token_hex(16)
FILTERED_SECRET = "filtered-secret-" + secrets.token_hex(16)


class Receiver:
    """A webhook receiver whose answer the test chooses (mode): ok, 500, 404 or slow."""

    def __init__(self, secret, port=0):
        self.secret = secret.encode()
        self.mode = "ok"
        self.accepted = []      # the records answered 2xx, in arrival order
        self.attempts = {}      # mode -> attempts answered in that mode
        self.bad_signatures = 0
        self.lock = threading.Lock()
        self.port = port
        self.start()

    def start(self):
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                timestamp = self.headers.get("Unshelver-Timestamp", "")
                expected = "sha256=" + hmac.new(receiver.secret, timestamp.encode() + b"." + body,
                                                hashlib.sha256).hexdigest()
                fresh = timestamp.isdigit() and abs(time.time() - int(timestamp)) < 300
                valid = fresh and hmac.compare_digest(expected, self.headers.get("Unshelver-Signature", ""))
                record = json.loads(body)
                with receiver.lock:
                    mode = receiver.mode
                    receiver.attempts[mode] = receiver.attempts.get(mode, 0) + 1
                    if not valid:
                        receiver.bad_signatures += 1
                    if mode in ("ok", "late-ok"):
                        assert self.headers.get("Unshelver-Delivery") == record["id"]
                        assert self.headers.get("Unshelver-Event") == record["action"]
                        receiver.accepted.append(record)
                if mode == "slow":
                    time.sleep(1.5)  # past the delivery's timeout: Unshelver has given up
                if mode == "late-ok":
                    time.sleep(0.4)  # accepted, answered within the delivery's timeout, but not at once
                status = {"ok": 204, "500": 500, "404": 404, "slow": 200, "late-ok": 204}[mode]
                try:
                    self.send_response(status)
                    if mode == "500":
                        self.send_header("Retry-After", "0")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/hook?channel=test"

    def count(self, mode):
        with self.lock:
            return self.attempts.get(mode, 0)

    def seqs(self):
        with self.lock:
            return [record["seq"] for record in self.accepted]


def log_records(path):
    with open(path) as log:
        return [json.loads(line) for line in log if line.strip()]


class WebhookTest(unittest.TestCase):
    def setUp(self):
        self.receiver = Receiver(SECRET)
        self.filtered = Receiver(FILTERED_SECRET)
        self.port = free_port()
        # The first receiver's secret comes from the environment, the second's from the YAML.
        self.env = dict(os.environ, UNSHELVER_WEBHOOK_SECRET_HOOK=SECRET)
        self.daemon = None

    def tearDown(self):
        if self.daemon and self.daemon.process and self.daemon.process.poll() is None:
            self.daemon.stop()
        self.receiver.stop()
        self.filtered.stop()

    def start_daemon(self, workdir=None):
        workdir = workdir or tempfile.mkdtemp(prefix="unshelver-webhooks-")
        text = sim_config(os.path.join(workdir, "state"), self.port, idle_seconds=60, extra_top=f"""
webhooks:
  - name: hook
    url: "{self.receiver.url}"
    timeout_seconds: 0.5
    retry_max_seconds: 0.3
  - name: only-sleep
    url: "{self.filtered.url}"
    events: [shelve_complete]
    secret: "{FILTERED_SECRET}"
    retry_max_seconds: 0.3
""")
        self.daemon = Unshelver(config_text=text, workdir=workdir, port=self.port, env=self.env).start()
        return self.daemon

    def cycle(self, daemon):
        """One wake and one sleep of the simulated backend: five events."""
        self.assertIn(daemon.wake()[0], (200, 202))
        daemon.wait_for_state("ready", 10)
        self.assertIn(daemon.shelve()[0], (200, 202))
        daemon.wait_for_state("asleep", 10)

    def wait_delivered(self, daemon, receiver, expected, what):
        """Waits until `receiver` accepted exactly expected() (re-read: the log may still grow)."""
        daemon.wait_until(lambda: receiver.seqs() == expected() or len(receiver.seqs()) > len(expected()), 20, what)
        time.sleep(0.3)  # anything more (a repeat) would arrive now
        self.assertEqual(receiver.seqs(), expected(), what)

    def start_with_one_cycle_delivered(self):
        """A daemon whose first wake and sleep reached the receiver; its log and a function that
        reads the seqs of every event in it."""
        daemon = self.start_daemon()
        log = daemon.config_path.replace("config.yaml", "state/events.jsonl")
        self.cycle(daemon)

        def all_seqs():
            return [record["seq"] for record in log_records(log)]
        self.wait_delivered(daemon, self.receiver, all_seqs, "the first cycle's events")
        return daemon, log, all_seqs

    def test_every_event_arrives_once_in_order_signed_across_failures_and_a_kill(self):
        daemon, log, all_seqs = self.start_with_one_cycle_delivered()

        # 500 with Retry-After: 0, then 404 (rejected, counted apart), then too slow: nothing is
        # accepted meanwhile, and the events wait.
        for mode in ("500", "404", "slow"):
            self.receiver.mode = mode
            before = len(log_records(log))
            self.cycle(daemon)
            daemon.wait_until(lambda: len(log_records(log)) > before and self.receiver.count(mode) >= 2, 20,
                              f"attempts answered {mode}")
        status = daemon.status()["events"]["webhooks"]
        hook = next(entry for entry in status if entry["name"] == "hook")
        self.assertTrue(hook["failing"])
        self.assertGreaterEqual(hook["failed_attempts"], 3)
        self.assertGreaterEqual(hook["rejected_attempts"], 2)
        self.assertGreater(hook["pending"], 0)
        self.assertNotIn("channel=test", json.dumps(status), "the URL's query is not shown")

        # The receiver goes away (connections refused); more events; Unshelver is killed.
        self.receiver.mode = "ok"
        self.receiver.stop()
        self.assertIn(daemon.wake()[0], (200, 202))
        daemon.wait_for_state("ready", 10)
        time.sleep(0.5)
        daemon.process.send_signal(signal.SIGKILL)
        daemon.process.wait(timeout=10)
        daemon.log.close()

        # Back: the receiver on the same port, Unshelver on the same state.
        self.receiver.start()
        daemon = self.start_daemon(daemon.workdir)
        self.cycle(daemon)
        self.wait_delivered(daemon, self.receiver, all_seqs, "every event after the restart")
        self.assertEqual(self.receiver.bad_signatures, 0)

        # A clean restart re-sends nothing.
        daemon.stop()
        daemon = self.start_daemon(daemon.workdir)
        self.cycle(daemon)
        self.wait_delivered(daemon, self.receiver, all_seqs, "every event after a clean restart")
        accepted = self.receiver.seqs()
        self.assertEqual(len(accepted), len(set(accepted)), "no event twice")
        self.assertEqual(accepted, sorted(accepted), "in seq order")

        # The filtered receiver got exactly the shelve_complete events, once each.
        def wanted():
            return [record["seq"] for record in log_records(log) if record["action"] == "shelve_complete"]
        self.wait_delivered(daemon, self.filtered, wanted, "the filtered receiver's events")
        self.assertEqual(self.filtered.bad_signatures, 0)

        hook = next(entry for entry in daemon.status()["events"]["webhooks"] if entry["name"] == "hook")
        self.assertFalse(hook["failing"])
        self.assertEqual(hook["pending"], 0)
        code, _, metrics = daemon.request("GET", "/metrics", admin=True)
        self.assertEqual(code, 200)
        self.assertIn('unshelver_webhook_deliveries_total{receiver="hook"}', metrics.decode())
        self.assertIn('unshelver_webhook_attempt_errors_total{receiver="hook",kind="rejected"}', metrics.decode())
        self.assertEqual(check(metrics.decode()), [], "a valid Prometheus page with two receivers")
        daemon.stop()
        for secret in (SECRET, FILTERED_SECRET):
            self.assertNotIn(secret, daemon.output())

    def test_a_stop_while_a_delivery_is_answered_sends_it_once(self):
        # SIGTERM arrives after the receiver took the event and before its 2xx: the stop waits for
        # the answer (a short grace), so the cursor moves and the restart sends the event no more.
        daemon, _, all_seqs = self.start_with_one_cycle_delivered()
        self.receiver.mode = "late-ok"
        self.assertIn(daemon.wake()[0], (200, 202))
        daemon.wait_until(lambda: self.receiver.count("late-ok") >= 1, 10, "a delivery being answered")
        daemon.stop()
        self.receiver.mode = "ok"
        daemon = self.start_daemon(daemon.workdir)
        daemon.wait_for_state("ready", 10)
        self.wait_delivered(daemon, self.receiver, all_seqs, "every event after the restart")
        accepted = self.receiver.seqs()
        self.assertEqual(len(accepted), len(set(accepted)), "no event twice")
        self.assertEqual(accepted, sorted(accepted), "in seq order")
        daemon.stop()

    def test_events_recorded_before_the_first_delivery_survive_a_kill(self):
        # The receiver is down from the start: nothing is ever accepted before the kill.
        self.receiver.stop()
        daemon = self.start_daemon()
        log = daemon.config_path.replace("config.yaml", "state/events.jsonl")
        self.cycle(daemon)
        daemon.wait_until(lambda: daemon.status()["events"]["webhooks"][0]["failed_attempts"] >= 2, 10,
                          "attempts refused")
        daemon.process.send_signal(signal.SIGKILL)
        daemon.process.wait(timeout=10)
        daemon.log.close()
        self.receiver.start()
        daemon = self.start_daemon(daemon.workdir)

        def all_seqs():
            return [record["seq"] for record in log_records(log)]
        self.wait_delivered(daemon, self.receiver, all_seqs, "the events recorded before the kill")
        self.assertEqual(self.receiver.seqs()[0], 1, "from the first event of the log")
        self.assertEqual(self.receiver.bad_signatures, 0)


if __name__ == "__main__":
    unittest.main()
