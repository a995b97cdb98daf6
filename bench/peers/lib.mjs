// Helpers for bench/peers/run.mjs, ported from ../shared/bench-peers/lib/common.js:
// spawning pinned servers in their own process group, polling for the first good
// response, process trees from /proc, RSS / PSS, the machine-speed probe and the
// foreign-CPU-load detector (this machine is shared with other workloads).
import fs from 'node:fs';
import http from 'node:http';
import { spawn } from 'node:child_process';

export const SERVER_CPU = process.env.SERVER_CPU ?? '0';
export const CLIENT_CPU = process.env.CLIENT_CPU ?? '1';
export const PIN = process.env.PIN !== '0';

export const now = () => Number(process.hrtime.bigint()) / 1e6; // ms
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const median = (a) => {
  if (!a.length) return NaN;
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
/** Nearest-rank percentile (p in 0..100). */
export const pct = (a, p) => {
  if (!a.length) return NaN;
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};
export const pinned = (cpu, cmd, args) => (PIN ? { cmd: 'taskset', args: ['-c', String(cpu), cmd, ...args] } : { cmd, args });

/** The environment every server gets: ours without NODE_EXTRA_CA_CERTS / NODE_OPTIONS (see NOTES.md of the shared harness). */
export function cleanEnv(extra = {}) {
  const env = { ...process.env, ...extra };
  delete env.NODE_EXTRA_CA_CERTS;
  delete env.NODE_OPTIONS;
  return env;
}

/** One request on a fresh connection (no agent). Resolves {status, body, headers, ms, t0}; rejects on socket errors. */
export function request(port, { path = '/hello', method = 'GET', headers = {}, body, timeoutMs = 30000 } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = now();
    const req = http.request({ host: '127.0.0.1', port, path, method, headers, agent: false, timeout: timeoutMs }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, body: text, headers: res.headers, ms: now() - t0, t0 }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}
export const get = (port, path = '/hello', timeoutMs = 30000) => request(port, { path, timeoutMs });

/** A good hello answer: 200 and JSON with message "hello" (examples/typescript-api answers without `path`). */
export function okBody(r) {
  if (r.status !== 200) return false;
  try { return JSON.parse(r.body).message === 'hello'; } catch { return false; }
}

/** Polls GET `path` every `intervalMs` on fresh connections until a good answer; returns it (with its t0). */
export async function waitFirstOk(port, deadlineMs, child, { path = '/hello', intervalMs = 2 } = {}) {
  const end = now() + deadlineMs;
  let last;
  while (now() < end) {
    if (child && (child.exitCode !== null || child.signalCode !== null)) throw new Error(`server exited early (code ${child.exitCode ?? child.signalCode})`);
    try {
      const r = await get(port, path, Math.max(1000, end - now()));
      if (okBody(r)) return r;
      last = `status ${r.status}`;
    } catch (e) { last = e.code || e.message; }
    await sleep(intervalMs);
  }
  throw new Error(`no good answer on :${port}${path} within ${deadlineMs} ms (last: ${last})`);
}

/** Polls until GET `path` answers 200 (any body). */
export async function waitStatus200(port, path, deadlineMs, child, intervalMs = 5) {
  const end = now() + deadlineMs;
  let last;
  while (now() < end) {
    if (child && (child.exitCode !== null || child.signalCode !== null)) throw new Error(`server exited early (code ${child.exitCode ?? child.signalCode})`);
    try { const r = await get(port, path, 2000); if (r.status === 200) return r; last = `status ${r.status}`; } catch (e) { last = e.code || e.message; }
    await sleep(intervalMs);
  }
  throw new Error(`:${port}${path} not 200 within ${deadlineMs} ms (last: ${last})`);
}

// ---- servers ------------------------------------------------------------------------------

/** Servers we spawned and have not stopped; on exit every process of their trees gets SIGKILL. */
const live = new Set();
const pidFile = process.env.PEERS_PIDFILE;
function writePids() {
  if (!pidFile) return;
  try { fs.writeFileSync(pidFile, [...live].map((c) => c.pid).join('\n') + '\n'); } catch { /* best effort */ }
}
export function killAllNow() {
  for (const c of live) {
    const pids = tree(c.pid);
    try { process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ }
    for (const p of pids) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
  }
  live.clear();
  writePids();
}
process.on('exit', killAllNow);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => process.exit(130));

