// Orchestrator of bench/peers.sh: Nimbus against raw node:http, serverless-offline and
// workerd on this machine, in one run. See bench/peers/README.md for what each number means.
//
// Phases (PHASES=steady,cold,zero,scale,memory,breakdown; all by default):
//   steady  GET /hello, wrk -c50, DURATION_S per measurement, ROUNDS interleaved rounds
//   cold    spawn -> first good GET /hello, polling every 2 ms on fresh connections
//   zero    Nimbus scale-from-zero: first request to a function with no instance (Node, Python)
//   scale   Nimbus 0 -> 200 concurrent requests to a function that sleeps 1000 ms
//   memory  PSS of one idle Nimbus instance (Node, Python) and of the platform process
//   breakdown  Nimbus's own sandbox and start-up steps timed one by one (breakdown.mjs)
// Every server runs pinned to SERVER_CPU with all its children; load generators on CLIENT_CPU.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import * as C from './lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const PEERS = path.resolve(process.env.PEERS_DIR ?? path.join(ROOT, 'bench/.peers/peers'));
const OUT = path.resolve(process.env.OUT_DIR ?? path.join(ROOT, 'bench/results/peers'));
const LOG = path.join(OUT, 'logs');
const NODE = process.execPath;
const NIMBUS = path.join(ROOT, 'bin/nimbus');

const env = process.env;
const PHASES = (env.PHASES || 'steady,cold,zero,scale,memory,breakdown').split(',');
const ONLY = (env.ONLY || '').split(',').filter(Boolean);
const CONNS = Number(env.CONNS || 50);
const DURATION_S = Number(env.DURATION_S || 10);
const ROUNDS = Number(env.ROUNDS || 3);
const WARMUP_S = Number(env.WARMUP_S || 3);            // round 1 (Nimbus: NIMBUS_WARMUP_S), 1 s later
const NIMBUS_WARMUP_S = Number(env.NIMBUS_WARMUP_S || 20); // ~10 instances, each JITs on 1/10 of the traffic
const COLD_RUNS = Number(env.COLD_RUNS || 5);
const ZERO_STARTS = Number(env.ZERO_STARTS || 10);
const POOL_WAIT_MS = Number(env.POOL_WAIT_MS || 1000);
const SCALE_N = Number(env.SCALE_N || 200);
const SCALE_TRIALS = Number(env.SCALE_TRIALS || 1);
const SCALE_UNPINNED = env.SCALE_UNPINNED !== '0';
// Trials of phase 3 beyond the Node ones from the default pool: `py` (the same function in Python),
// `prebooted` (Node with --warm-pool SCALE_N: the runtimes booted before the burst).
const SCALE_EXTRA = (env.SCALE_EXTRA ?? 'py,prebooted').split(',').filter(Boolean);
const SLEEP_MS = 1000;
const MEMORY_N = Number(env.MEMORY_N || 20); // idle instances alive at once for the memory phase's second measurement

const REPORT_ONLY = env.REPORT_ONLY === '1'; // re-print the report of the last run from results.json
if (!REPORT_ONLY) fs.rmSync(LOG, { recursive: true, force: true });
fs.mkdirSync(LOG, { recursive: true });
const log = (s) => process.stderr.write(s + '\n');

// ---- the servers --------------------------------------------------------------------------

const require = createRequire(import.meta.url);
const WORKERD = (() => { try { return require(path.join(PEERS, 'node_modules/workerd')).default; } catch { return null; } })();
const SLS = path.join(PEERS, 'node_modules/serverless/bin/serverless.js');
const slsEnv = {
  SLS_TELEMETRY_DISABLED: '1', SLS_TRACKING_DISABLED: '1', SLS_NOTIFICATIONS_MODE: 'off', SLS_DEPRECATION_DISABLE: '*',
  SLS_INTERACTIVE_SETUP_DISABLE: '1', AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local',
};
const nimbus = (name, label, config, port, controlPort, extra = {}) => ({
  name, label, port, controlPort, cwd: ROOT, env: {}, nimbus: true, config,
  cmd: NODE, args: [NIMBUS, 'dev', '--config', config, '--port', String(port), '--control-port', String(controlPort), '--quiet', '--no-watch'], ...extra,
});
const FIX = path.join(HERE, 'fixtures');
const SERVERS = [
  { name: 'node-http', label: 'node:http (raw, the ceiling)', port: 4521, cwd: HERE, env: { PORT: '4521' }, cmd: NODE, args: [path.join(HERE, 'servers/node-http.cjs')] },
  nimbus('nimbus', 'Nimbus (fixtures/hello, 1769 MB)', path.join(FIX, 'hello/serverless.yml'), 4522, 4532),
  nimbus('nimbus-rc1', 'Nimbus, same with reservedConcurrency 1 (diagnostic)', path.join(FIX, 'hello-rc1/serverless.yml'), 4528, 4538, { cold: false, warmupS: 5 }),
  nimbus('nimbus-multi', 'Nimbus, same with perExecutionEnvironmentMaxConcurrency 64 (opt-in)', path.join(FIX, 'hello-multi/serverless.yml'), 4529, 4539, { cold: false, warmupS: 5 }),
  nimbus('nimbus-ts', 'Nimbus (examples/typescript-api, 256 MB)', path.join(ROOT, 'examples/typescript-api/serverless.yml'), 4523, 4533, { warmupS: Number(env.NIMBUS_TS_WARMUP_S || 20) }),
  { name: 'sls', label: 'serverless-offline 13.10.1 (sls 3.40.0)', port: 4525, cwd: path.join(PEERS, 'sls'), env: slsEnv,
    cmd: NODE, args: [SLS, 'offline', 'start', '--httpPort', '4525', '--lambdaPort', '4535'] },
  { name: 'workerd', label: 'workerd (npm binary)', port: 4524, cwd: path.join(HERE, 'workerd'), env: {},
    cmd: WORKERD ?? 'workerd', args: ['serve', 'config.capnp', '--socket-addr', 'http=127.0.0.1:4524'] },
].filter((s) => !ONLY.length || ONLY.includes(s.name));
const COLD_FIXTURE = nimbus('nimbus-cold', 'Nimbus (fixtures/cold)', path.join(FIX, 'cold/serverless.yml'), 4526, 4536);
// 200 instances of 128 MB are 25.6 GB of memorySize: over the default budget (80% of this host's 23.5 GB), so the
// scale servers run with --host-memory-share 1.2 (memorySize is a limit; an idle instance uses ~10-45 MB).
const SCALE_SHARE = env.SCALE_HOST_MEMORY_SHARE || '1.2';
const scaleServer = (name, dir, extra = []) => {
  const s = nimbus(name, `Nimbus (fixtures/${dir})`, path.join(FIX, `${dir}/serverless.yml`), 4527, 4537);
  return { ...s, args: [...s.args, '--host-memory-share', SCALE_SHARE, ...extra] };
};
const SCALE_FIXTURE = scaleServer('nimbus-scale', 'scale');

