--[[
  appendPartial: a node's asr_partial (streaming ASR text) for the job it is running. Kept only
  while the job is not terminal and the node is the one of its current attempt (asr_partial
  carries no attempt id); the stream expires with the job record.

  KEYS[1] job hash         {p:j<k>}:job:<job id>
  KEYS[2] partials stream  {p:j<k>}:partials:<job id>

  ARGV[1] node id   ARGV[2] text   ARGV[3] is_final ('1' | '0')
  ARGV[4] server time, ms   ARGV[5] stream cap (approximate MAXLEN)
  ARGV[6] the job shard's events channel {p:j<k>}:events   ARGV[7] job id

  An appended partial is announced on the events channel: SPUBLISH "<job id>|partial".

  Returns 1 appended, 0 ignored (terminal job, or not this node's job), -2 no such job
]]
local rcall = redis.call
local job = rcall('HMGET', KEYS[1], 'status', 'node_id', 'attempt_id')
if not job[1] then return -2 end
if job[1] == 'finished' or job[1] == 'failed' or job[2] ~= ARGV[1] then return 0 end
rcall('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'attempt', job[3] or '1', 'text', ARGV[2], 'final', ARGV[3], 'at', ARGV[4])
local ttl = rcall('PTTL', KEYS[1])
if ttl > 0 then rcall('PEXPIRE', KEYS[2], ttl) end
rcall('SPUBLISH', ARGV[6], ARGV[7] .. '|partial')
return 1
