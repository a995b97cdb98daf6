/**
 * Memory and process limits for instances, behind one interface (workerd's
 * `limit-enforcer.h` is the model). What the host allows is detected once:
 *
 * - cgroup v2 (`/sys/fs/cgroup/cgroup.controllers` lists `memory`):
 *   `memory.max`, `memory.swap.max = 0`, `memory.oom.group`, `pids.max`;
 *   an OOM kill shows in `memory.events` as `oom_kill`.
 * - cgroup v1 (`/sys/fs/cgroup/memory` writable): `memory.limit_in_bytes`
 *   (and `memory.memsw.limit_in_bytes` where swap accounting is on), `pids.max`;
 *   an OOM kill shows in `memory.oom_control` as `oom_kill`.
 * - neither: the platform samples each busy instance's resident set
 *   (`/proc/<pid>/statm`) and kills it past its memory size.
 *
 * See ../shared/notes/isolation.md for what was measured on this machine kind.
 */
import { mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync, existsSync, accessSync, constants } from 'node:fs';
import { join } from 'node:path';

/** Limits applied to one instance; `release()` after the process has exited. */
export interface InstanceLimits {
  /** True when the kernel killed the instance for going over its memory limit. */
  wasOomKilled(): boolean;
  /** Kills every process of the instance (the cgroup's members). */
  killAll(): void;
  /**
   * True when the instance's anonymous memory is within 3% of its limit.
   * At the limit the kernel may reclaim file pages for a long time before it
   * kills (worse under a small CPU quota); the platform kills it itself then.
   */
  atMemoryLimit?(): boolean;
  /**
   * Puts the CPU quota in force. The init phase runs without it, so a small
   * function's cold start is not slowed down (Lambda, too, gives init more CPU
   * than a 128 MB invocation gets).
   */
  startCpuQuota?(): void;
  /** Moves any process of the instance still outside its cgroups in (called once init is done and the tree is settled). */
  adopt?(): void;
  /** Peak memory the instance's cgroup saw, in MB (read after a crash, when the runtime could not report it). */
  peakMemoryMB?(): number | undefined;
  release(): void;
}

/**
 * The cgroups of a pooled runtime process, made while it waits for a function
 * (see `LimitEnforcer.prepare`), so that claiming it only sets the memory size.
 */
export interface PreparedLimits {
  /** Moves any process of the tree still outside in; call once the runtime has booted (its HELLO), off the cold-start path. */
  adopt(): void;
  /**
   * Sets the function's memory size and returns the instance's limits.
   * Throws when the kernel refuses (the caller then falls back to `attach`).
   */
  claim(memoryMB: number): InstanceLimits;
  /** Removes the groups of a process that exited unclaimed. */
  release(): void;
}

/** The host's way of limiting instances, chosen once at start. */
export interface LimitEnforcer {
  /** `cgroup-v2`, `cgroup-v1` or `rss-sampling`. */
  readonly kind: 'cgroup-v2' | 'cgroup-v1' | 'rss-sampling';
  /** One line for the start-up log: what is in force. */
  readonly description: string;
  /** Puts process `pid` under a memory limit of `memoryMB` MB (and a pids limit). */
  attach(pid: number, instanceId: string, memoryMB: number): InstanceLimits;
  /**
   * Puts a pooled runtime process, spawned a moment ago, into cgroups of its
   * own before any function claims it: memory limited to POOL_MEMORY_MB,
   * pids.max, no CPU quota yet. Cgroup v1 migrations and the walk over the
   * process tree cost milliseconds; done here, they are off the cold start.
   * Absent for `rss-sampling`.
   */
  prepare?(pid: number, name: string): PreparedLimits;
  /** Removes the platform's parent cgroups once every instance has exited (waits up to ~2 s). */
  close(): Promise<void>;
}

/**
 * Memory limit of a pooled runtime process until a function claims it: the
 * smallest memory size Lambda allows. The runtime alone uses ~10-45 MB.
 */
export const POOL_MEMORY_MB = 128;

