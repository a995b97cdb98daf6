/**
 * The asynchronous invocation queue: what runs an Invoke with
 * InvocationType `Event` after the 202, with Lambda's delivery semantics.
 *
 *   enqueue ──► Store (async_events, committed) ──► claim (lease) ──► invoke
 *                     ▲                                                 │
 *                     └──── retry later (function error, throttle) ◄────┤
 *   onSuccess ◄── success                                               │
 *   onFailure, else the dead-letter queue ◄── retries exhausted / too old
 *
 * Behaviour copied from Lambda
 * (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html,
 * https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-configuring.html,
 * https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html):
 *
 * - A function error (the handler failed, timed out, ran out of memory, its
 *   runtime exited, its init failed) is retried up to `maximumRetryAttempts`
 *   times (0–2, default 2), waiting one minute before the first retry and
 *   two before the second.
 * - A throttle (429) or a platform failure (500-series: Nimbus could not run
 *   the function) goes back to the queue and is tried again with an
 *   exponential backoff from 1 s up to 5 min, for as long as the event is
 *   younger than `maximumEventAge`; these tries do not count as attempts.
 * - An event older than `maximumEventAgeSeconds` (60–21600, default 21600 =
 *   6 h) is not sent to the function again: condition `EventAgeExceeded`.
 * - On success the `onSuccess` destination receives the invocation record;
 *   on final failure the `onFailure` destination does, and when there is
 *   none (or delivering to it fails) the event goes to Nimbus's dead-letter
 *   queue (Store.listDeadLetters), from which it can be redriven.
 * - Every attempt uses the request id the event was accepted with, so a
 *   function can de-duplicate. Delivery is at least once: a process killed
 *   mid-delivery leaves its events leased, and they are due again when the
 *   lease expires (or at once with `reclaimOnStart`).
 */
import { randomUUID } from 'node:crypto';
import { newRequestId, type InvocationResult } from '../core/index.js';
import type { AsyncCounts, AsyncEventRow, DeadLetterRow, Store } from '../store/index.js';
import { parseDestination, type Destination } from './destinations.js';

/** Lambda's defaults for asynchronous invocation (PutFunctionEventInvokeConfig). */
export const ASYNC_DEFAULTS = Object.freeze({ maximumRetryAttempts: 2, maximumEventAgeSeconds: 21_600 });

/** Lambda's allowed ranges, inclusive: MaximumRetryAttempts 0–2, MaximumEventAgeInSeconds 60–21600. */
export const ASYNC_LIMITS = Object.freeze({
  maximumRetryAttempts: Object.freeze([0, 2] as const),
  maximumEventAgeSeconds: Object.freeze([60, 21_600] as const),
});

/** Lambda's waits before the first and second retry of a function error: 1 min, then 2 min. */
export const LAMBDA_RETRY_DELAYS_MS: readonly number[] = Object.freeze([60_000, 120_000]);

/** Lambda's backoff for throttles and system errors: from 1 s after the first try, doubling, at most 5 min. */
export const LAMBDA_THROTTLE_BACKOFF = Object.freeze({ initialMs: 1_000, maxMs: 300_000 });

/**
 * A function's asynchronous invocation settings (Lambda's
 * FunctionEventInvokeConfig; serverless.yml `maximumRetryAttempts`,
 * `maximumEventAge`, `destinations`). Unset fields take ASYNC_DEFAULTS;
 * values out of range are clamped (the config part validates them when it
 * reads the file).
 */
export interface AsyncInvokeConfig {
  /** 0–2, default 2. */
  readonly maximumRetryAttempts?: number;
  /** Seconds, 60–21600, default 21600 (Lambda's MaximumEventAgeInSeconds). */
  readonly maximumEventAgeSeconds?: number;
  /** The same in serverless.yml's name (seconds); `maximumEventAgeSeconds` wins when both are set. */
  readonly maximumEventAge?: number;
  /** Where the record of a success goes: a Destination, or its text (a function name, or a function, queue, topic or event-bus ARN). */
  readonly onSuccess?: string | Destination;
  /** Where the record of a final failure goes (else the dead-letter queue). */
  readonly onFailure?: string | Destination;
}

