--[[
  registerNode: registers (or re-registers) a node and opens a new connection epoch.

  KEYS[1] node hash        {p:sK}:node:<id>
  KEYS[2] shard node set   {p:sK}:nodes
  KEYS[3] liveness zset    {p:sK}:live     (member id, score = server ms of last contact)
  KEYS[4] offline zset     {p:sK}:offline  (member id, score = server ms it went offline)
  KEYS[5] dirty set        {p:sK}:dirty
  KEYS[6] capability blobs {p:sK}:caps     (digest -> canonical JSON, once per shard)
  KEYS[7] blob references  {p:sK}:caprefs  (digest -> node-hash fields naming it)

  ARGV[1]  node id
  ARGV[2]  server time, ms
  ARGV[3]  has GPU (1|0)
  ARGV[4]  max_concurrent_jobs
  ARGV[5]  accept_public_jobs (1|0)
  ARGV[6]  agent version            ARGV[7]  platform
  ARGV[8]  static digest            ARGV[9]  static blob (canonical JSON)
  ARGV[10] svc digest               ARGV[11] svc blob
  ARGV[12] lang digest              ARGV[13] lang blob
  ARGV[14] models digest            ARGV[15] models blob
  ARGV[16] '1' when the gateway generated the id: an existing node with it is a collision
  ARGV[17] proof of identity ('' = the node's own token, or auth off: nothing to check);
           'offline' / 'refuse' = the join token, under that SB_JOIN_REREGISTER policy
  ARGV[18] connection: 'ws' (a socket holds the epoch) or 'http'

  Status becomes `registering` (a healthy heartbeat makes it ready). reserved/running/draining
  survive a re-registration (and so does the node's history: `h0`…`h4`, includes/node-history.lua); the stored heartbeat timestamp is reset so the new session's
  heartbeats apply whatever the node's clock did. Marking the node dirty when it was not
  stamps `chg_at` = server time (where the pipeline lag of the change starts).
  The node hash keeps each part's digest only (dg_<part>); a changed part takes a reference to
  its blob in the shard's caps hash (stored there if new) and drops the old one
  (lua/includes/caps.lua). A record of the old layout (blobs inside) is migrated first.

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
local nodeKey, nodesKey, liveKey, offlineKey, dirtyKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local capsKey, refsKey = KEYS[6], KEYS[7]
local nodeId, now = ARGV[1], ARGV[2]

local isNew = rcall('EXISTS', nodeKey) == 0
if ARGV[16] == '1' and not isNew then return { -1, 0, 0, 0 } end
local proof, conn = ARGV[17] or '', ARGV[18] or 'ws'
if proof ~= '' and not isNew then
  local held = rcall('HMGET', nodeKey, 'status', 'conn', 'claim')
  local free = held[3] == 'open'
  if not free and held[3] ~= 'blocked' and proof == 'offline' then
    free = held[1] == 'offline' or held[1] == 'removed' or held[2] == 'gone'
  end
  if not free then return { -2, 0, 0, 0 } end
end
rcall('HDEL', nodeKey, 'claim')
if not isNew and rcall('HEXISTS', nodeKey, 'cap_svc') == 1 then capMigrate(nodeKey, capsKey, refsKey) end
local stored = rcall('HMGET', nodeKey, 'dg_static', 'dg_svc', 'dg_lang', 'dg_models', 'status')

local capChanged = 0
if stored[5] == 'offline' then capChanged = 1 end
for i = 1, 4 do
  local digest = ARGV[6 + 2 * i]
  if stored[i] ~= digest then
    capAcquire(capsKey, refsKey, digest, ARGV[7 + 2 * i])
    capRelease(capsKey, refsKey, stored[i])
    rcall('HSET', nodeKey, 'dg_' .. CAP_PARTS[i], digest)
    -- models are informational: they never change what the node can serve
    if i < 4 then capChanged = 1 end
  end
end

rcall('HSET', nodeKey,
  'id', nodeId, 'status', 'registering', 'registered_at', now, 'hb_at', now, 'hb_ts', 0,
  'unhealthy', 0, 'gpu', ARGV[3], 'max_jobs', ARGV[4], 'accept_public', ARGV[5],
  'agent_version', ARGV[6], 'platform', ARGV[7], 'conn', conn)
rcall('HSETNX', nodeKey, 'first_registered_at', now)
noteHistory(nodeKey, now, 'gR')
rcall('HSETNX', nodeKey, 'reserved', 0)
rcall('HSETNX', nodeKey, 'running', 0)
rcall('HSETNX', nodeKey, 'draining', 0)
local epoch = rcall('HINCRBY', nodeKey, 'epoch', 1)

rcall('SADD', nodesKey, nodeId)
rcall('ZADD', liveKey, now, nodeId)
rcall('ZREM', offlineKey, nodeId)

local dirtyWasEmpty = 0
if rcall('SADD', dirtyKey, nodeId) == 1 then
  -- first change since the last publication: where its pipeline lag starts
  rcall('HSET', nodeKey, 'chg_at', now)
  if rcall('SCARD', dirtyKey) == 1 then dirtyWasEmpty = 1 end
end

return { epoch, capChanged, dirtyWasEmpty, isNew and 1 or 0 }
