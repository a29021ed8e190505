-- slot-load: a node's slot load as selection's capacity filter sees it, and the dirty mark a slot
-- change needs only when it flips the node between free and full (the snapshot entry's counts
-- are not republished for every reservation: selectors count their own, reserveSlot re-checks
-- the live record, and the node's next significant heartbeat or a flip brings the entry up).
local function slotLoad(nodeKey)
  local n = redis.call('HMGET', nodeKey, 'running', 'committed', 'reserved', 'max_jobs')
  return math.max(tonumber(n[1]) or 0, tonumber(n[2]) or 0) + (tonumber(n[3]) or 0), tonumber(n[4]) or 0
end
-- Marks the node dirty when its load crossed max (from `before` to `after`); returns
-- dirty_was_empty (1: the caller requests a flush).
local function markDirtyOnFlip(dirtyKey, nodeId, before, after, max)
  if (before >= max) == (after >= max) then return 0 end
  if redis.call('SADD', dirtyKey, nodeId) == 1 and redis.call('SCARD', dirtyKey) == 1 then return 1 end
  return 0
end
-- The same, reading the load after the change from the node record.
local function markDirtyIfFlipped(nodeKey, dirtyKey, nodeId, before, max)
  local after = slotLoad(nodeKey)
  return markDirtyOnFlip(dirtyKey, nodeId, before, after, max)
end
