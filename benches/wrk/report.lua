-- wrk: the run's figures on one line for the bench scripts:
-- RESULT <requests> <errors> <req/s> <p50 ms> <p99 ms> <max ms>
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %.1f %.3f %.3f %.3f\n", summary.requests,
    e.status + e.connect + e.read + e.write + e.timeout, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
