--[[
  advanceJob: moves a job record forward for its CURRENT attempt only; a stale attempt or a
  step backwards changes nothing (results of a stale attempt are ignored). Terminal states
  (finished, failed) are final: a duplicate result answers 0.

  KEYS[1] job hash   {p:j<k>}:job:<job id>
  KEYS[2] failed jobs {p:j<k>}:failed (zset job id → finished_at; the latest ARGV[7] kept)

  ARGV[1] attempt id
  ARGV[2] new status: accepted | running | finished | failed
  ARGV[3] server time, ms
  ARGV[4] result JSON ('' = none)   ARGV[5] error JSON ('' = none)
  ARGV[6] node id reporting: it must be the node of the current attempt
  ARGV[7] ids kept in the failed index (JOB_INDEX_CAP)
  ARGV[8] the job shard's events channel {p:j<k>}:events   ARGV[9] job id

  An advance is announced on the events channel, in this script: SPUBLISH "<job id>|<status>"
  (sharded pub/sub: the channel hashes to the record's slot), so waiting readers wake at once.

  Returns 1 advanced, 0 already there or past it (idempotent), -1 stale attempt (or another
  node's), -2 no such job
]]
local rcall = redis.call
local function indexJob(key, id, score, cap)
  rcall('ZADD', key, score, id)
  local over = rcall('ZCARD', key) - cap
  if over > 0 then rcall('ZREMRANGEBYRANK', key, 0, over - 1) end
end
local order = { dispatched = 1, reserved = 1, accepted = 2, running = 3, finished = 4, failed = 4 }
local job = rcall('HMGET', KEYS[1], 'status', 'attempt_id', 'attempts', 'node_id', 'job_id')
if not job[1] then return -2 end
if job[2] ~= ARGV[1] or job[4] ~= ARGV[6] then return -1 end
local target = ARGV[2]
if (order[job[1]] or 0) >= order[target] then return 0 end

local stamp = ({ accepted = 'accepted_at', running = 'started_at', finished = 'finished_at', failed = 'finished_at' })[target]
rcall('HSET', KEYS[1], 'status', target, stamp, ARGV[3])
if ARGV[4] ~= '' then rcall('HSET', KEYS[1], 'result', ARGV[4]) end
if ARGV[5] ~= '' then rcall('HSET', KEYS[1], 'error', ARGV[5]) end
if target == 'failed' and job[5] then indexJob(KEYS[2], job[5], ARGV[3], tonumber(ARGV[7])) end
if job[3] then
  local attempts = cjson.decode(job[3])
  for _, a in ipairs(attempts) do
    if tostring(a.attempt_id) == ARGV[1] then a.status = target end
  end
  rcall('HSET', KEYS[1], 'attempts', cjson.encode(attempts))
end
rcall('SPUBLISH', ARGV[8], ARGV[9] .. '|' .. target)
return 1
