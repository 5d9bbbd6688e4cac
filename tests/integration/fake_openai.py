"""An OpenAI-compatible stand-in for the GPU backend, for the gate tests (Python standard library).

In-process (what test_gate does):

    backend = FakeOpenAI(chunk_delay=0.05).start()    # a ThreadingHTTPServer on 127.0.0.1, a free port
    ... backend.port, backend.requests(), backend.clear() ...
    backend.stop()

Stand-alone, to try the clients by hand:  python3 fake_openai.py PORT [CHUNK_DELAY]

Routes (HTTP/1.1 with keep-alive; Nagle off):
  GET  /health, GET /          200 {"status": "ok"}
  GET  /v1/models              an OpenAI model list with one model, "fake-model"
  POST /v1/chat/completions    a chat completion; with "stream": true, Server-Sent Events
                               (`data: {chunk}` ... `data: [DONE]`, chunked transfer encoding)
  GET  /_fake/requests         the request log as JSON (for a test in another process)

Every chat completion carries the SHA-256 and the length of the request body it received, in the
headers X-Body-SHA256 and X-Body-Length and in the JSON (`body_sha256`, `body_length`: in the
completion and in every stream chunk), so a client can check that a 1 MB body arrived intact.
A stream has `fake_chunks` chunks (a non-standard request field; else `max_tokens`, else 5), each
with `seq` 0, 1, 2, ... and its number as the delta's content, `fake_chunk_delay` seconds apart
(else the server's chunk_delay).

Boot emulation (boot_seconds > 0): the VM "boots" when Unshelver's health probes start again after
a pause of more than boot_gap seconds (probes stop while the backend sleeps), and /health answers
503 for boot_seconds from then on, as a real VM's server would while it starts. Every entry of the
log says whether the fake considered itself booted (`booted`).

Misbehaviour, to prove that the clients' checks can fail: misbehave={"checksum"} echoes a wrong
SHA-256, {"reorder"} swaps chunks 1 and 2 of a stream, {"cut"} closes a stream before [DONE].

Every request is logged: start and end (time.time(), the wall clock that Unshelver's event
timestamps use), method, path, Host, user agent, X-Test-Id, body length and SHA-256, the answer's status, and for
streams the chunks written and whether the stream was finished ([DONE] written) or cut.
"""
import hashlib
import json
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "fake-model"
HEALTH_PATHS = ("/health", "/")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "FakeOpenAI/1"

    def log_message(self, *args):
        pass

    # The request log -----------------------------------------------------------------------

    def begin(self, body=b""):
        entry = {
            "start": time.time(), "end": None, "method": self.command,
            "path": urllib.parse.urlsplit(self.path).path,
            "host": self.headers.get("Host", ""), "user_agent": self.headers.get("User-Agent", ""),
            "test_id": self.headers.get("X-Test-Id", ""),
            "body_length": len(body), "body_sha256": hashlib.sha256(body).hexdigest(),
            "status": None, "stream": False, "chunks": 0, "finished": False,
            "booted": self.server.fake.booted(),
        }
        self.server.fake.record(entry)
        return entry

    def finish_entry(self, entry, status, finished=True):
        entry["status"] = status
        entry["finished"] = finished
        entry["end"] = time.time()

    def send_json(self, entry, status, document, extra_headers=()):
        data = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in extra_headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()
        self.finish_entry(entry, status)

    # Routes --------------------------------------------------------------------------------

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        if path == "/_fake/requests":
            # Not logged: it is the log.
            data = json.dumps(self.server.fake.requests()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        entry = self.begin()
        if path in HEALTH_PATHS:
            if self.server.fake.health_probe():
                self.send_json(entry, 200, {"status": "ok"})
            else:
                self.send_json(entry, 503, {"status": "booting"})
        elif path == "/v1/models":
            self.send_json(entry, 200, {"object": "list", "data": [
                {"id": MODEL, "object": "model", "created": 1700000000, "owned_by": "unshelver-tests"}]})
        else:
            self.send_json(entry, 404, {"error": {"message": f"no route {path}", "type": "not_found"}})

    do_HEAD = do_GET

    def do_POST(self):
        body = self.read_body()
        entry = self.begin(body)
        path = urllib.parse.urlsplit(self.path).path
        if path != "/v1/chat/completions":
            self.send_json(entry, 404, {"error": {"message": f"no route {path}", "type": "not_found"}})
            return
        try:
            request = json.loads(body or b"{}")
            if not isinstance(request, dict):
                raise ValueError("not an object")
        except ValueError as error:
            self.send_json(entry, 400, {"error": {"message": f"invalid JSON: {error}", "type": "invalid_request_error"}})
            return
        misbehave = self.server.fake.misbehave
        checksum = {"body_sha256": entry["body_sha256"], "body_length": entry["body_length"]}
        if "checksum" in misbehave:
            checksum["body_sha256"] = hashlib.sha256(b"not the body").hexdigest()
        headers = [("X-Body-SHA256", checksum["body_sha256"]), ("X-Body-Length", str(entry["body_length"]))]
        created = int(time.time())
        completion_id = f"chatcmpl-fake-{self.server.fake.next_id()}"
        if not request.get("stream"):
            self.send_json(entry, 200, {
                "id": completion_id, "object": "chat.completion", "created": created, "model": MODEL,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                **checksum}, headers)
            return
        chunks = int(request.get("fake_chunks") or request.get("max_tokens") or 5)
        delay = float(request.get("fake_chunk_delay", self.server.fake.chunk_delay))
        entry["stream"] = True
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        try:
            order = list(range(chunks))
            if "reorder" in misbehave and chunks > 2:
                order[1], order[2] = order[2], order[1]
            for index, seq in enumerate(order):
                if index:
                    time.sleep(delay)
                chunk = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": MODEL,
                         "choices": [{"index": 0, "delta": {"content": f"{seq} "}, "finish_reason": None}],
                         "seq": seq, **checksum}
                self.write_chunk(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                entry["chunks"] = index + 1
            if "cut" in misbehave:
                self.finish_entry(entry, 200, finished=False)
                self.close_connection = True
                return
            last = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": MODEL,
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "seq": chunks, **checksum}
            self.write_chunk(b"data: " + json.dumps(last).encode() + b"\n\n")
            self.write_chunk(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            self.finish_entry(entry, 200)
        except (BrokenPipeError, ConnectionResetError):
            self.finish_entry(entry, 200, finished=False)
            self.close_connection = True

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))

    def write_chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    # Caddy closes idle upstream connections, and a test may cut a stream on purpose: a client that
    # went away is normal here, not an error worth a traceback.
    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class FakeOpenAI:
    """The fake on a thread of this process. requests() is a copy of the log; every entry is a dict
    with start, end, method, path, host, user_agent, test_id (X-Test-Id), body_length, body_sha256, status, stream, chunks,
    finished, booted (end is None while a request is being answered)."""

    def __init__(self, port=0, chunk_delay=0.05, boot_seconds=0.0, boot_gap=1.0, misbehave=(), vm_running=None):
        """`vm_running`, when given, says whether the emulated VM runs (e.g. what Unshelver last saw
        of the simulated cloud): the service then boots `boot_seconds` after the VM is first seen
        running, and is down whenever it is not. Without it, the boot starts at the first health
        probe after a pause longer than `boot_gap`, which holds only while nothing probes a VM
        that does not run (Unshelver probes while waking too, since issue 20)."""
        self.chunk_delay = chunk_delay
        self.boot_seconds = boot_seconds
        self.boot_gap = boot_gap
        self.vm_running = vm_running
        self.misbehave = set(misbehave)
        self._last_probe = None
        self._booted_at = None
        self._log = []
        self._lock = threading.Lock()
        self._ids = 0
        self.server = QuietServer(("127.0.0.1", port), Handler)
        self.server.fake = self
        self.port = self.server.server_address[1]
        self.thread = None

    def start(self):
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                       name=f"fake-openai-{self.port}", daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def health_probe(self):
        """A health probe arrived: True when the emulated VM has finished booting."""
        running = self.vm_running() if self.vm_running is not None else None
        now = time.monotonic()
        with self._lock:
            if running is False:
                self._booted_at = None
            elif running is None and (self._last_probe is None or now - self._last_probe > self.boot_gap):
                self._booted_at = now + self.boot_seconds
            elif self._booted_at is None:
                self._booted_at = now + self.boot_seconds
            self._last_probe = now
            return self._booted_at is not None and now >= self._booted_at

    def booted(self):
        """Whether the emulated VM is up: booted, and probed within the last boot_gap seconds."""
        now = time.monotonic()
        with self._lock:
            return (self._last_probe is not None and now - self._last_probe <= self.boot_gap
                    and self._booted_at is not None and now >= self._booted_at)

    def record(self, entry):
        with self._lock:
            self._log.append(entry)

    def next_id(self):
        with self._lock:
            self._ids += 1
            return self._ids

    def requests(self, include_health=True):
        """A copy of the log, in arrival order; without health probes unless include_health."""
        with self._lock:
            entries = [dict(entry) for entry in self._log]
        if not include_health:
            entries = [entry for entry in entries if entry["path"] not in HEALTH_PATHS]
        return entries

    def clear(self):
        with self._lock:
            self._log.clear()


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    fake = FakeOpenAI(port, float(sys.argv[2]) if len(sys.argv) > 2 else 0.05)
    print(f"fake OpenAI backend on http://127.0.0.1:{fake.port}/", flush=True)
    try:
        fake.server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
