--[[
  reconcileNode: recounts a node's reserved and committed slots from the reservations and
  running-jobs sets (the truth the timeouts work from) and corrects the counters if they
  drifted, so no slot can stay leaked. O(jobs in flight on the shard); run rarely.

  KEYS[1] node hash            {p:sK}:node:<id>
  KEYS[2] reservations zset    {p:sK}:resv   ("<job>|<node>|<attempt>|<inbox entry>")
  KEYS[3] running jobs zset    {p:sK}:run    ("<job>|<node>|<attempt>")

  ARGV[1] node id

  Returns { corrected (1|0), reserved, committed }
]]
local rcall = redis.call
local nodeId = ARGV[1]
local function count(key)
  local n = 0
  for _, member in ipairs(rcall('ZRANGE', key, 0, -1)) do
    local _, node = string.match(member, '^([^|]*)|([^|]*)|')
    if node == nodeId then n = n + 1 end
  end
  return n
end
if rcall('EXISTS', KEYS[1]) == 0 then return { 0, 0, 0 } end
local reserved, committed = count(KEYS[2]), count(KEYS[3])
local now = rcall('HMGET', KEYS[1], 'reserved', 'committed')
if (tonumber(now[1]) or 0) == reserved and (tonumber(now[2]) or 0) == committed then return { 0, reserved, committed } end
rcall('HSET', KEYS[1], 'reserved', reserved, 'committed', committed)
return { 1, reserved, committed }
