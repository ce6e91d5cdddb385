-- Live workers. KEYS: worker registry. Replies the members not yet expired.
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. string.format('%.0f', server_ms()), '+inf')
