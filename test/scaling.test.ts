// Scaling with real processes: bursts answered within the limits, throttling
// in AWS's shapes, scale to zero and back from the warm pool, and runaway
// functions that do not harm their neighbours.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DevServer } from '../src/server/index.js';

// Instances are told apart by an id made at init (in a pid namespace, every instance is pid 2).
const HANDLERS = `
const instanceId = require('crypto').randomUUID();
exports.sleep = async (event) => { await new Promise((r) => setTimeout(r, Number(event.ms ?? (event.queryStringParameters || {}).ms ?? 100))); return { instanceId }; };
exports.shared = async (event) => {
  await new Promise((r) => setTimeout(r, 300));
  return { instanceId, max: process.env.AWS_LAMBDA_MAX_CONCURRENCY };
};
exports.crashy = async (event) => {
  if (event.crash) { setTimeout(() => { throw new Error('boom'); }, 5); await new Promise((r) => setTimeout(r, 200)); }
  return { instanceId };
};
exports.syncNoCallback = (event, context) => ({ ignored: true });
exports.sharedHang = async (event) => {
  if (event.hang) for (;;) {}
  await new Promise((r) => setTimeout(r, Number(event.ms ?? 0)));
  return 'done';
};
exports.quick = async () => ({ statusCode: 200, body: instanceId });
exports.spin = async () => { for (;;) {} };
exports.hog = async () => { const h = []; for (;;) h.push(Buffer.alloc(16 * 1024 * 1024, 1)); };
exports.forks = async () => {
  const { spawn } = require('child_process');
  let made = 0, refused = 0;
  for (let i = 0; i < 400; i++) {
    try { const c = spawn('sleep', ['30']); c.on('error', () => {}); if (c.pid) made++; else refused++; } catch { refused++; }
  }
  return { made, refused };
};
`;

const CONFIG = `service: scale
provider:
  name: aws
  runtime: nodejs20.x
  memorySize: 128
functions:
  burst:
    handler: handler.sleep
    memorySize: 1024
    reservedConcurrency: 20
    events:
      - httpApi: GET /burst
  one:
    name: one
    handler: handler.sleep
    timeout: 10
    reservedConcurrency: 1
    events:
      - httpApi: GET /one
  shared:
    handler: handler.shared
    reservedConcurrency: 2
    perExecutionEnvironmentMaxConcurrency: 40
    events:
      - httpApi: GET /shared
  crashy:
    name: crashy
    handler: handler.crashy
  syncMany:
    name: syncMany
    handler: handler.syncNoCallback
    perExecutionEnvironmentMaxConcurrency: 4
  sharedHang:
    name: sharedHang
    handler: handler.sharedHang
    timeout: 1
    perExecutionEnvironmentMaxConcurrency: 4
  quick:
    handler: handler.quick
    memorySize: 512
    events:
      - httpApi: GET /quick
  spin:
    name: spin
    handler: handler.spin
    timeout: 3
  hog:
    name: hog
    handler: handler.hog
    timeout: 60
  forks:
    name: forks
    handler: handler.forks
    memorySize: 1024
    timeout: 30
`;