const results = { startedAt: new Date().toISOString(), params: { CONNS, DURATION_S, ROUNDS, WARMUP_S, NIMBUS_WARMUP_S, COLD_RUNS, ZERO_STARTS, POOL_WAIT_MS, SCALE_N, SCALE_TRIALS, SCALE_SHARE, PIN: C.PIN, SERVER_CPU: C.SERVER_CPU, CLIENT_CPU: C.CLIENT_CPU } };
const saveJson = () => fs.writeFileSync(path.join(OUT, 'results.json'), JSON.stringify(results, null, 2));

// ---- wrk ----------------------------------------------------------------------------------

const toMs = (s) => { const m = /^([\d.]+)(us|ms|s|m)$/.exec(s ?? ''); return m ? Number(m[1]) * { us: 1e-3, ms: 1, s: 1e3, m: 6e4 }[m[2]] : NaN; };
async function wrk(port, secs, urlPath = '/hello') {
  const { cmd, args } = C.pinned(C.CLIENT_CPU, 'timeout', [String(secs + 20), 'wrk', '-t1', `-c${CONNS}`, `-d${secs}s`, '--timeout', '5s', '--latency', `http://127.0.0.1:${port}${urlPath}`]);
  const r = await C.run(cmd, args);
  const o = r.out;
  const g = (re) => { const m = re.exec(o); return m ? m[1] : null; };
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(o);
  return {
    rps: Number(g(/Requests\/sec:\s+([\d.]+)/)), p50: toMs(g(/^\s+50%\s+(\S+)/m)), p90: toMs(g(/^\s+90%\s+(\S+)/m)), p99: toMs(g(/^\s+99%\s+(\S+)/m)),
    requests: Number(g(/(\d+) requests in/)), non2xx: Number(g(/Non-2xx or 3xx responses: (\d+)/) || 0),
    errors: sock ? sock.slice(1).reduce((s, x) => s + Number(x), 0) : 0, raw: o + r.err,
  };
}

// ---- phase 1: steady state ----------------------------------------------------------------

async function steady() {
  const children = {};
  const rounds = Object.fromEntries(SERVERS.map((s) => [s.name, []]));
  const failed = {};
  try {
    for (const cfg of SERVERS) {
      await C.waitPortFree(cfg.port);
      const child = C.startServer(cfg, path.join(LOG, `steady-${cfg.name}.log`));
      try { await C.waitFirstOk(cfg.port, 60000, child); children[cfg.name] = child; log(`[steady] ${cfg.name} up (pid ${child.pid})`); }
      catch (e) { failed[cfg.name] = `start: ${e.message}`; log(`[steady] ${cfg.name} FAILED to start: ${e.message}`); await C.stopServer(child); }
    }
    for (let round = 1; round <= ROUNDS; round++) {
      for (const cfg of SERVERS) {
        const child = children[cfg.name];
        if (!child) continue;
        const r = { round };
        r.quietWaitMs = await C.waitQuiet(C.SERVER_CPU, { maxMs: 2000 });
        r.calMs = await C.calibrate(C.SERVER_CPU);
        await wrk(cfg.port, round === 1 ? (cfg.warmupS ?? (cfg.nimbus ? NIMBUS_WARMUP_S : WARMUP_S)) : 1);
        const st0 = C.cpuStat(); const t0 = C.cpuTicks(child.pid); const rss = C.rssSampler(child.pid); const fsm = C.foreignSampler();
        const w = await wrk(cfg.port, DURATION_S);
        const t1 = C.cpuTicks(child.pid); const st1 = C.cpuStat(); const fo = fsm.stop();
        Object.assign(r, w, { peakRssMb: rss.stop(), foreignPct: fo.pct, foreignTop: fo.top, stealPct: C.stealPct(st0, st1, C.SERVER_CPU),
          cpuMsPerReqOwn: ((t1.own - t0.own) * 10) / w.requests, cpuMsPerReqDesc: ((t1.desc - t0.desc) * 10) / w.requests,
          procs: C.tree(child.pid).length });
        fs.writeFileSync(path.join(LOG, `wrk-${cfg.name}-r${round}.txt`), w.raw); delete r.raw;
        rounds[cfg.name].push(r);
        log(`[steady] r${round} ${cfg.name.padEnd(10)} ${String(Math.round(r.rps)).padStart(6)} req/s  p50 ${C.fmt(r.p50, 2)} ms  p99 ${C.fmt(r.p99, 2)} ms  `
          + `cpu/req ${C.fmt(r.cpuMsPerReqOwn, 3)}+${C.fmt(r.cpuMsPerReqDesc, 3)} ms  non2xx ${r.non2xx} err ${r.errors}  probe ${C.fmt(r.calMs)} ms  foreign ${C.fmt(r.foreignPct)}%`
          + `${r.foreignPct > C.FOREIGN_MAX_PCT ? ' (CONTAMINATED: ' + r.foreignTop.slice(0, 2).map((x) => x[0]).join(',') + ')' : ''}`);
      }
    }
  } finally {
    for (const child of Object.values(children)) await C.stopServer(child);
  }
  const out = summariseSteady(rounds, failed);
  results.steady = out;
  results.probes = [...(results.probes ?? []), ...Object.values(rounds).flat().map((r) => r.calMs)];
  saveJson();
}

/**
 * Medians per server over its rounds, leaving out rounds during which other workloads used the CPU
 * (foreign > FOREIGN_MAX_PCT) or the machine itself ran slow (its speed probe over SLOW_PROBE × the
 * run's fastest probes: this VM's host slows it down at times, 2-4x, for minutes), when rounds remain.
 */
