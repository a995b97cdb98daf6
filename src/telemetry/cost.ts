/**
 * Lambda's price model, in Lambda's units: requests and GB-seconds.
 *
 * Per invocation, billed duration (rounded up to 1 ms) × memory (GB =
 * MB / 1024) = GB-seconds; cost = requests × price per request +
 * GB-seconds × price per GB-second. Defaults are Lambda's x86 list prices.
 * https://aws.amazon.com/lambda/pricing/
 */

/** Prices in USD. */
export interface Prices {
  /** Per request (default $0.20 per million = 0.0000002). */
  readonly perRequest: number;
  /** Per GB-second (default $0.0000166667). */
  readonly perGbSecond: number;
}

export const LAMBDA_X86_PRICES: Prices = { perRequest: 0.2 / 1_000_000, perGbSecond: 0.0000166667 };

/** GB-seconds of one invocation: billed ms × MB, in Lambda's units (1 GB = 1024 MB). */
export function gbSeconds(billedDurationMs: number, memoryMB: number): number {
  return (billedDurationMs / 1000) * (memoryMB / 1024);
}

/** Cost in USD of `requests` invocations totalling `gbs` GB-seconds. */
export function cost(requests: number, gbs: number, prices: Prices = LAMBDA_X86_PRICES): number {
  return requests * prices.perRequest + gbs * prices.perGbSecond;
}

/** Lambda's billed duration: the duration rounded up to the next whole ms (at least 1 ms). */
export function billedDuration(durationMs: number): number {
  return Math.max(1, Math.ceil(durationMs));
}
