/** Invocation records, metrics and Lambda's cost model. */
export { billedDuration, cost, gbSeconds, LAMBDA_X86_PRICES, type Prices } from './cost.js';
export { percentile, summarise, type InvocationRecord, type MetricsSummary } from './metrics.js';
