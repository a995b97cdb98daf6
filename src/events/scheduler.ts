/**
 * The scheduler: fires each schedule rule at its times. Clock and timers are
 * injected, so tests run on a manual clock without sleeping.
 */
import { parseSchedule, type Schedule } from './schedule.js';

/** One schedule rule: one expression (a serverless.yml `rate:` list gives one rule per item). */
export interface ScheduleRule {
  /** Unique among the rules; Nimbus uses the EventBridge rule name. */
  readonly id: string;
  /** `rate(...)` or `cron(...)`. */
  readonly expression: string;
  /** Default true; a disabled rule never fires on its own, but `runNow` still fires it. */
  readonly enabled?: boolean;
  /** Where a rate counts from (epoch ms); see `ParseScheduleOptions.anchorMs`. Default 0 (epoch-aligned). */
  readonly anchorMs?: number;
}

/** What the scheduler knows of one rule, for `nimbus schedule list` and the dashboard. */
export interface ScheduleRuleStatus {
  readonly id: string;
  readonly expression: string;
  readonly enabled: boolean;
  /** The next time it fires (epoch ms), or null when disabled or never again. */
  readonly next: number | null;
}

export interface SchedulerOptions<R extends ScheduleRule> {
  /** The current time, epoch ms. */
  now(): number;
  /** Calls `fn` after `ms` (never more than {@link MAX_TIMER_WAIT_MS}); returns a handle for `clearTimer`. */
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
  /**
   * Sends one fire of `rule` for `scheduledTimeMs` (epoch ms) to the
   * function: builds the event and accepts it as an asynchronous invocation.
   * Retries and the dead-letter queue are the async invocation's business;
   * a rejection here is only reported to `onError`.
   */
  fire(rule: R, scheduledTimeMs: number): Promise<void>;
  /** The scheduled time of the rule's last fire, from the store, so a restart does not fire it again. */
  lastFired?(ruleId: string): number | undefined;
  /** Stores the scheduled time of a fire; called just before `fire`. */
  recordFired?(ruleId: string, timeMs: number): void;
  /** A fire (or `recordFired`) that failed. Default: one line on stderr. */
  onError?(rule: R, scheduledTimeMs: number, error: unknown): void;
}

/** Longest single timer wait: 24 days, under setTimeout's 2^31 − 1 ms (24.8 days); longer waits re-arm. */
export const MAX_TIMER_WAIT_MS = 24 * 24 * 60 * 60 * 1000;

/** `runNow` of a rule id the scheduler does not have. */
export class ScheduleRuleNotFoundError extends Error {
  readonly ruleId: string;
  constructor(ruleId: string, known: readonly string[]) {
    super(`No schedule rule ${ruleId}; the rules are: ${known.length ? known.join(', ') : '(none)'}`);
    this.name = 'ScheduleRuleNotFoundError';
    this.ruleId = ruleId;
  }
}

interface Entry<R extends ScheduleRule> {
  readonly rule: R;
  readonly schedule: Schedule;
  readonly enabled: boolean;
  /** Next due time, epoch ms; null when disabled or never again. */
  next: number | null;
}

/**
 * Fires schedule rules at their times, one timer for all of them.
 *
 * **Restarts do not fire a burst of missed runs, nor one catch-up run.** A
 * rule (re)added by `set` fires at its first time strictly after
 * max(now, `lastFired(id)`): the runs that fell while Nimbus was down are
 * skipped, and a run already fired before a quick restart is not fired
 * again. Likewise, a timer that wakes late (a busy event loop, a suspended
 * host) fires the run that was due once, late, and skips the runs that fell
 * in between; a timer that wakes early fires nothing and waits again.
 * EventBridge itself promises no more: its deliveries are at least once and
 * may come late (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-troubleshoot.html),
 * so functions should be idempotent; the event id
 * (`scheduledEventId`) is the same for the same rule and scheduled time.
 *
 * `fire` is not awaited before the next fire: a slow fire does not delay the
 * schedule. Waits longer than {@link MAX_TIMER_WAIT_MS} (a yearly cron) re-arm
 * on the way.
 */
export class Scheduler<R extends ScheduleRule = ScheduleRule> {
  private readonly o: SchedulerOptions<R>;
  private entries = new Map<string, Entry<R>>();
  private timer: unknown = undefined;
  private armed = false;
  private closed = false;
  private readonly inflight = new Set<Promise<void>>();

