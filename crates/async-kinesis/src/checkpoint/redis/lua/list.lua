-- List. KEYS: shard entry and lease of each shard, in pairs.
-- Replies five values per shard: live owner, token, sequence, sub_sequence, ended.
local reply = {}
for i = 1, #KEYS, 2 do
  local state = redis.call('HMGET', KEYS[i], 'owner', 'token', 'sequence', 'sub_sequence', 'ended')
  local owner = false
  if state[1] and redis.call('EXISTS', KEYS[i + 1]) == 1 then
    owner = state[1]
  end
  table.insert(reply, owner)
  table.insert(reply, state[2] or '0')
  table.insert(reply, state[3])
  table.insert(reply, state[4])
  table.insert(reply, state[5])
end
return reply
