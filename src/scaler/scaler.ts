/**
 * The scaler: a pure decision of how many instances one function version
 * should have now, from its settings, what it is doing, and the time. It
 * does no I/O and reads no clock (knative's `pkg/autoscaler` is the model:
 * `scale(spec, stats, now)`); the dispatcher acts on the decision.
 *
 * The policy is Lambda's: one instance per concurrent invocation, started
 * as soon as an invocation has none to run on, up to the reserved
 * concurrency (or the account limit); `provisionedConcurrency` instances are
 * kept initialised even when idle; an instance idle for longer than the
 * keep-alive is retired, down to the provisioned minimum or zero.
 *
 * One departure, for functions much quicker than a cold start: an
 * invocation that finds every instance busy waits for one of them when it
 * would be served sooner that way than by a new instance (the expected wait
 * is its place in the queue over the busy instances, times their recent
 * time per invocation; the cost of a new one is the recent cold-start time).
 * It gets an instance once it has waited as long as a cold start, or twice
 * its expected wait plus 1 ms (a busy instance is then on a slow
 * invocation). Starts a burst made before the function's speed was known,
 * and no longer needed, are called off while they wait for a boot slot.
 * Lambda gives each execution environment CPU of its own; here instances
 * share the host's cores, and 50 instances of a 0.1 ms function on one core
 * serve half what 2 do (docs/scaling.md). A function slower than a cold
 * start, or one with no history yet, scales exactly as on Lambda.
 * https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html
 * https://docs.aws.amazon.com/lambda/latest/dg/provisioned-concurrency.html
 */

/** A function version's scaling settings. */
export interface ScalingPolicy {
  /** Instances kept warm even with no traffic (provisioned concurrency, N_min). */
  readonly minInstances: number;
  /** Most instances at once (reserved concurrency or the account limit, N_max). */
  readonly maxInstances: number;
  /** An instance idle this many ms is retired (unless needed for the minimum). */
  readonly keepAliveMs: number;
  /** Most invocations that may wait for an instance; more are throttled. */
  readonly maxQueued: number;
  /** Longest an invocation may wait for an instance, in ms, before it is throttled. */
  readonly maxQueueWaitMs: number;
  /** Invocations one instance runs at once (an opt-in; default 1, Lambda's). */
  readonly concurrency?: number;
}

/** What one function version is doing now. */
export interface ScalingStats {
  /** Instances starting (cold starts under way). */
  readonly starting: number;
  /** Instances running an invocation (or more, with concurrency above 1). */
  readonly busy: number;
  /**
   * Invocations the ready instances could take now (idle and partly busy
   * ones); default: one per idle instance (concurrency 1).
   */
  readonly freeSlots?: number;
  /** For each idle instance, the epoch ms its last invocation ended (or it became ready). */
  readonly idleSince: readonly number[];
  /** Invocations waiting for an instance. */
  readonly queued: number;
  /** For each waiting invocation, oldest first, the epoch ms it arrived. */
  readonly queuedSince: readonly number[];
  /** How many more instances the host's memory budget can take now (see invoke/capacity.ts); unlimited when absent. */
  readonly hostRoom?: number;
  /** Recent time an invocation holds an instance, ms (a moving average); unknown when absent. */
  readonly serviceMs?: number;
  /** Recent time from an instance's start to ready, ms (a moving average); unknown when absent. */
  readonly coldStartMs?: number;
}

/** What the dispatcher should do now. */
export interface ScalingDecision {
  /** Instances to start now. */
  readonly start: number;
  /** Indexes into `stats.idleSince` of idle instances to retire now. */
  readonly retire: readonly number[];
  /**
   * How many waiting invocations to throttle now: those right after the ones
   * an idle or starting instance will take (queue positions
   * `covered .. covered + throttle - 1`, where covered = idle + starting + start;
   * with concurrency c: freeSlots + (starting + start) × c).
   */
  readonly throttle: number;
  /** The instance count this decision aims at (for metrics). */
  readonly desired: number;
  /**
   * Instances starting that are no longer needed (invocations wait for busy
   * ones instead): the dispatcher stops those still waiting for a boot slot.
   * Present only when invocations wait for busy instances.
   */
  readonly cancel?: number;
  /**
   * When invocations wait for busy instances rather than new ones: the epoch
   * ms at which the first of them would have been better off with a new
   * instance, so the dispatcher decides again then.
   */
  readonly recheckAt?: number;
}

/**
 * Decides the instance count of one function version.
 *
 * Worked example: policy {min 2, max 10, keepAlive 60 s}, stats {busy 3,
 * idle 0, starting 1, queued 4}: demand = busy + queued = 7, desired =
 * clamp(7, 2, 10) = 7, live = 3 + 0 + 1 = 4, so start 3 (one queued
 * invocation is already covered by the instance starting).
 * With queued 20 instead: desired = 10 (the maximum), start 6; the rest wait
 * for an instance to free up, and throttle once they waited maxQueueWaitMs.
 * With concurrency 4 (an opt-in), stats {busy 2 instances with 3 free slots,
 * starting 1, queued 20}: 3 go to the free slots, 4 to the starting
 * instance, so 13 are uncovered: start ceil(13 / 4) = 4.
 *
 * Waiting for a busy instance: stats {busy 2, idle 0, starting 0, queued 10,
 * serviceMs 0.4, coldStartMs 5}, all just arrived. The k-th waiting
 * invocation (from 0) is expected to get an instance after
 * (floor(k / 2) + 1) × 0.4 ms: k = 0..19 would wait under 5 ms, so all 10
 * wait and none starts. recheckAt is the soonest one of them should give
 * up: the first (k = 0, expected after 0.4 ms) after 2 × 0.4 + 1 = 1.8 ms. With serviceMs 20 (slower than a cold
 * start) all 10 get instances at once, as on Lambda. With starting 8 (a
 * burst started them before the function's speed was known): the 10 need
 * no instance, so cancel 8 (those not booting yet are stopped).
 */
