-- Record where reading started. KEYS: shard entry. ARGV: worker, token, kind
-- ('timestamp' or 'sequence'), value (nanoseconds since the epoch, or a
-- sequence number).
-- Only the first start of a shard without a checkpoint is kept: a checkpoint,
-- SHARD_END or an earlier start leaves the entry unchanged.
local refused = fence()
if refused then
  return refused
end
local state = redis.call('HMGET', KEYS[1], 'ended', 'sequence', 'start_timestamp_ns', 'start_sequence')
if state[1] == '1' or state[2] or state[3] or state[4] then
  return {'ok'}
end
if ARGV[3] == 'timestamp' then
  redis.call('HSET', KEYS[1], 'start_timestamp_ns', ARGV[4])
else
  redis.call('HSET', KEYS[1], 'start_sequence', ARGV[4])
end
return {'ok'}
