"""Activity through the real Caddy from Debian: the access log is followed across rotation, long
streams hold the idle clock, and ignored user agents neither wake nor keep a backend awake."""
import http.client
import os
import tempfile
import threading
import time
import unittest

from caddy_harness import CADDY, Caddy, FakeBackend
from harness import Unshelver, require_peer


def config(workdir, caddy, backend, idle_seconds, extra=""):
    return f"""
app:
  title: Activity test
  poll_interval_seconds: 0.1
listen: 127.0.0.1:{{port}}
state_dir: {workdir}/state
log_level: debug
activity_log_path: {caddy.access_log}
activity:
  stat_interval_seconds: 0.5
{extra}
buttons:
  - id: gpu
    label: Test GPU
    provider: sim
    host: chat.localhost
    upstream: 127.0.0.1:{backend.port}
    upstream_label: gpu
    idle_timeout_seconds: {idle_seconds}
    health:
      path: /health
      interval_seconds: 0.2
      timeout_seconds: 1
    inflight:
      min_busy_seconds: 1
      sample_interval_seconds: 0.2
    sim:
      start_awake: true
      wake_seconds: 0.3
      boot_seconds: 0
      sleep_seconds: 0.3
"""


@require_peer(CADDY, "caddy")
class ActivityThroughCaddyTest(unittest.TestCase):
    def start(self, idle_seconds, extra=""):
        self.workdir = tempfile.mkdtemp(prefix="unshelver-activity-")
        self.backend = FakeBackend()
        self.addCleanup(self.backend.stop)
        # Caddy needs Unshelver's port before Unshelver starts: reserve it through the harness.
        self.daemon = Unshelver(workdir=self.workdir, config_text="")
        self.caddy = Caddy(self.workdir, self.daemon.port, self.backend.port)
        self.addCleanup(self.caddy.stop)
        with open(self.daemon.config_path, "w") as config_file:
            config_file.write(config(self.workdir, self.caddy, self.backend, idle_seconds, extra)
                              .replace("{port}", str(self.daemon.port)))
        self.daemon.start()
        self.addCleanup(self.daemon.stop)
        self.daemon.wait_for_state("ready", 10)

    def connection(self):
        return http.client.HTTPConnection("127.0.0.1", self.caddy.port, timeout=30)

    def get(self, connection, path, user_agent="integration-test"):
        connection.request("GET", path, headers={"Host": f"chat.localhost:{self.caddy.port}",
                                                 "User-Agent": user_agent})
        response = connection.getresponse()
        body = response.read()
        return response.status, response.getheader("X-Served-By"), body

    def wait_for(self, predicate, timeout, what):
        return self.daemon.wait_until(predicate, timeout, what)

    def test_every_request_counted_once_across_20_rotations(self):
        self.start(idle_seconds=120)
        # ~4.6 KB per log line: with roll_size 1MiB, about 230 lines per rotation.
        padding = "x" * 4000
        per_thread = 3000
        sent = [0, 0]

        def send(slot):
            connection = self.connection()
            for i in range(per_thread):
                status, served_by, _ = self.get(connection, f"/load/{slot}/{i}?pad={padding}")
                self.assertEqual((status, served_by), (200, "gpu"))
                sent[slot] += 1
            connection.close()

        threads = [threading.Thread(target=send, args=(slot,)) for slot in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        total = sum(sent)
        self.assertEqual(total, 2 * per_thread)

        def counted():
            backend = self.daemon.backend()
            return backend["activity_lines"] >= total and backend
        backend = self.wait_for(counted, 20, f"{total} activity lines")
        time.sleep(1)  # anything counted twice would show up now
        backend = self.daemon.backend()
        activity = self.daemon.status()["activity"]
        print(f"\nsent {total} requests; counted {backend['activity_lines']}; "
              f"rotations {activity['rotations']}; log lines {activity['lines']}")
        self.assertEqual(backend["activity_lines"], total)
        self.assertGreaterEqual(activity["rotations"], 20)
        self.assertEqual(activity.get("overlong_lines", 0), 0)

    def test_stream_longer_than_idle_timeout_keeps_the_backend_awake(self):
        idle = 3
        self.start(idle_seconds=idle)
        stream_seconds = 2 * idle + 1
        ended = {}

        def stream():
            connection = self.connection()
            status, served_by, body = self.get(connection, f"/stream?seconds={stream_seconds}&interval=0.2")
            ended["at"] = time.time()
            ended["status"] = (status, served_by, body.count(b"data:"))
            connection.close()

        thread = threading.Thread(target=stream)
        thread.start()
        # While it streams, the backend stays ready although the idle timeout passes twice.
        deadline = time.monotonic() + stream_seconds - 0.5
        while time.monotonic() < deadline:
            self.assertEqual(self.daemon.backend()["state"], "ready")
            time.sleep(0.1)
        self.assertGreaterEqual(self.daemon.backend()["requests_in_flight"], 1)
        thread.join()
        self.assertEqual(ended["status"][:2], (200, "gpu"))
        self.assertGreater(ended["status"][2], 10)

        # After it ends, the backend sleeps one idle timeout later (± 1 s).
        self.wait_for(lambda: self.daemon.backend()["state"] != "ready", idle + 3, "the idle shutdown")
        slept_after = time.time() - ended["at"]
        print(f"\nstream of {stream_seconds} s ended; sleep requested {slept_after:.2f} s later (idle {idle} s)")
        self.assertAlmostEqual(slept_after, idle, delta=1.0)
        self.assertEqual(self.daemon.backend()["desired_by"], "idle-monitor")

    def test_connections_are_sampled_only_while_the_backend_may_serve(self):
        # Sampling walks the kernel's whole socket table: a sleeping backend must cost nothing.
        self.start(idle_seconds=120)
        activity = self.daemon.status()["activity"]
        self.assertTrue(activity["inflight_detection"])
        self.assertTrue(activity["inflight_sampling"])
        self.assertEqual(activity["inflight_upstreams"], 1)
        self.daemon.shelve()
        self.daemon.wait_for_state("asleep", 10)
        activity = self.daemon.status()["activity"]
        self.assertFalse(activity["inflight_sampling"])
        self.assertEqual(activity["inflight_upstreams"], 0)
        self.assertEqual(self.daemon.backend()["requests_in_flight"], 0)
        self.daemon.wake()
        self.daemon.wait_for_state("ready", 10)
        activity = self.daemon.status()["activity"]
        self.assertTrue(activity["inflight_sampling"])
        self.assertEqual(activity["inflight_upstreams"], 1)

    def test_ignored_user_agents_neither_keep_awake_nor_count(self):
        idle = 3
        self.start(idle_seconds=idle)
        ready_at = time.time()
        connection = self.connection()
        # An uptime monitor polls every 0.3 s for longer than the idle timeout.
        while time.time() - ready_at < idle + 2:
            status, served_by, _ = self.get(connection, "/", user_agent="Uptime-Kuma/1.23.0")
            if self.daemon.backend()["state"] != "ready":
                break
            self.assertEqual(served_by, "gpu")
            time.sleep(0.3)
        connection.close()
        self.wait_for(lambda: self.daemon.backend()["state"] in ("sleeping", "asleep"), idle + 3, "the idle shutdown")
        backend = self.daemon.backend()
        self.assertEqual(backend["activity_lines"], 0)
        self.assertGreater(backend["ignored_lines"], 0)
        self.assertEqual(backend["desired_by"], "idle-monitor")
        # Still asleep after more monitor traffic (it reaches the fallback now, not the backend).
        self.daemon.wait_for_state("asleep", 5)
        connection = self.connection()
        for _ in range(5):
            self.get(connection, "/", user_agent="Uptime-Kuma/1.23.0")
        connection.close()
        time.sleep(1)
        self.assertEqual(self.daemon.backend()["state"], "asleep")


if __name__ == "__main__":
    unittest.main()
