"""The ops CLI against the real daemon: `unshelver status`, `wake`, `shelve` and `events`.

Each test starts its own daemon on a simulated backend with short durations (harness.sim_config)
and a random control token given through UNSHELVER_CONTROL_TOKEN, as on a controller whose
secrets live in the environment. The CLI runs in an empty working directory (no ./config.yaml)
with an environment scrubbed of UNSHELVER_*, so that every test says exactly where the instance
and the token come from.

The contract (sidecar/cli/client.h, ops_command.h): the token goes as `Authorization: Bearer`;
exit 0 success, 1 not reached / 5xx / the wait failed, 2 usage or configuration (no token anywhere
included), 3 token refused (401/403/429), 4 no such backend (404). The token is never accepted as
an argument and never printed: every CLI run and, at the end, the daemon's output and event log
are searched for it.

UNSHELVER_TEST_SLOWDOWN scales every timeout (3 by default for a sanitizer build).
"""
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import BINARY, LoopbackServer, QuietHandler, Unshelver, free_port, sim_config  # noqa: E402

SLOW = float(os.environ.get("UNSHELVER_TEST_SLOWDOWN", "3" if "asan" in BINARY.lower() else "1"))
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REFUSED, EXIT_UNKNOWN_BACKEND = 0, 1, 2, 3, 4
# Long enough that the backend never goes to sleep by itself during a test.
IDLE_SECONDS = 600


def replace_once(text, old, new):
    """str.replace that insists `old` is there exactly once (harness.sim_config may change)."""
    if text.count(old) != 1:
        raise AssertionError(f"harness.sim_config changed: {old!r} found {text.count(old)} times")
    return text.replace(old, new)


def clean_environment():
    """This process's environment without anything that would tell the CLI where to go."""
    env = dict(os.environ)
    for name in list(env):
        if name.startswith("UNSHELVER_") and name not in ("UNSHELVER_BIN", "UNSHELVER_SOURCE_DIR"):
            del env[name]
    # Sanitizer reports must fail the run rather than scroll by.
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
    return env


class CliTestCase(unittest.TestCase):
    # Changes to the generated config, as (old, new) replacements; see test_wait_* below.
    SIM_CHANGES = ()
    # False: the daemon runs without a control token (its control surface is off).
    DAEMON_HAS_TOKEN = True

    def setUp(self):
        self.token = secrets.token_urlsafe(36)  # 48 characters
        self.workdir = tempfile.mkdtemp(prefix="unshelver-cli-")
        self.addCleanup(shutil.rmtree, self.workdir, True)
        # The CLI's working directory: empty, so no ./config.yaml is found by accident.
        self.cli_cwd = os.path.join(self.workdir, "cwd")
        os.mkdir(self.cli_cwd)
        port = free_port()
        config = sim_config(os.path.join(self.workdir, "state"), port, idle_seconds=IDLE_SECONDS)
        for old, new in self.SIM_CHANGES:
            config = replace_once(config, old, new)
        daemon_env = clean_environment()
        if self.DAEMON_HAS_TOKEN:
            daemon_env["UNSHELVER_CONTROL_TOKEN"] = self.token
        daemon_env["UNSHELVER_SECRET_KEY"] = secrets.token_urlsafe(36)
        daemon_dir = os.path.join(self.workdir, "daemon")
        os.mkdir(daemon_dir)
        self.daemon = Unshelver(config_text=config, workdir=daemon_dir, port=port, env=daemon_env)
        self.daemon.start()
        self.addCleanup(self.stop_daemon)
        self.base_url = f"http://127.0.0.1:{port}"
        self.wait_for_first_observation()

    def stop_daemon(self):
        self.daemon.stop()
        output = self.daemon.output()
        self.assertNotIn(self.token, output, "the daemon's output shows the control token")
        events_log = os.path.join(self.workdir, "state", "events.jsonl")
        if os.path.exists(events_log):
            with open(events_log, encoding="utf-8", errors="replace") as log:
                self.assertNotIn(self.token, log.read(), "the event log holds the control token")

    def wait_for_first_observation(self):
        # The harness asks as a local client, without the token.
        self.daemon.wait_until(lambda: self.daemon.backend()["state"] != "unknown", 10 * SLOW,
                               "the first observation of the backend")

    # ------------------------------------------------------------------------------------------

    def cli(self, *args, token_env=True, extra_env=None, timeout=60):
        """Runs the CLI; checks that the token shows nowhere in what it printed."""
        env = clean_environment()
        if token_env:
            env["UNSHELVER_CONTROL_TOKEN"] = self.token
        env.update(extra_env or {})
        result = subprocess.run([BINARY, *args], capture_output=True, text=True, env=env, cwd=self.cli_cwd,
                                timeout=timeout * SLOW)
        for stream, text in (("stdout", result.stdout), ("stderr", result.stderr)):
            self.assertNotIn(self.token, text, f"`unshelver {' '.join(args)}` printed the token on {stream}")
        return result

    def assert_exit(self, result, code, what=""):
        self.assertEqual(result.returncode, code,
                         f"{what}: exit {result.returncode}, expected {code}\nstdout:\n{result.stdout}\n"
                         f"stderr:\n{result.stderr}")

    def token_file(self, content):
        path = os.path.join(self.workdir, f"token-{secrets.token_hex(4)}")
        with open(path, "w") as token_file:
            token_file.write(content)
        os.chmod(path, 0o600)
        return path

    def state(self):
        result = self.cli("status", "--json", "--url", self.base_url)
        self.assert_exit(result, EXIT_OK, "status --json")
        return json.loads(result.stdout)["backends"][0]["state"]


