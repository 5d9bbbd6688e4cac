"""Cloud text stays with admins (issue 15 §10), and the status counters agree with /metrics (§12).

A fault message with a traceback, internal host names, ESC sequences and a newline that would
forge a log line reaches a failed wake twice: from the simulated cloud (its failure_message) and
from the fake Nova (a server in ERROR with that fault). The public /api/status, the launcher and
the gate's refusal show only the classified reason; /control and the admin's /api/status show the
full text; the daemon's log and `unshelver events` show it escaped, on one line.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))

from fake_openstack import FakeOpenStack  # noqa: E402
from harness import ADMIN, BINARY, Unshelver, free_port, sim_config  # noqa: E402

HOST = "compute-17.int.example.net"
FORGED = "2026-01-01T00:00:00.000000Z info  [gpu] FORGED LINE"
# As YAML double-quoted text: \n and \e are YAML escapes, so the daemon gets the raw bytes.
FAULT_YAML = (r'"Traceback (most recent call last):\n  File \"/usr/lib/python3/dist-packages/nova/compute/'
              r'manager.py\", line 2442, in _build_and_run_instance\nlibvirt.libvirtError: qemu closed the '
              r'monitor on ' + HOST + r'\n' + FORGED + r'\e[2J\e[31mred\e[0m"')
FAULT = ("Traceback (most recent call last):\n  File \"/usr/lib/python3/dist-packages/nova/compute/manager.py\", "
         "line 2442, in _build_and_run_instance\nlibvirt.libvirtError: qemu closed the monitor on " + HOST +
         "\n" + FORGED + "\x1b[2J\x1b[31mred\x1b[0m")
SUMMARY = "The cloud reported an error for the machine."
PUBLIC = {"X-Forwarded-For": "198.51.100.60"}  # a visitor behind Caddy


class PublicTextChecks:
    """The checks both clouds share; `self.daemon` is in error with FAULT."""

    def assert_public_views_hide_the_fault(self):
        code, _, body = self.daemon.get("/api/status", PUBLIC)
        self.assertEqual(code, 200)
        text = body.decode()
        for hidden in (HOST, "Traceback", "FORGED", "\\u001b"):
            self.assertNotIn(hidden, text)
        backend = json.loads(text)["backends"][0]
        self.assertEqual(backend["state"], "error")
        self.assertEqual(backend["error"], SUMMARY)
        self.assertEqual(backend["error_reason"], "cloud_fault")

        code, _, page = self.daemon.get("/", {"Accept": "text/html", **PUBLIC})
        self.assertEqual(code, 200)
        page = page.decode()
        self.assertIn(SUMMARY, page)
        for hidden in (HOST, "Traceback", "FORGED", "\x1b"):
            self.assertNotIn(hidden, page)

    def assert_admins_see_the_fault(self):
        code, _, body = self.daemon.get("/api/status", {**ADMIN, **PUBLIC})
        self.assertEqual(code, 200)
        backend = json.loads(body)["backends"][0]
        self.assertIn(HOST, backend["error"])
        self.assertIn("Traceback", backend["error"])
        self.assertEqual(backend["error_summary"], SUMMARY)
        code, _, page = self.daemon.get("/control", {**ADMIN, "Accept": "text/html", **PUBLIC})
        self.assertEqual(code, 200)
        self.assertIn(HOST, page.decode())

    def assert_log_and_events_escape_the_fault(self):
        time.sleep(0.3)  # let the log line and the event reach their files
        log = self.daemon.output()
        self.assertIn(HOST, log)
        self.assertNotIn("\x1b", log)
        self.assertNotIn("\n" + FORGED, log)
        self.assertIn("\\x1b[2J", log)
        self.assertIn("\\n" + FORGED, log)

        result = subprocess.run([BINARY, "events", "--url", self.daemon.url(""), "--limit", "50"],
                                capture_output=True, timeout=30)
        self.assertEqual(result.returncode, 0, result.stderr)
        printed = result.stdout.decode(errors="replace")
        self.assertIn(HOST, printed)  # admins' tool: the full text, escaped
        self.assertNotIn("\x1b", printed)
        self.assertFalse(any(line.startswith(FORGED) for line in printed.splitlines()), printed)
        self.assertIn("\\n" + FORGED, printed)

        result = subprocess.run([BINARY, "status", "--url", self.daemon.url("")], capture_output=True, timeout=30)
        self.assertEqual(result.returncode, 0, result.stderr)
        printed = result.stdout.decode(errors="replace")
        self.assertIn(HOST, printed)
        self.assertNotIn("\x1b", printed)
        self.assertFalse(any(line.startswith(FORGED) for line in printed.splitlines()), printed)


class SimulatedCloudFaultTest(PublicTextChecks, unittest.TestCase):
    def test_fault_text_is_for_admins_and_escaped_everywhere(self):
        self.daemon = Unshelver()
        with open(self.daemon.config_path) as config_file:
            text = config_file.read()
        text = text.replace("      sleep_seconds: 0.3",
                            "      sleep_seconds: 0.3\n      fail_wakes: 1\n      failure_message: " + FAULT_YAML)
        with open(self.daemon.config_path, "w") as config_file:
            config_file.write(text)
        self.daemon.start()
        self.addCleanup(self.daemon.stop)
        self.daemon.wait_for_state("asleep", 5)
        self.daemon.wake()
        self.daemon.wait_for_state("error", 5)
        self.assertEqual(self.daemon.backend()["error"], FAULT)
        self.assert_public_views_hide_the_fault()
        self.assert_admins_see_the_fault()
        self.assert_log_and_events_escape_the_fault()


class NovaFaultTest(PublicTextChecks, unittest.TestCase):
    def test_nova_fault_text_is_for_admins_and_escaped_everywhere(self):
        workdir = tempfile.mkdtemp(prefix="unshelver-public-text-")
        fake = FakeOpenStack({"timings": {"default": 0.05}})
        fake.start()
        self.addCleanup(fake.stop)
        fake.add_server("gpu-box", vm_state="shelved_offloaded",
                        addresses={"private": [{"addr": "127.0.0.1", "version": 4, "OS-EXT-IPS:type": "fixed"}]},
                        serve_http_port=free_port())
        port = free_port()
        text = f"""
