-- Content-addressed capability blobs (included by registerNode, recordHeartbeat, removeNode).
-- A node hash holds only the digest of each part (dg_static, dg_svc, dg_lang, dg_models); the
-- blob lives ONCE per shard in the caps hash ({p:sK}:caps, digest -> canonical JSON) and the
-- caprefs hash ({p:sK}:caprefs, digest -> references) counts the node-hash fields that name it.
-- Every change of a reference is made inside the one script that changes the field, so a node
-- never names a digest whose blob is gone. A blob is written under its own digest only (its
-- content can never change), so rewriting it is always safe.
-- Before this layout (issue 13) a node hash held its blobs itself (cap_static, cap_svc, cap_lang,
-- cap_models) and held no references: capMigrate moves them out, once, the first time a script
-- that changes parts meets such a node (and drops its `pools`: the flush derives pools from the
-- languages now).
local CAP_PARTS = { 'static', 'svc', 'lang', 'models' }

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

-- a node hash of the old layout (its blobs inside it): references taken, blobs moved out
local function capMigrate(nodeKey, capsKey, refsKey)
  local old = rcall('HMGET', nodeKey, 'dg_static', 'dg_svc', 'dg_lang', 'dg_models',
    'cap_static', 'cap_svc', 'cap_lang', 'cap_models')
  for i = 1, 4 do
    if old[i] then capAcquire(capsKey, refsKey, old[i], old[4 + i] or '') end
  end
  rcall('HDEL', nodeKey, 'cap_static', 'cap_svc', 'cap_lang', 'cap_models', 'pools')
  -- rewritten whole: a hash Redis converted to a hashtable (values over 64 bytes) never turns
  -- back into a listpack by itself
  local all = rcall('HGETALL', nodeKey)
  rcall('DEL', nodeKey)
  if #all > 0 then rcall('HSET', nodeKey, unpack(all)) end
end

-- the node record is deleted: its references go
local function capReleaseAll(nodeKey, capsKey, refsKey)
  local held = rcall('HMGET', nodeKey, 'dg_static', 'dg_svc', 'dg_lang', 'dg_models', 'cap_svc')
  if held[5] then return end -- old layout: it holds no references
  for i = 1, 4 do capRelease(capsKey, refsKey, held[i]) end
end