/** Most processes/threads one instance may have (Node itself needs ~12; notes/isolation.md). */
export const PIDS_MAX = 256;

const MB = 1024 * 1024;

/** Lambda gives one full vCPU at 1,769 MB and scales CPU with memory. https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html */
export const MB_PER_VCPU = 1769;
const CPU_PERIOD_US = 100_000;

/** CPU quota in µs per 100 ms period for a memory size: 1024 MB → 57,886 µs (0.58 CPU); at least 1 ms. */
export function cpuQuotaUs(memoryMB: number): number {
  return Math.max(1000, Math.round((CPU_PERIOD_US * memoryMB) / MB_PER_VCPU));
}

/**
 * Detects what the host allows and returns the strongest enforcer.
 * `group` names the platform's parent cgroup (one per platform process).
 */
export function detectLimitEnforcer(group = `nimbus-${process.pid}-${++enforcers}`): LimitEnforcer {
  return tryCgroupV2(group) ?? tryCgroupV1(group) ?? rssSampling('no writable memory cgroup on this host');
}

let enforcers = 0;

/**
 * Removes parent cgroups left by platforms that died without cleaning up
 * (`kill -9`): `nimbus-<pid>-<n>` whose pid is gone. Their instances died
 * with them only if killed too, so a group that still has members is kept.
 */
function sweepStale(root: string): void {
  let names: string[];
  try { names = readdirSync(root); } catch { return; }
  for (const name of names) {
    const m = /^nimbus-(\d+)(?:-\d+)?$/.exec(name);
    if (!m || Number(m[1]) === process.pid || isAlive(Number(m[1]))) continue;
    const parent = join(root, name);
    try {
      for (const child of readdirSync(parent, { withFileTypes: true })) if (child.isDirectory()) rmdirSync(join(parent, child.name));
      rmdirSync(parent);
    } catch { /* still in use */ }
  }
}

function isAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

