/**
 * Pre-warmed runtime processes: per language, a few interpreters already
 * started and waiting for INIT, so a cold start costs loading the handler
 * (a few ms), not starting Node.js or Python (tens of ms here; see
 * ../shared/bench-peers/NOTES.md). A process taken from the pool is replaced
 * in the background.
 *
 * A pooled process is generic: it gets the function's environment, folder
 * and handler with INIT (runtimes/PROTOCOL.md). Functions whose environment
 * changes how the interpreter starts (NODE_OPTIONS, PYTHONPATH, …) or that
 * need other interpreter flags are started on a fresh process instead.
 *
 * While it waits, a pooled process is already in cgroups of its own
 * (`LimitEnforcer.prepare`): a claim then only writes the memory size. It
 * says HELLO once booted; `take()` hands out booted processes first.
 */
import type { Language } from '../core/index.js';
import { bootGate, type BootGate } from './gate.js';
import { spawnRuntime, type RuntimeProcess } from './instance.js';
import type { LimitEnforcer, PreparedLimits } from './limits.js';
import { FrameReader, FrameType } from './protocol.js';

/** How to start the generic processes of one language. */
export interface PoolRuntime {
  readonly language: Language;
  readonly command: string;
  readonly args: readonly string[];
  /** The environment until INIT: PATH, LANG, TZ; nothing of the platform's. */
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
}

/** Environment variables that act when an interpreter starts: a function setting one gets a fresh process. */
const STARTUP_VARIABLE = /^(NODE_|PYTHON|LD_|UV_)/;

/** True when a function with this environment can start on a pooled process. */
export function canUsePool(env: Readonly<Record<string, string>>): boolean {
  for (const k of Object.keys(env)) if (STARTUP_VARIABLE.test(k)) return false;
  return true;
}

/** How long after a take the pool starts refilling, in ms. */
const REFILL_DELAY_MS = 100;

/** A waiting process and what the pool tracks of it. */
interface Waiting {
  readonly proc: RuntimeProcess;
  readonly reader: FrameReader;
  readonly onData: (chunk: Buffer) => void;
  readonly onExit: () => void;
  /** It said HELLO: booted and warmed up. */
  booted: boolean;
  /** useLimits tried to prepare its groups (once). */
  tried?: boolean;
  /** Gives its boot slot back (once; at HELLO, exit, or when taken before it booted). */
  release?: () => void;
}

let groups = 0;

/**
 * A pool of `size` generic runtime processes of one language (and code
 * folder, when sandboxed), started ahead of need; `take()` hands one out.
 */
export class WarmPool {
  private readonly ready: Waiting[] = [];
  private spawning = 0;
  private closed = false;
  private refillTimer: NodeJS.Timeout | null = null;

  /**
   * @param size how many processes to keep waiting (0 turns the pool off).
   * @param limits puts waiting processes into their cgroups ahead of a claim;
   *   without it the pool learns the enforcer from the first `Instance.start`
   *   on one of its processes (see `useLimits`).
   * @param gate the host's boot slots (gate.ts); refills wait behind instance starts.
   */
  constructor(readonly runtime: PoolRuntime, readonly size: number, private limits?: LimitEnforcer, private readonly gate: BootGate = bootGate) {
    this.fill();
  }

  /** Waiting processes (for tests and metrics). */
  get available(): number { return this.ready.length; }

  /** Waiting processes that said HELLO (for tests and metrics). */
  get booted(): number { return this.ready.filter((w) => w.booted).length; }

  /** Waiting processes already in cgroups of their own (for tests and metrics). */
  get prepared(): number { return this.ready.filter((w) => w.proc.prepared).length; }

  /**
   * Prepares cgroups for waiting and future processes with `limits` (once;
   * later calls are ignored). The waiting ones are moved in REFILL_DELAY_MS
   * later, off the cold start that called this.
   */
  useLimits(limits: LimitEnforcer): void {
    if (this.limits || !limits.prepare || this.closed) return;
    this.limits = limits;
    setTimeout(() => this.prepareWaiting(), REFILL_DELAY_MS).unref();
  }