/** Spawns `cfg.cmd cfg.args` pinned to SERVER_CPU (children inherit the pin), in its own process group. */
export function startServer(cfg, logFile, { cpu = SERVER_CPU, pin = true } = {}) {
  const { cmd, args } = pin ? pinned(cpu, cfg.cmd, cfg.args) : { cmd: cfg.cmd, args: cfg.args };
  const out = fs.openSync(logFile, 'a');
  const child = spawn(cmd, args, { cwd: cfg.cwd, env: cleanEnv(cfg.env), stdio: ['ignore', out, out], detached: true });
  fs.closeSync(out);
  live.add(child);
  writePids();
  child.once('exit', () => { live.delete(child); writePids(); });
  return child;
}

/**
 * Stops a server: SIGTERM to its process group, then SIGKILL to the group and to every
 * process that was in its tree (Nimbus's instances run in their own sessions via bwrap
 * --new-session, so they are not in the server's process group).
 */
export async function stopServer(child, graceMs = 5000) {
  if (!child) return;
  const pids = tree(child.pid);
  if (child.exitCode === null && child.signalCode === null) {
    const gone = new Promise((r) => child.once('exit', r));
    try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ }
    const t = await Promise.race([gone.then(() => 'exit'), sleep(graceMs).then(() => 'timeout')]);
    if (t === 'timeout') { try { process.kill(-child.pid, 'SIGKILL'); } catch { } await Promise.race([gone, sleep(2000)]); }
  }
  for (const p of pids) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
  live.delete(child);
  writePids();
}

export async function waitPortFree(port, maxMs = 8000) {
  const end = now() + maxMs;
  while (now() < end) {
    try { await get(port, '/', 200); } catch (e) { if (e.code === 'ECONNREFUSED') return; }
    await sleep(50);
  }
  throw new Error(`port ${port} still busy`);
}

export function run(cmd, args, opts = {}) {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    c.stdout.on('data', (d) => { out += d; });
    c.stderr.on('data', (d) => { err += d; });
    c.on('error', (e) => resolve({ code: -1, out, err: err + String(e) }));
    c.on('close', (code) => resolve({ code, out, err }));
  });
}

// ---- /proc ---------------------------------------------------------------------------------

export function procStat(pid) {
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = st.slice(st.lastIndexOf(')') + 2).split(' ');
    return { pid, comm: st.slice(st.indexOf('(') + 1, st.lastIndexOf(')')), ppid: Number(rest[1]), utime: Number(rest[11]), stime: Number(rest[12]),
      cutime: Number(rest[13]), cstime: Number(rest[14]), starttime: Number(rest[19]) };
  } catch { return null; }
}
function childrenMap() {
  const kids = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const s = procStat(d);
    if (!s) continue;
    if (!kids.has(s.ppid)) kids.set(s.ppid, []);
    kids.get(s.ppid).push(Number(d));
  }
  return kids;
}
/** `pid` and all its descendants. */
export function tree(pid, kids = childrenMap()) {
  const out = [pid];
  for (let i = 0; i < out.length; i++) out.push(...(kids.get(out[i]) || []));
  return out;
}
/** Direct children of `pid`. */
export function children(pid) { return childrenMap().get(pid) || []; }
export function cmdline(pid) {
  try { return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean); } catch { return []; }
}
export function statusKb(pid, field) {
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) : 0;
  } catch { return 0; }
}
/** Proportional set size in kB from /proc/PID/smaps_rollup (0 when gone). */
export function pssKb(pid) {
  try {
    const m = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').match(/^Pss:\s+(\d+) kB/m);
    return m ? Number(m[1]) : 0;
  } catch { return 0; }
}
export function rollup(pid) {
  const o = {};
  try {
    for (const l of fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').split('\n')) {
      const m = /^(\w+):\s+(\d+) kB/.exec(l);
      if (m) o[m[1]] = Number(m[2]);
    }
  } catch { /* gone */ }
  return o;
}
export const treeRssMb = (pid) => tree(pid).reduce((s, p) => s + statusKb(p, 'VmRSS'), 0) / 1024;
/** CPU ticks (utime + stime) of a process itself, and of its live descendants. */
export function cpuTicks(pid) {
  const kids = childrenMap();
  const own = procStat(pid);
  let desc = 0;
  for (const p of tree(pid, kids).slice(1)) { const s = procStat(p); if (s) desc += s.utime + s.stime; }
  return { own: own ? own.utime + own.stime : 0, desc };
}
export function rssSampler(pid, everyMs = 100) {
  let peak = 0;
  const tick = () => { peak = Math.max(peak, treeRssMb(pid)); };
  tick();
  const h = setInterval(tick, everyMs);
  return { stop() { clearInterval(h); tick(); return peak; } };
}

