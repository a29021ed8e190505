--[[
  sweepJob: the job sweep's look at one job due in the open-jobs index. A job that is gone or
  terminal leaves the index (atomically with that check: a job placed again under the same id
  re-enters it afterwards); an unfinished one is described for the caller, which then asks the
  node's shard whether the current attempt still holds a slot there (another slot: no script
  can see both) and, if not, fails the attempt over with failoverJob.

  KEYS[1] job hash        {p:j<k>}:job:<job id>
  KEYS[2] open jobs zset  {p:j<k>}:open   (job id → next sweep, ms)

  ARGV[1] job id

  Returns { 0 } gone or terminal: removed from the index
          { 1, attempt id, node id, the attempt's status ('timed_out': a failover was asked
            for and not placed yet), dispatched_at (ms, '' unknown), nodes tried (JSON array) }
]]
local rcall = redis.call
local job = rcall('HMGET', KEYS[1], 'status', 'attempt_id', 'node_id', 'attempts', 'dispatched_at')
if not job[1] or job[1] == 'finished' or job[1] == 'failed' then
  rcall('ZREM', KEYS[2], ARGV[1])
  return { 0 }
end
local attemptStatus, tried = '', {}
for _, a in ipairs(cjson.decode(job[4] or '[]')) do
  if tostring(a.attempt_id) == job[2] then attemptStatus = a.status or '' end
  tried[#tried + 1] = a.node_id
end
return { 1, job[2] or '', job[3] or '', attemptStatus, job[5] or '', cjson.encode(tried) }
