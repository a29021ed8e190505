--[[
  revokeNode: an operator revokes a node's credentials (POST /v1/nodes/:id/revoke) or resets
  the id (POST /v1/nodes/:id/reset). Every node token issued so far stops verifying (the
  generation moves on), the node goes offline at once (no new jobs), and a control entry on the
  assignment feed makes the gateway that holds its socket close it.

  KEYS[1] node hash        {p:sK}:node:<id>
  KEYS[2] token generations {p:sK}:tokens
  KEYS[3] assignment feed  {p:sK}:assign
  KEYS[4] liveness zset    {p:sK}:live
  KEYS[5] offline zset     {p:sK}:offline
  KEYS[6] dirty set        {p:sK}:dirty

  ARGV[1] node id
  ARGV[2] claim: 'blocked' (revoke: the join token may not take the id back) or 'open' (reset:
          the next join-token registration of the id is accepted, once)
  ARGV[3] server time, ms
  ARGV[4] feed cap (MAXLEN ~)
  ARGV[5] who (the admin key's label, for the node's history; '' = unknown)

  Returns { generation, known (1|0), dirty_was_empty (1|0) }
]]
local rcall = redis.call
-- @include "node-history"
local nodeKey, tokensKey, feedKey, liveKey, offlineKey, dirtyKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local nodeId, now = ARGV[1], ARGV[3]

local generation = rcall('HINCRBY', tokensKey, nodeId, 1)
local status = rcall('HGET', nodeKey, 'status')
if not status or status == 'removed' then return { generation, 0, 0 } end

rcall('HSET', nodeKey, 'claim', ARGV[2])
local dirtyWasEmpty = 0
if status ~= 'offline' then
  rcall('HSET', nodeKey, 'status', 'offline')
  rcall('HDEL', nodeKey, 'unhealthy')
  noteHistory(nodeKey, now, (ARGV[2] == 'open' and 'os' or 'ov') .. (ARGV[5] or ''))
  rcall('ZREM', liveKey, nodeId)
  rcall('ZADD', offlineKey, now, nodeId)
  if rcall('SADD', dirtyKey, nodeId) == 1 and rcall('SCARD', dirtyKey) == 1 then dirtyWasEmpty = 1 end
end
rcall('XADD', feedKey, 'MAXLEN', '~', ARGV[4], '*', 'node', nodeId, 'control', 'revoke')
return { generation, 1, dirtyWasEmpty }
