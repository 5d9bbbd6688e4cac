"""`unshelver dns ensure FQDN IP` (issue #5) against the fake Designate (tests/fakes/fake_openstack.py).

Each test runs the real binary as an ops script would and then checks the fake's store and request
log: a create, an update, an unchanged record (no write at all), the longest zone, pagination,
AAAA, a lost create race (409), no zone (exit 1), API, Keystone and network errors (exit 2), a
record that never becomes ACTIVE, usage errors (exit 64, nothing sent), both kinds of credentials,
the OS_* variables alone, and the wrapper script. No run may print a secret.
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))

from fake_openstack import FakeOpenStack  # noqa: E402
from harness import BINARY, SOURCE_DIR, free_port  # noqa: E402
from test_openstack import APP_SECRET, PASSWORD, password_auth  # noqa: E402

# Absolute, because every run has its own working directory.
UNSHELVER = os.path.abspath(BINARY)
ZONE = "a86dba58-0043-4cc6-a1bb-69d5e86f3ca3"  # example.org. in the fake
SUB_ZONE = "2150b1bf-dee2-4221-9d85-11f7886fb15f"  # sub.example.org.


def password_config(fake, extra=""):
    return password_auth(fake, extra, api_timeout=2, region=None)


def app_credential_config(fake):
    return f"""
openstack:
  auth_url: {fake.auth_url}
  application_credential_id: ac-0001
  application_credential_secret: {APP_SECRET}
"""


def clean_environment(**extra):
    """The test's environment without anything that could point the binary elsewhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_") and k != "UNSHELVER_CONFIG"}
    env.update(extra)
    return env


class DnsTestCase(unittest.TestCase):
    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="unshelver-dns-")
        self.fake = FakeOpenStack({"designate_propagation_seconds": 0.1})
        self.fake.start()
        self.addCleanup(self.fake.stop)
        self.config_path = self.write_config(password_config(self.fake))

    def write_config(self, text, name="config.yaml"):
        path = os.path.join(self.workdir, name)
        with open(path, "w") as config_file:
            config_file.write(text)
        return path

    def run_dns(self, *args, config=None, env=None, command=None, cwd=None, timeout=60):
        """Runs `unshelver dns ARGS --config CONFIG`; returns (exit code, stdout, stderr)."""
        argv = command or [UNSHELVER, "dns"]
        argv = argv + list(args)
        if config is not False:
            argv += ["--config", config or self.config_path]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                env=env or clean_environment(), cwd=cwd or self.workdir)
        for secret in (PASSWORD, APP_SECRET):
            self.assertNotIn(secret, result.stdout)
            self.assertNotIn(secret, result.stderr)
        return result.returncode, result.stdout, result.stderr

    def ensure(self, fqdn, ip, *flags, expect=0, **kwargs):
        code, out, err = self.run_dns("ensure", fqdn, ip, *flags, **kwargs)
        self.assertEqual(code, expect, f"stdout: {out}\nstderr: {err}")
        return out, err

    def recordset(self, name, rtype="A", zone="example.org."):
        found = [rs for rs in self.fake.recordsets(zone) if rs["name"] == name and rs["type"] == rtype]
        self.assertLessEqual(len(found), 1)
        return found[0] if found else None

    def writes(self):
        return [r for r in self.fake.requests(service="dns") if r["method"] in ("POST", "PUT", "DELETE")]