/** Why an invocation record was sent (Lambda's `requestContext.condition`). */
export type InvocationCondition = 'Success' | 'RetriesExhausted' | 'EventAgeExceeded';

/**
 * Lambda's invocation record, as destinations receive it.
 * https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html
 *
 * @example
 * { "version": "1.0", "timestamp": "2019-11-14T18:16:05.568Z",
 *   "requestContext": { "requestId": "e4b46cbf-…", "condition": "RetriesExhausted", "approximateInvokeCount": 3,
 *     "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:my-function:$LATEST" },
 *   "requestPayload": { … the event … },
 *   "responseContext": { "statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled" },
 *   "responsePayload": { "errorMessage": "…" } }
 */
export interface AsyncInvocationRecord {
  readonly version: '1.0';
  /** ISO time the record was made. */
  readonly timestamp: string;
  readonly requestContext: {
    readonly requestId: string;
    /** The function's ARN with the qualifier invoked (`:$LATEST` when none). */
    readonly functionArn: string;
    readonly condition: InvocationCondition;
    /** How many times the function ran for this event (throttles and platform failures excluded). */
    readonly approximateInvokeCount: number;
  };
  /** The event, parsed (its text when it is not JSON). */
  readonly requestPayload: unknown;
  readonly responseContext: {
    /** The Invoke status of the last try: 200 when the function ran (also on a function error), 429 throttled, 500 platform failure, 404 function gone. */
    readonly statusCode: number;
    readonly executedVersion: string;
    /** Set when the function failed (Nimbus, like Lambda today, reports every function error as Unhandled). */
    readonly functionError?: 'Unhandled';
  };
  /** The function's result or error document, parsed (null when there was none). */
  readonly responsePayload: unknown;
}

/**
 * Runs one attempt. Must resolve (a rejection counts as a platform failure
 * and is retried like a throttle). `requestId` is the event's own, the same
 * for every attempt; `executedVersion` (the version that ran) defaults to
 * the qualifier when numeric, else `$LATEST`.
 */
export type AsyncInvoke = (
  functionName: string, qualifier: string | undefined, payload: string, requestId: string,
) => Promise<InvocationResult & { readonly executedVersion?: string }>;

/** Sends an invocation record to a destination; a rejection is a failed delivery (see destinationDelivery in destinations.ts). */
export type DeliverRecord = (destination: Destination, record: AsyncInvocationRecord) => Promise<void>;

export interface AsyncQueueOptions {
  readonly store: Store;
  readonly invoke: AsyncInvoke;
  /** The function's settings (undefined: defaults, no destinations). Asked at every attempt, so a deploy takes effect. */
  readonly config: (functionName: string, qualifier?: string) => AsyncInvokeConfig | undefined;
  readonly deliver: DeliverRecord;
  /** The unqualified ARN of a function, for the record. Default `arn:aws:lambda:us-east-1:000000000000:function:<name>`. */
  readonly functionArn?: (functionName: string) => string;
  /** Epoch ms. Default Date.now. Timers still run in real time; every wait is also capped by `pollIntervalMs`. */
  readonly now?: () => number;
  /** Wait before retry n (1-based) of a function error; the last entry repeats. Default LAMBDA_RETRY_DELAYS_MS. */
  readonly retryDelaysMs?: readonly number[];
  /** Backoff of throttles and platform failures. Default LAMBDA_THROTTLE_BACKOFF. */
  readonly throttleBackoff?: { readonly initialMs: number; readonly maxMs: number };
  /** Most events being invoked at once (across functions). Default 16. */
  readonly concurrency?: number;
  /**
   * How long a claim holds an event (ms). Must exceed the longest function
   * timeout plus destination delivery, or a slow attempt is run twice.
   * Default 16 min (Lambda's 15 min maximum timeout + 1 min).
   */
  readonly leaseMs?: number;
  /** Longest sleep between looks at the store (ms), for events other processes enqueue. Default 1000. */
  readonly pollIntervalMs?: number;
  /**
   * At start(), make every leased event due at once. Only for the one
   * process that owns the data directory (NimbusServer holds its lock):
   * leases it finds then belong to a process that died.
   */
  readonly reclaimOnStart?: boolean;
  /** Where failures of the queue itself go (a store write failed, a destination refused). Default: process warnings. */
  readonly onError?: (message: string, error: unknown) => void;
}

