// Preloaded into a peer gateway (node --require) that has no option for its bind
// address: every server.listen(port) without an explicit host binds 127.0.0.1, so
// the benchmark never listens on a public interface.
"use strict";
const net = require("net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === "number" || (typeof args[0] === "string" && /^\d+$/.test(args[0]))) {
    if (args[1] === undefined || typeof args[1] === "function" || typeof args[1] === "number") {
      if (args[1] === undefined) args.splice(1, 1, "127.0.0.1");
      else args.splice(1, 0, "127.0.0.1");
    }
  } else if (args[0] && typeof args[0] === "object" && !args[0].path && !args[0].host) {
    args[0] = { ...args[0], host: "127.0.0.1" };
  }
  return listen.apply(this, args);
};
