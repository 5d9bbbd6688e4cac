"""The wake history (issue 16): after wakes on the simulated cloud, every status view carries the
backend's wake estimate (the median of its last wakes), the admin's also the last 7 days' periods
and wakes; and a restarted daemon reads them back from the event log."""
import json
import os
import unittest

from harness import Unshelver, sim_config

# A request that is not local (it names a client behind a proxy) gets the public status.
PUBLIC = {"X-Forwarded-For": "203.0.113.9"}


class WakeHistoryTest(unittest.TestCase):
    def make_daemon(self, workdir=None):
        state_dir = os.path.join(workdir, "state") if workdir else None
        daemon = Unshelver(workdir=workdir)
        text = sim_config(state_dir or os.path.join(daemon.workdir, "state"), "{port}", idle_seconds=60,
                          extra_backend="    public_base_url: http://chat.localhost:{port}/")
        with open(daemon.config_path, "w") as config_file:
            config_file.write(text.replace("{port}", str(daemon.port)))
        return daemon

    def public_backend(self, daemon):
        code, _, body = daemon.get("/api/status", PUBLIC)
        self.assertEqual(code, 200)
        return json.loads(body)["backends"][0]

    def waiting_status(self, daemon):
        code, _, body = daemon.get("/.well-known/unshelver/status", {"Host": f"chat.localhost:{daemon.port}", **PUBLIC})
        self.assertEqual(code, 200, body)
        return json.loads(body)

    def cycle(self, daemon):
        daemon.wait_for_state("asleep", 5)
        code, _, body = daemon.wake()
        self.assertEqual(code, 202, body)
        daemon.wait_for_state("ready", 10)
        code, _, body = daemon.shelve()
        self.assertEqual(code, 202, body)
        daemon.wait_for_state("asleep", 10)

    def test_the_estimate_appears_after_wakes_and_survives_a_restart(self):
        daemon = self.make_daemon().start()
        try:
            daemon.wait_for_state("asleep", 5)
            # Before the first completed wake: null, in every view.
            self.assertIsNone(daemon.backend()["wake_estimate_seconds"])
            self.assertIn("wake_estimate_seconds", self.public_backend(daemon))
            self.assertIsNone(self.public_backend(daemon)["wake_estimate_seconds"])
            self.assertIsNone(self.waiting_status(daemon)["wake_estimate_seconds"])

            self.cycle(daemon)
            self.cycle(daemon)
            # The record of the second completion is written (fsync'd) a moment after the state.
            full = daemon.wait_until(lambda: (lambda b: b if len(b["history"]["wakes"]) == 2 else None)(daemon.backend()),
                                     5, "two wakes in the history")
            estimate = full["wake_estimate_seconds"]
            # The sim takes 0.4 s to wake and 0.3 s to boot, then two health probes.
            self.assertIsInstance(estimate, (int, float))
            self.assertGreaterEqual(estimate, 0.6)
            self.assertLess(estimate, 10)
            wakes = full["history"]["wakes"]
            self.assertEqual(sorted(wake["seconds"] for wake in wakes)[0] <= estimate, True)
            states = [period["state"] for period in full["history"]["periods"]]
            self.assertEqual(states, ["asleep", "awake", "asleep", "awake", "asleep"])
            for period in full["history"]["periods"]:
                self.assertLess(period["from"], period["to"])

            # The public views carry the estimate, never the history.
            public = self.public_backend(daemon)
            self.assertEqual(public["wake_estimate_seconds"], estimate)
            self.assertNotIn("history", public)
            waiting = self.waiting_status(daemon)
            self.assertEqual(waiting["wake_estimate_seconds"], estimate)
            self.assertNotIn("history", waiting)
            # The control page without JavaScript: a summary line.
            code, _, page = daemon.request("GET", "/control", {"Accept": "text/html"}, admin=True)
            self.assertEqual(code, 200)
            self.assertIn(b"2 wakes, a wake takes about", page)
            self.assertIn(b'data-timeline="gpu"', page)
        finally:
            daemon.stop()

        again = self.make_daemon(daemon.workdir).start()
        try:
            again.wait_for_state("asleep", 5)
            backend = again.backend()
            self.assertEqual(backend["wake_estimate_seconds"], estimate)
            self.assertEqual(backend["history"]["wakes"], wakes)
            self.assertEqual(self.public_backend(again)["wake_estimate_seconds"], estimate)
        finally:
            again.stop()


if __name__ == "__main__":
    unittest.main()
