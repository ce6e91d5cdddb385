-- Prune finished shards. KEYS: shard entry and lease of each shard, in pairs,
-- then the shard index. ARGV: the shard ids, in the order of their keys.
-- Deletes an entry only when it can be read, records SHARD_END and its lease
-- is not live (released, or expired); all in this one atomic step.
-- Replies {number deleted, the ids of unreadable entries left alone...}.
local index = KEYS[#KEYS]
local pruned = 0
local unreadable = {}
for i = 1, #ARGV do
  local entry, lease = KEYS[2 * i - 1], KEYS[2 * i]
  if entry_problem(entry) then
    table.insert(unreadable, ARGV[i])
  elseif redis.call('HGET', entry, 'ended') == '1' and redis.call('EXISTS', lease) == 0 then
    redis.call('DEL', entry)
    redis.call('ZREM', index, ARGV[i])
    pruned = pruned + 1
  end
end
local reply = {pruned}
for _, id in ipairs(unreadable) do
  table.insert(reply, id)
end
return reply