function summariseSteady(rounds, failed = {}) {
  const probes = Object.values(rounds).flat().map((r) => r.calMs).filter(Number.isFinite).sort((a, b) => a - b);
  const fast = C.median(probes.slice(0, 3));
  const out = {};
  for (const cfg of SERVERS) {
    const all = rounds[cfg.name] ?? [];
    if (!all.length) { out[cfg.name] = { label: cfg.label, error: failed[cfg.name] ?? 'no data' }; continue; }
    for (const x of all) x.slow = x.calMs > fast * SLOW_PROBE;
    const clean = all.filter((x) => !(x.foreignPct > C.FOREIGN_MAX_PCT) && !x.slow);
    const w = clean.length ? clean : all;
    const med = (k) => C.median(w.map((x) => x[k]));
    out[cfg.name] = { label: cfg.label, rps: med('rps'), rpsMin: Math.min(...w.map((x) => x.rps)), rpsMax: Math.max(...w.map((x) => x.rps)),
      p50: med('p50'), p99: med('p99'), cpuOwn: med('cpuMsPerReqOwn'), cpuDesc: med('cpuMsPerReqDesc'), peakRssMb: Math.max(...w.map((x) => x.peakRssMb)),
      procs: Math.max(...w.map((x) => x.procs)), non2xx: w.reduce((sum, x) => sum + x.non2xx, 0), errors: w.reduce((sum, x) => sum + x.errors, 0),
      n: w.length, nAll: all.length, rounds: all };
  }
  return out;
}
const SLOW_PROBE = 1.5;

// ---- phase 2a: cold start (process start -> first good response) -----------------------------

async function cold() {
  const COLD = SERVERS.filter((s) => s.cold !== false);
  const runs = Object.fromEntries(COLD.map((s) => [s.name, []]));
  const failed = {};
  for (let i = -1; i < COLD_RUNS; i++) { // run -1 is discarded (page-cache warm-up)
    await C.waitQuiet(C.SERVER_CPU, { maxMs: 1500 });
    results.probes = [...(results.probes ?? []), await C.calibrate(C.SERVER_CPU)];
    for (const cfg of COLD) {
      if (failed[cfg.name]) continue;
      await C.waitPortFree(cfg.port);
      const quietWaitMs = await C.waitQuiet(C.SERVER_CPU, { maxMs: 1500 });
      const fsm = C.foreignSampler();
      const t0 = C.now();
      const child = C.startServer(cfg, path.join(LOG, `cold-${cfg.name}.log`));
      try {
        const first = await C.waitFirstOk(cfg.port, 60000, child);
        const second = await C.get(cfg.port, '/hello');
        const fo = fsm.stop();
        const r = { run: i, readyMs: first.t0 + first.ms - t0, listenMs: first.t0 - t0, firstReqMs: first.ms, secondReqMs: second.ms, quietWaitMs, foreignPct: fo.pct };
        if (i >= 0) runs[cfg.name].push(r);
        log(`[cold] run ${i} ${cfg.name.padEnd(10)} ready ${C.fmt(r.readyMs)} ms (request sent at ${C.fmt(r.listenMs)} ms, took ${C.fmt(r.firstReqMs)} ms; 2nd ${C.fmt(r.secondReqMs, 2)} ms) foreign ${C.fmt(fo.pct)}%`);
      } catch (e) {
        failed[cfg.name] = String(e.message || e);
        log(`[cold] ${cfg.name} FAILED: ${failed[cfg.name]}`);
      } finally {
        await C.stopServer(child);
      }
    }
  }
  const out = {};
  for (const cfg of COLD) {
    const all = runs[cfg.name];
    if (!all.length) { out[cfg.name] = { label: cfg.label, error: failed[cfg.name] ?? 'no runs' }; continue; }
    // runs during which other workloads on the machine used > 5% of a CPU are left out when >= 3 clean runs remain
    const clean = all.filter((r) => !(r.foreignPct > 5));
    const rs = clean.length >= Math.min(3, all.length) ? clean : all;
    const m = (k) => C.median(rs.map((r) => r[k]));
    out[cfg.name] = { label: cfg.label, readyMs: m('readyMs'), readyMin: Math.min(...rs.map((r) => r.readyMs)), readyMax: Math.max(...rs.map((r) => r.readyMs)),
      listenMs: m('listenMs'), firstReqMs: m('firstReqMs'), secondReqMs: m('secondReqMs'), n: rs.length, nAll: all.length, runs: all, error: failed[cfg.name] };
  }
  results.cold = out;
  saveJson();
}

// ---- phase 2b: Nimbus scale from zero ---------------------------------------------------------

/** REPORT line fields of a base64 Tail log. */
function reportOf(b64) {
  const text = Buffer.from(b64 ?? '', 'base64').toString('utf8');
  const g = (re) => { const m = re.exec(text); return m ? Number(m[1]) : NaN; };
  return { durationMs: g(/\tDuration: ([\d.]+) ms/), initMs: g(/Init Duration: ([\d.]+) ms/) };
}

async function startNimbus(cfg, logName, { pin = true } = {}) {
  await C.waitPortFree(cfg.port);
  await C.waitPortFree(cfg.controlPort);
  const child = C.startServer(cfg, path.join(LOG, logName), { pin });
  await C.waitStatus200(cfg.controlPort, '/_/health', 60000, child);
  return child;
}

