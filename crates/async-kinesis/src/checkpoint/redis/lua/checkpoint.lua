-- Checkpoint. KEYS: shard entry. ARGV: worker, token, sequence number,
-- sub-sequence ('' for the whole record).
-- Only moves forward; a whole record is past every sub-record of it; an ended
-- shard stays ended.
local refused = fence()
if refused then
  return refused
end
local state = redis.call('HMGET', KEYS[1], 'ended', 'sequence', 'sub_sequence')
if state[1] == '1' then
  return {'ok'}
end
local sequence, sub = ARGV[3], ARGV[4]
if state[2] then
  local order = compare_numbers(sequence, state[2])
  if order < 0 then
    return {'ok'}
  end
  if order == 0 then
    if not state[3] then
      return {'ok'}
    end
    if sub ~= '' and compare_numbers(sub, state[3]) <= 0 then
      return {'ok'}
    end
  end
end
if sub == '' then
  redis.call('HSET', KEYS[1], 'sequence', sequence)
  redis.call('HDEL', KEYS[1], 'sub_sequence')
else
  redis.call('HSET', KEYS[1], 'sequence', sequence, 'sub_sequence', sub)
end
return {'ok'}
