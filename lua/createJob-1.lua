--[[
  createJob: claims a job id (the client's idempotency key) for a new job, or reports the
  job that already holds it.

  KEYS[1] job hash   {p:j<k>}:job:<job id>

  ARGV[1] job id
  ARGV[2] server time, ms
  ARGV[3] the request as accepted (JSON)
  ARGV[4] retention of the job record, ms
  ARGV[5] tenant the job belongs to ('' = none: auth off)

  Returns { 1 } claimed (status `created`), or { 0, status, placement JSON or '', tenant or '' }
  when it exists
]]
local rcall = redis.call
local existing = rcall('HMGET', KEYS[1], 'status', 'placement', 'tenant')
if existing[1] then return { 0, existing[1], existing[2] or '', existing[3] or '' } end
rcall('HSET', KEYS[1], 'job_id', ARGV[1], 'status', 'created', 'created_at', ARGV[2], 'request', ARGV[3],
  'tenant', ARGV[5])
rcall('PEXPIRE', KEYS[1], ARGV[4])
return { 1 }