class StatusTest(CliTestCase):
    def test_status_for_people(self):
        # The token from the environment, the address from the config's `listen`.
        result = self.cli("status", "--config", self.daemon.config_path)
        self.assert_exit(result, EXIT_OK, "status")
        out = result.stdout
        self.assertIn("Integration test", out)
        self.assertIn("gpu (Test GPU)", out)
        for label in ("state", "desired", "last activity", "asleep since"):
            self.assertIn(label, out)
        self.assertIn("events:", out)
        self.assertEqual(result.stderr, "")

    def test_status_for_people_after_a_wake(self):
        self.assert_exit(self.cli("wake", "gpu", "--wait", str(int(30 * SLOW)), "--url", self.base_url), EXIT_OK,
                         "wake --wait")
        result = self.cli("status", "--url", self.base_url)
        self.assert_exit(result, EXIT_OK, "status")
        self.assertIn("ready since", result.stdout)
        self.assertIn("idle shutdown", result.stdout)   # time left until the idle shutdown
        self.assertIn("upstream", result.stdout)

    def test_status_json_is_the_servers_document(self):
        # --url and a token: no configuration needed (the working directory has none).
        result = self.cli("status", "--json", "--url", self.base_url + "/")
        self.assert_exit(result, EXIT_OK, "status --json")
        document = json.loads(result.stdout)
        self.assertIn("revision", document)
        self.assertEqual(document["title"], "Integration test")
        backend = document["backends"][0]
        self.assertEqual(backend["name"], "gpu")
        for key in ("label", "state", "since", "desired", "last_activity", "idle_deadline", "url", "upstream", "error"):
            self.assertIn(key, backend)
        self.assertIn("events", document)
        self.assertIn("caddy", document)

    def test_output_that_cannot_be_written_is_a_failure(self):
        # /dev/full refuses every write (ENOSPC): the status document is lost, so the exit code
        # must say so (cli/main.cc checks stdout once at exit), for --help as for status.
        env = clean_environment()
        env["UNSHELVER_CONTROL_TOKEN"] = self.token
        for args in (["status", "--json", "--url", self.base_url], ["--help"]):
            with open("/dev/full", "w") as full:
                result = subprocess.run([BINARY, *args], stdout=full, stderr=subprocess.PIPE, text=True,
                                        env=env, cwd=self.cli_cwd, timeout=60 * SLOW)
            self.assertEqual(result.returncode, 1, f"unshelver {' '.join(args)} > /dev/full: {result.stderr}")
            self.assertIn("writing the output failed: No space left on device", result.stderr)
            self.assertNotIn(self.token, result.stderr)

    def test_url_from_the_environment(self):
        result = self.cli("status", "--json", extra_env={"UNSHELVER_URL": self.base_url})
        self.assert_exit(result, EXIT_OK, "status with $UNSHELVER_URL")
        self.assertEqual(json.loads(result.stdout)["backends"][0]["name"], "gpu")

    def test_token_from_a_file(self):
        path = self.token_file(f"  {self.token}  \n# the first line only\n")
        result = self.cli("status", "--url", self.base_url, "--token-file", path, token_env=False)
        self.assert_exit(result, EXIT_OK, "status --token-file")


