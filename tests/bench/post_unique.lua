-- wrk script of accept_bench.sh: POSTs ewtp/1 messages with ids unique across threads and
-- runs. EWTP_BENCH_BODY names a file holding the message with "@ID@" where the id goes;
-- EWTP_BENCH_RUN prefixes every id; EWTP_BENCH_TOKEN is the bearer token.
local counter = 0
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(os.getenv("EWTP_BENCH_BODY"), "r"))
  template = f:read("*a")
  f:close()
  prefix = (os.getenv("EWTP_BENCH_RUN") or "bench") .. "-" .. tid .. "-"
  headers = {
    ["Authorization"] = "Bearer " .. (os.getenv("EWTP_BENCH_TOKEN") or "bench-token"),
    ["Content-Type"] = "application/json",
  }
end

function request()
  counter = counter + 1
  local body = template:gsub("@ID@", prefix .. counter)
  return wrk.format("POST", "/v1/messages", headers, body)
end

function done(summary, latency, requests)
  io.write(string.format("wrk: %d requests, %d non-2xx, %d socket errors, p99 %.2f ms\n",
    summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(99) / 1000))
end

-- EWTP_BENCH_DELAY_MS (bench.py, latency at 70 % load): each connection waits this long
-- before its next request (fractions by chance, as wrk takes whole milliseconds).
local pace = tonumber(os.getenv("EWTP_BENCH_DELAY_MS") or "")
if pace then
  function delay()
    local whole = math.floor(pace)
    if math.random() < pace - whole then
      return whole + 1
    end
    return whole
  end
end
