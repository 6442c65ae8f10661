-- wrk script: replays pre-authenticated deposits from
-- $SEALPOST_BENCH_DIR/auth-<thread>.txt (one relay session per thread, each
-- line the next sequence number) with the body $SEALPOST_BENCH_DIR/body.json.
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
  for line in io.lines(dir .. "/auth-" .. tid .. ".txt") do
    table.insert(auths, line)
  end
  idx = 1
end

function request()
  local a = auths[idx]
  idx = idx + 1
  if a == nil then
    a = auths[1] -- exhausted: the relay answers 401, counted as non-2xx
  end
  return wrk.format("POST", "/v1/messages", { ["Content-Type"] = "application/json", ["Authorization"] = a }, body)
end
