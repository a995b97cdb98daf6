/**
 * Benchmark: the cost of one invocation-sized exchange between the platform
 * and ONE function instance, for Nimbus's binary frames and the usual
 * alternatives. Run with `npm run bench:protocol` (= `npm run build && node
 * dist/bench/protocol.js`). It prints tables; it asserts nothing.
 *
 * What one round trip is: the parent sends an event (JSON text: ~200 bytes,
 * then a second series with ~64 KB) with a fresh request id, the child parses
 * it, runs a trivial async handler and sends back a ~100-byte JSON result; the
 * round trip ends when the parent holds the result's JSON text. Concurrency 1.
 *
 * Transports (children in bench/protocol-children/, not compiled):
 * - Nimbus frames: the real `Instance` (src/sandbox) driving the real
 *   runtimes/node/bootstrap.mjs (and runtimes/python/bootstrap.py), launched
 *   with `launchFor()` and the host's `detectLimitEnforcer()` limit, as the
 *   dispatcher does, at 1,769 MB (one full CPU of quota). Includes everything
 *   the platform does per invocation (the instance's timeout timer, the
 *   context object, log capture, the peak memory for the REPORT line). When bubblewrap works here, a second
 *   Node row runs the same instance sandboxed (`detectIsolation('auto')`).
 * - frames, minimal child: the same wire format on the same fd-3 socketpair,
 *   encoded and decoded by the platform's own `encodeFrame` / `FrameReader`,
 *   with a child that does nothing but framing. Not a design alternative: it
 *   splits the Nimbus row into "framing" and "runtime around it".
 * - NDJSON over stdin/stdout, the event escaped into a JSON string field.
 * - Node's fork() IPC channel (`process.send`), and the same with
 *   `serialization: 'advanced'` (V8's serializer: no second JSON encoding).
 * - HTTP keep-alive in the style of the Lambda Runtime API (the child polls
 *   GET /next on the parent's server, then POSTs the response).
 * - Python: the real bootstrap.py through `Instance` vs a minimal NDJSON child.
 *
 * Method: every child is started once and warmed up once with every payload.
 * Each measurement is a warm-up, then sequential round trips until
 * ITERATIONS are done or MAX_SECONDS passed.
 * Measurements are interleaved (a, b, c, d, a, b, ...) in ROUNDS rounds and
 * every number printed is the median over the rounds, because this machine's
 * loopback and syscall speed drifts a lot (../shared/bench-peers/NOTES.md).
 * CPU per round trip = parent (`process.cpuUsage()`) + child (utime + stime
 * from /proc/<pid>/stat, all its threads and descendants; 10 ms ticks).
 *
 * Knobs (environment): ROUNDS=3 ITERATIONS=20000 MAX_SECONDS=3 WARMUP=2000
 * EVENT_BYTES=200,65536 ONLY=<transport ids: nimbus,nimbus-bwrap,frames,ndjson,fork,fork-v8,http,nimbus-py,ndjson-py>.
 * Pin everything to one core with `taskset -c 0 node dist/bench/protocol.js`
 * (children inherit the affinity); by default the kernel places them.
 */
import { fork, spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FunctionSpec, Language } from '../src/core/index.js';
import {
  FrameReader, FrameType, Instance, NO_ISOLATION, detectHostRuntimes, detectIsolation, detectLimitEnforcer, encodeFrame,
  launchFor, packageRoot, runtimeReadPaths, type HostRuntimes, type Isolation, type LimitEnforcer,
} from '../src/sandbox/index.js';

const ROUNDS = intEnv('ROUNDS', 3);
const ITERATIONS = intEnv('ITERATIONS', 20_000);
const MAX_SECONDS = Number(process.env.MAX_SECONDS ?? 3);
const WARMUP = intEnv('WARMUP', 2_000);
/** The warm-up also stops after this long (the 64 KB series and HTTP are slow). */
const WARMUP_MAX_MS = 500;
const ONLY = process.env.ONLY ? new Set(process.env.ONLY.split(',')) : null;

const CHILDREN = join(packageRoot, 'bench', 'protocol-children');
/** Clock ticks per second of /proc/<pid>/stat times. */
const CLK_TCK = (() => {
  try { return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100; } catch { return 100; }
})();

