/**
 * Prometheus metrics of the platform, for `GET /metrics` on the control port.
 *
 * The invocation metrics are Lambda's CloudWatch metrics under Prometheus
 * names, with the same meanings:
 * https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html
 *
 * | Prometheus (labels)                                           | CloudWatch            |
 * |---------------------------------------------------------------|-----------------------|
 * | nimbus_invocations_total{function,version,outcome}             | Invocations           |
 * | nimbus_errors_total{function,version}                          | Errors                |
 * | nimbus_throttles_total{function,version}                       | Throttles             |
 * | nimbus_cold_starts_total{function,version}                     | (REPORT Init Duration present) |
 * | nimbus_invocation_duration_seconds{function,version} histogram | Duration              |
 * | nimbus_init_duration_seconds{function,version} histogram       | (REPORT Init Duration) |
 * | nimbus_billed_gb_seconds_total{function,version}               | (billing: GB-seconds) |
 * | nimbus_cost_usd_total{function,version}                        | (billing: USD)        |
 * | nimbus_concurrent_instances{function,version} gauge            | ConcurrentExecutions  |
 *
 * Cost follows Lambda's price model (https://aws.amazon.com/lambda/pricing/,
 * see cost.ts). The registry is this object's own, never prom-client's global
 * one, and also holds prom-client's default metrics of the platform process
 * (`process_*`, `nodejs_*`).
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { InvocationRecord, Outcome } from '../core/index.js';
import { gbSeconds, LAMBDA_X86_PRICES, type Prices } from './cost.js';
import { ERROR_OUTCOMES, ran } from './metrics.js';

/**
 * Duration buckets in seconds, from Lambda's 1 ms billing step to its 900 s
 * maximum timeout: roughly 1-2.5-5 per decade up to 10 s, then the
 * timeouts people set (30 s, API Gateway's 29/30 s; 60, 300, 900 s).
 */
export const DURATION_BUCKETS_SECONDS: readonly number[] = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 900,
];

/** Init duration buckets in seconds: Lambda's init phase is limited to 10 s. */
export const INIT_BUCKETS_SECONDS: readonly number[] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Options of `PrometheusMetrics`. */
export interface PrometheusOptions {
  /** Prices for `nimbus_cost_usd_total` (default: Lambda's x86 list prices). */
  readonly prices?: Prices;
  /** Collect prom-client's default metrics of this process (default true). */
  readonly defaultMetrics?: boolean;
}

/** The children of every metric for one function version, made once (labels are hashed per call otherwise). */
interface Children {
  readonly invocations: Map<Outcome, Counter.Internal>;
  readonly errors: Counter.Internal;
  readonly throttles: Counter.Internal;
  readonly coldStarts: Counter.Internal;
  readonly duration: Histogram.Internal<'function' | 'version'>;
  readonly init: Histogram.Internal<'function' | 'version'>;
  readonly gbSeconds: Counter.Internal;
  readonly cost: Counter.Internal;
}

/**
 * The platform's Prometheus metrics in their own registry.
 *
 * - `observe(record)`: once per finished request (throttled ones included).
 * - `setInstances(function, version, n)`: whenever a function version's
 *   live instance count changes (or periodically).
 * - `text()` and `contentType`: the body and Content-Type of `GET /metrics`.
 */
export class PrometheusMetrics {
  /** The registry all metrics live in (not prom-client's global one). */
  readonly registry = new Registry();
  private readonly prices: Prices;
  private readonly children = new Map<string, Children>();

