import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decide, type ScalingPolicy, type ScalingStats } from './scaler.js';

const policy: ScalingPolicy = { minInstances: 0, maxInstances: 10, keepAliveMs: 60_000, maxQueued: 5, maxQueueWaitMs: 1000 };
const stats = (over: Partial<ScalingStats> = {}): ScalingStats => ({ starting: 0, busy: 0, idleSince: [], queued: 0, queuedSince: [], ...over });
const T0 = 1_700_000_000_000;

/** A manual clock: a simulated function whose instances start and go idle as the test says. */
class Sim {
  now = T0;
  starting = 0;
  busy = 0;
  idle: number[] = [];
  queue: number[] = [];
  constructor(public p: ScalingPolicy) {}
  step(): ReturnType<typeof decide> {
    const d = decide(this.p, { starting: this.starting, busy: this.busy, idleSince: [...this.idle], queued: this.queue.length, queuedSince: [...this.queue] }, this.now);
    this.idle = this.idle.filter((_, i) => !d.retire.includes(i));
    const covered = this.idle.length + this.starting + d.start;
    this.queue.splice(covered, d.throttle);
    this.starting += d.start;
    return d;
  }
  arrive(n: number) { for (let i = 0; i < n; i++) this.queue.push(this.now); }
  /** Every starting instance becomes ready and takes a queued invocation (or goes idle). */
  ready() {
    while (this.starting > 0) {
      this.starting--;
      if (this.queue.length) { this.queue.shift(); this.busy++; } else this.idle.push(this.now);
    }
  }
  finishAll() { while (this.busy > 0) { this.busy--; this.idle.push(this.now); } }
  live() { return this.starting + this.busy + this.idle.length; }
}

