import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { billedDuration, cost, gbSeconds, LAMBDA_X86_PRICES } from './cost.js';
import { concurrency, percentile, summarise, type InvocationRecord } from './metrics.js';
import { PrometheusMetrics } from './prometheus.js';

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

describe('summarise: what counts as an invocation, and the scale ratio', () => {
  it('counts neither throttled nor rejected requests as invocations, nor bills them (as CloudWatch Invocations)', () => {
    const s = summarise([
      rec({ startMs: 0, durationMs: 100, billedDurationMs: 100, memorySize: 1024 }),
      rec({ startMs: 0, durationMs: 0, billedDurationMs: 0, outcome: 'throttled' }),
      rec({ startMs: 0, durationMs: 0, billedDurationMs: 0, outcome: 'rejected' }),
    ]);
    assert.equal(s.invocations, 1);
    assert.equal(s.throttles, 1);
    assert.equal(s.errors, 0);
    // One request and 0.1 s × 1 GB: 0.0000002 + 0.1 × 0.0000166667 = 0.00000186667.
    assert.equal(Number(s.costUsd.toFixed(14)), 0.00000186667);
  });

  it('divides the peak by max(min, 1)', () => {
    assert.equal(summarise([], { instances: { peak: 6, min: 0 } }).scaleRatio, 6);
    assert.equal(summarise([], { instances: { peak: 6, min: 3 } }).scaleRatio, 2);
    const none = summarise([]);
    assert.deepEqual([none.peakInstances, none.minInstances, none.scaleRatio], [0, 0, 0]);
  });
});

describe('concurrency from records', () => {
  it('counts invocations busy over [start, start + duration): one ending at t frees room for one starting at t', () => {
    // a [0, 100), b [50, 150), c [100, 200), d [100, 120): at 100 a ends as c and d start → b, c, d = 3.
    const recs = [
      rec({ startMs: 0, durationMs: 100 }), rec({ startMs: 50, durationMs: 100 }),
      rec({ startMs: 100, durationMs: 100 }), rec({ startMs: 100, durationMs: 20 }),
    ];
    // Over [0, 200) the fewest busy is 1 ([0, 50) and [150, 200)).
    assert.deepEqual(concurrency(recs), { peak: 3, min: 1 });
    // A window that reaches past the last end has an idle moment.
    assert.deepEqual(concurrency(recs, { from: 0, to: 300 }), { peak: 3, min: 0 });
    // Within [60, 100) a and b are both busy throughout.
    assert.deepEqual(concurrency(recs, { from: 60, to: 100 }).min, 2);
  });

  it('ignores throttled, rejected and zero-length records', () => {
    assert.deepEqual(concurrency([
      rec({ startMs: 0, durationMs: 0, outcome: 'throttled' }),
      rec({ startMs: 0, durationMs: 5, outcome: 'rejected' }),
      rec({ startMs: 0, durationMs: 0 }),
    ]), { peak: 0, min: 0 });
  });
});

describe('PrometheusMetrics', () => {
  it('counts a throttle apart from invocations, a rejection nowhere, and sets instances', async () => {
    const p = new PrometheusMetrics({ defaultMetrics: false, prices: { perRequest: 1, perGbSecond: 1000 } });
    p.observe(rec({ functionName: 'f', outcome: 'throttled', durationMs: 0, billedDurationMs: 0 }));
    p.observe(rec({ functionName: 'f', outcome: 'rejected', durationMs: 0, billedDurationMs: 0 }));
    // 10 ms at 1024 MB = 0.01 GB-s: cost 1 + 0.01 × 1000 = 11 at these prices.
    p.observe(rec({ functionName: 'f', outcome: 'oom', initDurationMs: 40 }));
    p.setInstances('f', '$LATEST', 2);
    p.setInstances('f', '$LATEST', 0);
    const text = await p.text();
    const line = (s: string) => new RegExp(`^${s.replace(/[{}$]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1];
    assert.equal(line('nimbus_throttles_total{function="f",version="$LATEST"}'), '1');
    assert.equal(line('nimbus_invocations_total{function="f",version="$LATEST",outcome="oom"}'), '1');
    assert.equal(line('nimbus_errors_total{function="f",version="$LATEST"}'), '1');
    assert.equal(line('nimbus_cold_starts_total{function="f",version="$LATEST"}'), '1');
    assert.equal(line('nimbus_init_duration_seconds_sum{function="f",version="$LATEST"}'), '0.04');
    assert.equal(line('nimbus_billed_gb_seconds_total{function="f",version="$LATEST"}'), '0.01');
    assert.equal(line('nimbus_cost_usd_total{function="f",version="$LATEST"}'), '11');
    assert.equal(line('nimbus_concurrent_instances{function="f",version="$LATEST"}'), '0');
    assert.doesNotMatch(text, /outcome="(throttled|rejected)"/);
    assert.doesNotMatch(text, /^process_/m);
  });
});