  /** Moves waiting processes into their groups, a few per turn of the event loop (a pool may hold hundreds). */
  private prepareWaiting(): void {
    let done = 0;
    for (const w of this.ready) {
      if (this.closed || done >= 4) break;
      if (w.proc.prepared || w.tried) continue;
      w.tried = true;
      const prepared = this.prepare(w.proc);
      if (w.booted) prepared?.adopt();
      done++;
    }
    if (done >= 4) setImmediate(() => this.prepareWaiting());
  }

  /**
   * A waiting process (a booted one when there is one), or undefined when
   * the pool is empty. Replacements start once no process was taken for
   * REFILL_DELAY_MS, so starting them (tens of ms of CPU each) does not
   * compete with the cold starts that took these. The caller must hand it to
   * `Instance.start` in the same tick (its channel is paused until then).
   */
  take(): RuntimeProcess | undefined {
    for (let i = 0; i < this.ready.length; i++) {
      const w = this.ready[i];
      if (w.proc.child.exitCode !== null || w.proc.child.signalCode !== null) { this.ready.splice(i--, 1); continue; }
    }
    const at = this.ready.findIndex((w) => w.booted);
    const [w] = this.ready.splice(at >= 0 ? at : 0, 1);
    // Refill once takes pause for REFILL_DELAY_MS: during a burst every spawn would compete with it.
    if (this.refillTimer) this.refillTimer.refresh();
    else if (!this.closed) {
      this.refillTimer = setTimeout(() => { this.refillTimer = null; this.fill(); }, REFILL_DELAY_MS);
      this.refillTimer.unref();
    }
    if (!w) return undefined;
    const { proc } = w;
    // Taken before its HELLO: its boot slot goes with it (the instance's init is the rest of its boot).
    w.release?.();
    proc.child.off('exit', w.onExit);
    proc.channel.off('data', w.onData);
    proc.channel.pause();
    proc.leftover = w.reader.leftover();
    proc.pool = this;
    return proc;
  }

  /** Stops every waiting process. */
  close(): void {
    this.closed = true;
    if (this.refillTimer) clearTimeout(this.refillTimer);
    for (const w of this.ready.splice(0)) w.proc.child.kill('SIGKILL');
  }

  private prepare(proc: RuntimeProcess): PreparedLimits | undefined {
    const pid = proc.child.pid;
    if (!this.limits?.prepare || pid === undefined) return undefined;
    try {
      proc.prepared = this.limits.prepare(pid, `w${process.pid}-${++groups}`);
    } catch {
      // The kernel refused: the claim attaches the usual way.
    }
    return proc.prepared;
  }

  private fill(): void {
    while (!this.closed && this.ready.length + this.spawning < this.size) {
      this.spawning++;
      // A boot slot of the host (gate.ts), after every instance start waiting for one.
      this.gate.acquire(() => {
        this.spawning--;
        if (this.closed) { this.gate.release(false); return; }
        this.spawn();
      }, false);
    }
  }

  /** Starts one process; it holds its boot slot until it says HELLO (or exits). */
  private spawn(): void {
    let proc: RuntimeProcess;
    try {
      proc = spawnRuntime(this.runtime.command, this.runtime.args, this.runtime.env, this.runtime.cwd);
    } catch {
      this.gate.release(false);
      return;
    }
    proc.channel.on('error', () => {});
    proc.child.on('error', () => {});
    // Into its cgroups now, before the sandbox forks the interpreter: its children are born inside.
    this.prepare(proc);
    let slot = true;
    const booted = () => {
      if (slot) { slot = false; this.gate.release(false); }
    };
    const w: Waiting = {
      proc,
      booted: false,
      reader: new FrameReader((f) => {
        if (f.type !== FrameType.HELLO || w.booted) return;
        w.booted = true;
        booted();
        // The tree is complete now: check that every process of it is inside, off the cold-start path.
        proc.prepared?.adopt();
      }),
      onData: (chunk) => { try { w.reader.push(chunk); } catch { proc.child.kill('SIGKILL'); } },
      onExit: () => {
        booted();
        const at = this.ready.indexOf(w);
        if (at >= 0) this.ready.splice(at, 1);
        proc.prepared?.release();
      },
    };
    proc.channel.on('data', w.onData);
    proc.child.once('exit', w.onExit);
    w.release = booted;
    this.ready.push(w);
  }
}
