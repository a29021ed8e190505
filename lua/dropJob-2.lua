--[[
  dropJob: gives a job id back (the client may retry with it): every node tried refused the
  reservation, or recovery found a placement past its deadline without one (and fenced it).
  Compare-and-set: only the same claim (its token), still at attempt 1 on that node and
  unconfirmed, is dropped — never a later claim of the same id: a resolver that read the job,
  then fenced, may find it dropped and claimed anew (on the same node) by a repeated request.

  KEYS[1] job hash       {p:j<k>}:job:<job id>
  KEYS[2] placing zset   {p:j<k>}:placing

  ARGV[1] job id   ARGV[2] node of attempt 1   ARGV[3] claim token of the placement

  Returns 1 dropped, 0 not dropped (it moved on, points at another node, or is another claim)
]]
local rcall = redis.call
local jobKey, placingKey, jobId = KEYS[1], KEYS[2], ARGV[1]
local job = rcall('HMGET', jobKey, 'status', 'attempt_id', 'node_id', 'claim')
if not job[1] then
  rcall('ZREM', placingKey, jobId)
  return 0
end
if job[1] ~= 'dispatched' or job[2] ~= '1' or job[3] ~= ARGV[2] or job[4] ~= ARGV[3] then return 0 end
if not rcall('ZSCORE', placingKey, jobId) then return 0 end
rcall('DEL', jobKey)
rcall('ZREM', placingKey, jobId)
return 1