class ActionTest(CliTestCase):
    def test_wake_wait_reaches_ready_then_shelve_wait_reaches_asleep(self):
        result = self.cli("wake", "gpu", "--wait", "--url", self.base_url)
        self.assert_exit(result, EXIT_OK, "wake --wait")
        self.assertIn("wake requested", result.stdout)
        self.assertIn("gpu is ready", result.stdout)
        self.assertEqual(self.state(), "ready")

        # Awake already: 202 with already=true, and the answer as one JSON document.
        result = self.cli("wake", "gpu", "--json", "--url", self.base_url)
        self.assert_exit(result, EXIT_OK, "wake --json")
        answer = json.loads(result.stdout)
        self.assertEqual((answer["backend"], answer["already"], answer["state"]), ("gpu", True, "ready"))

        result = self.cli("shelve", "gpu", "--wait", str(int(30 * SLOW)), "--json", "--url", self.base_url)
        self.assert_exit(result, EXIT_OK, "shelve --wait --json")
        answer = json.loads(result.stdout)
        self.assertEqual((answer["backend"], answer["accepted"]), ("gpu", True))
        self.assertEqual(answer["wait"]["outcome"], "asleep")
        self.assertEqual(answer["wait"]["state"], "asleep")
        self.assertEqual(self.state(), "asleep")

    def test_wake_without_wait_returns_at_once(self):
        result = self.cli("wake", "gpu", "--json", "--url", self.base_url)
        self.assert_exit(result, EXIT_OK, "wake --json")
        answer = json.loads(result.stdout)
        self.assertEqual((answer["backend"], answer["accepted"], answer["already"]), ("gpu", True, False))
        self.assertNotIn("wait", answer)

    def test_unknown_backend(self):
        for command in (["wake", "no-such-backend"], ["shelve", "no-such-backend", "--wait", "5"]):
            result = self.cli(*command, "--url", self.base_url)
            self.assert_exit(result, EXIT_UNKNOWN_BACKEND, " ".join(command))
            self.assertIn("no-such-backend", result.stderr)


class WaitTimeoutTest(CliTestCase):
    SIM_CHANGES = (("wake_seconds: 0.4", "wake_seconds: 300"),)

    def test_wait_gives_up_after_its_seconds(self):
        started = time.monotonic()
        result = self.cli("wake", "gpu", "--wait", "2", "--json", "--url", self.base_url)
        self.assert_exit(result, EXIT_FAILED, "wake --wait 2")
        self.assertLess(time.monotonic() - started, 20 * SLOW)
        self.assertIn("not ready after 2 s", result.stderr)
        self.assertEqual(json.loads(result.stdout)["wait"]["outcome"], "timeout")


class WaitErrorTest(CliTestCase):
    SIM_CHANGES = (("      sleep_seconds: 0.3\n",
                    "      sleep_seconds: 0.3\n      fail_wakes: 1\n      failure_message: No valid host (test)\n"),)

    def test_wait_ends_with_the_backends_error(self):
        result = self.cli("wake", "gpu", "--wait", str(int(30 * SLOW)), "--url", self.base_url)
        self.assert_exit(result, EXIT_FAILED, "wake --wait with a failing wake")
        self.assertIn("No valid host (test)", result.stderr)
        # The next wake succeeds; one found in error a moment ago is not mistaken for a failure.
        result = self.cli("wake", "gpu", "--wait", str(int(30 * SLOW)), "--url", self.base_url)
        self.assert_exit(result, EXIT_OK, "the second wake --wait")


