--[[
  takeDirty: hands a batch of a shard's dirty nodes to one snapshot flush, crash-safely.
  The batch moves from the dirty set to the taken set; it leaves the taken set only when
  publishSnapshot publishes it. A flush that finds a taken set left by a crashed flush
  republishes exactly that batch first (the nodes' CURRENT state is read, so nothing is lost).

  KEYS[1] dirty set  {p:sK}:dirty
  KEYS[2] taken set  {p:sK}:dirty:taken

  ARGV[1] batch size (max nodes per flush)

  Returns { recovered (1 = a crashed flush's batch), dirty nodes left behind, id... }
]]
local rcall = redis.call
local dirtyKey, takenKey = KEYS[1], KEYS[2]

if rcall('EXISTS', takenKey) == 1 then
  local ids = rcall('SMEMBERS', takenKey)
  table.insert(ids, 1, rcall('SCARD', dirtyKey))
  table.insert(ids, 1, 1)
  return ids
end

local ids = rcall('SPOP', dirtyKey, tonumber(ARGV[1]))
if #ids > 0 then rcall('SADD', takenKey, unpack(ids)) end
table.insert(ids, 1, rcall('SCARD', dirtyKey))
table.insert(ids, 1, 0)
return ids
