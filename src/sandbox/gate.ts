/**
 * How many runtime processes may boot at once on this host. Booting an
 * interpreter is CPU-bound (~70-130 ms of CPU for Node.js in bubblewrap
 * here, see bench/peers/README.md): 200 processes started at once each get
 * 1/200 of the CPU, all finish together at the end (past their init
 * timeout on a loaded machine), and the platform itself is starved. Booting
 * a few at a time costs the same CPU but brings instances up one after
 * another: the first queued invocations are answered within ~100 ms and
 * no init times out. Instance starts go before warm-pool refills.
 *
 * Worked example (2 CPUs, limit 4): 200 fresh instances at ~130 ms of CPU
 * each take ~13 s either way, but with the gate the k-th instance is ready
 * after about k × 65 ms instead of all at ~13 s.
 */
import { availableParallelism } from 'node:os';

/** Default number of concurrent boots: two per CPU (a boot also waits on page faults and exec). */
export const DEFAULT_BOOT_CONCURRENCY = Math.max(2, 2 * availableParallelism());

type Waiter = { readonly run: () => void };

/** A counting gate with two queues: instance starts first, pool refills after. */
export class BootGate {
  private busy = 0;
  private readonly urgent: Waiter[] = [];
  private readonly background: Waiter[] = [];

  constructor(public limit = DEFAULT_BOOT_CONCURRENCY) {}

  /** Boots in progress and waiting (for tests and metrics). */
  get booting(): number { return this.busy; }
  get waiting(): number { return this.urgent.length + this.background.length; }

  /**
   * Calls `run` now or once a boot slot is free (`urgent` first); `run`
   * holds one slot until `release()`. Returns a function that cancels a
   * call not made yet (it returns false when `run` was already called).
   */
  acquire(run: () => void, urgent: boolean): () => boolean {
    if (this.busy < this.limit && (urgent || this.urgent.length === 0)) {
      this.busy++;
      run();
      return () => false;
    }
    const w: Waiter = { run };
    (urgent ? this.urgent : this.background).push(w);
    return () => {
      const queue = urgent ? this.urgent : this.background;
      const at = queue.indexOf(w);
      if (at < 0) return false;
      queue.splice(at, 1);
      return true;
    };
  }

  /**
   * Frees the slot of a boot that has ended (ready, failed or exited). The
   * next boot starts off this tick: a spawn costs the platform milliseconds,
   * not to be paid by the invocation whose instance just became ready.
   */
  release(): void {
    this.busy = Math.max(0, this.busy - 1);
    while (this.busy < this.limit) {
      const next = this.urgent.shift() ?? this.background.shift();
      if (!next) return;
      this.busy++;
      setImmediate(next.run);
    }
  }
}

/** The host's gate, shared by every instance and warm pool of this process. */
export const bootGate = new BootGate();