class AuthenticationTest(CliTestCase):
    def test_wrong_token_is_refused_with_exit_3(self):
        wrong = self.token_file(secrets.token_urlsafe(36) + "\n")
        with open(wrong) as token_file:
            wrong_token = token_file.read().strip()
        for command in (["status"], ["wake", "gpu"], ["shelve", "gpu"], ["events"]):
            result = self.cli(*command, "--url", self.base_url, "--token-file", wrong)
            self.assert_exit(result, EXIT_REFUSED, " ".join(command) + " with a wrong token")
            self.assertIn("refuse", result.stderr)
            self.assertNotIn(wrong_token, result.stdout + result.stderr)
        # The token file wins over the environment, whose token is right.
        self.assertEqual(self.state(), "asleep", "a refused wake woke the backend")
        self.assertNotIn(wrong_token, self.daemon.output())

    def test_many_wrong_tokens_end_in_429_with_retry_after(self):
        wrong = self.token_file(secrets.token_urlsafe(36))
        for _ in range(40):
            result = self.cli("status", "--url", self.base_url, "--token-file", wrong)
            self.assert_exit(result, EXIT_REFUSED, "status with a wrong token")
            if "429" in result.stderr:
                self.assertIn("try again", result.stderr)   # the Retry-After
                return
        self.fail("40 wrong tokens in a row never got 429:\n" + result.stderr)

    def test_no_token_anywhere_is_a_usage_error(self):
        # Neither --token-file, nor $UNSHELVER_CONTROL_TOKEN, nor a configuration. (`status`
        # shows the public view then: StatusWithoutTokenTest.)
        result = self.cli("wake", "gpu", "--url", self.base_url, token_env=False)
        self.assert_exit(result, EXIT_USAGE, "wake without any token")
        self.assertIn("no control token", result.stderr)
        # A configuration without app.control_token (the daemon has its token from the environment).
        for command in (["wake", "gpu"], ["shelve", "gpu"], ["events"]):
            result = self.cli(*command, "--config", self.daemon.config_path, token_env=False)
            self.assert_exit(result, EXIT_USAGE, " ".join(command) + " without any token")
            self.assertIn("no control token", result.stderr)
        self.assertEqual(self.state(), "asleep")

    def test_token_is_never_an_argument(self):
        for args in (["--token", self.token], [f"--token={self.token}"], [self.token]):
            result = self.cli("status", "--url", self.base_url, *args)
            self.assert_exit(result, EXIT_USAGE, "status with the token as an argument")
        result = self.cli("status", "--help")
        self.assert_exit(result, EXIT_OK, "status --help")
        self.assertIn("ps", result.stdout)   # says why

    def test_unusable_token_files(self):
        missing = os.path.join(self.workdir, "no-such-token-file")
        empty = self.token_file("\n")
        for path, why in ((missing, "cannot read"), (empty, "empty")):
            result = self.cli("wake", "gpu", "--url", self.base_url, "--token-file", path)
            self.assert_exit(result, EXIT_USAGE, f"wake with token file {path}")
            self.assertIn(why, result.stderr)


class ForwardingProxy(LoopbackServer):
    """A loopback reverse proxy that adds X-Forwarded-For, as Caddy does: the daemon then sees a
    remote client, which gets the public view of /api/status without a token."""

    def __init__(self, target):
        class Handler(QuietHandler):
            def do_GET(self):
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                headers["X-Forwarded-For"] = "203.0.113.7"
                request = urllib.request.Request(target + self.path, headers=headers)
                try:
                    with urllib.request.urlopen(request, timeout=10) as answer:
                        status, answer_headers, body = answer.status, answer.headers, answer.read()
                except urllib.error.HTTPError as error:
                    status, answer_headers, body = error.code, error.headers, error.read()
                self.reply(status, answer_headers.get("Content-Type", "text/plain"), body)

        super().__init__(Handler)


