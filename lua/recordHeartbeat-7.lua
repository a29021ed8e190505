--[[
  recordHeartbeat: the whole heartbeat hot path, O(1).
    1. unknown node -> -1. A heartbeat older than the stored one by at most the reorder window
       was overtaken in flight by a newer one: its load is not applied, but the node spoke, so
       its liveness is refreshed -> 0. Older by more than the window, the node's clock went
       back (an NTP correction after a timestamp in the future): applied, and its timestamp
       becomes the reference -> 3. A timestamp in the future therefore never silences a node.
    2. load, running jobs, node and server timestamps, liveness score
    3. status machine (PROTOCOL.md "Node status"); a change of status joins the node's history
    4. capability parts: a part whose digest differs from the stored one takes a reference to
       its blob in the shard's caps hash (stored there if new) and drops the old one
       (lua/includes/caps.lua); a record of an earlier layout is migrated first
    5. significance filter against the PUBLISHED values (the record's `pub`, written by the
       snapshot flush; a record published before they moved there has them in the shard's
       published-values hash, moved into the record now): the node is added to the dirty set
       only when the snapshot would change meaningfully; reports whether the dirty set was
       empty before.
       A real change (not the max-age republication) that is the first since the node's last
       publication stamps `chg_at` = server time: where the pipeline lag of the change starts.

  KEYS[1] node hash      {p:sK}:node:<id>
  KEYS[2] liveness zset  {p:sK}:live
  KEYS[3] offline zset   {p:sK}:offline
  KEYS[4] dirty set      {p:sK}:dirty
  KEYS[5] published      {p:sK}:pub   (before issue 13's third step: id -> the published values;
                                       the record's `pub` now, "status|running|cpu|gpu|mem|at")
  KEYS[6] capability blobs {p:sK}:caps     (digest -> canonical JSON, once per shard)
  KEYS[7] blob references  {p:sK}:caprefs  (digest -> node-hash fields naming it)

  ARGV[1]  node id
  ARGV[2]  node timestamp, ms (ordering only)
  ARGV[3]  server time, ms
  ARGV[4]  cpu_percent   ARGV[5] gpu_percent ('' = not reported)
  ARGV[6]  gpu_mem_percent ('' = not reported; not stored: nothing reads it)   ARGV[7] mem_percent
  ARGV[8]  running_jobs
  ARGV[9]  some service type ready (1|0)
  ARGV[10] GPU required for health (1|0)
  ARGV[11] svc digest     ARGV[12] svc blob
  ARGV[13] lang digest ('' = not sent: unchanged)    ARGV[14] lang blob
           A blob may be '' when the gateway believes Redis holds that digest already; if the
           stored digest differs and the shard's caps hash lacks the new one, nothing is
           written and the script answers 2 (send blobs).
  ARGV[15] load change threshold, percentage points
  ARGV[16] max age of a published entry, ms
  ARGV[17] consecutive unhealthy heartbeats before ready -> degraded
  ARGV[18] reorder window, ms (SB_HEARTBEAT_REORDER_MS)
  The unhealthy count is stored only while it is not 0.

  Returns { code, status, capability_changed (1|0), dirty_was_empty (1|0) }
    capability_changed is also 1 when the heartbeat brings an offline node back (published with
    no pools while offline; the flush derives them again)
    code  1 applied   0 stale (reordered: only liveness refreshed)   -1 not registered
          2 a changed part came without its blob: nothing written, call again with blobs
          3 applied after a clock jump (older than stored by more than the reorder window)
]]
local rcall = redis.call
-- @include "significance"
-- @include "caps"
-- @include "node-history"
local nodeKey, liveKey, offlineKey, dirtyKey, pubKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local capsKey, refsKey = KEYS[6], KEYS[7]
local nodeId, ts, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])

local s = rcall('HMGET', nodeKey, 'status', 'hb_ts', 'gpu', 'unhealthy', 'dg_svc', 'dg_lang', 'dg_models', 'cap_svc',
  'pub')
