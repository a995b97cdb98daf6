/**
 * Filesystem, user and namespace isolation of instances, where the host
 * allows it (../shared/notes/isolation.md has what was measured):
 *
 * - bubblewrap (`bwrap`) gives each instance its own mount, pid, ipc, uts and
 *   cgroup namespaces, an environment cleared of the platform's, the system
 *   folders and the runtime read-only, the function's code read-only at
 *   `/var/task` (as on Lambda), a private `/tmp`, and no capabilities.
 * - started as root, the instance also drops to an unprivileged uid
 *   (65534, via `setpriv`) when that uid can read the code and the
 *   interpreter; else it stays uid 0 inside its namespaces, without capabilities.
 * - without bwrap, instances run as plain child processes (still with a clean
 *   environment and the cgroup limits); `nimbus dev` says so at start.
 *
 * The network namespace is shared: functions reach databases and APIs as
 * on Lambda.
 */
import { accessSync, constants, existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname, join, sep } from 'node:path';

/** Where a function's code is inside the sandbox, as on Lambda. */
export const SANDBOX_TASK_ROOT = '/var/task';
/** Where the runtime shim (runtimes/<language>) is inside the sandbox; Lambda's is /var/runtime. */
export const SANDBOX_RUNTIME_DIR = '/var/runtime';

/** What `detectIsolation` found and will apply. */
export interface Isolation {
  readonly kind: 'bwrap' | 'none';
  /** The uid instances run as (65534 when dropped, else the platform's own). */
  readonly uid: number | null;
  /** One line for the start-up log. */
  readonly description: string;
  /**
   * Wraps `command args` to run sandboxed with `codeDir` at /var/task.
   * Returns the command to spawn; `taskRoot` is the path of the code inside.
   */
  wrap(command: string, args: readonly string[], codeDir: string, runtimeDir: string, extraReadOnly: readonly string[]): { command: string; args: string[]; taskRoot: string };
  /** Maps a host path under `codeDir` to its path inside the sandbox. */
  inside(path: string, codeDir: string): string;
}

const NOBODY = 65534;

/** No isolation beyond a child process with a clean environment. */
export const NO_ISOLATION: Isolation = {
  kind: 'none',
  uid: null,
  description: 'instances run as plain child processes (install bubblewrap for filesystem and user isolation)',
  wrap: (command, args, codeDir) => ({ command, args: [...args], taskRoot: codeDir }),
  inside: (path) => path,
};

function which(cmd: string): string | null {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    const p = join(dir, cmd);
    try { accessSync(p, constants.X_OK); return p; } catch { /* next */ }
  }
  for (const p of [`/usr/bin/${cmd}`, `/bin/${cmd}`]) if (existsSync(p)) return p;
  return null;
}

/** True when every folder from / to `path` lets others through, and `path` lets others read. */
export function readableByOthers(path: string): boolean {
  try {
    let p = realpathSync(path);
    const st = statSync(p);
    if (!(st.mode & (st.isDirectory() ? 0o005 : 0o004))) return false;
    while (p !== sep) {
      p = dirname(p);
      if (!(statSync(p).mode & 0o001)) return false;
    }
    return true;
  } catch {
    return false;
  }
}

/**
 * Finds what the host allows. `mode`: `auto` (default: bwrap when it works),
 * `none` (plain processes). `readable` lists paths the unprivileged uid must
 * read (code folders, interpreters); when one is not readable, the uid is not dropped.
 */
