-- List. KEYS: shard entry and lease of each shard, in pairs.
-- Replies eight values per shard: what makes the entry unreadable (nil when
-- nothing does), live owner, token, sequence, sub_sequence, ended,
-- start_timestamp_ns, start_sequence. An unreadable entry's other values are nil.
local reply = {}
for i = 1, #KEYS, 2 do
  local problem = entry_problem(KEYS[i])
  if problem then
    table.insert(reply, problem)
    for _ = 1, 7 do
      table.insert(reply, false)
    end
  else
    local state = redis.call('HMGET', KEYS[i], 'owner', 'token', 'sequence', 'sub_sequence',
      'ended', 'start_timestamp_ns', 'start_sequence')
    local owner = false
    if state[1] and redis.call('EXISTS', KEYS[i + 1]) == 1 then
      owner = state[1]
    end
    table.insert(reply, false)
    table.insert(reply, owner)
    table.insert(reply, state[2] or '0')
    table.insert(reply, state[3])
    table.insert(reply, state[4])
    table.insert(reply, state[5])
    table.insert(reply, state[6])
    table.insert(reply, state[7])
  end
end
return reply
