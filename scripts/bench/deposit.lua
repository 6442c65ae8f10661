-- wrk script: replays pre-signed deposits (one nonce each) from
-- $SEALPOST_BENCH_DIR/auth.txt with the body $SEALPOST_BENCH_DIR/body.json.
local counter = 0
local threads = {}

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local dir = os.getenv("SEALPOST_BENCH_DIR")
  local f = assert(io.open(dir .. "/body.json", "r"))
  body = f:read("*a")
  f:close()
  auths = {}
  local i = 0
  for line in io.lines(dir .. "/auth.txt") do
    -- Each thread keeps every n-th header so no two threads share a nonce.
    if i % tonumber(os.getenv("SEALPOST_BENCH_THREADS")) == tid then
      table.insert(auths, line)
    end
    i = i + 1
  end
  idx = 1
end

function request()
  local a = auths[idx]
  idx = idx + 1
  if a == nil then
    a = auths[1] -- exhausted: the relay will answer 401 (counted as errors)
  end
  return wrk.format("POST", "/v1/messages", { ["Content-Type"] = "application/json", ["Authorization"] = a }, body)
end
