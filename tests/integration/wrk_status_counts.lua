-- wrk script: counts responses per status code and prints them when done, one "status CODE N"
-- line each, so that a test can check that no request got a server error.
local counts = {}
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    local seen = thread:get("statuses")
    for code, n in pairs(seen) do
      counts[code] = (counts[code] or 0) + n
    end
  end
  for code, n in pairs(counts) do
    io.write(string.format("status %d %d\n", code, n))
  end
  io.write(string.format("socket errors: connect %d, read %d, write %d, timeout %d\n",
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
end
