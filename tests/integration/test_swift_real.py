"""The real binary mirrors its event log into REAL OpenStack Swift, through REAL Keystone v3.

tests/peers/openstack_peers.sh runs Debian 12's Swift (proxy, account, container and object
servers, keystoneauth), Keystone (under uwsgi) and memcached on 127.0.0.1; `scripts/setup test`
installs them. The binary finds Swift in Keystone's catalog (`object-store`), as in production.
Without those packages this test fails and says so, unless UNSHELVER_SKIP_REAL_SWIFT=1 (then it
is skipped). Peers that already run (`openstack_peers.sh start` by hand) are used and left running;
peers this test started are stopped at its end.

Each test deletes the container first, runs the binary on a simulated backend with the Swift mirror
on (password auth, then an application credential), wakes the backend and lets it idle back to
sleep, waits until the outbox is empty, and then reads Swift directly (its own Keystone token,
urllib): the container was created by the binary, and holds exactly one object per line of the
local event log, `audit/YYYY/MM/DD/{id}.json`, whose body is that line's JSON.
"""
import datetime
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

from harness import SOURCE_DIR, Unshelver, free_port, sim_config

PEERS = os.path.join(os.path.abspath(SOURCE_DIR), "tests", "peers", "openstack_peers.sh")
CONTAINER = "unshelver-events-test"
PREFIX = "audit"
# What a wake and an idle sleep record, in this order (/tmp/spec6/contract.md).
CYCLE = ["unshelve_requested", "cloud_running", "unshelve_complete", "shelve_requested", "shelve_complete"]
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy


