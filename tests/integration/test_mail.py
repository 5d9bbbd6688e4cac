"""Mail notifications through sendmail (issue 17): a fake `sendmail` first on PATH records its
arguments, environment and input into a folder. Each failure kind sends exactly one message, with
the backend, the reason and the time, and no message (nor sendmail's environment) holds a secret.

The kinds: a failed wake (No valid host), a service that never became healthy, a shelve refused
while the machine runs (the simulated cloud's `refuse_sleeps`), and Caddy's and Swift's outages
past `outage_minutes` with their recoveries (a real Caddy stopped, the fake object store answering
503).
"""
import datetime
import email
import email.policy
import glob
import json
import os
import secrets
import stat
import tempfile
import time
import unittest

import sys

from harness import CONTROL_TOKEN, Unshelver, free_port, require_peer, sim_config
from caddy_harness import CADDY, BareCaddy
from test_openstack import PASSWORD, password_auth

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))
from fake_openstack import FakeOpenStack  # noqa: E402

SECRET_KEY = os.environ["UNSHELVER_SECRET_KEY"]
OS_PASSWORD = "pw-" + secrets.token_urlsafe(16)
URL_TOKEN = "tok-" + secrets.token_urlsafe(16)

FAKE_SENDMAIL = """#!/bin/sh
# Records one message: its arguments, its environment and its input.
name="{folder}/$(date +%s%N)-$$"
printf '%s\\n' "$@" > "$name.argv"
env > "$name.env"
cat > "$name.tmp" && mv "$name.tmp" "$name.eml"
"""


# The recipients and sender every test's configuration has (see assert_standard_headers).
NOTIFICATIONS = ('notification_email: "admin@example.org, ops@example.org"\n'
                 "notifications:\n  from: unshelver@launcher.example.org\n")


