// Regressions found by trying to break `nimbus dev` (issue 2): each test is
// one finding, driven over real HTTP against real instances.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DevServer } from '../src/server/index.js';

const HANDLER = `
let n = 0;
exports.ret = async (event) => {
  const k = (event.queryStringParameters || {}).k;
  switch (k) {
    case 'badvalue': return { statusCode: 200, headers: { 'x-u': 'h\\u00e9llo\\u2713' }, body: 'x' };
    case 'crlf': return { statusCode: 200, headers: { 'x-u': 'a\\r\\nInjected: yes' }, body: 'x' };
    case 'badname': return { statusCode: 200, headers: { 'bad name': 'v' }, body: 'x' };
    case '1xx': return { statusCode: 101, body: 'x' };
    case '204': return { statusCode: 204, body: 'should not be sent' };
    case 'huge': return { statusCode: 200, body: 'y'.repeat(7 * 1024 * 1024) };
    default: return { statusCode: 200, body: String(++n) };
  }
};
exports.mv = async () => ({ statusCode: 200, headers: { 'X-A': 'same', 'Set-Cookie': 'a=1' },
  multiValueHeaders: { 'X-A': ['same', 'other'], 'set-cookie': ['a=1', 'b=2'] }, body: 'ok' });
exports.slow = async () => { await new Promise((r) => setTimeout(r, 1500)); return { statusCode: 200, body: 'finished' }; };
`;

const CONFIG = (withSlow: boolean) => `service: issue2
provider:
  name: aws
  runtime: nodejs20.x
  httpApi:
    cors:
      allowedOrigins: [https://a.example.com]
      allowCredentials: true
functions:
  ret:
    name: ret
    handler: h.ret
    events:
      - httpApi: ANY /ret
      - http: GET ret
  mv:
    handler: h.mv
    events:
      - http: GET mv
${withSlow ? `  slow:
    handler: h.slow
    events:
      - httpApi: GET /slow
` : ''}`;

function get(port: number, path: string, method = 'GET', headers: Record<string, string> = {}): Promise<{ status: number; raw: string[]; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, headers, agent: false, timeout: 20_000 }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode!, raw: res.rawHeaders, body }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 20 s')));
    req.on('error', reject);
    req.end();
  });
}

describe('issue 2 regressions', () => {
  let dir: string;
  let server: DevServer;
  let port: number;
  const logs: string[] = [];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nimbus-issue2-'));
    writeFileSync(join(dir, 'h.js'), HANDLER);
    writeFileSync(join(dir, 'serverless.yml'), CONFIG(true));
    server = await DevServer.start({ configPath: join(dir, 'serverless.yml'), env: process.env, port: 0, controlPort: 0, log: (t) => { logs.push(t); } });
    port = server.port;
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a header Node refuses fails that one request as malformed, and the server keeps serving', async () => {
    for (const k of ['badvalue', 'crlf', 'badname']) {
      const r = await get(port, `/ret?k=${k}`);
      assert.equal(r.status, 500, k);
      assert.equal(r.body, '{"message":"Internal Server Error"}');
      assert.equal(r.raw[r.raw.findIndex((h) => h.toLowerCase() === 'x-nimbus-error') + 1], 'NIMBUS_ERR_GATEWAY_MALFORMED_RESPONSE');
    }
    assert.equal((await get(port, '/dev/ret?k=badvalue')).status, 502, 'REST');
    assert.ok(logs.some((l) => l.includes('Malformed Lambda proxy response: a header is not valid HTTP')));
    assert.equal((await get(port, '/ret')).status, 200);
  });

  it('a malformed function name on the Invoke API is a 400, not a crash', async () => {
    const r = await fetch(`http://127.0.0.1:${server.controlPort}/2015-03-31/functions/%E0%A4%A/invocations`, { method: 'POST', body: '{}' });
    assert.equal(r.status, 400);
    assert.equal(r.headers.get('x-amzn-errortype'), 'InvalidParameterValueException');
    assert.equal((await get(port, '/ret')).status, 200);
  });

  it('a version or alias that does not exist is not found', async () => {
    const base = `http://127.0.0.1:${server.controlPort}/2015-03-31/functions`;
    assert.equal((await fetch(`${base}/ret:7/invocations`, { method: 'POST', body: '{}' })).status, 404);
    assert.equal((await fetch(`${base}/ret/invocations?Qualifier=live`, { method: 'POST', body: '{}' })).status, 404);
    assert.equal((await fetch(`${base}/ret:$LATEST/invocations`, { method: 'POST', body: '{}' })).status, 200);
  });

  it('a 1xx statusCode is malformed; a 204 carries no body and no Content-Length', async () => {
    assert.equal((await get(port, '/ret?k=1xx')).status, 500);
    const r = await get(port, '/ret?k=204');
    assert.equal(r.status, 204);
    assert.ok(!r.raw.some((h) => h.toLowerCase() === 'content-length'));
    assert.equal(r.body, '');
  });

  it('a response over 6 MB is a function error, as on Lambda', async () => {
    assert.equal((await get(port, '/ret?k=huge')).status, 500);
    const r = await fetch(`http://127.0.0.1:${server.controlPort}/2015-03-31/functions/ret/invocations`, { method: 'POST', body: '{"queryStringParameters":{"k":"huge"}}' });
    assert.equal(r.headers.get('x-amz-function-error'), 'Unhandled');
    assert.deepEqual(await r.json(), { errorType: 'Function.ResponseSizeTooLarge', errorMessage: 'Response payload size exceeded maximum allowed payload size (6291556 bytes).' });
  });

  it('REST: a header in both headers and multiValueHeaders with the same value is sent once', async () => {
    const r = await get(port, '/dev/mv');
    const values = (name: string) => r.raw.filter((_, i) => i % 2 === 0 && r.raw[i].toLowerCase() === name).length;
    assert.equal(values('x-a'), 2);
    assert.equal(values('set-cookie'), 2);
  });

  it('a REST path is answered by the REST API: no HTTP API CORS preflight for it', async () => {
    const r = await get(port, '/dev/ret', 'OPTIONS', { Origin: 'https://a.example.com', 'Access-Control-Request-Method': 'GET' });
    assert.equal(r.status, 403);
    assert.ok(!r.raw.some((h) => h.toLowerCase() === 'access-control-allow-origin'));
    const api = await get(port, '/ret', 'OPTIONS', { Origin: 'https://a.example.com', 'Access-Control-Request-Method': 'GET' });
    assert.equal(api.status, 204);
  });

  it('files that are not code (a log in the project folder) do not reload, so warm instances stay', async () => {
    const first = Number((await get(port, '/ret')).body);
    for (let i = 0; i < 5; i++) { appendFileSync(join(dir, 'dev.log'), `line ${i}\n`); await new Promise((r) => setTimeout(r, 100)); }
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(Number((await get(port, '/ret')).body), first + 1, 'the same warm instance answered');
    assert.ok(!logs.some((l) => l.includes('dev.log')));
  });

  it('removing a function from serverless.yml lets its in-flight invocations finish', async () => {
    const inflight = get(port, '/slow');
    await new Promise((r) => setTimeout(r, 300));
    writeFileSync(join(dir, 'serverless.yml'), CONFIG(false));
    const r = await inflight;
    assert.equal(r.status, 200);
    assert.equal(r.body, 'finished');
    const until = Date.now() + 5000;
    while (Date.now() < until && (await get(port, '/slow')).status !== 404) await new Promise((res) => setTimeout(res, 100));
    assert.equal((await get(port, '/slow')).status, 404);
  });
});