  private readonly invocations = new Counter({
    name: 'nimbus_invocations_total',
    help: 'Invocations that ran (successful or ending in a function error), by outcome; throttled requests are not invocations (CloudWatch Invocations).',
    labelNames: ['function', 'version', 'outcome'] as const,
    registers: [this.registry],
  });
  private readonly errors = new Counter({
    name: 'nimbus_errors_total',
    help: 'Invocations that ended in a function error: error, timeout, oom, crashed or init_error (CloudWatch Errors).',
    labelNames: ['function', 'version'] as const,
    registers: [this.registry],
  });
  private readonly throttles = new Counter({
    name: 'nimbus_throttles_total',
    help: 'Requests refused because no concurrency was free (CloudWatch Throttles).',
    labelNames: ['function', 'version'] as const,
    registers: [this.registry],
  });
  private readonly coldStarts = new Counter({
    name: 'nimbus_cold_starts_total',
    help: 'Invocations that started a new instance and ran its init phase.',
    labelNames: ['function', 'version'] as const,
    registers: [this.registry],
  });
  private readonly duration = new Histogram({
    name: 'nimbus_invocation_duration_seconds',
    help: 'Time the function code spent on an invocation, init excluded (CloudWatch Duration), in seconds.',
    labelNames: ['function', 'version'] as const,
    buckets: [...DURATION_BUCKETS_SECONDS],
    registers: [this.registry],
  });
  private readonly init = new Histogram({
    name: 'nimbus_init_duration_seconds',
    help: 'Init phase of cold starts (the REPORT line\'s Init Duration), in seconds.',
    labelNames: ['function', 'version'] as const,
    buckets: [...INIT_BUCKETS_SECONDS],
    registers: [this.registry],
  });
  private readonly gbSeconds = new Counter({
    name: 'nimbus_billed_gb_seconds_total',
    help: 'Billed duration (1 ms steps) times memory size: seconds x MB / 1024.',
    labelNames: ['function', 'version'] as const,
    registers: [this.registry],
  });
  private readonly cost = new Counter({
    name: 'nimbus_cost_usd_total',
    help: 'Cost in USD at the configured prices: requests x price per request + GB-seconds x price per GB-second.',
    labelNames: ['function', 'version'] as const,
    registers: [this.registry],
  });
  private readonly instances = new Gauge({
    name: 'nimbus_concurrent_instances',
    help: 'Live instances of the function version, busy or idle (one invocation at a time each; cf. CloudWatch ConcurrentExecutions).',
    labelNames: ['function', 'version'] as const,
    registers: [this.registry],
  });

  constructor(options: PrometheusOptions = {}) {
    this.prices = options.prices ?? LAMBDA_X86_PRICES;
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** The Content-Type of `text()`: Prometheus text exposition format 0.0.4. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * Counts one finished request. A throttled one adds to throttles only; a
   * rejected one (refused before running) to nothing; the rest to
   * invocations by outcome, errors, cold starts (when `initDurationMs` is
   * set), the duration histograms, GB-seconds and cost.
   */
  observe(record: InvocationRecord): void {
    const c = this.childrenOf(record.functionName, record.version);
    if (record.outcome === 'throttled') {
      c.throttles.inc();
      return;
    }
    if (!ran(record.outcome)) return;
    let byOutcome = c.invocations.get(record.outcome);
    if (byOutcome === undefined) {
      byOutcome = this.invocations.labels(record.functionName, record.version, record.outcome);
      c.invocations.set(record.outcome, byOutcome);
    }
    byOutcome.inc();
    if (ERROR_OUTCOMES.has(record.outcome)) c.errors.inc();
    if (record.initDurationMs !== undefined) {
      c.coldStarts.inc();
      c.init.observe(record.initDurationMs / 1000);
    }
    c.duration.observe(record.durationMs / 1000);
    const gbs = gbSeconds(record.billedDurationMs, record.memorySize);
    if (gbs > 0) c.gbSeconds.inc(gbs);
    c.cost.inc(this.prices.perRequest + gbs * this.prices.perGbSecond);
  }

  /** Sets the live instance count of a function version (0 when it scaled to zero). */
  setInstances(functionName: string, version: string, count: number): void {
    this.instances.labels(functionName, version).set(count);
  }

  /** The exposition text of every metric, default ones included. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  private childrenOf(functionName: string, version: string): Children {
    const key = `${functionName}\0${version}`;
    let c = this.children.get(key);
    if (c === undefined) {
      c = {
        invocations: new Map(),
        errors: this.errors.labels(functionName, version),
        throttles: this.throttles.labels(functionName, version),
        coldStarts: this.coldStarts.labels(functionName, version),
        duration: this.duration.labels(functionName, version),
        init: this.init.labels(functionName, version),
        gbSeconds: this.gbSeconds.labels(functionName, version),
        cost: this.cost.labels(functionName, version),
      };
      this.children.set(key, c);
    }
    return c;
  }
}
