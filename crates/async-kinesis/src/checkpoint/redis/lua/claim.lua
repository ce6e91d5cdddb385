-- Claim. KEYS: shard entry, lease, shard index. ARGV: shard id, worker,
-- session timeout in ms.
-- Replies {'finished'} | {'held', owner} | {'unreadable', problem} |
-- {'exhausted', token} |
-- {'acquired', token, sequence, sub_sequence, start_timestamp_ns, start_sequence}.
local problem = entry_problem(KEYS[1])
if problem then
  return {'unreadable', problem}
end
local state = redis.call('HMGET', KEYS[1], 'owner', 'ended', 'sequence', 'sub_sequence',
  'start_timestamp_ns', 'start_sequence', 'token')
if state[2] == '1' then
  return {'finished'}
end
local owner = state[1]
if owner and owner ~= ARGV[2] and redis.call('EXISTS', KEYS[2]) == 1 then
  return {'held', owner}
end
-- HINCRBY counts in signed 64 bits: refuse rather than fail or wrap at the top.
if state[7] and compare_numbers(state[7], '9223372036854775807') >= 0 then
  return {'exhausted', state[7]}
end
local token = redis.call('HINCRBY', KEYS[1], 'token', 1)
redis.call('HSET', KEYS[1], 'owner', ARGV[2])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('ZADD', KEYS[3], 0, ARGV[1])
return {'acquired', token, state[3], state[4], state[5], state[6]}