export function decide(policy: ScalingPolicy, stats: ScalingStats, now: number): ScalingDecision {
  const c = Math.max(1, policy.concurrency ?? 1);
  const idle = stats.idleSince.length;
  const free = stats.freeSlots ?? idle;
  const live = stats.busy + idle + stats.starting;
  // With concurrency c, a waiting invocation that fits on a running instance needs none of its own.
  const demand = c === 1 ? stats.busy + stats.queued : stats.busy + Math.ceil(Math.max(0, stats.queued - free) / c);
  const desired = clamp(Math.max(demand, policy.minInstances), 0, policy.maxInstances);

  // Scale out: the waiting invocations that no free slot of a ready or
  // starting instance will take get instances (one each, or one per c with
  // concurrency c), as far as the maximum allows.
  const room = Math.max(0, Math.min(policy.maxInstances - live, stats.hostRoom ?? Infinity));
  // Invocations that no free slot takes: those a busy instance serves sooner than a new one wait for it (see
  // waitingForBusy); the rest need instances, the ones starting included.
  const waiting = Math.max(0, stats.queued - free);
  const held = waitingForBusy(stats, c, waiting, now);
  const needed = Math.ceil((waiting - held.count) / c);
  let start = Math.max(0, Math.min(needed - stats.starting, room));
  // Keep the provisioned minimum.
  if (live + start < policy.minInstances) start = Math.min(policy.minInstances - live, room);
  // Starts that waiting invocations no longer need, now that busy instances will serve them sooner (a burst at a
  // function with no history starts one instance per invocation; its first answers tell how quick it is).
  const cancel = quick(stats) ? Math.max(0, Math.min(stats.starting - needed, live - policy.minInstances)) : 0;

  // Scale in: idle past the keep-alive, oldest first, never below the minimum,
  // and never while invocations wait.
  const retire: number[] = [];
  if (stats.queued === 0) {
    let removable = live - policy.minInstances;
    const order = stats.idleSince.map((t, i) => [t, i] as const).sort((a, b) => a[0] - b[0]);
    for (const [t, i] of order) {
      if (removable <= 0 || now - t < policy.keepAliveMs) break;
      retire.push(i);
      removable--;
    }
  }

  // At a limit (the maximum, or a full host), invocations that have no
  // instance coming wait in a bounded queue: throttle what waited too long,
  // or what no longer fits. Invocations covered by a starting instance wait
  // for it, however long its cold start takes.
  // Positions from `covered` on are the oldest invocations no instance is coming for (held ones are the newest).
  // Reserved concurrency 0 throttles every invocation at once, as on Lambda.
  let throttle = 0;
  if (policy.maxInstances === 0) {
    throttle = stats.queued;
  } else if (start < needed - stats.starting) {
    const covered = free + (stats.starting + start) * c;
    for (let i = covered; i < stats.queuedSince.length; i++) {
      if (now - stats.queuedSince[i] >= policy.maxQueueWaitMs) throttle++; else break;
    }
    throttle = Math.max(throttle, stats.queued - covered - held.count - policy.maxQueued);
  }

  return {
    start: Math.max(0, start), retire, throttle, desired,
    ...(held.count > 0 ? { recheckAt: held.recheckAt } : {}),
    ...(cancel > 0 ? { cancel } : {}),
  };
}

/**
 * How many of the `uncovered` waiting invocations (the last ones of the
 * queue, those no free slot takes) are served sooner by a busy instance than
 * by a new one, and when the first of them stops being so. See `decide`.
 */
function waitingForBusy(stats: ScalingStats, c: number, uncovered: number, now: number): { count: number; recheckAt: number } {
  const { serviceMs, coldStartMs } = stats;
  const perRound = stats.busy * c;
  if (uncovered <= 0 || perRound === 0 || !quick(stats)) return { count: 0, recheckAt: Infinity };
  const first = stats.queued - uncovered;
  let count = 0;
  let recheckAt = Infinity;
  for (let k = 0; k < uncovered; k++) {
    const since = stats.queuedSince[first + k] ?? now;
    const expected = (Math.floor(k / perRound) + 1) * serviceMs!;
    // Waiting stops paying once a new instance would be as quick, or once the wait is well past what was
    // expected (a busy instance is on a slow invocation: a new one beats waiting for it).
    const giveUpAt = since + Math.min(coldStartMs! - expected, 2 * expected + SLACK_MS);
    if (giveUpAt <= now) continue;
    count++;
    if (giveUpAt < recheckAt) recheckAt = giveUpAt;
  }
  return { count, recheckAt };
}

/** Slack on an expected wait before it counts as wrong, ms (timer and scheduling jitter). */
const SLACK_MS = 1;

/** The function answers quicker than a cold start, as far as its recent history tells. */
function quick(stats: ScalingStats): boolean {
  return stats.serviceMs !== undefined && stats.coldStartMs !== undefined && stats.serviceMs < stats.coldStartMs;
}

function clamp(n: number, lo: number, hi: number): number {
  return Math.min(Math.max(n, lo), hi);
}
