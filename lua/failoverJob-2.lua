--[[
  failoverJob: the current attempt of a job timed out (no ack, no result in time, or its node
  went offline). Marks the attempt, then either asks for another attempt (the caller places it
  on a node not tried yet) or, past the attempt limit, fails the job with JOB_TIMEOUT.

  KEYS[1] job hash   {p:j<k>}:job:<job id>
  KEYS[2] failed jobs {p:j<k>}:failed (zset job id → finished_at; the latest ARGV[5] kept)

  ARGV[1] attempt id that timed out
  ARGV[2] reason: ack_timeout | job_timeout | node_offline
  ARGV[3] server time, ms
  ARGV[4] attempts allowed (SB_MAX_ATTEMPTS)
  ARGV[5] ids kept in the failed index (JOB_INDEX_CAP)

  Returns { 0 } nothing to do (not the current attempt, or already terminal)
          { 1, request JSON, nodes tried (JSON array) }  place attempt ARGV[1] + 1
          { 2 } failed with JOB_TIMEOUT
]]
local rcall = redis.call
local function indexJob(key, id, score, cap)
  rcall('ZADD', key, score, id)
  local over = rcall('ZCARD', key) - cap
  if over > 0 then rcall('ZREMRANGEBYRANK', key, 0, over - 1) end
end
local job = rcall('HMGET', KEYS[1], 'status', 'attempt_id', 'attempts', 'request', 'job_id')
if not job[1] or job[1] == 'finished' or job[1] == 'failed' or job[2] ~= ARGV[1] then return { 0 } end

local attempts = cjson.decode(job[3] or '[]')
local tried = {}
for _, a in ipairs(attempts) do
  if tostring(a.attempt_id) == ARGV[1] then
    a.status = 'timed_out'
    a.reason = ARGV[2]
  end
  tried[#tried + 1] = a.node_id
end
rcall('HSET', KEYS[1], 'attempts', cjson.encode(attempts))

if tonumber(ARGV[1]) >= tonumber(ARGV[4]) then
  local err = cjson.encode({ code = 'JOB_TIMEOUT', message = 'attempt ' .. ARGV[1] .. ' of ' .. ARGV[4] .. ' timed out (' .. ARGV[2] .. ')' })
  rcall('HSET', KEYS[1], 'status', 'failed', 'finished_at', ARGV[3], 'error', err)
  if job[5] then indexJob(KEYS[2], job[5], ARGV[3], tonumber(ARGV[5])) end
  return { 2 }
end
return { 1, job[4] or '{}', cjson.encode(tried) }
