/**
 * The ceiling for bench/http.sh: a raw node:http server answering every
 * request with the same response as examples/typescript-api's GET /hello
 * (200, content-type application/json, body {"message":"hello"}), with no
 * gateway, no event mapping and no function instance. PORT sets the port.
 */
import http from 'node:http';

const BODY = '{"message":"hello"}';
const port = Number(process.env.PORT ?? 4312);

http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length });
  res.end(BODY);
}).listen(port, '127.0.0.1');
