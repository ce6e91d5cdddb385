-- List. KEYS: shard entry and lease of each shard, in pairs.
-- Replies seven values per shard: live owner, token, sequence, sub_sequence, ended,
-- start_timestamp_ns, start_sequence.
local reply = {}
for i = 1, #KEYS, 2 do
  local state = redis.call('HMGET', KEYS[i], 'owner', 'token', 'sequence', 'sub_sequence', 'ended',
    'start_timestamp_ns', 'start_sequence')
  local owner = false
  if state[1] and redis.call('EXISTS', KEYS[i + 1]) == 1 then
    owner = state[1]
  end
  table.insert(reply, owner)
  table.insert(reply, state[2] or '0')
  table.insert(reply, state[3])
  table.insert(reply, state[4])
  table.insert(reply, state[5])
  table.insert(reply, state[6])
  table.insert(reply, state[7])
end
return reply
