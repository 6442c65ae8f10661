-- wrk script: replays pre-authenticated deposits from
-- $SEALPOST_BENCH_DIR/auth-<thread>.txt (one relay session per thread, each
-- line the next sequence number) with the body $SEALPOST_BENCH_DIR/body.json.
local counter = 0
local threads = {}

-- With $SEALPOST_BENCH_PORTS ("9390 9392"), thread i talks to the i-th
-- port (round robin): instances behind no sticky routing.
function setup(thread)
  thread:set("tid", counter)
  local ports = {}
  for p in string.gmatch(os.getenv("SEALPOST_BENCH_PORTS") or "", "%d+") do
    table.insert(ports, p)
  end
  if #ports > 0 then
    thread.addr = wrk.lookup("127.0.0.1", ports[(counter % #ports) + 1])[1]
  end
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local dir = os.getenv("SEALPOST_BENCH_DIR")
  local f = assert(io.open(dir .. "/body.json", "r"))
  body = f:read("*a")
  f:close()
  auths = {}
  for line in io.lines(dir .. "/auth-" .. tid .. ".txt") do
    table.insert(auths, line)
  end
  idx = 1
end

-- With $SEALPOST_BENCH_ADDRESSES (N), requests come from N client
-- addresses in turn, named in X-Forwarded-For (the relay trusts loopback
-- as its proxy): clients spread as behind a load balancer.
local addresses = tonumber(os.getenv("SEALPOST_BENCH_ADDRESSES") or "0")

function request()
  local a = auths[idx]
  if a == nil then
    a = auths[1] -- exhausted: the relay answers 401, counted as non-2xx
  end
  local headers = { ["Content-Type"] = "application/json", ["Authorization"] = a }
  if addresses > 0 then
    local n = (idx * 2 + tid) % addresses
    headers["X-Forwarded-For"] = string.format("10.%d.%d.%d", math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
  end
  idx = idx + 1
  return wrk.format("POST", "/v1/messages", headers, body)
end