/** rmdir each folder (children first), retrying while their processes are being reaped. */
async function removeAll(dirs: string[]): Promise<void> {
  for (let attempt = 0; attempt < 40; attempt++) {
    let left = 0;
    for (const dir of dirs) {
      let children: string[] = [];
      try { children = readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => join(dir, d.name)); } catch { continue; }
      for (const c of children) { try { rmdirSync(c); } catch { /* busy */ } }
      try { rmdirSync(dir); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'ENOENT') left++; }
    }
    if (left === 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

function writable(path: string): boolean {
  try { accessSync(path, constants.W_OK); return true; } catch { return false; }
}

/**
 * The cgroup v2 enforcer under `root` (the unified hierarchy's mount point),
 * or null when its memory controller is missing or not writable. Exported
 * for tests, which run it against a folder laid out as cgroupfs.
 */
export function tryCgroupV2(group: string, root = '/sys/fs/cgroup'): LimitEnforcer | null {
  try {
    const controllers = readFileSync(join(root, 'cgroup.controllers'), 'utf8');
    if (!/\bmemory\b/.test(controllers) || !writable(root)) return null;
    const wanted = /\bcpu\b/.test(controllers) ? '+memory +pids +cpu' : '+memory +pids';
    writeFileSync(join(root, 'cgroup.subtree_control'), wanted);
    sweepStale(root);
    const parent = join(root, group);
    mkdirSync(parent, { recursive: true });
    writeFileSync(join(parent, 'cgroup.subtree_control'), wanted);
  } catch {
    return null;
  }
  const parent = join(root, group);
  return {
    kind: 'cgroup-v2',
    description: `cgroup v2 at ${parent}: memory.max = memorySize, no swap, pids.max = ${PIDS_MAX}, cpu.max = memorySize / ${MB_PER_VCPU} MB per CPU`,
    attach(pid, instanceId, memoryMB) {
      const dir = makeGroupV2(parent, instanceId, memoryMB);
      enter([dir], pid, true);
      return limitsV2(dir, pid, memoryMB, () => false);
    },
    prepare(pid, name) {
      const dir = makeGroupV2(parent, name, POOL_MEMORY_MB);
      enter([dir], pid, true);
      let settled = false;
      return {
        adopt: () => { try { enter([dir], pid); settled = true; } catch { /* gone */ } },
        claim: (memoryMB) => {
          writeFileSync(join(dir, 'memory.max'), String(memoryMB * MB));
          return limitsV2(dir, pid, memoryMB, () => settled);
        },
        release: () => removeLater(dir),
      };
    },
    close: () => removeAll([parent]),
  };
}

/** Makes the v2 group `parent/name` with the instance limits (memory `memoryMB`). */
function makeGroupV2(parent: string, name: string, memoryMB: number): string {
  const dir = join(parent, name);
  mkdirSync(dir);
  trySet(join(dir, 'memory.max'), String(memoryMB * MB));
  trySet(join(dir, 'memory.swap.max'), '0');
  trySet(join(dir, 'memory.oom.group'), '1');
  trySet(join(dir, 'pids.max'), String(PIDS_MAX));
  return dir;
}

/** The limits of an instance in the v2 group `dir`; `settled()`: the tree is known to be inside (adopt has nothing to do). */
function limitsV2(dir: string, pid: number, memoryMB: number, settled: () => boolean): InstanceLimits {
  const limit = memoryMB * MB;
  return {
    wasOomKilled: () => /\boom_kill [1-9]/.test(readOr(join(dir, 'memory.events'))),
    killAll: () => trySet(join(dir, 'cgroup.kill'), '1'),
    startCpuQuota: () => trySet(join(dir, 'cpu.max'), `${cpuQuotaUs(memoryMB)} ${CPU_PERIOD_US}`),
    peakMemoryMB: () => toMB(readOr(join(dir, 'memory.peak'))),
    adopt: () => { if (!settled()) try { enter([dir], pid); } catch { /* gone */ } },
    atMemoryLimit: () => Number(readOr(join(dir, 'memory.current'))) >= limit * NEAR_LIMIT
      && statValue(join(dir, 'memory.stat'), 'anon') >= limit * NEAR_LIMIT,
    release: () => removeLater(dir),
  };
}

function tryCgroupV1(group: string): LimitEnforcer | null {
  const memRoot = '/sys/fs/cgroup/memory';
  const pidsRoot = '/sys/fs/cgroup/pids';
  if (!existsSync(join(memRoot, 'memory.limit_in_bytes')) || !writable(memRoot)) return null;
  const memParent = join(memRoot, group);
  const cpuRoot = '/sys/fs/cgroup/cpu';
  const pidsParent = existsSync(pidsRoot) && writable(pidsRoot) ? join(pidsRoot, group) : null;
  const cpuParent = existsSync(join(cpuRoot, 'cpu.cfs_quota_us')) && writable(cpuRoot) ? join(cpuRoot, group) : null;
  try {
    mkdirSync(memParent, { recursive: true });
    if (pidsParent) mkdirSync(pidsParent, { recursive: true });
    if (cpuParent) mkdirSync(cpuParent, { recursive: true });
  } catch {
    return null;
  }
  sweepStale(memRoot);
  if (pidsParent) sweepStale(pidsRoot);
  if (cpuParent) sweepStale(cpuRoot);
  const swapAccounting = existsSync(join(memParent, 'memory.memsw.limit_in_bytes'));
  interface GroupsV1 { mem: string; pids: string | null; cpu: string | null }
  const makeGroupsV1 = (name: string, memoryMB: number): GroupsV1 => {
    const mem = join(memParent, name);
    mkdirSync(mem);
    writeFileSync(join(mem, 'memory.limit_in_bytes'), String(memoryMB * MB));
    if (swapAccounting) trySet(join(mem, 'memory.memsw.limit_in_bytes'), String(memoryMB * MB));
    const pids = pidsParent ? makeGroup(pidsParent, name, { 'pids.max': String(PIDS_MAX) }) : null;
    const cpu = cpuParent ? makeGroup(cpuParent, name, { 'cpu.cfs_period_us': String(CPU_PERIOD_US), 'cpu.cfs_quota_us': '-1' }) : null;
    return { mem, pids, cpu };
  };
  /** Moves the tree into the memory group (which must work) and the others (which may not: limits without them). */
  const enterV1 = (g: GroupsV1, pid: number, fresh = false): void => {
    enter([g.mem, ...(g.pids ? [g.pids] : []), ...(g.cpu ? [g.cpu] : [])], pid, fresh);
  };
  const releaseV1 = (g: GroupsV1): void => {
    removeLater(g.mem);
    if (g.pids) removeLater(g.pids);
    if (g.cpu) removeLater(g.cpu);
  };
  const limitsV1 = (g: GroupsV1, pid: number, memoryMB: number, settled: () => boolean): InstanceLimits => {
    const limit = memoryMB * MB;
    const { mem, cpu } = g;
    return {
      wasOomKilled: () => /\boom_kill [1-9]/.test(readOr(join(mem, 'memory.oom_control'))),
      startCpuQuota: () => { if (cpu) trySet(join(cpu, 'cpu.cfs_quota_us'), String(cpuQuotaUs(memoryMB))); },
      peakMemoryMB: () => toMB(readOr(join(mem, 'memory.max_usage_in_bytes'))),
      adopt: () => { if (!settled()) try { enterV1(g, pid); } catch { /* gone */ } },
      atMemoryLimit: () => Number(readOr(join(mem, 'memory.usage_in_bytes'))) >= limit * NEAR_LIMIT
        && statValue(join(mem, 'memory.stat'), 'rss') >= limit * NEAR_LIMIT,
      killAll: () => {
        for (const p of readOr(join(mem, 'cgroup.procs')).split('\n')) {
          if (p) try { process.kill(Number(p), 'SIGKILL'); } catch { /* gone */ }
        }
      },
      release: () => releaseV1(g),
    };
  };
  return {
    kind: 'cgroup-v1',
    description: `cgroup v1 at ${memParent}: memory.limit_in_bytes = memorySize${swapAccounting ? ', memsw too' : ''}${pidsParent ? `, pids.max = ${PIDS_MAX}` : ''}${cpuParent ? `, cpu quota = memorySize / ${MB_PER_VCPU} MB per CPU` : ''}`,
    attach(pid, instanceId, memoryMB) {
      const g = makeGroupsV1(instanceId, memoryMB);
      enterV1(g, pid, true);
      return limitsV1(g, pid, memoryMB, () => false);
    },
    prepare(pid, name) {
      const g = makeGroupsV1(name, POOL_MEMORY_MB);
      enterV1(g, pid, true);
      let settled = false;
      let limitMB = POOL_MEMORY_MB;
      return {
        adopt: () => { try { enterV1(g, pid); settled = true; } catch { /* gone */ } },
        claim: (memoryMB) => {
          // memsw may never be below the memory limit: raise memsw first, lower it last.
          const files = [join(g.mem, 'memory.limit_in_bytes'), ...(swapAccounting ? [join(g.mem, 'memory.memsw.limit_in_bytes')] : [])];
          for (const f of memoryMB >= limitMB ? files.reverse() : files) writeFileSync(f, String(memoryMB * MB));
          limitMB = memoryMB;
          return limitsV1(g, pid, memoryMB, () => settled);
        },
        release: () => releaseV1(g),
      };
    },
    close: () => removeAll([memParent, pidsParent, cpuParent].filter((d): d is string => d !== null)),
  };
}

/**
 * The fallback: an instance whose resident set passes its memory size is
 * killed by the platform's sampler (see `RssSampler` in instance.ts). Catches
 * gradual growth; an allocation faster than the sampling period can overshoot.
 */
export function rssSampling(reason: string): LimitEnforcer {
  return {
    kind: 'rss-sampling',
    description: `memory limit by sampling each busy instance's resident set every ${RSS_SAMPLE_MS} ms (${reason})`,
    attach() {
      return { wasOomKilled: () => false, killAll: () => {}, release: () => {} };
    },
    close: async () => {},
  };
}

/** Sampling period of the fallback memory limit, in ms. */
export const RSS_SAMPLE_MS = 20;

/**
 * `pid` and all its descendants (a sandboxed instance is bwrap plus the
 * interpreter it forked), read from /proc/<pid>/task/<tid>/children.
 */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    let tasks: string[] = [];
    try { tasks = readdirSync(`/proc/${out[i]}/task`); } catch { continue; }
    for (const t of tasks) {
      for (const c of readOr(`/proc/${out[i]}/task/${t}/children`).split(' ')) if (c.trim()) out.push(Number(c));
    }
  }
  return out;
}

