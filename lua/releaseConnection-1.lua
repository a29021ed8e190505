--[[
  releaseConnection: a gateway shutting down handed a node's socket over (closed it with 1001
  without marking the node offline: the node reconnects elsewhere). Records that no socket holds
  the node's current epoch any more, so the join token may register the id again at once
  (registerNode, policy 'offline').

  KEYS[1] node hash  {p:sK}:node:<id>

  ARGV[1] the connection epoch that was handed over

  Returns 1 recorded, 0 the node has registered again since (another epoch) or is unknown
]]
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'conn', 'gone')
return 1
