// The control server over HTTP on loopback: authentication, the /_/ hook,
// body limits, qualifiers, and that nimbus dev's backend keeps working as before.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { InvocationResult } from '../core/index.js';
import { createAuthenticator } from './auth.js';
import { ControlServer, MAX_INVOKE_PAYLOAD_BYTES, type ControlBackend, type ControlInvocationResult } from './lambda-api.js';
import { MAX_CODE_REQUEST_BYTES } from './lambda-rest.js';

const TOKEN = 'test-admin-token';
const ARN = 'arn:aws:lambda:us-east-1:000000000000:function';

function result(payload: unknown, extra: Partial<ControlInvocationResult> = {}): ControlInvocationResult {
  return { requestId: 'req-1', outcome: 'ok', payload: JSON.stringify(payload), durationMs: 1, billedDurationMs: 1, logs: 'START\nEND\n', ...extra };
}

async function start(backend: ControlBackend): Promise<{ base: string; close: () => Promise<void> }> {
  const server = new ControlServer(backend);
  const port = await server.listen(0);
  return { base: `http://127.0.0.1:${port}`, close: () => server.close(1000) };
}

describe('control server as nimbus dev uses it (no auth, $LATEST only)', () => {
  let base: string;
  let close: () => Promise<void>;
  const calls: unknown[][] = [];
  before(async () => {
    ({ base, close } = await start({
      ready: () => true,
      // Declared with one parameter, as nimbus dev's is: it cannot see qualifiers.
      resolve: (name) => (name === 'hello' ? { arn: `${ARN}:hello` } : null),
      arnFor: (name) => `${ARN}:${name}`,
      invoke: async (...args) => { calls.push(args); return result({ hi: 1 }) as InvocationResult; },
      invokeAsync: async () => {},
      metrics: (name) => (name === 'nope' ? null : { invocations: 3 }),
    }));
  });
  after(() => close());

  it('invokes $LATEST and refuses any other qualifier with 404', async () => {
    const ok = await fetch(`${base}/2015-03-31/functions/hello/invocations`, { method: 'POST', body: '{}' });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('x-amz-executed-version'), '$LATEST');
    assert.deepEqual(await ok.json(), { hi: 1 });
    const latest = await fetch(`${base}/2015-03-31/functions/hello:$LATEST/invocations`, { method: 'POST', body: '{}' });
    assert.equal(latest.status, 200);
    for (const url of [`${base}/2015-03-31/functions/hello:1/invocations`, `${base}/2015-03-31/functions/hello/invocations?Qualifier=live`]) {
      const r = await fetch(url, { method: 'POST', body: '{}' });
      assert.equal(r.status, 404, url);
      assert.equal(r.headers.get('x-amzn-errortype'), 'ResourceNotFoundException');
    }
    assert.equal(calls.length, 2);
  });

  it('needs no credentials, serves /_/metrics, and answers 404 UnknownOperation for management paths', async () => {
    const m = await fetch(`${base}/_/metrics`);
    assert.deepEqual(await m.json(), { invocations: 3 });
    assert.equal((await fetch(`${base}/_/metrics?function=nope`)).status, 404);
    const list = await fetch(`${base}/2015-03-31/functions`);
    assert.equal(list.status, 404);
    assert.equal(list.headers.get('x-amzn-errortype'), 'UnknownOperationException');
    assert.equal((await fetch(`${base}/_/deploy`, { method: 'POST', body: '{}' })).status, 404);
  });

  it('keeps the 6 MB Invoke limit', async () => {
    const r = await fetch(`${base}/2015-03-31/functions/hello/invocations`, { method: 'POST', body: Buffer.alloc(MAX_INVOKE_PAYLOAD_BYTES + 1, 32) });
    assert.equal(r.status, 413);
    assert.equal(r.headers.get('x-amzn-errortype'), 'RequestTooLargeException');
  });
});

