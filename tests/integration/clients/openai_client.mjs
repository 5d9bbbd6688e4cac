// One request through the official OpenAI Node SDK with its default settings (timeout 10 min,
// 2 retries), for test_gate.py. The spec is one JSON argument:
//   {"base_url": "http://localhost:PORT", "kind": "chat|stream|big|big_stream|models",
//    "chunks": 5, "chunk_delay": 0.05, "body_bytes": 1048576, "api_key": "...", "user_agent": "...",
//    "request_id": "...", "wait_for_go": false}
// and one JSON line is printed: {"client", "kind", "status", "ok", "checksum_ok", "chunks", "in_order",
// "done", "attempts", "elapsed", "error"}. The exit code is 0 whenever that line was printed.
// request_id is sent as X-Test-Id (Caddy's access log and the fake record it). With wait_for_go,
// everything is loaded and built first, then {"armed": true} is printed and the request is sent
// when a line arrives on stdin: the test fires at the moment it chooses, without Node's start-up.
//
// The only option beyond the defaults is a fetch that counts the attempts (a retry the SDK made on
// its own is visible to the test) and hashes the exact body the SDK sent; it changes nothing else.
// There is no Host option: Node's fetch sends the URL's own host and drops a Host header, so the gate
// tests give the backend's Caddy site a name that resolves here (localhost:PORT).
import OpenAI from "openai";
import { createHash } from "node:crypto";

const spec = JSON.parse(process.argv[2]);
const kind = spec.kind ?? "chat";
const result = { client: "openai-node", kind, status: null, ok: false, checksum_ok: null, chunks: null,
                 in_order: null, done: null, attempts: 0, elapsed: null, error: null };
let sentSha256 = null;
let sentLength = null;

const countingFetch = (url, init = {}) => {
  result.attempts += 1;
  if (typeof init.body === "string") {
    sentSha256 = createHash("sha256").update(init.body, "utf8").digest("hex");
    sentLength = Buffer.byteLength(init.body, "utf8");
  }
  return fetch(url, init);
};

const headers = {};
if (spec.user_agent) headers["User-Agent"] = spec.user_agent;
if (spec.request_id) headers["X-Test-Id"] = spec.request_id;
const client = new OpenAI({ baseURL: `${spec.base_url}/v1`, apiKey: spec.api_key ?? "sk-no-key", defaultHeaders: headers,
                            fetch: countingFetch });

function content() {
  // Printable, incompressible-looking text, so that the body is about body_bytes long.
  const size = spec.body_bytes ?? 32;
  let text = "";
  let x = 12345;
  const letters = "abcdefghijklmnopqrstuvwxyz0123456789 ";
  const parts = [];
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    parts.push(letters[x % letters.length]);
    if (parts.length === 65536) { text += parts.join(""); parts.length = 0; }
  }
  return text + parts.join("");
}

function checkChecksum(echo) {
  result.checksum_ok = echo.body_sha256 === sentSha256 && echo.body_length === sentLength;
  if (!result.checksum_ok) {
    result.error = `body checksum: sent ${sentLength} bytes ${sentSha256}, backend got ${echo.body_length} ${echo.body_sha256}`;
  }
}

const stream = kind === "stream" || kind === "big_stream";
const big = kind === "big" || kind === "big_stream";
const chunks = spec.chunks ?? 5;
const params = { model: "fake-model", messages: [{ role: "user", content: big ? content() : "hello" }], stream,
                 fake_chunks: chunks, fake_chunk_delay: spec.chunk_delay ?? 0.05 };

if (spec.wait_for_go) {
  console.log(JSON.stringify({ armed: true }));
  await new Promise((resolve) => process.stdin.once("data", resolve));
  process.stdin.pause();
}
const started = Date.now();
try {
  if (kind === "models") {
    const { data, response } = await client.models.list().withResponse();
    result.status = response.status;
    const ids = [];
    for await (const model of data) ids.push(model.id);
    result.ok = response.status === 200 && ids.includes("fake-model");
    if (!result.ok) result.error = `models: ${JSON.stringify(ids)}`;
  } else {
    const { data, response } = await client.chat.completions.create(params).withResponse();
    result.status = response.status;
    if (!stream) {
      checkChecksum(data);
      result.ok = response.status === 200 && result.checksum_ok && data.choices?.[0]?.message?.content === "ok";
    } else {
      const seqs = [];
      let echo = null;
      for await (const chunk of data) {
        seqs.push(chunk.seq);
        echo = echo ?? chunk;
        if (chunk.body_sha256 !== echo.body_sha256) result.error = "chunks disagree on the body checksum";
      }
      result.done = true;  // the SDK ends the iteration at data: [DONE]; a cut stream throws instead
      result.chunks = seqs.length;
      result.in_order = seqs.length === chunks + 1 && seqs.every((seq, index) => seq === index);
      if (echo) checkChecksum(echo);
      if (!result.in_order && !result.error) result.error = `chunks out of order or missing: ${JSON.stringify(seqs)}`;
      result.ok = response.status === 200 && result.in_order && result.checksum_ok === true && !result.error;
    }
  }
} catch (error) {
  result.status = error?.status ?? result.status;
  result.error = `${error?.constructor?.name ?? "Error"}: ${error?.message ?? String(error)}`;
  result.ok = false;
}
result.elapsed = (Date.now() - started) / 1000;
console.log(JSON.stringify(result));