// ---- machine speed and foreign load --------------------------------------------------------

const CAL_JS = 'let x=0;const t=process.hrtime.bigint();for(let i=0;i<1e7;i++){x=(x+i*7)%1000003}' +
  'console.log(Number(process.hrtime.bigint()-t)/1e6, x)';
/** Machine-speed probe: a fixed 1e7-iteration ALU loop in a fresh node pinned to `cpu`; loop ms. */
export async function calibrate(cpu = SERVER_CPU) {
  const { cmd, args } = pinned(cpu, process.execPath, ['-e', CAL_JS]);
  const r = await run(cmd, args, { env: cleanEnv() });
  return Number(r.out.trim().split(' ')[0]);
}
export function cpuStat() {
  const o = {};
  for (const l of fs.readFileSync('/proc/stat', 'utf8').split('\n')) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(l);
    if (m) o[m[1]] = m[2].trim().split(/\s+/).map(Number);
  }
  return o;
}
export function stealPct(a, b, cpu) {
  const x = a[cpu], y = b[cpu];
  if (!x || !y) return NaN;
  const tot = y.reduce((s, v, i) => s + v - x[i], 0) - ((y[8] || 0) - (x[8] || 0)) - ((y[9] || 0) - (x[9] || 0));
  return tot > 0 ? (100 * ((y[7] || 0) - (x[7] || 0))) / tot : NaN;
}
const CLK_TCK = 100;
function procSnapshot() {
  const m = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const s = procStat(d);
    if (s) m.set(Number(d), { ppid: s.ppid, t: s.utime + s.stime, comm: s.comm });
  }
  return m;
}
function mineSet(snap) {
  const roots = [Number(process.env.BENCH_ROOT_PID || 0), process.pid].filter(Boolean);
  const kids = new Map();
  for (const [pid, p] of snap) { if (!kids.has(p.ppid)) kids.set(p.ppid, []); kids.get(p.ppid).push(pid); }
  const out = new Set(roots);
  const q = [...roots];
  while (q.length) for (const k of kids.get(q.pop()) || []) if (!out.has(k)) { out.add(k); q.push(k); }
  return out;
}
/** CPU used by processes that are not ours (not descendants of BENCH_ROOT_PID), in % of one CPU. */
export function foreignSampler(everyMs = 250) {
  let prev = procSnapshot();
  let ticks = 0;
  const byCmd = new Map();
  const t0 = now();
  const tick = () => {
    const cur = procSnapshot();
    const mine = mineSet(cur);
    for (const [pid, p] of cur) {
      if (mine.has(pid) || pid <= 2 || p.ppid === 2) continue;
      const q = prev.get(pid);
      const d = q ? p.t - q.t : p.t;
      if (d > 0) { ticks += d; byCmd.set(p.comm, (byCmd.get(p.comm) || 0) + d); }
    }
    prev = cur;
  };
  const h = setInterval(tick, everyMs);
  return {
    stop() {
      clearInterval(h); tick();
      const secs = Math.max(0.001, (now() - t0) / 1000);
      return { pct: (100 * ticks) / CLK_TCK / secs, top: [...byCmd].sort((x, y) => y[1] - x[1]).slice(0, 5) };
    },
  };
}
/** Waits (at most maxMs) until `cpu` is nearly idle and nothing foreign burns CPU. Returns ms waited. */
export async function waitQuiet(cpu = SERVER_CPU, { maxBusyPct = 10, maxForeignPct = 5, windowMs = 300, maxMs = 3000 } = {}) {
  const t0 = now();
  while (now() - t0 < maxMs) {
    const a = cpuStat(); const fsm = foreignSampler(1e9); await sleep(windowMs); const b = cpuStat(); const f = fsm.stop();
    const x = a[cpu], y = b[cpu];
    if (!x || !y) return now() - t0;
    const d = y.map((v, i) => v - x[i]);
    const total = d.slice(0, 8).reduce((p, v) => p + v, 0);
    const busy = total > 0 ? (100 * (total - d[3] - d[4])) / total : 0;
    if (busy <= maxBusyPct && f.pct <= maxForeignPct) return now() - t0;
  }
  return now() - t0;
}
export const FOREIGN_MAX_PCT = Number(process.env.FOREIGN_MAX_PCT || 10);

// ---- formatting ----------------------------------------------------------------------------

export const fmt = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
export const fmtInt = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a');
export const ratio = (x, base, d = 2) => (Number.isFinite(x) && Number.isFinite(base) && base > 0 ? `${(x / base).toFixed(d)}×` : 'n/a');
