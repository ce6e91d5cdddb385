-- Mark SHARD_END. KEYS: shard entry. ARGV: worker, token.
local refused = fence()
if refused then
  return refused
end
redis.call('HSET', KEYS[1], 'ended', '1')
return {'ok'}
