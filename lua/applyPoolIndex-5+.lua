--[[
  applyPoolIndex: moves a node between pool member sets after its capabilities changed,
  keeps the shard's pool registry counts, stores the node's pools and marks it dirty.
  Compare-and-set on the stored pools: the caller computed the diff from what it read.
  A node being removed (status `removed`) leaves every pool and its record is deleted.

  KEYS[1]  node hash            {p:sK}:node:<id>
  KEYS[2]  pool registry hash   {p:sK}:pools   (pool -> members in this shard)
  KEYS[3]  dirty set            {p:sK}:dirty
  KEYS[4]  capability blobs     {p:sK}:caps
  KEYS[5]  blob references      {p:sK}:caprefs
  KEYS[6..] member sets         {p:sK}:pool:<pool>, first the pools joined, then those left

  ARGV[1] node id
  ARGV[2] pools as read ('' when none stored; JSON array)
  ARGV[3] new pools (JSON array)
  ARGV[4] number of pools joined (the rest of KEYS[4..] are pools left)
  ARGV[5..] pool names, aligned with KEYS[6..]
  ARGV[-]  '1' to delete the record once it left every pool (removal), else '0': the LAST ARGV

  Returns { code, dirty_was_empty (1|0) }
    code  1 applied   0 stored pools changed since read (read again)   -1 node record gone
]]
local rcall = redis.call
-- @include "caps"
local nodeKey, registryKey, dirtyKey, capsKey, refsKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local nodeId, expected, pools, joined = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local deleteRecord = ARGV[#ARGV] == '1'

if rcall('EXISTS', nodeKey) == 0 then return { -1, 0 } end
if (rcall('HGET', nodeKey, 'pools') or '') ~= expected then return { 0, 0 } end

for i = 6, #KEYS do
  local pool = ARGV[i - 1]
  if i - 5 <= joined then
    if rcall('SADD', KEYS[i], nodeId) == 1 then rcall('HINCRBY', registryKey, pool, 1) end
  elseif rcall('SREM', KEYS[i], nodeId) == 1 then
    if rcall('HINCRBY', registryKey, pool, -1) <= 0 then rcall('HDEL', registryKey, pool) end
  end
end

if deleteRecord then
  capReleaseAll(nodeKey, capsKey, refsKey)
  rcall('DEL', nodeKey)
elseif pools == '[]' then
  rcall('HDEL', nodeKey, 'pools')
else
  rcall('HSET', nodeKey, 'pools', pools)
end
local dirtyWasEmpty = 0
if rcall('SADD', dirtyKey, nodeId) == 1 and rcall('SCARD', dirtyKey) == 1 then dirtyWasEmpty = 1 end
return { 1, dirtyWasEmpty }
