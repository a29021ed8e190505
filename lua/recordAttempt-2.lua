--[[
  recordAttempt: a failover points the next attempt of a job at a node, BEFORE reserving it
  there (the node's progress is checked against this record), compare-and-set on the attempt
  it replaces; after a reservation conflict it re-points the same new attempt at the next
  candidate. With no node for it, the job fails.

  KEYS[1] job hash   {p:j<k>}:job:<job id>
  KEYS[2] failed jobs {p:j<k>}:failed (zset job id → finished_at; the latest ARGV[6] kept)

  ARGV[1] attempt replaced   ARGV[2] new attempt id
  ARGV[3] node id ('' = no node could take it: fail the job)
  ARGV[4] server time, ms
  ARGV[5] error JSON when failing
  ARGV[6] ids kept in the failed index (JOB_INDEX_CAP)

  Returns 1 recorded, 0 the job moved on meanwhile (terminal, or another attempt)
  (allowed when the current attempt is ARGV[1] or already ARGV[2])
]]
local rcall = redis.call
local function indexJob(key, id, score, cap)
  rcall('ZADD', key, score, id)
  local over = rcall('ZCARD', key) - cap
  if over > 0 then rcall('ZREMRANGEBYRANK', key, 0, over - 1) end
end
local job = rcall('HMGET', KEYS[1], 'status', 'attempt_id', 'attempts', 'job_id')
if not job[1] or job[1] == 'finished' or job[1] == 'failed' or (job[2] ~= ARGV[1] and job[2] ~= ARGV[2]) then return 0 end
if ARGV[3] == '' then
  rcall('HSET', KEYS[1], 'status', 'failed', 'finished_at', ARGV[4], 'error', ARGV[5])
  if job[4] then indexJob(KEYS[2], job[4], ARGV[4], tonumber(ARGV[6])) end
  return 1
end
local attempts = cjson.decode(job[3] or '[]')
local last = attempts[#attempts]
if last and tostring(last.attempt_id) == ARGV[2] then
  last.node_id = ARGV[3] -- re-pointed after a reservation conflict
else
  attempts[#attempts + 1] = { attempt_id = tonumber(ARGV[2]), node_id = ARGV[3], status = 'dispatched' }
end
rcall('HSET', KEYS[1], 'status', 'dispatched', 'attempt_id', ARGV[2], 'node_id', ARGV[3],
  'dispatched_at', ARGV[4], 'attempts', cjson.encode(attempts))
rcall('HDEL', KEYS[1], 'accepted_at', 'started_at')
return 1
