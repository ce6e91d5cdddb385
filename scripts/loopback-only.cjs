// Node preload (`node -r ./loopback-only.cjs server.js`): every server socket listens on 127.0.0.1.
// kinesis-mock binds 0.0.0.0 and kinesalite's CLI binds every interface; our test services must
// never be reachable from outside this machine. LOCAL_STACK_HOST overrides the address.
'use strict';
const net = require('net');
const host = process.env.LOCAL_STACK_HOST || '127.0.0.1';
const listen = net.Server.prototype.listen;

function isPort(value) {
  return typeof value === 'number' || (typeof value === 'string' && /^[0-9]+$/.test(value));
}

net.Server.prototype.listen = function patchedListen(...args) {
  const first = args[0];
  if (isPort(first)) {
    // listen(port[, host][, backlog][, cb]): put our host in second place.
    if (typeof args[1] === 'string') args[1] = host;
    else args.splice(1, 0, host);
  } else if (first && typeof first === 'object' && first.port !== undefined && first.path === undefined) {
    // listen({ port, host? }): an options object without a unix socket path.
    args[0] = { ...first, host };
  }
  return listen.apply(this, args);
};
