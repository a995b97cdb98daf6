/**
 * Invocation records and what is computed from them: counts by outcome,
 * duration percentiles, throughput (invocations / elapsed time), GB-seconds
 * and cost, and the scale ratio (peak instances / minimum instances).
 *
 * The counts mean what Lambda's CloudWatch metrics of the same name mean:
 * https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html
 * - Invocations: times the function code ran, successful or ending in a
 *   function error. Throttled requests and requests refused before running
 *   (outcome `rejected`, Lambda's "invocation errors") are not invocations;
 *   the count equals the number of requests billed.
 * - Errors: invocations that ended in a function error, the runtime's
 *   included (timeouts, out of memory, crashes, init errors).
 * - Throttles: requests refused because no concurrency was free.
 */
import type { InvocationRecord, Outcome } from '../core/index.js';

export type { InvocationRecord };
import { cost, gbSeconds, LAMBDA_X86_PRICES, type Prices } from './cost.js';

/** Outcomes that count as Lambda's `Errors` (function errors, the runtime's included). */
export const ERROR_OUTCOMES: ReadonlySet<Outcome> = new Set<Outcome>(['error', 'timeout', 'oom', 'crashed', 'init_error']);

/** Whether the function code ran, i.e. whether the record counts as one of Lambda's `Invocations` (and is billed). */
export function ran(outcome: Outcome): boolean {
  return outcome !== 'throttled' && outcome !== 'rejected';
}

/** What `summarise` computes. Durations in ms, throughput in invocations per second, cost in USD. */
export interface MetricsSummary {
  /** Invocations that ran (successful or ending in a function error); throttled and rejected requests excluded. */
  readonly invocations: number;
  /** Invocations that ended in error, timeout, oom, crashed or init_error. */
  readonly errors: number;
  /** Requests refused for want of concurrency (outcome `throttled`). */
  readonly throttles: number;
  /** Invocations that had an init phase (`initDurationMs` set). */
  readonly coldStarts: number;
  /** Nearest-rank percentiles of the duration of the invocations that ran; null when none ran. */
  readonly p50Ms: number | null;
  readonly p95Ms: number | null;
  readonly p99Ms: number | null;
  /** The window's length (`windowMs.to - windowMs.from`) when given, else from the first start to the last end, in ms. */
  readonly elapsedMs: number;
  /** invocations / (elapsedMs / 1000); 0 when elapsedMs is 0. */
  readonly throughputPerSecond: number;
  /** Σ billed ms / 1000 × memory MB / 1024 over the invocations that ran. */
  readonly gbSeconds: number;
  /** invocations × prices.perRequest + gbSeconds × prices.perGbSecond. */
  readonly costUsd: number;
  /** The most instances at once: as given in `instances`, else the peak of concurrent invocations in the records. */
  readonly peakInstances: number;
  /** The fewest instances: as given in `instances`, else the minimum of concurrent invocations over the window. */
  readonly minInstances: number;
  /** peakInstances / max(minInstances, 1). */
  readonly scaleRatio: number;
}

/** Options of `summarise`. */
export interface SummariseOptions {
  /** Prices for the cost (default: Lambda's x86 list prices). */
  readonly prices?: Prices;
  /** The window the records were taken from (epoch ms, `from` inclusive, `to` exclusive): sets elapsed time and throughput. */
  readonly windowMs?: { readonly from: number; readonly to: number };
  /**
   * Instance counts the platform observed (its scaler's peak, the function's
   * minimum, e.g. provisioned concurrency). When absent they are derived from
   * the records by `concurrency` (one invocation at a time per instance, so
   * busy instances = concurrent invocations).
   */
  readonly instances?: { readonly peak: number; readonly min: number };
}

/**
 * Summarises invocation records (any order, any mix of functions).
 *
 * Throttled and rejected requests count only as throttles (or not at all):
 * Lambda bills neither their request nor a duration. Percentiles use the
 * nearest-rank method (see `percentile`) over the durations of the
 * invocations that ran. GB-seconds and cost follow `cost.ts`.
 */
