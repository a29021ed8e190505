--[[
  recordNodeError: stores a node's last reported error (node_error frame) on its record.

  KEYS[1] node hash  {p:sK}:node:<id>

  ARGV[1] error as JSON {code, message, details?}
  ARGV[2] server time, ms

  Returns 1 recorded, -1 not registered
]]
local rcall = redis.call
if rcall('EXISTS', KEYS[1]) == 0 then return -1 end
rcall('HSET', KEYS[1], 'last_error', ARGV[1], 'last_error_at', ARGV[2])
rcall('HINCRBY', KEYS[1], 'errors', 1)
return 1
