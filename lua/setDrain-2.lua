--[[
  setDrain: sets or clears a node's operator drain flag (survives heartbeats and
  re-registration) and marks the node dirty so the snapshot shows it.

  KEYS[1] node hash   {p:sK}:node:<id>
  KEYS[2] dirty set   {p:sK}:dirty

  ARGV[1] node id
  ARGV[2] '1' drain, '0' undrain

  Returns { code, dirty_was_empty }   code 1 set, -1 unknown node
]]
local rcall = redis.call
local status = rcall('HGET', KEYS[1], 'status')
if not status or status == 'removed' then return { -1, 0 } end
rcall('HSET', KEYS[1], 'draining', ARGV[2])
local dirtyWasEmpty = 0
if rcall('SADD', KEYS[2], ARGV[1]) == 1 and rcall('SCARD', KEYS[2]) == 1 then dirtyWasEmpty = 1 end
return { 1, dirtyWasEmpty }
