--[[
  reserveSlot: reserves one job slot on a node and hands the assignment to the node's inbox,
  atomically, re-checking everything against the LIVE node record (the selector chose from a
  snapshot that may be stale): this is what keeps any number of selectors from over-committing.
  Idempotent per job: a job already reserved on this node answers 2 and changes nothing.

  KEYS[1] node hash            {p:sK}:node:<id>
  KEYS[2] liveness zset        {p:sK}:live
  KEYS[3] reservation record   {p:sK}:resv:<job id>   ("<node id>|<attempt>|<inbox entry id>", expires with the TTL)
  KEYS[4] reservations zset    {p:sK}:resv            ("<job>|<node>|<attempt>|<inbox entry>" -> expiry ms)
  KEYS[5] node inbox stream    {p:sK}:inbox:<node id>
  KEYS[6] dirty set            {p:sK}:dirty
  KEYS[7] assignment feed      {p:sK}:assign          (what gateways tail to push job_assign live)

  ARGV[1] node id     ARGV[2] job id     ARGV[3] attempt id
  ARGV[4] server time, ms
  ARGV[5] reservation TTL, ms (SB_ACK_TIMEOUT_MS)
  ARGV[6] node TTL, ms: a node silent for longer is not live
  ARGV[7] job_assign frame (JSON) for the inbox
  ARGV[8] inbox and feed stream cap (approximate MAXLEN)
  ARGV[9] claim token of the placement ('' for a failover attempt): recovery's fence for it
          (fenceReservation-2.lua) refuses the reservation

  The node is marked dirty only when this reservation fills it (load reaches max): selectors
  count their own reservations, and this script's re-check keeps any number of them from
  over-committing, so the snapshot entry is not republished for every slot.

  Returns { code, running, reserved, max, dirty_was_empty }
    code  1 reserved   2 already reserved for this job (nothing changed)
         -1 node record gone  -2 not ready  -3 draining  -4 not live  -5 at capacity
         -6 fenced: recovery settled this placement as not reserved (the job was dropped)
]]
local rcall = redis.call
-- @include "slot-load"
local nodeKey, liveKey, resvKey, resvSetKey, inboxKey, dirtyKey, feedKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local nodeId, jobId, attempt, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])

local n = rcall('HMGET', nodeKey, 'status', 'draining', 'running', 'reserved', 'max_jobs', 'committed')
-- running: what the node reports, or the jobs it acked and has not finished, whichever is more
local running = math.max(tonumber(n[3]) or 0, tonumber(n[6]) or 0)
local reserved, max = tonumber(n[4]) or 0, tonumber(n[5]) or 0
local held = rcall('GET', resvKey)
if held and string.sub(held, 1, #nodeId + #attempt + 2) == nodeId .. '|' .. attempt .. '|' then
  return { 2, running, reserved, max, 0 }
end
if held and ARGV[9] and ARGV[9] ~= '' and held == 'fenced:' .. ARGV[9] then return { -6, running, reserved, max, 0 } end
if not n[1] or n[1] == 'removed' then return { -1, 0, 0, 0, 0 } end
if n[1] ~= 'ready' then return { -2, running, reserved, max, 0 } end
if n[2] == '1' then return { -3, running, reserved, max, 0 } end
local seen = tonumber(rcall('ZSCORE', liveKey, nodeId))
if not seen or seen < now - tonumber(ARGV[6]) then return { -4, running, reserved, max, 0 } end
if running + reserved >= max then return { -5, running, reserved, max, 0 } end

reserved = rcall('HINCRBY', nodeKey, 'reserved', 1)
local entry = rcall('XADD', inboxKey, 'MAXLEN', '~', ARGV[8], '*', 'type', 'job_assign', 'job', jobId, 'attempt', attempt, 'frame', ARGV[7])
rcall('SET', resvKey, nodeId .. '|' .. attempt .. '|' .. entry, 'PX', ARGV[5])
rcall('ZADD', resvSetKey, now + tonumber(ARGV[5]), jobId .. '|' .. nodeId .. '|' .. attempt .. '|' .. entry)
rcall('XADD', feedKey, 'MAXLEN', '~', ARGV[8], '*', 'node', nodeId, 'frame', ARGV[7])
return { 1, running, reserved, max, markDirtyOnFlip(dirtyKey, nodeId, running + reserved - 1, running + reserved, max) }
