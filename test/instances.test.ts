// Real instance processes behind a dispatcher: warm reuse, scale-out on
// overlap, crash replacement, timeouts, memory limits, init errors, env.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FunctionSpec } from '../src/core/index.js';
import { FunctionDispatcher } from '../src/invoke/index.js';
import {
  detectHostRuntimes, detectIsolation, detectLimitEnforcer, Instance, launchFor, NO_ISOLATION, poolRuntimeFor, prepareModule, rssSampling,
  runtimeReadPaths, WarmPool, type Isolation, type LimitEnforcer,
} from '../src/sandbox/index.js';

const host = detectHostRuntimes();
const limits = detectLimitEnforcer();
let dir: string;
const dispatchers: FunctionDispatcher[] = [];

function spec(handler: string, over: Partial<FunctionSpec> = {}): FunctionSpec {
  return {
    key: 'fn', name: 'svc-dev-fn', handler, runtime: handler.startsWith('py') ? 'python3.12' : 'nodejs20.x',
    language: handler.startsWith('py') ? 'python' : 'node', memorySize: 256, timeout: 3,
    environment: { GREETING: 'hello' }, codeDir: dir, service: 'svc', stage: 'dev', region: 'eu-west-1', ...over,
  };
}

async function dispatcher(s: FunctionSpec, keepAliveMs = 60_000, enforcer: LimitEnforcer = limits, isolation?: Isolation): Promise<FunctionDispatcher> {
  const modulePath = await prepareModule(s, join(dir, '.build'));
  const d = new FunctionDispatcher(s, { maxInstances: 10, keepAliveMs, launch: () => launchFor(s, host, modulePath, 't', isolation), limits: enforcer });
  dispatchers.push(d);
  return d;
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'nimbus-inst-'));
  writeFileSync(join(dir, 'node.js'), `
let count = 0;
const bootedAt = Date.now() + Math.random();
exports.count = async () => ({ count: ++count, bootedAt, pid: process.pid });
exports.env = async (event, context) => ({
  env: process.env, remaining: context.getRemainingTimeInMillis(), name: context.functionName,
  memory: context.memoryLimitInMB, arn: context.invokedFunctionArn, id: context.awsRequestId,
});
exports.sleep = async (event) => { await new Promise((r) => setTimeout(r, event.ms)); return { pid: process.pid }; };
exports.crash = async (event) => { if (event.crash) process.exit(3); return 'fine'; };
exports.hog = async () => { const h = []; for (let i = 0; i < 64; i++) h.push(Buffer.alloc(8 * 1024 * 1024, 1)); return h.length; };
exports.logs = async () => { console.log('one'); console.error('two', { a: 1 }); process.stdout.write('three\\n'); return 'ok'; };
exports.cb = (event, context, callback) => { setTimeout(() => console.log('late'), 300); callback(null, 'done'); };
exports.cbNoWait = (event, context, callback) => { context.callbackWaitsForEmptyEventLoop = false; setTimeout(() => {}, 300); callback(null, 'fast'); };
exports.undef = async () => undefined;
exports.tagged = async (event) => {
  console.log('one', event.n);
  await new Promise((r) => setTimeout(r, 30 * (5 - event.n)));
  process.stdout.write('two ' + event.n + '\\n');
  console.error('three', event.n);
  return event.n;
};
exports.sandbox = async () => {
  const fs = require('fs');
  let write;
  try { fs.writeFileSync(__dirname + '/x', '1'); write = 'ok'; } catch (e) { write = e.code; }
  fs.writeFileSync('/tmp/mine', '1');
  return { cwd: process.cwd(), dirname: __dirname, write, tmp: fs.readdirSync('/tmp'), seesHostHome: fs.existsSync('/root'), pid: process.pid };
};
`);
  writeFileSync(join(dir, 'esm.mjs'), 'export const handler = async (e) => ({ esm: true, e });\n');
  writeFileSync(join(dir, 'hang.mjs'), 'await new Promise(() => setInterval(() => {}, 1000));\nexport const handler = async () => 1;\n');
  writeFileSync(join(dir, 'broken.js'), 'exports.handler = async () => {;\n  return 1 +;\n');
  mkdirSync(join(dir, 'ts'));
  writeFileSync(join(dir, 'ts', 'typed.ts'), 'interface In { n: number }\nexport const handler = async (e: In): Promise<{ doubled: number }> => ({ doubled: e.n * 2 });\n');
  writeFileSync(join(dir, 'py_app.py'), `
import os, time
COUNT = 0
def count(event, context):
    global COUNT
    COUNT += 1
    return {"count": COUNT, "pid": os.getpid()}
def env(event, context):
    return {"env": dict(os.environ), "remaining": context.get_remaining_time_in_millis(), "name": context.function_name}
def sleep(event, context):
    time.sleep(event["ms"] / 1000)
    return {"pid": os.getpid()}
def hog(event, context):
    hold = [b"\\x01" * (8 * 1024 * 1024) for _ in range(64)]
    return len(hold)
`);
});

