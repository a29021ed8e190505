--[[
  fenceReservation: recovery's question to the node shard about an unconfirmed placement past
  its deadline: does attempt 1 of the job hold a slot on the node (reserved, or already acked)?
  If not, a fence takes the reservation's place, so that a reserveSlot still on its way for
  that claim is refused: the answer is final, and the job may be dropped.

  KEYS[1] reservation record   {p:sK}:resv:<job id>
  KEYS[2] running jobs zset    {p:sK}:run   ("<job>|<node>|<attempt>" -> deadline)

  ARGV[1] node id   ARGV[2] job id   ARGV[3] claim token   ARGV[4] fence TTL, ms

  Returns 1 the slot is held (placed), 0 fenced (no slot; none can be taken for this claim)
]]
local rcall = redis.call
local nodeId, jobId = ARGV[1], ARGV[2]
local mine = nodeId .. '|1|'
local held = rcall('GET', KEYS[1])
if held and string.sub(held, 1, #mine) == mine then return 1 end
if rcall('ZSCORE', KEYS[2], jobId .. '|' .. nodeId .. '|1') then return 1 end
if not held or string.sub(held, 1, 7) == 'fenced:' then
  rcall('SET', KEYS[1], 'fenced:' .. ARGV[3], 'PX', ARGV[4])
end
return 0
