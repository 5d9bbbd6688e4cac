"""A protocol-faithful fake of Exoscale's compute API v2, for Unshelver's tests.

    python3 tests/fakes/fake_exoscale.py --port 0 [--config fake.json] [--port-file F]

Written from /work/shared/research/api-contracts.md §5 ("the contract") and peers-2026.md §4.1;
Python 3.11 standard library only. See README.md ("fake_exoscale").

- Every API request must carry a valid EXO2-HMAC-SHA256 signature (credential, optional
  signed-query-args, expires, signature) that has not expired; anything else is refused with 403
  {"message": "Invalid request signature"} (or "... expired"), as python-exoscale's mocks show.
- GET /v2/instance (list-instances: {"instances": [...]}, every instance of the zone in one answer,
  no pages), GET /v2/instance/{id}, PUT /v2/instance/{id}:start (a JSON body is required), :stop,
  :reboot, GET /v2/operation/{id}, GET /v2/zone. The same under /{zone}/v2/... for a test that
  wants one API URL per zone.
- Every API request is logged with a sequence number and the name of its endpoint (the API's
  operation id: list-instances, get-instance, start-instance, ...); endpoint_counts() counts them.
- Instances move through starting/running/stopping/stopped on a clock of their own, each action
  answered with an Operation that is `pending` until the transition ends (`success`), or fails with
  a reason and a message when a fault says so.
- Faults: generic ones per request (status such as 500/503/429 with Retry-After, a delay that
  makes the client time out, a dropped connection), a start whose operation fails, a start or stop
  that never finishes, refused credentials.
- While an instance runs (after its boot time) an optional guest HTTP listener answers 200, so a
  health probe sees a backend.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

DEFAULT_KEY = "EXOfake00000000000000000000"
DEFAULT_SECRET = "fake-exoscale-secret-0123456789abcdefghijklm"
INVALID_SIGNATURE = "Invalid request signature"
EXPIRED_SIGNATURE = "Request signature expired"
ZONES = ("ch-gva-2", "ch-dk-2", "de-fra-1", "de-muc-1", "at-vie-1", "at-vie-2", "bg-sof-1", "hr-zag-1")
STATES = ("expunging", "starting", "destroying", "running", "stopping", "stopped", "migrating", "error",
          "destroyed")
FAILURE_REASONS = ("incorrect", "unknown", "unavailable", "forbidden", "busy", "fault", "partial",
                   "not-found", "interrupted", "unsupported", "conflict")
CONFIG_KEYS = {"api_key", "api_secret", "timings", "instances", "tick_seconds"}
TIMING_KEYS = {"start_seconds", "stop_seconds", "boot_seconds", "reboot_seconds"}
DEFAULT_TIMINGS = {"start_seconds": 1.0, "stop_seconds": 1.0, "boot_seconds": 0.5, "reboot_seconds": 1.0}


def sign(api_key, api_secret, method, path, body=b"", query=None, expires=None):
    """The Authorization header a client sends (contract §5), for the fake's own tests."""
    if expires is None:
        expires = int(time.time()) + 600
    if isinstance(body, str):
        body = body.encode()
    names = sorted(query or {})
    message = "\n".join([f"{method} {path}", body.decode("utf-8", "replace"),
                         "".join(query[name] for name in names), "", str(expires)])
    digest = hmac.new(api_secret.encode(), message.encode(), hashlib.sha256).digest()
    parts = [f"credential={api_key}"]
    if names:
        parts.append("signed-query-args=" + ";".join(names))
    parts += [f"expires={expires}", "signature=" + base64.b64encode(digest).decode()]
    return "EXO2-HMAC-SHA256 " + ",".join(parts)


def endpoint_of(method, path):
    """The API operation a request asks for, by the names of Exoscale's API v2 reference."""
    path = re.sub(r"^/[a-z]{2}-[a-z]{2,4}-[0-9]{1,3}(?=/v2(/|$))", "", path)
    if path == "/v2/instance":
        return "list-instances" if method == "GET" else "other"
    m = re.fullmatch(r"/v2/instance/[0-9a-zA-Z-]+(?::(start|stop|reboot))?", path)
    if m:
        return f"{m.group(1)}-instance" if m.group(1) else "get-instance"
    if re.fullmatch(r"/v2/operation/[0-9a-zA-Z-]+", path):
        return "get-operation"
    if path == "/v2/zone":
        return "list-zones"
    return "other"


