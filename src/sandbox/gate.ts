/**
 * How many runtime processes may boot or initialise at once on this host.
 * Booting an interpreter is CPU-bound (~50-130 ms of CPU for Node.js in
 * bubblewrap here, see bench/peers/README.md), and so is an init (a few ms
 * to import a small handler): 200 processes started at once each get 1/200
 * of the CPU, all finish together at the end (past their init timeout on a
 * loaded machine), and the platform itself is starved. A few at a time costs
 * the same CPU but brings instances up one after another: the first queued
 * invocations are answered at once and no init times out.
 *
 * Two kinds of work: urgent (an instance starting for an invocation: a
 * fresh boot, or the init of a pooled process) and background (warm-pool
 * refills). Urgent work never waits for background work: up to `limit`
 * urgent boots run whatever the background does; background work runs only
 * while urgent work leaves room and none waits.
 *
 * Worked example (2 CPUs, limit 4): 200 fresh instances at ~60 ms of CPU
 * each take ~6 s either way, but with the gate the k-th instance is ready
 * after about k × 30 ms instead of all at ~6 s.
 */
import { availableParallelism } from 'node:os';

/** Default number of concurrent boots: two per CPU this process may use (a boot also waits on page faults and exec). */
export const DEFAULT_BOOT_CONCURRENCY = Math.max(2, 2 * availableParallelism());

/** A counting gate with two queues: instance starts (urgent) before pool refills (background). */
export class BootGate {
  private urgentBusy = 0;
  private backgroundBusy = 0;
  private readonly urgent: Array<() => void> = [];
  private readonly background: Array<() => void> = [];

  constructor(public limit = DEFAULT_BOOT_CONCURRENCY) {}

  /** Boots in progress and waiting (for tests and metrics). */
  get booting(): number { return this.urgentBusy + this.backgroundBusy; }
  get waiting(): number { return this.urgent.length + this.background.length; }

  /**
   * Calls `run` now or once a slot of its kind is free; `run` holds the slot
   * until `release(urgent)`. Returns a function that cancels a call not made
   * yet (it returns false when `run` was already called).
   */
  acquire(run: () => void, urgent: boolean): () => boolean {
    if (urgent ? this.urgentBusy < this.limit : this.backgroundRoom()) {
      if (urgent) this.urgentBusy++; else this.backgroundBusy++;
      run();
      return () => false;
    }
    const queue = urgent ? this.urgent : this.background;
    queue.push(run);
    return () => {
      const at = queue.indexOf(run);
      if (at < 0) return false;
      queue.splice(at, 1);
      return true;
    };
  }

  /**
   * Frees a slot of a boot that has ended (ready, failed or exited). The
   * next boot starts off this tick: a spawn costs the platform milliseconds,
   * not to be paid by the invocation whose instance just became ready.
   */
  release(urgent: boolean): void {
    if (urgent) this.urgentBusy = Math.max(0, this.urgentBusy - 1);
    else this.backgroundBusy = Math.max(0, this.backgroundBusy - 1);
    while (this.urgent.length > 0 && this.urgentBusy < this.limit) {
      this.urgentBusy++;
      setImmediate(this.urgent.shift()!);
    }
    while (this.background.length > 0 && this.backgroundRoom()) {
      this.backgroundBusy++;
      setImmediate(this.background.shift()!);
    }
  }

  private backgroundRoom(): boolean {
    return this.urgent.length === 0 && this.urgentBusy + this.backgroundBusy < this.limit;
  }
}

/** The host's gate, shared by every instance and warm pool of this process. */
export const bootGate = new BootGate();
