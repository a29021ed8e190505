--[[
  recordAttempt: a failover points the next attempt of a job at a node, BEFORE reserving it
  there (the node's progress is checked against this record), compare-and-set on the attempt
  it replaces; after a reservation conflict it re-points the same new attempt at the next
  candidate. With no node for it, the job fails.

  KEYS[1] job hash   {p:j<k>}:job:<job id>

  ARGV[1] attempt replaced   ARGV[2] new attempt id
  ARGV[3] node id ('' = no node could take it: fail the job)
  ARGV[4] server time, ms
  ARGV[5] error JSON when failing

  Returns 1 recorded, 0 the job moved on meanwhile (terminal, or another attempt)
  (allowed when the current attempt is ARGV[1] or already ARGV[2])
]]
local rcall = redis.call
local job = rcall('HMGET', KEYS[1], 'status', 'attempt_id', 'attempts')
if not job[1] or job[1] == 'finished' or job[1] == 'failed' or (job[2] ~= ARGV[1] and job[2] ~= ARGV[2]) then return 0 end
if ARGV[3] == '' then
  rcall('HSET', KEYS[1], 'status', 'failed', 'finished_at', ARGV[4], 'error', ARGV[5])
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
