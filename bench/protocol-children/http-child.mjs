/**
 * Child for bench/protocol.ts: the AWS Lambda Runtime API pattern. The child
 * long-polls `GET /2018-06-01/runtime/invocation/next` on the parent's HTTP
 * server (address in NIMBUS_BENCH_RUNTIME_API, like AWS_LAMBDA_RUNTIME_API),
 * gets the raw event JSON as the body and the request id in
 * `lambda-runtime-aws-request-id`, runs the handler and POSTs the result to
 * `/2018-06-01/runtime/invocation/<id>/response`, on one keep-alive connection.
 * https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html
 */
import http from 'node:http';
import { handler } from './handler.mjs';

const [host, port] = (process.env.NIMBUS_BENCH_RUNTIME_API ?? '').split(':');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const BASE = '/2018-06-01/runtime/invocation';

function request(method, path, body) {
  return new Promise((resolve, reject) => {
    const headers = body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
    const req = http.request({ host, port: Number(port), method, path, agent, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ headers: res.headers, body: chunks.length === 1 ? chunks[0].toString('utf8') : Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

for (;;) {
  let next;
  try { next = await request('GET', `${BASE}/next`); } catch { process.exit(0); }
  const requestId = next.headers['lambda-runtime-aws-request-id'];
  const result = await handler(JSON.parse(next.body));
  try { await request('POST', `${BASE}/${requestId}/response`, JSON.stringify(result)); } catch { process.exit(0); }
}