/** Counters since the queue was made (named after Lambda's metrics where there is one), and the store's sizes. */
export interface AsyncQueueStats extends AsyncCounts {
  /** AsyncEventsReceived. */
  readonly received: number;
  readonly succeeded: number;
  /** Function errors that were retried. */
  readonly retried: number;
  /** Throttles and platform failures (tried again without using an attempt). */
  readonly throttled: number;
  /** AsyncEventsDropped: events that ended without success (RetriesExhausted or EventAgeExceeded). */
  readonly dropped: number;
  readonly deadLettered: number;
  readonly destinationDeliveries: number;
  /** DestinationDeliveryFailures. */
  readonly destinationDeliveryFailures: number;
  /** Events being invoked now by this queue. */
  readonly inFlight: number;
}

/** What an attempt's result means for the event. */
export type AsyncDisposition = 'success' | 'function-error' | 'retry-later' | 'gone';

/**
 * Classifies one attempt's result:
 * - `success`: outcome `ok`.
 * - `function-error`: `error`, `timeout`, `oom`, `init_error`, `crashed` —
 *   the function ran (or tried to) and failed; uses an attempt.
 * - `retry-later`: `throttled`, or a result Nimbus made without running the
 *   function (error type `Nimbus.*`, e.g. `Nimbus.ShuttingDown`); no attempt used.
 * - `gone`: `rejected` (the function or qualifier no longer exists); final.
 */
export function asyncDisposition(result: Pick<InvocationResult, 'outcome' | 'payload'>): AsyncDisposition {
  switch (result.outcome) {
    case 'ok': return 'success';
    case 'throttled': return 'retry-later';
    case 'rejected': return 'gone';
    default: return platformErrorType(result.payload) ? 'retry-later' : 'function-error';
  }
}

function platformErrorType(payload: string): boolean {
  // Cheap test first: only the platform's own documents carry this prefix.
  if (!payload.includes('"Nimbus.')) return false;
  try {
    const t = (JSON.parse(payload) as { errorType?: unknown }).errorType;
    return typeof t === 'string' && t.startsWith('Nimbus.');
  } catch {
    return false;
  }
}

/** The last try's response, as kept in the store between attempts (AsyncEventRow.lastResponse). */
interface StoredResponse {
  statusCode: number;
  executedVersion: string;
  functionError?: 'Unhandled';
  /** The result or error document, as text. */
  payload: string;
}

/**
 * The durable asynchronous invocation queue over a Store.
 *
 * @example
 * const queue = new AsyncQueue({ store, invoke, config, deliver });
 * queue.start();
 * const requestId = queue.enqueue('orders-dev-process', '{"id":1}');   // durable when it returns: answer 202
 * await queue.stop();                                                  // lets attempts in flight finish
 */
export class AsyncQueue {
  private readonly store: Store;
  private readonly now: () => number;
  private readonly retryDelaysMs: readonly number[];
  private readonly backoff: { readonly initialMs: number; readonly maxMs: number };
  private readonly concurrency: number;
  private readonly leaseMs: number;
  private readonly pollIntervalMs: number;
  private readonly functionArn: (functionName: string) => string;
  private readonly onError: (message: string, error: unknown) => void;
  /** This queue's claims are `<owner>:<n>`, so a claim taken over by another can no longer complete. */
  private readonly owner = randomUUID();
  private claims = 0;
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private kickPending = false;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly counters = {
    received: 0, succeeded: 0, retried: 0, throttled: 0, dropped: 0, deadLettered: 0,
    destinationDeliveries: 0, destinationDeliveryFailures: 0,
  };

