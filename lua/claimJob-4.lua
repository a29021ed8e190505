--[[
  claimJob: the first step of a placement, in ONE script on the job's shard. Either claims the
  job id (the client's idempotency key) AND records attempt 1 on the node the selector chose
  (status `dispatched`, the answer kept for repeats, the job in the shard's placing set until
  its reservation is confirmed), or reports the job that already holds the id.

  KEYS[1] job hash       {p:j<k>}:job:<job id>
  KEYS[2] placing zset   {p:j<k>}:placing   (job id -> deadline ms of its unconfirmed placement)
  KEYS[3] open jobs      {p:j<k>}:open      (unfinished job id -> the job sweep's next look, ms)
  KEYS[4] recent jobs    {p:j<k>}:recent    (job id -> created_at; the newest ARGV[15] kept)

  ARGV[1] job id
  ARGV[2] server time, ms
  ARGV[3] the request as accepted (JSON)
  ARGV[4] retention of the job record, ms
  ARGV[5] tenant the job belongs to ('' = none: auth off)
  ARGV[6] node id of attempt 1
  ARGV[7] the answer (JSON) a repeated request gets
  ARGV[8] placing deadline, ms: past it, recovery settles the placement (placed, or dropped)
  ARGV[9] claim token (fences a late reservation of a dropped placement)
  ARGV[10] traceparent ('' = none)
  ARGV[11] session id   ARGV[12] utterance index ('' = allocated later)   ARGV[13] timeout_ms
  ARGV[14] the job sweep's first look, ms (services/worker/job-sweep.ts)
  ARGV[15] ids kept in the recent index (JOB_INDEX_CAP)

  Returns { 1 } claimed and recorded, or
          { 0, status, answer JSON or '', tenant or '', placing deadline or '' } when the id is taken
]]
local rcall = redis.call
local function indexJob(key, id, score, cap)
  rcall('ZADD', key, score, id)
  local over = rcall('ZCARD', key) - cap
  if over > 0 then rcall('ZREMRANGEBYRANK', key, 0, over - 1) end
end
local jobKey, placingKey, jobId = KEYS[1], KEYS[2], ARGV[1]
local existing = rcall('HMGET', jobKey, 'status', 'placement', 'tenant')
if existing[1] then
  return { 0, existing[1], existing[2] or '', existing[3] or '', rcall('ZSCORE', placingKey, jobId) or '' }
end
local attempts = cjson.encode({ { attempt_id = 1, node_id = ARGV[6], status = 'dispatched' } })
rcall('HSET', jobKey, 'job_id', jobId, 'status', 'dispatched', 'created_at', ARGV[2], 'request', ARGV[3],
  'tenant', ARGV[5], 'node_id', ARGV[6], 'attempt_id', 1, 'attempts', attempts, 'reserved_at', ARGV[2],
  'dispatched_at', ARGV[2], 'placement', ARGV[7], 'claim', ARGV[9], 'session_id', ARGV[11],
  'timeout_ms', ARGV[13])
if ARGV[10] ~= '' then rcall('HSET', jobKey, 'traceparent', ARGV[10]) end
if ARGV[12] ~= '' then rcall('HSET', jobKey, 'utterance_index', ARGV[12]) end
rcall('PEXPIRE', jobKey, ARGV[4])
rcall('ZADD', placingKey, ARGV[8], jobId)
rcall('ZADD', KEYS[3], ARGV[14], jobId)
indexJob(KEYS[4], jobId, ARGV[2], tonumber(ARGV[15]))
return { 1 }
