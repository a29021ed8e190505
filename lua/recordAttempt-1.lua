--[[
  recordAttempt: a failover placed the next attempt of a job on a node (compare-and-set on
  the attempt it replaces), or found no node for it (the job fails).

  KEYS[1] job hash   {p:j<k>}:job:<job id>

  ARGV[1] attempt replaced   ARGV[2] new attempt id
  ARGV[3] node id ('' = no node could take it: fail the job)
  ARGV[4] server time, ms
  ARGV[5] error JSON when failing

  Returns 1 recorded, 0 the job moved on meanwhile (terminal, or another attempt)
]]
local rcall = redis.call
local job = rcall('HMGET', KEYS[1], 'status', 'attempt_id', 'attempts')
if not job[1] or job[1] == 'finished' or job[1] == 'failed' or job[2] ~= ARGV[1] then return 0 end
if ARGV[3] == '' then
  rcall('HSET', KEYS[1], 'status', 'failed', 'finished_at', ARGV[4], 'error', ARGV[5])
  return 1
end
local attempts = cjson.decode(job[3] or '[]')
attempts[#attempts + 1] = { attempt_id = tonumber(ARGV[2]), node_id = ARGV[3], status = 'dispatched' }
rcall('HSET', KEYS[1], 'status', 'dispatched', 'attempt_id', ARGV[2], 'node_id', ARGV[3],
  'dispatched_at', ARGV[4], 'attempts', cjson.encode(attempts))
rcall('HDEL', KEYS[1], 'accepted_at', 'started_at')
return 1
