/**
 * Invocation records and what is computed from them: counts by outcome,
 * duration percentiles, throughput (invocations / elapsed time), GB-seconds
 * and cost, and the scale ratio (peak instances / minimum instances).
 */
import type { InvocationRecord, Outcome } from '../core/index.js';

export type { InvocationRecord };
import { cost, gbSeconds, LAMBDA_X86_PRICES, type Prices } from './cost.js';

/** What `summarise` computes. Durations in ms, throughput in invocations per second, cost in USD. */
export interface MetricsSummary {
  readonly invocations: number;
  /** Invocations that ended in error, timeout, oom, crashed or init_error. */
  readonly errors: number;
  readonly throttles: number;
  readonly coldStarts: number;
  readonly p50Ms: number | null;
  readonly p95Ms: number | null;
  readonly p99Ms: number | null;
  /** From the first start to the last end (or the window given), in ms. */
  readonly elapsedMs: number;
  readonly throughputPerSecond: number;
  readonly gbSeconds: number;
  readonly costUsd: number;
  readonly peakInstances?: number;
  readonly minInstances?: number;
  /** peak / min, when min > 0. */
  readonly scaleRatio?: number;
}

const ERROR_OUTCOMES = new Set<Outcome>(['error', 'timeout', 'oom', 'crashed', 'init_error']);

/**
 * Summarises records. Throttled invocations count as requests for the
 * count of throttles only: Lambda bills neither their request nor duration.
 * Percentiles use the nearest-rank method over invocations that ran.
 */
export function summarise(
  records: readonly InvocationRecord[],
  opts: { prices?: Prices; windowMs?: { from: number; to: number }; instances?: { peak: number; min: number } } = {},
): MetricsSummary {
  const prices = opts.prices ?? LAMBDA_X86_PRICES;
  let errors = 0, throttles = 0, coldStarts = 0, gbs = 0;
  let first = Infinity, last = -Infinity;
  const durations: number[] = [];
  for (const r of records) {
    if (r.outcome === 'throttled') { throttles++; continue; }
    if (ERROR_OUTCOMES.has(r.outcome)) errors++;
    if (r.initDurationMs !== undefined) coldStarts++;
    durations.push(r.durationMs);
    gbs += gbSeconds(r.billedDurationMs, r.memorySize);
    first = Math.min(first, r.startMs);
    last = Math.max(last, r.startMs + r.durationMs);
  }
  const ran = durations.length;
  durations.sort((a, b) => a - b);
  const elapsedMs = opts.windowMs ? opts.windowMs.to - opts.windowMs.from : ran ? last - first : 0;
  const summary: MetricsSummary = {
    invocations: ran,
    errors,
    throttles,
    coldStarts,
    p50Ms: percentile(durations, 50),
    p95Ms: percentile(durations, 95),
    p99Ms: percentile(durations, 99),
    elapsedMs,
    throughputPerSecond: elapsedMs > 0 ? ran / (elapsedMs / 1000) : 0,
    gbSeconds: gbs,
    costUsd: cost(ran, gbs, prices),
  };
  if (!opts.instances) return summary;
  const { peak, min } = opts.instances;
  return { ...summary, peakInstances: peak, minInstances: min, ...(min > 0 ? { scaleRatio: peak / min } : {}) };
}

/** Nearest-rank percentile of sorted values, or null when empty. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}
