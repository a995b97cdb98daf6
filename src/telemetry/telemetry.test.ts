import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { billedDuration, cost, gbSeconds, LAMBDA_X86_PRICES } from './cost.js';
import { percentile, summarise, type InvocationRecord } from './metrics.js';

const rec = (over: Partial<InvocationRecord>): InvocationRecord => ({
  requestId: 'r', functionName: 'f', version: '$LATEST', startMs: 0, durationMs: 10, billedDurationMs: 10, memorySize: 1024, outcome: 'ok', ...over,
});

describe('cost model (Lambda x86 prices)', () => {
  it('bills duration in 1 ms steps', () => {
    assert.equal(billedDuration(0.2), 1);
    assert.equal(billedDuration(10.01), 11);
    assert.equal(billedDuration(100), 100);
  });

  it('computes GB-seconds and cost as AWS\'s pricing example does', () => {
    // AWS pricing page example: 3 million requests a month, 120 ms each, 1536 MB:
    // 3,000,000 × 0.12 s × 1.5 GB = 540,000 GB-s; compute 540,000 × $0.0000166667 = $9.0000...
    const gbs = 3_000_000 * gbSeconds(120, 1536);
    assert.equal(Math.round(gbs), 540_000);
    const c = cost(3_000_000, gbs);
    assert.equal(Number((c - 3_000_000 * 0.2 / 1e6).toFixed(4)), 9.0000);
    assert.equal(Number(c.toFixed(4)), 9.6000);
    assert.equal(LAMBDA_X86_PRICES.perGbSecond, 0.0000166667);
  });
});

describe('summarise', () => {
  // Ten invocations by hand: 128 MB and 1024 MB, one error, one timeout, one throttle, two cold starts.
  const records: InvocationRecord[] = [
    rec({ startMs: 1000, durationMs: 12.3, billedDurationMs: 13, memorySize: 128, initDurationMs: 80 }),
    rec({ startMs: 1100, durationMs: 5, billedDurationMs: 5, memorySize: 128 }),
    rec({ startMs: 1200, durationMs: 7.5, billedDurationMs: 8, memorySize: 128, outcome: 'error' }),
    rec({ startMs: 1300, durationMs: 3000, billedDurationMs: 3000, memorySize: 1024, outcome: 'timeout', initDurationMs: 90 }),
    rec({ startMs: 1400, durationMs: 1, billedDurationMs: 1, memorySize: 1024 }),
    rec({ startMs: 1500, durationMs: 2, billedDurationMs: 2, memorySize: 1024 }),
    rec({ startMs: 1600, durationMs: 3, billedDurationMs: 3, memorySize: 1024 }),
    rec({ startMs: 1700, durationMs: 4, billedDurationMs: 4, memorySize: 1024 }),
    rec({ startMs: 1800, durationMs: 20, billedDurationMs: 20, memorySize: 1024 }),
    rec({ startMs: 1900, durationMs: 0, billedDurationMs: 0, memorySize: 1024, outcome: 'throttled' }),
  ];

  it('counts, percentiles, throughput, GB-seconds and cost match the hand computation', () => {
    const s = summarise(records, { instances: { peak: 4, min: 1 } });
    assert.equal(s.invocations, 9);
    assert.equal(s.errors, 2);
    assert.equal(s.throttles, 1);
    assert.equal(s.coldStarts, 2);
    // Sorted durations: 1 2 3 4 5 7.5 12.3 20 3000 → p50 = 5th = 5, p95 = p99 = 9th = 3000.
    assert.equal(s.p50Ms, 5);
    assert.equal(s.p95Ms, 3000);
    assert.equal(s.p99Ms, 3000);
    // First start 1000, last end 1300 + 3000 = 4300: 3.3 s for 9 invocations.
    assert.equal(s.elapsedMs, 3300);
    assert.equal(s.throughputPerSecond, 9 / 3.3);
    // 128 MB: (13 + 5 + 8) ms × 0.125 GB = 0.00325 GB-s; 1024 MB: (3000 + 1 + 2 + 3 + 4 + 20) ms × 1 GB = 3.03 GB-s.
    assert.equal(Number(s.gbSeconds.toFixed(8)), 3.03325);
    assert.equal(Number(s.costUsd.toFixed(12)), Number((9 * 0.0000002 + 3.03325 * 0.0000166667).toFixed(12)));
    assert.equal(s.scaleRatio, 4);
  });

  it('uses a given window for throughput and handles no records', () => {
    assert.equal(summarise(records, { windowMs: { from: 0, to: 60_000 } }).throughputPerSecond, 9 / 60);
    const empty = summarise([]);
    assert.equal(empty.invocations, 0);
    assert.equal(empty.p50Ms, null);
    assert.equal(empty.throughputPerSecond, 0);
    assert.equal(empty.costUsd, 0);
  });

  it('takes percentiles by nearest rank', () => {
    assert.equal(percentile([1, 2, 3, 4], 50), 2);
    assert.equal(percentile([1, 2, 3, 4], 75), 3);
    assert.equal(percentile([1, 2, 3, 4], 100), 4);
    assert.equal(percentile([7], 1), 7);
  });
});