after(async () => {
  await Promise.all(dispatchers.map((d) => d.close()));
  await limits.close();
  rmSync(dir, { recursive: true, force: true });
});

for (const lang of ['node', 'python'] as const) {
  const h = (name: string) => (lang === 'node' ? `node.${name}` : `py_app.${name}`);
  describe(`${lang} instances`, () => {
    it('reuses a warm instance: module state survives and only the first invocation is a cold start', async () => {
      const d = await dispatcher(spec(h('count')));
      const first = await d.invoke({ event: '{}' });
      const second = await d.invoke({ event: '{}' });
      assert.equal(first.outcome, 'ok');
      assert.equal(JSON.parse(first.payload).count, 1);
      assert.equal(JSON.parse(second.payload).count, 2);
      assert.equal(JSON.parse(second.payload).pid, JSON.parse(first.payload).pid);
      assert.ok(first.initDurationMs !== undefined && first.initDurationMs > 0);
      assert.equal(second.initDurationMs, undefined);
      assert.match(first.logs, /^START RequestId: [0-9a-f-]{36} Version: \$LATEST\n/);
      assert.match(first.logs, /REPORT RequestId: [0-9a-f-]{36}\tDuration: [0-9.]+ ms\tBilled Duration: \d+ ms\tMemory Size: 256 MB\tMax Memory Used: \d+ MB\tInit Duration: [0-9.]+ ms\n$/);
    });

    it('gives the function its own environment and Lambda\'s reserved variables, nothing of the platform\'s', async () => {
      process.env.NIMBUS_TEST_SECRET = 'leak';
      const d = await dispatcher(spec(h('env')));
      const r = JSON.parse((await d.invoke({ event: '{}' })).payload);
      delete process.env.NIMBUS_TEST_SECRET;
      assert.equal(r.env.GREETING, 'hello');
      assert.equal(r.env.AWS_LAMBDA_FUNCTION_NAME, 'svc-dev-fn');
      assert.equal(r.env.AWS_LAMBDA_FUNCTION_VERSION, '$LATEST');
      assert.equal(r.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE, '256');
      assert.equal(r.env.AWS_REGION, 'eu-west-1');
      assert.equal(r.env._HANDLER, h('env'));
      assert.equal(r.env.LAMBDA_TASK_ROOT, dir);
      assert.equal(r.env.NIMBUS_TEST_SECRET, undefined);
      assert.equal(r.env.NODE_EXTRA_CA_CERTS, undefined);
      assert.equal(r.env.NODE_OPTIONS, undefined);
      assert.equal(r.name, 'svc-dev-fn');
      assert.ok(r.remaining > 2000 && r.remaining <= 3000, `remaining ${r.remaining}`);
    });

    it('starts more instances when invocations overlap', async () => {
      const d = await dispatcher(spec(h('sleep')));
      const results = await Promise.all([1, 2, 3].map(() => d.invoke({ event: '{"ms":1000}' })));
      const pids = new Set(results.map((r) => JSON.parse(r.payload).pid));
      assert.equal(pids.size, 3);
      assert.equal(d.stats().instances, 3);
    });

    it('kills a timed-out instance with Lambda\'s message and serves the next invocation from a new one', async () => {
      const d = await dispatcher(spec(h('sleep'), { timeout: 0.5 }));
      const r = await d.invoke({ event: '{"ms":2000}' });
      assert.equal(r.outcome, 'timeout');
      assert.deepEqual(Object.keys(JSON.parse(r.payload)), ['errorType', 'errorMessage']);
      assert.match(JSON.parse(r.payload).errorMessage, /^RequestId: [0-9a-f-]{36} Error: Task timed out after 0\.50 seconds$/);
      assert.ok(r.durationMs < 1500);
      const next = await d.invoke({ event: '{"ms":1}' });
      assert.equal(next.outcome, 'ok');
    });

    it('kills an instance over its memory size: Runtime exited with error: signal: killed', async () => {
      const d = await dispatcher(spec(h('hog'), { memorySize: 128, timeout: 10 }));
      const r = await d.invoke({ event: '{}' });
      assert.equal(r.outcome, 'oom');
      const doc = JSON.parse(r.payload);
      assert.equal(doc.errorType, 'Runtime.OutOfMemory');
      assert.match(doc.errorMessage, /Runtime exited with error: signal: killed$/);
      const next = await d.invoke({ event: '{}' });
      assert.equal(next.outcome, 'oom', 'a fresh instance, killed again');
    });

    it('holds the memory size without cgroups too, by sampling the resident set', async () => {
      const d = await dispatcher(spec(h('hog'), { memorySize: 128, timeout: 10 }), 60_000, rssSampling('test'));
      const r = await d.invoke({ event: '{}' });
      assert.equal(r.outcome, 'oom');
      assert.match(JSON.parse(r.payload).errorMessage, /Runtime exited with error: signal: killed$/);
    });
  });
}

