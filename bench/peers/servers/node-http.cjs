'use strict';
// The ceiling: raw node:http answering GET /hello with the same JSON as every peer
// (copied from ../shared/bench-peers/servers/node-http.js). PORT sets the port.
const http = require('node:http');
const port = Number(process.env.PORT || 4521);
http.createServer((req, res) => {
  const q = req.url.indexOf('?');
  const body = JSON.stringify({ message: 'hello', path: q === -1 ? req.url : req.url.slice(0, q) });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}).listen(port, '127.0.0.1');