async function zero() {
  const cfg = COLD_FIXTURE;
  const samples = [];
  for (let s = 0; s < ZERO_STARTS; s++) {
    await C.waitQuiet(C.SERVER_CPU, { maxMs: 1500 });
    const child = await startNimbus(cfg, 'zero-nimbus.log');
    try {
      await C.sleep(POOL_WAIT_MS); // the warm pools fill
      const langs = s % 2 ? ['py', 'node'] : ['node', 'py'];
      const plan = [...langs.map((l) => [l, 1, 'gateway']), ...langs.map((l) => [l, 2, 'gateway']), ...langs.map((l) => [l, 3, 'invoke'])];
      for (const [idx, [lang, n, via]] of plan.entries()) {
        const fn = `bench-peers-cold-dev-${lang}${n}`;
        const r = via === 'gateway'
          ? await C.get(cfg.port, `/${lang}${n}`, 30000)
          : await C.request(cfg.controlPort, { method: 'POST', path: `/2015-03-31/functions/${fn}/invocations`, headers: { 'x-amz-log-type': 'Tail', 'content-type': 'application/json' },
            body: JSON.stringify({ version: '2.0', rawPath: `/${lang}${n}`, requestContext: { http: { method: 'GET', path: `/${lang}${n}` } } }) });
        const ok = via === 'gateway' ? C.okBody(r) : r.status === 200 && !r.headers['x-amz-function-error'];
        const rep = via === 'invoke' ? reportOf(r.headers['x-amz-log-result']) : {};
        samples.push({ start: s, lang, fn: n, via, ms: r.ms, ok, status: r.status, firstOfServer: idx === 0, firstOfLang: n === 1, ...rep });
        await C.sleep(POOL_WAIT_MS); // pool refills before the next function's first request
      }
      const last = samples.slice(-plan.length);
      log(`[zero] start ${s}: ${last.map((x) => `${x.lang}${x.fn}/${x.via} ${C.fmt(x.ms)} ms${x.ok ? '' : ' FAIL'}${Number.isFinite(x.initMs) ? ` (init ${C.fmt(x.initMs)})` : ''}`).join(', ')}`);
    } finally {
      await C.stopServer(child);
    }
  }
  const sum = (xs) => ({ n: xs.length, p50: C.median(xs.map((x) => x.ms)), p99: C.pct(xs.map((x) => x.ms), 99), min: Math.min(...xs.map((x) => x.ms)), max: Math.max(...xs.map((x) => x.ms)),
    fails: xs.filter((x) => !x.ok).length, initP50: C.median(xs.map((x) => x.initMs).filter(Number.isFinite)), durP50: C.median(xs.map((x) => x.durationMs).filter(Number.isFinite)) });
  const out = {};
  for (const lang of ['node', 'py']) {
    const mine = samples.filter((x) => x.lang === lang);
    out[lang] = {
      gateway: sum(mine.filter((x) => x.via === 'gateway')),
      gatewayFirstOfServer: sum(mine.filter((x) => x.via === 'gateway' && x.firstOfServer)),
      gatewayLater: sum(mine.filter((x) => x.via === 'gateway' && !x.firstOfServer)),
      invoke: sum(mine.filter((x) => x.via === 'invoke')),
    };
  }
  results.zero = { ...out, samples };
  saveJson();
}

// ---- phase 3: scale 0 -> 200 ----------------------------------------------------------------

function countInstances(pid) {
  // direct children of the platform that are instances or pooled runtimes (bwrap, node, python), not esbuild
  let n = 0;
  for (const c of C.children(pid)) { const a = C.cmdline(c).join(' '); if (/bwrap|bootstrap\.(mjs|py)/.test(a)) n++; }
  return n;
}

async function burst(port, n, urlPath) {
  const t0 = C.now();
  const kinds = new Map();
  const lat = [];
  await Promise.all(Array.from({ length: n }, () => C.get(port, urlPath, 60000).then((r) => {
    const k = r.status === 200 ? '200' : `${r.status} ${r.headers['x-nimbus-error'] ?? ''}`.trim();
    kinds.set(k, (kinds.get(k) ?? 0) + 1);
    lat.push(r.ms);
  }, (e) => { const k = `socket ${e.code ?? e.message}`; kinds.set(k, (kinds.get(k) ?? 0) + 1); })));
  return { totalMs: C.now() - t0, kinds: Object.fromEntries(kinds), errors: n - (kinds.get('200') ?? 0), p50: C.median(lat), max: Math.max(...lat) };
}

/** Waits until the platform has `n` runtime processes (a full warm pool), then a little for their HELLOs; false after maxMs. */
async function waitRuntimes(pid, n, maxMs) {
  const until = C.now() + maxMs;
  while (C.now() < until) {
    if (countInstances(pid) >= n) { await C.sleep(3000); return true; }
    await C.sleep(250);
  }
  return false;
}

async function scale() {
  const trials = [];
  const node = { lang: 'node', cfg: SCALE_FIXTURE, pool: 'default (2)' };
  const plan = [
    ...Array.from({ length: SCALE_TRIALS }, () => ({ ...node, pin: true })),
    ...(SCALE_UNPINNED && C.PIN ? [{ ...node, pin: false }] : []),
    ...(SCALE_EXTRA.includes('py') ? [{ lang: 'py', cfg: scaleServer('nimbus-scale-py', 'scale-py'), pool: 'default (2)', pin: true }] : []),
    ...(SCALE_EXTRA.includes('prebooted') ? [{ lang: 'node', cfg: scaleServer('nimbus-scale-pool', 'scale', ['--warm-pool', String(SCALE_N)]), pool: `${SCALE_N} pre-booted`, pin: true, prebooted: true }] : []),
  ];
  for (const [i, trial] of plan.entries()) {
    const { cfg, pin } = trial;
    await C.waitQuiet(C.SERVER_CPU, { maxMs: 3000 });
    const child = await startNimbus(cfg, `scale-${i}-nimbus.log`, { pin });
    try {
      let poolFillMs = NaN;
      if (trial.prebooted) {
        const t0 = C.now();
        if (!(await waitRuntimes(child.pid, SCALE_N, 120000))) log(`[scale] trial ${i}: the warm pool did not fill in 120 s`);
        poolFillMs = C.now() - t0;
      } else {
        await C.sleep(POOL_WAIT_MS);
      }
      let peakProcs = 0;
      const h = setInterval(() => { peakProcs = Math.max(peakProcs, countInstances(child.pid)); }, 200);
      const b = await burst(cfg.port, SCALE_N, '/sleep');
      clearInterval(h);
      let peakInstances = NaN;
      let metrics = null;
      try {
        const m = await C.get(cfg.controlPort, `/_/metrics?function=${trial.lang === 'py' ? 'bench-peers-scale-py-dev-sleep' : 'bench-peers-scale-dev-sleep'}`, 5000);
        metrics = JSON.parse(m.body);
        peakInstances = metrics.peakInstances ?? metrics.instances?.peak ?? NaN;
      } catch { /* a build without /_/metrics */ }
      const t = { trial: i, lang: trial.lang, pool: trial.pool, pinned: pin, poolFillMs, ...b, overheadMs: b.totalMs - SLEEP_MS, peakInstances, peakProcs, metrics };
      trials.push(t);
      log(`[scale] trial ${i} (${trial.lang}, pool ${trial.pool}${trial.prebooted ? ` filled in ${C.fmt(poolFillMs / 1000, 1)} s` : ''}, ${pin ? `server pinned to CPU ${C.SERVER_CPU}` : 'server unpinned'}): all ${SCALE_N} answered after ${C.fmt(b.totalMs, 0)} ms (-${SLEEP_MS} = ${C.fmt(t.overheadMs, 0)} ms), errors ${b.errors} ${JSON.stringify(b.kinds)}, peak instances ${peakInstances} (processes ${peakProcs})`);
    } finally {
      await C.stopServer(child, 10000);
    }
  }
  results.scale = trials;
  saveJson();
}