describe('node runtime behaviour', () => {
  it('replaces a crashed instance; only its own invocation fails', async () => {
    const d = await dispatcher(spec('node.crash'));
    const [crashed, fine] = await Promise.all([d.invoke({ event: '{"crash":true}' }), d.invoke({ event: '{}' })]);
    assert.equal(crashed.outcome, 'crashed');
    assert.equal(JSON.parse(crashed.payload).errorType, 'Runtime.ExitError');
    assert.match(JSON.parse(crashed.payload).errorMessage, /Runtime exited with error: exit status 3$/);
    assert.equal(fine.outcome, 'ok');
    const again = await d.invoke({ event: '{}' });
    assert.equal(again.payload, '"fine"');
  });

  it('writes console output as Lambda log lines, in order, before END', async () => {
    const d = await dispatcher(spec('node.logs'));
    const r = await d.invoke({ event: '{}', requestId: 'abc-123' });
    const lines = r.logs.split('\n');
    assert.equal(lines[0], 'START RequestId: abc-123 Version: $LATEST');
    assert.match(lines[1], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\tabc-123\tINFO\tone$/);
    assert.match(lines[2], /^\S+\tabc-123\tERROR\ttwo \{ a: 1 \}$/);
    assert.equal(lines[3], 'three');
    assert.equal(lines[4], 'END RequestId: abc-123');
  });

  it('holds a callback handler\'s answer until the event loop is empty, unless told not to', async () => {
    const d = await dispatcher(spec('node.cb'));
    const t0 = performance.now();
    const r = await d.invoke({ event: '{}' });
    assert.equal(r.payload, '"done"');
    assert.ok(performance.now() - t0 >= 280);
    assert.match(r.logs, /\tINFO\tlate\n/);
    const d2 = await dispatcher(spec('node.cbNoWait'));
    await d2.invoke({ event: '{}' });
    const t1 = performance.now();
    const fast = await d2.invoke({ event: '{}' });
    assert.equal(fast.payload, '"fast"');
    assert.ok(performance.now() - t1 < 250);
  });

  it('serialises undefined as null', async () => {
    const d = await dispatcher(spec('node.undef'));
    assert.equal((await d.invoke({ event: '{}' })).payload, 'null');
  });

  it('loads ES modules and TypeScript (bundled with esbuild)', async () => {
    const esm = await dispatcher(spec('esm.handler'));
    assert.deepEqual(JSON.parse((await esm.invoke({ event: '{"x":1}' })).payload), { esm: true, e: { x: 1 } });
    const ts = await dispatcher(spec('ts/typed.handler'));
    assert.deepEqual(JSON.parse((await ts.invoke({ event: '{"n":21}' })).payload), { doubled: 42 });
  });

  it('reports init errors as Lambda does', async () => {
    const missing = await dispatcher(spec('node.nothere'));
    const r1 = await missing.invoke({ event: '{}' });
    assert.equal(r1.outcome, 'init_error');
    assert.equal(JSON.parse(r1.payload).errorType, 'Runtime.HandlerNotFound');
    const syntax = await dispatcher(spec('broken.handler'));
    const r2 = await syntax.invoke({ event: '{}' });
    assert.equal(r2.outcome, 'init_error');
    assert.equal(JSON.parse(r2.payload).errorType, 'Runtime.UserCodeSyntaxError');
  });

  it('kills an instance whose init outlasts the init timeout', async () => {
    const s = spec('hang.handler');
    const inst = Instance.start({ ...launchFor(s, host, undefined, 't'), initTimeoutMs: 300 }, limits);
    const init = await inst.ready;
    assert.equal(init.ok, false);
    assert.equal(JSON.parse(init.ok ? '{}' : init.payload).errorType, 'Runtime.InitTimeout');
    const exited = await new Promise((r) => { inst.onExited(() => r(true)); setTimeout(() => r(false), 3000).unref(); });
    assert.equal(exited, true, 'the process is gone');
  });

  it('retires idle instances after the keep-alive', async () => {
    const d = await dispatcher(spec('node.count'), 200);
    await d.invoke({ event: '{}' });
    assert.equal(d.stats().instances, 1);
    const until = Date.now() + 5000;
    while (d.stats().instances > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    assert.equal(d.stats().instances, 0);
    const r = await d.invoke({ event: '{}' });
    assert.equal(JSON.parse(r.payload).count, 1);
    assert.ok(r.initDurationMs !== undefined);
  });
});

/** The memory cgroup folder of `pid` (v1 or v2), or null. */
function memoryGroup(pid: number): string | null {
  const lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n');
  const v1 = lines.find((l) => /^\d+:memory:/.test(l));
  if (v1) return `/sys/fs/cgroup/memory${v1.split(':')[2]}`;
  const v2 = lines.find((l) => l.startsWith('0::'));
  return v2 ? `/sys/fs/cgroup${v2.slice(3)}` : null;
}

function memoryLimit(group: string): number {
  for (const f of ['memory.limit_in_bytes', 'memory.max']) {
    try { return Number(readFileSync(join(group, f), 'utf8').trim()); } catch { /* the other version */ }
  }
  return NaN;
}

describe('warm pool', () => {
  const pools: WarmPool[] = [];
  after(() => { for (const p of pools) p.close(); });

  async function booted(pool: WarmPool): Promise<void> {
    const until = Date.now() + 30_000;
    while (pool.booted < pool.size && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    assert.equal(pool.booted, pool.size, 'every pooled process said HELLO');
  }

  for (const lang of ['node', 'python'] as const) {
    it(`${lang}: processes wait booted in cgroups of their own; a claim sets the function's memory size`, async (t) => {
      const pool = new WarmPool(poolRuntimeFor(lang, host, NO_ISOLATION, dir)!, 1, limits);
      pools.push(pool);
      await booted(pool);
      const proc = pool.take()!;
      const group = limits.kind === 'rss-sampling' ? null : memoryGroup(proc.child.pid!);
      if (group) {
        assert.match(group, /\/nimbus-\d+-\d+\/w\d+-\d+$/, 'a group of its own while it waits');
        assert.equal(memoryLimit(group), 128 * 1024 * 1024);
      }
      const s = spec(lang === 'node' ? 'node.count' : 'py_app.count', { memorySize: 1024 });
      const inst = Instance.start(launchFor(s, host, undefined, 't', NO_ISOLATION), limits, proc);
      t.after(() => inst.kill());
      assert.equal((await inst.ready).ok, true);
      assert.equal(inst.prewarmed, true);
      if (group) {
        assert.equal(memoryGroup(proc.child.pid!), group, 'the claim keeps the group');
        assert.equal(memoryLimit(group), 1024 * 1024 * 1024);
      }
      const r = await inst.invoke({ requestId: 'r1', event: '{}', deadlineMs: Date.now() + 3000, timeoutSeconds: 3, onLog: () => {} });
      assert.equal(r.outcome, 'ok');
      assert.equal(JSON.parse(r.payload).count, 1, 'the warm-up left no trace in the function');
    });
  }

  it('learns the limits from the first claim, and a claimed process is held to its memory size', async (t) => {
    if (limits.kind === 'rss-sampling') { t.skip('no cgroups here'); return; }
    const pool = new WarmPool(poolRuntimeFor('node', host, NO_ISOLATION, dir)!, 2);
    pools.push(pool);
    await booted(pool);
    const s = spec('node.hog', { memorySize: 128, timeout: 10 });
    const first = Instance.start(launchFor(s, host, undefined, 't', NO_ISOLATION), limits, pool.take()!);
    t.after(() => first.kill());
    await first.ready;
    assert.equal(pool.prepared, 0);
    // The pool moves the waiting process in off the claim's path, a moment later.
    const until = Date.now() + 10_000;
    while (Date.now() < until && pool.prepared < 1) await new Promise((r) => setTimeout(r, 20));
    const proc = pool.take()!;
    const inst = Instance.start(launchFor(s, host, undefined, 't', NO_ISOLATION), limits, proc);
    t.after(() => inst.kill());
    assert.match(memoryGroup(proc.child.pid!) ?? '', /\/w\d+-\d+$/, 'the other waiting process was moved into its own group');
    await inst.ready;
    const r = await inst.invoke({ requestId: 'r2', event: '{}', deadlineMs: Date.now() + 10_000, timeoutSeconds: 10, onLog: () => {} });
    assert.equal(r.outcome, 'oom');
  });
});

describe('several invocations per instance (an opt-in)', () => {
  async function concurrent(s: FunctionSpec, concurrency: number): Promise<FunctionDispatcher> {
    const d = new FunctionDispatcher(s, { maxInstances: 10, keepAliveMs: 60_000, concurrency, launch: () => launchFor(s, host, undefined, 't'), limits });
    dispatchers.push(d);
    return d;
  }

  it('runs up to `concurrency` invocations at once on one Node.js instance', async () => {
    const d = await concurrent(spec('node.sleep'), 4);
    const results = await Promise.all(Array.from({ length: 8 }, () => d.invoke({ event: '{"ms":400}' })));
    assert.deepEqual(results.map((r) => r.outcome), Array(8).fill('ok'));
    assert.equal(new Set(results.map((r) => JSON.parse(r.payload).pid)).size, 2, 'two instances of four');
    assert.equal(d.stats().instances, 2);
    assert.equal(results.filter((r) => r.initDurationMs !== undefined).length, 2, 'one cold start per instance');
  });

  it('gives each invocation its own log lines, console and stdout alike', async () => {
    const d = await concurrent(spec('node.tagged'), 4);
    const rs = await Promise.all([1, 2, 3, 4].map((n) => d.invoke({ event: JSON.stringify({ n }), requestId: `req-${n}` })));
    for (const [i, r] of rs.entries()) {
      const n = i + 1;
      assert.equal(r.payload, String(n));
      const lines = r.logs.split('\n');
      assert.equal(lines[0], `START RequestId: req-${n} Version: $LATEST`);
      assert.match(lines[1], new RegExp(`\\treq-${n}\\tINFO\\tone ${n}$`));
      assert.equal(lines[2], `two ${n}`);
      assert.match(lines[3], new RegExp(`\\treq-${n}\\tERROR\\tthree ${n}$`));
      assert.equal(lines[4], `END RequestId: req-${n}`);
    }
  });

  it('a timeout ends the instance: the invocation that timed out times out, the others on it crash', async () => {
    const d = await concurrent(spec('node.sleep', { timeout: 0.6 }), 2);
    assert.equal((await d.invoke({ event: '{"ms":1}' })).outcome, 'ok');
    const first = d.invoke({ event: '{"ms":3000}' });
    await new Promise((r) => setTimeout(r, 300));
    const second = d.invoke({ event: '{"ms":3000}' });
    assert.equal((await first).outcome, 'timeout');
    const r = await second;
    assert.equal(r.outcome, 'crashed');
    assert.match(JSON.parse(r.payload).errorMessage, /Runtime exited with error: signal: killed \(the instance was stopped: another invocation running on it timed out\)$/);
  });

  it('stays at one per instance for Python, whose runtime takes one at a time', async () => {
    const d = await concurrent(spec('py_app.sleep'), 4);
    const rs = await Promise.all(Array.from({ length: 3 }, () => d.invoke({ event: '{"ms":300}' })));
    assert.deepEqual(rs.map((r) => r.outcome), ['ok', 'ok', 'ok']);
    assert.equal(new Set(rs.map((r) => JSON.parse(r.payload).pid)).size, 3);
  });
});

describe('sandboxed instances (bubblewrap)', () => {
  const isolation = () => detectIsolation('auto', [dir, ...runtimeReadPaths('node', host), ...runtimeReadPaths('python', host)]);

  it('run with the code read-only at /var/task, a private /tmp, and their own pid namespace', async (t) => {
    const iso = isolation();
    if (iso.kind !== 'bwrap') { t.skip(`no bubblewrap here: ${iso.description}`); return; }
    const d = await dispatcher(spec('node.sandbox'), 60_000, limits, iso);
    const r = JSON.parse((await d.invoke({ event: '{}' })).payload);
    assert.equal(r.cwd, '/var/task');
    assert.equal(r.dirname, '/var/task');
    assert.equal(r.write, 'EROFS');
    assert.deepEqual(r.tmp, ['mine']);
    assert.equal(r.seesHostHome, false);
    assert.ok(r.pid < 10, `pid ${r.pid} is in a new pid namespace`);
    const env = JSON.parse((await (await dispatcher(spec('node.env'), 60_000, limits, iso)).invoke({ event: '{}' })).payload).env;
    assert.equal(env.LAMBDA_TASK_ROOT, '/var/task');
    assert.equal(env.GREETING, 'hello');
  });

  it('report crashes and memory kills through the wrapper as Lambda does', async (t) => {
    const iso = isolation();
    if (iso.kind !== 'bwrap') { t.skip(`no bubblewrap here: ${iso.description}`); return; }
    const crash = await (await dispatcher(spec('node.crash'), 60_000, limits, iso)).invoke({ event: '{"crash":true}' });
    assert.match(JSON.parse(crash.payload).errorMessage, /Runtime exited with error: exit status 3$/);
    for (const handler of ['node.hog', 'py_app.hog']) {
      const hog = await (await dispatcher(spec(handler, { memorySize: 128, timeout: 30 }), 60_000, limits, iso)).invoke({ event: '{}' });
      assert.equal(hog.outcome, 'oom', handler);
      assert.match(JSON.parse(hog.payload).errorMessage, /Runtime exited with error: signal: killed$/, handler);
    }
  });
});
