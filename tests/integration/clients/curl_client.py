"""One request through curl with its default settings (no retries, no timeout, no redirects), for
test_gate.py; this script only builds the body, runs `curl` and checks what came back. The spec is
one JSON argument:
  {"base_url": "http://127.0.0.1:PORT", "host": "chat.localhost:PORT" (optional), "kind": "chat|stream|big|big_stream|models",
   "chunks": 5, "chunk_delay": 0.05, "body_bytes": 1048576, "api_key": "...", "user_agent": "...",
   "request_id": "...", "wait_for_go": false}
and one JSON line is printed: {"client", "kind", "status", "ok", "checksum_ok", "chunks", "in_order",
"done", "attempts", "elapsed", "error", "headers"}. The exit code is 0 whenever that line was printed.
request_id is sent as X-Test-Id; with wait_for_go the body is built first, {"armed": true} printed,
and curl started when a line arrives on stdin.
"""
import hashlib
import json
import os
import random
import string
import subprocess
import sys
import tempfile
import time

spec = json.loads(sys.argv[1])
kind = spec.get("kind", "chat")
result = {"client": "curl", "kind": kind, "status": None, "ok": False, "checksum_ok": None, "chunks": None,
          "in_order": None, "done": None, "attempts": 1, "elapsed": None, "error": None, "headers": {}}


def check_checksum(echo, sent):
    result["checksum_ok"] = (echo.get("body_sha256") == hashlib.sha256(sent).hexdigest()
                             and echo.get("body_length") == len(sent))
    if not result["checksum_ok"]:
        result["error"] = (f"body checksum: sent {len(sent)} bytes, backend got {echo.get('body_length')} "
                           f"{echo.get('body_sha256')}")


with tempfile.TemporaryDirectory(prefix="gate-curl-") as scratch:
    header_file = os.path.join(scratch, "headers")
    output_file = os.path.join(scratch, "body")
    command = ["curl", "-sS", "-D", header_file, "-o", output_file, "-w", "%{http_code}", "--no-buffer"]
    if spec.get("api_key", "sk-no-key"):  # "" sends no Authorization at all
        command += ["-H", f"Authorization: Bearer {spec.get('api_key', 'sk-no-key')}"]
    if spec.get("host"):
        command += ["-H", f"Host: {spec['host']}"]
    if spec.get("user_agent"):
        command += ["-A", spec["user_agent"]]
    if spec.get("request_id"):
        command += ["-H", f"X-Test-Id: {spec['request_id']}"]
    body = b""
    stream = kind in ("stream", "big_stream")
    chunks = spec.get("chunks", 5)
    if kind == "models":
        command += [f"{spec['base_url']}/v1/models"]
    else:
        text = "hello"
        if kind in ("big", "big_stream"):
            generator = random.Random(12345)
            text = "".join(generator.choices(string.ascii_lowercase + string.digits + " ", k=spec.get("body_bytes", 32)))
        body = json.dumps({"model": "fake-model", "messages": [{"role": "user", "content": text}], "stream": stream,
                           "fake_chunks": chunks, "fake_chunk_delay": spec.get("chunk_delay", 0.05)}).encode()
        body_file = os.path.join(scratch, "request.json")
        with open(body_file, "wb") as file:
            file.write(body)
        command += ["-H", "Content-Type: application/json", "-H", "Accept: application/json",
                    "--data-binary", f"@{body_file}", f"{spec['base_url']}/v1/chat/completions"]
    if spec.get("wait_for_go"):
        print(json.dumps({"armed": True}), flush=True)
        sys.stdin.readline()
    started = time.monotonic()
    completed = subprocess.run(command, capture_output=True, text=True)
    status = int(completed.stdout.strip() or 0)
    result["status"] = status or None
    if completed.returncode != 0:
        result["error"] = f"curl exited with {completed.returncode}: {completed.stderr.strip()}"
    if os.path.exists(header_file):
        with open(header_file, "rb") as file:
            for line in file.read().decode(errors="replace").splitlines()[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    result["headers"][name.strip().lower()] = value.strip()
    answer = b""
    if os.path.exists(output_file):
        with open(output_file, "rb") as file:
            answer = file.read()
    if completed.returncode == 0 and status != 200:
        result["error"] = f"status {status}: {answer[:300].decode(errors='replace')}"
    elif completed.returncode == 0:
        try:
            if kind == "models":
                ids = [model["id"] for model in json.loads(answer).get("data", [])]
                result["ok"] = "fake-model" in ids
            elif not stream:
                check_checksum(json.loads(answer), body)
                result["ok"] = bool(result["checksum_ok"])
            else:
                seqs, echo, done = [], None, False
                for line in answer.decode().splitlines():
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
        except ValueError as error:
            result["error"] = f"unreadable answer ({error}): {answer[:300].decode(errors='replace')}"
result["elapsed"] = round(time.monotonic() - started, 3)
print(json.dumps(result), flush=True)