// ---- phase 4: idle memory -----------------------------------------------------------------

function instanceTrees(platformPid) {
  const out = [];
  for (const c of C.children(platformPid)) {
    const pids = C.tree(c);
    const args = pids.map((p) => C.cmdline(p).join(' ')).join(' | ');
    const lang = /bootstrap\.mjs/.test(args) ? 'node' : /bootstrap\.py/.test(args) ? 'py' : null;
    if (!lang) continue; // esbuild and the like
    let cg = '';
    try { cg = fs.readFileSync(`/proc/${c}/cgroup`, 'utf8'); } catch { /* gone */ }
    // Pooled runtimes wait in groups of their own too (limits.ts prepare()), with a 128 MB memory
    // limit until a function claims them; an instance's group has the function's memorySize (1769 MB here).
    const group = /:memory:(\/nimbus-\d+\S*)/.exec(cg)?.[1] ?? /^0::(\/nimbus-\d+\S*)/m.exec(cg)?.[1];
    let limit = NaN;
    for (const f of ['memory/' + group + '/memory.limit_in_bytes', group + '/memory.max']) {
      try { limit = Number(fs.readFileSync('/sys/fs/cgroup/' + f, 'utf8')); break; } catch { /* other cgroup version */ }
    }
    const inCgroup = group !== undefined && limit !== 128 * 1024 * 1024;
    const per = pids.map((p) => ({ pid: p, comm: C.procStat(p)?.comm, ...pick(C.rollup(p)) }));
    const tot = (k) => per.reduce((s, x) => s + (x[k] ?? 0), 0);
    out.push({ root: c, lang, inCgroup, start: C.procStat(c)?.starttime, pssKb: tot('Pss'), rssKb: tot('Rss'), ussKb: tot('Private_Clean') + tot('Private_Dirty'), per });
  }
  return out;
}
function pick(r) { return { Pss: r.Pss, Rss: r.Rss, Private_Clean: r.Private_Clean, Private_Dirty: r.Private_Dirty, Shared_Clean: r.Shared_Clean }; }

async function memory() {
  const cfg = COLD_FIXTURE;
  const child = await startNimbus(cfg, 'memory-nimbus.log');
  try {
    await C.sleep(POOL_WAIT_MS);
    const before = instanceTrees(child.pid);
    // One request each: the node and python functions get one instance apiece (taken from the pools).
    for (const p of ['/node1', '/py1']) { const r = await C.get(cfg.port, p); if (!C.okBody(r)) throw new Error(`memory: ${p} answered ${r.status}`); }
    await C.sleep(2000); // idle; pools refilled
    const trees = instanceTrees(child.pid);
    // An instance is in a per-instance cgroup with its function's memory limit (limits.ts). Without cgroups: the oldest runtime of its
    // language among those that were pooled before the request (WarmPool.take() takes the oldest).
    const haveCg = trees.some((t) => t.inCgroup);
    const isInstance = (t) => (haveCg ? t.inCgroup : before.filter((b) => b.lang === t.lang).sort((a, b) => a.start - b.start)[0]?.root === t.root);
    const plat = pick(C.rollup(child.pid));
    const comms = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map((d) => C.procStat(d)?.comm);
    const sharing = { node: comms.filter((c) => c === 'node').length, python: comms.filter((c) => /^python/.test(c)).length };
    const res = { sharing, method: haveCg ? 'cgroup membership' : 'oldest pooled process', platform: { pssKb: plat.Pss, rssKb: plat.Rss, ussKb: plat.Private_Clean + plat.Private_Dirty }, byLang: {} };
    for (const lang of ['node', 'py']) {
      const inst = trees.filter((t) => t.lang === lang && isInstance(t));
      const pooled = trees.filter((t) => t.lang === lang && !isInstance(t));
      res.byLang[lang] = { instances: inst, pooled, instancePssKb: C.median(inst.map((t) => t.pssKb)), pooledPssKb: C.median(pooled.map((t) => t.pssKb)),
        instanceRssKb: C.median(inst.map((t) => t.rssKb)), instanceUssKb: C.median(inst.map((t) => t.ussKb)), pooledUssKb: C.median(pooled.map((t) => t.ussKb)) };
      log(`[memory] ${lang}: instance PSS ${C.fmt(res.byLang[lang].instancePssKb / 1024)} MB (USS ${C.fmt(res.byLang[lang].instanceUssKb / 1024)}, RSS ${C.fmt(res.byLang[lang].instanceRssKb / 1024)}) over ${inst[0]?.per.length ?? 0} processes; pooled runtime PSS ${C.fmt(res.byLang[lang].pooledPssKb / 1024)} MB`);
    }
    log(`[memory] platform process PSS ${C.fmt(plat.Pss / 1024)} MB (RSS ${C.fmt(plat.Rss / 1024)} MB)`);
    results.memory = res;
  } finally {
    await C.stopServer(child);
  }
  saveJson();
  // The same with MEMORY_N idle instances of one function alive at once (a platform under load keeps many):
  // PSS per instance is then closer to its private memory, the interpreter's pages being shared N ways.
  results.memory.atScale = {};
  for (const [lang, cfg] of [['node', SCALE_FIXTURE], ['py', scaleServer('nimbus-scale-py', 'scale-py')]]) {
    const server = await startNimbus(cfg, `memory-${lang}-n.log`);
    try {
      await C.sleep(POOL_WAIT_MS);
      const replies = await Promise.all(Array.from({ length: MEMORY_N }, () => C.get(cfg.port, '/sleep', 30000)));
      if (!replies.every(C.okBody)) throw new Error(`memory: ${MEMORY_N} concurrent /sleep on ${cfg.name} did not all answer 200`);
      await C.sleep(3000); // idle; the pool refilled
      // The pool's runtimes were booted last (after the burst): the oldest MEMORY_N trees are the instances.
      const trees = instanceTrees(server.pid).filter((t) => t.lang === lang).sort((a, b) => a.start - b.start).slice(0, MEMORY_N);
      const mean = (k) => trees.reduce((sum, t) => sum + t[k], 0) / Math.max(1, trees.length);
      results.memory.atScale[lang] = { n: trees.length, pssKb: mean('pssKb'), ussKb: mean('ussKb'), rssKb: mean('rssKb') };
      log(`[memory] ${lang}: ${trees.length} idle instances, mean PSS ${C.fmt(mean('pssKb') / 1024)} MB (USS ${C.fmt(mean('ussKb') / 1024)} MB)`);
    } finally {
      await C.stopServer(server);
    }
    saveJson();
  }
}