export function summarise(records: readonly InvocationRecord[], opts: SummariseOptions = {}): MetricsSummary {
  const prices = opts.prices ?? LAMBDA_X86_PRICES;
  let errors = 0, throttles = 0, coldStarts = 0, gbs = 0;
  let first = Infinity, last = -Infinity;
  const durations: number[] = [];
  for (const r of records) {
    if (r.outcome === 'throttled') throttles++;
    if (!ran(r.outcome)) continue;
    if (ERROR_OUTCOMES.has(r.outcome)) errors++;
    if (r.initDurationMs !== undefined) coldStarts++;
    durations.push(r.durationMs);
    gbs += gbSeconds(r.billedDurationMs, r.memorySize);
    first = Math.min(first, r.startMs);
    last = Math.max(last, r.startMs + r.durationMs);
  }
  const invocations = durations.length;
  durations.sort((a, b) => a - b);
  const window = opts.windowMs ?? (invocations ? { from: first, to: last } : undefined);
  const elapsedMs = window ? Math.max(0, window.to - window.from) : 0;
  const instances = opts.instances ?? concurrency(records, window);
  return {
    invocations,
    errors,
    throttles,
    coldStarts,
    p50Ms: percentile(durations, 50),
    p95Ms: percentile(durations, 95),
    p99Ms: percentile(durations, 99),
    elapsedMs,
    throughputPerSecond: elapsedMs > 0 ? invocations / (elapsedMs / 1000) : 0,
    gbSeconds: gbs,
    costUsd: cost(invocations, gbs, prices),
    peakInstances: instances.peak,
    minInstances: instances.min,
    scaleRatio: instances.peak / Math.max(instances.min, 1),
  };
}

/**
 * Nearest-rank percentile of ascending values, or null when empty: the value
 * at rank ⌈p/100 × n⌉ (1-based, at least 1). Always one of the values, never
 * an interpolation: of 1,000 durations, p95 is the 950th and p99 the 990th.
 */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/**
 * Concurrent invocations, from the records alone: each invocation that ran is
 * busy over [startMs, startMs + durationMs) (half-open: an instance that ends
 * at t is free for one that starts at t). Lambda's ConcurrentExecutions.
 *
 * - peak: the most invocations busy at one time.
 * - min: the fewest busy at any time within `window` (default: from the first
 *   start to the last end), so 0 whenever the window has an idle moment.
 *
 * Both are 0 when no invocation ran. Zero-length invocations are ignored.
 */
export function concurrency(
  records: readonly InvocationRecord[],
  window?: { readonly from: number; readonly to: number },
): { peak: number; min: number } {
  // Each event is a time and +1 (start) or -1 (end); ends sort before starts at the same time.
  const events: [number, number][] = [];
  for (const r of records) {
    if (!ran(r.outcome) || !(r.durationMs > 0)) continue;
    events.push([r.startMs, 1], [r.startMs + r.durationMs, -1]);
  }
  if (events.length === 0) return { peak: 0, min: 0 };
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const from = window?.from ?? events[0][0];
  const to = window?.to ?? events[events.length - 1][0];
  let current = 0, peak = 0, min = Infinity;
  let segmentStart = -Infinity;
  for (let i = 0; i < events.length; i++) {
    const [t, delta] = events[i];
    // The count held over [segmentStart, t): take it for min where that overlaps the window.
    if (Math.min(t, to) > Math.max(segmentStart, from)) min = Math.min(min, current);
    current += delta;
    segmentStart = t;
    // Peak after all events at this time, so an end and a start at t do not add up.
    if (i + 1 === events.length || events[i + 1][0] !== t) peak = Math.max(peak, current);
  }
  if (to > Math.max(segmentStart, from)) min = Math.min(min, current);
  return { peak, min: min === Infinity ? 0 : min };
}
