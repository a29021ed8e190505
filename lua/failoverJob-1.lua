--[[
  failoverJob: the current attempt of a job timed out (no ack, no result in time, or its node
  went offline). Marks the attempt, then either asks for another attempt (the caller places it
  on a node not tried yet) or, past the attempt limit, fails the job with JOB_TIMEOUT.

  KEYS[1] job hash   {p:j<k>}:job:<job id>

  ARGV[1] attempt id that timed out
  ARGV[2] reason: ack_timeout | job_timeout | node_offline
  ARGV[3] server time, ms
  ARGV[4] attempts allowed (SB_MAX_ATTEMPTS)
  ARGV[5] the job shard's events channel {p:j<k>}:events   ARGV[6] job id

  Failing the job is announced on the events channel: SPUBLISH "<job id>|failed".

  Returns { 0 } nothing to do (not the current attempt, or already terminal)
          { 1, request JSON, nodes tried (JSON array) }  place attempt ARGV[1] + 1
          { 2 } failed with JOB_TIMEOUT
]]
local rcall = redis.call
local job = rcall('HMGET', KEYS[1], 'status', 'attempt_id', 'attempts', 'request')
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
  rcall('SPUBLISH', ARGV[5], ARGV[6] .. '|failed')
  return { 2 }
end
return { 1, job[4] or '{}', cjson.encode(tried) }
