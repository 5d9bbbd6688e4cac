"""The Debian package (scripts/package) and the service it installs.

Builds the .deb from the binary under test (it does not rebuild the tree), then checks:
  - its contents and control data (dpkg-deb -c / -I), Depends from dpkg-shlibdeps;
  - lintian: any error fails, and so does any warning not listed in ACCEPTED_WARNINGS;
  - the man page renders without a groff warning, and names every option of --help;
  - dpkg installs it into a throwaway root (dpkg --root, maintainer scripts run chrootless with
    DPKG_ROOT): the system user is made there, `systemd-analyze verify` accepts the unit, and a
    purge removes it again;
  - the installed binary, run as the unit runs it (Type=notify) beside a datagram socket standing
    in for systemd's NOTIFY_SOCKET, with WATCHDOG_USEC: READY=1 once /healthz answers and every
    backend is observed, WATCHDOG=1 while the loop turns and none while the process is stopped
    (SIGSTOP: systemd would restart it), RELOADING=1 then READY=1 on SIGHUP, STOPPING=1 and exit 0
    on SIGTERM, and with log_format: json every log line is one JSON object;
  - under a real systemd: a throwaway Debian 12 (scripts/setup container makes its root once)
    boots in systemd-nspawn with systemd as its PID 1 and only a loopback network; inside it
    `apt install ./unshelver_*.deb` installs without starting anything, `systemctl enable --now`
    starts the installed configuration as it is (READY=1 reached, /healthz answers, in-flight
    detection works under the unit's sandbox), `systemctl reload` applies an edited configuration
    in the same process, a stopped loop is killed by the watchdog and restarted, `systemctl stop`
    ends it cleanly, and a purge removes it.
"""
import glob
import gzip
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request

from harness import ADMIN, BINARY, SOURCE_DIR, free_port, poll, require_peer, sim_config

PACKAGE_TOOLS = ("dpkg-deb", "dpkg-shlibdeps", "lintian", "groff", "systemd-analyze", "systemd-sysusers")
MISSING_TOOLS = [tool for tool in PACKAGE_TOOLS if shutil.which(tool) is None]

# lintian warnings that this package accepts, with the reason. Anything else fails the test.
ACCEPTED_WARNINGS = {
    # scripts/package is dpkg-deb, not dpkg-buildpackage: the package has no source package and
    # its changelog is generated with a placeholder entry.
    "initial-upload-closes-no-bugs": "not uploaded to Debian",
}

NOTIFY_WAIT = 20.0


def run(args, **kwargs):
    return subprocess.run(args, capture_output=True, text=True, timeout=120, **kwargs)


def package(prefix):
    """scripts/package on the binary under test, into a new temporary folder: (folder, .deb)."""
    workdir = tempfile.mkdtemp(prefix=prefix)
    result = run([os.path.join(SOURCE_DIR, "scripts/package"), os.path.dirname(BINARY), workdir])
    if result.returncode != 0:
        raise AssertionError(f"scripts/package failed ({result.returncode}):\n{result.stderr}")
    return workdir, result.stdout.strip().splitlines()[-1]


