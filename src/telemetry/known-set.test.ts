/**
 * A known set of invocations, every figure computed by hand in the comments,
 * checked through the store's SQL roll-ups, `summarise` and the Prometheus
 * exposition text.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { register as globalRegistry } from 'prom-client';
import type { Outcome } from '../core/index.js';
import { openSqliteStore, type Store } from '../store/index.js';
import { PrometheusMetrics, summarise, type InvocationRecord } from './index.js';

// T0 is a whole minute: 1,700,000,040,000 = 28,333,334 × 60,000.
const T0 = 1_700_000_040_000;
const MINUTE = 60_000;
/** Records in a minute start 150 ms apart, in the order the blocks are listed. */
const STEP = 150;

interface Block { count: number; version: string; outcome: Outcome; durationMs: number; billedMs: number; initMs?: number }

// Function `api`, 512 MB (0.5 GB) throughout. Per minute, in start order:
//
// minute 0 (v1), records 0–359:
//   10 cold ok 120 ms (init 200 ms), 300 warm ok 120 ms, 20 error 120 ms,
//   20 slow ok 480.4 ms (billed 481), 10 throttled
// minute 1 (v1 records 0–229, then v2 records 230–359):
//   v1: 200 warm ok 120 ms, 20 error 120 ms, 10 timeout 3,000 ms
//   v2: 10 cold ok 120 ms (init 300 ms), 100 warm ok 120 ms, 20 throttled
// minute 2 (v2), records 0–309:
//   280 warm ok 120 ms, 10 error 120 ms, 20 slow ok 480.4 ms (billed 481)
//
// Totals: ran 1,000 (950 of 120 ms, 40 of 480.4 ms, 10 of 3,000 ms),
// throttles 30, errors 50 error + 10 timeout = 60, cold starts 20.
const MINUTES: Block[][] = [
  [
    { count: 10, version: '1', outcome: 'ok', durationMs: 120, billedMs: 120, initMs: 200 },
    { count: 300, version: '1', outcome: 'ok', durationMs: 120, billedMs: 120 },
    { count: 20, version: '1', outcome: 'error', durationMs: 120, billedMs: 120 },
    { count: 20, version: '1', outcome: 'ok', durationMs: 480.4, billedMs: 481 },
    { count: 10, version: '1', outcome: 'throttled', durationMs: 0, billedMs: 0 },
  ],
  [
    { count: 200, version: '1', outcome: 'ok', durationMs: 120, billedMs: 120 },
    { count: 20, version: '1', outcome: 'error', durationMs: 120, billedMs: 120 },
    { count: 10, version: '1', outcome: 'timeout', durationMs: 3000, billedMs: 3000 },
    { count: 10, version: '2', outcome: 'ok', durationMs: 120, billedMs: 120, initMs: 300 },
    { count: 100, version: '2', outcome: 'ok', durationMs: 120, billedMs: 120 },
    { count: 20, version: '2', outcome: 'throttled', durationMs: 0, billedMs: 0 },
  ],
  [
    { count: 280, version: '2', outcome: 'ok', durationMs: 120, billedMs: 120 },
    { count: 10, version: '2', outcome: 'error', durationMs: 120, billedMs: 120 },
    { count: 20, version: '2', outcome: 'ok', durationMs: 480.4, billedMs: 481 },
  ],
];

function knownSet(): InvocationRecord[] {
  const out: InvocationRecord[] = [];
  MINUTES.forEach((blocks, m) => {
    let i = 0;
    for (const b of blocks) {
      for (let k = 0; k < b.count; k++, i++) {
        out.push({
          requestId: `m${m}-${i}`, functionName: 'api', version: b.version, startMs: T0 + m * MINUTE + i * STEP,
          durationMs: b.durationMs, billedDurationMs: b.billedMs, memorySize: 512, outcome: b.outcome,
          ...(b.initMs !== undefined ? { initDurationMs: b.initMs } : {}),
        });
      }
    }
  });
  return out;
}

