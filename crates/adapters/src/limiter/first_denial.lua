-- Mark the first denial of a key in a window: true (1) iff no marker is live at `now`.
-- The marker holds the instant it stops being live, in the callers' time, so decisions
-- follow the `now` passed in; its time to live only cleans it up.
-- KEYS[1]  the marker
-- ARGV[1]  now, unix microseconds
-- ARGV[2]  now + window, unix microseconds
-- ARGV[3]  the window in milliseconds, rounded up: the marker's time to live
local live_until = redis.call('GET', KEYS[1])
if live_until and tonumber(live_until) > tonumber(ARGV[1]) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
