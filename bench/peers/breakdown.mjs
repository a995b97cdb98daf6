// Where a Nimbus cold start goes: the platform's own sandbox code (dist/src/sandbox, read-only
// use) timed step by step, pinned to one core like the server under test (run it under
// `taskset -c 0`; children inherit the pin). Prints one JSON object on stdout.
//
// For Node.js and Python (the fixtures/cold handlers), median of RUNS after 2 discarded:
//   floor        spawn -> exit of the bare interpreter (`node -e 0`, `python -c pass`)
//   fresh/plain  Instance.start on a new process, no sandbox, no cgroup   -> READY
//   fresh/bwrap  ... inside bubblewrap (as nimbus dev does)               -> READY
//   fresh/full   ... bubblewrap + cgroup limits (what nimbus dev does without a pooled process)
//   pooled/full  Instance.start on a pre-warmed process from a WarmPool (bwrap, waiting in cgroups
//                of its own, booted): INIT -> READY
//   pooled/nolim the same without cgroup limits (the difference is the claim of the prepared cgroups)
//   attach       LimitEnforcer.attach() + startCpuQuota() alone, on a sleeping process (what a claim
//                costs without prepared cgroups: a fresh process, or the pool's first claim before
//                it knows the limits)
//   claim        PreparedLimits.claim() alone (what a claim of a prepared pooled process costs)
//   pooled/refill pooled/full while a replacement runtime boots beside it (a pool refill with no delay)
//   invoke1/2    first and second INVOKE -> RESULT on the pooled/full instance
//   tzReset      (Node) `delete process.env.TZ` inside the sandbox: what the Node bootstrap's
//                environment reset costs there (ICU re-detects the host time zone)
// and the start-up of `nimbus dev` step by step (each in a fresh process, median of 5):
//   boot (node itself), import of the CLI's module graph, detectHostRuntimes (python3 -c ...),
//   detectLimitEnforcer, loadServiceConfig, detectIsolation (bwrap ... /bin/true), and
//   esbuild bundling of examples/typescript-api's 6 TypeScript handlers.
import path from 'node:path';
import fs from 'node:fs';
import os from 'node:os';
import { spawn } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const RUNS = Number(process.env.BREAKDOWN_RUNS || 8);

