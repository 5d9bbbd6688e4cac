"""The savings report (issue 17): `unshelver report` over a scripted event log (rotated file, the
Python unshelver's lines, a restart's gap, a failed wake) gives the figures of a hand computation,
as text, JSON and a CSV table; and the daemon, started on the same log, shows them in /api/status,
/metrics and on the control page. Seconds: no wake is waited for."""
import csv
import io
import json
import os
import re
import subprocess
import tempfile
import unittest

from harness import BINARY, Unshelver, free_port, sim_config

# The instance the Python unshelver's lines name; the config maps it to the backend `gpu`.
INSTANCE = "gpu-chat-instance"

PRICE = """    instance_name: gpu-chat-instance
    price:
      running_per_hour: 2.80
      asleep_per_hour: 0.10
      currency: EUR"""


def python_line(ts, action):
    return json.dumps({"timestamp": ts, "action": action, "actor": "alice@example.org", "instance_name": INSTANCE})


def record(seq, ts, action, frm, to):
    return json.dumps({"seq": seq, "id": f"test-{seq:06d}", "ts": ts, "backend": "gpu", "instance_name": INSTANCE,
                       "action": action, "actor": "unshelver", "from": frm, "to": to, "detail": ""})


# Rotated first (oldest), then the current file.
ROTATED = [
    python_line("2026-11-30T20:00:00+00:00", "unshelve_requested"),
    python_line("2026-11-30T20:10:00+00:00", "unshelve_complete"),
    python_line("2026-11-30T21:00:00+00:00", "shelve_complete"),
    record(1, "2026-11-30T22:00:00.000000Z", "observed_asleep", "unknown", "asleep"),
    record(2, "2026-11-30T23:00:00.000000Z", "unshelve_requested", "asleep", "waking"),
    record(3, "2026-11-30T23:05:00.000000Z", "cloud_running", "waking", "booting"),
    record(4, "2026-11-30T23:10:00.000000Z", "unshelve_complete", "booting", "ready"),
]
CURRENT = [
    record(5, "2026-12-01T01:00:00.000000Z", "shelve_requested", "ready", "sleeping"),
    record(6, "2026-12-01T01:06:00.000000Z", "shelve_complete", "sleeping", "asleep"),
    # The daemon was down until 05:00: the machine stayed shelved.
    record(7, "2026-12-01T05:00:00.000000Z", "observed_asleep", "unknown", "asleep"),
    record(8, "2026-12-01T08:00:00.000000Z", "unshelve_requested", "asleep", "waking"),
    record(9, "2026-12-01T08:30:00.000000Z", "workflow_failed", "waking", "error"),
    record(10, "2026-12-01T09:00:00.000000Z", "unshelve_requested", "error", "waking"),
    record(11, "2026-12-01T09:10:00.000000Z", "unshelve_complete", "booting", "ready"),
    record(12, "2026-12-01T12:00:00.000000Z", "shelve_complete", "sleeping", "asleep"),
]

# The hand computation over [2026-11-30T20:00Z, 2026-12-01T14:00Z) (18 h):
#   awake   20:00-21:00 (Python lines) 1 h + 23:00-01:06 2.1 h + 08:00-08:30 0.5 h + 09:00-12:00 3 h = 6.6 h
#   asleep  21:00-23:00 2 h + 01:06-08:00 6.9 h (the restart's gap included) + 12:00-14:00 2 h = 10.9 h
#   unknown 08:30-09:00 (error) = 0.5 h                                     6.6 + 10.9 + 0.5 = 18 h
#   cost      = 6.6 × 2.80 + 10.9 × 0.10 = 18.48 + 1.09 = 19.57 EUR
#   always on = (6.6 + 10.9) × 2.80 = 49.00 EUR
#   savings   = 49.00 - 19.57 = 29.43 EUR (= 10.9 × 2.70)
SINCE = "2026-11-30T20:00:00Z"
UNTIL = "2026-12-01T14:00:00Z"
EXPECTED = {"awake_seconds": 6.6 * 3600, "asleep_seconds": 10.9 * 3600, "unknown_seconds": 0.5 * 3600,
            "cost": 19.57, "always_on_cost": 49.00, "savings": 29.43, "projected_savings": 0.0}


