-- hpcansible: wrk's figures as one JSON line at the end (done()), and the size of the request
-- it sends at the start (the live figures divide the bytes wrk has written by it), so that
-- the client reads them without parsing wrk's human output. No request() or response()
-- function: wrk then sends one precomputed request and never calls Lua per request.
-- HPCANSIBLE_WRK_METHOD and HPCANSIBLE_WRK_BODY_FILE set the request (read in init).
local percentiles = {
  1, 5, 10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 92.5, 95, 96, 97, 98, 99,
  99.5, 99.9, 99.95, 99.99, 100,
}

function init(args)
  local method = os.getenv("HPCANSIBLE_WRK_METHOD")
  if method and method ~= "" then
    wrk.method = method
  end
  local body_file = os.getenv("HPCANSIBLE_WRK_BODY_FILE")
  if body_file and body_file ~= "" then
    local handle = assert(io.open(body_file, "rb"))
    wrk.body = handle:read("*a")
    handle:close()
  end
  -- wrk.init set the Host header before calling this; wrk.format() is the request it sends
  io.write(string.format("hpcansible-wrk-request-bytes %d\n", #wrk.format()))
  io.flush()
end

function done(summary, latency, requests)
  local points = {}
  for _, p in ipairs(percentiles) do
    points[#points + 1] = string.format("[%g,%d]", p, latency:percentile(p))
  end
  local errors = summary.errors
  io.write(string.format(
    "hpcansible-wrk {\"duration_us\":%d,\"requests\":%d,\"bytes\":%d," ..
    "\"errors\":{\"connect\":%d,\"read\":%d,\"write\":%d,\"status\":%d,\"timeout\":%d}," ..
    "\"latency_us\":{\"min\":%d,\"max\":%d,\"mean\":%f,\"stdev\":%f,\"percentiles\":[%s]}}\n",
    summary.duration, summary.requests, summary.bytes,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout,
    latency.min, latency.max, latency.mean, latency.stdev, table.concat(points, ",")))
end
