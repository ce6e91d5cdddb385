-- Renew. KEYS: shard entry, lease. ARGV: worker, token, session timeout in ms.
local refused = fence()
if refused then
  return refused
end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])
return {'ok'}
