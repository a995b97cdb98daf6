/**
 * The host's memory budget for instances, shared by every dispatcher: the
 * sum of `memorySize` of live instances stays under a share of host memory,
 * so Nimbus never starts more instances than the host can hold. When the
 * budget is full, idle instances of any function are retired, least recently
 * used first, to make room; when none are idle, the start waits.
 */

/** What a dispatcher lends the budget: its idle instances, for eviction. */
export interface CapacityMember {
  /** Epoch ms of the least recently used idle instance, or undefined when none is idle. */
  oldestIdleMs(): number | undefined;
  /** MB held by idle instances (what eviction could free). */
  idleMB(): number;
  /** Retires the least recently used idle instance; returns the MB freed (0 when none). */
  retireOldestIdle(): number;
  /** Called when memory was freed, so a member waiting to start can try again. */
  onCapacityFreed(): void;
}

/**
 * The host memory budget (MB) shared by all dispatchers: `tryReserve` before
 * starting an instance, `release` when it exits or retires. Never throws.
 */
export class Capacity {
  private usedMB = 0;
  private readonly members = new Set<CapacityMember>();

  /** @param limitMB the budget in MB (e.g. 80% of host memory). */
  constructor(readonly limitMB: number) {}

  get reservedMB(): number { return this.usedMB; }

  join(member: CapacityMember): void { this.members.add(member); }
  leave(member: CapacityMember): void { this.members.delete(member); }

  /** How many instances of `mb` MB could start now, counting idle instances that would be evicted. */
  room(mb: number): number {
    let idle = 0;
    for (const m of this.members) idle += m.idleMB();
    return Math.max(0, Math.floor((this.limitMB - this.usedMB + idle) / mb));
  }

  /**
   * Reserves `mb` for a new instance, retiring idle instances (LRU, any
   * function) when needed. Returns false when it does not fit even then.
   */
  tryReserve(mb: number): boolean {
    while (this.usedMB + mb > this.limitMB) {
      let victim: CapacityMember | undefined;
      let oldest = Infinity;
      for (const m of this.members) {
        const t = m.oldestIdleMs();
        if (t !== undefined && t < oldest) { oldest = t; victim = m; }
      }
      if (!victim || victim.retireOldestIdle() === 0) return false;
    }
    this.usedMB += mb;
    return true;
  }

  /** Gives back `mb` of an instance that has exited or is being retired. */
  release(mb: number): void {
    this.usedMB = Math.max(0, this.usedMB - mb);
    for (const m of this.members) m.onCapacityFreed();
  }
}