function intEnv(name: string, fallback: number): number {
  const v = Number(process.env[name]);
  return Number.isInteger(v) && v > 0 ? v : fallback;
}

// ---- payloads ---------------------------------------------------------------

/** An API Gateway HTTP API (2.0)-like event of about `bytes` bytes, with `n` for the handler to echo. */
function makeEvent(bytes: number): string {
  const base = {
    n: 42,
    version: '2.0',
    routeKey: 'POST /items',
    rawPath: '/items',
    headers: { host: '127.0.0.1', 'content-type': 'application/json' },
    requestContext: { http: { method: 'POST' } },
    isBase64Encoded: false,
    body: '',
  };
  const empty = JSON.stringify(base).length;
  if (bytes <= empty) return JSON.stringify(base);
  // The body is itself JSON text (a POSTed document), so it carries quotes to escape, as real events do.
  const items: string[] = [];
  let body = '[]';
  for (let i = 0; JSON.stringify(body).length + empty < bytes; i++) {
    items.push(JSON.stringify({ id: i, name: `item-${i}`, tags: ['a', 'b'], price: i * 1.25 }));
    body = `[${items.join(',')}]`;
  }
  return JSON.stringify({ ...base, body });
}

/** Event sizes in bytes (EVENT_BYTES=200,65536 by default). */
const PAYLOADS = (process.env.EVENT_BYTES ?? '200,65536').split(',').map(Number).map((bytes) => ({
  label: bytes < 1024 ? `~${bytes}-byte event, ~100-byte result` : `${Math.round(bytes / 1024)} KB event, ~100-byte result`,
  event: makeEvent(bytes),
}));

// ---- transports -------------------------------------------------------------

/** One parent↔child channel. `call` is one round trip; never called concurrently. */
interface Transport {
  readonly id: string;
  readonly name: string;
  readonly language: Language;
  /** The child's pid (for its CPU time, summed over its descendants: bwrap forks the interpreter). */
  readonly pid: number;
  /** Sends the event JSON text; resolves with the result JSON text. */
  call(requestId: string, event: string): Promise<string>;
  stop(): Promise<void>;
}

/** The parent's environment without what makes every Node process slower to start. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env.NODE_EXTRA_CA_CERTS;
  delete env.NODE_OPTIONS;
  return env;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Waits for the exit, SIGKILLing a child that does not go within 2 s. */
async function stopChild(child: ChildProcess): Promise<void> {
  const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
  await exited(child);
  clearTimeout(timer);
}

/** A one-slot promise: the transport resolves it when the child's answer for `requestId` arrives. */
class Pending {
  private resolve: ((result: string) => void) | null = null;
  private requestId = '';

  wait(requestId: string): Promise<string> {
    this.requestId = requestId;
    return new Promise((resolve) => { this.resolve = resolve; });
  }

  settle(requestId: string, result: string): void {
    if (requestId !== this.requestId || !this.resolve) throw new Error(`unexpected answer for ${requestId}`);
    const r = this.resolve;
    this.resolve = null;
    r(result);
  }
}

/**
 * Memory size of the Nimbus instances: 1,769 MB is one full CPU of quota
 * (limits.ts, as on Lambda), so the CPU quota never throttles a round trip and
 * the rows compare transports, not quotas.
 */
const MEMORY_MB = 1769;

/**
 * (a) Nimbus: the real Instance + runtimes/<language>/bootstrap, launched as
 * the platform launches it; with `isolation` (bwrap) it is also sandboxed.
 */
