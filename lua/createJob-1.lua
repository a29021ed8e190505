--[[
  createJob: claims a job id (the client's idempotency key) for a new job, or reports the
  job that already holds it.

  KEYS[1] job hash   {p:j<k>}:job:<job id>

  ARGV[1] job id
  ARGV[2] server time, ms
  ARGV[3] the request as accepted (JSON)
  ARGV[4] retention of the job record, ms
  ARGV[5] abandoned before, ms (optional; 0 or absent: never): a job still `created` (claimed,
          never pointed at a node) with created_at before this was claimed by a placement cut
          short (a Redis error or timeout after its claim executed); it is claimed again

  Returns { 1 } claimed (status `created`), or { 0, status, placement JSON or '' } when it exists
]]
local rcall = redis.call
local existing = rcall('HMGET', KEYS[1], 'status', 'placement', 'created_at')
local abandonedBefore = tonumber(ARGV[5]) or 0
local abandoned = existing[1] == 'created' and abandonedBefore > 0
  and (tonumber(existing[3]) or 0) < abandonedBefore
if existing[1] and not abandoned then return { 0, existing[1], existing[2] or '' } end
rcall('HSET', KEYS[1], 'job_id', ARGV[1], 'status', 'created', 'created_at', ARGV[2], 'request', ARGV[3])
rcall('PEXPIRE', KEYS[1], ARGV[4])
return { 1 }