// ---- phase 5: breakdown ----------------------------------------------------------------------

async function breakdown() {
  await C.waitQuiet(C.SERVER_CPU, { maxMs: 3000 });
  const { cmd, args } = C.pinned(C.SERVER_CPU, NODE, [path.join(HERE, 'breakdown.mjs')]);
  const r = await C.run('timeout', ['240', cmd, ...args], { env: C.cleanEnv() });
  fs.writeFileSync(path.join(LOG, 'breakdown.err'), r.err);
  const line = r.out.trim().split('\n').pop();
  try { results.breakdown = JSON.parse(line); } catch { throw new Error(`breakdown.mjs failed (exit ${r.code}): ${r.err.slice(-500)}`); }
  log(`[breakdown] ${line}`);
  saveJson();
}

// ---- report -------------------------------------------------------------------------------

function report() {
  const L = [];
  const p = results.params;
  const probes = (results.probes ?? []).filter(Number.isFinite);
  L.push(`## Nimbus vs peers: one run of bench/peers.sh`, '');
  L.push(`- date: ${results.startedAt} (this phase set took ${C.fmt((Date.parse(results.finishedAt) - Date.parse(results.startedAt)) / 1000, 0)} s)`);
  L.push(`- machine: ${env.MACHINE_INFO ?? ''}`);
  L.push(`- Nimbus measured: ${env.NIMBUS_SOURCE ?? 'n/a'} (built with npm run build at the start of the run)`);
  L.push(`- Nimbus on this host: ${results.nimbusInfo ?? 'n/a'}`);
  L.push(`- machine-speed probe (fixed 1e7-iteration JS loop on the idle server core): ${probes.length ? `median ${C.fmt(C.median(probes))} ms, range ${C.fmt(Math.min(...probes))}–${C.fmt(Math.max(...probes))} ms (${probes.length} runs)` : 'n/a'}`);
  L.push(`- pinning: ${p.PIN ? `server under test and all its children on CPU ${p.SERVER_CPU}, load generator / poller on CPU ${p.CLIENT_CPU}` : 'off (PIN=0)'}; NODE_EXTRA_CA_CERTS and NODE_OPTIONS unset for every server`);
  L.push('');
  // Recomputed from the rounds, so a REPORT_ONLY run applies the current rules to an older results.json.
  const st = results.steady && summariseSteady(Object.fromEntries(Object.entries(results.steady).map(([k, v]) => [k, v.rounds ?? []])),
    Object.fromEntries(Object.entries(results.steady).map(([k, v]) => [k, v.error])));
  if (st) {
    const base = st['node-http'];
    L.push(`### 1. Steady state: GET /hello, wrk -t1 -c${p.CONNS}, ${p.DURATION_S} s per measurement, median of ${p.ROUNDS} interleaved rounds`, '');
    L.push('| server | req/s | per round (r1 / r2 / r3) | req/s vs node:http | p50 ms | p50 vs node:http | p99 ms | p99 vs node:http | server CPU ms/req (platform + instances) | peak RSS MB (processes) | non-2xx / socket errors |');
    L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const s of SERVERS) {
      const r = st[s.name];
      if (!r) continue;
      if (r.error) { L.push(`| ${r.label} | failed: ${r.error} ||||||||||`); continue; }
      L.push(`| ${r.label} | **${C.fmtInt(r.rps)}** | ${r.rounds.map((x) => `${C.fmtInt(x.rps)}${x.foreignPct > C.FOREIGN_MAX_PCT ? '*' : ''}${x.slow ? '†' : ''}`).join(' / ')} | ${C.ratio(r.rps, base?.rps, 3)} | ${C.fmt(r.p50, 2)} | ${C.ratio(r.p50, base?.p50, 1)} | ${C.fmt(r.p99, 2)} | ${C.ratio(r.p99, base?.p99, 1)} | `
        + `${C.fmt(r.cpuOwn + r.cpuDesc, 3)} (${C.fmt(r.cpuOwn, 3)} + ${C.fmt(r.cpuDesc, 3)}) | ${C.fmt(r.peakRssMb, 0)} (${r.procs}) | ${r.non2xx} / ${r.errors}${r.n < r.nAll ? ` (${r.nAll - r.n} round(s) left out)` : ''} |`);
    }
    L.push('', `Round 1 starts with a warm-up of ${p.WARMUP_S} s (Nimbus: ${p.NIMBUS_WARMUP_S} s, reservedConcurrency-1 twin 5 s), later rounds with 1 s. `
      + `\* = a round during which other workloads used > ${C.FOREIGN_MAX_PCT}% of a CPU; † = a round during which the machine itself ran slow (its speed probe over ${SLOW_PROBE}× the run's fastest); both are left out of the median when other rounds exist. `
      + 'Server CPU ms/req = utime+stime of the server process (and, for Nimbus, of its instance processes) during the measurement / requests served.', '');
  }
  const cd = results.cold;
  if (cd) {
    const base = cd['node-http'];
    L.push(`### 2a. Cold start: process spawn -> first good GET /hello (poll every 2 ms, fresh connections), median of ${p.COLD_RUNS} runs after 1 discarded`, '');
    L.push('| server | spawn -> first 200 ms | min–max | vs node:http | of which: listening (first accepted poll sent at) ms | first request ms | 2nd request ms | runs used (clean/all) |');
    L.push('|---|---:|---:|---:|---:|---:|---:|---:|');
    for (const s of SERVERS) {
      const r = cd[s.name];
      if (!r) continue;
      if (!r.n) { L.push(`| ${r.label} | failed: ${r.error} |||||||`); continue; }
      L.push(`| ${r.label} | **${C.fmt(r.readyMs)}** | ${C.fmt(r.readyMin)}–${C.fmt(r.readyMax)} | ${C.ratio(r.readyMs, base?.readyMs, 1)} | ${C.fmt(r.listenMs)} | ${C.fmt(r.firstReqMs)} | ${C.fmt(r.secondReqMs, 2)} | ${r.n}/${r.nAll} |`);
    }
    L.push('');
  }
  const z = results.zero;
  if (z) {
    L.push(`### 2b. Nimbus scale from zero: first request to a function with no instance (server up, pools filled ${p.POOL_WAIT_MS} ms), ${p.ZERO_STARTS} server starts`, '');
    L.push('| function | path | n | p50 ms | p99 ms | min–max ms | Init Duration p50 ms | failures | goal | met? |');
    L.push('|---|---|---:|---:|---:|---:|---:|---:|---|---|');
    const goals = { node: { p50: 10, p99: 50 }, py: { p50: 20 } };
    for (const lang of ['node', 'py']) {
      const g = goals[lang];
      const goalTxt = `p50 ≤ ${g.p50} ms${g.p99 ? `, p99 ≤ ${g.p99} ms` : ''}`;
      const met = (x) => (x.p50 <= g.p50 && (!g.p99 || x.p99 <= g.p99) ? 'yes' : '**no**');
      const name = lang === 'node' ? 'Node.js' : 'Python';
      const rows = [
        ['GET via gateway (all)', z[lang].gateway, true],
        ['  …first request after server start', z[lang].gatewayFirstOfServer, false],
        ['  …later (platform warm, function at zero)', z[lang].gatewayLater, false],
        ['Invoke API (control port)', z[lang].invoke, false],
      ];
      for (const [what, x, goal] of rows) {
        L.push(`| ${name} | ${what} | ${x.n} | **${C.fmt(x.p50)}** | ${C.fmt(x.p99)} | ${C.fmt(x.min)}–${C.fmt(x.max)} | ${C.fmt(x.initP50, 2)} | ${x.fails} | ${goal ? goalTxt : ''} | ${goal ? met(x) : ''} |`);
      }
    }
    L.push('', `Init Duration is from the REPORT line (X-Amz-Log-Type: Tail), i.e. the handler import inside the instance; warm GET /hello for comparison: see 2a "2nd request".`, '');
  }
  const sc = results.scale;
  if (sc) {
    L.push(`### 3. Nimbus scale 0 -> ${p.SCALE_N}: ${p.SCALE_N} concurrent GET /sleep (handler sleeps ${SLEEP_MS} ms, 128 MB, reservedConcurrency unset), fresh connections, --host-memory-share ${p.SCALE_SHARE ?? '0.8'}`, '');
    L.push('| trial | function | warm pool | server | all answered after ms | minus the 1000 ms sleep | goal < 3000 ms | errors (goal 0) | answers | client latency p50 / max ms | function Duration p50 / p99 ms (sleep 1000) | peak instances (platform) | peak runtime processes |');
    L.push('|---|---|---|---|---:|---:|---|---:|---|---:|---:|---:|---:|');
    for (const t of sc) {
      const pool = t.pool ?? 'default (2)';
      L.push(`| ${t.trial} | ${t.lang === 'py' ? 'Python' : 'Node.js'} | ${pool}${Number.isFinite(t.poolFillMs) ? ` (filled in ${C.fmt(t.poolFillMs / 1000, 1)} s before)` : ''} | ${t.pinned ? `pinned to CPU ${p.SERVER_CPU}` : 'unpinned (2 CPUs, client shares them)'} | ${C.fmt(t.totalMs, 0)} | **${C.fmt(t.overheadMs, 0)}** | ${t.overheadMs < 3000 ? 'met' : '**missed**'} | **${t.errors}** | ${Object.entries(t.kinds).map(([k, v]) => `${k}: ${v}`).join(', ')} | ${C.fmt(t.p50, 0)} / ${C.fmt(t.max, 0)} | ${C.fmt(t.metrics?.p50Ms, 0)} / ${C.fmt(t.metrics?.p99Ms, 0)} | ${t.peakInstances} | ${t.peakProcs} |`);
    }
    L.push('');
  }
  const m = results.memory;
  if (m) {
    const mb = (kb) => C.fmt(kb / 1024, 1);
    L.push(`### 4. Idle memory (PSS from /proc/PID/smaps_rollup, summed over the process tree; instance found by ${m.method})`, '');
    L.push('| what | PSS MB | USS MB (private) | RSS MB | processes | goal | met? |');
    L.push('|---|---:|---:|---:|---:|---|---|');
    for (const [lang, goal] of [['node', 10], ['py', 6]]) {
      const b = m.byLang[lang];
      const inst = b.instances[0];
      L.push(`| one idle ${lang === 'node' ? 'Node.js' : 'Python'} instance (after 1 request) | **${mb(b.instancePssKb)}** | ${mb(b.instanceUssKb)} | ${mb(b.instanceRssKb)} | ${inst ? inst.per.map((x) => x.comm).join(' + ') : 'n/a'} | ≤ ${goal} MB | ${b.instancePssKb / 1024 <= goal ? 'yes' : '**no**'} |`);
      L.push(`| a pre-warmed ${lang === 'node' ? 'Node.js' : 'Python'} runtime (pool, before INIT) | ${mb(b.pooledPssKb)} | ${mb(b.pooledUssKb)} | | ${b.pooled.length} waiting | | |`);
      const n = m.atScale?.[lang];
      if (n) L.push(`| each of ${n.n} idle ${lang === 'node' ? 'Node.js' : 'Python'} instances of one function (mean) | **${mb(n.pssKb)}** | ${mb(n.ussKb)} | ${mb(n.rssKb)} | | ≤ ${goal} MB | ${n.pssKb / 1024 <= goal ? 'yes' : '**no**'} |`);
    }
    L.push(`| the Nimbus platform process (nimbus dev, node) | **${mb(m.platform.pssKb)}** | ${mb(m.platform.ussKb)} | ${mb(m.platform.rssKb)} | 1 | | |`);
    L.push('', `PSS splits each shared page among the processes mapping it, so it depends on what else runs: at measurement time ${m.sharing?.node} \`node\` and ${m.sharing?.python} \`python*\` processes were alive on this machine (all of Nimbus's, plus other workloads'). USS (private pages, freed when the instance exits) does not depend on that.`, '');
  }
  const b = results.breakdown;
  if (b) {
    const v = (lang, k, f = 'ms') => C.fmt(b[lang]?.[k]?.[f], 1);
    L.push(`### 5. Where a Nimbus cold start goes: dist/src/sandbox timed step by step (bench/peers/breakdown.mjs, pinned to CPU ${p.SERVER_CPU}, median of ${b.runs})`, '');
    L.push('| step | Node.js ms | Python ms |', '|---|---:|---:|');
    const rows = [
      ['interpreter floor: spawn -> exit of `node -e 0` / `python3 -c pass`', 'floor'],
      ['fresh instance, no sandbox, no cgroups: spawn -> READY', 'freshPlain'],
      ['fresh instance in bubblewrap: spawn -> READY', 'freshBwrap'],
      ['fresh instance, bubblewrap + cgroups (nimbus dev when the pool is empty): spawn -> READY', 'freshFull'],
      ['pooled runtime (booted, waiting), no cgroups: Instance.start -> READY', 'pooledNoLimits'],
      ['pooled runtime waiting in its own cgroups (nimbus dev): Instance.start -> READY', 'pooledFull'],
    ];
    for (const [what, k] of rows) L.push(`| ${what} | ${v('node', k)} | ${v('py', k)} |`);
    L.push(`| … of which Instance.start() itself, synchronous (claim, bookkeeping, INIT written; on one core it may include the runtime's own work) | ${v('node', 'pooledFull', 'startSyncMs')} | ${v('py', 'pooledFull', 'startSyncMs')} |`);
    L.push(`| … of which the claim of its prepared cgroups alone (memory size written) | ${v('node', 'claim')} | ${v('py', 'claim')} |`);
    L.push(`| (for comparison: a full cgroup attach + CPU quota, as for a fresh process, on a sleeping process) | ${v('node', 'attach')} | ${v('py', 'attach')} |`);
    L.push(`| … of which handler import in the runtime (Init Duration) | ${v('node', 'pooledFull', 'initMs')} | ${v('py', 'pooledFull', 'initMs')} |`);
    L.push(`| (for comparison: \`delete process.env.TZ\` inside the sandbox, which the Node runtime avoids; ICU scans /usr/share/zoneinfo) | ${v('node', 'tzReset')} | – |`);
    L.push(`| first INVOKE -> RESULT on that instance / second | ${v('node', 'pooledFull', 'invoke1')} / ${v('node', 'pooledFull', 'invoke2')} | ${v('py', 'pooledFull', 'invoke1')} / ${v('py', 'pooledFull', 'invoke2')} |`);
    L.push(`| pooled + cgroups: Instance.start -> first RESULT | ${v('node', 'pooledFull', 'firstAnswerMs')} | ${v('py', 'pooledFull', 'firstAnswerMs')} |`);
    L.push(`| the same while a replacement runtime boots beside it (a pool refill with no delay) | ${v('node', 'pooledRefill', 'firstAnswerMs')} | ${v('py', 'pooledRefill', 'firstAnswerMs')} |`);
    L.push('');
    const s = b.startup ?? {};
    L.push(`\`nimbus dev\` start-up, step by step (fresh process each, median of 5): node boot ${C.fmt(s.bootMs)} ms, import of the CLI's modules ${C.fmt(s.importMs)} ms, `
      + `detectHostRuntimes (\`python3 -c …\` through PATH) ${C.fmt(s.hostRuntimesMs)} ms, detectLimitEnforcer ${C.fmt(s.limitsMs)} ms, loadServiceConfig ${C.fmt(s.configMs)} ms, `
      + `detectIsolation (\`bwrap … /bin/true\`) ${C.fmt(s.isolationMs)} ms; esbuild of examples/typescript-api's 6 handlers ${C.fmt(s.esbuildTsMs)} ms.`, '');
  }
  return L.join('\n');
}

