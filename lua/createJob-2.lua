--[[
  createJob: claims a job id (the client's idempotency key) for a new job, or reports the
  job that already holds it.

  KEYS[1] job hash   {p:j<k>}:job:<job id>
  KEYS[2] recent jobs {p:j<k>}:recent (zset job id → created_at; the newest ARGV[7] kept)

  ARGV[1] job id
  ARGV[2] server time, ms
  ARGV[3] the request as accepted (JSON)
  ARGV[4] retention of the job record, ms
  ARGV[5] abandoned before, ms (optional; 0 or absent: never): a job still `created` (claimed,
          never pointed at a node) with created_at before this was claimed by a placement cut
          short (a Redis error or timeout after its claim executed); it is claimed again
  ARGV[6] tenant the job belongs to ('' or absent = none: auth off)
  ARGV[7] ids kept in the recent index (JOB_INDEX_CAP)

  Returns { 1 } claimed (status `created`), or { 0, status, placement JSON or '', tenant or '' }
  when it exists
]]
local rcall = redis.call
local function indexJob(key, id, score, cap)
  rcall('ZADD', key, score, id)
  local over = rcall('ZCARD', key) - cap
  if over > 0 then rcall('ZREMRANGEBYRANK', key, 0, over - 1) end
end
local existing = rcall('HMGET', KEYS[1], 'status', 'placement', 'created_at', 'tenant')
local abandonedBefore = tonumber(ARGV[5]) or 0
local abandoned = existing[1] == 'created' and abandonedBefore > 0
  and (tonumber(existing[3]) or 0) < abandonedBefore
if existing[1] and not abandoned then return { 0, existing[1], existing[2] or '', existing[4] or '' } end
rcall('HSET', KEYS[1], 'job_id', ARGV[1], 'status', 'created', 'created_at', ARGV[2], 'request', ARGV[3],
  'tenant', ARGV[6] or '')
rcall('PEXPIRE', KEYS[1], ARGV[4])
indexJob(KEYS[2], ARGV[1], ARGV[2], tonumber(ARGV[7]))
return { 1 }
