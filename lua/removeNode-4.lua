--[[
  removeNode: retires a node offline for longer than the retention period. The record is
  marked `removed` (heartbeats answer NOT_REGISTERED; it must register again); the pool
  index then takes it out of its pools and deletes the record, and the next flush publishes
  the removal.

  KEYS[1] node hash         {p:sK}:node:<id>
  KEYS[2] shard node set    {p:sK}:nodes
  KEYS[3] offline zset      {p:sK}:offline
  KEYS[4] dirty set         {p:sK}:dirty

  ARGV[1] node id
  ARGV[2] cutoff, ms: only a node offline since before it is removed

  Returns { code, dirty_was_empty (1|0) }
    code  1 removed   0 not offline (any more), or offline since after the cutoff
]]
local rcall = redis.call
local nodeKey, nodesKey, offlineKey, dirtyKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local nodeId = ARGV[1]

if rcall('HGET', nodeKey, 'status') ~= 'offline' then
  rcall('ZREM', offlineKey, nodeId)
  return { 0, 0 }
end
local since = tonumber(rcall('ZSCORE', offlineKey, nodeId))
if since == nil or since > tonumber(ARGV[2]) then return { 0, 0 } end

rcall('HSET', nodeKey, 'status', 'removed')
rcall('ZREM', offlineKey, nodeId)
rcall('SREM', nodesKey, nodeId)
local dirtyWasEmpty = 0
if rcall('SADD', dirtyKey, nodeId) == 1 and rcall('SCARD', dirtyKey) == 1 then dirtyWasEmpty = 1 end
return { 1, dirtyWasEmpty }
