--[[
  ackJob: a node accepted an assignment: its reservation becomes a running job
  (reserved − 1, committed + 1, with a deadline) and leaves the inbox (no more redelivery).
  Idempotent. A late ack (the reservation already expired) is stale.

  KEYS[1] node hash            {p:sK}:node:<id>
  KEYS[2] reservation record   {p:sK}:resv:<job id>   ("<node>|<attempt>|<inbox entry>")
  KEYS[3] reservations zset    {p:sK}:resv            ("<job>|<node>|<attempt>|<inbox entry>" -> expiry)
  KEYS[4] running jobs zset    {p:sK}:run             ("<job>|<node>|<attempt>" -> deadline ms)
  KEYS[5] node inbox stream    {p:sK}:inbox:<node id>
  KEYS[6] dirty set            {p:sK}:dirty

  ARGV[1] node id   ARGV[2] job id   ARGV[3] attempt id
  ARGV[4] server time, ms
  ARGV[5] job timeout, ms (deadline = now + timeout)

  Marks the node dirty only when its load crosses max (lua/includes/slot-load.lua).

  Returns { code, dirty_was_empty }
    code  1 committed   2 already committed (duplicate ack)   -1 not this node's current attempt
]]
local rcall = redis.call
-- @include "slot-load"
local nodeKey, resvKey, resvSetKey, runKey, inboxKey, dirtyKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local nodeId, jobId, attempt = ARGV[1], ARGV[2], ARGV[3]
local mine = nodeId .. '|' .. attempt .. '|'
local runMember = jobId .. '|' .. nodeId .. '|' .. attempt

if rcall('ZSCORE', runKey, runMember) then return { 2, 0 } end
local held = rcall('GET', resvKey)
if not held or string.sub(held, 1, #mine) ~= mine then return { -1, 0 } end
if rcall('ZREM', resvSetKey, jobId .. '|' .. held) == 0 then return { -1, 0 } end -- expired meanwhile

local loadBefore, max = slotLoad(nodeKey)
rcall('DEL', resvKey)
rcall('XDEL', inboxKey, string.sub(held, #mine + 1))
if rcall('HINCRBY', nodeKey, 'reserved', -1) < 0 then rcall('HSET', nodeKey, 'reserved', 0) end
rcall('HINCRBY', nodeKey, 'committed', 1)
rcall('ZADD', runKey, tonumber(ARGV[4]) + tonumber(ARGV[5]), runMember)
return { 1, markDirtyIfFlipped(nodeKey, dirtyKey, nodeId, loadBefore, max) }
