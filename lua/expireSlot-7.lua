--[[
  expireSlot: the worker's verdict on a slot a node holds for a job attempt — a reservation
  not acked in time, a running job past its deadline, or either on a node gone offline:
  release it (reserved − 1, or committed − 1), and push a job_cancel to the node through the
  assignment feed (a node that never acks may be working on a reservation). Idempotent with ackJob/releaseJob: whichever removes the member first wins.

  KEYS[1] node hash            {p:sK}:node:<id>
  KEYS[2] reservation record   {p:sK}:resv:<job id>
  KEYS[3] reservations zset    {p:sK}:resv   ("<job>|<node>|<attempt>|<inbox entry>")
  KEYS[4] running jobs zset    {p:sK}:run    ("<job>|<node>|<attempt>")
  KEYS[5] node inbox stream    {p:sK}:inbox:<node id>
  KEYS[6] dirty set            {p:sK}:dirty
  KEYS[7] assignment feed      {p:sK}:assign

  ARGV[1] 'reservation' | 'running'
  ARGV[2] the zset member
  ARGV[3] node id   ARGV[4] job cancel frame (JSON)   ARGV[5] stream cap

  Marks the node dirty only when its load crosses max (lua/includes/slot-load.lua).

  Returns { code, dirty_was_empty }   code 1 released, 0 already released (acked, finished, expired)
]]
local rcall = redis.call
-- @include "slot-load"
local nodeKey, resvKey, resvSetKey, runKey, inboxKey, dirtyKey, feedKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local kind, member, nodeId = ARGV[1], ARGV[2], ARGV[3]
local loadBefore, max = slotLoad(nodeKey)
if kind == 'reservation' then
  if rcall('ZREM', resvSetKey, member) == 0 then return { 0, 0 } end
  local job, node, attempt, entry = string.match(member, '^(.*)|([^|]*)|([^|]*)|([^|]*)$')
  if rcall('GET', resvKey) == node .. '|' .. attempt .. '|' .. entry then rcall('DEL', resvKey) end
  rcall('XDEL', inboxKey, entry)
  if rcall('HINCRBY', nodeKey, 'reserved', -1) < 0 then rcall('HSET', nodeKey, 'reserved', 0) end
else
  if rcall('ZREM', runKey, member) == 0 then return { 0, 0 } end
  if rcall('HINCRBY', nodeKey, 'committed', -1) < 0 then rcall('HSET', nodeKey, 'committed', 0) end
end
rcall('XADD', feedKey, 'MAXLEN', '~', ARGV[5], '*', 'node', nodeId, 'frame', ARGV[4])
return { 1, markDirtyIfFlipped(nodeKey, dirtyKey, nodeId, loadBefore, max) }