const now = () => Number(process.hrtime.bigint()) / 1e6;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (a) => { const s = [...a].sort((x, y) => x - y); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

// ---- mode `startup`: one fresh process timing nimbus dev's start-up steps --------------------
const BOOT_MS = performance.now(); // ms since this process started: node's own boot (+ the builtins above)
if (process.argv[2] === 'startup') {
  const t = [BOOT_MS];
  await import(pathToFileURL(path.join(ROOT, 'dist/src/cli/main.js')).href);
  t.push(performance.now());
  const sb = await import(pathToFileURL(path.join(ROOT, 'dist/src/sandbox/index.js')).href);
  const cfg = await import(pathToFileURL(path.join(ROOT, 'dist/src/config/index.js')).href);
  const h = sb.detectHostRuntimes('python3', process.env); t.push(performance.now());
  const lim = sb.detectLimitEnforcer(); t.push(performance.now());
  const sp = cfg.loadServiceConfig(path.join(HERE, 'fixtures/hello/serverless.yml'), { env: {} }); t.push(performance.now());
  const rd = [...new Set(sp.functions.flatMap((f) => [f.codeDir, ...sb.runtimeReadPaths(f.language, h)]))];
  sb.detectIsolation('auto', rd); t.push(performance.now());
  const ts = cfg.loadServiceConfig(path.join(ROOT, 'examples/typescript-api/serverless.yml'), { env: {} });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nimbus-bd-'));
  for (const f of ts.functions) await sb.prepareModule(f, dir);
  t.push(performance.now());
  fs.rmSync(dir, { recursive: true, force: true });
  await lim.close();
  const d = (i) => t[i] - t[i - 1];
  process.stdout.write(JSON.stringify({ bootMs: t[0], importMs: d(1), hostRuntimesMs: d(2), limitsMs: d(3), configMs: d(4), isolationMs: d(5), esbuildTsMs: d(6) }) + '\n');
  process.exit(0);
}

const sb = await import(pathToFileURL(path.join(ROOT, 'dist/src/sandbox/index.js')).href);
const cfg = await import(pathToFileURL(path.join(ROOT, 'dist/src/config/index.js')).href);
const spec = cfg.loadServiceConfig(path.join(HERE, 'fixtures/cold/serverless.yml'), { env: {} });
const fnOf = (lang) => spec.functions.find((f) => f.key === (lang === 'node' ? 'node1' : 'py1'));
const host = sb.detectHostRuntimes('python3', process.env);
const readable = [...new Set(spec.functions.flatMap((f) => [f.codeDir, ...sb.runtimeReadPaths(f.language, host)]))];
const bwrap = sb.detectIsolation('auto', readable);
const none = sb.NO_ISOLATION;
const limits = sb.detectLimitEnforcer();
const noLimits = sb.rssSampling('breakdown');
const EVENT = JSON.stringify({ version: '2.0', rawPath: '/x', requestContext: { http: { method: 'GET', path: '/x' } } });

function exitTime(cmd, args) {
  return new Promise((resolve, reject) => {
    const t0 = now();
    const c = spawn(cmd, args, { stdio: 'ignore', env: { PATH: process.env.PATH } });
    c.on('error', reject);
    c.on('exit', () => resolve(now() - t0));
  });
}
async function invoke(inst) {
  const t0 = now();
  const a = await inst.invoke({ requestId: `r${Math.random()}`, event: EVENT, deadlineMs: Date.now() + 6000, timeoutSeconds: 6, onLog: () => {} });
  if (a.outcome !== 'ok') throw new Error(`invoke: ${a.outcome} ${a.payload}`);
  return now() - t0;
}
async function stop(inst) {
  await new Promise((r) => { inst.onExited(r); inst.kill('retire'); setTimeout(r, 3000); });
}
/** Instance.start on a fresh process -> READY (ms), then stop. */
async function fresh(f, iso, lim) {
  const launch = sb.launchFor(f, host, undefined, 'bd', iso);
  const t0 = now();
  const inst = sb.Instance.start(launch, lim);
  const init = await inst.ready;
  const ms = now() - t0;
  if (!init.ok) throw new Error(`init failed: ${init.payload}`);
  await stop(inst);
  return { ms, initMs: init.initDurationMs };
}
/**
 * A pre-warmed process from a WarmPool of one (as nimbus dev uses them: in cgroups of its own while it
 * waits when `lim` can prepare them), booted (its HELLO) and idle >= 600 ms, then Instance.start on it -> READY; invokes.
 * `refill`: a replacement runtime is spawned on the next tick (a pool refill with no delay).
 */
async function pooled(f, lim, withInvokes, refill = false) {
  const rt = sb.poolRuntimeFor(f.language, host, bwrap, f.codeDir);
  const pool = new sb.WarmPool(rt, 1, lim.prepare ? lim : undefined);
  await sleep(600);
  for (let i = 0; i < 100 && pool.booted < 1; i++) await sleep(20);
  const launch = sb.launchFor(f, host, undefined, 'bd', bwrap);
  let spare = null;
  const t0 = now();
  const proc = pool.take();
  pool.close();
  const inst = sb.Instance.start(launch, lim, proc);
  const startSyncMs = now() - t0;
  if (refill) setImmediate(() => { spare = sb.spawnRuntime(rt.command, rt.args, rt.env, rt.cwd); spare.channel.on('error', () => {}); });
  const init = await inst.ready;
  const ms = now() - t0;
  if (!init.ok) throw new Error(`init failed: ${init.payload}`);
  const out = { ms, startSyncMs, initMs: init.initDurationMs };
  if (withInvokes) { out.invoke1 = await invoke(inst); out.firstAnswerMs = now() - t0; out.invoke2 = await invoke(inst); }
  await stop(inst);
  if (spare) { spare.child.kill('SIGKILL'); await new Promise((r) => { if (spare.child.exitCode !== null || spare.child.signalCode) r(); else spare.child.on('exit', r); }); }
  return out;
}
/** Node only: the cost of `delete process.env.TZ` (then setting it back) inside the sandbox. */
function tzReset(f) {
  const code = "const t=performance.now();delete process.env.TZ;const a=performance.now()-t;process.env.TZ=':UTC';new Date().toString();console.log(a)";
  // The platform's own sandbox command for a pooled Node runtime, with the bootstrap replaced by `-e code`.
  const rt = sb.poolRuntimeFor('node', host, bwrap, f.codeDir);
  const at = rt.args.lastIndexOf(host.node);
  const args = [...rt.args.slice(0, at + 1), '-e', code];
  return new Promise((resolve) => {
    const c = spawn(rt.command, args, { stdio: ['ignore', 'pipe', 'ignore'], env: rt.env, cwd: rt.cwd });
    let o = '';
    c.stdout.on('data', (d) => { o += d; });
    c.on('exit', () => resolve({ ms: Number(o.trim()) }));
  });
}
function startupOnce() {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [fileURLToPath(import.meta.url), 'startup'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let o = '';
    c.stdout.on('data', (d) => { o += d; });
    c.on('exit', () => { try { resolve(JSON.parse(o)); } catch { resolve({}); } });
  });
}
async function attachOnly(f) {
  const c = spawn('sleep', ['5'], { stdio: 'ignore' });
  await sleep(20);
  const t0 = now();
  const l = limits.attach(c.pid, `bd-${c.pid}`, f.memorySize);
  l.startCpuQuota?.();
  const ms = now() - t0;
  c.kill('SIGKILL');
  await new Promise((r) => c.on('exit', r));
  l.release();
  return { ms };
}

