--[[
  removeNode: retires a node offline for longer than the retention period, in one call: its
  record is deleted (releasing its capability blob references), it leaves the offline zset (and
  with it the shard's nodes), and it is marked dirty so that the next flush publishes the removal. Heartbeats then answer
  NOT_REGISTERED (it must register again). A record of the old layout (blobs inside, before
  issue 13) holds no references and releases none.

  KEYS[1] node hash         {p:sK}:node:<id>
  KEYS[2] offline zset      {p:sK}:offline
  KEYS[3] dirty set         {p:sK}:dirty
  KEYS[4] capability blobs  {p:sK}:caps
  KEYS[5] blob references   {p:sK}:caprefs

  ARGV[1] node id
  ARGV[2] cutoff, ms: only a node offline since before it is removed

  Returns { code, dirty_was_empty (1|0) }
    code  1 removed   0 not offline (any more), or offline since after the cutoff
]]
local rcall = redis.call
-- @include "caps"
local nodeKey, offlineKey, dirtyKey, capsKey, refsKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local nodeId = ARGV[1]

if rcall('HGET', nodeKey, 'status') ~= 'offline' then
  rcall('ZREM', offlineKey, nodeId)
  return { 0, 0 }
end
local since = tonumber(rcall('ZSCORE', offlineKey, nodeId))
if since == nil or since > tonumber(ARGV[2]) then return { 0, 0 } end

capReleaseAll(nodeKey, capsKey, refsKey)
rcall('DEL', nodeKey)
rcall('ZREM', offlineKey, nodeId)
local dirtyWasEmpty = 0
if rcall('SADD', dirtyKey, nodeId) == 1 and rcall('SCARD', dirtyKey) == 1 then dirtyWasEmpty = 1 end
return { 1, dirtyWasEmpty }
