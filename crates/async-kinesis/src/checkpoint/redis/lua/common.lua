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

-- Whether `s` is a string of decimal digits.
local function is_decimal(s)
  return type(s) == 'string' and string.match(s, '^%d+$') ~= nil
end

local U64_MAX = '18446744073709551615'
-- Nanoseconds of about 30 billion years: any larger start is no time.
local MAX_NANOS = '999999999999999999999999999'

-- A stored value as an error message shows it: quoted, and cut short.
local function shown(s)
  if #s > 64 then
    s = string.sub(s, 1, 64) .. '...'
  end
  return '"' .. s .. '"'
end

-- Why the shard entry at `key` cannot be read, or nil when it can (a missing
-- entry can). Every script checks an entry with this before acting on it, so
-- none acts on a damaged one.
local function entry_problem(key)
  local kind = redis.call('TYPE', key)['ok']
  if kind == 'none' then
    return nil
  end
  if kind ~= 'hash' then
    return 'the key holds a ' .. kind .. ', not a hash'
  end
  local f = redis.call('HMGET', key, 'token', 'sequence', 'sub_sequence', 'ended',
    'start_timestamp_ns', 'start_sequence')
  if not f[1] then
    return 'no token'
  end
  if not is_decimal(f[1]) or compare_numbers(f[1], U64_MAX) > 0 then
    return 'token ' .. shown(f[1]) .. ' is not a 64-bit unsigned number'
  end
  if f[2] and not is_decimal(f[2]) then
    return 'sequence ' .. shown(f[2]) .. ' is not a decimal number'
  end
  if f[3] and (not is_decimal(f[3]) or compare_numbers(f[3], U64_MAX) > 0) then
    return 'sub_sequence ' .. shown(f[3]) .. ' is not a 64-bit unsigned number'
  end
  if f[4] and f[4] ~= '1' then
    return 'ended ' .. shown(f[4]) .. ' is not 1'
  end
  if f[5] and (not is_decimal(f[5]) or compare_numbers(f[5], MAX_NANOS) > 0) then
    return 'start_timestamp_ns ' .. shown(f[5]) .. ' is not a time in nanoseconds'
  end
  if f[6] and not is_decimal(f[6]) then
    return 'start_sequence ' .. shown(f[6]) .. ' is not a decimal number'
  end
  if f[5] and f[6] then
    return 'both start_timestamp_ns and start_sequence are set'
  end
  return nil
end

-- Refuses a write unless the entry at KEYS[1] is held by ARGV[1] with token
-- ARGV[2]. Returns the refusal reply, or nil when the lease holds. An expired
-- lease nobody claimed since still holds: no other worker has written.
local function fence()
  local problem = entry_problem(KEYS[1])
  if problem then
    return {'unreadable', problem}
  end
  local state = redis.call('HMGET', KEYS[1], 'owner', 'token')
  if not state[2] then
    return {'unknown'}
  end
  if state[1] ~= ARGV[1] or state[2] ~= ARGV[2] then
    return {'not_owned', state[1]}
  end
  return nil
end