/**
 * Moves `pid` and its descendants into each cgroup folder of `dirs` (the
 * first must take `pid`; the others may refuse). A process forked while the
 * tree is being walked would stay outside, so the walk is repeated until it
 * finds nothing new (a child forked after its parent moved is born inside).
 * `fresh`: the groups were just made, so nothing is inside yet. One walk
 * serves every group: each walk reads /proc for every thread.
 */
function enter(dirs: readonly string[], pid: number, fresh = false): void {
  // Moving a process costs a cgroup migration (milliseconds on v1): skip those already inside.
  const moved = dirs.map((d) => new Set<number>(fresh ? [] : readOr(join(d, 'cgroup.procs')).split('\n').filter(Boolean).map(Number)));
  const refused = new Set<number>();
  for (let pass = 0; pass < 10; pass++) {
    let added = 0;
    for (const p of processTree(pid)) {
      for (let i = 0; i < dirs.length; i++) {
        if (moved[i].has(p) || refused.has(i)) continue;
        try {
          writeFileSync(join(dirs[i], 'cgroup.procs'), String(p));
        } catch (e) {
          if (p === pid && i === 0) throw e;
          if (p === pid) { refused.add(i); continue; }
        }
        moved[i].add(p);
        added++;
      }
    }
    if (added === 0) return;
  }
}

