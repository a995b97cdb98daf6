/** Invocation records, metrics, Prometheus exposition and Lambda's cost model. */
export { billedDuration, cost, gbSeconds, LAMBDA_X86_PRICES, type Prices } from './cost.js';
export {
  concurrency, ERROR_OUTCOMES, percentile, ran, summarise,
  type InvocationRecord, type MetricsSummary, type SummariseOptions,
} from './metrics.js';
export { DURATION_BUCKETS_SECONDS, INIT_BUCKETS_SECONDS, PrometheusMetrics, type PrometheusOptions } from './prometheus.js';
