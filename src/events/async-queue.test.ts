import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { InvocationResult, Outcome } from '../core/index.js';
import { openSqliteStore, type Store } from '../store/index.js';
import { removeTree } from '../store/index.js';
import type { Destination } from './destinations.js';
import {
  AsyncQueue, asyncDisposition,
  type AsyncInvocationRecord, type AsyncInvokeConfig, type AsyncQueueOptions,
} from './async-queue.js';

const ARN = 'arn:aws:lambda:us-east-1:000000000000:function';

/** One call of the fake invoke: what it was given and when (test clock, ms). */
interface Call { functionName: string; qualifier?: string; payload: string; requestId: string; at: number }

function result(outcome: Outcome, payload: unknown, requestId = ''): InvocationResult {
  return { requestId, outcome, payload: JSON.stringify(payload), durationMs: 1, billedDurationMs: 1, logs: '' };
}

const FAILED = { errorType: 'Error', errorMessage: 'boom', trace: ['Error: boom'] };

/** Waits until `check()` is true, polling every 5 ms; fails after `ms`. */
async function until(check: () => boolean, ms = 5_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('AsyncQueue', () => {
  let dir: string;
  let store: Store;
  let queue: AsyncQueue | undefined;
  /** The test clock runs with real time plus an offset a test can jump forward. */
  let offset: number;
  const now = () => Date.now() + offset;
  let calls: Call[];
  let delivered: { destination: Destination; record: AsyncInvocationRecord }[];
  let errors: string[];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'nimbus-async-'));
    store = openSqliteStore(join(dir, 'data'));
    offset = 0;
    calls = [];
    delivered = [];
    errors = [];
  });
  afterEach(async () => {
    await queue?.stop();
    queue = undefined;
    try {
      store.close();
    } finally {
      removeTree(dir);
    }
  });

  /** A queue whose function answers `answer(call number from 1, call)`. */
  function makeQueue(
    answer: (n: number, call: Call) => InvocationResult | Promise<InvocationResult>,
    config: AsyncInvokeConfig | undefined | ((functionName: string) => AsyncInvokeConfig | undefined),
    extra: Partial<AsyncQueueOptions> = {},
  ): AsyncQueue {
    queue = new AsyncQueue({
      store,
      now,
      invoke: async (functionName, qualifier, payload, requestId) => {
        const call: Call = { functionName, qualifier, payload, requestId, at: now() };
        calls.push(call);
        return answer(calls.length, call);
      },
      config: typeof config === 'function' ? config : (name) => (name === 'fn' ? config : undefined),
      deliver: async (destination, record) => {
        if (destination.name === 'refuses') throw new Error('destination is down');
        delivered.push({ destination, record });
      },
      retryDelaysMs: [40, 120],
      throttleBackoff: { initialMs: 5, maxMs: 20 },
      pollIntervalMs: 20,
      onError: (message) => errors.push(message),
      ...extra,
    });
    return queue;
  }

  it('delivers an event once, with its request id, and sends the invocation record to onSuccess', async () => {
    const q = makeQueue((_n, c) => ({ ...result('ok', { done: true }, c.requestId), executedVersion: '3' }), { onSuccess: 'audit:live' });
    q.start();
    const before = now();
    const requestId = q.enqueue('fn', '{"order":42}', 'live');
    await until(() => delivered.length === 1, 5_000, 'the success record');
    await sleep(50);

    assert.equal(calls.length, 1);
    assert.deepEqual(calls[0], { functionName: 'fn', qualifier: 'live', payload: '{"order":42}', requestId, at: calls[0].at });
    assert.equal(delivered.length, 1);
    const { destination, record } = delivered[0];
    assert.deepEqual(destination, { kind: 'function', name: 'audit', qualifier: 'live' });
    const t = Date.parse(record.timestamp);
    assert.ok(t >= before && t <= now(), `timestamp ${record.timestamp} is the time of the record`);
    assert.deepEqual(record, {
      version: '1.0',
      timestamp: record.timestamp,
      requestContext: { requestId, functionArn: `${ARN}:fn:live`, condition: 'Success', approximateInvokeCount: 1 },
      requestPayload: { order: 42 },
      responseContext: { statusCode: 200, executedVersion: '3' },
      responsePayload: { done: true },
    });
    assert.deepEqual(store.asyncCounts(now()), { pending: 0, leased: 0, deadLetters: 0 });
    const stats = q.stats();
    assert.deepEqual([stats.received, stats.succeeded, stats.retried, stats.dropped, stats.destinationDeliveries], [1, 1, 0, 0, 1]);
  });

  it('tries a failing function 1 + maximumRetryAttempts times with growing waits, then sends RetriesExhausted to onFailure', async () => {
    const q = makeQueue((_n, c) => result('error', FAILED, c.requestId),
      { maximumRetryAttempts: 2, onFailure: { kind: 'queue', name: 'failures' } });
    q.start();
    const requestId = q.enqueue('fn', '{"x":1}');
    await until(() => delivered.length === 1, 5_000, 'the failure record');
    await sleep(200); // longer than any retry wait: no fourth attempt comes

    assert.equal(calls.length, 3);
    assert.ok(calls.every((c) => c.requestId === requestId), 'every attempt has the request id');
    const [first, second] = [calls[1].at - calls[0].at, calls[2].at - calls[1].at];
    // Timers may fire a millisecond early against Date.now().
    assert.ok(first >= 39, `first retry after ≥ 40 ms (was ${first})`);
    assert.ok(second >= 119, `second retry after ≥ 120 ms (was ${second})`);
    assert.ok(second > first, 'the waits grow');
    assert.deepEqual(delivered[0].destination, { kind: 'queue', name: 'failures' });
    const { record } = delivered[0];
    assert.deepEqual(record, {
      version: '1.0',
      timestamp: record.timestamp,
      requestContext: { requestId, functionArn: `${ARN}:fn:$LATEST`, condition: 'RetriesExhausted', approximateInvokeCount: 3 },
      requestPayload: { x: 1 },
      responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
      responsePayload: FAILED,
    });
    assert.deepEqual(store.listDeadLetters(), [], 'an on-failure destination took it: no dead letter');
    assert.deepEqual(store.asyncCounts(now()), { pending: 0, leased: 0, deadLetters: 0 });
    assert.deepEqual([q.stats().retried, q.stats().dropped], [2, 1]);
  });

  it('dead-letters a failed event without an on-failure destination, or when the destination refuses it', async () => {
    const failing: Record<string, AsyncInvokeConfig> = {
      fn: { maximumRetryAttempts: 0 },
      other: { maximumRetryAttempts: 1, onFailure: 'refuses' },
      third: { maximumRetryAttempts: 0, onFailure: 'arn:aws:s3:::not-a-destination' },
    };
    const q = makeQueue((_n, c) => result('timeout', { errorType: 'Sandbox.Timedout', errorMessage: 'Task timed out after 1.00 seconds' }, c.requestId),
      (name) => failing[name]);
    q.start();
    const a = q.enqueue('fn', '{"a":1}');
    const b = q.enqueue('other', 'not json');
    const c = q.enqueue('third', '{}');
    await until(() => store.listDeadLetters().length === 3, 5_000, 'three dead letters');

    assert.equal(calls.filter((c) => c.requestId === a).length, 1, 'maximumRetryAttempts 0: one try');
    assert.equal(calls.filter((c) => c.requestId === b).length, 2, 'maximumRetryAttempts 1: two tries');
    const dead = store.listDeadLetters();
    assert.deepEqual(dead.map((d) => [d.requestId, d.functionName, d.condition, d.attempts]),
      [[a, 'fn', 'RetriesExhausted', 1], [c, 'third', 'RetriesExhausted', 1], [b, 'other', 'RetriesExhausted', 2]]);
    const record = JSON.parse(dead[2].record) as AsyncInvocationRecord;
    assert.equal(record.requestPayload, 'not json', 'a payload that is not JSON is passed as text');
    assert.deepEqual(record.requestContext.approximateInvokeCount, 2);
    assert.deepEqual(record.responsePayload, { errorType: 'Sandbox.Timedout', errorMessage: 'Task timed out after 1.00 seconds' });
    assert.equal(q.stats().destinationDeliveryFailures, 2);
    assert.equal(q.stats().deadLettered, 3);
    assert.match(errors.join('\n'), /cannot deliver the RetriesExhausted record of .* to refuses/);
    assert.match(errors.join('\n'), /cannot deliver the RetriesExhausted record of .* to arn:aws:s3:::not-a-destination/);
  });

  it('retries throttled events with a growing backoff without using attempts', async () => {
    // Throttled three times, then a platform failure, then a function error: maximumRetryAttempts 0 still allows that one error.
    const q = makeQueue((n, c) => {
      if (n <= 3) return result('throttled', { errorType: 'TooManyRequestsException', errorMessage: 'Rate Exceeded.' }, c.requestId);
      if (n === 4) return result('crashed', { errorType: 'Nimbus.ShuttingDown', errorMessage: 'The platform is shutting down' }, c.requestId);
      return result('error', FAILED, c.requestId);
    }, { maximumRetryAttempts: 0, onFailure: 'failures' });
    q.start();
    const requestId = q.enqueue('fn', '{}');
    await until(() => delivered.length === 1, 5_000, 'the failure record');
    await sleep(100);

    assert.equal(calls.length, 5);
    const gaps = calls.slice(1).map((c, i) => c.at - calls[i].at);
    // Backoff 5, 10, 20, 20 ms (initial 5, doubling, at most 20).
    assert.ok(gaps[0] >= 4 && gaps[1] >= 9 && gaps[2] >= 19 && gaps[3] >= 19, `backoff waits ${gaps.join(', ')}`);
    const { record } = delivered[0];
    assert.deepEqual(record.requestContext, { requestId, functionArn: `${ARN}:fn:$LATEST`, condition: 'RetriesExhausted', approximateInvokeCount: 1 });
    assert.deepEqual(record.responseContext, { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' });
    assert.deepEqual(q.stats().throttled, 4);
  });

  it('succeeds after throttles with approximateInvokeCount 1', async () => {
    const q = makeQueue((n, c) => (n <= 2 ? result('throttled', {}, c.requestId) : result('ok', 'fine', c.requestId)), { onSuccess: 'audit' });
    q.start();
    q.enqueue('fn', '{}');
    await until(() => delivered.length === 1);
    assert.equal(calls.length, 3);
    assert.equal(delivered[0].record.requestContext.approximateInvokeCount, 1);
    assert.equal(delivered[0].record.responsePayload, 'fine');
  });

  it('discards an event older than maximumEventAge without running it: EventAgeExceeded', async () => {
    const q = makeQueue((_n, c) => result('ok', {}, c.requestId), { maximumEventAgeSeconds: 60, onFailure: 'failures' });
    const requestId = q.enqueue('fn', '{"late":true}');
    offset += 61_000;
    q.start();
    await until(() => delivered.length === 1);

    assert.equal(calls.length, 0, 'the function never runs');
    const { record } = delivered[0];
    assert.deepEqual(record.requestContext, { requestId, functionArn: `${ARN}:fn:$LATEST`, condition: 'EventAgeExceeded', approximateInvokeCount: 0 });
    assert.deepEqual(record.requestPayload, { late: true });
    assert.equal((record.responsePayload as { errorType: string }).errorType, 'Nimbus.EventAgeExceeded');
  });

  it('stops retrying a function error once the event is older than maximumEventAge', async () => {
    const q = makeQueue((_n, c) => {
      offset += 61_000; // the attempt takes longer than the event may live
      return result('error', FAILED, c.requestId);
    }, { maximumEventAge: 60, maximumRetryAttempts: 2 }); // serverless.yml's name for maximumEventAgeSeconds
    q.start();
    const requestId = q.enqueue('fn', '{}');
    await until(() => store.listDeadLetters().length === 1);

    assert.equal(calls.length, 1);
    const [dead] = store.listDeadLetters();
    assert.equal(dead.condition, 'EventAgeExceeded');
    const record = JSON.parse(dead.record) as AsyncInvocationRecord;
    assert.deepEqual(record.requestContext, { requestId, functionArn: `${ARN}:fn:$LATEST`, condition: 'EventAgeExceeded', approximateInvokeCount: 1 });
    assert.deepEqual(record.responsePayload, FAILED, 'the last attempt\'s error is in the record');
  });

  it('gives up on a throttled event at maximumEventAge, with the throttle as its response', async () => {
    const q = makeQueue((_n, c) => {
      offset += 25_000;
      return result('throttled', { errorType: 'TooManyRequestsException', errorMessage: 'Rate Exceeded.' }, c.requestId);
    }, { maximumEventAgeSeconds: 60, onFailure: 'failures' });
    q.start();
    q.enqueue('fn', '{}');
    await until(() => delivered.length === 1);

    assert.equal(calls.length, 3, 'tried at 0, 25 and 50 s; at 75 s it is too old');
    const { record } = delivered[0];
    assert.equal(record.requestContext.condition, 'EventAgeExceeded');
    assert.equal(record.requestContext.approximateInvokeCount, 0);
    assert.deepEqual(record.responseContext, { statusCode: 429, executedVersion: '$LATEST' });
  });

  it('dead-letters an event whose function is gone at once', async () => {
    const q = makeQueue(() => result('rejected', { errorType: 'ResourceNotFoundException', errorMessage: 'Function not found: fn' }), { maximumRetryAttempts: 2 });
    q.start();
    q.enqueue('fn', '{}');
    await until(() => store.listDeadLetters().length === 1);
    await sleep(60);
    assert.equal(calls.length, 1);
    const record = JSON.parse(store.listDeadLetters()[0].record) as AsyncInvocationRecord;
    assert.deepEqual([record.requestContext.condition, record.responseContext.statusCode], ['RetriesExhausted', 404]);
  });

  it('redrives a dead letter with the same request id', async () => {
    let healthy = false;
    const q = makeQueue((_n, c) => (healthy ? result('ok', { ok: 1 }, c.requestId) : result('error', FAILED, c.requestId)),
      { maximumRetryAttempts: 0, onSuccess: 'audit' });
    q.start();
    const requestId = q.enqueue('fn', '{"again":true}');
    await until(() => store.listDeadLetters().length === 1);
    const [dead] = q.deadLetters('fn');
    assert.equal(dead.requestId, requestId);
    assert.deepEqual(q.deadLetters('nope'), []);

    healthy = true;
    const back = q.redrive(dead.id);
    assert.equal(back?.requestId, requestId);
    await until(() => delivered.length === 1);
    assert.equal(calls.length, 2);
    assert.equal(calls[1].requestId, requestId);
    assert.equal(calls[1].payload, '{"again":true}');
    assert.deepEqual(delivered[0].record.requestContext, { requestId, functionArn: `${ARN}:fn:$LATEST`, condition: 'Success', approximateInvokeCount: 1 });
    assert.deepEqual(store.listDeadLetters(), []);
    assert.equal(q.redrive(dead.id), undefined, 'a dead letter is redriven once');
  });

  it('stop() lets the attempt in flight finish and claims nothing more; start() resumes', async () => {
    const q = makeQueue(async (_n, c) => { await sleep(80); return result('ok', {}, c.requestId); }, undefined);
    q.start();
    q.enqueue('fn', '{}');
    await until(() => calls.length === 1);
    await q.stop();
    assert.deepEqual(store.asyncCounts(now()), { pending: 0, leased: 0, deadLetters: 0 }, 'the attempt finished and was recorded');

    q.enqueue('fn', '{"later":1}');
    await sleep(60);
    assert.equal(calls.length, 1, 'a stopped queue delivers nothing');
    q.start();
    await until(() => calls.length === 2);
    assert.equal(calls[1].payload, '{"later":1}');
  });

  it('keeps at most `concurrency` attempts in flight', async () => {
    let running = 0;
    let peak = 0;
    const q = makeQueue(async (_n, c) => {
      peak = Math.max(peak, ++running);
      await sleep(10);
      running--;
      return result('ok', {}, c.requestId);
    }, undefined, { concurrency: 3 });
    for (let i = 0; i < 20; i++) q.enqueue('fn', `{"i":${i}}`);
    q.start();
    await until(() => calls.length === 20 && running === 0);
    assert.equal(peak, 3);
    assert.deepEqual(calls.map((c) => (JSON.parse(c.payload) as { i: number }).i), [...Array(20).keys()], 'in the order accepted');
  });

  it('after a crash, reclaimOnStart delivers the dead process\'s leased events at once; otherwise when their lease expires', async () => {
    const first = makeQueue((_n, c) => result('ok', {}, c.requestId), undefined);
    const id = first.enqueue('fn', '{}');
    store.claimEvents('a-process-that-died', now(), 150, 10);
    queue = undefined;

    const patient = makeQueue((_n, c) => result('ok', {}, c.requestId), undefined);
    patient.start();
    await sleep(60);
    assert.equal(calls.length, 0, 'the lease still holds');
    await until(() => calls.length === 1, 2_000, 'delivery after the lease expired');
    assert.equal(calls[0].requestId, id);
    await patient.stop();

    const id2 = patient.enqueue('fn', '{}');
    store.claimEvents('another-dead-process', now(), 60_000, 10);
    const eager = makeQueue((_n, c) => result('ok', {}, c.requestId), undefined, { reclaimOnStart: true });
    eager.start();
    await until(() => calls.length === 2, 1_000, 'delivery right after start');
    assert.equal(calls[1].requestId, id2);
  });
});

describe('asyncDisposition', () => {
  const cases: [Outcome, unknown, string][] = [
    ['ok', {}, 'success'],
    ['error', FAILED, 'function-error'],
    ['timeout', {}, 'function-error'],
    ['oom', {}, 'function-error'],
    ['init_error', { errorType: 'Runtime.ImportModuleError' }, 'function-error'],
    ['crashed', { errorType: 'Runtime.ExitError' }, 'function-error'],
    ['crashed', { errorType: 'Nimbus.ShuttingDown' }, 'retry-later'],
    ['throttled', {}, 'retry-later'],
    ['rejected', {}, 'gone'],
  ];
  for (const [outcome, payload, expected] of cases) {
    it(`${outcome} ${JSON.stringify(payload)} → ${expected}`, () => {
      assert.equal(asyncDisposition({ outcome, payload: JSON.stringify(payload) }), expected);
    });
  }
  it('a function\'s own error document mentioning Nimbus is still a function error', () => {
    assert.equal(asyncDisposition({ outcome: 'error', payload: '{"errorType":"Error","errorMessage":"\\"Nimbus.x"}' }), 'function-error');
  });
});