class EnsureTest(DnsTestCase):
    def test_create(self):
        out, err = self.ensure("WWW.example.org", "10.0.0.5")
        self.assertEqual(out, "created www.example.org. A 10.0.0.5 (ttl 300) in zone example.org.: ACTIVE\n")
        self.assertEqual(err, "")
        rs = self.recordset("www.example.org.")
        self.assertEqual(rs["records"], ["10.0.0.5"])
        self.assertEqual(rs["ttl"], 300)
        self.assertEqual(rs["status"], "ACTIVE")
        posts = [r for r in self.writes() if r["method"] == "POST"]
        self.assertEqual(len(posts), 1)
        self.assertEqual(posts[0]["path"], f"/dns/v2/zones/{ZONE}/recordsets")
        self.assertEqual(posts[0]["body"],
                         {"name": "www.example.org.", "type": "A", "ttl": 300, "records": ["10.0.0.5"]})
        # The lookup asks for the exact name (with the dot) and type (contract §4).
        lookups = self.fake.requests(service="dns", method="GET", path_regex=r"/recordsets$")
        self.assertEqual(lookups[0]["query"], "name=www.example.org.&type=A")

    def test_update_changes_the_records_and_keeps_the_ttl(self):
        self.ensure("www.example.org", "10.0.0.5", "--ttl", "600")
        self.fake.clear_requests()
        out, _ = self.ensure("www.example.org.", "10.0.0.6")
        self.assertEqual(out, "updated www.example.org. A 10.0.0.6 (ttl 600) in zone example.org.: ACTIVE "
                              "(records 10.0.0.5 -> 10.0.0.6)\n")
        rs = self.recordset("www.example.org.")
        self.assertEqual((rs["records"], rs["ttl"], rs["status"]), (["10.0.0.6"], 600, "ACTIVE"))
        puts = self.writes()
        self.assertEqual([r["method"] for r in puts], ["PUT"])
        self.assertEqual(puts[0]["path"], f"/dns/v2/zones/{ZONE}/recordsets/{rs['id']}")
        self.assertEqual(puts[0]["body"], {"records": ["10.0.0.6"]})  # no ttl: it stays as it is

    def test_update_of_the_ttl_alone(self):
        self.ensure("www.example.org", "10.0.0.5")
        out, _ = self.ensure("www.example.org", "10.0.0.5", "--ttl", "60")
        self.assertTrue(out.startswith("updated www.example.org. A 10.0.0.5 (ttl 60)"), out)
        self.assertIn("ttl 300 -> 60", out)
        self.assertEqual(self.recordset("www.example.org.")["ttl"], 60)

    def test_unchanged_sends_no_write(self):
        self.ensure("www.example.org", "10.0.0.5", "--ttl", "300")
        self.fake.clear_requests()
        out, _ = self.ensure("www.example.org", "10.0.0.5")
        self.assertEqual(out, "unchanged www.example.org. A 10.0.0.5 (ttl 300) in zone example.org.: ACTIVE\n")
        out, _ = self.ensure("www.example.org", "10.0.0.5", "--ttl", "300")
        self.assertTrue(out.startswith("unchanged "), out)
        self.assertEqual(self.writes(), [])

    def test_aaaa_for_an_ipv6_address(self):
        out, _ = self.ensure("v6.example.org", "2001:DB8:0::5")
        self.assertEqual(out, "created v6.example.org. AAAA 2001:db8::5 (ttl 300) in zone example.org.: ACTIVE\n")
        rs = self.recordset("v6.example.org.", "AAAA")
        self.assertEqual((rs["records"], rs["status"]), (["2001:db8::5"], "ACTIVE"))
        self.assertIsNone(self.recordset("v6.example.org.", "A"))
        # The same address written another way is the same record.
        self.fake.clear_requests()
        out, _ = self.ensure("v6.example.org", "2001:db8:0:0:0:0:0:5")
        self.assertTrue(out.startswith("unchanged "), out)
        self.assertEqual(self.writes(), [])

    def test_longest_zone_and_the_apex(self):
        out, _ = self.ensure("host.sub.example.org", "10.0.0.7")
        self.assertIn("in zone sub.example.org.", out)
        self.assertIsNotNone(self.recordset("host.sub.example.org.", zone="sub.example.org."))
        out, _ = self.ensure("sub.example.org", "10.0.0.8")
        self.assertIn("in zone sub.example.org.", out)
        self.assertIsNotNone(self.recordset("sub.example.org.", zone="sub.example.org."))

    def test_zones_are_read_page_by_page(self):
        self.fake.configure(designate_default_limit=1)
        out, _ = self.ensure("host.sub.example.org", "10.0.0.7")
        self.assertIn("in zone sub.example.org.", out)
        pages = self.fake.requests(service="dns", method="GET", path_regex=r"/v2/zones$")
        self.assertGreaterEqual(len(pages), 2)
        self.assertIn("marker=", pages[1]["query"])
        # The next link is followed on the catalog's endpoint, with the token.
        self.assertTrue(all(p["authenticated"] and p["prefix"] == "/dns" for p in pages))

    def test_a_lost_create_race_is_read_again(self):
        # Another client creates the recordset between our lookup and our POST: Designate says
        # 409 duplicate_recordset (contract §4), and the command looks again.
        self.fake.add_fault(method="POST", path_regex=r"/recordsets$", status=409, times=1, service="dns",
                            body={"code": 409, "type": "duplicate_recordset", "message": "Duplicate RecordSet"})
        out, _ = self.ensure("race.example.org", "10.0.0.9")
        self.assertIn("race.example.org. A 10.0.0.9", out)
        self.assertEqual(self.recordset("race.example.org.")["records"], ["10.0.0.9"])
        lookups = self.fake.requests(service="dns", method="GET", path_regex=r"/recordsets$")
        self.assertEqual(len(lookups), 2)

    def test_json_output(self):
        out, _ = self.ensure("www.example.org", "10.0.0.5", "--json")
        result = json.loads(out)
        rs = self.recordset("www.example.org.")
        self.assertEqual(result, {"result": "created", "name": "www.example.org.", "type": "A",
                                  "records": ["10.0.0.5"], "ttl": 300, "zone": "example.org.", "zone_id": ZONE,
                                  "recordset_id": rs["id"], "status": "ACTIVE", "reason": ""})
        out, _ = self.ensure("www.example.com", "10.0.0.5", "--json", expect=1)
        self.assertEqual(json.loads(out)["result"], "no_zone")

    def test_no_wait(self):
        self.fake.configure(designate_propagation_seconds=None)
        out, _ = self.ensure("www.example.org", "10.0.0.5", "--wait-seconds", "0")
        self.assertTrue(out.endswith(": PENDING\n"), out)
        self.assertEqual(self.recordset("www.example.org.")["status"], "PENDING")


