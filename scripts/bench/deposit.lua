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

function request()
  local a = auths[idx]
  idx = idx + 1
  if a == nil then
    a = auths[1] -- exhausted: the relay answers 401, counted as non-2xx
  end
  return wrk.format("POST", "/v1/messages", { ["Content-Type"] = "application/json", ["Authorization"] = a }, body)
end