async function claimOnly(f) {
  const c = spawn('sleep', ['5'], { stdio: 'ignore' });
  await sleep(20);
  const prepared = limits.prepare(c.pid, `bd-${c.pid}`);
  prepared.adopt();
  const t0 = now();
  const l = prepared.claim(f.memorySize);
  const ms = now() - t0;
  c.kill('SIGKILL');
  await new Promise((r) => c.on('exit', r));
  l.release();
  return { ms };
}

async function series(fn, runs = RUNS, warm = 2) {
  const xs = [];
  for (let i = -warm; i < runs; i++) { const r = await fn(); if (i >= 0) xs.push(r); }
  const keys = Object.keys(xs[0]);
  return Object.fromEntries(keys.map((k) => [k, median(xs.map((x) => x[k]).filter(Number.isFinite))]));
}

const out = { runs: RUNS, isolation: bwrap.kind, limits: limits.kind, python: host.python };
for (const lang of ['node', 'py']) {
  const f = fnOf(lang);
  const o = {};
  o.floor = await series(async () => ({ ms: await (lang === 'node' ? exitTime(host.node, ['-e', '0']) : exitTime(host.python, ['-c', 'pass'])) }));
  o.freshPlain = await series(() => fresh(f, none, noLimits));
  if (bwrap.kind === 'bwrap') o.freshBwrap = await series(() => fresh(f, bwrap, noLimits));
  o.freshFull = await series(() => fresh(f, bwrap, limits));
  o.pooledNoLimits = await series(() => pooled(f, noLimits, false));
  o.pooledFull = await series(() => pooled(f, limits, true));
  o.pooledRefill = await series(() => pooled(f, limits, true, true));
  o.attach = await series(() => attachOnly(f));
  if (limits.prepare) o.claim = await series(() => claimOnly(f));
  if (lang === 'node' && bwrap.kind === 'bwrap') o.tzReset = await series(() => tzReset(f));
  out[lang] = o;
}
out.startup = await series(startupOnce, 5, 1);
await limits.close();
process.stdout.write(JSON.stringify(out) + '\n');
process.exit(0);
