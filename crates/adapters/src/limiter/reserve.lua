-- Reserve one attempt in a sliding-window log: tessera_core::ratelimit::decide, atomically.
-- KEYS[1]  the key's sorted set (member = ticket, score = when it was counted)
-- ARGV[1]  now, unix microseconds
-- ARGV[2]  the window, microseconds
-- ARGV[3]  the limit
-- ARGV[4]  the ticket (hex)
-- ARGV[5]  the window in milliseconds, rounded up: the key's time to live
-- Returns {1, 0} when the attempt was counted, {0, retry_after_us} when it was not.
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])

-- An entry counted at t is live while t + window > now: drop t <= now - window.
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count < limit then
  redis.call('ZADD', key, ARGV[1], ARGV[4])
  redis.call('PEXPIRE', key, ARGV[5])
  return {1, 0}
end

-- Full: room appears when the entry at rank count - limit (oldest first) ages out.
local frees_at = now + window
local pivot = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
if pivot[2] then
  frees_at = tonumber(pivot[2]) + window
end
return {0, frees_at - now}