class _QuietServer(ThreadingHTTPServer):
    """A client that hangs up (Unshelver at shutdown, a dropped-connection fault) is no error."""

    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Guest:
    """The instance's HTTP service: answers 200 to every GET while open."""

    def __init__(self, port):
        self.port = port
        self.server = None

    def open(self):
        if self.server is not None:
            return

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 (the standard library's name)
                body = b'{"status":"ok","served_by":"fake-exoscale-guest"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_HEAD = do_GET

            def log_message(self, *args):
                pass

        try:
            self.server = _QuietServer(("127.0.0.1", self.port), Handler)
        except OSError:
            self.server = None
            return
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        if self.server is None:
            return
        server, self.server = self.server, None
        server.shutdown()
        server.server_close()

    @property
    def listening(self):
        return self.server is not None


class FakeExoscale:
    def __init__(self, config=None, clock=time.time):
        config = dict(config or {})
        unknown = set(config) - CONFIG_KEYS
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        timings = dict(config.get("timings", {}))
        if set(timings) - TIMING_KEYS:
            raise ValueError(f"unknown timing keys: {sorted(set(timings) - TIMING_KEYS)}")
        self._config = config
        self._clock = clock  # the wall clock that signatures' expiry is checked against
        self._lock = threading.RLock()
        self._server = None
        self._thread = None
        self._ticker = None
        self._running = False
        self.api_key = config.get("api_key", DEFAULT_KEY)
        self.api_secret = config.get("api_secret", DEFAULT_SECRET)
        self.timings = {**DEFAULT_TIMINGS, **timings}
        self.tick_seconds = float(config.get("tick_seconds", 0.02))
        self.refuse_credentials = False
        self._reset_state()

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self, port=0):
        fake = self

        class Handler(_Handler):
            owner = fake

        self._server = _QuietServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._running = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        self._ticker = threading.Thread(target=self._tick_loop, daemon=True)
        self._ticker.start()
        return self

    def stop(self):
        self._running = False
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            for instance in self._instances.values():
                if instance["_guest"]:
                    instance["_guest"].close()
        if self._ticker is not None:
            self._ticker.join(timeout=2)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self):
        return self._server.server_address[1]

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self):
        """The base URL for Unshelver's exoscale.api_url (zone-independent)."""
        return self.url + "/v2"

    @property
    def api_url_template(self):
        """A base URL with `{zone}`: requests then name their zone in the path."""
        return self.url + "/{zone}/v2"

    # --- state -----------------------------------------------------------------------------------
    def _reset_state(self):
        with self._lock:
            for instance in getattr(self, "_instances", {}).values():
                if instance.get("_guest"):
                    instance["_guest"].close()
            self._instances = {}
            self._operations = {}
            self._faults = []
            self._requests = []
            self._seq = 0
            self._counts = {}
            self._start_failures = []  # [{instance_id, reason, message, times}]
            self._hangs = []  # [{action, instance_id, times}]
            self.refuse_credentials = False
            for spec in self._config.get("instances", []):
                spec = dict(spec)
                self.add_instance(spec.pop("name"), **spec)

    def reset(self):
        self._reset_state()

    def configure(self, **settings):
        with self._lock:
            for key, value in settings.items():
                if key == "timings":
                    if set(value) - TIMING_KEYS:
                        raise ValueError(f"unknown timing keys: {sorted(set(value) - TIMING_KEYS)}")
                    self.timings.update(value)
                elif key in ("api_key", "api_secret", "refuse_credentials"):
                    setattr(self, key, value)
                else:
                    raise ValueError(f"unknown setting {key!r}")

    def add_instance(self, name, id=None, state="stopped", public_ip="127.0.0.1", zone="ch-gva-2",
                     serve_http_port=None, **timings):
        if state not in STATES:
            raise ValueError(f"unknown state {state!r}")
        if set(timings) - TIMING_KEYS:
            raise ValueError(f"unknown options {sorted(set(timings) - TIMING_KEYS)}")
        instance_id = id or str(uuid.uuid4())
        with self._lock:
            self._instances[instance_id] = {
                "id": instance_id, "name": name, "state": state, "public-ip": public_ip, "zone": zone,
                "created-at": "2026-11-01T09:00:00Z", "_timings": timings,
                "_guest": _Guest(serve_http_port) if serve_http_port else None,
                "_transition": None, "_boot_at": None,
            }
            self._counts[instance_id] = {"start": 0, "stop": 0, "reboot": 0}
            if state == "running":
                self._instances[instance_id]["_boot_at"] = time.monotonic()
        return instance_id

    def _timing(self, instance, key):
        return instance["_timings"].get(key, self.timings[key])

    def instance(self, instance_id):
        with self._lock:
            instance = self._instances[instance_id]
            view = self._render_instance(instance)
            guest = instance["_guest"]
            view["_fake"] = {"guest_listening": bool(guest and guest.listening),
                             "transition": (instance["_transition"] or {}).get("to"),
                             "zone": instance["zone"]}
            return view

    def instances(self):
        with self._lock:
            return [self.instance(i) for i in self._instances]

    def set_instance_state(self, instance_id, state):
        """Forces a state, as if someone acted outside Unshelver; a pending transition is dropped."""
        if state not in STATES:
            raise ValueError(f"unknown state {state!r}")
        with self._lock:
            instance = self._instances[instance_id]
            instance["_transition"] = None
            instance["state"] = state
            instance["_boot_at"] = time.monotonic() if state == "running" else None
            if state != "running" and instance["_guest"]:
                instance["_guest"].close()

    def action_counts(self, instance_id):
        """Accepted actions (a 200 with an Operation) by kind: {"start": n, "stop": n, "reboot": n}."""
        with self._lock:
            return dict(self._counts[instance_id])

    def operations(self):
        with self._lock:
            return [dict(op) for op in self._operations.values()]

    def wait_for_instance(self, instance_id, predicate, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            view = self.instance(instance_id)
            if predicate(view):
                return view
            if time.monotonic() > deadline:
                raise TimeoutError(f"instance {instance_id} never matched; last {view}")
            time.sleep(0.02)

    # --- faults ----------------------------------------------------------------------------------
    def fail_start(self, reason="unavailable", message="no capacity available for this instance type",
                   times=1, instance_id=None):
        """The next `times` starts (None: every one) are accepted with a pending operation that
        fails after the start time with `reason` and `message`; the instance goes back to stopped."""
        if reason not in FAILURE_REASONS:
            raise ValueError(f"unknown failure reason {reason!r}")
        with self._lock:
            self._start_failures.append({"instance_id": instance_id, "reason": reason, "message": message,
                                         "times": times})

    def hang(self, action, times=1, instance_id=None):
        """The next `times` `action`s ("start" or "stop") never finish: the instance stays
        starting/stopping and the operation pending."""
        if action not in ("start", "stop"):
            raise ValueError("hang applies to start or stop")
        with self._lock:
            self._hangs.append({"action": action, "instance_id": instance_id, "times": times})

    def add_fault(self, method=None, path_regex=None, status=None, times=1, delay_seconds=0, drop=False,
                  retry_after=None, body=None):
        """Answers matching API requests with `status` (and `body`, else a JSON message), after
        `delay_seconds`, or drops the connection. `times=None` means forever. Returns an id."""
        fault = {"id": len(self._faults) + 1, "method": method, "path_regex": path_regex, "status": status,
                 "times": times, "delay_seconds": delay_seconds, "drop": drop, "retry_after": retry_after,
                 "body": body, "hits": 0}
        with self._lock:
            self._faults.append(fault)
        return fault["id"]

    def clear_faults(self):
        with self._lock:
            self._faults = []
            self._start_failures = []
            self._hangs = []
            self.refuse_credentials = False

    def faults(self):
        with self._lock:
            return [dict(f) for f in self._faults]

    def _take(self, entries, instance_id, **match):
        """Uses up one of the matching one-shot entries (faults, failures, hangs)."""
        for entry in entries:
            if entry["instance_id"] not in (None, instance_id):
                continue
            if any(entry.get(k) != v for k, v in match.items()):
                continue
            if entry["times"] is not None:
                if entry["times"] <= 0:
                    continue
                entry["times"] -= 1
            return entry
        return None

    # --- the request log -------------------------------------------------------------------------
    def requests(self, method=None, path_regex=None, status=None):
        with self._lock:
            return [dict(r) for r in self._requests
                    if (method is None or r["method"] == method)
                    and (path_regex is None or re.search(path_regex, r["path"]))
                    and (status is None or r["status"] == status)]

    def clear_requests(self):
        with self._lock:
            self._requests = []

    def last_seq(self):
        """The sequence number of the last request logged (0 before any)."""
        with self._lock:
            return self._seq

    def endpoint_counts(self, since=0):
        """Requests after sequence number `since`, by endpoint: {"list-instances": n, ...}."""
        with self._lock:
            counts = {}
            for entry in self._requests:
                if entry["seq"] > since:
                    counts[entry["endpoint"]] = counts.get(entry["endpoint"], 0) + 1
            return counts

    def _log(self, entry):
        with self._lock:
            self._seq += 1
            entry["seq"] = self._seq
            entry["endpoint"] = endpoint_of(entry["method"], entry["path"])
            self._requests.append(entry)

    # --- the clock of transitions ----------------------------------------------------------------
    def _tick_loop(self):
        while self._running:
            self._advance()
            time.sleep(self.tick_seconds)

    def _advance(self):
        now = time.monotonic()
        with self._lock:
            for instance in self._instances.values():
                transition = instance["_transition"]
                if transition and transition["at"] is not None and now >= transition["at"]:
                    instance["_transition"] = None
                    instance["state"] = transition["to"]
                    operation = self._operations[transition["operation"]]
                    operation.update(transition["outcome"])
                    if transition["to"] == "running":
                        instance["_boot_at"] = now
                guest = instance["_guest"]
                if guest:
                    boot = self._timing(instance, "boot_seconds")
                    should_listen = (instance["state"] == "running" and instance["_boot_at"] is not None
                                     and now >= instance["_boot_at"] + boot)
                    if should_listen and not guest.listening:
                        guest.open()
                    elif not should_listen and guest.listening:
                        guest.close()

    # --- the API ---------------------------------------------------------------------------------
    def _render_instance(self, instance):
        return {
            "id": instance["id"], "name": instance["name"], "state": instance["state"],
            "public-ip": instance["public-ip"], "ipv6-address": None, "created-at": instance["created-at"],
            "labels": {}, "manager": None,
            "instance-type": {"id": "b6e9d1e8-89fc-4db3-aaa4-9b4c5b1d0844", "family": "gpu3", "size": "small"},
        }

    def _new_operation(self, instance_id, state="pending"):
        operation = {"id": str(uuid.uuid4()), "state": state,
                     "reference": {"id": instance_id, "link": f"/v2/instance/{instance_id}",
                                   "command": "get-instance"}}
        self._operations[operation["id"]] = operation
        return operation

    def verify(self, method, raw_path, query_pairs, body, authorization):
        """Checks a request's signature as the contract describes; returns None or the refusal."""
        if self.refuse_credentials:
            return INVALID_SIGNATURE
        match = re.fullmatch(r"EXO2-HMAC-SHA256 (.+)", authorization or "")
        if not match:
            return INVALID_SIGNATURE
        parts = {}
        order = []
        for part in match.group(1).split(","):
            name, sep, value = part.partition("=")
            if not sep or name in parts:
                return INVALID_SIGNATURE
            parts[name] = value
            order.append(name)
        expected_order = ["credential"] + (["signed-query-args"] if "signed-query-args" in parts else []) + [
            "expires", "signature"]
        if order != expected_order:
            return INVALID_SIGNATURE
        if not hmac.compare_digest(parts["credential"].encode(), self.api_key.encode()):
            return INVALID_SIGNATURE
        if not re.fullmatch(r"[0-9]{1,12}", parts["expires"]):
            return INVALID_SIGNATURE
        values = {}
        for name, value in query_pairs:
            values.setdefault(name, []).append(value)
        signed = parts["signed-query-args"].split(";") if "signed-query-args" in parts else []
        if any(name not in values or len(values[name]) != 1 for name in signed):
            return INVALID_SIGNATURE
        message = "\n".join([f"{method} {raw_path}", body.decode("utf-8", "replace"),
                             "".join(values[name][0] for name in signed), "", parts["expires"]])
        digest = hmac.new(self.api_secret.encode(), message.encode(), hashlib.sha256).digest()
        try:
            given = base64.b64decode(parts["signature"], validate=True)
        except ValueError:
            return INVALID_SIGNATURE
        if not hmac.compare_digest(given, digest):
            return INVALID_SIGNATURE
        if int(parts["expires"]) < self._clock():
            return EXPIRED_SIGNATURE
        return None

    def handle(self, method, raw_path, zone, query_pairs, body, headers):
        """Returns (status, json_body). Runs with the signature verified."""
        path = raw_path[len(f"/{zone}") if zone else 0:]
        with self._lock:
            if method == "GET" and path == "/v2/zone":
                return 200, {"zones": [{"name": z} for z in ZONES]}
            if method == "GET" and path == "/v2/instance":
                listed = [self._render_instance(i) for i in self._instances.values()
                          if zone is None or i["zone"] == zone]
                return 200, {"instances": listed}
            m = re.fullmatch(r"/v2/instance/([0-9a-zA-Z-]+)(?::(start|stop|reboot))?", path)
            if m:
                instance = self._instances.get(m.group(1))
                if instance is None or (zone is not None and instance["zone"] != zone):
                    return 404, {"message": "Instance not found"}
                if m.group(2) is None:
                    if method != "GET":
                        return 405, {"message": "Method not allowed"}
                    return 200, self._render_instance(instance)
                if method != "PUT":
                    return 405, {"message": "Method not allowed"}
                return self._act(instance, m.group(2), body, headers)
            m = re.fullmatch(r"/v2/operation/([0-9a-zA-Z-]+)", path)
            if m and method == "GET":
                operation = self._operations.get(m.group(1))
                if operation is None:
                    return 404, {"message": "Operation not found"}
                return 200, dict(operation)
            return 404, {"message": "Not found"}

    def _act(self, instance, action, body, headers):
        if action == "start":
            # The spec requires a body: {} or {"rescue-profile": ...}, as JSON.
            content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if not body:
                return 400, {"message": "Request body is required"}
            if content_type != "application/json":
                return 415, {"message": "Unsupported media type: expected application/json"}
            try:
                document = json.loads(body)
            except ValueError:
                return 400, {"message": "Invalid JSON body"}
            if not isinstance(document, dict) or set(document) - {"rescue-profile"}:
                return 400, {"message": "Invalid request body"}
        # The real API's answer to an action that does not fit the state is not documented; the
        # fake answers 409 (contract "Not verified"), which a client must treat as "look again".
        allowed = {"start": ("stopped",), "stop": ("running",), "reboot": ("running",)}[action]
        if instance["state"] not in allowed:
            return 409, {"message": f"Instance is {instance['state']}: cannot {action} it"}
        instance_id = instance["id"]
        self._counts[instance_id][action] += 1
        operation = self._new_operation(instance_id)
        now = time.monotonic()
        if action == "start":
            failure = self._take(self._start_failures, instance_id)
            hang = self._take(self._hangs, instance_id, action="start")
            instance["state"] = "starting"
            at = None if hang else now + self._timing(instance, "start_seconds")
            if failure:
                outcome = {"state": "failure", "reason": failure["reason"], "message": failure["message"]}
                instance["_transition"] = {"to": "stopped", "at": at, "operation": operation["id"],
                                           "outcome": outcome}
            else:
                instance["_transition"] = {"to": "running", "at": at, "operation": operation["id"],
                                           "outcome": {"state": "success"}}
        elif action == "stop":
            hang = self._take(self._hangs, instance_id, action="stop")
            instance["state"] = "stopping"
            instance["_boot_at"] = None
            at = None if hang else now + self._timing(instance, "stop_seconds")
            instance["_transition"] = {"to": "stopped", "at": at, "operation": operation["id"],
                                       "outcome": {"state": "success"}}
        else:
            instance["state"] = "starting"
            instance["_boot_at"] = None
            instance["_transition"] = {"to": "running", "at": now + self._timing(instance, "reboot_seconds"),
                                       "operation": operation["id"], "outcome": {"state": "success"}}
        if instance["_guest"] and instance["state"] != "running":
            instance["_guest"].close()
        return 200, dict(operation)

    def match_fault(self, method, path):
        with self._lock:
            for fault in self._faults:
                if fault["method"] not in (None, method):
                    continue
                if fault["path_regex"] is not None and not re.search(fault["path_regex"], path):
                    continue
                if fault["times"] is not None:
                    if fault["times"] <= 0:
                        continue
                    fault["times"] -= 1
                fault["hits"] += 1
                return dict(fault)
        return None

    def control_state(self):
        with self._lock:
            return {"instances": self.instances(), "counts": dict(self._counts),
                    "operations": self.operations(), "requests": len(self._requests),
                    "endpoint_counts": self.endpoint_counts()}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner = None  # set per server

    def log_message(self, *args):
        pass

    def _send(self, status, document, extra_headers=()):
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra_headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _dispatch(self):
        fake = self.owner
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        raw_path = split.path
        query_pairs = parse_qsl(split.query, keep_blank_values=True)
        if raw_path.startswith("/_fake/"):
            return self._control(raw_path, body)
        zone = None
        m = re.match(r"/([a-z]{2}-[a-z]{2,4}-[0-9]{1,3})/v2(/|$)", raw_path)
        if m:
            zone = m.group(1)
        entry = {"method": self.command, "path": raw_path, "zone": zone, "body": body.decode("utf-8", "replace"),
                 "time": time.time(), "status": None}
        fake._log(entry)
        fault = fake.match_fault(self.command, raw_path)
        if fault:
            if fault["delay_seconds"]:
                time.sleep(fault["delay_seconds"])
            if fault["drop"]:
                entry["status"] = 0
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if fault["status"] is not None:
                entry["status"] = fault["status"]
                headers = [("Retry-After", str(fault["retry_after"]))] if fault["retry_after"] is not None else []
                document = fault["body"] if fault["body"] is not None else {
                    "message": "Endpoint template temporarily unavailable" if fault["status"] >= 500
                    else "Too many requests" if fault["status"] == 429 else "Injected fault"}
                return self._send(fault["status"], document, headers)
        if zone is not None and zone not in ZONES:
            entry["status"] = 404
            return self._send(404, {"message": "Unknown zone"})
        refusal = fake.verify(self.command, raw_path, query_pairs, body, self.headers.get("Authorization"))
        if refusal:
            entry["status"] = 403
            return self._send(403, {"message": refusal})
        status, document = fake.handle(self.command, raw_path, zone, query_pairs, body, self.headers)
        entry["status"] = status
        self._send(status, document)

    def _control(self, path, body):
        fake = self.owner
        if self.command == "GET" and path == "/_fake/state":
            return self._send(200, fake.control_state())
        if self.command == "POST" and path == "/_fake/configure":
            try:
                fake.configure(**json.loads(body or b"{}"))
            except (ValueError, TypeError) as error:
                return self._send(400, {"message": str(error)})
            return self._send(200, {"ok": True})
        return self._send(404, {"message": "unknown control path"})

    do_GET = _dispatch
    do_PUT = _dispatch
    do_POST = _dispatch
    do_DELETE = _dispatch


def main(argv=None):
    parser = argparse.ArgumentParser(description="A fake Exoscale compute API v2 on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--config", help="a JSON file with the FakeExoscale config keys")
    parser.add_argument("--port-file", help="write the port here (atomically) once listening")
    args = parser.parse_args(argv)
    config = {}
    if args.config:
        with open(args.config, encoding="utf-8") as file:
            config = json.load(file)
    fake = FakeExoscale(config).start(args.port)
    if args.port_file:
        temporary = args.port_file + ".tmp"
        with open(temporary, "w", encoding="utf-8") as file:
            file.write(str(fake.port))
        os.replace(temporary, args.port_file)
    print(fake.url, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
