"""Settled observations of several Exoscale backends share one instance listing (issue 20).

Three stopped instances in one zone on the fake Exoscale API, one backend each. Once they are
asleep, nothing is expected to change, so their observations (every settled period) are
served from one GET /v2/instance (list-instances) rather than one GET /v2/instance/{id} each. An
instance started behind Unshelver's back still shows in the listing and is adopted; a wake still
polls its one instance fast; a failed listing falls back to the single reads; a lone backend
keeps reading its instance. The settled period is 4 s here (app.settled_poll_interval_seconds).
"""
import os
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))

from fake_exoscale import FakeExoscale  # noqa: E402
from harness import FleetOnOneCloud, free_port  # noqa: E402

API_KEY = "EXO0123456789abcdef01234567"
API_SECRET = "exo-listing-secret-Hq4W8mR2xN6cJ0"
TIMINGS = {"start_seconds": 0.3, "stop_seconds": 0.3, "boot_seconds": 0.2, "reboot_seconds": 0.3}
# The settled observation period (app.settled_poll_interval_seconds; without it 30 s at least).
SETTLED_PERIOD = 4.0


def fleet_config(workdir, port, api_url, guest_ports):
    buttons = "".join(f"""
  - id: {name}
    label: {name}
    provider: exoscale
    zone: de-fra-1
    instance_name: {name}-box
    port: {guest_port}
    idle_timeout_seconds: 600
    health:
      interval_seconds: 0.1
      timeout_seconds: 1
      successes_needed: 1
""" for name, guest_port in guest_ports.items())
    return f"""
app:
  title: Exoscale listing test
  poll_interval_seconds: 0.1
  settled_poll_interval_seconds: {SETTLED_PERIOD}
  api_retry_attempts: 2
listen: 127.0.0.1:{port}
state_dir: {os.path.join(workdir, "state")}
log_level: debug
exoscale:
  api_url: {api_url}
  api_timeout_seconds: 2
  api_key: {API_KEY}
  api_secret: {API_SECRET}
buttons:{buttons}
"""


class SharedInstanceListing(FleetOnOneCloud):
    SECRET = API_SECRET

    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="unshelver-exo-listing-")
        self.fake = FakeExoscale({"api_key": API_KEY, "api_secret": API_SECRET, "timings": TIMINGS}).start()
        self.addCleanup(self.fake.stop)
        self.unshelver = None

    def add_instances(self, names):
        self.guest_ports = {name: free_port() for name in names}
        return {name: self.fake.add_instance(f"{name}-box", state="stopped", public_ip="127.0.0.1",
                                             zone="de-fra-1", serve_http_port=self.guest_ports[name])
                for name in names}

    def start(self, names):
        port = free_port()
        text = fleet_config(self.workdir, port, self.fake.api_url, self.guest_ports)
        return self.start_fleet(text, port, names)

    def reads_of(self, instance_id, since):
        return [e for e in self.fake.requests(method="GET", path_regex=f"/v2/instance/{instance_id}$")
                if e["seq"] > since]

    def last_seq(self):
        return self.fake.last_seq()

    def listings(self, since):
        return [e for e in self.fake.requests(method="GET", path_regex=r"/v2/instance$") if e["seq"] > since]

    def test_settled_backends_share_one_listing_and_outside_changes_are_seen(self):
        names = ["alpha", "beta", "gamma"]
        ids = self.add_instances(names)
        self.fake.add_instance("stranger-box", state="running", zone="de-fra-1")  # not ours: listed, never read
        u = self.start(names)
        settled = self.fake.last_seq()
        started = time.monotonic()
        settled_at = time.time()

        # Someone starts alpha's instance in the portal: the next settled observation (from a
        # listing) shows it running, and Unshelver adopts it.
        self.fake.set_instance_state(ids["alpha"], "running")
        u.wait_for_state("ready", SETTLED_PERIOD * 2 + 15, name="alpha")
        self.assertEqual(u.backend("alpha")["awake_reason"], "cloud")

        # Once beta and gamma have made a settled observation, they were served from listings
        # only, never by reading their own instances.
        u.wait_until(lambda: len(self.listings(settled)) >= 1, 15, "a listing")
        self.wait_for_observations(("beta", "gamma"), settled_at, SETTLED_PERIOD * 2 + 5)
        self.assert_asleep_without_own_reads(("beta", "gamma"), ids, settled)
        counts = self.fake.endpoint_counts(settled)
        self.assertGreaterEqual(counts.get("list-instances", 0), 1, counts)
        # One listing serves several observations; a listing is reused for half a settled period,
        # so there are at most two a period, whatever the number of backends.
        periods = (time.monotonic() - started) / SETTLED_PERIOD
        self.assertLessEqual(counts.get("list-instances", 0), 2 * periods + 2, counts)
        self.assertEqual(self.fake.requests(status=403), [])

        # A wake polls its one instance fast, whatever the listing holds.
        before_wake = self.fake.last_seq()
        code, _, _ = u.wake("beta")
        self.assertEqual(code, 202)
        woken_at = time.time()
        u.wait_for_state("ready", 20, name="beta")
        self.assertEqual(self.fake.action_counts(ids["beta"])["start"], 1)
        reads = u.wait_until(lambda: self.reads_of(ids["beta"], before_wake), 10, "a read of beta's instance")
        self.assertLess(reads[0]["time"] - woken_at, 5.0)

    def test_a_failed_listing_falls_back_to_reading_each_instance(self):
        names = ["alpha", "beta"]
        ids = self.add_instances(names)
        # Every listing fails (after the client's retries); the names were resolved before.
        u = self.start(names)
        self.fake.add_fault(method="GET", path_regex=r"/v2/instance$", status=503, times=None)
        settled = self.fake.last_seq()
        self.fake.set_instance_state(ids["beta"], "running")
        u.wait_for_state("ready", SETTLED_PERIOD * 2 + 15, name="beta")
        self.assertGreaterEqual(len(self.listings(settled)), 1)
        u.wait_until(lambda: self.reads_of(ids["alpha"], settled), 15, "a read of alpha's instance")
        self.assertEqual(u.backend("alpha")["state"], "asleep")
        self.assertEqual(u.backend("alpha")["observe_error"], "")

    def test_a_lone_backend_reads_its_instance(self):
        self.assert_a_lone_backend_reads_its_machine(self.add_instances(["solo"])["solo"], SETTLED_PERIOD)


if __name__ == "__main__":
    unittest.main()
