"""Runs Debian's real Caddy on loopback for integration tests, and a fake backend behind it.

Caddy gets its own admin port, HTTP port, XDG directories and access log in the test's
directory; it is stopped by PID at the end. Tests that need Caddy are marked
@require_peer(CADDY, "caddy") (harness.py): they fail when the `caddy` binary is not installed
(scripts/setup test-tools installs it), or skip with UNSHELVER_ALLOW_MISSING_PEERS=1.
"""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from harness import free_port

CADDY = shutil.which("caddy")
HERE = os.path.dirname(os.path.abspath(__file__))


def wait_for_http(url, timeout=10, process=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{url}: the process exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{url} did not answer within {timeout} s")


class FakeBackend:
    def __init__(self):
        self.port = free_port()
        self.process = subprocess.Popen([sys.executable, os.path.join(HERE, "fake_backend.py"), str(self.port)])
        wait_for_http(f"http://127.0.0.1:{self.port}/health", process=self.process)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a Unix socket. Caddy's admin API there allows only an empty Host header."""

    def __init__(self, path, timeout=5):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


class CaddyProcess:
    """One `caddy run` on loopback, with its state in the test's directory, stopped by PID."""

    admin_socket = None  # the admin API's Unix socket, when it is not on admin_port

    def run(self, caddyfile):
        env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(self.workdir, "xdg"),
                   XDG_DATA_HOME=os.path.join(self.workdir, "xdg"))
        self.output = open(os.path.join(self.workdir, "caddy.out"), "wb")
        # The umask of the documented production setup (caddy/examples/systemd): the admin socket
        # gets mode 0770, so Caddy's group (Unshelver's supplementary group) may connect.
        self.process = subprocess.Popen([CADDY, "run", "--config", caddyfile, "--adapter", "caddyfile"],
                                        stdout=self.output, stderr=subprocess.STDOUT, env=env,
                                        preexec_fn=(lambda: os.umask(0o007)) if self.admin_socket else None)
        if self.admin_socket:
            deadline = time.monotonic() + 10
            while self.admin_request("GET", "/config/", tolerate_errors=True) is None:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"Caddy's admin socket {self.admin_socket} did not answer")
                time.sleep(0.05)
        else:
            wait_for_http(f"http://127.0.0.1:{self.admin_port}/config/", process=self.process)

    @property
    def admin_url(self):
        """caddy.admin for Unshelver."""
        return f"unix/{self.admin_socket}" if self.admin_socket else f"http://127.0.0.1:{self.admin_port}"

    @property
    def admin_listen(self):
        """Caddy's `admin` global option."""
        return f"unix/{self.admin_socket}" if self.admin_socket else f"127.0.0.1:{self.admin_port}"

    def admin_request(self, method, path, body=None, headers=None, tolerate_errors=False):
        """(status, body) from the admin API, over TCP or through the socket."""
        if self.admin_socket:
            connection = UnixHTTPConnection(self.admin_socket)
            headers = {"Host": "", **(headers or {})}
        else:
            connection = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=5)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.read()
        except OSError:
            if tolerate_errors:
                return None
            raise
        finally:
            connection.close()

    def tcp_listen_ports(self):
        """The TCP ports this Caddy process listens on (from `ss`, by its PID)."""
        output = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
        ports = set()
        for line in output.splitlines():
            if f"pid={self.process.pid}," in line:
                ports.add(int(line.split()[3].rsplit(":", 1)[1]))
        return ports

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.output.close()


class BareCaddy(CaddyProcess):
    """Caddy with only its admin API and HTTP port, for Unshelver to load its routing into.

    admin_socket=True puts the admin API on a Unix socket as in the production setup: in a
    directory of its own (mode 0750, like systemd's RuntimeDirectory), with Caddy's umask 0007."""

    def __init__(self, workdir, admin_socket=False):
        self.workdir = workdir
        self.port = free_port()
        self.admin_port = free_port()
        if admin_socket:
            runtime = os.path.join(workdir, "run")
            os.mkdir(runtime, 0o750)
            self.admin_socket = os.path.join(runtime, "admin.sock")
        self.caddyfile = os.path.join(workdir, "Caddyfile")
        bootstrap = os.path.join(workdir, "bootstrap.Caddyfile")
        with open(bootstrap, "w") as text:
            text.write(f"{{\n\tadmin {self.admin_listen}\n\tauto_https off\n\thttp_port {self.port}\n}}\n")
        self.run(bootstrap)

    def config(self):
        status, body = self.admin_request("GET", "/config/")
        assert status == 200, (status, body)
        return json.loads(body or b"null")

    def load(self, caddyfile_text):
        status, body = self.admin_request("POST", "/load", body=caddyfile_text.encode(),
                                          headers={"Content-Type": "text/caddyfile"})
        if status != 200:
            raise AssertionError(f"POST /load answered {status}: {body[:300]!r}")
        return status


class Caddy(CaddyProcess):
    """Caddy with a launcher host (to Unshelver) and a backend host (to the fake backend)."""

    def __init__(self, workdir, unshelver_port, backend_port, label="gpu", roll_size="1MiB", roll_keep=3):
        self.workdir = workdir
        self.port = free_port()
        self.admin_port = free_port()
        self.log_dir = os.path.join(workdir, "caddy-logs")
        os.makedirs(self.log_dir, exist_ok=True)
        self.access_log = os.path.join(self.log_dir, "access.log")
        self.caddyfile = os.path.join(workdir, "Caddyfile")
        with open(self.caddyfile, "w") as caddyfile:
            caddyfile.write(f"""
{{
	admin 127.0.0.1:{self.admin_port}
	auto_https off
	http_port {self.port}
}}

(accesslog) {{
	log {{
		output file {self.access_log} {{
			roll_size {roll_size}
			roll_keep {roll_keep}
		}}
		format json
	}}
}}

http://launcher.localhost:{self.port} {{
	bind 127.0.0.1
	import accesslog
	reverse_proxy 127.0.0.1:{unshelver_port}
}}

http://chat.localhost:{self.port} {{
	bind 127.0.0.1
	import accesslog
	reverse_proxy 127.0.0.1:{backend_port} {{
		header_down X-Served-By {label}
	}}
	handle_errors {{
		reverse_proxy 127.0.0.1:{unshelver_port} {{
			header_down X-Served-By launcher-fallback
		}}
	}}
}}
""")
        self.run(self.caddyfile)