class ReportTest(unittest.TestCase):
    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="unshelver-report-")
        self.state_dir = os.path.join(self.workdir, "state")
        os.makedirs(self.state_dir)
        log = os.path.join(self.state_dir, "events.jsonl")
        with open(log + ".1", "w") as rotated:
            rotated.write("\n".join(ROTATED) + "\n")
        with open(log, "w") as current:
            current.write("\n".join(CURRENT) + "\n")
        self.config_path = os.path.join(self.workdir, "config.yaml")
        self.port = free_port()
        with open(self.config_path, "w") as config_file:
            config_file.write(sim_config(self.state_dir, self.port, idle_seconds=60, extra_backend=PRICE))

    def report(self, *args, config=None):
        done = subprocess.run([BINARY, "report", "--config", config or self.config_path, *args],
                              capture_output=True, timeout=20)
        # Decoded without translating line ends: the CSV's must be CRLF.
        done.stdout, done.stderr = done.stdout.decode(), done.stderr.decode()
        return done

    def test_the_figures_match_the_hand_computation_in_every_format(self):
        done = self.report("--since", SINCE, "--until", UNTIL, "--json")
        self.assertEqual(done.returncode, 0, done.stderr)
        document = json.loads(done.stdout)
        self.assertEqual(document["since"], "2026-11-30T20:00:00.000000Z")
        [gpu] = document["backends"]
        for key, value in EXPECTED.items():
            self.assertAlmostEqual(gpu[key], value, places=6, msg=key)
        self.assertEqual(gpu["currency"], "EUR")

        done = self.report("--since", SINCE, "--until", UNTIL, "--csv", "--backend", "gpu")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("\r\n", done.stdout)  # RFC 4180 line ends
        rows = list(csv.DictReader(io.StringIO(done.stdout, newline="")))
        self.assertEqual(len(rows), 1)
        row = rows[0]
        self.assertEqual(row["backend"], "gpu")
        self.assertAlmostEqual(float(row["awake_hours"]), 6.6, places=4)
        self.assertAlmostEqual(float(row["asleep_hours"]), 10.9, places=4)
        self.assertAlmostEqual(float(row["unknown_hours"]), 0.5, places=4)
        self.assertEqual(row["currency"], "EUR")
        self.assertEqual((row["cost"], row["always_on_cost"], row["savings"]), ("19.57", "49.00", "29.43"))

        # Per day, for charts: 11-30 (from 00:00) awake 20:00-21:00 and 23:00-24:00, asleep
        # 21:00-23:00, unknown before 20:00; 12-01 until 14:00 as below.
        done = self.report("--since", "2026-11-30", "--until", UNTIL, "--csv", "--daily")
        self.assertEqual(done.returncode, 0, done.stderr)
        rows = list(csv.DictReader(io.StringIO(done.stdout, newline="")))
        self.assertEqual([(row["since"][:10], row["until"]) for row in rows],
                         [("2026-11-30", "2026-12-01T00:00:00.000000Z"), ("2026-12-01", "2026-12-01T14:00:00.000000Z")])
        self.assertEqual([(row["awake_hours"], row["asleep_hours"], row["unknown_hours"]) for row in rows],
                         [("2.0000", "2.0000", "20.0000"), ("4.6000", "8.9000", "0.5000")])

        done = self.report("--since", SINCE, "--until", UNTIL)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertRegex(done.stdout, r"gpu\s+6\.60\s+10\.90\s+0\.50\s+19\.57\s+49\.00\s+29\.43\s+EUR")

        # A day: 2026-12-01 until 14:00 has the awake 00:00-01:06, 08:00-08:30 and 09:00-12:00.
        done = self.report("--since", "2026-12-01", "--until", UNTIL, "--json")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertAlmostEqual(json.loads(done.stdout)["backends"][0]["awake_seconds"], 4.6 * 3600, places=6)
        # Before the first line nothing is known: counted as unknown, never as asleep.
        done = self.report("--since", "2026-11-30", "--until", "2026-11-30T20:00:00Z", "--json")
        [early] = json.loads(done.stdout)["backends"]
        self.assertEqual((early["awake_seconds"], early["asleep_seconds"], early["unknown_seconds"]), (0, 0, 20 * 3600))

    def test_mistakes_get_a_clear_message_and_exit_code(self):
        for args, code, words in [
            (["--since", "yesterday"], 2, "not a date"),
            (["--since", "2026-02-30"], 2, "not a date"),
            (["--backend", "nope"], 2, "no backend nope"),
            (["--since", UNTIL, "--until", SINCE], 2, "must be after"),
            (["--json", "--csv"], 2, "do not go together"),
            (["--frobnicate"], 2, "unknown argument"),
        ]:
            done = self.report(*args)
            self.assertEqual(done.returncode, code, (args, done.stderr))
            self.assertIn(words, done.stderr, args)
        os.remove(os.path.join(self.state_dir, "events.jsonl"))
        done = self.report()
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertIn("cannot read", done.stderr)
        # A price with a mistake in it is named with its file and line.
        bad = os.path.join(self.workdir, "bad.yaml")
        with open(bad, "w") as config_file:
            config_file.write(sim_config(self.state_dir, self.port, extra_backend=PRICE.replace("0.10", "3.5")
                                         .replace("EUR", "euro")))
        done = self.report(config=bad)
        self.assertEqual(done.returncode, 2)
        self.assertRegex(done.stderr, r"bad\.yaml:\d+:\d+.*currency.*ISO 4217")
        self.assertRegex(done.stderr, r"bad\.yaml:\d+:\d+.*asleep_per_hour.*not be more than running_per_hour")

    def test_the_daemon_shows_the_figures_in_status_metrics_and_the_control_page(self):
        with open(self.config_path) as config_file:
            daemon = Unshelver(config_text=config_file.read(), workdir=self.workdir, port=self.port)
        daemon.start()
        try:
            daemon.wait_for_state("asleep", 5)
            savings = daemon.backend()["savings"]
            # December until now: awake 00:00-01:06 1.1 h + 0.5 h + 3 h (asleep since, until now).
            self.assertAlmostEqual(savings["this_month"]["awake_seconds"], 4.6 * 3600, places=6)
            # November: the Python lines' hour and 23:00-24:00; unknown until its first line.
            self.assertAlmostEqual(savings["last_month"]["awake_seconds"], 2 * 3600, places=6)
            self.assertAlmostEqual(savings["last_month"]["unknown_seconds"], (29 * 24 + 20) * 3600, places=6)
            self.assertEqual(savings["last_month"]["currency"], "EUR")
            self.assertEqual(len(savings["days"]), 30)
            # The public view carries none of it.
            code, _, body = daemon.get("/api/status", {"X-Forwarded-For": "203.0.113.9"})
            self.assertNotIn("savings", json.loads(body)["backends"][0])

            code, _, body = daemon.get("/metrics")
            self.assertEqual(code, 200)
            text = body.decode()
            self.assertIn("# TYPE unshelver_backend_awake_seconds_total counter", text)
            # Everything since the first line: 6.6 h, as the report's.
            awake = re.search(r'^unshelver_backend_awake_seconds_total\{backend="gpu"\} (\S+)$', text, re.M)
            self.assertIsNotNone(awake, text)
            self.assertAlmostEqual(float(awake.group(1)), 6.6 * 3600, places=3)
            self.assertRegex(text, r'(?m)^unshelver_backend_asleep_seconds_total\{backend="gpu"\} \d')

            code, _, page = daemon.request("GET", "/control", {"Accept": "text/html"}, admin=True)
            self.assertEqual(code, 200)
            page = page.decode()
            self.assertIn('data-role="savings"', page)
            self.assertIn("This month", page)
            self.assertRegex(page, r'data-role="savings-last-month">awake 2\.0 h, asleep 2\.0 h, unknown 716\.0 h; '
                                   r'cost 5\.80 EUR, saved 5\.40 EUR<')
            self.assertEqual(page.count('class="bill-awake"'), 30)
            self.assertNotIn("style=", page[page.index('data-role="savings"'):page.index("</svg>")])

            # Records written from now on count at once (the ledger is fed each one): a wake on the
            # sim makes the awake time grow past the log's.
            code, _, body = daemon.wake()
            self.assertEqual(code, 202, body)
            daemon.wait_for_state("ready", 10)
            grown = daemon.wait_until(
                lambda: (lambda s: s if s["this_month"]["awake_seconds"] > 4.6 * 3600 + 0.5 else None)(
                    daemon.backend()["savings"]), 5, "the wake's seconds in this month's awake time")
            self.assertGreater(grown["days"][-1]["awake_seconds"], 0)
        finally:
            daemon.stop()


if __name__ == "__main__":
    unittest.main()