const close = (actual: number, expected: number, tolerance: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual}, expected ${expected} ± ${tolerance}`);

describe('a known set of 1,030 requests', () => {
  const records = knownSet();
  let dir: string;
  let store: Store;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'nimbus-metrics-'));
    store = openSqliteStore(join(dir, 'data'));
    for (const r of records) store.recordInvocation(r);
  });
  after(() => {
    try {
      store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is the set the comments describe', () => {
    assert.equal(records.length, 1030);
    assert.equal(records.filter((r) => r.outcome !== 'throttled').length, 1000);
  });

  it('rolls up per function, version and minute in SQL', () => {
    const rows = store.rollups('api', T0, T0 + 3 * MINUTE);
    // minute 0, v1: ran 10 + 300 + 20 + 20 = 350; errors 20; throttles 10; cold 10;
    //   duration 330 × 120 + 20 × 480.4 = 39,600 + 9,608 = 49,208 ms, max 480.4;
    //   billed 330 × 120 + 20 × 481 = 39,600 + 9,620 = 49,220 ms; GB-s 49.22 s × 0.5 GB = 24.61.
    // minute 1, v1: ran 230; errors 20 + 10 = 30; duration 220 × 120 + 10 × 3,000 = 56,400 ms = billed, max 3,000; GB-s 28.2.
    // minute 1, v2: ran 110; throttles 20; cold 10; duration 110 × 120 = 13,200 ms = billed, max 120; GB-s 6.6.
    // minute 2, v2: ran 310; errors 10; duration 290 × 120 + 20 × 480.4 = 34,800 + 9,608 = 44,408 ms, max 480.4;
    //   billed 34,800 + 9,620 = 44,420 ms; GB-s 22.21.
    const expected = [
      { minuteMs: T0, version: '1', invocations: 350, errors: 20, throttles: 10, coldStarts: 10, durationSumMs: 49_208, durationMaxMs: 480.4, billedMsSum: 49_220, gbSeconds: 24.61 },
      { minuteMs: T0 + MINUTE, version: '1', invocations: 230, errors: 30, throttles: 0, coldStarts: 0, durationSumMs: 56_400, durationMaxMs: 3000, billedMsSum: 56_400, gbSeconds: 28.2 },
      { minuteMs: T0 + MINUTE, version: '2', invocations: 110, errors: 0, throttles: 20, coldStarts: 10, durationSumMs: 13_200, durationMaxMs: 120, billedMsSum: 13_200, gbSeconds: 6.6 },
      { minuteMs: T0 + 2 * MINUTE, version: '2', invocations: 310, errors: 10, throttles: 0, coldStarts: 0, durationSumMs: 44_408, durationMaxMs: 480.4, billedMsSum: 44_420, gbSeconds: 22.21 },
    ];
    assert.equal(rows.length, expected.length);
    rows.forEach((row, i) => {
      const { durationSumMs, ...exact } = expected[i];
      const { durationSumMs: sum, ...rest } = row;
      assert.deepEqual(rest, { functionName: 'api', ...exact }, `row ${i}`);
      close(sum, durationSumMs, 1e-6, `row ${i} durationSumMs`);
    });
    // Σ GB-seconds over the rows: 24.61 + 28.2 + 6.6 + 22.21 = 81.62.
    close(rows.reduce((s, r) => s + r.gbSeconds, 0), 81.62, 1e-9, 'Σ gbSeconds');
    // The window is half-open on start time: [T0 + 1 min, T0 + 2 min) holds minute 1 only.
    assert.deepEqual(store.rollups(undefined, T0 + MINUTE, T0 + 2 * MINUTE).map((r) => [r.minuteMs - T0, r.version]), [[MINUTE, '1'], [MINUTE, '2']]);
    assert.deepEqual(store.rollups('other', T0), []);
  });

  it('summarises what the store returns', () => {
    const recs = store.invocations('api', T0, T0 + 3 * MINUTE);
    assert.equal(recs.length, 1030);
    const s = summarise(recs);
    assert.equal(s.invocations, 1000);
    assert.equal(s.errors, 60);
    assert.equal(s.throttles, 30);
    assert.equal(s.coldStarts, 20);
    // Nearest rank over 1,000 sorted durations: ranks 1–950 are 120, 951–990 are 480.4, 991–1000 are 3,000.
    // p50 = rank ⌈0.50 × 1000⌉ = 500 → 120; p95 = rank 950 → 120; p99 = rank 990 → 480.4.
    assert.equal(s.p50Ms, 120);
    assert.equal(s.p95Ms, 120);
    assert.equal(s.p99Ms, 480.4);
    // Billed: 950 × 120 + 40 × 481 + 10 × 3,000 = 114,000 + 19,240 + 30,000 = 163,240 ms;
    // GB-s = 163.24 s × 0.5 GB = 81.62.
    close(s.gbSeconds, 81.62, 1e-9, 'gbSeconds');
    // Cost = 1,000 × $0.0000002 + 81.62 × $0.0000166667 = 0.0002 + 0.001360336054 = $0.001560336054.
    close(s.costUsd, 0.001560336054, 1e-12, 'costUsd');
    // Elapsed: the first start is T0; the last end is minute 2's record 309 (slow): 120,000 + 309 × 150 + 480.4
    // = 166,830.4 ms after T0 (the 3,000 ms timeouts of minute 1 end by 60,000 + 229 × 150 + 3,000 = 97,350).
    // (Epoch ms near 1.7e12 are doubles 2.4e-4 ms apart, so T0 + 166,830.4 is not exact: compare to 1e-3 ms.)
    close(s.elapsedMs, 166_830.4, 1e-3, 'elapsedMs');
    // Throughput = 1,000 / 166.8304 s = 5.99411… per second.
    close(s.throughputPerSecond, 1000 / 166.8304, 1e-7, 'throughput');
    // Concurrency from the records: in minute 1 the ten timeouts (records 220–229, started 33,000–34,350,
    // 3,000 ms each) all run until 36,000 while records 230–239 (120 ms each, 150 ms apart) start,
    // so 10 + 1 = 11 at the peak; 120 ms records 150 ms apart leave idle moments, so min = 0 and
    // the scale ratio is 11 / max(0, 1) = 11.
    assert.equal(s.peakInstances, 11);
    assert.equal(s.minInstances, 0);
    assert.equal(s.scaleRatio, 11);
    // Over the three-minute window: 1,000 / 180 s.
    const w = summarise(recs, { windowMs: { from: T0, to: T0 + 3 * MINUTE } });
    assert.equal(w.elapsedMs, 180_000);
    assert.equal(w.throughputPerSecond, 1000 / 180);
    // Instances the platform observed win over the records: 8 / 2 = 4.
    const given = summarise(recs, { instances: { peak: 8, min: 2 } });
    assert.deepEqual([given.peakInstances, given.minInstances, given.scaleRatio], [8, 2, 4]);
    // Prices are settable: $1 per million requests and $0.00001 per GB-s → 0.001 + 0.0008162 = $0.0018162.
    close(summarise(recs, { prices: { perRequest: 1e-6, perGbSecond: 1e-5 } }).costUsd, 0.0018162, 1e-12, 'costUsd at other prices');
  });

  it('exposes the same figures to Prometheus', async () => {
    const prom = new PrometheusMetrics();
    for (const r of store.invocations('api', T0)) prom.observe(r);
    prom.setInstances('api', '2', 3);
    const text = await prom.text();
    const m = parseExposition(text);
    const v1 = { function: 'api', version: '1' };
    const v2 = { function: 'api', version: '2' };

    // Invocations by outcome. v1: ok 10 + 300 + 20 (minute 0) + 200 (minute 1) = 530, error 20 + 20 = 40, timeout 10.
    // v2: ok 10 + 100 + 280 + 20 = 410, error 10. 530 + 40 + 10 + 410 + 10 = 1,000; throttled is not an outcome here.
    assert.equal(m.get('nimbus_invocations_total', { ...v1, outcome: 'ok' }), 530);
    assert.equal(m.get('nimbus_invocations_total', { ...v1, outcome: 'error' }), 40);
    assert.equal(m.get('nimbus_invocations_total', { ...v1, outcome: 'timeout' }), 10);
    assert.equal(m.get('nimbus_invocations_total', { ...v2, outcome: 'ok' }), 410);
    assert.equal(m.get('nimbus_invocations_total', { ...v2, outcome: 'error' }), 10);
    assert.equal(m.sum('nimbus_invocations_total'), 1000);
    assert.equal(m.sum('nimbus_invocations_total', { outcome: 'throttled' }), 0);
    assert.equal(m.get('nimbus_errors_total', v1), 50);
    assert.equal(m.get('nimbus_errors_total', v2), 10);
    assert.equal(m.get('nimbus_throttles_total', v1), 10);
    assert.equal(m.get('nimbus_throttles_total', v2), 20);
    assert.equal(m.get('nimbus_cold_starts_total', v1), 10);
    assert.equal(m.get('nimbus_cold_starts_total', v2), 10);

    // Duration histogram, seconds. v1: 580 ran; 550 of 0.12 s, 20 of 0.4804 s, 10 of 3 s;
    // sum 49.208 + 56.4 = 105.608 s. v2: 420 ran; 400 of 0.12 s, 20 of 0.4804 s; sum 13.2 + 44.408 = 57.608 s.
    assert.equal(m.get('nimbus_invocation_duration_seconds_count', v1), 580);
    close(m.get('nimbus_invocation_duration_seconds_sum', v1), 105.608, 1e-9, 'v1 duration sum');
    assert.equal(m.get('nimbus_invocation_duration_seconds_bucket', { ...v1, le: '0.1' }), 0);
    assert.equal(m.get('nimbus_invocation_duration_seconds_bucket', { ...v1, le: '0.25' }), 550);
    assert.equal(m.get('nimbus_invocation_duration_seconds_bucket', { ...v1, le: '0.5' }), 570);
    assert.equal(m.get('nimbus_invocation_duration_seconds_bucket', { ...v1, le: '2.5' }), 570);
    assert.equal(m.get('nimbus_invocation_duration_seconds_bucket', { ...v1, le: '5' }), 580);
    assert.equal(m.get('nimbus_invocation_duration_seconds_bucket', { ...v1, le: '900' }), 580);
    assert.equal(m.get('nimbus_invocation_duration_seconds_bucket', { ...v1, le: '+Inf' }), 580);
    assert.equal(m.get('nimbus_invocation_duration_seconds_count', v2), 420);
    close(m.get('nimbus_invocation_duration_seconds_sum', v2), 57.608, 1e-9, 'v2 duration sum');
    assert.equal(m.get('nimbus_invocation_duration_seconds_bucket', { ...v2, le: '0.25' }), 400);
    assert.equal(m.get('nimbus_invocation_duration_seconds_bucket', { ...v2, le: '0.5' }), 420);

    // Init: v1 10 × 0.2 s = 2 s, all ≤ 0.25; v2 10 × 0.3 s = 3 s, none ≤ 0.25, all ≤ 0.5.
    assert.equal(m.get('nimbus_init_duration_seconds_count', v1), 10);
    close(m.get('nimbus_init_duration_seconds_sum', v1), 2, 1e-12, 'v1 init sum');
    assert.equal(m.get('nimbus_init_duration_seconds_bucket', { ...v1, le: '0.25' }), 10);
    assert.equal(m.get('nimbus_init_duration_seconds_count', v2), 10);
    close(m.get('nimbus_init_duration_seconds_sum', v2), 3, 1e-12, 'v2 init sum');
    assert.equal(m.get('nimbus_init_duration_seconds_bucket', { ...v2, le: '0.25' }), 0);
    assert.equal(m.get('nimbus_init_duration_seconds_bucket', { ...v2, le: '0.5' }), 10);

    // GB-s: v1 24.61 + 28.2 = 52.81, v2 6.6 + 22.21 = 28.81.
    close(m.get('nimbus_billed_gb_seconds_total', v1), 52.81, 1e-9, 'v1 GB-s');
    close(m.get('nimbus_billed_gb_seconds_total', v2), 28.81, 1e-9, 'v2 GB-s');
    // Cost: v1 580 × 0.0000002 + 52.81 × 0.0000166667 = 0.000116 + 0.000880168427 = 0.000996168427;
    //       v2 420 × 0.0000002 + 28.81 × 0.0000166667 = 0.000084 + 0.000480167627 = 0.000564167627;
    //       together $0.001560336054, as summarise says.
    close(m.get('nimbus_cost_usd_total', v1), 0.000996168427, 1e-12, 'v1 cost');
    close(m.get('nimbus_cost_usd_total', v2), 0.000564167627, 1e-12, 'v2 cost');
    close(m.sum('nimbus_cost_usd_total'), 0.001560336054, 1e-12, 'total cost');

    assert.equal(m.get('nimbus_concurrent_instances', v2), 3);
    assert.match(text, /^# TYPE nimbus_invocation_duration_seconds histogram$/m);
    assert.match(text, /^# TYPE nimbus_concurrent_instances gauge$/m);
    // prom-client's default metrics of the platform process are in the same registry.
    assert.ok(m.has('process_cpu_user_seconds_total'), 'process metrics');
    assert.ok(m.has('nodejs_heap_size_used_bytes'), 'nodejs metrics');
    assert.match(prom.contentType, /^text\/plain; version=0\.0\.4/);
  });

  it('keeps its metrics out of prom-client\'s global registry, so several can live in one process', async () => {
    const a = new PrometheusMetrics({ defaultMetrics: false });
    const b = new PrometheusMetrics({ defaultMetrics: false });
    a.observe(records[0]);
    assert.equal(parseExposition(await a.text()).get('nimbus_cold_starts_total', { function: 'api', version: '1' }), 1);
    assert.equal(parseExposition(await b.text()).sum('nimbus_cold_starts_total'), 0);
    assert.doesNotMatch(await globalRegistry.metrics(), /nimbus_/);
  });
});

/** A reader of the Prometheus text exposition format (samples only: `name{l="v",…} value`). */
function parseExposition(text: string) {
  const samples: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `unparsable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
    samples.push({ name: m[1], labels, value });
  }
  const matches = (s: (typeof samples)[number], name: string, want: Record<string, string>) =>
    s.name === name && Object.entries(want).every(([k, v]) => s.labels[k] === v);
  return {
    has: (name: string) => samples.some((s) => s.name === name),
    /** The value of the one sample with exactly these labels. */
    get(name: string, labels: Record<string, string>): number {
      const found = samples.filter((s) => matches(s, name, labels) && Object.keys(s.labels).length === Object.keys(labels).length);
      assert.equal(found.length, 1, `${name}${JSON.stringify(labels)}: ${found.length} samples`);
      return found[0].value;
    },
    /** The sum of every sample of `name` with (at least) these labels. */
    sum: (name: string, labels: Record<string, string> = {}) =>
      samples.filter((s) => matches(s, name, labels)).reduce((t, s) => t + s.value, 0),
  };
}
