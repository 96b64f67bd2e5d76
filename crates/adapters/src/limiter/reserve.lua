-- Reserve one attempt in a sliding-window log: tessera_core::ratelimit::decide, atomically.
-- KEYS[1]  the key's sorted set (member = 'p:' or 'f:' then the ticket: pending or
--          failed; score = when it was counted)
-- ARGV[1]  now, unix microseconds
-- ARGV[2]  the window, microseconds
-- ARGV[3]  the limit
-- ARGV[4]  the ticket (hex)
-- ARGV[5]  the window in milliseconds, rounded up: the key's time to live
-- ARGV[6]  the pending lease, microseconds: a pending entry that old counts as failed
-- Returns {1, 0} when the attempt was counted (pending), {2, 0} when the window is full
-- but not of failures (wait and ask again), {0, retry_after_us} when it is full of them.
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local lease = tonumber(ARGV[6])

-- An entry counted at t is live while t + window > now: drop t <= now - window.
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count < limit then
  -- A ticket counted again moves to now, pending.
  redis.call('ZREM', key, 'f:' .. ARGV[4])
  redis.call('ZADD', key, ARGV[1], 'p:' .. ARGV[4])
  redis.call('PEXPIRE', key, ARGV[5])
  return {1, 0}
end

-- Full: only failures (and pending entries past their lease) lock out; oldest first.
local entries = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
local failures = {}
for i = 1, #entries, 2 do
  local at = tonumber(entries[i + 1])
  if string.sub(entries[i], 1, 2) == 'f:' or at + lease <= now then
    failures[#failures + 1] = at
  end
end
if #failures < limit then
  return {2, 0}
end
-- Room appears when the failure at rank #failures - limit (oldest first) ages out; with
-- a limit of zero there is never room, and a whole window is the honest answer.
local frees_at = now + window
local pivot = failures[#failures - limit + 1]
if pivot then
  frees_at = pivot + window
end
return {0, frees_at - now}
