-- Heartbeat. KEYS: worker registry. ARGV: worker, session timeout in ms.
-- Scores are expiry times on the server's clock. Expired members are dropped,
-- and the registry itself expires with its last member.
local now = server_ms()
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], string.format('%.0f', tonumber(last[2])))
return {'ok'}