  constructor(options: SchedulerOptions<R>) {
    this.o = options;
  }

  /**
   * Replaces the rule set. A rule whose id, expression, `enabled` and
   * `anchorMs` are unchanged keeps its next time (the new rule object is what
   * later fires get); a new or changed rule starts at its next time after
   * max(now, `lastFired`); a rule left out stops.
   *
   * @throws Error on a duplicate id, and ScheduleExpressionError on an
   *   invalid expression, before anything changes.
   */
  set(rules: readonly R[]): void {
    if (this.closed) throw new Error('The scheduler is closed');
    const now = this.o.now();
    const entries = new Map<string, Entry<R>>();
    for (const rule of rules) {
      if (entries.has(rule.id)) throw new Error(`Two schedule rules have the id ${rule.id}`);
      const enabled = rule.enabled !== false;
      const old = this.entries.get(rule.id);
      if (old && old.schedule.expression === rule.expression.trim() && old.enabled === enabled && old.rule.anchorMs === rule.anchorMs) {
        entries.set(rule.id, { ...old, rule });
        continue;
      }
      const schedule = parseSchedule(rule.expression, { anchorMs: rule.anchorMs });
      const from = Math.max(now, this.o.lastFired?.(rule.id) ?? -Infinity);
      entries.set(rule.id, { rule, schedule, enabled, next: enabled ? schedule.next(from) : null });
    }
    this.entries = entries;
    this.arm();
  }

  /**
   * Fires a rule now (`nimbus schedule run -f NAME`), enabled or not, with
   * the current time as its scheduled time. Its schedule is unchanged and
   * nothing is recorded. The promise is `fire`'s, errors included.
   *
   * @throws ScheduleRuleNotFoundError for an unknown id.
   */
  runNow(ruleId: string): Promise<void> {
    const entry = this.entries.get(ruleId);
    if (!entry) throw new ScheduleRuleNotFoundError(ruleId, [...this.entries.keys()]);
    return this.track(this.call(entry.rule, this.o.now()));
  }

  /** Every rule with its next fire time, in the order given to `set`. */
  status(): ScheduleRuleStatus[] {
    return [...this.entries.values()].map((e) => ({ id: e.rule.id, expression: e.schedule.expression, enabled: e.enabled, next: e.next }));
  }

  /** Stops firing and waits for the fires in flight. */
  async close(): Promise<void> {
    this.closed = true;
    this.disarm();
    await Promise.allSettled([...this.inflight]);
  }

  private call(rule: R, timeMs: number): Promise<void> {
    try {
      return Promise.resolve(this.o.fire(rule, timeMs));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  private track(p: Promise<void>): Promise<void> {
    this.inflight.add(p);
    const done = (): void => { this.inflight.delete(p); };
    p.then(done, done);
    return p;
  }

  private report(rule: R, timeMs: number, error: unknown): void {
    if (this.o.onError) this.o.onError(rule, timeMs, error);
    else console.error(`nimbus: schedule ${rule.id} (${rule.expression}) at ${new Date(timeMs).toISOString()}: ${error instanceof Error ? error.message : String(error)}`);
  }

  private disarm(): void {
    if (this.armed) this.o.clearTimer(this.timer);
    this.armed = false;
    this.timer = undefined;
  }

  private arm(): void {
    this.disarm();
    if (this.closed) return;
    let due = Infinity;
    for (const e of this.entries.values()) if (e.next !== null && e.next < due) due = e.next;
    if (due === Infinity) return;
    const wait = Math.min(Math.max(0, due - this.o.now()), MAX_TIMER_WAIT_MS);
    this.timer = this.o.setTimer(() => this.onTimer(), wait);
    this.armed = true;
  }

  private onTimer(): void {
    this.armed = false;
    this.timer = undefined;
    if (this.closed) return;
    const now = this.o.now();
    for (const e of [...this.entries.values()]) {
      if (e.next === null || e.next > now) continue;
      const at = e.next;
      e.next = e.schedule.next(Math.max(now, at));
      try {
        this.o.recordFired?.(e.rule.id, at);
      } catch (err) {
        this.report(e.rule, at, err);
      }
      const rule = e.rule;
      this.track(this.call(rule, at)).catch((err: unknown) => this.report(rule, at, err));
    }
    this.arm();
  }
}
