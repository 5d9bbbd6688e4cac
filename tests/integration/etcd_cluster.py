"""EtcdCluster: a private etcd cluster of Debian's /usr/bin/etcd on loopback, for the HA tests.

Each member gets a free 127.0.0.1 client port and peer port, a data directory and log files in
`tmp_dir`. Timings are short (heartbeat 100 ms, election 1 s) so that a lost leader is replaced
within about a second. Members are stopped with SIGKILL: every test starts from nothing, and
`stop()` runs on `__exit__` and at interpreter exit too, so no member outlives its test.

    with EtcdCluster(3, tmp) as cluster:
        cluster.wait_healthy(10)
        cluster.kill(0); ...; cluster.restart(0)
        cluster.pause_all(); ...; cluster.resume_all()

Python standard library only.
"""

import atexit
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

ETCD = "/usr/bin/etcd"


def free_port():
    """A loopback port that nothing listens on right now (bound, read, closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EtcdCluster:
    def __init__(self, members=3, tmp_dir=None, etcd=ETCD):
        if tmp_dir is None:
            raise ValueError("EtcdCluster needs a tmp_dir for data and logs")
        if not os.access(etcd, os.X_OK):
            raise FileNotFoundError(f"{etcd} is not installed (scripts/setup test-tools installs etcd-server)")
        self.etcd = etcd
        self.tmp_dir = str(tmp_dir)
        self.names = [f"m{i}" for i in range(members)]
        self.client_ports = [free_port() for _ in range(members)]
        self.peer_ports = [free_port() for _ in range(members)]
        self.endpoints = [f"http://127.0.0.1:{port}" for port in self.client_ports]
        self.peer_urls = [f"http://127.0.0.1:{port}" for port in self.peer_ports]
        self.initial_cluster = ",".join(f"{n}={u}" for n, u in zip(self.names, self.peer_urls))
        self.token = f"unshelver-test-{os.getpid()}-{self.client_ports[0]}"
        self.processes = [None] * members
        self._paused = False
        atexit.register(self.stop)
        for i in range(members):
            self._start(i, "new")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def _start(self, i, state):
        name = self.names[i]
        args = [
            self.etcd,
            f"--name={name}",
            f"--data-dir={os.path.join(self.tmp_dir, name + '.data')}",
            f"--listen-client-urls={self.endpoints[i]}",
            f"--advertise-client-urls={self.endpoints[i]}",
            f"--listen-peer-urls={self.peer_urls[i]}",
            f"--initial-advertise-peer-urls={self.peer_urls[i]}",
            f"--initial-cluster={self.initial_cluster}",
            f"--initial-cluster-state={state}",
            f"--initial-cluster-token={self.token}",
            "--heartbeat-interval=100",
            "--election-timeout=1000",
            # zap writes to a file given in --log-outputs; capnslog (3.4's default) cannot.
            "--logger=zap",
            "--log-level=warn",
            f"--log-outputs={os.path.join(self.tmp_dir, name + '.log')}",
        ]
        out = open(os.path.join(self.tmp_dir, name + ".out"), "ab")
        try:
            self.processes[i] = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        finally:
            out.close()

    def _get(self, url, timeout):
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read().decode())

    def healthy(self, i, timeout=0.5):
        """Whether member i answers GET /health with health "true" (it has a leader)."""
        try:
            return self._get(self.endpoints[i] + "/health", timeout).get("health") == "true"
        except (OSError, ValueError, urllib.error.URLError):
            return False

    def wait_healthy(self, timeout=10.0, members=None):
        """Waits until a quorum of the running members (or `members`, a list of indexes) is healthy."""
        deadline = time.monotonic() + timeout
        while True:
            running = [i for i, p in enumerate(self.processes) if p is not None and p.poll() is None]
            wanted = members if members is not None else running
            needed = len(wanted) if members is not None else len(self.processes) // 2 + 1
            if sum(1 for i in wanted if self.healthy(i)) >= needed:
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"etcd cluster not healthy within {timeout} s; logs in {self.tmp_dir}")
            time.sleep(0.1)

    def kill(self, i):
        """SIGKILLs member i (its data directory stays for restart)."""
        process = self.processes[i]
        if process is not None and process.poll() is None:
            if self._paused:
                process.send_signal(signal.SIGCONT)
            process.kill()
            process.wait()
        self.processes[i] = None

    def restart(self, i):
        """Starts member i again on its own data directory, joining the existing cluster."""
        self.kill(i)
        self._start(i, "existing")

    def _signal_all(self, sig):
        for process in self.processes:
            if process is not None and process.poll() is None:
                process.send_signal(sig)

    def pause_all(self):
        """SIGSTOPs every member: the cluster hangs (connections are accepted, nothing answers)."""
        self._signal_all(signal.SIGSTOP)
        self._paused = True

    def resume_all(self):
        self._signal_all(signal.SIGCONT)
        self._paused = False

    def stop(self):
        """Kills every member; safe to call more than once."""
        for i in range(len(self.processes)):
            try:
                self.kill(i)
            except OSError:
                pass