class FailureTest(DnsTestCase):
    def test_no_zone_exits_1(self):
        _, err = self.ensure("www.example.com", "10.0.0.5", expect=1)
        self.assertIn("no Designate zone", err)
        self.assertIn("www.example.com., example.com., com.", err)
        self.assertIn("example.org., sub.example.org.", err)
        self.assertEqual(self.writes(), [])
        # "ample.org." is not a zone of "www.sample.org." even as a text suffix.
        self.ensure("www.notexample.org", "10.0.0.5", expect=1)

    def test_designate_failing_exits_2_after_retries(self):
        self.fake.add_fault(service="dns", status=500, times=None)
        _, err = self.ensure("www.example.org", "10.0.0.5", expect=2)
        self.assertIn("HTTP 500", err)
        self.assertIn("GET /v2/zones", err)
        # The session's retries (app.api_retry_attempts, 3 by default) happened first.
        self.assertEqual(len(self.fake.requests(service="dns")), 3)

    def test_designate_refusing_the_write_exits_2(self):
        self.fake.add_fault(method="POST", service="dns", status=403, times=None)
        _, err = self.ensure("www.example.org", "10.0.0.5", expect=2)
        self.assertIn("HTTP 403", err)
        self.assertIsNone(self.recordset("www.example.org."))

    def test_keystone_refusing_the_credentials_exits_2(self):
        wrong = self.write_config(password_config(self.fake).replace(PASSWORD, "not-the-password"), "wrong.yaml")
        _, err = self.ensure("www.example.org", "10.0.0.5", expect=2, config=wrong)
        self.assertIn("Keystone refused the credentials", err)
        self.assertNotIn("not-the-password", err)
        self.assertEqual(self.fake.requests(service="dns"), [])

    def test_unreachable_cloud_exits_2(self):
        config = self.write_config(password_config(self.fake).replace(str(self.fake.port), str(free_port())),
                                   "unreachable.yaml")
        _, err = self.ensure("www.example.org", "10.0.0.5", expect=2, config=config)
        self.assertIn("Keystone authentication failed", err)

    def test_a_record_that_stays_pending_exits_2(self):
        self.fake.configure(designate_propagation_seconds=None)
        _, err = self.ensure("www.example.org", "10.0.0.5", "--wait-seconds", "1", expect=2)
        self.assertIn("still PENDING after 1 s", err)

    def test_a_config_without_openstack_exits_2(self):
        config = self.write_config("app:\n  title: nothing here\n", "empty.yaml")
        _, err = self.ensure("www.example.org", "10.0.0.5", expect=2, config=config)
        self.assertIn("no `openstack` section", err)
        self.assertEqual(self.fake.auth_count, 0)

    def test_usage_errors_exit_64_and_send_nothing(self):
        for args in (["ensure", "www.example.org", "10.0.0"],
                     ["ensure", "www.example.org", "10.0.0.256"],
                     ["ensure", "www..example.org", "10.0.0.5"],
                     ["ensure", "org", "10.0.0.5"],
                     ["ensure", "www.example.org"],
                     ["ensure", "www.example.org", "10.0.0.5", "--ttl", "0"],
                     ["ensure", "www.example.org", "10.0.0.5", "--frobnicate"],
                     ["remove", "www.example.org", "10.0.0.5"],
                     []):
            with self.subTest(args=args):
                code, out, err = self.run_dns(*args)
                self.assertEqual(code, 64, err)
                self.assertEqual(out, "")
                self.assertIn("Usage:", err)
        self.assertEqual(self.fake.auth_count, 0)
        self.assertEqual(self.fake.requests(), [])
        code, out, _ = self.run_dns("--help", config=False)
        self.assertEqual(code, 0)
        self.assertIn("dns ensure FQDN IP", out)


