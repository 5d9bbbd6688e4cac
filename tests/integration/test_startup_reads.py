"""At start-up each backend's machine is read once, not twice (issue 20).

resolve() reads the machine to check the configuration, and the first observation, issued in the
same loop turn, waits for that read instead of making its own. Four backends named by instance
name on each fake cloud: each name is looked up once and each machine read once until all are
asleep (before this, two of each: with 100 Exoscale backends, 200 full listings at once). About
ten seconds in all.
"""
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))

import test_exoscale_listing  # noqa: E402
import test_openstack_listing  # noqa: E402
from fake_exoscale import FakeExoscale  # noqa: E402
from fake_openstack import FakeOpenStack  # noqa: E402
from harness import FleetOnOneCloud, free_port  # noqa: E402
from test_openstack import PASSWORD, password_auth  # noqa: E402

NAMES = ["alpha", "bravo", "charlie", "delta"]


class OpenStackStartupReads(FleetOnOneCloud):
    SECRET = PASSWORD

    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="unshelver-startup-reads-")
        self.fake = FakeOpenStack({"timings": {"default": 0.05}}).start()
        self.addCleanup(self.fake.stop)
        self.guest_port = free_port()

    def test_each_server_is_looked_up_and_read_once_at_start(self):
        ids = {}
        for name in NAMES:
            ids[name] = self.fake.add_server(
                f"{name}-box", vm_state="shelved_offloaded",
                addresses={"private": [{"addr": "127.0.0.1", "version": 4, "OS-EXT-IPS:type": "fixed"}]})
        port = free_port()
        text = test_openstack_listing.fleet_config(self.workdir, port, password_auth(self.fake), NAMES,
                                                   self.guest_port)
        # Waits until every backend is asleep: its first observation is done. The next one, the
        # settled one, comes 30 s later.
        self.start_fleet(text, port, NAMES)
        lookups = self.fake.requests(service="compute", method="GET", path_regex=r"/servers$")
        self.assertEqual(len(lookups), len(NAMES), [e["query"] for e in lookups])
        for name in NAMES:
            reads = self.fake.requests(service="compute", method="GET", path_regex=f"/servers/{ids[name]}$")
            self.assertEqual(len(reads), 1, name)
        self.assertEqual(self.fake.requests(service="compute", path_regex=r"/servers/detail$"), [])


class ExoscaleStartupReads(FleetOnOneCloud):
    SECRET = test_exoscale_listing.API_SECRET

    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="unshelver-startup-reads-")
        self.fake = FakeExoscale({"api_key": test_exoscale_listing.API_KEY,
                                  "api_secret": test_exoscale_listing.API_SECRET,
                                  "timings": test_exoscale_listing.TIMINGS}).start()
        self.addCleanup(self.fake.stop)

    def test_each_instance_is_listed_for_and_read_once_at_start(self):
        guest_ports = {name: free_port() for name in NAMES}
        ids = {name: self.fake.add_instance(f"{name}-box", state="stopped", public_ip="127.0.0.1",
                                            zone="de-fra-1")
               for name in NAMES}
        port = free_port()
        text = test_exoscale_listing.fleet_config(self.workdir, port, self.fake.api_url, guest_ports)
        self.start_fleet(text, port, NAMES)
        # One listing per backend finds its instance by name (and one read of it): not two of each.
        self.assertEqual(len(self.fake.requests(method="GET", path_regex=r"/v2/instance$")), len(NAMES))
        for name in NAMES:
            self.assertEqual(len(self.fake.requests(method="GET", path_regex=f"/v2/instance/{ids[name]}$")), 1,
                             name)


if __name__ == "__main__":
    unittest.main()