// ---- main ---------------------------------------------------------------------------------

(async () => {
  if (REPORT_ONLY) {
    Object.assign(results, JSON.parse(fs.readFileSync(path.join(OUT, 'results.json'), 'utf8')));
    env.MACHINE_INFO ??= results.machineInfo;
    env.NIMBUS_SOURCE ??= results.nimbusSource;
    process.stdout.write(report() + '\n');
    return;
  }
  results.machineInfo = env.MACHINE_INFO;
  results.nimbusSource = env.NIMBUS_SOURCE;
  const phases = { steady, cold, zero, scale, memory, breakdown };
  for (const ph of PHASES) {
    if (!phases[ph]) throw new Error(`unknown phase ${ph}`);
    if (ph !== 'steady' && ph !== 'cold' && ONLY.length && !ONLY.some((o) => o.startsWith('nimbus'))) continue;
    log(`\n== phase ${ph}`);
    const t = C.now();
    try { await phases[ph](); } catch (e) { results[`${ph}Error`] = String(e.stack || e); log(`[${ph}] FAILED: ${e.stack || e}`); }
    log(`== phase ${ph} took ${C.fmt((C.now() - t) / 1000, 0)} s`);
  }
  for (const f of fs.readdirSync(LOG).filter((f) => /nimbus.*\.log$/.test(f))) {
    const text = fs.readFileSync(path.join(LOG, f), 'utf8');
    const lim = /^Limits: (.*)$/m.exec(text)?.[1];
    const iso = /^Isolation: (.*)$/m.exec(text)?.[1];
    if (lim && iso) { results.nimbusInfo = `limits: ${lim}; isolation: ${iso}`; break; }
  }
  results.finishedAt = new Date().toISOString();
  saveJson();
  const md = report();
  fs.writeFileSync(path.join(OUT, 'results.md'), md + '\n');
  process.stdout.write(md + '\n');
})().catch((e) => { console.error(e); process.exit(1); });
