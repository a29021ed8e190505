--[[
  publishSnapshot: publishes one flush of a shard as ONE new version: checkpoint entries,
  the published values the heartbeat script compares against, the version, and one delta
  entry with stream ID <version>-0; then releases the taken batch.

  KEYS[1] checkpoint hash   {p:sK}:ckpt   (id -> entry JSON)
  KEYS[2] version           {p:sK}:ver
  KEYS[3] delta stream      {p:sK}:deltas
  KEYS[4] taken set         {p:sK}:dirty:taken
  KEYS[5] published values  {p:sK}:pub    (id -> "status|running|cpu|gpu|mem|published_at")

  ARGV[1] server time, ms
  ARGV[2] delta stream cap (approximate MAXLEN)
  ARGV[3] number of upserts U
  ARGV[4 .. 3+3U]  per upsert: id, entry JSON, published values
  ARGV[4+3U ..]    ids to remove (record gone or removed)

  Returns the shard version after the call (unchanged when there was nothing to publish).
  Delta entry fields: v (version), at (ms), up (JSON array of entries), rm (JSON array of ids).
]]
local rcall = redis.call
local ckptKey, verKey, deltasKey, takenKey, pubKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local upserts = tonumber(ARGV[3])

local entries, removed = {}, {}
for i = 0, upserts - 1 do
  local id, entry, values = ARGV[4 + 3 * i], ARGV[5 + 3 * i], ARGV[6 + 3 * i]
  rcall('HSET', ckptKey, id, entry)
  rcall('HSET', pubKey, id, values)
  entries[#entries + 1] = entry
end
for i = 4 + 3 * upserts, #ARGV do
  rcall('HDEL', ckptKey, ARGV[i])
  rcall('HDEL', pubKey, ARGV[i])
  removed[#removed + 1] = '"' .. ARGV[i] .. '"'
end
rcall('DEL', takenKey)

if #entries == 0 and #removed == 0 then return tonumber(rcall('GET', verKey)) or 0 end
local version = rcall('INCR', verKey)
rcall('XADD', deltasKey, 'MAXLEN', '~', ARGV[2], version .. '-0',
  'v', version, 'at', ARGV[1], 'up', '[' .. table.concat(entries, ',') .. ']', 'rm', '[' .. table.concat(removed, ',') .. ']')
return version
