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
 */
import type { Language } from '../core/index.js';
import { spawnRuntime, type RuntimeProcess } from './instance.js';

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

/**
 * A pool of `size` generic runtime processes of one language (and code
 * folder, when sandboxed), started ahead of need; `take()` hands one out.
 */
export class WarmPool {
  private readonly ready: RuntimeProcess[] = [];
  private readonly onExit = new WeakMap<RuntimeProcess, () => void>();
  private spawning = 0;
  private closed = false;
  private refillTimer: NodeJS.Timeout | null = null;

  /** @param size how many processes to keep waiting (0 turns the pool off). */
  constructor(readonly runtime: PoolRuntime, readonly size: number) {
    this.fill();
  }

  /** Waiting processes (for tests and metrics). */
  get available(): number { return this.ready.length; }

  /**
   * A waiting process, or undefined when the pool is empty. A replacement
   * starts REFILL_DELAY_MS later, so starting it (tens of ms of CPU) does not
   * compete with the cold start that took this one.
   */
  take(): RuntimeProcess | undefined {
    let proc: RuntimeProcess | undefined;
    while ((proc = this.ready.shift())) {
      if (proc.child.exitCode === null && proc.child.signalCode === null) break;
    }
    if (!this.refillTimer && !this.closed) {
      this.refillTimer = setTimeout(() => { this.refillTimer = null; this.fill(); }, REFILL_DELAY_MS);
      this.refillTimer.unref();
    }
    if (proc) proc.child.off('exit', this.onExit.get(proc)!);
    return proc;
  }

  /** Stops every waiting process. */
  close(): void {
    this.closed = true;
    if (this.refillTimer) clearTimeout(this.refillTimer);
    for (const p of this.ready.splice(0)) p.child.kill('SIGKILL');
  }

  private fill(): void {
    while (!this.closed && this.ready.length + this.spawning < this.size) {
      this.spawning++;
      // Spawn off the current tick, so taking a process never pays for its replacement.
      setImmediate(() => {
        this.spawning--;
        if (this.closed) return;
        const proc = spawnRuntime(this.runtime.command, this.runtime.args, this.runtime.env, this.runtime.cwd);
        proc.channel.on('error', () => {});
        proc.child.on('error', () => {});
        const onExit = () => {
          const at = this.ready.indexOf(proc);
          if (at >= 0) this.ready.splice(at, 1);
        };
        this.onExit.set(proc, onExit);
        proc.child.once('exit', onExit);
        this.ready.push(proc);
      });
    }
  }
}
