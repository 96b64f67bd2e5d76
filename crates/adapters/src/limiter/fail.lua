-- Settle a pending attempt as a failure: it keeps its time, and its slot, for the rest of
-- its window. Unknown or already failed tickets are left alone.
-- KEYS[1]  the key's sorted set
-- ARGV[1]  the ticket (hex)
local at = redis.call('ZSCORE', KEYS[1], 'p:' .. ARGV[1])
if not at then
  return 0
end
redis.call('ZREM', KEYS[1], 'p:' .. ARGV[1])
redis.call('ZADD', KEYS[1], at, 'f:' .. ARGV[1])
return 1