describe('scaler', () => {
  it('scales out one instance per waiting invocation that nothing covers', () => {
    assert.deepEqual(decide(policy, stats({ queued: 3, queuedSince: [T0, T0, T0] }), T0), { start: 3, retire: [], throttle: 0, desired: 3 });
    // The worked example of the docstring: one queued invocation is covered by an instance starting.
    const d = decide({ ...policy, minInstances: 2 }, stats({ busy: 3, starting: 1, queued: 4, queuedSince: [T0, T0, T0, T0] }), T0);
    assert.equal(d.start, 3);
    assert.equal(d.desired, 7);
  });

  it('shares one scale-up between concurrent arrivals at zero', () => {
    const sim = new Sim(policy);
    sim.arrive(4);
    assert.equal(sim.step().start, 4);
    sim.arrive(2);
    assert.equal(sim.step().start, 2, 'only the new arrivals need instances');
    assert.equal(sim.step().start, 0, 'deciding again starts nothing more');
    sim.ready();
    assert.equal(sim.busy, 6);
  });

  it('absorbs a burst up to the maximum, then queues, then throttles what waits too long', () => {
    const sim = new Sim(policy);
    sim.arrive(20);
    const d = sim.step();
    assert.equal(d.start, 10);
    assert.equal(d.throttle, 5, '20 - 10 covered = 10 waiting, the queue holds 5');
    assert.equal(sim.queue.length, 15);
    sim.ready();
    assert.equal(sim.busy, 10);
    assert.equal(sim.queue.length, 5);
    sim.now += 999;
    assert.equal(sim.step().throttle, 0, 'not yet at the wait limit');
    sim.now += 1;
    assert.equal(sim.step().throttle, 5, 'waited maxQueueWaitMs');
    assert.equal(sim.queue.length, 0);
  });

  it('never throttles invocations that a starting instance will take', () => {
    const d = decide(policy, stats({ starting: 2, queued: 2, queuedSince: [T0, T0] }), T0 + 60_000);
    assert.equal(d.throttle, 0);
    assert.equal(d.start, 0);
  });

  it('stays within the host memory room', () => {
    const d = decide(policy, stats({ queued: 6, queuedSince: Array(6).fill(T0), hostRoom: 4 }), T0);
    assert.equal(d.start, 4);
    assert.equal(d.throttle, 0);
    assert.equal(decide(policy, stats({ busy: 4, queued: 2, queuedSince: [T0, T0], hostRoom: 0 }), T0 + 1000).throttle, 2);
  });

  it('keeps the provisioned minimum warm, with no traffic and after idling', () => {
    const p = { ...policy, minInstances: 3 };
    const sim = new Sim(p);
    assert.equal(sim.step().start, 3);
    sim.ready();
    assert.equal(sim.idle.length, 3);
    sim.now += 10 * 60_000;
    assert.deepEqual(sim.step().retire, [], 'idle, but needed for the minimum');
    sim.arrive(5);
    assert.equal(sim.step().start, 2, 'three idle take three, two more start');
  });

  it('never exceeds the reserved maximum, even for the minimum', () => {
    const d = decide({ ...policy, minInstances: 20, maxInstances: 4 }, stats(), T0);
    assert.equal(d.start, 4);
    assert.equal(decide({ ...policy, maxInstances: 4 }, stats({ busy: 4, queued: 3, queuedSince: [T0, T0, T0] }), T0).start, 0);
  });

  it('retires instances idle past the keep-alive, oldest first, and reaches zero', () => {
    const sim = new Sim(policy);
    sim.arrive(3);
    sim.step();
    sim.ready();
    sim.finishAll();
    assert.equal(sim.idle.length, 3);
    sim.now += 30_000;
    sim.idle[2] = sim.now; // one of them served again half-way
    sim.now += 30_000;
    const d = sim.step();
    assert.deepEqual(d.retire, [0, 1]);
    assert.equal(sim.live(), 1);
    sim.now += 30_000;
    sim.step();
    assert.equal(sim.live(), 0, 'scaled to zero');
    assert.equal(sim.step().desired, 0);
  });

  it('does not retire while invocations wait', () => {
    const d = decide(policy, stats({ idleSince: [T0], queued: 1, queuedSince: [T0] }), T0 + 120_000);
    assert.deepEqual(d.retire, []);
  });

  describe('with several invocations per instance (an opt-in)', () => {
    const c4: ScalingPolicy = { ...policy, concurrency: 4, maxQueued: 100 };
    const at = (n: number) => Array.from({ length: n }, () => T0);

    it('starts one instance per c waiting invocations that no free slot covers', () => {
      // The docstring's example: 3 free slots on busy instances, 1 starting (4 slots), 20 waiting: 13 uncovered.
      assert.equal(decide(c4, stats({ busy: 2, freeSlots: 3, starting: 1, queued: 20, queuedSince: at(20) }), T0).start, 4);
      // A burst of 9 on a function at zero: ceil(9 / 4) = 3 instances.
      assert.deepEqual(decide(c4, stats({ queued: 9, queuedSince: at(9) }), T0), { start: 3, retire: [], throttle: 0, desired: 3 });
      // Waiting invocations that fit on running instances start nothing.
      assert.equal(decide(c4, stats({ busy: 1, freeSlots: 3, queued: 3, queuedSince: at(3) }), T0).start, 0);
    });

    it('throttles at the maximum only what no slot will take', () => {
      const full: ScalingPolicy = { ...c4, maxInstances: 2, maxQueued: 2 };
      // 2 instances running 8 invocations, none free: 12 wait, the queue holds 2.
      const d = decide(full, stats({ busy: 2, freeSlots: 0, queued: 12, queuedSince: at(12) }), T0);
      assert.equal(d.start, 0);
      assert.equal(d.throttle, 10);
      // One instance with 3 free slots and room for one more instance: 3 + 4 covered, the queue holds 2 of the other 5.
      const e = decide(full, stats({ busy: 1, freeSlots: 3, queued: 12, queuedSince: at(12) }), T0);
      assert.equal(e.start, 1);
      assert.equal(e.throttle, 3);
    });

    it('is the one-per-instance policy when concurrency is 1', () => {
      const s = stats({ busy: 3, starting: 1, queued: 4, queuedSince: at(4) });
      assert.deepEqual(decide({ ...policy, concurrency: 1 }, s, T0), decide(policy, s, T0));
    });
  });
  describe('waiting for a busy instance when that is quicker than a cold start', () => {
    const big: ScalingPolicy = { ...policy, maxInstances: 100, maxQueued: 100 };
    const at = (n: number, t = T0) => Array.from({ length: n }, () => t);

    it('holds what busy instances serve sooner than a new one starts (the docstring example)', () => {
      const d = decide(big, stats({ busy: 2, queued: 10, queuedSince: at(10), serviceMs: 0.4, coldStartMs: 5 }), T0);
      assert.equal(d.start, 0);
      assert.equal(d.throttle, 0);
      // The first (k = 0) is expected to get a busy instance after 0.4 ms: past 2 × 0.4 + 1 = 1.8 ms the estimate was wrong.
      assert.equal(d.recheckAt, T0 + 1.8);
      // 30 waiting: places 0..23 are served within 5 ms by 2 instances at 0.4 ms each ((floor(k / 2) + 1) * 0.4 < 5), 6 get instances.
      assert.equal(decide(big, stats({ busy: 2, queued: 30, queuedSince: at(30), serviceMs: 0.4, coldStartMs: 5 }), T0).start, 6);
    });

    it('calls off starts a burst made before the function was known to be quick, never below the minimum', () => {
      // The docstring example: 2 busy, 8 starting, 10 waiting that the busy ones serve within 2 ms.
      const d = decide(big, stats({ busy: 2, starting: 8, queued: 10, queuedSince: at(10), serviceMs: 0.4, coldStartMs: 5 }), T0);
      assert.equal(d.start, 0);
      assert.equal(d.cancel, 8);
      // With a provisioned minimum of 6, 10 live instances keep 6.
      assert.equal(decide({ ...big, minInstances: 6 }, stats({ busy: 2, starting: 8, queued: 10, queuedSince: at(10), serviceMs: 0.4, coldStartMs: 5 }), T0).cancel, 4);
      // 40 waiting: 24 are served by the busy ones in time, 16 need the starting instances: 8 are not enough, start 8 more.
      const e = decide(big, stats({ busy: 2, starting: 8, queued: 40, queuedSince: at(40), serviceMs: 0.4, coldStartMs: 5 }), T0);
      assert.equal(e.start, 8);
      assert.equal(e.cancel, undefined);
      // No history: nothing is called off (Lambda's policy).
      assert.equal(decide(big, stats({ busy: 2, starting: 8, queued: 1, queuedSince: at(1) }), T0).cancel, undefined);
    });

    it('starts an instance for an invocation that waited well past its expected wait (the busy instance is on a slow one)', () => {
      // Expected 0.4 ms: it gives up after 1.8 ms, long before a 1500 ms cold start (a function with a slow init).
      assert.equal(decide(big, stats({ busy: 1, queued: 1, queuedSince: [T0], serviceMs: 0.4, coldStartMs: 1500 }), T0 + 1).start, 0);
      const d = decide(big, stats({ busy: 1, queued: 1, queuedSince: [T0], serviceMs: 0.4, coldStartMs: 1500 }), T0 + 1.8);
      assert.equal(d.start, 1);
      assert.equal(d.recheckAt, undefined);
    });

    it('calls off starts no invocation waits for any more, once the function is known to be quick', () => {
      // A burst was answered by the first instances; 6 starts still wait for a boot slot.
      assert.equal(decide(big, stats({ busy: 0, idleSince: [T0, T0], starting: 6, queued: 0, queuedSince: [], serviceMs: 2, coldStartMs: 100 }), T0).cancel, 6);
      // Not for a slow function (Lambda's policy: the instances start and stay warm).
      assert.equal(decide(big, stats({ busy: 0, idleSince: [T0, T0], starting: 6, queued: 0, queuedSince: [], serviceMs: 200, coldStartMs: 100 }), T0).cancel, undefined);
    });

    it('throttles at once at reserved concurrency 0, as on Lambda', () => {
      assert.equal(decide({ ...policy, maxInstances: 0 }, stats({ queued: 3, queuedSince: [T0, T0, T0] }), T0).throttle, 3);
    });

    it('scales as on Lambda for a function slower than a cold start, with no history, or with nothing busy', () => {
      const lambda = decide(big, stats({ busy: 2, queued: 10, queuedSince: at(10) }), T0).start;
      assert.equal(lambda, 10);
      assert.equal(decide(big, stats({ busy: 2, queued: 10, queuedSince: at(10), serviceMs: 20, coldStartMs: 5 }), T0).start, 10);
      assert.equal(decide(big, stats({ busy: 2, queued: 10, queuedSince: at(10), coldStartMs: 5 }), T0).start, 10);
      assert.equal(decide(big, stats({ busy: 0, queued: 10, queuedSince: at(10), serviceMs: 0.4, coldStartMs: 5 }), T0).start, 10);
    });

    it('throttles at the maximum only what neither a busy instance nor a new one will take', () => {
      const small: ScalingPolicy = { ...policy, maxInstances: 2, maxQueued: 3 };
      // 2 busy at the maximum, 20 waiting, 0.4 ms each against a 5 ms cold start: 20 are expected within 4 ms, none throttled.
      assert.equal(decide(small, stats({ busy: 2, queued: 20, queuedSince: at(20), serviceMs: 0.4, coldStartMs: 5 }), T0).throttle, 0);
      // 40 waiting: 24 held, the queue holds 3 more, 13 throttled.
      assert.equal(decide(small, stats({ busy: 2, queued: 40, queuedSince: at(40), serviceMs: 0.4, coldStartMs: 5 }), T0).throttle, 13);
    });
  });
});