class StatusWithoutTokenTest(CliTestCase):
    """`unshelver status` without a token shows the public view and says so; with the token the
    full view. A client on the daemon's own machine gets the full view anyway, and is told why."""

    def setUp(self):
        super().setUp()
        self.proxy = ForwardingProxy(self.base_url)
        self.addCleanup(self.proxy.stop)

    def test_public_view_without_a_token_full_view_with_it(self):
        result = self.cli("status", "--url", self.proxy.url, token_env=False)
        self.assert_exit(result, EXIT_OK, "status without a token from a remote client")
        out = result.stdout
        self.assertIn("public view; give --token-file for the full view", out)
        self.assertIn("gpu (Test GPU)", out)
        self.assertIn("asleep since", out)
        for admin_only in ("upstream", "cloud ", "events:"):
            self.assertNotIn(admin_only, out, f"the public view shows {admin_only!r}")

        result = self.cli("status", "--json", "--url", self.proxy.url, token_env=False)
        self.assert_exit(result, EXIT_OK, "status --json without a token")
        self.assertIn("public view", result.stderr)
        backend = json.loads(result.stdout)["backends"][0]
        self.assertEqual((backend["name"], backend["state"], backend["state_label"]), ("gpu", "asleep", "Asleep"))
        self.assertNotIn("upstream", backend)

        path = self.token_file(self.token + "\n")
        result = self.cli("status", "--url", self.proxy.url, "--token-file", path, token_env=False)
        self.assert_exit(result, EXIT_OK, "status with a token from a remote client")
        self.assertNotIn("public view", result.stdout)
        self.assertIn("upstream", result.stdout)
        self.assertIn("events:", result.stdout)

    def test_local_client_without_a_token_is_told_it_sees_the_full_view(self):
        # What `build/unshelver status --url http://127.0.0.1:PORT` shows in the demo.
        result = self.cli("status", "--url", self.base_url, token_env=False)
        self.assert_exit(result, EXIT_OK, "status without a token from the daemon's machine")
        self.assertIn("full view without a token: this instance shows it to clients on its own machine",
                      result.stdout)
        self.assertIn("upstream", result.stdout)
        # A configuration that names no token: the public (here: local) view too, not an error.
        result = self.cli("status", "--config", self.daemon.config_path, token_env=False)
        self.assert_exit(result, EXIT_OK, "status with a configuration without a token")
        self.assertIn("without a token", result.stdout)


class ControlSurfaceOffTest(CliTestCase):
    DAEMON_HAS_TOKEN = False

    def test_an_instance_without_a_token_refuses_with_exit_3(self):
        for command in (["wake", "gpu"], ["shelve", "gpu"], ["events"]):
            result = self.cli(*command, "--url", self.base_url)
            self.assert_exit(result, EXIT_REFUSED, " ".join(command) + " to an instance without a control token")
            self.assertIn("403", result.stderr)
            self.assertIn("no control token is configured", result.stderr)   # the server's own words
        self.assertEqual(self.daemon.backend()["state"], "asleep")


class ReachabilityAndUsageTest(CliTestCase):
    def test_unreachable_instance(self):
        nobody = f"http://127.0.0.1:{free_port()}"
        for command in (["status"], ["wake", "gpu"], ["shelve", "gpu", "--wait", "3"], ["events"]):
            result = self.cli(*command, "--url", nobody)
            self.assert_exit(result, EXIT_FAILED, " ".join(command) + " to an unreachable instance")
            self.assertIn("cannot reach", result.stderr)

    def test_usage_errors(self):
        cases = [
            ["status", "--bogus"],
            ["status", "extra"],
            ["wake"],
            ["wake", "--wait", "30"],             # SECONDS, but no NAME
            ["wake", "gpu", "other"],
            ["wake", "gpu", "--wait", "0"],
            ["wake", "gpu", "--wait=soon"],
            ["shelve", "gpu", "--url"],
            ["shelve", "gpu", "--url", "ftp://127.0.0.1/"],
            ["events", "--limit", "0"],
            ["events", "--bogus"],
        ]
        for args in cases:
            result = self.cli(*args)
            self.assert_exit(result, EXIT_USAGE, " ".join(args))
            self.assertNotEqual(result.stderr, "")
        self.assertEqual(self.state(), "asleep")

    def test_help(self):
        for command in ("status", "wake", "shelve", "events"):
            result = self.cli(command, "--help", token_env=False)
            self.assert_exit(result, EXIT_OK, f"{command} --help")
            self.assertIn(f"unshelver {command}", result.stdout)
            self.assertIn("--token-file", result.stdout)
            for code in ("0  success", "2  usage", "3  the instance refused", "4  no such backend"):
                self.assertIn(code, result.stdout)
        result = self.cli("--help", token_env=False)
        self.assert_exit(result, EXIT_OK, "--help")
        for command in ("status", "wake NAME", "shelve NAME", "events"):
            self.assertIn(f"unshelver {command}", result.stdout)


