-- significance filter (included by recordHeartbeat and publishSnapshot): does a node's current
-- state differ meaningfully from its published values "status|running|cpu|gpu|mem|published_at"
-- (the shard's :pub hash)? Status or running jobs changed, or cpu / gpu / mem moved more than
-- `threshold` points; with `now`, also an entry published `maxAge` ms ago or more. No published
-- values: significant.
local function significantChange(published, status, running, cpu, gpu, mem, threshold, now, maxAge)
  if not published then return true end
  local pStatus, pRunning, pCpu, pGpu, pMem, pAt =
    string.match(published, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
  if pAt == nil then return true end
  local function moved(value, p)
    if value == '' and p == '' then return false end
    local a, b = tonumber(value), tonumber(p)
    return a == nil or b == nil or math.abs(a - b) > threshold
  end
  return pStatus ~= status or pRunning ~= running
    or (now ~= nil and now - tonumber(pAt) >= maxAge)
    or moved(cpu, pCpu) or moved(gpu, pGpu) or moved(mem, pMem)
end
