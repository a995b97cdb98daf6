/**
 * Benchmark: one instance per invocation (Lambda's model, concurrency 1)
 * against several invocations per instance (the opt-in
 * `DispatcherOptions.concurrency`, as Lambda Managed Instances allow), with
 * the same load: CALLERS invocations always in flight on a trivial async
 * Node.js handler. Run with `npm run build && taskset -c 0 node
 * dist/bench/concurrency.js` (the platform and its instances on one core, as
 * `bench/peers.sh` pins the server). It prints a table; it asserts nothing.
 *
 * What runs: the real `FunctionDispatcher` (src/invoke) with the real
 * instances (src/sandbox, sandboxed with bubblewrap where it works, under the
 * host's cgroup limits), 1,769 MB (one full CPU of quota), in this process:
 * no HTTP gateway, so the numbers are the dispatcher + instance side of a
 * request (bench/peers.sh measures the whole platform).
 *
 * Method: per concurrency setting a dispatcher is warmed up (WARMUP_S with
 * the full load, so every instance is started and JIT-warm), then the
 * settings are measured interleaved in ROUNDS rounds of DURATION_S each;
 * numbers are medians over rounds. CPU per invocation = this process's
 * `process.cpuUsage()` + every descendant's utime + stime (/proc, 10 ms ticks).
 *
 * Knobs (environment): CONCURRENCY=1,4,16,50 CALLERS=50 ROUNDS=3 DURATION_S=5 WARMUP_S=5 ISOLATION=auto|none.
 */
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FunctionSpec } from '../src/core/index.js';
import { FunctionDispatcher } from '../src/invoke/index.js';
import { detectHostRuntimes, detectIsolation, detectLimitEnforcer, launchFor, runtimeReadPaths } from '../src/sandbox/index.js';

const LEVELS = (process.env.CONCURRENCY ?? '1,4,16,50').split(',').map(Number);
const CALLERS = Number(process.env.CALLERS ?? 50);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const DURATION_S = Number(process.env.DURATION_S ?? 5);
const WARMUP_S = Number(process.env.WARMUP_S ?? 5);

const EVENT = JSON.stringify({
  version: '2.0', routeKey: 'GET /hello', rawPath: '/hello', rawQueryString: '',
  headers: { host: 'localhost', 'user-agent': 'wrk', accept: '*/*' },
  requestContext: { http: { method: 'GET', path: '/hello', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1' }, requestId: 'x', stage: '$default' },
  isBase64Encoded: false,
});

/** utime + stime in ms of every descendant of this process. */
function descendantsCpuMs(): Map<number, number> {
  const byParent = new Map<number, number[]>();
  const cpu = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const f = readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1].split(' ');
      const ppid = Number(f[1]);
      if (!byParent.has(ppid)) byParent.set(ppid, []);
      byParent.get(ppid)!.push(Number(d));
      cpu.set(Number(d), (Number(f[11]) + Number(f[12])) * 10);
    } catch { /* gone */ }
  }
  const out = new Map<number, number>();
  const walk = (pid: number) => { for (const c of byParent.get(pid) ?? []) { out.set(c, cpu.get(c) ?? 0); walk(c); } };
  walk(process.pid);
  return out;
}

/** Keeps CALLERS invocations in flight for `seconds`; returns counts and latencies. */
async function load(d: FunctionDispatcher, seconds: number): Promise<{ n: number; errors: number; lat: number[]; cpuUs: number; ms: number }> {
  const until = performance.now() + seconds * 1000;
  const lat: number[] = [];
  let errors = 0;
  const cpu0 = process.cpuUsage();
  const kids0 = descendantsCpuMs();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CALLERS }, async () => {
    while (performance.now() < until) {
      const s = performance.now();
      const r = await d.invoke({ event: EVENT });
      lat.push(performance.now() - s);
      if (r.outcome !== 'ok') errors++;
    }
  }));
  const ms = performance.now() - t0;
  const c = process.cpuUsage(cpu0);
  let kidsMs = 0;
  for (const [pid, now] of descendantsCpuMs()) kidsMs += now - (kids0.get(pid) ?? 0);
  return { n: lat.length, errors, lat, cpuUs: c.user + c.system + kidsMs * 1000, ms };
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1]; };
const pct = (xs: number[], p: number) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(s.length * p / 100))]; };

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'nimbus-bench-cc-'));
  chmodSync(dir, 0o755); // readable by the sandbox's unprivileged uid, as a real function's folder
  writeFileSync(join(dir, 'handler.mjs'), "export const hello = async (event) => ({ statusCode: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ message: 'hello', path: event.rawPath }) });\n");
  const host = detectHostRuntimes('python3', process.env, false);
  const limits = detectLimitEnforcer();
  const isolation = process.env.ISOLATION === 'none' ? undefined : detectIsolation('auto', [dir, ...runtimeReadPaths('node', host)]);
  const spec: FunctionSpec = {
    key: 'hello', name: 'bench-cc-hello', handler: 'handler.hello', runtime: 'nodejs20.x', language: 'node', memorySize: 1769, timeout: 6,
    environment: {}, codeDir: dir, service: 'bench', stage: 'dev', region: 'us-east-1',
  };
  const rows = LEVELS.map((concurrency) => ({
    concurrency,
    d: new FunctionDispatcher(spec, { maxInstances: 1000, keepAliveMs: 600_000, concurrency, launch: () => launchFor(spec, host, undefined, 'b', isolation), limits }),
    runs: [] as Array<Awaited<ReturnType<typeof load>>>,
  }));
  console.log(`#### Nimbus dispatcher benchmark, ${new Date().toISOString()}`);
  console.log(`machine: ${cpus()[0]?.model ?? '?'}, ${cpus().length} CPUs visible, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}; node ${process.versions.node}`);
  console.log(`limits: ${limits.description}`);
  console.log(`isolation: ${isolation?.description ?? 'none'}`);
  console.log(`load: ${CALLERS} invocations always in flight, trivial async handler, 1769 MB; ${ROUNDS} interleaved rounds of ${DURATION_S} s after a ${WARMUP_S} s warm-up each; medians\n`);
  for (const r of rows) await load(r.d, WARMUP_S);
  for (let round = 0; round < ROUNDS; round++) for (const r of rows) r.runs.push(await load(r.d, DURATION_S));
  console.log('| invocations per instance | instances | invocations/s | p50 ms | p99 ms | CPU µs / invocation (dispatcher + instances) | errors | invocations/s vs 1 per instance |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|');
  const base = median(rows[0].runs.map((x) => x.n / x.ms * 1000));
  for (const r of rows) {
    const rate = median(r.runs.map((x) => x.n / x.ms * 1000));
    console.log(`| ${r.concurrency} | ${r.d.stats().instances} | ${Math.round(rate)} | ${median(r.runs.map((x) => median(x.lat))).toFixed(2)} | ${median(r.runs.map((x) => pct(x.lat, 99))).toFixed(2)} | ${median(r.runs.map((x) => x.cpuUs / x.n)).toFixed(0)} | ${r.runs.reduce((s, x) => s + x.errors, 0)} | ${(rate / base).toFixed(2)}× |`);
  }
  await Promise.all(rows.map((r) => r.d.close()));
  await limits.close();
  rmSync(dir, { recursive: true, force: true });
}

await main();