class CredentialsTest(DnsTestCase):
    def test_application_credential(self):
        config = self.write_config(app_credential_config(self.fake), "appcred.yaml")
        out, _ = self.ensure("www.example.org", "10.0.0.5", config=config)
        self.assertTrue(out.startswith("created "), out)
        auths = self.fake.requests(service="identity", method="POST")
        self.assertEqual([a.get("auth_method") for a in auths], ["application_credential"])

    def test_password_from_the_secrets_file(self):
        secrets = self.write_config(f"[openstack]\npassword = {PASSWORD}\n", "secrets.ini")
        config = self.write_config(password_config(self.fake).replace(f"  password: {PASSWORD}\n", "") +
                                   f"secrets_file: {os.path.basename(secrets)}\n", "with-secrets.yaml")
        out, _ = self.ensure("www.example.org", "10.0.0.5", config=config)
        self.assertTrue(out.startswith("created "), out)

    def test_os_variables_alone(self):
        env = clean_environment(OS_AUTH_URL=self.fake.auth_url, OS_USERNAME="demo", OS_PASSWORD=PASSWORD,
                                OS_PROJECT_NAME="demo", OS_USER_DOMAIN_NAME="Default",
                                OS_PROJECT_DOMAIN_NAME="Default")
        empty_dir = tempfile.mkdtemp(prefix="unshelver-dns-noconfig-")  # no ./config.yaml there
        code, out, err = self.run_dns("ensure", "www.example.org", "10.0.0.5", config=False, env=env, cwd=empty_dir)
        self.assertEqual(code, 0, err)
        self.assertTrue(out.startswith("created "), out)

    def test_a_config_with_buttons_works_too(self):
        text = password_config(self.fake) + f"""
listen: 127.0.0.1:{free_port()}
state_dir: {self.workdir}/state
buttons:
  - id: gpu
    label: GPU
    instance_name: gpu-box
"""
        out, _ = self.ensure("www.example.org", "10.0.0.5", config=self.write_config(text, "full.yaml"))
        self.assertTrue(out.startswith("created "), out)


class WrapperTest(DnsTestCase):
    def test_scripts_ensure_dns_record(self):
        script = os.path.join(SOURCE_DIR, "scripts", "ensure_dns_record")
        env = clean_environment(UNSHELVER_BIN=UNSHELVER)
        code, out, err = self.run_dns("www.example.org", "10.0.0.5", "--ttl", "120", command=[script], env=env)
        self.assertEqual(code, 0, err)
        self.assertEqual(out, "created www.example.org. A 10.0.0.5 (ttl 120) in zone example.org.: ACTIVE\n")
        code, _, _ = self.run_dns("www.example.com", "10.0.0.5", command=[script], env=env)
        self.assertEqual(code, 1)
        code, _, _ = self.run_dns("www.example.org", "not-an-ip", command=[script], env=env)
        self.assertEqual(code, 64)


if __name__ == "__main__":
    unittest.main()