describe('scaling with real instances', () => {
  let dir: string;
  let server: DevServer;
  let base: string;
  let invokeBase: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nimbus-scale-'));
    writeFileSync(join(dir, 'handler.js'), HANDLERS);
    writeFileSync(join(dir, 'serverless.yml'), CONFIG);
    server = await DevServer.start({
      configPath: join(dir, 'serverless.yml'), env: process.env, port: 0, controlPort: 0, watch: false, log: () => {},
      keepAliveMs: 1500, maxQueued: 500, maxQueueWaitMs: 5000,
    });
    base = `http://127.0.0.1:${server.port}`;
    invokeBase = `http://127.0.0.1:${server.controlPort}/2015-03-31/functions`;
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers 200 concurrent requests, never running more than reservedConcurrency instances', async () => {
    // 200 ms each: slower than a cold start from the pool, so it scales out as on Lambda (docs/scaling.md).
    const d = server.platform.find('burst')!;
    const replies = await Promise.all(Array.from({ length: 200 }, () => fetch(`${base}/burst?ms=200`).then(async (r) => ({ status: r.status, body: await r.text() }))));
    const failed = replies.filter((r) => r.status !== 200);
    assert.deepEqual(failed, [], `${failed.length} of 200 failed`);
    const instances = new Set(replies.map((r) => (JSON.parse(r.body) as { instanceId: string }).instanceId));
    assert.ok(instances.size > 5, `scaled out to ${instances.size} instances`);
    assert.ok(d.stats().peakInstances <= 20, `peak ${d.stats().peakInstances} instances, reserved 20`);
    assert.ok(instances.size <= 20);
  });

  it('runs up to perExecutionEnvironmentMaxConcurrency invocations at once in one instance', async () => {
    // 80 requests of 300 ms each on at most 2 instances: one at a time per instance would take 12 s and throttle.
    const started = Date.now();
    const replies = await Promise.all(Array.from({ length: 80 }, () => fetch(`${base}/shared`).then(async (r) => ({ status: r.status, body: await r.text() }))));
    const elapsed = Date.now() - started;
    assert.deepEqual(replies.filter((r) => r.status !== 200), []);
    const bodies = replies.map((r) => JSON.parse(r.body) as { instanceId: string; max: string });
    assert.ok(new Set(bodies.map((b) => b.instanceId)).size <= 2);
    assert.deepEqual(new Set(bodies.map((b) => b.max)), new Set(['40']));
    assert.ok(elapsed < 4000, `80 requests took ${elapsed} ms`);
    assert.ok(server.platform.find('shared')!.stats().peakInstances <= 2);
  });

  it('gives the invocation after an uncaught exception a new instance, not the dying one', async () => {
    for (let round = 0; round < 5; round++) {
      const crashed = await server.platform.invoke('crashy', '{"crash":true}');
      assert.equal(crashed.outcome, 'error');
      assert.equal(JSON.parse(crashed.payload).errorType, 'Error');
      // Sent at once: the instance that crashed must not take it.
      const next = await server.platform.invoke('crashy', '{}');
      assert.equal(next.outcome, 'ok', `round ${round}: ${next.payload}`);
    }
  });

  it('with several invocations per instance: a synchronous handler without callback ends with null; a timeout says why its neighbours ended', async () => {
    const sync = await Promise.all(Array.from({ length: 4 }, () => server.platform.invoke('syncMany', '{}')));
    assert.deepEqual(sync.map((r) => [r.outcome, r.payload]), Array(4).fill(['ok', 'null']));
    const [hung, neighbour] = await Promise.all([
      server.platform.invoke('sharedHang', '{"hang":true}'),
      new Promise((r) => setTimeout(r, 100)).then(() => server.platform.invoke('sharedHang', '{"ms":5000}')),
    ]);
    assert.equal(hung.outcome, 'timeout');
    assert.equal(neighbour.outcome, 'crashed');
    assert.match(JSON.parse(neighbour.payload).errorMessage, /Runtime exited with error: signal: killed \(the instance was stopped: another invocation running on it timed out\)/);
  });

  it('throttles past the limit and the queue: 429 TooManyRequestsException on the Invoke API, 500 on the gateway', async () => {
    // One instance at most; each invocation takes 7 s, the queue waits 5 s: the first runs, the rest are throttled.
    const calls = Array.from({ length: 4 }, () => fetch(`${invokeBase}/one/invocations`, { method: 'POST', body: '{"ms":7000}' }));
    const replies = await Promise.all(calls.map(async (p) => {
      const r = await p;
      return { status: r.status, type: r.headers.get('x-amzn-errortype'), body: await r.text() };
    }));
    const throttled = replies.filter((r) => r.status === 429);
    assert.equal(throttled.length, 3, JSON.stringify(replies));
    assert.equal(throttled[0].type, 'TooManyRequestsException');
    assert.deepEqual(JSON.parse(throttled[0].body), { Type: 'User', Message: 'Rate Exceeded.', Reason: 'ReservedFunctionConcurrentInvocationLimitExceeded' });
    assert.ok(replies.some((r) => r.status === 200));

    const viaGateway = await Promise.all(Array.from({ length: 4 }, () => fetch(`${base}/one?ms=7000`)));
    const gwThrottled = viaGateway.filter((r) => r.headers.get('x-nimbus-error') === 'NIMBUS_ERR_GATEWAY_THROTTLED');
    assert.equal(gwThrottled.length, 3);
    assert.equal(gwThrottled[0].status, 500);
    assert.equal(await gwThrottled[0].text(), '{"message":"Internal Server Error"}');
    assert.ok(server.platform.find('one')!.stats().peakInstances <= 1);
  });

  it('scales an idle function to zero; its next request cold-starts on a pre-warmed process', async () => {
    const d = server.platform.find('quick')!;
    const first = await fetch(`${base}/quick`);
    assert.equal(first.status, 200);
    assert.equal(d.stats().instances, 1);
    const until = Date.now() + 10_000;
    while (d.stats().instances > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    assert.equal(d.stats().instances, 0, 'scaled to zero after the keep-alive');
    const cold = await server.platform.invoke('quick', '{}');
    assert.equal(cold.outcome, 'ok');
    assert.ok(cold.initDurationMs !== undefined, 'a cold start');
    assert.equal(cold.prewarmed, true, 'on a pre-warmed runtime process');
    assert.match(cold.logs, /\tInit Duration: [0-9.]+ ms/);
    const warm = await server.platform.invoke('quick', '{}');
    assert.equal(warm.initDurationMs, undefined);
  });

  it('keeps serving a neighbour while functions spin, eat memory and fork without end', async () => {
    const runaways = [
      ...Array.from({ length: 3 }, () => fetch(`${invokeBase}/spin/invocations`, { method: 'POST', body: '{}' })),
      fetch(`${invokeBase}/hog/invocations`, { method: 'POST', body: '{}' }),
      fetch(`${invokeBase}/forks/invocations`, { method: 'POST', body: '{}' }),
    ];
    const neighbour: number[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await fetch(`${base}/quick`);
      neighbour.push(r.status);
      await new Promise((res) => setTimeout(res, 50));
    }
    assert.deepEqual(neighbour, Array(20).fill(200));
    const results = await Promise.all(runaways.map(async (p) => {
      const r = await p;
      return { error: r.headers.get('x-amz-function-error'), body: await r.text() };
    }));
    for (const r of results.slice(0, 3)) assert.match(JSON.parse(r.body).errorMessage, /Task timed out after 3\.00 seconds/);
    assert.match(JSON.parse(results[3].body).errorMessage, /Runtime exited with error: signal: killed/);
    const forks = JSON.parse(results[4].body) as { made: number; refused: number };
    assert.ok(forks.made < 300 && forks.refused > 100, `pids limit held: ${JSON.stringify(forks)}`);
  });
});