async function nimbusInstance(language: Language, host: HostRuntimes, limits: LimitEnforcer, isolation: Isolation = NO_ISOLATION): Promise<Transport> {
  const codeDir = mkdtempSync(join(tmpdir(), `nimbus-bench-${language}-`));
  chmodSync(codeDir, 0o755); // so a sandbox may drop to an unprivileged uid that reads it
  if (language === 'node') {
    writeFileSync(join(codeDir, 'index.js'),
      "exports.handler = async (e) => ({ ok: true, n: e.n, statusCode: 200, headers: { 'content-type': 'application/json' }, body: '{\"message\":\"hello\"}' });\n");
  } else {
    writeFileSync(join(codeDir, 'handler.py'),
      'def handler(e, context):\n    return {"ok": True, "n": e["n"], "statusCode": 200, "headers": {"content-type": "application/json"}, "body": \'{"message":"hello"}\'}\n');
  }
  const spec: FunctionSpec = {
    key: 'bench', name: 'bench-dev-bench', handler: language === 'node' ? 'index.handler' : 'handler.handler',
    runtime: language === 'node' ? 'nodejs20.x' : 'python3.11', language, memorySize: MEMORY_MB, timeout: 6,
    environment: {}, codeDir, service: 'bench', stage: 'dev', region: 'us-east-1',
  };
  const instance = Instance.start(launchFor(spec, host, undefined, `bench-${language}`, isolation), limits);
  const init = await instance.ready;
  if (!init.ok) throw new Error(`Nimbus ${language} instance failed to init: ${init.payload}`);
  const onLog = (): void => {};
  const sandboxed = isolation.kind !== 'none';
  return {
    id: `nimbus${language === 'node' ? '' : '-py'}${sandboxed ? '-bwrap' : ''}`,
    name: `Nimbus frames (Instance + bootstrap.${language === 'node' ? 'mjs' : 'py'})${sandboxed ? ', sandboxed with bwrap' : ''}`,
    language,
    pid: instance.pid!,
    async call(requestId, event) {
      const answer = await instance.invoke({ requestId, event, deadlineMs: Date.now() + 6000, timeoutSeconds: 6, onLog });
      if (answer.outcome !== 'ok') throw new Error(`Nimbus ${language} invocation ended ${answer.outcome}: ${answer.payload}`);
      return answer.payload;
    },
    async stop() {
      const gone = new Promise<void>((resolve) => instance.onExited(resolve));
      instance.retire();
      await gone;
      rmSync(codeDir, { recursive: true, force: true });
    },
  };
}

/** (a') The same frames on fd 3, with a child that only frames (no runtime). */
function minimalFrames(): Transport {
  const child = spawn(process.execPath, [join(CHILDREN, 'frames-child.mjs')], {
    env: childEnv(), stdio: ['ignore', 'ignore', 'inherit', 'pipe'],
  });
  const channel = child.stdio[3] as Socket;
  const pending = new Pending();
  const reader = new FrameReader((f) => {
    if (f.type === FrameType.RESULT) pending.settle(f.header.requestId as string, f.body.toString('utf8'));
  });
  channel.on('data', (chunk: Buffer) => reader.push(chunk));
  return {
    id: 'frames', name: 'frames, minimal child (same wire format, no runtime)', language: 'node', pid: child.pid!,
    call(requestId, event) {
      const answer = pending.wait(requestId);
      channel.write(encodeFrame(FrameType.INVOKE, `{"requestId":${JSON.stringify(requestId)},"deadlineMs":${Date.now() + 6000}}`, event));
      return answer;
    },
    stop() { channel.end(); return stopChild(child); },
  };
}

/** (b) Newline-delimited JSON over the child's stdin/stdout, event as a JSON string. */
function ndjson(language: Language, python: string | null): Transport {
  const child = language === 'node'
    ? spawn(process.execPath, [join(CHILDREN, 'ndjson-child.mjs')], { env: childEnv(), stdio: ['pipe', 'pipe', 'inherit'] })
    : spawn(python!, [join(CHILDREN, 'ndjson-child.py')], { env: childEnv(), stdio: ['pipe', 'pipe', 'inherit'] });
  const pending = new Pending();
  let partial = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (text: string) => {
    let start = 0;
    let nl: number;
    while ((nl = text.indexOf('\n', start)) !== -1) {
      const line = partial + text.slice(start, nl);
      partial = '';
      const msg = JSON.parse(line) as { requestId: string; result: string };
      pending.settle(msg.requestId, msg.result);
      start = nl + 1;
    }
    partial += text.slice(start);
  });
  return {
    id: language === 'node' ? 'ndjson' : 'ndjson-py',
    name: language === 'node' ? 'NDJSON over stdin/stdout (event as a JSON string)' : 'NDJSON over stdin/stdout, minimal Python child',
    language, pid: child.pid!,
    call(requestId, event) {
      const answer = pending.wait(requestId);
      child.stdin!.write(`${JSON.stringify({ requestId, deadlineMs: Date.now() + 6000, event })}\n`);
      return answer;
    },
    stop() { child.stdin!.end(); return stopChild(child); },
  };
}