@require_peer(not MISSING_TOOLS, " and ".join(MISSING_TOOLS) or "dpkg-dev")
class PackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.workdir, cls.deb = package("unshelver-package-")
        cls.root = os.path.join(cls.workdir, "root")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.workdir, ignore_errors=True)

    def test_name_contents_and_control(self):
        version = run([BINARY, "--version"]).stdout.split()[-1]
        arch = run(["dpkg", "--print-architecture"]).stdout.strip()
        self.assertEqual(f"unshelver_{version}-1_{arch}.deb", os.path.basename(self.deb))
        listing = run(["dpkg-deb", "-c", self.deb]).stdout
        for path in ("./usr/bin/unshelver", "./lib/systemd/system/unshelver.service",
                     "./usr/lib/sysusers.d/unshelver.conf", "./etc/unshelver/config.yaml",
                     "./usr/share/man/man8/unshelver.8.gz", "./usr/share/doc/unshelver/copyright",
                     "./usr/share/doc/unshelver/changelog.Debian.gz",
                     "./usr/share/doc/unshelver/examples/config.example.yaml",
                     "./usr/share/doc/unshelver/examples/secrets.example.ini"):
            self.assertRegex(listing, re.escape(path) + r"\n", path)
        for line in listing.splitlines():
            self.assertIn(" root/root ", line, "every file belongs to root")
        control = run(["dpkg-deb", "-f", self.deb]).stdout
        self.assertRegex(control, r"(?m)^Package: unshelver$")
        depends = re.search(r"(?m)^Depends: (.*)$", control).group(1)
        for library in ("libc6", "libuv1", "libcurl4", "libyaml-cpp", "libspdlog"):
            self.assertIn(library, depends)
        self.assertIn("systemd", depends)
        # The unit's SupplementaryGroups=caddy needs the group Debian's caddy makes.
        self.assertRegex(depends, r"(^|, )caddy($|,)")
        # ExecReload's /bin/kill comes from procps, which is not essential (a minimal image lacks it).
        self.assertRegex(depends, r"(^|, )procps($|,)")
        conffiles = run(["dpkg-deb", "-I", self.deb, "conffiles"]).stdout
        self.assertEqual("/etc/unshelver/config.yaml\n", conffiles)
        for script in ("postinst", "prerm", "postrm"):
            text = run(["dpkg-deb", "-I", self.deb, script]).stdout
            self.assertIn("unshelver.service", text, script)

    def test_lintian_is_clean(self):
        result = run(["lintian", "--tag-display-limit", "0", self.deb])
        tags = [line for line in result.stdout.splitlines() if re.match(r"^[EW]: ", line)]
        errors = [line for line in tags if line.startswith("E: ")]
        self.assertEqual([], errors, result.stdout)
        unexpected = [line for line in tags
                      if line.startswith("W: ") and line.split()[2] not in ACCEPTED_WARNINGS]
        self.assertEqual([], unexpected, result.stdout)

    def test_man_page_renders_cleanly_and_names_every_option(self):
        extracted = os.path.join(self.workdir, "man")
        run(["dpkg-deb", "-x", self.deb, extracted])
        with gzip.open(os.path.join(extracted, "usr/share/man/man8/unshelver.8.gz"), "rt") as page:
            roff = page.read()
        checked = run(["groff", "-man", "-ww", "-z"], input=roff)
        self.assertEqual(0, checked.returncode, checked.stderr)
        self.assertEqual("", checked.stderr)
        rendered = run(["groff", "-man", "-Tutf8", "-P-cbu"], input=roff, env={**os.environ, "LC_ALL": "C.UTF-8"})
        self.assertEqual("", rendered.stderr)
        # groff writes "\-" as U+2212 on a UTF-8 terminal; compare options as typed.
        text = rendered.stdout.replace("\u2212", "-").replace("\u2010", "-")
        text = re.sub(r"-\n\s*", "-", text)  # an option broken across lines
        usage = run([BINARY, "--help"]).stdout
        for option in sorted(set(re.findall(r"--[a-z][a-z-]*", usage))):
            self.assertIn(option, text, f"{option} of --help is missing from unshelver(8)")

    def install_into_root(self):
        """dpkg --root: the package database and the maintainer scripts act on the throwaway root."""
        shutil.rmtree(self.root, ignore_errors=True)
        for folder in ("var/lib/dpkg/info", "var/lib/dpkg/updates", "etc", "var/log"):
            os.makedirs(os.path.join(self.root, folder), exist_ok=True)
        open(os.path.join(self.root, "var/lib/dpkg/status"), "w").close()
        dpkg = ["dpkg", f"--root={self.root}", "--force-script-chrootless", "--force-depends",
                "--force-not-root", f"--log={self.workdir}/dpkg.log"]
        return dpkg, run(dpkg + ["--install", self.deb])

    def test_installs_into_a_root_and_purges(self):
        dpkg, installed = self.install_into_root()
        self.assertEqual(0, installed.returncode, installed.stdout + installed.stderr)
        with open(os.path.join(self.root, "etc/passwd")) as passwd:
            users = {line.split(":")[0]: line.strip().split(":") for line in passwd if line.strip()}
        self.assertIn("unshelver", users, "postinst made the system user (sysusers.d)")
        self.assertLess(int(users["unshelver"][2]), 1000, "a system user's id")
        self.assertEqual("/var/lib/unshelver", users["unshelver"][5])
        self.assertTrue(os.access(os.path.join(self.root, "usr/bin/unshelver"), os.X_OK))
        status = run(dpkg + ["--status", "unshelver"]).stdout
        self.assertIn("Status: install ok installed", status)
        self.assertIn("/etc/unshelver/config.yaml", status)  # recorded as a conffile

        # systemd-analyze verify needs the units the service names and its ExecReload's kill in the root.
        units = os.path.join(self.root, "lib/systemd/system")
        for target in glob.glob("/lib/systemd/system/*.target"):
            shutil.copy(target, units)
        os.makedirs(os.path.join(self.root, "bin"), exist_ok=True)
        shutil.copy(shutil.which("kill") or "/bin/kill", os.path.join(self.root, "bin/kill"))
        verified = run(["systemd-analyze", "verify", f"--root={self.root}", "unshelver.service"])
        self.assertEqual(0, verified.returncode, verified.stdout + verified.stderr)
        self.assertEqual("", verified.stderr.strip())

        # The secrets postinst drew: 0600 for the service's user, as production requires.
        secrets = os.path.join(self.root, "etc/unshelver/secrets.ini")
        info = os.stat(secrets)
        self.assertEqual(0o600, info.st_mode & 0o777)
        self.assertEqual(int(users["unshelver"][2]), info.st_uid)
        with open(secrets) as drawn:
            values = dict(re.findall(r"(?m)^(\w+) = ([0-9a-f]+)$", drawn.read()))
        self.assertEqual({"control_token", "secret_key"}, set(values))
        self.assertTrue(all(len(value) == 64 for value in values.values()), values)

        # ExecStartPre's check, on the conffile as installed (its absolute paths moved into the root):
        # `systemctl enable --now unshelver` must start without an edit.
        with open(os.path.join(self.root, "etc/unshelver/config.yaml")) as installed_config:
            text = installed_config.read()
        self.assertIn("env: production", text)
        checked_config = os.path.join(self.workdir, "installed-config.yaml")
        with open(checked_config, "w") as out:
            out.write(text.replace("/etc/unshelver/", os.path.join(self.root, "etc/unshelver/"))
                      .replace("/var/lib/unshelver", os.path.join(self.workdir, "installed-state")))
        checked = run([os.path.join(self.root, "usr/bin/unshelver"), "check-config", "--config", checked_config])
        self.assertEqual(0, checked.returncode, checked.stdout + checked.stderr)
        self.assertIn("valid (1 backend)", checked.stdout + checked.stderr)
        # A reinstall keeps the admin's secrets.
        with open(secrets, "a") as edited:
            edited.write("; kept\n")
        reinstalled = run(dpkg + ["--install", self.deb])
        self.assertEqual(0, reinstalled.returncode, reinstalled.stdout + reinstalled.stderr)
        with open(secrets) as kept:
            self.assertIn("; kept", kept.read())

        purged = run(dpkg + ["--purge", "unshelver"])
        self.assertEqual(0, purged.returncode, purged.stdout + purged.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.root, "usr/bin/unshelver")))
        self.assertFalse(os.path.exists(os.path.join(self.root, "etc/unshelver/config.yaml")))
        self.assertFalse(os.path.exists(secrets))

    def test_runs_as_the_unit_runs_it_under_a_notify_socket(self):
        _, installed = self.install_into_root()
        self.assertEqual(0, installed.returncode, installed.stdout + installed.stderr)
        binary = os.path.join(self.root, "usr/bin/unshelver")
        port = free_port()
        state = os.path.join(self.workdir, "state")
        config_path = os.path.join(self.workdir, "config.yaml")
        with open(config_path, "w") as config:
            config.write(sim_config(state, port, idle_seconds=60, extra_top="log_format: json\n"))
        notify_path = os.path.join(self.workdir, "notify.sock")
        manager = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        manager.bind(notify_path)
        self.addCleanup(manager.close)
        log_path = os.path.join(self.workdir, "service.log")
        watchdog_usec = 400_000  # WATCHDOG=1 every 0.2 s
        env = {**os.environ, "NOTIFY_SOCKET": notify_path, "WATCHDOG_USEC": str(watchdog_usec)}
        with open(log_path, "wb") as log:
            process = subprocess.Popen([binary, "run", "--config", config_path], stdout=log,
                                       stderr=subprocess.STDOUT, env=env)
        self.addCleanup(lambda: process.poll() is None and process.kill())
        received = []  # (monotonic time, message)

        def receive_until(predicate, timeout, what):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                manager.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    message = manager.recv(4096).decode()
                except socket.timeout:
                    break
                received.append((time.monotonic(), message))
                if predicate(message):
                    return message
            raise AssertionError(f"no {what} within {timeout} s; received: {[m for _, m in received]}\n"
                                 + log_text())

        def log_text():
            with open(log_path, errors="replace") as log_file:
                return log_file.read()

        def http_get(path, headers=None):
            request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read()

        ready = receive_until(lambda m: "READY=1" in m.split("\n"), NOTIFY_WAIT, "READY=1")
        # Sent once the server listens and the backend has been observed: both hold already.
        self.assertEqual(200, http_get("/healthz")[0])
        status = json.loads(http_get("/api/status", ADMIN)[1])
        states = [backend["state"] for backend in status["backends"]]
        self.assertTrue(states and "unknown" not in states, states)
        self.assertIn("STATUS=1 backend(s) observed, listening on 127.0.0.1:", ready)

        # The watchdog: several pings while the loop turns.
        start = time.monotonic()
        pings = 0
        while pings < 3:
            receive_until(lambda m: m == "WATCHDOG=1", 5, "WATCHDOG=1")
            pings += 1
        self.assertLess(time.monotonic() - start, 5)

        # A stopped process sends nothing: systemd would kill and restart it at WatchdogSec.
        process.send_signal(signal.SIGSTOP)
        time.sleep(0.1)  # a datagram already on its way
        manager.setblocking(False)
        try:
            while True:
                manager.recv(4096)
        except BlockingIOError:
            pass
        manager.setblocking(True)
        silent = 5 * watchdog_usec / 1e6
        manager.settimeout(silent)
        try:
            message = manager.recv(4096).decode()
            self.fail(f"a stopped process sent {message!r}")
        except socket.timeout:
            pass
        process.send_signal(signal.SIGCONT)
        receive_until(lambda m: m == "WATCHDOG=1", 5, "WATCHDOG=1 after SIGCONT")

        # SIGHUP: RELOADING=1 with the monotonic time, then READY=1 from the reloaded App.
        process.send_signal(signal.SIGHUP)
        reloading = receive_until(lambda m: m.startswith("RELOADING=1"), NOTIFY_WAIT, "RELOADING=1")
        self.assertRegex(reloading, r"^RELOADING=1\nMONOTONIC_USEC=\d+$")
        receive_until(lambda m: "READY=1" in m.split("\n"), NOTIFY_WAIT, "READY=1 after the reload")
        self.assertEqual(200, http_get("/healthz")[0])

        # SIGTERM: STOPPING=1 and a clean exit.
        process.send_signal(signal.SIGTERM)
        stopping = receive_until(lambda m: m.startswith("STOPPING=1"), NOTIFY_WAIT, "STOPPING=1")
        self.assertIn("STATUS=SIGTERM", stopping)
        self.assertEqual(0, process.wait(timeout=15), log_text())

        # log_format: json: every line one object, with time, level and message; the backend's own
        # lines name it.
        with open(log_path) as log:
            lines = [json.loads(line) for line in log if line.strip()]
        self.assertGreater(len(lines), 3)
        for line in lines:
            self.assertRegex(line["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertIn(line["level"], ("trace", "debug", "info", "warning", "error", "critical"))
            self.assertIsInstance(line["message"], str)
        self.assertTrue(any(line.get("backend") == "gpu" for line in lines))


# The Debian 12 root that scripts/setup container makes (debootstrap, with systemd, Caddy and the
# package's dependencies), and the program that boots it.
CONTAINER_ROOT = "/var/cache/unshelver/debian12-systemd"
NSPAWN = shutil.which("systemd-nspawn")
CONTAINER_READY = bool(NSPAWN and shutil.which("nsenter") and shutil.which("curl")
                       and os.path.isfile(os.path.join(CONTAINER_ROOT, ".unshelver-packages")))
BOOT_WAIT = 60.0


class BootedDebian:
    """A throwaway Debian 12 with systemd as its PID 1, in systemd-nspawn (systemd-nspawn(1)).

    The cached root stays untouched: the container runs on an overlay (lower: the root, upper: a
    folder of the test's) that is dropped at the end. --private-network gives it a network namespace
    with nothing but its own loopback, so what it serves is reachable only from inside
    (`nsenter --net`), and nothing it starts can take a port of this machine. --register=no and
    --keep-unit: the machine running the test need not have systemd as its own init."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.merged = os.path.join(workdir, "merged")
        for name in ("upper", "work", "merged"):
            os.makedirs(os.path.join(workdir, name))
        mounted = run(["mount", "-t", "overlay", "overlay", "-o",
                       f"lowerdir={CONTAINER_ROOT},upperdir={workdir}/upper,workdir={workdir}/work", self.merged])
        if mounted.returncode != 0:
            raise AssertionError(f"cannot mount the container's overlay: {mounted.stderr}")
        self.console = open(os.path.join(workdir, "console.log"), "w")
        self.process = None
        try:
            self.boot()
        except BaseException:
            self.close()
            raise

    def boot(self):
        self.process = subprocess.Popen(
            [NSPAWN, "--quiet", "--directory", self.merged, "--boot", "--register=no", "--keep-unit",
             "--private-network", "--console=read-only"],
            stdin=subprocess.DEVNULL, stdout=self.console, stderr=subprocess.STDOUT)
        self.pid = poll(self.init_pid, BOOT_WAIT, interval=0.1)
        if self.pid is None:
            raise AssertionError(f"systemd did not start in the container\n{self.console_text()}")
        # Until the container's systemd has made its private socket, systemctl cannot ask it; then
        # --wait returns once the boot has finished (systemctl(1), is-system-running).
        booted = poll(lambda: self.run("systemctl", "is-system-running", "--wait", timeout=BOOT_WAIT)
                      .stdout.strip() in ("running", "degraded"), BOOT_WAIT, interval=0.2)
        if not booted:
            state = self.run("systemctl", "is-system-running")
            raise AssertionError(f"the container did not boot: {state.stdout}{state.stderr}\n{self.console_text()}")

    def init_pid(self):
        """The container's systemd, as this machine numbers it (systemd-nspawn's child), or None."""
        if self.process.poll() is not None:
            raise AssertionError(f"systemd-nspawn exited with {self.process.returncode}\n{self.console_text()}")
        try:
            with open(f"/proc/{self.process.pid}/task/{self.process.pid}/children") as children:
                pids = children.read().split()
        except OSError:
            return None
        for pid in pids:
            with open(f"/proc/{pid}/comm") as comm:
                if comm.read().strip() == "systemd":
                    return int(pid)
        return None

    def console_text(self):
        self.console.flush()
        with open(self.console.name, errors="replace") as console:
            return console.read()[-3000:]

    def run(self, *args, timeout=120):
        """A command inside the container: its namespaces, its files, its systemd."""
        return subprocess.run(["nsenter", f"--target={self.pid}", "--all", *args],
                              capture_output=True, text=True, timeout=timeout)

    def fetch(self, url):
        """This machine's curl in the container's network namespace (the container has no curl)."""
        result = subprocess.run(["nsenter", f"--target={self.pid}", "--net", "curl", "-sS", "--max-time", "5", url],
                                capture_output=True, text=True, timeout=30)
        return result.stdout if result.returncode == 0 else None

    def unit(self, name, *properties):
        shown = self.run("systemctl", "show", name, "--property=" + ",".join(properties)).stdout
        return dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)

    def journal(self, name):
        return self.run("journalctl", "--unit", name, "--no-pager", "--output=cat").stdout

    def close(self):
        if self.process is not None and self.process.poll() is None:
            # SIGTERM asks the container's systemd to power off (systemd-nspawn(1), --boot).
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.console.close()
        run(["umount", self.merged])
        shutil.rmtree(self.workdir, ignore_errors=True)


@require_peer(not MISSING_TOOLS, " and ".join(MISSING_TOOLS) or "dpkg-dev")
@require_peer(CONTAINER_READY, f"systemd-nspawn (systemd-container), nsenter, curl and the container root {CONTAINER_ROOT} "
                               "(`scripts/setup container` makes it)")
class UnderSystemdTest(unittest.TestCase):
    """The package as an administrator uses it, on a Debian 12 whose init is systemd."""

    @classmethod
    def setUpClass(cls):
        cls.workdir, cls.deb = package("unshelver-systemd-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.workdir, ignore_errors=True)

    def setUp(self):
        self.debian = BootedDebian(os.path.join(self.workdir, "container"))
        self.addCleanup(self.debian.close)

    def wait_for(self, predicate, seconds, what):
        if not poll(predicate, seconds, interval=0.2):
            self.fail(f"{what} within {seconds} s\n{self.debian.journal('unshelver')[-3000:]}")

    def test_installs_starts_reloads_is_watched_and_stops_under_systemd(self):
        debian = self.debian
        name = os.path.basename(self.deb)
        shutil.copy(self.deb, os.path.join(debian.merged, "root", name))
        installed = debian.run("sh", "-c", f"cd /root && DEBIAN_FRONTEND=noninteractive apt-get install -y ./{name}")
        self.assertEqual(0, installed.returncode, installed.stdout[-3000:] + installed.stderr)
        self.assertIn("unshelver", debian.run("getent", "passwd", "unshelver").stdout)
        # dh_installsystemd's scripts for a unit that installing does not start.
        self.assertEqual("disabled", debian.run("systemctl", "is-enabled", "unshelver").stdout.strip())
        self.assertEqual("inactive", debian.run("systemctl", "is-active", "unshelver").stdout.strip())

        # The installed configuration as it is: a demo on the simulated cloud on 127.0.0.1:5001.
        started = debian.run("systemctl", "enable", "--now", "unshelver")
        self.assertEqual(0, started.returncode, started.stderr + debian.journal("unshelver")[-3000:])
        # Type=notify: `systemctl start` returned, so READY=1 came; the status line says why.
        unit = debian.unit("unshelver", "ActiveState", "SubState", "Type", "StatusText", "MainPID", "WatchdogUSec")
        self.assertEqual(("active", "running", "notify"), (unit["ActiveState"], unit["SubState"], unit["Type"]), unit)
        self.assertIn("1 backend(s) observed", unit["StatusText"])
        self.assertEqual("30s", unit["WatchdogUSec"])
        self.assertEqual("ok", (debian.fetch("http://127.0.0.1:5001/healthz") or "").strip())
        status = json.loads(debian.fetch("http://127.0.0.1:5001/api/status"))
        # The in-flight monitor's sock_diag socket is allowed by the unit (RestrictAddressFamilies).
        self.assertTrue(status["activity"]["inflight_detection"], status["activity"])
        self.assertNotIn("cannot be seen", debian.journal("unshelver"))

        # systemctl reload: ExecReload's SIGHUP, the edited configuration applied in the same process.
        edited = debian.run("sed", "-i", 's/^  title: .*/  title: "Reloaded under systemd"/', "/etc/unshelver/config.yaml")
        self.assertEqual(0, edited.returncode, edited.stderr)
        reloaded = debian.run("systemctl", "reload", "unshelver")
        self.assertEqual(0, reloaded.returncode, reloaded.stderr + debian.journal("unshelver")[-3000:])
        self.assertEqual(unit["MainPID"], debian.unit("unshelver", "MainPID")["MainPID"])
        self.wait_for(lambda: "Reloaded under systemd" in (debian.fetch("http://127.0.0.1:5001/") or ""), 10,
                      "the launcher shows the reloaded title")

        # The watchdog: a loop that stops turning is killed and the service restarted. A drop-in
        # shortens WatchdogSec (30 s in the unit) and the abort's grace; SIGSTOP holds the loop.
        dropin = os.path.join(debian.merged, "etc/systemd/system/unshelver.service.d")
        os.makedirs(dropin)
        with open(os.path.join(dropin, "watchdog.conf"), "w") as conf:
            conf.write("[Service]\nWatchdogSec=2s\nTimeoutAbortSec=2s\nRestartSec=1s\n")
        self.assertEqual(0, debian.run("systemctl", "daemon-reload").returncode)
        self.assertEqual(0, debian.run("systemctl", "restart", "unshelver").returncode)
        stuck = debian.unit("unshelver", "MainPID")["MainPID"]
        self.assertEqual(0, debian.run("kill", "-STOP", stuck).returncode)
        self.wait_for(lambda: (lambda u: u["ActiveState"] == "active" and u["MainPID"] not in ("0", stuck))(
            debian.unit("unshelver", "ActiveState", "MainPID")), 30, "the watchdog restarted the stopped service")
        self.assertGreaterEqual(int(debian.unit("unshelver", "NRestarts")["NRestarts"]), 1)
        self.assertIn("Watchdog timeout", debian.run("journalctl", "--no-pager", "--output=cat").stdout)

        # systemctl stop: SIGTERM, requests in flight finish, exit 0.
        stopped = debian.run("systemctl", "stop", "unshelver")
        self.assertEqual(0, stopped.returncode, stopped.stderr)
        unit = debian.unit("unshelver", "ActiveState", "Result", "ExecMainStatus")
        self.assertEqual(("inactive", "success", "0"), (unit["ActiveState"], unit["Result"], unit["ExecMainStatus"]), unit)

        purged = debian.run("sh", "-c", "DEBIAN_FRONTEND=noninteractive apt-get purge -y unshelver")
        self.assertEqual(0, purged.returncode, purged.stdout[-3000:] + purged.stderr)
        for path in ("usr/bin/unshelver", "etc/unshelver/config.yaml", "lib/systemd/system/unshelver.service"):
            self.assertFalse(os.path.exists(os.path.join(debian.merged, path)), path)


if __name__ == "__main__":
    unittest.main()
