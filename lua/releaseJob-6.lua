--[[
  releaseJob: a node finished (or failed) an attempt: release what it held — the running job
  (committed − 1) or, for a result that came without an ack, the reservation (reserved − 1,
  out of the inbox). Idempotent: a second result releases nothing.

  KEYS[1] node hash            {p:sK}:node:<id>
  KEYS[2] reservation record   {p:sK}:resv:<job id>
  KEYS[3] reservations zset    {p:sK}:resv
  KEYS[4] running jobs zset    {p:sK}:run
  KEYS[5] node inbox stream    {p:sK}:inbox:<node id>
  KEYS[6] dirty set            {p:sK}:dirty

  ARGV[1] node id   ARGV[2] job id   ARGV[3] attempt id

  Marks the node dirty only when its load crosses max (lua/includes/slot-load.lua).

  Returns { code, dirty_was_empty }
    code  1 released the running job   2 released the reservation   0 nothing held (duplicate
          or stale result)
]]
local rcall = redis.call
-- @include "slot-load"
local nodeKey, resvKey, resvSetKey, runKey, inboxKey, dirtyKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local nodeId, jobId, attempt = ARGV[1], ARGV[2], ARGV[3]
local mine = nodeId .. '|' .. attempt .. '|'

local loadBefore, max = slotLoad(nodeKey)
local code = 0
if rcall('ZREM', runKey, jobId .. '|' .. nodeId .. '|' .. attempt) == 1 then
  if rcall('HINCRBY', nodeKey, 'committed', -1) < 0 then rcall('HSET', nodeKey, 'committed', 0) end
  code = 1
else
  local held = rcall('GET', resvKey)
  if held and string.sub(held, 1, #mine) == mine and rcall('ZREM', resvSetKey, jobId .. '|' .. held) == 1 then
    rcall('DEL', resvKey)
    rcall('XDEL', inboxKey, string.sub(held, #mine + 1))
    if rcall('HINCRBY', nodeKey, 'reserved', -1) < 0 then rcall('HSET', nodeKey, 'reserved', 0) end
    code = 2
  end
end
if code == 0 then return { 0, 0 } end
return { code, markDirtyIfFlipped(nodeKey, dirtyKey, nodeId, loadBefore, max) }