  constructor(private readonly options: AsyncQueueOptions) {
    this.store = options.store;
    this.now = options.now ?? Date.now;
    this.retryDelaysMs = options.retryDelaysMs && options.retryDelaysMs.length > 0 ? [...options.retryDelaysMs] : LAMBDA_RETRY_DELAYS_MS;
    this.backoff = options.throttleBackoff ?? LAMBDA_THROTTLE_BACKOFF;
    this.concurrency = Math.max(1, Math.floor(options.concurrency ?? 16));
    this.leaseMs = options.leaseMs ?? 16 * 60_000;
    this.pollIntervalMs = options.pollIntervalMs ?? 1_000;
    this.functionArn = options.functionArn ?? ((name) => `arn:aws:lambda:us-east-1:000000000000:function:${name}`);
    this.onError = options.onError ?? ((message, error) => process.emitWarning(`nimbus async queue: ${message}: ${(error as Error)?.message ?? String(error)}`));
  }

  /**
   * Accepts an event: returns its request id once it is committed to the
   * store (so the caller may answer 202). Throws when the store cannot take
   * it (then answer an error: the event was not accepted). Works whether
   * the queue is started or not; a stopped queue delivers it at start().
   */
  enqueue(functionName: string, payload: string, qualifier?: string, requestId: string = newRequestId()): string {
    const now = this.now();
    const row = this.store.enqueueEvent({ requestId, functionName, qualifier, payload, receivedMs: now });
    this.counters.received++;
    this.kick();
    return row.requestId;
  }

  /**
   * Puts a dead letter back on the queue (same request id, age and
   * attempts starting again). Undefined when there is no such dead letter.
   */
  redrive(deadLetterId: number): AsyncEventRow | undefined {
    const row = this.store.redriveDeadLetter(deadLetterId, this.now());
    if (row) this.kick();
    return row;
  }

  /** Dead letters of one function or all, oldest first. */
  deadLetters(functionName?: string): DeadLetterRow[] {
    return this.store.listDeadLetters(functionName);
  }

  /** Starts delivering: every pending event, and every leased one whose lease has expired. Idempotent. */
  start(): void {
    if (this.running) return;
    this.running = true;
    if (this.options.reclaimOnStart) {
      try {
        this.store.releaseLeases(this.now());
      } catch (e) {
        this.onError('cannot release the leases of a previous process', e);
      }
    }
    this.pump();
  }

  /**
   * Stops claiming events and waits for the attempts in flight to finish
   * (their destinations delivered, the store updated), at most `deadlineMs`
   * when given. An attempt still running after it keeps its lease and runs
   * again after a restart.
   */
  async stop(deadlineMs?: number): Promise<void> {
    this.running = false;
    if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
    const settled = Promise.allSettled([...this.inFlight]).then(() => undefined);
    if (deadlineMs === undefined) { await settled; return; }
    let timeout: NodeJS.Timeout | undefined;
    await Promise.race([settled, new Promise<void>((r) => { timeout = setTimeout(r, deadlineMs); })]);
    clearTimeout(timeout);
  }

  stats(): AsyncQueueStats {
    return Object.freeze({ ...this.counters, inFlight: this.inFlight.size, ...this.store.asyncCounts(this.now()) });
  }

  // ── the loop ────────────────────────────────────────────────────────────

  /** Pumps once soon (coalescing many enqueues into one claim). */
  private kick(): void {
    if (!this.running || this.kickPending) return;
    this.kickPending = true;
    setImmediate(() => { this.kickPending = false; this.pump(); });
  }

  /** Claims what is due and fits, starts it, and sleeps until the next event is due. */
  private pump(): void {
    if (!this.running) return;
    if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
    const room = this.concurrency - this.inFlight.size;
    if (room <= 0) return; // a finishing attempt pumps again
    let claimed: AsyncEventRow[];
    let next: number | undefined;
    const now = this.now();
    try {
      claimed = this.store.claimEvents(`${this.owner}:${++this.claims}`, now, this.leaseMs, room);
      next = claimed.length < room ? this.store.nextEventDueMs() : undefined;
    } catch (e) {
      this.onError('cannot claim events, will try again', e);
      this.arm(this.pollIntervalMs);
      return;
    }
    for (const event of claimed) {
      const p: Promise<void> = this.attempt(event).finally(() => {
        this.inFlight.delete(p);
        this.pump();
      });
      this.inFlight.add(p);
    }
    if (this.inFlight.size < this.concurrency) {
      this.arm(next === undefined ? this.pollIntervalMs : Math.min(this.pollIntervalMs, next - now));
    }
  }

