"""Settled observations of several OpenStack backends share one server listing (issue 20).

Three shelved servers on the fake OpenStack, one backend each. Once they are asleep, nothing is
expected to change, so their observations (every settled period) are served from
GET /servers/detail, fetched page by page (limit/marker), rather than one GET /servers/{id} each.
A server started behind Unshelver's back still shows in the listing and is adopted; a wake still
polls its one server fast; a lone backend keeps reading its server.
"""
import os
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))

from fake_openstack import FakeOpenStack  # noqa: E402
from harness import FleetOnOneCloud, free_port  # noqa: E402
from test_openstack import PASSWORD, password_auth  # noqa: E402

# The settled observation period (app.settled_poll_interval_seconds; without it 30 s at least).
SETTLED_PERIOD = 4.0


def fleet_config(workdir, port, auth, names, guest_port):
    buttons = "".join(f"""
  - id: {name}
    label: {name}
    instance_name: {name}-box
    port: {guest_port}
    idle_timeout_seconds: 600
    health:
      interval_seconds: 0.1
      timeout_seconds: 1
""" for name in names)
    return f"""
app:
  title: OpenStack listing test
  poll_interval_seconds: 0.1
  settled_poll_interval_seconds: {SETTLED_PERIOD}
  api_retry_attempts: 3
listen: 127.0.0.1:{port}
state_dir: {os.path.join(workdir, "state")}
log_level: debug
{auth}
buttons:{buttons}
"""


class SharedListing(FleetOnOneCloud):
    SECRET = PASSWORD

    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="unshelver-listing-")
        self.guest_port = free_port()
        # Pages of two servers, so the three backends' servers (and a stranger's) span two pages.
        self.fake = FakeOpenStack({"timings": {"default": 0.05}, "nova_max_limit": 2})
        self.fake.start()
        self.addCleanup(self.fake.stop)
        self.unshelver = None

    def add_servers(self, names):
        ids = {}
        for name in names:
            ids[name] = self.fake.add_server(
                f"{name}-box", vm_state="shelved_offloaded",
                addresses={"private": [{"addr": "127.0.0.1", "version": 4, "OS-EXT-IPS:type": "fixed"}]},
                serve_http_port=self.guest_port)
        return ids

    def start(self, names):
        port = free_port()
        text = fleet_config(self.workdir, port, password_auth(self.fake), names, self.guest_port)
        return self.start_fleet(text, port, names)

    def reads_of(self, server_id, since):
        return [e for e in self.fake.requests(service="compute", method="GET", path_regex=f"/servers/{server_id}$")
                if e["seq"] > since]

    def listings(self, since):
        return [e for e in self.fake.requests(service="compute", method="GET", path_regex=r"/servers/detail$")
                if e["seq"] > since]

    def last_seq(self):
        entries = self.fake.requests()
        return entries[-1]["seq"] if entries else 0

    def test_settled_backends_share_one_listing_and_outside_changes_are_seen(self):
        names = ["alpha", "beta", "gamma"]
        ids = self.add_servers(names)
        self.fake.add_server("stranger-box", vm_state="active")  # not ours: listed, never read
        u = self.start(names)
        settled = self.last_seq()
        started = time.monotonic()
        settled_at = time.time()

        # Someone starts alpha's server in Horizon: the next settled observation (from a listing)
        # shows it running, and Unshelver adopts it.
        self.fake.set_server_state(ids["alpha"], vm_state="active")
        u.wait_for_state("ready", SETTLED_PERIOD * 2 + 15, name="alpha")
        self.assertEqual(u.backend("alpha")["awake_reason"], "cloud")

        # Once beta and gamma have made a settled observation, they were served from listings
        # only, never by reading their own servers.
        u.wait_until(lambda: len(self.listings(settled)) >= 2, 15, "two pages of a listing")
        self.wait_for_observations(("beta", "gamma"), settled_at, SETTLED_PERIOD * 2 + 5)
        self.assert_asleep_without_own_reads(("beta", "gamma"), ids, settled)
        pages = self.listings(settled)
        self.assertTrue(any("marker=" in e.get("query", "") for e in pages) or len(pages) >= 2, pages)
        # One listing (two pages) serves several observations; a listing is reused for half a
        # settled period, so there are at most two a period, whatever the number of backends.
        periods = (time.monotonic() - started) / SETTLED_PERIOD
        self.assertLessEqual(len(pages), 2 * (2 * periods + 2), pages)

        # A wake polls its one server fast, whatever the listing holds.
        before_wake = self.last_seq()
        code, _, _ = u.wake("beta")
        self.assertEqual(code, 202)
        woken_at = time.time()
        u.wait_for_state("ready", 20, name="beta")
        # The service may answer before the cloud shows the server ACTIVE (ready ahead of the
        # cloud); the fast polls that follow read beta's server, not a listing, within seconds.
        reads = u.wait_until(lambda: self.reads_of(ids["beta"], before_wake), 10, "a read of beta's server")
        self.assertLess(reads[0]["time"] - woken_at, 5.0)

    def test_a_lone_backend_reads_its_server(self):
        self.assert_a_lone_backend_reads_its_machine(self.add_servers(["solo"])["solo"], SETTLED_PERIOD)


if __name__ == "__main__":
    unittest.main()