class EventsTest(CliTestCase):
    def test_events_sends_the_token(self):
        self.assert_exit(self.cli("wake", "gpu", "--wait", str(int(30 * SLOW)), "--url", self.base_url), EXIT_OK,
                         "wake --wait")
        result = self.cli("events", "--json", "--config", self.daemon.config_path)
        self.assert_exit(result, EXIT_OK, "events --json")
        records = [json.loads(line) for line in result.stdout.splitlines()]
        actions = [record["action"] for record in records]
        self.assertIn("unshelve_requested", actions)
        self.assertIn("unshelve_complete", actions)

        result = self.cli("events", "--backend", "gpu", "--limit", "2", "--url", self.base_url)
        self.assert_exit(result, EXIT_OK, "events --backend --limit")
        self.assertEqual(len(result.stdout.splitlines()), 2)

    def test_events_local_needs_no_token(self):
        self.assert_exit(self.cli("wake", "gpu", "--wait", str(int(30 * SLOW)), "--url", self.base_url), EXIT_OK,
                         "wake --wait")
        result = self.cli("events", "--local", "--json", "--config", self.daemon.config_path, token_env=False)
        self.assert_exit(result, EXIT_OK, "events --local")
        self.assertIn("unshelve_complete", [json.loads(line)["action"] for line in result.stdout.splitlines()])

    def test_events_local_reads_the_newest_rotated_file_too_and_keeps_the_newest(self):
        self.assert_exit(self.cli("wake", "gpu", "--wait", str(int(30 * SLOW)), "--url", self.base_url), EXIT_OK,
                         "wake --wait")
        with open(os.path.join(self.workdir, "state", "events.jsonl"), encoding="utf-8") as log:
            written = [json.loads(line) for line in log if line.endswith("\n")]
        gpu = [record for record in written if record.get("backend") == "gpu"]
        self.assertGreaterEqual(len(gpu), 3, written)
        # A log just rotated: .1 holds all but the newest record, the current file that one, and
        # an older .2 (never read: the recent past is the current file and .1) a record of its own.
        local = os.path.join(self.workdir, "local")
        os.mkdir(local)
        log_path = os.path.join(local, "events.jsonl")

        def write(path, records, torn_tail=""):
            with open(path, "w", encoding="utf-8") as out:
                out.writelines(json.dumps(record) + "\n" for record in records)
                out.write(torn_tail)

        write(log_path + ".2", [dict(written[0], seq=1, detail="from .2")])
        write(log_path + ".1", written[:-1])
        # A last line without its newline is a write in progress: not an event yet.
        write(log_path, written[-1:], torn_tail=json.dumps(dict(written[-1], seq=999999))[:40])
        config = os.path.join(self.workdir, "local.yaml")
        with open(self.daemon.config_path, encoding="utf-8") as original, open(config, "w", encoding="utf-8") as copy:
            copy.write(f"local_event_log: {log_path}\n" + original.read())

        result = self.cli("events", "--local", "--json", "--backend", "gpu", "--limit", "3", "--config", config,
                          token_env=False)
        self.assert_exit(result, EXIT_OK, "events --local --limit 3")
        shown = [json.loads(line) for line in result.stdout.splitlines()]
        self.assertEqual([record["seq"] for record in shown], [record["seq"] for record in gpu[-3:]], result.stdout)

        result = self.cli("events", "--local", "--json", "--limit", "1000", "--config", config, token_env=False)
        self.assert_exit(result, EXIT_OK, "events --local --limit 1000")
        self.assertEqual([json.loads(line)["seq"] for line in result.stdout.splitlines()],
                         [record["seq"] for record in written if record.get("seq")], result.stdout)

        os.remove(log_path)
        result = self.cli("events", "--local", "--config", config, token_env=False)
        self.assert_exit(result, EXIT_FAILED, "events --local without a log")
        self.assertIn("local_event_log", result.stderr)
        self.assertIn(log_path, result.stderr)


if __name__ == "__main__":
    unittest.main()
