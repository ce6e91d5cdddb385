-- Shared by every script of the Redis checkpoint store (prepended to each).
--
-- Hash fields of a shard entry: owner (absent when released), token, sequence,
-- sub_sequence (absent for a whole record), ended ("1" after SHARD_END),
-- start_timestamp_ns or start_sequence (where reading started, before the
-- first checkpoint).

-- Compares two non-negative decimal integers of any length: -1, 0 or 1.
-- Leading zeros are ignored; equal lengths compare digit by digit (byte
-- values, never the locale's collation).
local function compare_numbers(a, b)
  a = string.gsub(a, '^0+', '')
  b = string.gsub(b, '^0+', '')
  if #a ~= #b then
    return #a < #b and -1 or 1
  end
  for i = 1, #a do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      return x < y and -1 or 1
    end
  end
  return 0
end

-- The server's clock in milliseconds: one clock for every client.
local function server_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Refuses a write unless the entry at KEYS[1] is held by ARGV[1] with token
-- ARGV[2]. Returns the refusal reply, or nil when the lease holds. An expired
-- lease nobody claimed since still holds: no other worker has written.
local function fence()
  local state = redis.call('HMGET', KEYS[1], 'owner', 'token')
  if not state[2] then
    return {'unknown'}
  end
  if state[1] ~= ARGV[1] or state[2] ~= ARGV[2] then
    return {'not_owned', state[1]}
  end
  return nil
end