class MailTest(unittest.TestCase):
    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="unshelver-mail-")
        self.mail_dir = os.path.join(self.workdir, "mail")
        bin_dir = os.path.join(self.workdir, "bin")
        os.mkdir(self.mail_dir)
        os.mkdir(bin_dir)
        sendmail = os.path.join(bin_dir, "sendmail")
        with open(sendmail, "w") as script:
            script.write(FAKE_SENDMAIL.format(folder=self.mail_dir))
        os.chmod(sendmail, stat.S_IRWXU)
        # The daemon finds sendmail on PATH, as the Python unshelver did.
        self.env = dict(os.environ, PATH=bin_dir + ":" + os.environ.get("PATH", "/usr/bin:/bin"),
                        OS_PASSWORD_FOR_NOBODY=OS_PASSWORD)
        self.daemon = None

    def tearDown(self):
        if self.daemon:
            self.daemon.stop()

    def start(self, extra_backend="", extra_top="", config_text=None):
        """`config_text` may say {port} for the daemon's port."""
        port = free_port()
        top = NOTIFICATIONS + extra_top
        text = config_text or sim_config(os.path.join(self.workdir, "state"), port, extra_backend=extra_backend,
                                         extra_top=top)
        self.daemon = Unshelver(text, workdir=self.workdir, port=port, env=self.env)
        self.daemon.start()
        return self.daemon

    def messages(self):
        found = []
        for path in sorted(glob.glob(os.path.join(self.mail_dir, "*.eml"))):
            stem = path[:-len(".eml")]
            with open(path, "rb") as raw:
                data = raw.read()
            with open(stem + ".argv") as argv:
                arguments = argv.read().split("\n")[:-1]
            with open(stem + ".env") as env:
                environment = env.read()
            found.append((data, email.message_from_bytes(data, policy=email.policy.default), arguments, environment))
        return found

    def wait_for_messages(self, count, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.messages()
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"expected {count} message(s), got {len(self.messages())}\n" + self.daemon.output()[-3000:])

    def assert_clean(self, data, environment):
        """No configured secret, in the message or in sendmail's environment."""
        for secret in (CONTROL_TOKEN, SECRET_KEY, OS_PASSWORD, URL_TOKEN):
            self.assertNotIn(secret.encode(), data)
            self.assertNotIn(secret, environment)
        for name in ("UNSHELVER_CONTROL_TOKEN", "UNSHELVER_SECRET_KEY", "OS_PASSWORD_FOR_NOBODY"):
            self.assertNotIn(name + "=", environment)

    def assert_standard_headers(self, message, arguments):
        self.assertEqual(arguments, ["-t", "-oi"])
        self.assertEqual(message["From"], "Unshelver <unshelver@launcher.example.org>")
        self.assertEqual([str(address.addr_spec) for address in message["To"].addresses],
                         ["admin@example.org", "ops@example.org"])
        self.assertTrue(message["Date"])
        self.assertTrue(message["Message-ID"].startswith("<"))
        self.assertEqual(message.get_content_type(), "text/plain")
        self.assertEqual(message.get_content_charset(), "utf-8")
        self.assertIsNone(message["Bcc"])
        self.assertIsNone(message["Cc"])

    def the_only_message(self):
        """The one message sent (a second has a second to arrive), with the standard headers and
        no secret in it or in sendmail's environment."""
        self.wait_for_messages(1)
        time.sleep(1)  # nothing more comes
        found = self.messages()
        self.assertEqual(len(found), 1, [m[1]["Subject"] for m in found])
        data, message, arguments, environment = found[0]
        self.assert_standard_headers(message, arguments)
        self.assert_clean(data, environment)
        return message

    def test_a_failed_wake_with_no_valid_host_is_mailed_once(self):
        # The cloud's text tries to add a header and carries secrets: a configured one (the session
        # key) and credentials in a URL.
        failure = (f"No valid host was found.\\r\\nBcc: victim@example.org\\r\\n\\r\\nkey {SECRET_KEY} via "
                   f"https://admin:{OS_PASSWORD}@keystone.example.org/v3?token={URL_TOKEN}")
        daemon = self.start(extra_backend=f'      fail_wakes: 1\n      failure_message: "{failure}"')
        daemon.wait_for_state("asleep", 5)
        daemon.wake()
        daemon.wait_for_state("error", 5)
        message = self.the_only_message()
        self.assertIn("gpu", message["Subject"])
        self.assertIn("No valid host", message["Subject"])
        body = message.get_content()
        self.assertIn("Backend:  gpu", body)
        self.assertIn("Reason:   No valid host was found.", body)
        self.assertIn(datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"), body)
        self.assertIn("What to do:", body)
        self.assertIn("https://[redacted]@keystone.example.org/v3?[redacted]", body)
        # The admin status and the metrics count what was sent.
        code, _, body = daemon.request("GET", "/api/status", admin=True)
        self.assertEqual(code, 200)
        notifications = json.loads(body)["notifications"]
        self.assertEqual((notifications["sent"], notifications["queued"], notifications["last_error"]), (1, 0, None))
        self.assertIn(b'unshelver_notifications_total{outcome="sent"} 1', daemon.get("/metrics")[2])

    def test_a_service_that_never_becomes_healthy_is_mailed_once(self):
        # The machine starts, but its service (here: a port nobody listens on) never answers.
        closed = free_port()
        text = sim_config(os.path.join(self.workdir, "state"), "{port}")
        # The boot gives up after 1 s, well before the idle rule (which now applies while booting
        # too) would put the machine back to sleep.
        text = text.replace("    idle_timeout_seconds: 2\n",
                            f"    idle_timeout_seconds: 30\n    boot_timeout_seconds: 1\n    upstream: 127.0.0.1:{closed}\n")
        text += NOTIFICATIONS
        daemon = self.start(config_text=text)
        daemon.wait_for_state("asleep", 5)
        daemon.wake()
        daemon.wait_for_state("error", 10)
        message = self.the_only_message()
        self.assertIn("never became healthy", message["Subject"])
        self.assertIn("Kind:     unshelve_incomplete", message.get_content())

    def test_a_shelve_refused_while_the_machine_runs_is_mailed_once(self):
        # The sim refuses the first sleep: the idle rule's shelve fails while the VM runs (a
        # backend running with no way to shelve it); the retry a second later shelves it.
        text = sim_config(os.path.join(self.workdir, "state"), "{port}", idle_seconds=1,
                          extra_backend="    error_retry_seconds: 1\n")
        text = text.replace("      boot_seconds: 0.3\n", "      boot_seconds: 0.3\n      refuse_sleeps: 1\n")
        text += NOTIFICATIONS
        daemon = self.start(config_text=text)
        daemon.wait_for_state("asleep", 5)
        daemon.wake()
        daemon.wait_for_state("ready", 10)
        daemon.wait_for_state("asleep", 15)
        message = self.the_only_message()
        self.assertIn("cannot put it to sleep", message["Subject"])
        self.assertIn("Kind:     shelve_failed", message.get_content())

    @require_peer(CADDY, "caddy")
    def test_caddy_failing_past_the_threshold_is_mailed_once_and_its_recovery_once(self):
        caddy = BareCaddy(self.workdir)
        caddy.stop()  # its admin API is gone until it starts again below
        try:
            text = sim_config(os.path.join(self.workdir, "state"), "{port}", extra_top=f"""
notification_email: admin@example.org
notifications:
  outage_minutes: 0.03
caddy:
  manage: true
  admin: {caddy.admin_url}
  integration: full
  caddyfile: {self.workdir}/Caddyfile
  launcher_url: http://launcher.localhost:{caddy.port}
  bind: 127.0.0.1
  http_port: {caddy.port}
  auto_https: false
  retry_max_seconds: 0.5
""")
            text = text.replace("    label: Test GPU\n", f"    label: Test GPU\n    public_base_url: http://chat.localhost:{caddy.port}/\n")
            daemon = self.start(config_text=text)
            found = self.wait_for_messages(1)
            data, message, _, environment = found[0]
            self.assertIn("Caddy has been failing", message["Subject"])
            self.assertIn("Service:  Caddy", message.get_content())
            self.assert_clean(data, environment)
            caddy.run(os.path.join(self.workdir, "bootstrap.Caddyfile"))
            found = self.wait_for_messages(2, timeout=20)
            time.sleep(1)
            found = self.messages()
            self.assertEqual([m[1]["Subject"].split("] ", 1)[1].split(" since")[0] for m in found],
                             ["Caddy has been failing", "Caddy works again"])
            self.assert_clean(found[1][0], found[1][3])
            daemon.stop()
            self.daemon = None
        finally:
            caddy.stop()

    def test_swift_failing_past_the_threshold_is_mailed_once_and_its_recovery_once(self):
        # The event mirror's half of "Swift or Caddy failing for longer than a threshold": the fake
        # object store answers 503 to everything from the start, then again normally.
        fake = FakeOpenStack({"timings": {"default": 0.05}}).start()
        try:
            fake.add_fault(service="object-store", status=503, times=None)
            # The first line continues NOTIFICATIONS' `notifications:` section.
            self.start(extra_top="  outage_minutes: 0.03\n"
                                 "swift_event_container: unshelver-mail-test\n"
                                 "events:\n  upload_retry_max_seconds: 0.5\n" + password_auth(fake, api_timeout=2))
            found = self.wait_for_messages(1)
            data, message, arguments, environment = found[0]
            self.assertRegex(message["Subject"], r"^\[Unshelver\] Swift has been failing since \d{4}-\d\d-\d\dT")
            body = message.get_content()
            self.assertIn("Service:  Swift", body)
            self.assertIn("Uploads of events to Swift", body)
            self.assertIn("Nothing is lost", body)
            self.assert_standard_headers(message, arguments)
            self.assert_clean(data, environment)
            self.assertNotIn(PASSWORD.encode(), data)
            self.assertTrue(fake.requests(service="object-store", status=503))
            fake.clear_faults()
            found = self.wait_for_messages(2, timeout=20)
            time.sleep(1)  # nothing more comes
            found = self.messages()
            self.assertEqual([m[1]["Subject"].split("] ", 1)[1].split(" since")[0] for m in found],
                             ["Swift has been failing", "Swift works again"])
            self.assert_clean(found[1][0], found[1][3])
            self.assertNotIn(PASSWORD.encode(), found[1][0])
            self.daemon.stop()
            self.daemon = None
        finally:
            fake.stop()


if __name__ == "__main__":
    unittest.main()
