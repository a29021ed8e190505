--[[
  publishSnapshot: publishes one flush of a shard as ONE new version: checkpoint entries,
  the published values the heartbeat script compares against (the node record's `pub`), the
  version, and one delta entry with stream ID <version>-0; then releases the taken batch.

  The flush read each node's record before this call. A heartbeat applied in between was
  compared with the OLD published values (it may have found nothing significant: a
  re-registered node's first healthy heartbeat, `ready` against the published `ready`) and is
  not in what this call publishes (`registering`). Each upsert carries the stamp the flush read
  (status|hb_ts|hb_at); a node whose record no longer has it, and whose current state differs
  significantly from the values published now (the heartbeat's own filter, lua/includes/
  significance.lua), is put back in the dirty set: the next flush publishes its current state
  (the flush/heartbeat race, issue 13).

  KEYS[1] checkpoint hash   {p:sK}:ckpt   (id -> entry JSON, its id written as 0: the field names it)
  KEYS[2] version           {p:sK}:ver
  KEYS[3] delta stream      {p:sK}:deltas
  KEYS[4] taken set         {p:sK}:dirty:taken
  KEYS[5] published values  {p:sK}:pub    (before issue 13's third step: id -> the published
                                          values; each record's `pub` now, deleted here)
  KEYS[6] dirty set         {p:sK}:dirty
  KEYS[7] capability blobs  {p:sK}:caps
  KEYS[8] blob references   {p:sK}:caprefs
  KEYS[9 .. 8+U] the node hash of each upsert, in upsert order

  Entries name their language blob by digest (shared/snapshot-entry.ts encodeEntry: a JSON array
  whose first element is the digest), so the checkpoint holds a reference to each blob its
  entries name, as node hashes do (lua/includes/caps.lua): a selector loading the checkpoint
  with the caps hash finds every blob. An upsert whose blob is gone (the node changed languages
  after the flush read it, and nothing else names the old ones) is not published: its node is
  put back in the dirty set. An entry of the old object form holds no reference.

  ARGV[1] server time, ms
  ARGV[2] delta stream cap (approximate MAXLEN)
  ARGV[3] load change threshold, percentage points (SB_LOAD_CHANGE_THRESHOLD)
  ARGV[4] oldest version to keep in the delta stream (approximate MINID; 0 = no time bound)
  ARGV[5] number of upserts U
  ARGV[6 .. 5+4U]  per upsert: id, entry JSON, published values, stamp read by the flush
                   ('' = not read from a record: not checked)
  ARGV[6+4U ..]    ids to remove (record gone or removed)

  Returns { version after the call (unchanged when there was nothing to publish),
            nodes put back in the dirty set, dirty set was empty before them (1|0) }
  Delta entry fields: v (version), at (ms), up (JSON array of entries), rm (JSON array of ids).
  A delta's entries hold no reference: a selector that does not know a digest reads the blob
  from the caps hash, and if it is gone (the node has moved on since, in a later delta) reloads
  the shard.
  The stream is bounded twice: by entries (ARGV[2]) and by time (ARGV[4]: the flush passes the
  newest version it published at least SB_DELTA_WINDOW_MS ago, so every older entry is older
  than the window). Without the time bound it held ~2 copies of every node at 50,000 nodes.
]]
local rcall = redis.call
-- @include "significance"
-- @include "caps"
local ckptKey, verKey, deltasKey, takenKey, pubKey, dirtyKey, capsKey, refsKey =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local function langDigest(entry)
  return entry and string.match(entry, '^%["([^"]*)"') or nil
end
-- the checkpoint's form of a compact entry: its id (the hash field names the node) as 0
-- (shared/snapshot-entry.ts encodeEntry(e, 'checkpoint')); any other entry as it is
local function checkpointForm(entry, digest, id)
  local head = '["' .. (digest or '') .. '","' .. id .. '",'
  if string.sub(entry, 1, #head) ~= head then return entry end
  return '["' .. digest .. '",0,' .. string.sub(entry, #head + 1)
end
local threshold, keepFrom, upserts = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])

local entries, removed, changed = {}, {}, {}
for i = 0, upserts - 1 do
  local id, entry, values, stamp = ARGV[6 + 4 * i], ARGV[7 + 4 * i], ARGV[8 + 4 * i], ARGV[9 + 4 * i]
  local digest = langDigest(entry)
  local old = langDigest(rcall('HGET', ckptKey, id))
  local publish = true
  if digest and digest ~= '' and digest ~= old then
    if capStored(capsKey, digest) then
      rcall('HINCRBY', refsKey, digest, 1)
    else
      publish = false
      changed[#changed + 1] = id
    end
  end
  if publish then
    if digest ~= old then capRelease(capsKey, refsKey, old) end
    rcall('HSET', ckptKey, id, checkpointForm(entry, digest, id))
    rcall('HDEL', pubKey, id)
    entries[#entries + 1] = entry
    local nodeKey = KEYS[9 + i]
    if stamp ~= '' then
      local c = rcall('HMGET', nodeKey, 'status', 'hb_ts', 'hb_at', 'running', 'cpu', 'gpu_pct', 'mem')
      if not c[1] then
        changed[#changed + 1] = id -- gone since the read: the next flush publishes the removal
      else
        rcall('HSET', nodeKey, 'pub', values)
        if c[1] .. '|' .. (c[2] or '') .. '|' .. (c[3] or '') ~= stamp
          and significantChange(values, c[1], c[4] or '', c[5] or '', c[6] or '', c[7] or '', threshold) then
          changed[#changed + 1] = id
        end
      end
    elseif rcall('EXISTS', nodeKey) == 1 then
      rcall('HSET', nodeKey, 'pub', values)
    end
  end
end
for i = 6 + 4 * upserts, #ARGV do
  capRelease(capsKey, refsKey, langDigest(rcall('HGET', ckptKey, ARGV[i])))
  rcall('HDEL', ckptKey, ARGV[i])
  rcall('HDEL', pubKey, ARGV[i])
  removed[#removed + 1] = '"' .. ARGV[i] .. '"'
end
rcall('DEL', takenKey)

local dirtyWasEmpty = 0
if #changed > 0 then
  if rcall('SCARD', dirtyKey) == 0 then dirtyWasEmpty = 1 end
  rcall('SADD', dirtyKey, unpack(changed))
end

if #entries == 0 and #removed == 0 then return { tonumber(rcall('GET', verKey)) or 0, #changed, dirtyWasEmpty } end
local version = rcall('INCR', verKey)
rcall('XADD', deltasKey, 'MAXLEN', '~', ARGV[2], version .. '-0',
  'v', version, 'at', ARGV[1], 'up', '[' .. table.concat(entries, ',') .. ']', 'rm', '[' .. table.concat(removed, ',') .. ']')
if keepFrom > 0 then rcall('XTRIM', deltasKey, 'MINID', '~', keepFrom .. '-0') end
return { version, #changed, dirtyWasEmpty }