-- s[7], s[8]: fields only a record of an earlier layout has (caps.lua migrateRecord)
local status = s[1]
if not status or status == 'removed' then return { -1, '', 0, 0 } end
local storedTs = tonumber(s[2]) or 0
local applied = 1
if ts < storedTs then
  if storedTs - ts <= tonumber(ARGV[18]) then
    -- an offline node is brought back by its newer heartbeats only
    if status ~= 'offline' then
      rcall('HSET', nodeKey, 'hb_at', ARGV[3])
      rcall('ZADD', liveKey, now, nodeId)
    end
    return { 0, status, 0, 0 }
  end
  applied = 3
end
local svcChanged = s[5] ~= ARGV[11]
local langChanged = ARGV[13] ~= '' and s[6] ~= ARGV[13]
local function missing(changed, digest, blob)
  return changed and blob == '' and not capStored(capsKey, digest)
end
if missing(svcChanged, ARGV[11], ARGV[12]) or missing(langChanged, ARGV[13], ARGV[14]) then
  return { 2, status, 0, 0 }
end
if s[7] or s[8] then migrateRecord(nodeKey, capsKey, refsKey) end

-- 3. status machine
local healthy = ARGV[9] == '1' and (s[3] == '1' or ARGV[10] == '0')
local unhealthy = tonumber(s[4]) or 0
local next = status
if healthy then
  next, unhealthy = 'ready', 0
else
  unhealthy = unhealthy + 1
  if status == 'ready' and unhealthy >= tonumber(ARGV[17]) then
    next = 'degraded'
  elseif status == 'offline' then
    next = 'degraded'
  end
end

-- 4. capability parts: store only what really changed
local capChanged = 0
local function swap(part, old, digest, blob)
  capAcquire(capsKey, refsKey, digest, blob)
  capRelease(capsKey, refsKey, old)
  rcall('HSET', nodeKey, 'dg_' .. part, digest)
end
if svcChanged then
  swap('svc', s[5], ARGV[11], ARGV[12])
  capChanged = 1
end
if langChanged then
  swap('lang', s[6], ARGV[13], ARGV[14])
  capChanged = 1
end

-- 2. load, timestamps, liveness
if unhealthy > 0 then
  rcall('HSET', nodeKey, 'status', next, 'unhealthy', unhealthy, 'hb_ts', ARGV[2], 'hb_at', ARGV[3],
    'cpu', ARGV[4], 'gpu_pct', ARGV[5], 'mem', ARGV[7], 'running', ARGV[8])
else
  rcall('HSET', nodeKey, 'status', next, 'hb_ts', ARGV[2], 'hb_at', ARGV[3],
    'cpu', ARGV[4], 'gpu_pct', ARGV[5], 'mem', ARGV[7], 'running', ARGV[8])
  if s[4] then rcall('HDEL', nodeKey, 'unhealthy') end
end
rcall('ZADD', liveKey, now, nodeId)
if next ~= status then noteHistory(nodeKey, now, string.sub(next, 1, 1) .. (healthy and 'h' or 'u')) end
if status == 'offline' then
  rcall('ZREM', offlineKey, nodeId)
  capChanged = 1
end

-- 5. significance filter against the published entry
local published = s[9]
if not published then
  -- published before the values moved into the record: moved now
  published = rcall('HGET', pubKey, nodeId)
  if published then
    rcall('HSET', nodeKey, 'pub', published)
    rcall('HDEL', pubKey, nodeId)
  end
end
local changed = capChanged == 1 or significantChange(published, next, ARGV[8], ARGV[4], ARGV[5], ARGV[7],
  tonumber(ARGV[15]))
local dirty = changed or significantChange(published, next, ARGV[8], ARGV[4], ARGV[5], ARGV[7],
  tonumber(ARGV[15]), now, tonumber(ARGV[16]))
-- pipeline lag starts here: the server time of the first change since the last publication
local pAt = published and tonumber(string.match(published, '|([^|]*)$')) or 0
if changed and (tonumber(rcall('HGET', nodeKey, 'chg_at')) or 0) <= pAt then
  rcall('HSET', nodeKey, 'chg_at', ARGV[3])
end

local dirtyWasEmpty = 0
if dirty and rcall('SADD', dirtyKey, nodeId) == 1 and rcall('SCARD', dirtyKey) == 1 then dirtyWasEmpty = 1 end

return { applied, next, capChanged, dirtyWasEmpty }
