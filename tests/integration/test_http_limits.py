"""Bad HTTP gets the right 4xx, slow clients are cut off, and the server keeps serving others."""
import socket
import time
import unittest

from harness import Unshelver, raw_exchange


class HttpLimitsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon = Unshelver().start()

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()

    def assert_still_serving(self):
        self.assertEqual(self.daemon.get("/healthz")[0], 200)

    def status_of(self, answer):
        self.assertTrue(answer.startswith(b"HTTP/1.1 "), answer[:200])
        return int(answer.split(b" ", 2)[1])

    def test_oversized_headers_get_431(self):
        request = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 4096 + b"\r\n\r\n"
        self.assertEqual(self.status_of(raw_exchange(self.daemon.port, request)), 431)
        self.assert_still_serving()

    def test_too_many_headers_get_431(self):
        request = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(200)) + b"\r\n"
        self.assertEqual(self.status_of(raw_exchange(self.daemon.port, request)), 431)
        self.assert_still_serving()

    def test_oversized_body_gets_413(self):
        body = b"x" * 2000
        request = b"POST /wake/gpu HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        self.assertEqual(self.status_of(raw_exchange(self.daemon.port, request)), 413)
        self.assert_still_serving()

    def test_garbage_gets_400(self):
        self.assertEqual(self.status_of(raw_exchange(self.daemon.port, b"\x16\x03\x01garbage\r\n\r\n")), 400)
        self.assertEqual(self.status_of(raw_exchange(self.daemon.port, b"GET / HTTP/9.9\r\n\r\n")), 400)
        self.assert_still_serving()

    def test_half_request_is_cut_off_after_the_header_timeout(self):
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", self.daemon.port), timeout=5) as connection:
            connection.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
            answer = b""
            while True:
                chunk = connection.recv(4096)
                if not chunk:
                    break
                answer += chunk
        elapsed = time.monotonic() - started
        # header_timeout_seconds is 0.5 in the test config.
        self.assertGreaterEqual(elapsed, 0.4)
        self.assertLess(elapsed, 3)
        if answer:
            self.assertEqual(self.status_of(answer), 408)
        self.assert_still_serving()

    def test_pipelined_requests_are_answered_in_order(self):
        request = (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                   b"GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n"
                   b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = raw_exchange(self.daemon.port, request)
        self.assertEqual(answer.count(b"HTTP/1.1 200 OK"), 3)
        first_ok = answer.index(b"ok\n")
        self.assertLess(first_ok, answer.index(b'"backends"'))
        self.assertTrue(answer.endswith(b"ok\n"))

    def test_keep_alive_serves_several_requests_on_one_connection(self):
        with socket.create_connection(("127.0.0.1", self.daemon.port), timeout=5) as connection:
            for _ in range(3):
                connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                answer = b""
                while not answer.endswith(b"ok\n"):
                    chunk = connection.recv(4096)
                    self.assertTrue(chunk, "connection closed early")
                    answer += chunk
                self.assertTrue(answer.startswith(b"HTTP/1.1 200 OK"))


if __name__ == "__main__":
    unittest.main()
