--[[
  clearNodeFaults: a node finished a job: its fault count and its quarantine back-off start
  over (recordNodeFault). A quarantine in progress runs its course (the node stays skipped
  until q_until: the success was a job it accepted before).

  KEYS[1] node hash  {p:sK}:node:<id>

  Returns 1 when there was something to clear, else 0 (nothing written)
]]
local s = redis.call('HMGET', KEYS[1], 'q_strikes', 'q_level')
if (tonumber(s[1]) or 0) == 0 and (tonumber(s[2]) or 0) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'q_strikes', 0, 'q_first', 0, 'q_level', 0)
return 1
