--[[
  failoverJob: the current attempt of a job timed out (no ack, no result in time, its node
  went offline, or its node shard lost its slot). Marks the attempt, then either asks for
  another attempt (the caller places it on a node not tried yet) or, past the attempt limit,
  fails the job with JOB_TIMEOUT. Once per attempt: an attempt already marked timed_out
  answers { 0 } (the node-side timeout and the job sweep may both find it).

  KEYS[1] job hash        {p:j<k>}:job:<job id>
  KEYS[2] open jobs zset  {p:j<k>}:open   (job id → next sweep, ms)
  KEYS[3] failed jobs     {p:j<k>}:failed (zset job id → finished_at; the latest ARGV[7] kept)

  ARGV[1] attempt id that timed out
  ARGV[2] reason: ack_timeout | job_timeout | node_offline | slot_lost
  ARGV[3] server time, ms
  ARGV[4] attempts allowed (SB_MAX_ATTEMPTS)
  ARGV[5] job id
  ARGV[6] next sweep of the job (ms) while its next attempt is asked for: the sweep asks again
          if that failover was lost
  ARGV[7] ids kept in the failed index (JOB_INDEX_CAP)
  ARGV[8] the job shard's events channel {p:j<k>}:events

  Failing the job is announced on the events channel: SPUBLISH "<job id>|failed".

  Returns { 0 } nothing to do (not the current attempt, already timed out, or terminal)
          { 1, request JSON, nodes tried (JSON array) }  place attempt ARGV[1] + 1
          { 2 } failed with JOB_TIMEOUT
]]
local rcall = redis.call
local function indexJob(key, id, score, cap)
  rcall('ZADD', key, score, id)
  local over = rcall('ZCARD', key) - cap
  if over > 0 then rcall('ZREMRANGEBYRANK', key, 0, over - 1) end
end
local job = rcall('HMGET', KEYS[1], 'status', 'attempt_id', 'attempts', 'request')
if not job[1] then return { 0 } end
if job[1] == 'finished' or job[1] == 'failed' then
  rcall('ZREM', KEYS[2], ARGV[5])
  return { 0 }
end
if job[2] ~= ARGV[1] then return { 0 } end

local attempts = cjson.decode(job[3] or '[]')
local tried = {}
for _, a in ipairs(attempts) do
  if tostring(a.attempt_id) == ARGV[1] then
    if a.status == 'timed_out' then return { 0 } end
    a.status = 'timed_out'
    a.reason = ARGV[2]
  end
  tried[#tried + 1] = a.node_id
end
rcall('HSET', KEYS[1], 'attempts', cjson.encode(attempts))

if tonumber(ARGV[1]) >= tonumber(ARGV[4]) then
  local err = cjson.encode({ code = 'JOB_TIMEOUT', message = 'attempt ' .. ARGV[1] .. ' of ' .. ARGV[4] .. ' timed out (' .. ARGV[2] .. ')' })
  rcall('HSET', KEYS[1], 'status', 'failed', 'finished_at', ARGV[3], 'error', err)
  rcall('ZREM', KEYS[2], ARGV[5])
  indexJob(KEYS[3], ARGV[5], ARGV[3], tonumber(ARGV[7]))
  rcall('SPUBLISH', ARGV[8], ARGV[5] .. '|failed')
  return { 2 }
end
rcall('ZADD', KEYS[2], ARGV[6], ARGV[5])
return { 1, job[4] or '{}', cjson.encode(tried) }
