"""Runs Debian's real Caddy on loopback for integration tests, and a fake backend behind it.

Caddy gets its own admin port, HTTP port, XDG directories and access log in the test's
directory; it is stopped by PID at the end. Tests that need Caddy are marked
@require_peer(CADDY, "caddy") (harness.py): they fail when the `caddy` binary is not installed
(scripts/setup test-tools installs it), or skip with UNSHELVER_ALLOW_MISSING_PEERS=1.
"""
import json
import os
import shutil
import signal
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


class CaddyProcess:
    """One `caddy run` on loopback, with its state in the test's directory, stopped by PID."""

    def run(self, caddyfile):
        env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(self.workdir, "xdg"),
                   XDG_DATA_HOME=os.path.join(self.workdir, "xdg"))
        self.output = open(os.path.join(self.workdir, "caddy.out"), "wb")
        self.process = subprocess.Popen([CADDY, "run", "--config", caddyfile, "--adapter", "caddyfile"],
                                        stdout=self.output, stderr=subprocess.STDOUT, env=env)
        wait_for_http(f"http://127.0.0.1:{self.admin_port}/config/", process=self.process)

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.output.close()


class BareCaddy(CaddyProcess):
    """Caddy with only its admin API and HTTP port, for Unshelver to load its routing into."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.port = free_port()
        self.admin_port = free_port()
        self.caddyfile = os.path.join(workdir, "Caddyfile")
        bootstrap = os.path.join(workdir, "bootstrap.Caddyfile")
        with open(bootstrap, "w") as text:
            text.write(f"{{\n\tadmin 127.0.0.1:{self.admin_port}\n\tauto_https off\n\thttp_port {self.port}\n}}\n")
        self.run(bootstrap)

    def config(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/config/", timeout=5) as response:
            return json.loads(response.read() or b"null")

    def load(self, caddyfile_text):
        request = urllib.request.Request(f"http://127.0.0.1:{self.admin_port}/load", data=caddyfile_text.encode(),
                                         headers={"Content-Type": "text/caddyfile"}, method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status


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