export function detectIsolation(mode: 'auto' | 'none', readable: readonly string[]): Isolation {
  if (mode === 'none') return { ...NO_ISOLATION, description: 'instances run as plain child processes (isolation turned off)' };
  const bwrap = which('bwrap');
  if (!bwrap) return NO_ISOLATION;
  sweepOrphans(readable);
  const isRoot = process.getuid?.() === 0;
  const setpriv = isRoot ? which('setpriv') : null;
  const unreadable = readable.filter((p) => !readableByOthers(p));
  const drop = isRoot && setpriv !== null && unreadable.length === 0;
  const prefix = drop ? [setpriv!, `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', bwrap] : [bwrap];
  // Check once that bwrap can make its namespaces here (a container may forbid it).
  try {
    execFileSync(prefix[0], [...prefix.slice(1), ...baseArgs(isRoot && !drop), '--', '/bin/true'], { stdio: 'ignore', timeout: 10_000 });
  } catch {
    return { ...NO_ISOLATION, description: 'instances run as plain child processes (bubblewrap is installed but cannot create namespaces here)' };
  }
  const base = baseArgs(isRoot && !drop);
  const who = drop ? `uid ${NOBODY}`
    : isRoot ? `uid 0 without capabilities (not dropped to ${NOBODY}: it cannot read ${unreadable[0] ?? 'setpriv is missing'}; make it world-readable to drop)`
      : `uid ${process.getuid?.() ?? '?'}`;
  return {
    kind: 'bwrap',
    uid: drop ? NOBODY : process.getuid?.() ?? null,
    description: `instances sandboxed with bubblewrap as ${who}: own mount/pid/ipc/uts namespaces, code read-only at ${SANDBOX_TASK_ROOT}, private /tmp, clean environment, network shared`,
    wrap(command, args, codeDir, runtimeDir, extraReadOnly) {
      // The shim sits at /var/runtime, not at its host path: a checkout under /tmp must not show in the private /tmp.
      const binds: string[] = ['--ro-bind', runtimeDir, SANDBOX_RUNTIME_DIR];
      for (const p of extraReadOnly) if (!p.startsWith('/usr/') && existsSync(p)) binds.push('--ro-bind', p, p);
      const inner = args.map((a) => (a.startsWith(runtimeDir + sep) ? SANDBOX_RUNTIME_DIR + a.slice(runtimeDir.length) : a));
      return {
        command: prefix[0],
        args: [...prefix.slice(1), ...base, ...binds, '--ro-bind', codeDir, SANDBOX_TASK_ROOT, '--chdir', SANDBOX_TASK_ROOT, '--', command, ...inner],
        taskRoot: SANDBOX_TASK_ROOT,
      };
    },
    inside(path, codeDir) {
      return path === codeDir ? SANDBOX_TASK_ROOT : path.startsWith(codeDir + sep) ? SANDBOX_TASK_ROOT + path.slice(codeDir.length) : path;
    },
  };
}

/**
 * Kills sandboxes left by a platform that died without stopping them
 * (`kill -9`): bwrap processes adopted by init (parent pid 1) that bind one
 * of our runtime folders. Their instances exited with the platform's end of
 * the control channel; only the outer bwrap lingers.
 */
function sweepOrphans(ours: readonly string[]): void {
  const roots = new Set(ours.filter((p) => /[\\/]runtimes[\\/](node|python)$/.test(p)).map((p) => dirname(p) + sep));
  if (roots.size === 0) return;
  const isOurs = (a: string) => [...roots].some((r) => a.startsWith(r));
  let pids: string[];
  try { pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d)); } catch { return; }
  for (const pid of pids) {
    try {
      if (!/^PPid:\s+1$/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'))) continue;
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (!argv[0]?.endsWith('bwrap')) continue;
      if (argv.some((a, i) => argv[i - 1] === '--ro-bind' && isOurs(a))) process.kill(Number(pid), 'SIGKILL');
    } catch { /* gone, or not ours to read */ }
  }
}

/** System folders read-only, fresh /proc, /dev and /tmp, new namespaces but the network's. */
function baseArgs(dropCaps: boolean): string[] {
  const args = [
    '--unshare-all', '--share-net', '--die-with-parent', '--new-session', '--clearenv',
    '--setenv', 'PATH', '/usr/local/bin:/usr/bin:/bin', '--setenv', 'LANG', 'en_US.UTF-8', '--setenv', 'TZ', ':UTC',
    '--ro-bind', '/usr', '/usr',
    '--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp', '--dir', '/var',
  ];
  for (const link of ['bin', 'lib', 'lib64', 'sbin']) {
    try { args.push('--symlink', `usr/${link}`, `/${link}`); } catch { /* absent */ }
  }
  for (const etc of ['/etc/resolv.conf', '/etc/hosts', '/etc/nsswitch.conf', '/etc/passwd', '/etc/group', '/etc/localtime',
    '/etc/ssl', '/etc/ca-certificates', '/etc/alternatives', '/etc/ld.so.cache', '/etc/mime.types']) {
    if (existsSync(etc)) args.push('--ro-bind', etc, etc);
  }
  if (dropCaps) args.push('--cap-drop', 'ALL');
  return args;
}
