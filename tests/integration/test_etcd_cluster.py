"""The EtcdCluster harness keeps its promises: three members form one cluster and take writes
through the JSON gateway; with one member killed the other two still write; with all paused a
write fails (times out); resumed, writes work again; a killed member restarts and rejoins."""

import base64
import json
import os
import tempfile
import unittest
import urllib.error
import urllib.request

from etcd_cluster import ETCD, EtcdCluster
from harness import require_peer


def b64(text):
    return base64.b64encode(text.encode()).decode()


def put(endpoint, key, value, timeout=2.0):
    body = json.dumps({"key": b64(key), "value": b64(value)}).encode()
    request = urllib.request.Request(endpoint + "/v3/kv/put", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read().decode())


def get(endpoint, key, timeout=2.0):
    body = json.dumps({"key": b64(key)}).encode()
    request = urllib.request.Request(endpoint + "/v3/kv/range", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        kvs = json.loads(response.read().decode()).get("kvs", [])
        return base64.b64decode(kvs[0]["value"]).decode() if kvs else None


@require_peer(ETCD if os.access(ETCD, os.X_OK) else None, "etcd")
class EtcdClusterTest(unittest.TestCase):
    def test_three_members_survive_one_kill_and_a_pause(self):
        with tempfile.TemporaryDirectory(prefix="etcd-cluster-") as tmp, EtcdCluster(3, tmp) as cluster:
            cluster.wait_healthy(15)
            self.assertEqual(len(cluster.endpoints), 3)
            put(cluster.endpoints[0], "k", "one")
            self.assertEqual(get(cluster.endpoints[2], "k"), "one")  # one cluster, not three

            cluster.kill(0)
            cluster.wait_healthy(10, members=[1, 2])
            put(cluster.endpoints[1], "k", "two", timeout=5)
            self.assertEqual(get(cluster.endpoints[2], "k"), "two")
            with self.assertRaises(OSError):  # URLError is an OSError: nothing listens
                put(cluster.endpoints[0], "k", "x", timeout=1)

            cluster.pause_all()
            with self.assertRaises(OSError):  # accepted by the kernel, never answered
                put(cluster.endpoints[1], "k", "paused", timeout=1)
            cluster.resume_all()
            cluster.wait_healthy(10, members=[1, 2])
            put(cluster.endpoints[2], "k", "three", timeout=5)

            cluster.restart(0)
            cluster.wait_healthy(15, members=[0, 1, 2])
            self.assertEqual(get(cluster.endpoints[0], "k"), "three")
            for process in cluster.processes:
                self.assertIsNone(process.poll())
        # __exit__ killed every member.
        for process in cluster.processes:
            self.assertIsNone(process)


if __name__ == "__main__":
    unittest.main()
