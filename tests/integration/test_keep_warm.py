"""Keep-warm windows and the admin pin through the real binary (README "Keep-warm windows and
pre-warming"): a window open now wakes the simulated backend and keeps it awake past its idle
timeout, and /api/status and the control page say why; a pin does the same until it is lifted;
an unknown time zone is a configuration error naming file, line and key."""
import datetime
import json
import os
import subprocess
import time
import unittest

from harness import BINARY, Unshelver, sim_config


def window_around_now(minutes=60):
    """A daily window from `minutes` ago to `minutes` ahead, UTC (it may cross midnight)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    start = (now - datetime.timedelta(minutes=minutes)).strftime("%H:%M")
    end = (now + datetime.timedelta(minutes=minutes)).strftime("%H:%M")
    return f"daily {start}-{end}"


def config_with(extra_backend):
    def make(workdir):
        return sim_config(os.path.join(workdir, "state"), "{port}", idle_seconds=1, extra_backend=extra_backend)
    return make


class KeepWarmTest(unittest.TestCase):
    def start(self, extra_backend):
        daemon = Unshelver(config_text="placeholder")
        with open(daemon.config_path, "w") as config_file:
            config_file.write(config_with(extra_backend)(daemon.workdir).replace("{port}", str(daemon.port)))
        self.daemon = daemon.start()
        self.addCleanup(self.daemon.stop)
        return self.daemon

    def control_page(self):
        code, _, body = self.daemon.request("GET", "/control", {"Accept": "text/html"}, admin=True)
        self.assertEqual(code, 200)
        return body.decode()

    def test_an_open_window_wakes_the_backend_and_holds_it_past_its_idle_timeout(self):
        daemon = self.start(f'    keep_warm: ["{window_around_now()}"]\n')
        daemon.wait_for_state("ready", 10)
        backend = daemon.backend()
        self.assertEqual(backend["desired_by"], "keep-warm")
        # Three idle timeouts with no use: still awake, because of the window.
        time.sleep(3)
        backend = daemon.backend()
        self.assertEqual(backend["state"], "ready", daemon.output()[-3000:])
        self.assertEqual(backend["awake_reason"], "window")
        self.assertIsNotNone(backend["held_until"])
        self.assertIsNotNone(backend["keep_warm"]["window_until"])
        self.assertIsNotNone(backend["idle_deadline"])
        page = self.control_page()
        self.assertIn("keep-warm window; held awake until", page)
        self.assertIn("window open until", page)
        self.assertIn("[gpu] held awake (window) by keep-warm", daemon.output())

    def test_a_window_hold_ends_when_the_window_is_taken_out_of_the_configuration(self):
        daemon = self.start(f'    keep_warm: ["{window_around_now()}"]\n')
        daemon.wait_until(lambda: daemon.backend()["held_until"], 10, "the window's hold")
        daemon.stop()
        with open(daemon.config_path, "w") as config_file:
            config_file.write(config_with("")(daemon.workdir).replace("{port}", str(daemon.port)))
        daemon.start()
        def state_without_holds():
            with open(os.path.join(daemon.workdir, "state", "state.json")) as state:
                return '"holds"' not in state.read()
        daemon.wait_until(state_without_holds, 5, "the hold to leave state.json")
        self.assertIsNone(daemon.backend()["held_until"])

    def test_an_admin_pin_holds_the_backend_until_it_is_lifted(self):
        daemon = self.start("")
        daemon.wait_for_state("asleep", 5)
        code, _, body = daemon.request("POST", "/control/pin/gpu", {"Accept": "application/json"}, b"", admin=True)
        self.assertEqual(code, 202, body)
        daemon.wait_for_state("ready", 10)
        time.sleep(2.5)
        backend = daemon.backend()
        self.assertEqual(backend["state"], "ready")
        self.assertEqual(backend["awake_reason"], "admin-pin")
        self.assertIsNone(backend["idle_deadline"])
        self.assertEqual(backend["pinned"]["by"], "control")
        self.assertIn("pinned awake from a script at 127.0.0.1", backend["pinned"]["detail"])
        self.assertIn("pinned awake by an admin", self.control_page())
        self.assertIn("not while pinned awake", self.control_page())
        self.assertIn('action="/control/unpin/gpu"', self.control_page())
        # A pin is refused without the token, as every control action is.
        self.assertIn(daemon.request("POST", "/control/unpin/gpu", {"Accept": "application/json"}, b"")[0],
                      (401, 403))
        # A restart keeps the pin (the simulated VM itself does not survive one).
        daemon.stop()
        daemon.start()
        self.assertEqual(daemon.backend()["pinned"]["by"], "control")
        code, _, body = daemon.request("POST", "/control/unpin/gpu", {"Accept": "application/json"}, b"", admin=True)
        self.assertEqual(code, 202, body)
        self.assertIsNone(daemon.backend()["pinned"])
        daemon.wait_for_state("asleep", 10)
        # The pin and its end are the backend's events in the audit trail. /api/events lists an
        # event once it is fsync'd, which may come after the state above (the restarted backend
        # may not have begun waking when the pin was lifted), so wait for it.
        def pin_events():
            code, _, body = daemon.request("GET", "/api/events?backend=gpu&limit=200", admin=True)
            self.assertEqual(code, 200, body)
            actions = [event["action"] for event in json.loads(body)["events"] if event["backend"] == "gpu"]
            return [action for action in actions if action in ("pinned_awake", "unpinned")]
        daemon.wait_until(lambda: "unpinned" in pin_events(), 10, "the unpinned event")
        self.assertEqual(pin_events(), ["pinned_awake", "unpinned"])

    def test_an_unknown_time_zone_is_a_configuration_error(self):
        daemon = Unshelver(config_text="placeholder")
        with open(daemon.config_path, "w") as config_file:
            config_file.write(config_with('    keep_warm: ["mon-fri 08:00-18:00 Europe/Atlantis"]\n')(daemon.workdir)
                              .replace("{port}", str(daemon.port)))
        result = subprocess.run([BINARY, "check-config", "--config", daemon.config_path], capture_output=True,
                                text=True, timeout=10)
        self.assertEqual(result.returncode, 2, result.stdout + result.stderr)
        self.assertRegex(result.stdout + result.stderr,
                         r"config\.yaml:\d+:\d+: buttons\[0\]\.keep_warm: unknown time zone \"Europe/Atlantis\"")


if __name__ == "__main__":
    unittest.main()
