"""A stand-in for the GPU backend, for integration tests behind Caddy (Python stdlib only).

    python3 fake_backend.py PORT

Routes: /health (200), /stream?seconds=N&interval=S (chunked, one chunk every S seconds for N
seconds, like an LLM token stream), /slow?seconds=N (answers after N seconds), anything else 200
with a short body. Every answer carries X-Backend: fake. Nagle is off (otherwise every answer
costs 40 ms of delayed-ACK waiting; caddy-facts §2).
"""
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        if url.path == "/stream":
            seconds = float(query.get("seconds", ["5"])[0])
            interval = float(query.get("interval", ["0.2"])[0])
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("X-Backend", "fake")
            self.end_headers()
            deadline = time.monotonic() + seconds
            count = 0
            while time.monotonic() < deadline:
                chunk = f"data: token {count}\n\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
                count += 1
                time.sleep(interval)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            return
        if url.path == "/slow":
            time.sleep(float(query.get("seconds", ["5"])[0]))
        body = f"fake backend: {url.path}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Backend", "fake")
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        self.do_GET()


class QuietServer(ThreadingHTTPServer):
    # Caddy drops idle upstream connections when it reloads (caddy-facts §5d); a client that went
    # away is normal here, not an error worth a traceback.
    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def main():
    server = QuietServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
