-- node history (included by the scripts that change a node's status, drain or quarantine): one
-- entry per change, `<server ms, base 36, 8 chars><state code><reason code>[<by>]`, kept in the
-- node hash itself (no key of its own: deleted with the record) in chunks of at most 64 bytes,
-- so a small record stays listpack-encoded: `h0` the newest chunk (entries oldest first, joined
-- by ','), `h1` … `h5` older ones; a full `h0` shifts down and `h5` falls off: the last 26-30
-- changes are kept (20-24 when each names a 5-character operator). Removal (retention) records nothing: the record, history included, is deleted.
-- Codes are decoded by shared/store/node-history.ts:
--   state   g registering  r ready  d degraded  o offline  D draining  U undrained
--           q quarantined
--   reason  R registered  h heartbeat  u unhealthy heartbeats  c connection closed
--           m missed heartbeats  v revoked  s reset  a operator (followed by who)
--           e node_error  f job_failed  A ack_timeout  T job_timeout
local function noteHistory(nodeKey, nowMs, event)
  local digits, n, t = '0123456789abcdefghijklmnopqrstuvwxyz', math.floor(tonumber(nowMs) or 0), ''
  while n > 0 do
    local r = n % 36
    t = string.sub(digits, r + 1, r + 1) .. t
    n = (n - r) / 36
  end
  while #t < 8 do t = '0' .. t end
  local entry = t .. event
  local h0 = redis.call('HGET', nodeKey, 'h0')
  if not h0 then
    redis.call('HSET', nodeKey, 'h0', entry)
  elseif #h0 + 1 + #entry <= 64 then
    redis.call('HSET', nodeKey, 'h0', h0 .. ',' .. entry)
  else
    local old = redis.call('HMGET', nodeKey, 'h1', 'h2', 'h3', 'h4')
    local shifted = { 'h0', entry, 'h1', h0 }
    for i = 1, 4 do
      if old[i] then
        shifted[#shifted + 1] = 'h' .. (i + 1)
        shifted[#shifted + 1] = old[i]
      end
    end
    redis.call('HSET', nodeKey, unpack(shifted))
  end
end