/** Resident set size of `pid` in bytes, or 0 when it is gone. */
export function residentBytes(pid: number): number {
  let total = 0;
  for (const p of processTree(pid)) total += Number(readOr(`/proc/${p}/statm`).split(' ')[1] ?? 0) * 4096;
  return total;
}

/** Peak resident set (VmHWM) of the largest process under `pid`, in MB, or undefined when gone. */
export function peakResidentMB(pid: number): number | undefined {
  let peak = 0;
  for (const p of processTree(pid)) {
    const m = /VmHWM:\s+(\d+) kB/.exec(readOr(`/proc/${p}/status`));
    if (m) peak = Math.max(peak, Number(m[1]));
  }
  return peak ? Math.ceil(peak / 1024) : undefined;
}

/** Creates a v1 group `parent/name` with `settings`; null when the kernel refuses. */
function makeGroup(parent: string, name: string, settings: Record<string, string>): string | null {
  const dir = join(parent, name);
  try {
    mkdirSync(dir);
    for (const [file, value] of Object.entries(settings)) writeFileSync(join(dir, file), value);
    return dir;
  } catch {
    try { rmdirSync(dir); } catch { /* never made */ }
    return null;
  }
}

function toMB(bytes: string): number | undefined {
  const n = Number(bytes.trim());
  return n > 0 ? Math.ceil(n / MB) : undefined;
}

/** Share of the memory limit at which anonymous memory counts as "at the limit". */
const NEAR_LIMIT = 0.97;

/** One `name value` line of a cgroup stat file, or 0. */
function statValue(file: string, name: string): number {
  const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(readOr(file));
  return m ? Number(m[1]) : 0;
}

function trySet(path: string, value: string): void {
  try { writeFileSync(path, value); } catch { /* not supported by this kernel */ }
}

function readOr(path: string): string {
  try { return readFileSync(path, 'utf8'); } catch { return ''; }
}

/** A cgroup can be removed only once its processes are reaped; retry briefly. */
function removeLater(dir: string, attempt = 0): void {
  try {
    rmdirSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (attempt < 20) setTimeout(() => removeLater(dir, attempt + 1), 50).unref();
  }
}
