-- wrk script of bench/http.bench.mjs. BENCH_MODE (environment):
--   fixed   every request asks for the URL given to wrk (hits once warm);
--   unique  every request asks for a URL never asked before (misses): <url>&u=<nonce>-<thread>-<n>;
--   mixed   90% of requests pick one of BENCH_KEYS warm URLs (<url>&k=<i>) by a Zipf law
--           (s = 1), 10% ask for a never-seen URL (misses).
-- done() prints one line the bench parses: WRK rps=… p50_ms=… p99_ms=… reqs=… errors=… non2xx=…
local mode = os.getenv("BENCH_MODE") or "fixed"
local nonce = os.getenv("BENCH_NONCE") or tostring(os.time())
local keys = tonumber(os.getenv("BENCH_KEYS") or "1000")
local next_id = 0
local cdf = {}

function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
end

function init(args)
  local sum = 0
  for i = 1, keys do sum = sum + 1 / i end
  local acc = 0
  for i = 1, keys do
    acc = acc + (1 / i) / sum
    cdf[i] = acc
  end
  math.randomseed(os.time() + (tid or 0))
end

local function zipf()
  local u = math.random()
  local lo, hi = 1, keys
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return lo
end

local counter = 0
function request()
  local sep = string.find(wrk.path, "?", 1, true) and "&" or "?"
  if mode == "unique" or (mode == "mixed" and math.random() < 0.1) then
    counter = counter + 1
    return wrk.format(nil, wrk.path .. sep .. "u=" .. nonce .. "-" .. tostring(tid) .. "-" .. counter)
  end
  if mode == "mixed" then return wrk.format(nil, wrk.path .. sep .. "k=" .. zipf()) end
  return wrk.format(nil, wrk.path)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK rps=%.1f p50_ms=%.3f p99_ms=%.3f reqs=%d errors=%d non2xx=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, e.connect + e.read + e.write + e.timeout, e.status))
end