app:
  title: Public text test
  poll_interval_seconds: 0.1
listen: 127.0.0.1:{port}
state_dir: {workdir}/state
log_level: debug
openstack:
  auth_url: {fake.auth_url}
  username: demo
  password: demo-password-123
  project_name: demo
  user_domain_name: Default
  project_domain_name: Default
  region_name: RegionOne
  api_timeout_seconds: 1
buttons:
  - id: gpu
    label: GPU
    instance_name: gpu-box
"""
        self.daemon = Unshelver(text, workdir=workdir, port=port)
        self.daemon.start()
        self.addCleanup(self.daemon.stop)
        self.daemon.wait_for_state("asleep", 10)
        fake.set_unshelve_fault("spawn_error", times=1, at="spawning", message=FAULT)
        self.daemon.wake()
        self.daemon.wait_for_state("error", 10)
        self.assertIn(FAULT, self.daemon.backend()["error"])
        self.assert_public_views_hide_the_fault()
        self.assert_admins_see_the_fault()
        self.assert_log_and_events_escape_the_fault()


class StatusCountersTest(unittest.TestCase):
    """§12: the full /api/status is not a cached copy that lags /metrics."""

    def test_activity_counters_agree_with_metrics(self):
        workdir = tempfile.mkdtemp(prefix="unshelver-counters-")
        access_log = os.path.join(workdir, "access.log")
        open(access_log, "w").close()
        port = free_port()
        extra = f"activity_log_path: {access_log}\nactivity:\n  stat_interval_seconds: 0.2\n"
        self.daemon = Unshelver(sim_config(os.path.join(workdir, "state"), port, extra_top=extra),
                                workdir=workdir, port=port)
        self.daemon.start()
        self.addCleanup(self.daemon.stop)
        self.daemon.wait_for_state("asleep", 5)
        self.daemon.status()  # what a cache would keep
        lines = 25
        with open(access_log, "a") as log:
            for i in range(lines):
                log.write(f"not a Caddy log line {i}\n")

        def metric_count():
            _, _, body = self.daemon.get("/metrics", ADMIN)
            total = 0
            for match in re.finditer(r'^unshelver_log_lines_total\{[^}]*\} (\d+)', body.decode(), re.M):
                total += int(match.group(1))
            return total

        self.daemon.wait_until(lambda: metric_count() >= lines, 10, f"{lines} lines in /metrics")
        activity = self.daemon.status()["activity"]
        self.assertEqual(sum(activity["by_outcome"].values()), metric_count())
        self.assertEqual(activity["lines"], lines)


if __name__ == "__main__":
    unittest.main()
