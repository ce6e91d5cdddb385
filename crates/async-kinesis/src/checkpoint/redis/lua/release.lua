-- Release. KEYS: shard entry, lease. ARGV: worker, token.
-- The token and progress stay: the next claim continues from both.
local refused = fence()
if refused then
  return refused
end
redis.call('HDEL', KEYS[1], 'owner')
redis.call('DEL', KEYS[2])
return {'ok'}