describe('control server as nimbus server uses it (auth, qualifiers, lambda, routes)', () => {
  let base: string;
  let close: () => Promise<void>;
  const invoked: unknown[][] = [];
  const routed: string[] = [];
  const auth = { authorization: `Bearer ${TOKEN}` };
  before(async () => {
    ({ base, close } = await start({
      ready: () => false,
      resolve: (name, qualifier) => (name === 'fn' && (qualifier === undefined || ['$LATEST', '1', 'live'].includes(qualifier)) ? { arn: `${ARN}:fn` } : null),
      arnFor: (name) => `${ARN}:${name}`,
      invoke: async (...args) => { invoked.push(args); return result({ ok: true }, { executedVersion: args[2] === 'live' ? '1' : args[2] ?? '$LATEST' }); },
      invokeAsync: async (...args) => { invoked.push(['async', ...args]); },
      metrics: () => ({ from: 'backend' }),
      auth: createAuthenticator({ adminToken: TOKEN, accessKeys: new Map() }, { tokenFile: '/data/admin-token' }),
      lambda: { handle: async (method, path) => (path === '/2015-03-31/functions' && method === 'GET' ? { status: 200, body: { Functions: [] } } : null) },
      routes: async (req, res, body, path, query) => {
        routed.push(`${req.method} ${path} ${query.toString()} ${body.length}`);
        if (path !== '/_/services') return false;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('[]');
        return true;
      },
    }));
  });
  after(() => close());

  it('answers /_/health without credentials', async () => {
    const r = await fetch(`${base}/_/health`);
    assert.equal(r.status, 503);
    assert.deepEqual(await r.json(), { status: 'starting' });
  });

  it('refuses requests without credentials or with a wrong token, before the hook or the backend sees them', async () => {
    const none = await fetch(`${base}/_/services`);
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('x-amzn-errortype'), 'MissingAuthenticationTokenException');
    assert.match(((await none.json()) as { Message: string }).Message, /\/data\/admin-token/);
    const wrong = await fetch(`${base}/2015-03-31/functions/fn/invocations`, { method: 'POST', body: '{}', headers: { authorization: 'Bearer wrong' } });
    assert.equal(wrong.status, 403);
    assert.equal(wrong.headers.get('x-amzn-errortype'), 'AccessDeniedException');
    assert.equal((await fetch(`${base}/2015-03-31/functions`)).status, 401);
    assert.deepEqual(routed, []);
    assert.deepEqual(invoked, []);
  });

  it('passes authenticated /_/ requests to the hook with body, path and query; falls back to metrics, then 404', async () => {
    const r = await fetch(`${base}/_/services?x=1`, { headers: auth });
    assert.equal(r.status, 200);
    assert.equal(await r.text(), '[]');
    const upload = await fetch(`${base}/_/artifacts`, { method: 'PUT', headers: auth, body: Buffer.alloc(7 * 1024 * 1024) });
    assert.equal(upload.status, 404, 'not handled by the hook: 404, but a 7 MB body is within the /_/ limit');
    const m = await fetch(`${base}/_/metrics`, { headers: auth });
    assert.deepEqual(await m.json(), { from: 'backend' });
    assert.deepEqual(routed, ['GET /_/services x=1 0', `PUT /_/artifacts  ${7 * 1024 * 1024}`, 'GET /_/metrics  0']);
  });

  it('invokes versions and aliases, reporting the executed version', async () => {
    const v1 = await fetch(`${base}/2015-03-31/functions/fn:1/invocations`, { method: 'POST', headers: auth, body: '{"a":1}' });
    assert.equal(v1.headers.get('x-amz-executed-version'), '1');
    const live = await fetch(`${base}/2015-03-31/functions/fn/invocations?Qualifier=live`, { method: 'POST', headers: auth, body: '{}' });
    assert.equal(live.status, 200);
    assert.equal(live.headers.get('x-amz-executed-version'), '1');
    const ev = await fetch(`${base}/2015-03-31/functions/fn:live/invocations`, { method: 'POST', headers: { ...auth, 'x-amz-invocation-type': 'Event' }, body: '{}' });
    assert.equal(ev.status, 202);
    const missing = await fetch(`${base}/2015-03-31/functions/fn:9/invocations`, { method: 'POST', headers: auth, body: '{}' });
    assert.equal(missing.status, 404);
    assert.deepEqual(await missing.json(), { Type: 'User', Message: `Function not found: ${ARN}:fn:9` });
    const clash = await fetch(`${base}/2015-03-31/functions/fn:1/invocations?Qualifier=live`, { method: 'POST', headers: auth, body: '{}' });
    assert.equal(clash.status, 400);
    assert.deepEqual(invoked, [['fn', '{"a":1}', '1'], ['fn', '{}', 'live'], ['async', 'fn', '{}', 'live']]);
  });

  it('serves management operations through `lambda`; others are UnknownOperation', async () => {
    const list = await fetch(`${base}/2015-03-31/functions`, { headers: auth });
    assert.equal(list.status, 200);
    assert.deepEqual(await list.json(), { Functions: [] });
    const policy = await fetch(`${base}/2015-03-31/functions/fn/policy`, { headers: auth });
    assert.equal(policy.status, 404);
    assert.equal(policy.headers.get('x-amzn-errortype'), 'UnknownOperationException');
  });

  it('refuses a CreateFunction body over Lambda\'s limit with 413 RequestEntityTooLargeException', async () => {
    const r = await fetch(`${base}/2015-03-31/functions`, { method: 'POST', headers: auth, body: Buffer.alloc(MAX_CODE_REQUEST_BYTES + 1, 32) });
    assert.equal(r.status, 413);
    assert.equal(r.headers.get('x-amzn-errortype'), 'RequestEntityTooLargeException');
    assert.deepEqual(await r.json(), { Type: 'User', Message: 'Request must be smaller than 69905067 bytes for the CreateFunction operation' });
  });
});
