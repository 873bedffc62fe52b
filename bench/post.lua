-- wrk script of the benchmark: POSTs one JSON body on every request and
-- prints the run's figures as one JSON line (prefix BENCH_JSON) at the end.
--
-- Environment:
--   BENCH_BODY   the request body (default: the seed classifier payload)
--   BENCH_PORTS  optional comma-separated ports on 127.0.0.1: thread i targets
--                port i mod n, to load several replicas directly from one wrk
--                (thread.addr, as in wrk's scripts/addr.lua)

wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY") or '{"monthly_fee": 60, "customer_age": 30, "support_calls": 1}'
wrk.headers["Content-Type"] = "application/json"

local ports = {}
for port in string.gmatch(os.getenv("BENCH_PORTS") or "", "[0-9]+") do
   table.insert(ports, port)
end
local next_thread = 0

function setup(thread)
   if #ports > 0 then
      local port = ports[(next_thread % #ports) + 1]
      next_thread = next_thread + 1
      thread.addr = wrk.lookup("127.0.0.1", port)[1]
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"mean":%.1f,"stdev":%.1f,"min":%d,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.mean, latency.stdev, latency.min, latency.max,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9)))
end
