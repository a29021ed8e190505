--[[
  repointJob: a placement's reservation on the node of attempt 1 was refused (a conflict: the
  snapshot was stale): points attempt 1 at the next ranked node, compare-and-set on the node it
  replaces and on the claim (its token: never a later claim of the same id, made after recovery
  dropped this one), while the placement is unconfirmed. Rare path.

  KEYS[1] job hash       {p:j<k>}:job:<job id>
  KEYS[2] placing zset   {p:j<k>}:placing

  ARGV[1] job id   ARGV[2] node refused   ARGV[3] next node
  ARGV[4] server time, ms
  ARGV[5] the answer (JSON) for repeats   ARGV[6] new placing deadline, ms
  ARGV[7] claim token of the placement

  Returns 1 re-pointed, 0 the job moved on (recovery dropped it, or it is not that placement)
]]
local rcall = redis.call
local jobKey, placingKey, jobId = KEYS[1], KEYS[2], ARGV[1]
local job = rcall('HMGET', jobKey, 'status', 'attempt_id', 'node_id', 'claim')
if job[1] ~= 'dispatched' or job[2] ~= '1' or job[3] ~= ARGV[2] or job[4] ~= ARGV[7] then return 0 end
if not rcall('ZSCORE', placingKey, jobId) then return 0 end
local attempts = cjson.encode({ { attempt_id = 1, node_id = ARGV[3], status = 'dispatched' } })
rcall('HSET', jobKey, 'node_id', ARGV[3], 'attempts', attempts, 'dispatched_at', ARGV[4], 'placement', ARGV[5])
rcall('ZADD', placingKey, ARGV[6], jobId)
return 1
