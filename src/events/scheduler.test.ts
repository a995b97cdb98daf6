import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_TIMER_WAIT_MS, Scheduler, ScheduleRuleNotFoundError, type ScheduleRule, type SchedulerOptions } from './scheduler.js';
import { ScheduleExpressionError } from './schedule.js';

/** A manual clock with timers: `advance` runs the timers that come due, in order, at their times. */
class ManualClock {
  now: number;
  private seq = 0;
  timers = new Map<number, { at: number; fn: () => void }>();
  /** Every wait asked for, in ms. */
  waits: number[] = [];
  constructor(startIso: string) { this.now = Date.parse(startIso); }
  setTimer = (fn: () => void, ms: number): number => {
    this.waits.push(ms);
    const id = ++this.seq;
    this.timers.set(id, { at: this.now + ms, fn });
    return id;
  };
  clearTimer = (id: unknown): void => { this.timers.delete(id as number); };
  async advanceTo(iso: string): Promise<void> {
    const end = Date.parse(iso);
    for (;;) {
      let first: [number, { at: number; fn: () => void }] | undefined;
      for (const t of this.timers) if (t[1].at <= end && (!first || t[1].at < first[1].at)) first = t;
      if (!first) break;
      this.timers.delete(first[0]);
      this.now = Math.max(this.now, first[1].at);
      first[1].fn();
      await settle();
    }
    this.now = Math.max(this.now, end);
  }
  /** Runs the pending timer now, whatever time it was set for (a timer that fires early or late). */
  async runPending(): Promise<void> {
    const all = [...this.timers];
    this.timers.clear();
    for (const [, t] of all) t.fn();
    await settle();
  }
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));
const iso = (ms: number): string => new Date(ms).toISOString().replace('.000Z', 'Z');

interface Rule extends ScheduleRule { readonly payload?: string }

function setup(startIso: string, over: Partial<SchedulerOptions<Rule>> = {}) {
  const clock = new ManualClock(startIso);
  const fired: string[] = [];
  const recorded = new Map<string, number>();
  const scheduler = new Scheduler<Rule>({
    now: () => clock.now,
    setTimer: clock.setTimer,
    clearTimer: clock.clearTimer,
    fire: async (rule, at) => { fired.push(`${rule.id}@${iso(at)}${rule.payload ? `:${rule.payload}` : ''}`); },
    lastFired: (id) => recorded.get(id),
    recordFired: (id, at) => { recorded.set(id, at); },
    ...over,
  });
  return { clock, fired, recorded, scheduler };
}