  private arm(delayMs: number): void {
    if (!this.running) return;
    this.timer = setTimeout(() => { this.timer = undefined; this.pump(); }, Math.max(0, delayMs));
  }

  /** One attempt of one claimed event. Never rejects. */
  private async attempt(event: AsyncEventRow): Promise<void> {
    try {
      await this.run(event);
    } catch (e) {
      // A store write failed: the lease expires and the event is tried again (at least once).
      this.onError(`event ${event.requestId} of ${event.functionName} stays queued`, e);
    }
  }

  private async run(event: AsyncEventRow): Promise<void> {
    const config = settings(this.options.config(event.functionName, event.qualifier));
    const expiresAt = event.receivedMs + config.maximumEventAgeSeconds * 1000;
    const lease = event.lease!;
    if (this.now() >= expiresAt) {
      await this.fail(event, config, 'EventAgeExceeded', event.attempts, readResponse(event.lastResponse), lease);
      return;
    }

    let result: InvocationResult & { readonly executedVersion?: string };
    try {
      result = await this.options.invoke(event.functionName, event.qualifier, event.payload, event.requestId);
    } catch (e) {
      result = {
        requestId: event.requestId, outcome: 'crashed', durationMs: 0, billedDurationMs: 0, logs: '',
        payload: JSON.stringify({ errorType: 'Nimbus.InvokeFailed', errorMessage: (e as Error)?.message ?? String(e) }),
      };
    }
    const disposition = asyncDisposition(result);
    const executedVersion = result.executedVersion || defaultVersion(event.qualifier);
    const now = this.now();

    if (disposition === 'success') {
      this.counters.succeeded++;
      if (config.onSuccess !== undefined) {
        const response: StoredResponse = { statusCode: 200, executedVersion, payload: result.payload };
        await this.send(config.onSuccess, this.record(event, 'Success', event.attempts + 1, response));
      }
      this.store.completeEvent(event.id, lease);
      return;
    }

    if (disposition === 'function-error' || disposition === 'gone') {
      const attempts = event.attempts + (disposition === 'function-error' ? 1 : 0);
      const response: StoredResponse = disposition === 'gone'
        ? { statusCode: 404, executedVersion, payload: result.payload }
        : { statusCode: 200, executedVersion, functionError: 'Unhandled', payload: result.payload };
      if (disposition === 'gone' || attempts > config.maximumRetryAttempts) {
        await this.fail(event, config, 'RetriesExhausted', attempts, response, lease);
        return;
      }
      this.counters.retried++;
      const wait = this.retryDelaysMs[Math.min(attempts, this.retryDelaysMs.length) - 1];
      // A retry due after the event's age limit happens at the limit, where it is discarded as too old.
      this.store.retryEvent(event.id, lease, {
        visibleAtMs: Math.min(now + wait, expiresAt), attempts, throttles: event.throttles, lastResponse: JSON.stringify(response),
      });
      return;
    }

    // Throttled, or the platform could not run it: back to the queue with a growing wait, no attempt used.
    this.counters.throttled++;
    const throttles = event.throttles + 1;
    const wait = Math.min(this.backoff.initialMs * 2 ** Math.min(throttles - 1, 30), this.backoff.maxMs);
    const response: StoredResponse = { statusCode: result.outcome === 'throttled' ? 429 : 500, executedVersion, payload: result.payload };
    this.store.retryEvent(event.id, lease, {
      visibleAtMs: Math.min(now + wait, expiresAt), attempts: event.attempts, throttles,
      // Keep a function error's response over a later throttle's: it says more about why the event failed.
      lastResponse: event.attempts > 0 && event.lastResponse !== undefined ? undefined : JSON.stringify(response),
    });
  }

