-- wrk script for bench/latency.sh: every connection waits GAP milliseconds (an integer: wrk's
-- timers count whole milliseconds) after each answer before its next request, so C connections
-- offer about C * 1000 / GAP requests a second whatever the target's speed, instead of as many
-- as it can answer. wrk times each request from its send to its answer; the wait is not counted.
-- A slow answer delays its connection's next request (coordinated omission is not corrected:
-- at half load that is rare, and the p99.9 column shows how rare).
local gap = tonumber(os.getenv("GAP") or "5")
local conns = tonumber(os.getenv("CONNS") or "1")
local calls = 0

function delay()
  -- The first wait of each connection (wrk asks once per connection as it opens) is spread
  -- over one gap, so the connections do not all send in step.
  calls = calls + 1
  if calls <= conns then return math.random(0, gap) end
  return gap
end

-- The percentiles wrk's --latency does not print, in microseconds, for latency.sh to read.
function done(summary, latency, requests)
  io.write(string.format("pcts %d %d %d %d %d\n", latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max))
end
