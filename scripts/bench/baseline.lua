-- wrk script: POSTs the same deposit body to the baseline server.
function init(args)
  local f = assert(io.open(os.getenv("SEALPOST_BENCH_DIR") .. "/body.json", "r"))
  body = f:read("*a")
  f:close()
end

function request()
  return wrk.format("POST", "/", { ["Content-Type"] = "application/json" }, body)
end