describe('Scheduler', () => {
  it('fires a rate rule at each of its times', async () => {
    const { clock, fired, scheduler } = setup('2024-01-15T12:34:56Z');
    scheduler.set([{ id: 'r', expression: 'rate(5 minutes)' }]);
    assert.equal(clock.waits[0], 4_000, 'armed for 12:35:00');
    await clock.advanceTo('2024-01-15T12:50:00Z');
    assert.deepEqual(fired, ['r@2024-01-15T12:35:00Z', 'r@2024-01-15T12:40:00Z', 'r@2024-01-15T12:45:00Z', 'r@2024-01-15T12:50:00Z']);
    assert.deepEqual(scheduler.status(), [{ id: 'r', expression: 'rate(5 minutes)', enabled: true, next: Date.parse('2024-01-15T12:55:00Z') }]);
  });

  it('fires cron rules, several at once, each at its times', async () => {
    const { clock, fired, scheduler } = setup('2024-01-19T17:00:00Z'); // a Friday
    scheduler.set([
      { id: 'weekdays', expression: 'cron(0 18 ? * MON-FRI *)' },
      { id: 'quarter', expression: 'cron(0/15 18 * * ? *)' },
      { id: 'month', expression: 'cron(0 9 ? * 2#1 *)' },
    ]);
    await clock.advanceTo('2024-02-05T09:00:00Z');
    assert.deepEqual(fired.slice(0, 6), [
      'weekdays@2024-01-19T18:00:00Z', 'quarter@2024-01-19T18:00:00Z', 'quarter@2024-01-19T18:15:00Z',
      'quarter@2024-01-19T18:30:00Z', 'quarter@2024-01-19T18:45:00Z', 'quarter@2024-01-20T18:00:00Z',
    ]);
    assert.deepEqual(fired.filter((f) => f.startsWith('weekdays')).slice(0, 3), ['weekdays@2024-01-19T18:00:00Z', 'weekdays@2024-01-22T18:00:00Z', 'weekdays@2024-01-23T18:00:00Z']);
    assert.deepEqual(fired.filter((f) => f.startsWith('month')), ['month@2024-02-05T09:00:00Z']);
    assert.equal(fired.filter((f) => f.startsWith('quarter')).length, 17 * 4);
  });

  it('set() replaces the rules: new ones start, dropped ones stop, unchanged ones keep their time and take the new rule object', async () => {
    const { clock, fired, scheduler } = setup('2024-01-15T12:00:00Z');
    scheduler.set([{ id: 'a', expression: 'rate(10 minutes)', payload: 'v1' }, { id: 'b', expression: 'rate(1 hour)' }]);
    await clock.advanceTo('2024-01-15T12:10:00Z');
    assert.deepEqual(fired, ['a@2024-01-15T12:10:00Z:v1']);
    scheduler.set([{ id: 'a', expression: 'rate(10 minutes)', payload: 'v2' }, { id: 'c', expression: 'cron(15 12 * * ? *)' }]);
    await clock.advanceTo('2024-01-15T13:00:00Z');
    assert.deepEqual(fired, [
      'a@2024-01-15T12:10:00Z:v1', 'c@2024-01-15T12:15:00Z', 'a@2024-01-15T12:20:00Z:v2', 'a@2024-01-15T12:30:00Z:v2',
      'a@2024-01-15T12:40:00Z:v2', 'a@2024-01-15T12:50:00Z:v2', 'a@2024-01-15T13:00:00Z:v2',
    ], 'b, dropped, no longer fires at 13:00');
    scheduler.set([{ id: 'a', expression: 'rate(30 minutes)' }]);
    await clock.advanceTo('2024-01-15T14:00:00Z');
    assert.deepEqual(fired.slice(7), ['a@2024-01-15T13:30:00Z', 'a@2024-01-15T14:00:00Z'], 'a changed expression takes effect');
    scheduler.set([]);
    assert.equal(clock.timers.size, 0, 'no rules, no timer');
  });

  it('set() refuses a bad rule set before changing anything', async () => {
    const { clock, fired, scheduler } = setup('2024-01-15T12:00:00Z');
    scheduler.set([{ id: 'a', expression: 'rate(10 minutes)' }]);
    assert.throws(() => scheduler.set([{ id: 'b', expression: 'cron(0 12 * * * *)' }]), ScheduleExpressionError);
    assert.throws(() => scheduler.set([{ id: 'a', expression: 'rate(1 minute)' }, { id: 'a', expression: 'rate(2 minutes)' }]), /Two schedule rules have the id a/);
    await clock.advanceTo('2024-01-15T12:10:00Z');
    assert.deepEqual(fired, ['a@2024-01-15T12:10:00Z']);
  });

  it('a disabled rule does not fire; enabling it starts it at its next time', async () => {
    const { clock, fired, scheduler } = setup('2024-01-15T12:00:00Z');
    scheduler.set([{ id: 'off', expression: 'rate(1 minute)', enabled: false }]);
    assert.equal(clock.timers.size, 0);
    assert.deepEqual(scheduler.status(), [{ id: 'off', expression: 'rate(1 minute)', enabled: false, next: null }]);
    await clock.advanceTo('2024-01-15T12:30:30Z');
    assert.deepEqual(fired, []);
    scheduler.set([{ id: 'off', expression: 'rate(1 minute)', enabled: true }]);
    await clock.advanceTo('2024-01-15T12:32:00Z');
    assert.deepEqual(fired, ['off@2024-01-15T12:31:00Z', 'off@2024-01-15T12:32:00Z']);
  });

  it('a restart fires no burst of missed runs, and no catch-up: the next run after now', async () => {
    const store = new Map<string, number>();
    const first = setup('2024-01-15T12:00:00Z', { lastFired: (id) => store.get(id), recordFired: (id, at) => { store.set(id, at); } });
    first.scheduler.set([{ id: 'r', expression: 'rate(5 minutes)' }, { id: 'c', expression: 'cron(0 * * * ? *)' }]);
    await first.clock.advanceTo('2024-01-15T13:00:00Z');
    assert.equal(store.get('r'), Date.parse('2024-01-15T13:00:00Z'));
    await first.scheduler.close();

    // Down from 13:00 to 15:42:10: 31 rate runs and 2 hourly runs fell while it was down.
    const second = setup('2024-01-15T15:42:10Z', { lastFired: (id) => store.get(id), recordFired: (id, at) => { store.set(id, at); } });
    second.scheduler.set([{ id: 'r', expression: 'rate(5 minutes)' }, { id: 'c', expression: 'cron(0 * * * ? *)' }]);
    await second.clock.advanceTo('2024-01-15T15:44:59Z');
    assert.deepEqual(second.fired, [], 'nothing fires at start');
    await second.clock.advanceTo('2024-01-15T16:00:00Z');
    assert.deepEqual(second.fired, ['r@2024-01-15T15:45:00Z', 'r@2024-01-15T15:50:00Z', 'r@2024-01-15T15:55:00Z', 'r@2024-01-15T16:00:00Z', 'c@2024-01-15T16:00:00Z']);
  });

  it('a quick restart does not fire again a run already fired (lastFired at or after now)', async () => {
    const store = new Map<string, number>([['r', Date.parse('2024-01-15T12:05:00Z')]]);
    // The clock reads a little behind the recorded fire (restarted within the same instant, or a clock step back).
    const { clock, fired, scheduler } = setup('2024-01-15T12:04:59.500Z', { lastFired: (id) => store.get(id) });
    scheduler.set([{ id: 'r', expression: 'rate(5 minutes)' }]);
    await clock.advanceTo('2024-01-15T12:10:00Z');
    assert.deepEqual(fired, ['r@2024-01-15T12:10:00Z']);
  });

  it('records each fire with its scheduled time, before fire() is called', async () => {
    const order: string[] = [];
    const { clock, scheduler } = setup('2024-01-15T12:00:00Z', {
      fire: async (rule, at) => { order.push(`fire ${rule.id} ${iso(at)}`); },
      recordFired: (id, at) => { order.push(`record ${id} ${iso(at)}`); },
    });
    scheduler.set([{ id: 'r', expression: 'rate(1 minute)' }]);
    await clock.advanceTo('2024-01-15T12:01:00Z');
    assert.deepEqual(order, ['record r 2024-01-15T12:01:00Z', 'fire r 2024-01-15T12:01:00Z']);
  });

  it('runNow fires a rule at once, enabled or not, without moving its schedule', async () => {
    const { clock, fired, scheduler, recorded } = setup('2024-01-15T12:02:30Z');
    scheduler.set([{ id: 'r', expression: 'rate(5 minutes)' }, { id: 'off', expression: 'cron(0 0 1 1 ? *)', enabled: false }]);
    await scheduler.runNow('r');
    await scheduler.runNow('off');
    assert.deepEqual(fired, ['r@2024-01-15T12:02:30Z', 'off@2024-01-15T12:02:30Z']);
    assert.equal(recorded.size, 0, 'a manual run is not recorded');
    await clock.advanceTo('2024-01-15T12:05:00Z');
    assert.deepEqual(fired.slice(2), ['r@2024-01-15T12:05:00Z']);
    assert.throws(() => scheduler.runNow('nope'), (e: unknown) => e instanceof ScheduleRuleNotFoundError && /No schedule rule nope; the rules are: r, off/.test(e.message));
  });

  it('runNow passes on the fire\'s error; a scheduled fire\'s error goes to onError and the schedule goes on', async () => {
    const errors: string[] = [];
    const { clock, scheduler } = setup('2024-01-15T12:00:00Z', {
      fire: async (rule) => { throw new Error(`boom ${rule.id}`); },
      onError: (rule, at, e) => { errors.push(`${rule.id}@${iso(at)}: ${(e as Error).message}`); },
    });
    scheduler.set([{ id: 'r', expression: 'rate(1 minute)' }]);
    await assert.rejects(scheduler.runNow('r'), /boom r/);
    await clock.advanceTo('2024-01-15T12:02:00Z');
    assert.deepEqual(errors, ['r@2024-01-15T12:01:00Z: boom r', 'r@2024-01-15T12:02:00Z: boom r']);
  });

  it('a fire that throws at once, or a recordFired that throws, is reported and does not stop the scheduler', async () => {
    const errors: string[] = [];
    const fired: string[] = [];
    const { clock, scheduler } = setup('2024-01-15T12:00:00Z', {
      fire: (rule, at) => { fired.push(iso(at)); if (at === Date.parse('2024-01-15T12:01:00Z')) throw new Error('sync'); return Promise.resolve(); },
      recordFired: () => { throw new Error('disk full'); },
      onError: (_r, at, e) => { errors.push(`${iso(at)} ${(e as Error).message}`); },
    });
    scheduler.set([{ id: 'r', expression: 'rate(1 minute)' }]);
    await clock.advanceTo('2024-01-15T12:02:00Z');
    assert.deepEqual(fired, ['2024-01-15T12:01:00Z', '2024-01-15T12:02:00Z']);
    assert.deepEqual(errors, ['2024-01-15T12:01:00Z disk full', '2024-01-15T12:01:00Z sync', '2024-01-15T12:02:00Z disk full']);
  });

  it('a timer that fires early fires nothing and waits again', async () => {
    const { clock, fired, scheduler } = setup('2024-01-15T12:00:00Z');
    scheduler.set([{ id: 'r', expression: 'rate(10 minutes)' }]);
    clock.now = Date.parse('2024-01-15T12:09:59.990Z'); // the timer wakes 10 ms early
    await clock.runPending();
    assert.deepEqual(fired, []);
    assert.equal(clock.waits.at(-1), 10, 're-armed for the 10 ms left');
    await clock.advanceTo('2024-01-15T12:10:00Z');
    assert.deepEqual(fired, ['r@2024-01-15T12:10:00Z']);
  });

  it('a timer that fires late (a suspended host) fires the due run once, late, and skips the runs in between', async () => {
    const { clock, fired, scheduler } = setup('2024-01-15T12:00:00Z');
    scheduler.set([{ id: 'r', expression: 'rate(1 minute)' }]);
    clock.now = Date.parse('2024-01-15T15:00:30Z');
    await clock.runPending();
    assert.deepEqual(fired, ['r@2024-01-15T12:01:00Z']);
    await clock.advanceTo('2024-01-15T15:02:00Z');
    assert.deepEqual(fired, ['r@2024-01-15T12:01:00Z', 'r@2024-01-15T15:01:00Z', 'r@2024-01-15T15:02:00Z']);
  });

  it('a yearly cron waits in steps of at most 24 days, never overflowing setTimeout', async () => {
    const { clock, fired, scheduler } = setup('2024-01-15T12:00:00Z');
    scheduler.set([{ id: 'new-year', expression: 'cron(0 0 1 1 ? *)' }]);
    await clock.advanceTo('2026-01-01T00:00:00Z');
    assert.deepEqual(fired, ['new-year@2025-01-01T00:00:00Z', 'new-year@2026-01-01T00:00:00Z']);
    assert.ok(clock.waits.every((w) => w <= MAX_TIMER_WAIT_MS && w < 2 ** 31 - 1), `waits: ${clock.waits.join(', ')}`);
    // 717 days in waits of at most 24 days: at least 30 of them.
    assert.ok(clock.waits.length >= 30, `re-armed along the way (${clock.waits.length} waits)`);
  });

  it('a cron whose years are over leaves no timer', async () => {
    const { clock, scheduler } = setup('2031-06-01T00:00:00Z');
    scheduler.set([{ id: 'old', expression: 'cron(0 0 1 1 ? 2030-2031)' }]);
    assert.equal(clock.timers.size, 0);
    assert.equal(scheduler.status()[0].next, null);
  });

  it('does not wait for a slow fire before the next one, and close() waits for the fires in flight', async () => {
    const releases: Array<() => void> = [];
    let finished = 0;
    const { clock, scheduler } = setup('2024-01-15T12:00:00Z', {
      fire: () => new Promise<void>((resolve) => { releases.push(() => { finished++; resolve(); }); }),
    });
    scheduler.set([{ id: 'r', expression: 'rate(1 minute)' }]);
    await clock.advanceTo('2024-01-15T12:03:00Z');
    assert.equal(releases.length, 3, 'three fires started though none finished');
    let closed = false;
    const closing = scheduler.close().then(() => { closed = true; });
    await settle();
    assert.equal(closed, false);
    assert.equal(clock.timers.size, 0, 'close() clears the timer');
    for (const r of releases) r();
    await closing;
    assert.equal(finished, 3);
    await clock.advanceTo('2024-01-15T12:10:00Z');
    assert.equal(releases.length, 3, 'nothing fires after close()');
    assert.throws(() => scheduler.set([]), /closed/);
  });
});
