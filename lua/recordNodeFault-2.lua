--[[
  recordNodeFault: a node failed a job it had accepted (a failed job_result counted as its
  fault, a node_error), or let one time out. SB_QUARANTINE_FAULTS such faults within
  SB_QUARANTINE_WINDOW_MS quarantine it: selection skips it (`quarantined`) until q_until,
  base × 2^(quarantines in a row − 1), capped. It comes back by itself when that passes; a
  success (clearNodeFaults) resets the count and the back-off. Faults while quarantined are
  not counted (they are jobs it accepted before).

  KEYS[1] node hash  {p:sK}:node:<id>
  KEYS[2] dirty set  {p:sK}:dirty

  ARGV[1] node id
  ARGV[2] server time, ms
  ARGV[3] window, ms
  ARGV[4] faults that quarantine (threshold, >= 1)
  ARGV[5] first back-off, ms
  ARGV[6] longest back-off, ms
  ARGV[7] reason (ack_timeout, job_timeout, job_failed, node_error)

  Returns { code, quarantined until (ms, 0 when not), dirty_was_empty (1|0) }
    code  1 quarantined now   0 counted   2 already quarantined (not counted)   -1 unknown node
]]
local rcall = redis.call
-- @include "node-history"
local nodeKey, dirtyKey = KEYS[1], KEYS[2]
local nodeId = ARGV[1]
local now, window, threshold = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local base, cap = tonumber(ARGV[5]), tonumber(ARGV[6])

local s = rcall('HMGET', nodeKey, 'status', 'q_strikes', 'q_first', 'q_level', 'q_until')
if not s[1] or s[1] == 'removed' then return { -1, 0, 0 } end
local untilMs = tonumber(s[5]) or 0
if untilMs > now then return { 2, untilMs, 0 } end

local strikes, first = tonumber(s[2]) or 0, tonumber(s[3]) or 0
if strikes == 0 or now - first > window then
  strikes, first = 0, now
end
strikes = strikes + 1
if strikes < threshold then
  rcall('HSET', nodeKey, 'q_strikes', strikes, 'q_first', first)
  return { 0, 0, 0 }
end

local level = (tonumber(s[4]) or 0) + 1
local backoff = base * 2 ^ math.min(level - 1, 30)
if backoff > cap then backoff = cap end
untilMs = now + backoff
rcall('HSET', nodeKey, 'q_strikes', 0, 'q_first', 0, 'q_level', level, 'q_until', untilMs,
  'q_reason', ARGV[7], 'q_at', now)
local qCodes = { node_error = 'e', job_failed = 'f', ack_timeout = 'A', job_timeout = 'T' }
noteHistory(nodeKey, now, 'q' .. (qCodes[ARGV[7]] or '?'))
local dirtyWasEmpty = 0
if rcall('SADD', dirtyKey, nodeId) == 1 and rcall('SCARD', dirtyKey) == 1 then dirtyWasEmpty = 1 end
return { 1, untilMs, dirtyWasEmpty }
