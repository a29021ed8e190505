--[[
  registerNode: registers (or re-registers) a node and opens a new connection epoch.

  KEYS[1] node hash        {p:sK}:node:<id>
  KEYS[2] liveness zset    {p:sK}:live     (member id, score = server ms of last contact)
  KEYS[3] offline zset     {p:sK}:offline  (member id, score = server ms it went offline)
  KEYS[4] dirty set        {p:sK}:dirty
  KEYS[5] capability blobs {p:sK}:caps     (digest -> canonical JSON, once per shard)
  KEYS[6] blob references  {p:sK}:caprefs  (digest -> node-hash fields naming it)
  A registered node is in exactly one of the liveness and offline zsets: they are the shard's
  node list (the `:nodes` set of earlier layouts is written no more).

  ARGV[1]  node id
  ARGV[2]  server time, ms
  ARGV[3]  has GPU (1|0)
  ARGV[4]  max_concurrent_jobs
  ARGV[5]  static digest            ARGV[6]  static blob (canonical JSON: hardware, platform,
                                             agent version, features, accept_public_jobs, …)
  ARGV[7]  svc digest               ARGV[8]  svc blob
  ARGV[9]  lang digest              ARGV[10] lang blob
  ARGV[11] '1' when the gateway generated the id: an existing node with it is a collision
  ARGV[12] proof of identity ('' = the node's own token, or auth off: nothing to check);
           'offline' / 'refuse' = the join token, under that SB_JOIN_REREGISTER policy

  Status becomes `registering` (a healthy heartbeat makes it ready). reserved/running/draining
  survive a re-registration (and so does the node's history: `h0`…`h5`,
  includes/node-history.lua, where the registration's time is kept); the stored heartbeat
  timestamp is reset so the new session's heartbeats apply whatever the node's clock did. Marking the node dirty when it was not
  stamps `chg_at` = server time (where the pipeline lag of the change starts).
  The node hash keeps each part's digest only (dg_<part>); a changed part takes a reference to
  its blob in the shard's caps hash (stored there if new) and drops the old one
  (lua/includes/caps.lua). A record of an earlier layout is migrated first (migrateRecord).
  A field whose absence means its default (draining 0, reserved 0) is not written, and `conn`
  only ever holds `gone` (releaseConnection): a registration clears it.

  A join token may take a known id only when an operator reset it (claim 'open', used up by
  this registration), never after a revocation (claim 'blocked'), and otherwise under
  'offline' only when nothing holds the id: status offline or removed, or its socket was
  handed over (conn 'gone', a gateway shutting down). Any successful registration clears claim.

  Returns { epoch, capability_changed (1|0), dirty_was_empty (1|0), is_new (1|0) }
    capability_changed is also 1 for a node that was offline (published with no pools while
    offline; the flush derives them again)
       or { -1, 0, 0, 0 } when a generated id collides (nothing written; generate another)
       or { -2, 0, 0, 0 } when the join token may not take this id (nothing written)
]]
local rcall = redis.call
-- @include "caps"
-- @include "node-history"
local nodeKey, liveKey, offlineKey, dirtyKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local capsKey, refsKey = KEYS[5], KEYS[6]
local nodeId, now = ARGV[1], ARGV[2]

local isNew = rcall('EXISTS', nodeKey) == 0
if ARGV[11] == '1' and not isNew then return { -1, 0, 0, 0 } end
local proof = ARGV[12] or ''
if proof ~= '' and not isNew then
  local held = rcall('HMGET', nodeKey, 'status', 'conn', 'claim')
  local free = held[3] == 'open'
  if not free and held[3] ~= 'blocked' and proof == 'offline' then
    free = held[1] == 'offline' or held[1] == 'removed' or held[2] == 'gone'
  end
  if not free then return { -2, 0, 0, 0 } end
end
rcall('HDEL', nodeKey, 'claim', 'conn', 'unhealthy')
if not isNew then
  local old = rcall('HMGET', nodeKey, 'dg_models', 'cap_svc')
  if old[1] or old[2] then migrateRecord(nodeKey, capsKey, refsKey) end
end
local stored = rcall('HMGET', nodeKey, 'dg_static', 'dg_svc', 'dg_lang', 'status')

local capChanged = 0
if stored[4] == 'offline' then capChanged = 1 end
for i = 1, 3 do
  local digest = ARGV[3 + 2 * i]
  if stored[i] ~= digest then
    capAcquire(capsKey, refsKey, digest, ARGV[4 + 2 * i])
    capRelease(capsKey, refsKey, stored[i])
    rcall('HSET', nodeKey, 'dg_' .. CAP_PARTS[i], digest)
    capChanged = 1
  end
end

rcall('HSET', nodeKey, 'status', 'registering', 'hb_at', now, 'hb_ts', 0, 'gpu', ARGV[3],
  'max_jobs', ARGV[4])
noteHistory(nodeKey, now, 'gR')
local epoch = rcall('HINCRBY', nodeKey, 'epoch', 1)

rcall('ZADD', liveKey, now, nodeId)
rcall('ZREM', offlineKey, nodeId)

local dirtyWasEmpty = 0
if rcall('SADD', dirtyKey, nodeId) == 1 then
  -- first change since the last publication: where its pipeline lag starts
  rcall('HSET', nodeKey, 'chg_at', now)
  if rcall('SCARD', dirtyKey) == 1 then dirtyWasEmpty = 1 end
end

return { epoch, capChanged, dirtyWasEmpty, isNew and 1 or 0 }