  /** Final failure: the onFailure destination, or (none, or it refused) the dead-letter queue. */
  private async fail(
    event: AsyncEventRow, config: Settings, condition: Exclude<InvocationCondition, 'Success'>,
    attempts: number, response: StoredResponse | undefined, lease: string,
  ): Promise<void> {
    this.counters.dropped++;
    const record = this.record(event, condition, attempts, response ?? {
      // Never tried: AWS documents no response for this case; Nimbus says why in Lambda's error-document form.
      statusCode: 200, executedVersion: defaultVersion(event.qualifier), functionError: 'Unhandled',
      payload: JSON.stringify({
        errorType: 'Nimbus.EventAgeExceeded',
        errorMessage: `The event was older than the maximum event age (${config.maximumEventAgeSeconds} s) before the function could run`,
      }),
    });
    if (config.onFailure !== undefined && await this.send(config.onFailure, record)) {
      this.store.completeEvent(event.id, lease);
      return;
    }
    if (this.store.deadLetterEvent(event.id, lease, { failedMs: this.now(), condition, attempts, record: JSON.stringify(record) })) {
      this.counters.deadLettered++;
    }
  }

  /** Delivers a record; false (reported, counted) when the destination is invalid or refused it. */
  private async send(destination: string | Destination, record: AsyncInvocationRecord): Promise<boolean> {
    try {
      await this.options.deliver(typeof destination === 'string' ? parseDestination(destination) : destination, record);
      this.counters.destinationDeliveries++;
      return true;
    } catch (e) {
      this.counters.destinationDeliveryFailures++;
      const name = typeof destination === 'string' ? destination : `${destination.kind} ${destination.name}`;
      this.onError(`cannot deliver the ${record.requestContext.condition} record of ${record.requestContext.requestId} to ${name}`, e);
      return false;
    }
  }

  private record(event: AsyncEventRow, condition: InvocationCondition, approximateInvokeCount: number, response: StoredResponse): AsyncInvocationRecord {
    const responseContext: { statusCode: number; executedVersion: string; functionError?: 'Unhandled' } = {
      statusCode: response.statusCode, executedVersion: response.executedVersion,
    };
    if (response.functionError) responseContext.functionError = response.functionError;
    return {
      version: '1.0',
      timestamp: new Date(this.now()).toISOString(),
      requestContext: {
        requestId: event.requestId,
        functionArn: `${this.functionArn(event.functionName)}:${event.qualifier ?? '$LATEST'}`,
        condition,
        approximateInvokeCount,
      },
      requestPayload: parseJson(event.payload),
      responseContext,
      responsePayload: parseJson(response.payload),
    };
  }
}

interface Settings {
  readonly maximumRetryAttempts: number;
  readonly maximumEventAgeSeconds: number;
  readonly onSuccess?: string | Destination;
  readonly onFailure?: string | Destination;
}

/** Defaults applied, values clamped to Lambda's ranges. */
function settings(config: AsyncInvokeConfig | undefined): Settings {
  const clamp = (v: number | undefined, [lo, hi]: readonly [number, number], d: number) =>
    (typeof v === 'number' && Number.isFinite(v) ? Math.min(hi, Math.max(lo, Math.floor(v))) : d);
  return {
    maximumRetryAttempts: clamp(config?.maximumRetryAttempts, ASYNC_LIMITS.maximumRetryAttempts, ASYNC_DEFAULTS.maximumRetryAttempts),
    maximumEventAgeSeconds: clamp(config?.maximumEventAgeSeconds ?? config?.maximumEventAge, ASYNC_LIMITS.maximumEventAgeSeconds, ASYNC_DEFAULTS.maximumEventAgeSeconds),
    onSuccess: config?.onSuccess || undefined,
    onFailure: config?.onFailure || undefined,
  };
}

function defaultVersion(qualifier: string | undefined): string {
  return qualifier !== undefined && /^[0-9]+$/.test(qualifier) ? qualifier : '$LATEST';
}

function readResponse(text: string | undefined): StoredResponse | undefined {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as StoredResponse;
  } catch {
    return undefined;
  }
}

function parseJson(text: string): unknown {
  if (text === '') return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