/**
 * (c) Node's fork() IPC channel. `json` (the default) writes each message as a
 * JSON line, so the event string is escaped again; `advanced` uses V8's
 * serializer (length-prefixed, strings copied as they are).
 */
function forkIpc(serialization: 'json' | 'advanced'): Transport {
  const child = fork(join(CHILDREN, 'fork-child.mjs'), [], {
    env: childEnv(), execArgv: [], stdio: ['ignore', 'ignore', 'inherit', 'ipc'], serialization,
  });
  const pending = new Pending();
  child.on('message', (m) => {
    const msg = m as { requestId: string; result: string };
    pending.settle(msg.requestId, msg.result);
  });
  return {
    id: serialization === 'json' ? 'fork' : 'fork-v8',
    name: serialization === 'json' ? 'fork() IPC channel (process.send)' : "fork() IPC, serialization: 'advanced' (V8)",
    language: 'node', pid: child.pid!,
    call(requestId, event) {
      const answer = pending.wait(requestId);
      child.send({ requestId, deadlineMs: Date.now() + 6000, event });
      return answer;
    },
    stop() { child.disconnect(); return stopChild(child); },
  };
}

/** (d) HTTP keep-alive, Lambda Runtime API style: the child long-polls GET /next and POSTs the response. */
async function runtimeApi(): Promise<Transport> {
  const PREFIX = '/2018-06-01/runtime/invocation/';
  const pending = new Pending();
  let waiting: http.ServerResponse | null = null;
  let queued: { requestId: string; event: string } | null = null;

  const deliver = (res: http.ServerResponse, inv: { requestId: string; event: string }): void => {
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(inv.event),
      'lambda-runtime-aws-request-id': inv.requestId,
      'lambda-runtime-deadline-ms': String(Date.now() + 6000),
    });
    res.end(inv.event);
  };

  const server = http.createServer((req, res) => {
    const url = req.url ?? '';
    if (req.method === 'GET' && url === `${PREFIX}next`) {
      if (queued) { const inv = queued; queued = null; deliver(res, inv); } else waiting = res;
      return;
    }
    if (req.method === 'POST' && url.startsWith(PREFIX) && url.endsWith('/response')) {
      const requestId = url.slice(PREFIX.length, -'/response'.length);
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        res.writeHead(202, { 'content-type': 'application/json', 'content-length': 15 });
        res.end('{"status":"OK"}');
        pending.settle(requestId, (chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)).toString('utf8'));
      });
      return;
    }
    res.writeHead(404).end();
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const child = spawn(process.execPath, [join(CHILDREN, 'http-child.mjs')], {
    env: childEnv({ NIMBUS_BENCH_RUNTIME_API: `127.0.0.1:${port}` }), stdio: ['ignore', 'ignore', 'inherit'],
  });
  return {
    id: 'http', name: 'HTTP keep-alive, Lambda Runtime API style', language: 'node', pid: child.pid!,
    call(requestId, event) {
      const answer = pending.wait(requestId);
      const inv = { requestId, event };
      if (waiting) { const res = waiting; waiting = null; deliver(res, inv); } else queued = inv;
      return answer;
    },
    async stop() {
      child.kill('SIGTERM');
      await stopChild(child);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ---- measurement --------------------------------------------------------------

interface Sample {
  roundTrips: number;
  perSecond: number;
  p50us: number;
  p99us: number;
  /** CPU µs per round trip, parent and child. */
  parentCpuUs: number;
  childCpuUs: number;
}

/** utime + stime of all threads of `pid` and of its descendants, in µs. */
function childCpuUs(pid: number): number {
  let ticks = 0;
  const pids = [pid];
  for (let i = 0; i < pids.length; i++) {
    try {
      const stat = readFileSync(`/proc/${pids[i]}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // After "pid (comm) ": state is field 0, utime 11, stime 12 (proc(5) fields 14 and 15).
      ticks += Number(fields[11]) + Number(fields[12]);
      for (const task of readdirSync(`/proc/${pids[i]}/task`)) {
        for (const c of readFileSync(`/proc/${pids[i]}/task/${task}/children`, 'utf8').split(' ')) if (c) pids.push(Number(c));
      }
    } catch { /* gone */ }
  }
  return (ticks * 1e6) / CLK_TCK;
}

const latencies = new Float64Array(ITERATIONS);

async function measure(t: Transport, event: string): Promise<Sample> {
  // Warm-up, and a check that the answer is the handler's.
  const first = JSON.parse(await t.call(randomUUID(), event)) as { ok?: boolean; n?: number };
  if (first.ok !== true || first.n !== 42) throw new Error(`${t.name}: unexpected result ${JSON.stringify(first)}`);
  const warmEnd = performance.now() + WARMUP_MAX_MS;
  for (let i = 0; i < WARMUP && performance.now() < warmEnd; i++) await t.call(randomUUID(), event);

  const deadline = performance.now() + MAX_SECONDS * 1000;
  const cpu0 = process.cpuUsage();
  const child0 = childCpuUs(t.pid);
  const start = performance.now();
  let n = 0;
  while (n < ITERATIONS) {
    const requestId = randomUUID();
    const t0 = performance.now();
    await t.call(requestId, event);
    const t1 = performance.now();
    latencies[n++] = t1 - t0;
    if (t1 > deadline) break;
  }
  const elapsedMs = performance.now() - start;
  const cpu = process.cpuUsage(cpu0);
  const child = childCpuUs(t.pid) - child0;
  const sorted = latencies.subarray(0, n).sort();
  return {
    roundTrips: n,
    perSecond: (n * 1000) / elapsedMs,
    p50us: sorted[Math.floor(0.5 * (n - 1))] * 1000,
    p99us: sorted[Math.floor(0.99 * (n - 1))] * 1000,
    parentCpuUs: (cpu.user + cpu.system) / n,
    childCpuUs: child / n,
  };
}

/** A short measurement whose result is dropped (warm-up of parent and child). */
async function measureQuietly(t: Transport, event: string): Promise<void> {
  const end = performance.now() + WARMUP_MAX_MS;
  for (let i = 0; i < WARMUP && performance.now() < end; i++) await t.call(randomUUID(), event);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// ---- report -------------------------------------------------------------------

const fmtK = (x: number): string => (x >= 1000 ? `${(x / 1000).toFixed(1)}k` : x.toFixed(0));
const fmt = (x: number): string => (x >= 100 ? x.toFixed(0) : x.toFixed(1));

function table(transports: Transport[], samples: Map<string, Sample[]>): string {
  const rows: string[] = [
    '| transport | round trips/s (min–max) | p50 µs | p99 µs | CPU µs / round trip (parent + child) | round trips/s vs Nimbus | CPU vs Nimbus |',
    '|---|---:|---:|---:|---:|---:|---:|',
  ];
  const summary = (id: string) => {
    const s = samples.get(id) ?? [];
    const pick = (f: (x: Sample) => number) => median(s.map(f));
    return {
      perSecond: pick((x) => x.perSecond), min: Math.min(...s.map((x) => x.perSecond)), max: Math.max(...s.map((x) => x.perSecond)),
      p50: pick((x) => x.p50us), p99: pick((x) => x.p99us),
      parent: pick((x) => x.parentCpuUs), child: pick((x) => x.childCpuUs), cpu: pick((x) => x.parentCpuUs + x.childCpuUs),
    };
  };
  for (const language of ['node', 'python'] as const) {
    const group = transports.filter((t) => t.language === language);
    const base = group.find((t) => t.id.startsWith('nimbus'));
    const ref = base ? summary(base.id) : null;
    for (const t of group) {
      const s = summary(t.id);
      rows.push(`| ${t.name} | ${fmtK(s.perSecond)} (${fmtK(s.min)}–${fmtK(s.max)}) | ${fmt(s.p50)} | ${fmt(s.p99)} | ` +
        `${fmt(s.cpu)} (${fmt(s.parent)} + ${fmt(s.child)}) | ` +
        `${ref ? `${(s.perSecond / ref.perSecond).toFixed(2)}×` : '–'} | ${ref ? `${(s.cpu / ref.cpu).toFixed(2)}×` : '–'} |`);
    }
  }
  return rows.join('\n');
}

// ---- main ---------------------------------------------------------------------

async function main(): Promise<void> {
  const host = detectHostRuntimes();
  const limits = detectLimitEnforcer(`nimbus-bench-${process.pid}`);
  const isolation = detectIsolation('auto', [tmpdir(), ...runtimeReadPaths('node', host)]);
  const builders: Array<[string, () => Promise<Transport> | Transport]> = [
    ['nimbus', () => nimbusInstance('node', host, limits)],
    ...(isolation.kind === 'bwrap' ? [['nimbus-bwrap', () => nimbusInstance('node', host, limits, isolation)] as [string, () => Promise<Transport>]] : []),
    ['frames', () => minimalFrames()],
    ['ndjson', () => ndjson('node', null)],
    ['fork', () => forkIpc('json')],
    ['fork-v8', () => forkIpc('advanced')],
    ['http', () => runtimeApi()],
  ];
  if (host.python) {
    builders.push(['nimbus-py', () => nimbusInstance('python', host, limits)], ['ndjson-py', () => ndjson('python', host.python)]);
  }
  const transports: Transport[] = [];
  for (const [id, build] of builders) if (!ONLY || ONLY.has(id)) transports.push(await build());

  console.log(`# Nimbus protocol benchmark, ${new Date().toISOString()}`);
  console.log(`machine: ${cpus()[0]?.model ?? '?'}, nproc ${cpus().length}, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}; ` +
    `node ${process.versions.node}, python ${host.pythonVersion ?? 'none'} (${host.python ?? '-'})`);
  console.log(`Nimbus instances: ${MEMORY_MB} MB; limits: ${limits.description}; sandbox row: ${isolation.description}`);
  if (loadavg()[0] > 1.5) {
    console.log(`warning: the 1-minute load average is ${loadavg()[0].toFixed(1)} on ${cpus().length} CPUs: other work is running, expect low and noisy numbers`);
  }
  console.log(`method: ${ROUNDS} interleaved rounds, each measurement ≤ ${ITERATIONS} round trips or ${MAX_SECONDS} s after a warm-up ` +
    `of ≤ ${WARMUP} round trips / ${WARMUP_MAX_MS} ms; concurrency 1; medians over rounds\n`);

  // An unrecorded pass first, so that the parent's own JIT warm-up is not charged to the first transport.
  for (const payload of PAYLOADS) for (const t of transports) await measureQuietly(t, payload.event);

  const results = PAYLOADS.map(() => new Map<string, Sample[]>());
  for (let round = 1; round <= ROUNDS; round++) {
    for (const [p, payload] of PAYLOADS.entries()) {
      for (const t of transports) {
        const s = await measure(t, payload.event);
        const list = results[p].get(t.id) ?? [];
        list.push(s);
        results[p].set(t.id, list);
        process.stderr.write(`round ${round} ${payload.label.slice(0, 12).trim()} ${t.id}: ${fmtK(s.perSecond)}/s p50 ${fmt(s.p50us)} µs ` +
          `cpu ${fmt(s.parentCpuUs + s.childCpuUs)} µs (${s.roundTrips} round trips)\n`);
      }
    }
  }

  for (const [p, payload] of PAYLOADS.entries()) {
    console.log(`\n## ${payload.label} (event ${Buffer.byteLength(payload.event)} bytes)\n`);
    console.log(table(transports, results[p]));
  }
  console.log('\nRatios compare with the Nimbus row of the same language: > 1× round trips/s is faster than Nimbus, > 1× CPU costs more.');

  for (const t of transports) await t.stop();
  await limits.close();
}

main().then(() => process.exit(0), (e: unknown) => {
  console.error(e);
  process.exit(1);
});
