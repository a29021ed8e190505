--[[
  setDrain: sets or clears a node's operator drain flag (survives heartbeats and
  re-registration) and marks the node dirty so the snapshot shows it.

  KEYS[1] node hash   {p:sK}:node:<id>
  KEYS[2] dirty set   {p:sK}:dirty

  ARGV[1] node id
  ARGV[2] '1' drain, '0' undrain
  ARGV[3] server time, ms   ARGV[4] who (the admin key's label), for the node's history: a
          change of the flag is recorded (`Da<who>` / `Ua<who>`), a repeat is not

  Returns { code, dirty_was_empty }   code 1 set, -1 unknown node
]]
local rcall = redis.call
-- @include "node-history"
local status = rcall('HGET', KEYS[1], 'status')
if not status or status == 'removed' then return { -1, 0 } end
if (rcall('HGET', KEYS[1], 'draining') or '0') ~= ARGV[2] then
  noteHistory(KEYS[1], ARGV[3], (ARGV[2] == '1' and 'Da' or 'Ua') .. (ARGV[4] or ''))
end
-- stored only while set: its absence means 0
if ARGV[2] == '1' then rcall('HSET', KEYS[1], 'draining', 1) else rcall('HDEL', KEYS[1], 'draining') end
local dirtyWasEmpty = 0
if rcall('SADD', KEYS[2], ARGV[1]) == 1 and rcall('SCARD', KEYS[2]) == 1 then dirtyWasEmpty = 1 end
return { 1, dirtyWasEmpty }
