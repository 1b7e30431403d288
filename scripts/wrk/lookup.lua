-- wrk script: GET <base>/Users?filter=userName eq "<prefix>-NNNNNNN" for a random
-- user among N, with a bearer token. Set by environment: WRK_PREFIX, WRK_USERS,
-- WRK_TOKEN, WRK_BASE_PATH (e.g. /o/bench/scim/v2). Counts non-200 answers.
local prefix = os.getenv("WRK_PREFIX")
local users = tonumber(os.getenv("WRK_USERS"))
local base = os.getenv("WRK_BASE_PATH")
wrk.headers["Authorization"] = "Bearer " .. os.getenv("WRK_TOKEN")
wrk.headers["Accept"] = "application/scim+json"

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
  bad = 0
end

request = function()
  local name = string.format("%s-%07d", prefix, math.random(0, users - 1))
  -- filter=userName eq "name", percent-encoded
  local path = base .. "/Users?filter=userName%20eq%20%22" .. name .. "%22"
  return wrk.format("GET", path)
end

response = function(status, headers, body)
  if status ~= 200 or not string.find(body, '"totalResults":%s*1[,}%s]') then
    bad = bad + 1
  end
end

done = function(summary, latency, requests)
  local total_bad = 0
  for _, t in ipairs(threads) do
    total_bad = total_bad + t:get("bad")
  end
  io.write(string.format("RESULT rps=%.1f p50_ms=%.3f p99_ms=%.3f requests=%d errors=%d bad=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout,
    total_bad))
end