def http(method, url, token=None, body=None, headers=None):
    """One request; returns (status, headers, body bytes) for every status."""
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    if token:
        request.add_header("X-Auth-Token", token)
    try:
        with OPENER.open(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def read_env_file(path):
    values = {}
    with open(path) as env_file:
        for line in env_file:
            key, sep, value = line.strip().partition("=")
            if sep and not key.startswith("#"):
                values[key] = value
    return values


class RealSwiftEventMirror(unittest.TestCase):
    started_peers = False

    @classmethod
    def setUpClass(cls):
        if os.environ.get("UNSHELVER_SKIP_REAL_SWIFT") == "1":
            raise unittest.SkipTest("UNSHELVER_SKIP_REAL_SWIFT=1")
        running = subprocess.run([PEERS, "status"], capture_output=True, text=True, timeout=30)
        if running.returncode != 0:
            # Registered before the start, so that a start that fails half-way is cleaned up too.
            cls.addClassCleanup(cls.stop_peers)
            started = subprocess.run([PEERS, "start"], capture_output=True, text=True, timeout=240)
            if started.returncode == 3:
                raise AssertionError(
                    "test_swift_real needs real Swift and Keystone from Debian's packages, which are not "
                    "installed: run `scripts/setup test` (or set UNSHELVER_SKIP_REAL_SWIFT=1 to skip this "
                    "test).\n" + started.stderr)
            if started.returncode != 0:
                raise AssertionError(f"{PEERS} start exited with {started.returncode}:\n{started.stderr}")
            cls.started_peers = True
        where = subprocess.run([PEERS, "env"], capture_output=True, text=True, timeout=30)
        if where.returncode != 0:
            raise AssertionError(f"{PEERS} env: {where.stderr}")
        cls.peers = read_env_file(where.stdout.strip())

    @classmethod
    def stop_peers(cls):
        subprocess.run([PEERS, "stop"], capture_output=True, timeout=60)

    # ---------------------------------------------------------------- Swift, read directly
    def keystone_token(self):
        """A token for the demo project from the real Keystone, and Swift's URL from its catalog."""
        p = self.peers
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": p["OS_USERNAME"], "domain": {"name": p["OS_USER_DOMAIN_NAME"]}, "password": p["OS_PASSWORD"]}}},
            "scope": {"project": {"name": p["OS_PROJECT_NAME"], "domain": {"name": p["OS_PROJECT_DOMAIN_NAME"]}}}}}
        status, headers, raw = http("POST", p["OS_AUTH_URL"] + "/auth/tokens", body=json.dumps(body).encode(),
                                    headers={"Content-Type": "application/json"})
        self.assertEqual(status, 201, raw)
        catalog = json.loads(raw)["token"]["catalog"]
        urls = [endpoint["url"] for service in catalog if service["type"] == "object-store"
                for endpoint in service["endpoints"]
                if endpoint["interface"] == "public" and endpoint["region_id"] == "RegionOne"]
        self.assertEqual(urls, [p["SWIFT_ACCOUNT_URL"]], catalog)
        return headers["X-Subject-Token"], urls[0]

    def container_url(self, name=""):
        url = f"{self.account_url}/{CONTAINER}"
        return url + "/" + urllib.parse.quote(name) if name else url

    def list_container(self):
        """Every object in the container (all pages), as Swift lists them; None when it is missing."""
        objects, marker = [], ""
        while True:
            query = urllib.parse.urlencode({"format": "json", "marker": marker})
            status, _, raw = http("GET", f"{self.container_url()}?{query}", self.token)
            if status == 404:
                return None
            self.assertEqual(status, 200, raw)
            page = json.loads(raw)
            if not page:
                return objects
            objects += page
            marker = page[-1]["name"]

    def delete_container(self):
        """Removes what an earlier run left, so that this run's binary has to create the container."""
        for entry in self.list_container() or []:
            status, _, raw = http("DELETE", self.container_url(entry["name"]), self.token)
            self.assertIn(status, (204, 404), raw)
        status, _, raw = http("DELETE", self.container_url(), self.token)
        self.assertIn(status, (204, 404), raw)
        self.assertEqual(http("HEAD", self.container_url(), self.token)[0], 404)

    # ---------------------------------------------------------------- the binary
    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="unshelver-swift-real-")
        self.addCleanup(shutil.rmtree, self.workdir, True)
        self.token, self.account_url = self.keystone_token()
        self.delete_container()
        self.event_log = os.path.join(self.workdir, "events", "events.jsonl")

    def start_daemon(self, openstack_yaml):
        port = free_port()
        top = (f"local_event_log: {self.event_log}\n"
               f"swift_event_container: {CONTAINER}\n"
               f"swift_event_prefix: {PREFIX}\n" + openstack_yaml)
        text = sim_config(os.path.join(self.workdir, "state"), port, idle_seconds=1, extra_top=top)
        # The binary also reads OS_* from its environment: only the config speaks here.
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        daemon = Unshelver(text, workdir=self.workdir, port=port, env=env)
        daemon.start()
        self.addCleanup(self.stop_daemon, daemon)
        return daemon

    def stop_daemon(self, daemon):
        if daemon.process and daemon.process.poll() is None:
            daemon.stop()
        output = daemon.output()
        for secret in (self.peers["OS_PASSWORD"], self.peers["OS_APP_CRED_SECRET"]):
            self.assertNotIn(secret, output, "a secret reached the log")

    def run_cycle_and_sync(self, daemon):
        """asleep -> wake -> ready -> idle -> asleep, then until every event is in Swift."""
        daemon.wait_for_state("asleep", 15)
        code, _, body = daemon.wake()
        self.assertEqual(code, 202, body)
        daemon.wait_for_state("ready", 15)
        seen = daemon.wait_for_state("asleep", 15)
        self.assertIn("sleeping", seen)

        def synced():
            events = daemon.status()["events"]
            swift = events["swift"]
            done = (swift is not None and events["last_seq"] >= 5 and events["unwritten"] == 0
                    and swift["outbox"] == 0)
            return events if done else None
        return daemon.wait_until(synced, 20, "the outbox to empty into real Swift")

    def read_local_log(self):
        with open(self.event_log, "rb") as log:
            data = log.read()
        self.assertTrue(data.endswith(b"\n"), data[-200:])
        return [json.loads(line) for line in data.split(b"\n")[:-1]]

    def check_swift_holds_exactly_the_log(self, events, created_after):
        records = self.read_local_log()
        self.assertGreaterEqual(len(records), 5, records)
        self.assertEqual([r["seq"] for r in records], list(range(records[0]["seq"], records[0]["seq"] + len(records))))
        self.assertEqual(events["last_seq"], records[-1]["seq"])
        expected = {}
        for record in records:
            self.assertRegex(record["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
            year, month, day = record["ts"][:10].split("-")
            expected[f"{PREFIX}/{year}/{month}/{day}/{record['id']}.json"] = record
        self.assertEqual(len(expected), len(records), "event ids are not unique")

        # The container exists now, and was made after the binary started (it was deleted before).
        # Its X-Timestamp keeps the first creation ever; the account listing has the last PUT's time.
        status, _, raw = http("GET", f"{self.account_url}?format=json&prefix={CONTAINER}", self.token)
        self.assertEqual(status, 200, raw)
        put = [c["last_modified"] for c in json.loads(raw) if c["name"] == CONTAINER]
        self.assertEqual(len(put), 1, raw)
        put_time = datetime.datetime.fromisoformat(put[0]).replace(tzinfo=datetime.timezone.utc).timestamp()
        self.assertGreaterEqual(put_time, created_after - 0.5, "the container was not created by this binary")

        listing = self.list_container()
        self.assertEqual(sorted(o["name"] for o in listing), sorted(expected),
                         "Swift must hold one object per local log line, and nothing else")
        for entry in listing:
            self.assertTrue(entry["content_type"].startswith("application/json"), entry)
            status, _, body = http("GET", self.container_url(entry["name"]), self.token)
            self.assertEqual(status, 200, entry["name"])
            self.assertEqual(json.loads(body), expected[entry["name"]], entry["name"])

        swift = events["swift"]
        self.assertEqual(swift["container"], CONTAINER)
        self.assertGreaterEqual(swift["uploaded"] + swift["already_present"], len(records), swift)
        # Last, so that a wrong name does not hide the mirror's result: the contract's actions.
        actions = [r["action"] for r in records]
        # A service that answers before the cloud reports the VM running skips cloud_running.
        early_ready = [action for action in CYCLE if action != "cloud_running"]

        def in_order(cycle):
            remaining = iter(actions)
            return all(action in remaining for action in cycle)

        self.assertTrue(in_order(CYCLE) or in_order(early_ready), f"{CYCLE} not in order in {actions}")

    # ---------------------------------------------------------------- the tests
    def test_password_auth_mirrors_every_event(self):
        p = self.peers
        created_after = time.time()
        daemon = self.start_daemon(f"""openstack:
  auth_url: {p['OS_AUTH_URL']}
  username: {p['OS_USERNAME']}
  password: {p['OS_PASSWORD']}
  project_name: {p['OS_PROJECT_NAME']}
  user_domain_name: {p['OS_USER_DOMAIN_NAME']}
  project_domain_name: {p['OS_PROJECT_DOMAIN_NAME']}
  region_name: {p['OS_REGION_NAME']}
""")
        events = self.run_cycle_and_sync(daemon)
        self.check_swift_holds_exactly_the_log(events, created_after)

    def test_application_credential_mirrors_every_event(self):
        p = self.peers
        created_after = time.time()
        daemon = self.start_daemon(f"""openstack:
  auth_url: {p['OS_AUTH_URL']}
  application_credential_id: {p['OS_APP_CRED_ID']}
  application_credential_secret: {p['OS_APP_CRED_SECRET']}
  region_name: {p['OS_REGION_NAME']}
""")
        events = self.run_cycle_and_sync(daemon)
        self.check_swift_holds_exactly_the_log(events, created_after)


if __name__ == "__main__":
    unittest.main()
