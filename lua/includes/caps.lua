-- Content-addressed capability blobs (included by registerNode, recordHeartbeat, removeNode).
-- A node hash holds only the digest of each part it keeps (dg_static, dg_svc, dg_lang); the
-- blob lives ONCE per shard in the caps hash ({p:sK}:caps, digest -> canonical JSON) and the
-- caprefs hash ({p:sK}:caprefs, digest -> references) counts the node-hash fields that name it.
-- Every change of a reference is made inside the one script that changes the field, so a node
-- never names a digest whose blob is gone. A blob is written under its own digest only (its
-- content can never change), so rewriting it is always safe.
-- Installed models (the fourth part a node reports) are not stored: nothing reads them.
local CAP_PARTS = { 'static', 'svc', 'lang' }

-- one more reference to `digest`; `blob` ('' = not sent) is stored when the shard lacks it
local function capAcquire(capsKey, refsKey, digest, blob)
  rcall('HINCRBY', refsKey, digest, 1)
  if blob ~= '' then rcall('HSETNX', capsKey, digest, blob) end
end

-- one reference fewer to `digest` (nil/'' = none held): the last one deletes the blob
local function capRelease(capsKey, refsKey, digest)
  if not digest or digest == '' then return end
  if rcall('HINCRBY', refsKey, digest, -1) <= 0 then
    rcall('HDEL', refsKey, digest)
    rcall('HDEL', capsKey, digest)
  end
end

-- is a digest usable without its blob (stored in the shard already)?
local function capStored(capsKey, digest)
  return rcall('HEXISTS', capsKey, digest) == 1
end

-- Fields of the earlier layouts that this one does not keep (ARCHITECTURE.md "Upgrading a
-- layout"): written and never read (id: the key names it; registration times: the history has
-- them; agent_version, platform, accept_public: in the static blob; gpu_mem; offline_at: the
-- offline zset's score), the models part, and before issue 13 the blobs and pools themselves.
local DEAD_FIELDS = {
  id = true, registered_at = true, first_registered_at = true, agent_version = true,
  platform = true, accept_public = true, gpu_mem = true, offline_at = true, dg_models = true,
  pools = true, cap_static = true, cap_svc = true, cap_lang = true, cap_models = true,
}
-- Fields kept only when they differ from what their absence means.
local ABSENT_MEANS = { draining = '0', unhealthy = '0', reserved = '0', committed = '0' }

-- A node hash of an earlier layout: one with blobs inside (before issue 13: no references held)
-- or with a models digest (its reference held). Recognised by `cap_svc` or `dg_models`, which
-- this layout never writes; the caller has read one of them.
-- References: the old-old record takes one per part it keeps; the other releases its models one.
-- The hash is rewritten whole: a hash Redis converted to a hashtable (values over 64 bytes)
-- never turns back into a listpack by itself.
local function migrateRecord(nodeKey, capsKey, refsKey)
  local all = rcall('HGETALL', nodeKey)
  local f = {}
  for i = 1, #all, 2 do f[all[i]] = all[i + 1] end
  if f.cap_svc then
    for _, p in ipairs(CAP_PARTS) do
      if f['dg_' .. p] then capAcquire(capsKey, refsKey, f['dg_' .. p], f['cap_' .. p] or '') end
    end
  else
    capRelease(capsKey, refsKey, f.dg_models)
  end
  local kept = {}
  for i = 1, #all, 2 do
    local name, value = all[i], all[i + 1]
    if not DEAD_FIELDS[name] and ABSENT_MEANS[name] ~= value and not (name == 'conn' and value ~= 'gone') then
      kept[#kept + 1] = name
      kept[#kept + 1] = value
    end
  end
  rcall('DEL', nodeKey)
  if #kept > 0 then rcall('HSET', nodeKey, unpack(kept)) end
end

-- the node record is deleted: its references go (a record of the layout before this one also
-- names its models part; one from before issue 13 holds none)
local function capReleaseAll(nodeKey, capsKey, refsKey)
  local held = rcall('HMGET', nodeKey, 'dg_static', 'dg_svc', 'dg_lang', 'dg_models', 'cap_svc')
  if held[5] then return end -- blobs inside: it holds no references
  for i = 1, 4 do capRelease(capsKey, refsKey, held[i]) end
end
