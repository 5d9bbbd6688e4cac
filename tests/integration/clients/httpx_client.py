"""One request through httpx with its default settings (5 s timeouts, no retries, no redirects),
for test_gate.py; run with Debian's /usr/bin/python3 (python3-httpx). The spec is one JSON argument:
  {"base_url": "http://127.0.0.1:PORT", "host": "chat.localhost:PORT" (optional), "kind": "chat|stream|big|big_stream|models",
   "chunks": 5, "chunk_delay": 0.05, "body_bytes": 1048576, "api_key": "...", "user_agent": "...",
   "request_id": "...", "wait_for_go": false}
and one JSON line is printed: {"client", "kind", "status", "ok", "checksum_ok", "chunks", "in_order",
"done", "attempts", "elapsed", "error"}. The exit code is 0 whenever that line was printed.
request_id is sent as X-Test-Id; with wait_for_go the body is built first, {"armed": true} printed,
and the request sent when a line arrives on stdin.

httpx's default read timeout is 5 s: a request held longer than that fails here, as it would for
anyone using httpx as it comes (the gate tests keep their holds shorter).
"""
import hashlib
import json
import random
import string
import sys
import time

import httpx

spec = json.loads(sys.argv[1])
kind = spec.get("kind", "chat")
result = {"client": "httpx", "kind": kind, "status": None, "ok": False, "checksum_ok": None, "chunks": None,
          "in_order": None, "done": None, "attempts": 1, "elapsed": None, "error": None}
headers = {}
if spec.get("api_key", "sk-no-key"):  # "" sends no Authorization at all
    headers["Authorization"] = f"Bearer {spec.get('api_key', 'sk-no-key')}"
if spec.get("host"):
    headers["Host"] = spec["host"]
if spec.get("user_agent"):
    headers["User-Agent"] = spec["user_agent"]
if spec.get("request_id"):
    headers["X-Test-Id"] = spec["request_id"]


def check_checksum(echo, sent):
    result["checksum_ok"] = (echo.get("body_sha256") == hashlib.sha256(sent).hexdigest()
                             and echo.get("body_length") == len(sent))
    if not result["checksum_ok"]:
        result["error"] = (f"body checksum: sent {len(sent)} bytes, backend got {echo.get('body_length')} "
                           f"{echo.get('body_sha256')}")


stream = kind in ("stream", "big_stream")
chunks = spec.get("chunks", 5)
text = "hello"
if kind in ("big", "big_stream"):
    generator = random.Random(12345)
    text = "".join(generator.choices(string.ascii_lowercase + string.digits + " ", k=spec.get("body_bytes", 32)))
body = json.dumps({"model": "fake-model", "messages": [{"role": "user", "content": text}], "stream": stream,
                   "fake_chunks": chunks, "fake_chunk_delay": spec.get("chunk_delay", 0.05)}).encode()
post_headers = {**headers, "Content-Type": "application/json", "Accept": "application/json"}
url = f"{spec['base_url']}/v1/chat/completions"
if spec.get("wait_for_go"):
    print(json.dumps({"armed": True}), flush=True)
    sys.stdin.readline()
started = time.monotonic()
try:
    with httpx.Client() as client:
        if kind == "models":
            response = client.get(f"{spec['base_url']}/v1/models", headers=headers)
            result["status"] = response.status_code
            ids = [model["id"] for model in response.json().get("data", [])] if response.status_code == 200 else []
            result["ok"] = response.status_code == 200 and "fake-model" in ids
            if not result["ok"]:
                result["error"] = f"models: {response.status_code} {response.text[:300]}"
        elif not stream:
            response = client.post(url, content=body, headers=post_headers)
            result["status"] = response.status_code
            if response.status_code == 200:
                check_checksum(response.json(), body)
                result["ok"] = bool(result["checksum_ok"])
            else:
                result["error"] = f"status {response.status_code}: {response.text[:300]}"
        else:
            with client.stream("POST", url, content=body, headers=post_headers) as response:
                result["status"] = response.status_code
                if response.status_code != 200:
                    response.read()
                    result["error"] = f"status {response.status_code}: {response.text[:300]}"
                else:
                    seqs, echo, done = [], None, False
                    for line in response.iter_lines():
                        # httpx before 0.24 (Debian 12 has 0.23) keeps the line ending.
                        line = line.rstrip("\r\n")
                        if not line.startswith("data: "):
                            continue
                        data = line[len("data: "):]
                        if data == "[DONE]":
                            done = True
                            continue
                        chunk = json.loads(data)
                        seqs.append(chunk.get("seq"))
                        echo = echo or chunk
                    result["done"] = done
                    result["chunks"] = len(seqs)
                    result["in_order"] = seqs == list(range(chunks + 1))
                    if echo:
                        check_checksum(echo, body)
                    if not result["in_order"]:
                        result["error"] = f"chunks out of order or missing: {seqs}"
                    elif not done:
                        result["error"] = "the stream ended without data: [DONE]"
                    result["ok"] = bool(done and result["in_order"] and result["checksum_ok"])
except Exception as error:  # noqa: BLE001 - every failure is the result, not a crash
    result["error"] = f"{type(error).__name__}: {error}"
    result["ok"] = False
result["elapsed"] = round(time.monotonic() - started, 3)
print(json.dumps(result), flush=True)
