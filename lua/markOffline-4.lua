--[[
  markOffline: a node's connection closed, or the reaper found it silent for too long.
  Socket close: only for the connection epoch that closed (a node that already reconnected,
  to any replica, stays online). Reaper: only if it has not heartbeated since the cutoff.

  KEYS[1] node hash      {p:sK}:node:<id>
  KEYS[2] liveness zset  {p:sK}:live
  KEYS[3] offline zset   {p:sK}:offline
  KEYS[4] dirty set      {p:sK}:dirty

  ARGV[1] node id
  ARGV[2] connection epoch that closed ('' = any epoch: the reaper's verdict)
  ARGV[3] server time, ms
  ARGV[4] liveness cutoff, ms ('' = none): leave the node alone if its last contact is later

  History: `oc` (connection closed) with an epoch, else `om` (missed heartbeats).

  Returns { code, dirty_was_empty (1|0) }
    code  1 marked offline   0 not current epoch, heartbeated since the cutoff, or already
          offline   -1 not registered
]]
local rcall = redis.call
-- @include "node-history"
local nodeKey, liveKey, offlineKey, dirtyKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local nodeId, epoch, now = ARGV[1], ARGV[2], ARGV[3]

local s = rcall('HMGET', nodeKey, 'status', 'epoch')
if not s[1] or s[1] == 'removed' then return { -1, 0 } end
if s[1] == 'offline' or (epoch ~= '' and s[2] ~= epoch) then return { 0, 0 } end
if ARGV[4] ~= '' and (tonumber(rcall('ZSCORE', liveKey, nodeId)) or 0) > tonumber(ARGV[4]) then return { 0, 0 } end

rcall('HSET', nodeKey, 'status', 'offline')
rcall('HDEL', nodeKey, 'unhealthy')
noteHistory(nodeKey, now, epoch ~= '' and 'oc' or 'om')
rcall('ZREM', liveKey, nodeId)
rcall('ZADD', offlineKey, now, nodeId)

local dirtyWasEmpty = 0
if rcall('SADD', dirtyKey, nodeId) == 1 and rcall('SCARD', dirtyKey) == 1 then dirtyWasEmpty = 1 end
return { 1, dirtyWasEmpty }
