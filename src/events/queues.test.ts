import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { InvocationResult, Outcome, QueueSpec } from '../core/index.js';
import { openSqliteStore, type Store } from '../store/index.js';
import { removeTree } from '../store/index.js';
import {
  batchItemFailures, EventSourceError, md5OfBody, md5OfMessageAttributes, QueueBroker, stableUuid,
  type QueueBrokerOptions, type QueueMapping, type SqsEvent,
} from './queues.js';

/** One call of the fake invoke. */
interface Call { functionName: string; qualifier?: string; event: SqsEvent; at: number }

function result(outcome: Outcome, payload: unknown = null): InvocationResult {
  return { requestId: 'r', outcome, payload: JSON.stringify(payload), durationMs: 1, billedDurationMs: 1, logs: '' };
}

async function until(check: () => boolean, ms = 5_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function queue(name: string, extra: Partial<QueueSpec> = {}): QueueSpec {
  return { name, fifo: name.endsWith('.fifo'), visibilityTimeout: 30, messageRetentionPeriod: 345_600, delaySeconds: 0, ...extra };
}

function mapping(queueName: string, extra: Partial<QueueMapping> = {}): QueueMapping {
  return { functionName: 'worker', queue: queueName, batchSize: 10, maximumBatchingWindow: 0, reportBatchItemFailures: false, enabled: true, ...extra };
}

describe('SQS digests', () => {
  it('MD5OfBody is the MD5 of the body, as in AWS\'s example event ("Test message.")', () => {
    assert.equal(md5OfBody('Test message.'), 'e4e68fb7bd0e697a0ae8f1bb342846b3');
  });

  it('MD5OfMessageAttributes follows SQS\'s algorithm (the digests SQS answers for these attributes)', () => {
    // Vectors checked against Amazon SQS by ydb's SQS implementation (ydb/core/ymq/actor/ut/attributes_md5_ut.cpp).
    assert.equal(md5OfMessageAttributes([
      { name: 'test_attribute_name_2', dataType: 'String', stringValue: 'test_attribute_value_2' },
      { name: 'test_attribute_name_1', dataType: 'String', stringValue: 'test_attribute_value_1' },
    ]), 'd53f3b558fe951154770f25cb63dbba9');
    assert.equal(md5OfMessageAttributes([
      { name: 'test_attribute_name', dataType: 'Binary', binaryValue: Buffer.from('test_attribute_value').toString('base64') },
    ]), '23f6bd27ea87aab7dfeadcc9aebee495');
    assert.equal(md5OfMessageAttributes([]), undefined);
  });

  it('stableUuid gives the same UUID-shaped id for the same text', () => {
    assert.match(stableUuid('a'), /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(stableUuid('a'), stableUuid('a'));
    assert.notEqual(stableUuid('a'), stableUuid('b'));
  });
});

describe('batchItemFailures (Lambda\'s success and failure conditions)', () => {
  const ids = new Set(['m1', 'm2']);
  const cases: Array<[string, unknown, string[] | 'all']> = [
    ['an empty response', '', []],
    ['a null response', 'null', []],
    ['an object without batchItemFailures', '{"statusCode":200}', []],
    ['a null batchItemFailures list', '{"batchItemFailures":null}', []],
    ['an empty batchItemFailures list', '{"batchItemFailures":[]}', []],
    ['failed items', '{"batchItemFailures":[{"itemIdentifier":"m2"}]}', ['m2']],
    ['a response that is not JSON', '{oops', 'all'],
    ['a response that is not an object', '"done"', 'all'],
    ['batchItemFailures that is not a list', '{"batchItemFailures":"m1"}', 'all'],
    ['a null itemIdentifier', '{"batchItemFailures":[{"itemIdentifier":null}]}', 'all'],
    ['an empty itemIdentifier', '{"batchItemFailures":[{"itemIdentifier":""}]}', 'all'],
    ['a bad key name', '{"batchItemFailures":[{"messageId":"m1"}]}', 'all'],
    ['an unknown message id', '{"batchItemFailures":[{"itemIdentifier":"m1"},{"itemIdentifier":"m9"}]}', 'all'],
  ];
  for (const [what, payload, expected] of cases) {
    it(`${what} → ${expected === 'all' ? 'the whole batch fails' : expected.length ? expected.join(', ') + ' failed' : 'complete success'}`, () => {
      const got = batchItemFailures(payload as string, ids);
      assert.deepEqual(got === 'all' ? 'all' : [...got], expected);
    });
  }
});

describe('QueueBroker', () => {
  let dir: string;
  let store: Store;
  let broker: QueueBroker | undefined;
  let calls: Call[];
  let errors: string[];
  /** The test clock: real time plus an offset a test can jump forward. */
  let offset: number;
  const now = () => Date.now() + offset;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'nimbus-queues-'));
    store = openSqliteStore(join(dir, 'data'));
    calls = [];
    errors = [];
    offset = 0;
  });
  afterEach(async () => {
    await broker?.stop();
    broker = undefined;
    try {
      store.close();
    } finally {
      removeTree(dir);
    }
  });

  /** A broker whose function answers `answer(call number from 1, call)`. */
  function makeBroker(
    answer: (n: number, call: Call) => InvocationResult | Promise<InvocationResult> = () => result('ok'),
    extra: Partial<QueueBrokerOptions> = {},
  ): QueueBroker {
    broker = new QueueBroker({
      store, now, pollIntervalMs: 20, throttleBackoff: { initialMs: 20, maxMs: 100 },
      onError: (m, e) => errors.push(`${m}: ${(e as Error)?.message}`),
      invoke: async (functionName, payload, qualifier) => {
        const call: Call = { functionName, qualifier, event: JSON.parse(payload) as SqsEvent, at: Date.now() };
        calls.push(call);
        return answer(calls.length, call);
      },
      ...extra,
    });
    return broker;
  }

  const bodies = (c: Call) => c.event.Records.map((r) => r.body);

  describe('sendMessage', () => {
    it('is durable when it returns and answers the MessageId and MD5s', () => {
      const b = makeBroker();
      b.ensureQueues([queue('orders')]);
      const sent = b.sendMessage('orders', 'Test message.', { messageAttributes: { myAttribute: { DataType: 'String', StringValue: 'myValue' } } });
      assert.match(sent.messageId, /^[0-9a-f-]{36}$/);
      assert.equal(sent.md5OfBody, 'e4e68fb7bd0e697a0ae8f1bb342846b3');
      assert.equal(sent.md5OfMessageAttributes, md5OfMessageAttributes([{ name: 'myAttribute', dataType: 'String', stringValue: 'myValue' }]));
      // Another connection to the same database sees it at once.
      const other = openSqliteStore(join(dir, 'data'));
      try {
        assert.equal(other.queueCounts('orders', now()).visible, 1);
      } finally {
        other.close();
      }
    });

    it('refuses an unknown queue, naming the queues that exist', () => {
      const b = makeBroker();
      b.ensureQueues([queue('orders'), queue('audit')]);
      assert.throws(() => b.sendMessage('order', 'x'), (e: EventSourceError) => {
        assert.equal(e.code, 'QueueDoesNotExist');
        assert.equal(e.status, 404);
        assert.match(e.message, /queue "order" does not exist; the queues are: audit, orders/);
        return true;
      });
    });

    it('takes 262,144 bytes and refuses one more, counting attributes, naming the limit', () => {
      const b = makeBroker();
      b.ensureQueues([queue('q')]);
      b.sendMessage('q', 'é'.repeat(131_072)); // 2 bytes each
      assert.throws(() => b.sendMessage('q', 'x'.repeat(262_145)), (e: EventSourceError) => {
        assert.equal(e.code, 'InvalidParameterValue');
        assert.match(e.message, /262,145 bytes .* over SQS's limit of 262,144 bytes \(256 KiB\)/);
        return true;
      });
      // name (1) + type (6) + value (1) = 8 bytes of attributes.
      assert.throws(() => b.sendMessage('q', 'x'.repeat(262_137), { messageAttributes: { a: { DataType: 'String', StringValue: 'v' } } }), /262,145 bytes/);
      b.sendMessage('q', 'x'.repeat(262_136), { messageAttributes: { a: { DataType: 'String', StringValue: 'v' } } });
      assert.equal(store.queueCounts('q', now()).visible, 2);
    });

    it('refuses bad attributes, delays and FIFO parameters with what is allowed', () => {
      const b = makeBroker();
      b.ensureQueues([queue('q'), queue('q.fifo')]);
      assert.throws(() => b.sendMessage('q', ''), /non-empty body/);
      assert.throws(() => b.sendMessage('q', 'x', { messageAttributes: { 'AWS.x': { DataType: 'String', StringValue: 'v' } } }), /"AWS.x": invalid name/);
      assert.throws(() => b.sendMessage('q', 'x', { messageAttributes: { a: { DataType: 'Text', StringValue: 'v' } } }), /DataType "Text" is not String, Number or Binary/);
      assert.throws(() => b.sendMessage('q', 'x', { messageAttributes: { a: { DataType: 'Number', StringValue: 'ten' } } }), /"ten" is not a number/);
      assert.throws(() => b.sendMessage('q', 'x', { messageAttributes: { a: { DataType: 'Binary' } } }), /needs a non-empty BinaryValue/);
      const eleven = Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`a${i}`, { DataType: 'String', StringValue: 'v' }]));
      assert.throws(() => b.sendMessage('q', 'x', { messageAttributes: eleven }), /at most 10 attributes \(got 11\)/);
      assert.throws(() => b.sendMessage('q', 'x', { delaySeconds: 901 }), /delaySeconds 901 is not allowed: 0 to 900 seconds/);
      assert.throws(() => b.sendMessage('q', 'x', { messageGroupId: 'g' }), /only for FIFO queues/);
      assert.throws(() => b.sendMessage('q.fifo', 'x'), (e: EventSourceError) => e.code === 'MissingParameter' && /needs a messageGroupId/.test(e.message));
      assert.throws(() => b.sendMessage('q.fifo', 'x', { messageGroupId: 'g', delaySeconds: 1 }), /cannot have its own delaySeconds/);
      assert.equal(store.queueCounts('q', now()).visible + store.queueCounts('q.fifo', now()).visible, 0);
    });

    it('deduplicates a FIFO message id within 5 minutes (in memory)', () => {
      const b = makeBroker();
      b.ensureQueues([queue('q.fifo')]);
      const first = b.sendMessage('q.fifo', 'a', { messageGroupId: 'g', messageDeduplicationId: 'd1' });
      assert.equal(first.sequenceNumber, '1'.padStart(20, '0'));
      assert.deepEqual(b.sendMessage('q.fifo', 'a', { messageGroupId: 'g', messageDeduplicationId: 'd1' }), first);
      offset = 5 * 60_000 + 1;
      assert.notEqual(b.sendMessage('q.fifo', 'a', { messageGroupId: 'g', messageDeduplicationId: 'd1' }).messageId, first.messageId);
      assert.equal(store.queueCounts('q.fifo', now()).visible, 2);
    });
  });

  describe('settings', () => {
    it('ensureQueues refuses settings out of SQS\'s ranges and unknown dead-letter queues, changing nothing', () => {
      const b = makeBroker();
      assert.throws(() => b.ensureQueues([queue('q', { visibilityTimeout: 43_201 })]), /queue q: visibilityTimeout 43201 is not allowed: 0 to 43200 seconds/);
      assert.throws(() => b.ensureQueues([queue('q', { messageRetentionPeriod: 30 })]), /messageRetentionPeriod 30 .* 60 to 1209600/);
      assert.throws(() => b.ensureQueues([queue('q', { deadLetterQueue: 'dlq', maxReceiveCount: 3 })]),
        /RedrivePolicy.deadLetterTargetArn "dlq" is not allowed: a queue Nimbus has \(q\)/);
      assert.throws(() => b.ensureQueues([queue('q', { deadLetterQueue: 'dlq', maxReceiveCount: 0 }), queue('dlq')]), /maxReceiveCount 0/);
      assert.throws(() => b.ensureQueues([queue('q.fifo', { deadLetterQueue: 'dlq', maxReceiveCount: 1 }), queue('dlq')]), /a FIFO queue, as the queue itself/);
      assert.deepEqual(b.queueNames(), []);
      b.ensureQueues([queue('q', { deadLetterQueue: 'dlq', maxReceiveCount: 3 }), queue('dlq')]);
      assert.deepEqual(b.queueNames(), ['dlq', 'q']);
      assert.throws(() => b.removeQueues(['dlq']), /it is the dead-letter queue of q/);
    });

    it('setMappings refuses unknown queues (naming the queues) and batch sizes over the limit', () => {
      const b = makeBroker();
      b.ensureQueues([queue('q'), queue('q.fifo')]);
      assert.throws(() => b.setMappings([mapping('nope')]), /the sqs event of worker on queue nope: queue "nope" does not exist; the queues are: q, q.fifo/);
      assert.throws(() => b.setMappings([mapping('q.fifo', { batchSize: 11 })]), /batchSize 11 is not allowed: 1 to 10 on a FIFO queue/);
      assert.throws(() => b.setMappings([mapping('q', { maximumBatchingWindow: 301 })]), /maximumBatchingWindow 301/);
      b.setMappings([mapping('q', { enabled: false })]);
      assert.deepEqual(b.mappings().map((m) => [m.queue, m.functionName, m.enabled, m.eventSourceArn]),
        [['q', 'worker', false, 'arn:aws:sqs:us-east-1:000000000000:q']]);
    });
  });

  describe('the SQS event', () => {
    it('has the fields of AWS\'s example standard queue message event, in its order', async () => {
      const b = makeBroker(undefined, { region: 'us-east-2' });
      b.ensureQueues([queue('my-queue')]);
      b.setMappings([mapping('my-queue', { qualifier: 'live' })]);
      const before = now();
      const sent = b.sendMessage('my-queue', 'Test message.', {
        messageAttributes: { myAttribute: { DataType: 'String', StringValue: 'myValue' } }, senderId: 'AIDAIENQZJOLO23YVJ4VO',
      });
      b.start();
      await until(() => calls.length === 1, 5_000, 'the invocation');
      const [call] = calls;
      assert.equal(call.functionName, 'worker');
      assert.equal(call.qualifier, 'live');
      assert.deepEqual(Object.keys(call.event), ['Records']);
      const [r] = call.event.Records;
      // https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html, "Example standard queue message event"
      // (plus md5OfMessageAttributes, which Lambda sends when a message has attributes).
      assert.deepEqual(Object.keys(r), [
        'messageId', 'receiptHandle', 'body', 'attributes', 'messageAttributes', 'md5OfBody', 'md5OfMessageAttributes',
        'eventSource', 'eventSourceARN', 'awsRegion',
      ]);
      assert.equal(r.messageId, sent.messageId);
      assert.equal(typeof r.receiptHandle, 'string');
      assert.equal(r.body, 'Test message.');
      assert.deepEqual(Object.keys(r.attributes), ['ApproximateReceiveCount', 'SentTimestamp', 'SenderId', 'ApproximateFirstReceiveTimestamp']);
      assert.equal(r.attributes.ApproximateReceiveCount, '1');
      assert.equal(r.attributes.SenderId, 'AIDAIENQZJOLO23YVJ4VO');
      const sentAt = Number(r.attributes.SentTimestamp);
      const firstReceive = Number(r.attributes.ApproximateFirstReceiveTimestamp);
      assert.ok(sentAt >= before && firstReceive >= sentAt && firstReceive <= now(), 'epoch ms as strings');
      assert.deepEqual(r.messageAttributes, { myAttribute: { stringValue: 'myValue', stringListValues: [], binaryListValues: [], dataType: 'String' } });
      assert.deepEqual(Object.keys(r.messageAttributes.myAttribute), ['stringValue', 'stringListValues', 'binaryListValues', 'dataType']);
      assert.equal(r.md5OfBody, 'e4e68fb7bd0e697a0ae8f1bb342846b3');
      assert.equal(r.md5OfMessageAttributes, sent.md5OfMessageAttributes);
      assert.equal(r.eventSource, 'aws:sqs');
      assert.equal(r.eventSourceARN, 'arn:aws:sqs:us-east-2:000000000000:my-queue');
      assert.equal(r.awsRegion, 'us-east-2');
      await until(() => store.queueCounts('my-queue', now()).inFlight === 0, 2_000, 'the delete');
      assert.deepEqual(b.stats('my-queue').map((s) => [s.visible, s.inFlight, s.sent, s.received, s.deleted]), [[0, 0, 1, 1, 1]]);
    });

    it('carries FIFO attributes as AWS\'s FIFO example, binary attributes in base64, and null md5OfMessageAttributes without attributes', async () => {
      const b = makeBroker();
      b.ensureQueues([queue('jobs.fifo'), queue('plain')]);
      b.setMappings([mapping('jobs.fifo'), mapping('plain', { functionName: 'other' })]);
      b.sendMessage('jobs.fifo', 'a', { messageGroupId: '1', messageAttributes: { blob: { DataType: 'Binary', BinaryValue: new Uint8Array([1, 2, 3]) } } });
      b.sendMessage('plain', 'b');
      b.start();
      await until(() => calls.length === 2, 5_000, 'both invocations');
      const fifo = calls.find((c) => c.functionName === 'worker')!.event.Records[0];
      assert.deepEqual(Object.keys(fifo.attributes), ['ApproximateReceiveCount', 'SentTimestamp', 'SequenceNumber', 'MessageGroupId', 'SenderId', 'ApproximateFirstReceiveTimestamp']);
      assert.equal(fifo.attributes.MessageGroupId, '1');
      assert.match(fifo.attributes.SequenceNumber!, /^\d{20}$/);
      assert.deepEqual(fifo.messageAttributes.blob, { binaryValue: 'AQID', stringListValues: [], binaryListValues: [], dataType: 'Binary' });
      const plain = calls.find((c) => c.functionName === 'other')!.event.Records[0];
      assert.deepEqual(plain.messageAttributes, {});
      assert.equal(plain.md5OfMessageAttributes, null);
    });
  });

  describe('batches', () => {
    it('invokes with up to batchSize messages, in queue order', async () => {
      const b = makeBroker();
      b.ensureQueues([queue('q')]);
      b.setMappings([mapping('q', { batchSize: 10, maximumConcurrency: 1 })]);
      for (let i = 0; i < 25; i++) b.sendMessage('q', `m${i}`);
      b.start();
      await until(() => calls.reduce((n, c) => n + c.event.Records.length, 0) === 25, 5_000, '25 messages');
      assert.deepEqual(calls.map((c) => c.event.Records.length), [10, 10, 5]);
      assert.deepEqual(calls.flatMap(bodies), Array.from({ length: 25 }, (_, i) => `m${i}`));
      await until(() => b.stats('q')[0].deleted === 25, 2_000, 'the deletes');
      assert.deepEqual(b.mappings()[0].invocations, 3);
    });

    it('gathers for maximumBatchingWindow from the first message, and no longer once the batch is full', async () => {
      const b = makeBroker();
      b.ensureQueues([queue('q'), queue('full')]);
      b.setMappings([mapping('q', { batchSize: 10, maximumBatchingWindow: 0.4 }), mapping('full', { functionName: 'f2', batchSize: 3, maximumBatchingWindow: 60 })]);
      b.start();
      const first = Date.now();
      b.sendMessage('q', 'a');
      await sleep(100);
      b.sendMessage('q', 'b');
      b.sendMessage('q', 'c');
      for (const m of ['x', 'y', 'z']) b.sendMessage('full', m);
      await until(() => calls.length === 2, 5_000, 'two invocations');
      const windowed = calls.find((c) => c.functionName === 'worker')!;
      assert.deepEqual(bodies(windowed), ['a', 'b', 'c']);
      assert.ok(windowed.at - first >= 350, `invoked ${windowed.at - first} ms after the first message, not before the 0.4 s window`);
      const full = calls.find((c) => c.functionName === 'f2')!;
      assert.deepEqual(bodies(full), ['x', 'y', 'z']);
      assert.ok(full.at - first < 2_000, 'a full batch does not wait for its 60 s window');
    });

    it('puts a message once in a batch even when its visibility timeout ends within the window', async () => {
      const b = makeBroker();
      b.ensureQueues([queue('q', { visibilityTimeout: 0.05 })]);
      b.setMappings([mapping('q', { maximumBatchingWindow: 0.3 })]);
      b.sendMessage('q', 'x');
      b.start();
      await until(() => calls.length === 1, 2_000, 'the invocation');
      const records = calls[0].event.Records;
      assert.equal(records.length, 1);
      assert.ok(Number(records[0].attributes.ApproximateReceiveCount) >= 2, 'received again within the window');
      await until(() => b.stats('q')[0].deleted === 1, 2_000, 'the delete with the latest receipt');
    });

    it('hides a delayed message until its delay ends', async () => {
      const b = makeBroker();
      b.ensureQueues([queue('q', { delaySeconds: 0.3 })]);
      b.setMappings([mapping('q')]);
      b.start();
      const sentAt = Date.now();
      b.sendMessage('q', 'later');
      b.sendMessage('q', 'sooner', { delaySeconds: 0 });
      await until(() => calls.length === 1, 2_000, 'the undelayed message');
      assert.deepEqual(bodies(calls[0]), ['sooner']);
      assert.equal(b.stats('q')[0].delayed, 1);
      await until(() => calls.length === 2, 2_000, 'the delayed message');
      assert.deepEqual(bodies(calls[1]), ['later']);
      assert.ok(calls[1].at - sentAt >= 290, `delivered ${calls[1].at - sentAt} ms after sending`);
    });
  });

  describe('failures', () => {
    it('leaves a failed batch to reappear after the visibility timeout, counting ApproximateReceiveCount, then deletes it', async () => {
      const b = makeBroker((n) => (n < 3 ? result('error', { errorType: 'Error', errorMessage: 'boom' }) : result('ok')));
      b.ensureQueues([queue('q', { visibilityTimeout: 0.2 })]);
      b.setMappings([mapping('q')]);
      const { messageId } = b.sendMessage('q', 'retry me');
      b.start();
      await until(() => calls.length === 3, 5_000, 'three invocations');
      const records = calls.map((c) => c.event.Records[0]);
      assert.deepEqual(records.map((r) => r.messageId), [messageId, messageId, messageId]);
      assert.deepEqual(records.map((r) => r.attributes.ApproximateReceiveCount), ['1', '2', '3']);
      assert.equal(new Set(records.map((r) => r.receiptHandle)).size, 3, 'a new receipt handle per receive');
      assert.equal(new Set(records.map((r) => r.attributes.ApproximateFirstReceiveTimestamp)).size, 1);
      for (let i = 1; i < 3; i++) assert.ok(calls[i].at - calls[i - 1].at >= 190, `receive ${i + 1} came ${calls[i].at - calls[i - 1].at} ms after the previous`);
      await until(() => b.stats('q')[0].deleted === 1, 2_000, 'the delete');
      assert.deepEqual(b.mappings().map((m) => [m.invocations, m.failedBatches]), [[3, 2]]);
      await sleep(300);
      assert.equal(calls.length, 3, 'deleted: never delivered again');
    });

    it('moves a message to the dead-letter queue after maxReceiveCount receives, keeping its MessageId', async () => {
      const b = makeBroker(() => result('error', { errorType: 'Error', errorMessage: 'always' }));
      b.ensureQueues([queue('q', { visibilityTimeout: 0.1, deadLetterQueue: 'q-dlq', maxReceiveCount: 2 }), queue('q-dlq', { messageRetentionPeriod: 1_209_600 })]);
      b.setMappings([mapping('q')]);
      const { messageId } = b.sendMessage('q', 'poison');
      b.start();
      await until(() => b.stats('q')[0].deadLettered === 1, 5_000, 'the move to the dead-letter queue');
      assert.deepEqual(calls.map((c) => c.event.Records[0].attributes.ApproximateReceiveCount), ['1', '2']);
      const [q, dlq] = b.stats();
      assert.deepEqual(['q', 'q-dlq'], [dlq.queue, q.queue].reverse());
      const stats = b.stats('q')[0];
      assert.deepEqual([stats.visible, stats.inFlight, stats.movedToDeadLetterQueue, stats.deadLettered], [0, 0, 1, 1]);
      const [dead] = b.receiveMessages('q-dlq', { maxNumberOfMessages: 10 });
      assert.equal(dead.MessageId, messageId);
      assert.equal(dead.Body, 'poison');
      assert.equal(dead.Attributes.ApproximateReceiveCount, '1');
      assert.equal(dead.Attributes.DeadLetterQueueSourceArn, 'arn:aws:sqs:us-east-1:000000000000:q');
      assert.equal(b.deleteMessage('q-dlq', dead.ReceiptHandle), true);
      assert.equal(b.deleteMessage('q-dlq', dead.ReceiptHandle), false);
      assert.throws(() => b.deleteMessage('q-dlq', 'bm9wZQ=='), (e: EventSourceError) => e.code === 'ReceiptHandleIsInvalid');
    });

    it('ReportBatchItemFailures: deletes all but the failed items, which come back alone', async () => {
      const b = makeBroker((n, call) => {
        if (n === 1) return result('ok', { batchItemFailures: [{ itemIdentifier: call.event.Records[1].messageId }] });
        return result('ok', { batchItemFailures: [] });
      });
      b.ensureQueues([queue('q', { visibilityTimeout: 0.2 })]);
      b.setMappings([mapping('q', { reportBatchItemFailures: true, maximumBatchingWindow: 0.1 })]);
      for (const m of ['a', 'b', 'c']) b.sendMessage('q', m);
      b.start();
      await until(() => calls.length === 2, 5_000, 'the retry of the failed item');
      assert.deepEqual(calls.map(bodies), [['a', 'b', 'c'], ['b']]);
      assert.equal(calls[1].event.Records[0].attributes.ApproximateReceiveCount, '2');
      await until(() => b.stats('q')[0].deleted === 3, 2_000, 'every delete');
      assert.deepEqual(b.mappings().map((m) => [m.partialBatches, m.failedBatches]), [[1, 0]]);
    });

    it('ReportBatchItemFailures: an invalid response or a function error fails the whole batch', async () => {
      const b = makeBroker((n) => {
        if (n === 1) return result('ok', { batchItemFailures: [{ itemIdentifier: '' }] });
        if (n === 2) return result('error', { errorType: 'Error', errorMessage: 'boom' });
        return result('ok', null);
      });
      b.ensureQueues([queue('q', { visibilityTimeout: 0.3 })]);
      b.setMappings([mapping('q', { reportBatchItemFailures: true, maximumBatchingWindow: 0.05 })]);
      b.sendMessage('q', 'a');
      b.sendMessage('q', 'b');
      b.start();
      await until(() => calls.length === 3, 5_000, 'three invocations');
      assert.deepEqual(calls.map(bodies), [['a', 'b'], ['a', 'b'], ['a', 'b']]);
      await until(() => b.stats('q')[0].deleted === 2, 2_000, 'the deletes');
      assert.equal(b.mappings()[0].failedBatches, 2);
    });

    it('retries a throttled batch with a growing wait, without a new receive', async () => {
      const b = makeBroker((n) => (n <= 2 ? result('throttled', { errorType: 'TooManyRequestsException', errorMessage: 'Rate Exceeded.' }) : result('ok')));
      b.ensureQueues([queue('q')]);
      b.setMappings([mapping('q')]);
      b.sendMessage('q', 'x');
      b.start();
      await until(() => b.stats('q')[0].deleted === 1, 5_000, 'the delete');
      assert.equal(calls.length, 3);
      assert.deepEqual(calls.map((c) => c.event.Records[0].attributes.ApproximateReceiveCount), ['1', '1', '1']);
      assert.equal(new Set(calls.map((c) => c.event.Records[0].receiptHandle)).size, 1);
      assert.ok(calls[1].at - calls[0].at >= 15 && calls[2].at - calls[1].at >= 35, 'waits of about 20 then 40 ms');
      assert.deepEqual(b.mappings().map((m) => [m.throttles, m.invocations]), [[2, 1]]);
    });

    it('gives a throttled batch up when its visibility timeout would end, so it is received again', async () => {
      const b = makeBroker((n) => (n === 1 ? result('throttled') : result('ok')), { throttleBackoff: { initialMs: 500, maxMs: 500 } });
      b.ensureQueues([queue('q', { visibilityTimeout: 0.2 })]);
      b.setMappings([mapping('q')]);
      b.sendMessage('q', 'x');
      b.start();
      await until(() => b.stats('q')[0].deleted === 1, 5_000, 'the delete');
      assert.deepEqual(calls.map((c) => c.event.Records[0].attributes.ApproximateReceiveCount), ['1', '2']);
    });
  });

  describe('the direct API', () => {
    it('receives, hides for the visibility timeout, changes visibility, purges', () => {
      const b = makeBroker();
      b.ensureQueues([queue('q')]);
      b.sendMessage('q', 'one', { messageAttributes: { n: { DataType: 'Number', StringValue: '1' } } });
      b.sendMessage('q', 'two');
      const [m] = b.receiveMessages('q');
      assert.equal(m.Body, 'one');
      assert.deepEqual(m.MessageAttributes, { n: { DataType: 'Number', StringValue: '1' } });
      assert.equal(m.MD5OfMessageAttributes, md5OfMessageAttributes([{ name: 'n', dataType: 'Number', stringValue: '1' }]));
      assert.deepEqual(b.receiveMessages('q', { maxNumberOfMessages: 10 }).map((x) => x.Body), ['two']);
      assert.deepEqual(b.receiveMessages('q', { maxNumberOfMessages: 10 }), []);
      assert.equal(b.changeMessageVisibility('q', m.ReceiptHandle, 0), true);
      const [again] = b.receiveMessages('q');
      assert.equal(again.MessageId, m.MessageId);
      assert.equal(again.Attributes.ApproximateReceiveCount, '2');
      assert.throws(() => b.receiveMessages('q', { maxNumberOfMessages: 11 }), /1 to 10/);
      assert.equal(b.purgeQueue('q'), 2);
    });

    it('deletes messages whose retention period ended', () => {
      const b = makeBroker();
      b.ensureQueues([queue('q', { messageRetentionPeriod: 60 })]);
      b.sendMessage('q', 'old');
      offset = 59_000;
      assert.equal(b.stats('q')[0].visible, 1);
      offset = 60_000;
      assert.equal(b.stats('q')[0].visible, 0);
      assert.deepEqual(b.receiveMessages('q'), []);
      assert.equal(b.stats('q')[0].expired, 1);
    });
  });

  describe('FIFO queues', () => {
    it('delivers a message group in order, a failed message first again', async () => {
      let failedOnce = false;
      const b = makeBroker((_n, call) => {
        if (bodies(call)[0] === 'g1-a' && !failedOnce) { failedOnce = true; return result('error', { errorMessage: 'x' }); }
        return result('ok');
      });
      b.ensureQueues([queue('q.fifo', { visibilityTimeout: 0.1 })]);
      b.setMappings([mapping('q.fifo', { batchSize: 1 })]);
      for (const m of ['a', 'b', 'c']) b.sendMessage('q.fifo', `g1-${m}`, { messageGroupId: 'g1' });
      b.start();
      await until(() => b.stats('q.fifo')[0].deleted === 3, 5_000, 'the group');
      assert.deepEqual(calls.map((c) => bodies(c)[0]), ['g1-a', 'g1-a', 'g1-b', 'g1-c']);
    });
  });

  describe('lifecycle and durability', () => {
    it('stop() lets a batch in flight finish and delete', async () => {
      let release!: () => void;
      const gate = new Promise<void>((r) => { release = r; });
      const b = makeBroker(async () => { await gate; return result('ok'); });
      b.ensureQueues([queue('q')]);
      b.setMappings([mapping('q')]);
      b.sendMessage('q', 'x');
      b.start();
      await until(() => calls.length === 1, 2_000, 'the invocation');
      let stopped = false;
      const stopping = b.stop().then(() => { stopped = true; });
      await sleep(50);
      assert.equal(stopped, false, 'stop() waits for the batch');
      release();
      await stopping;
      assert.equal(store.queueCounts('q', now()).inFlight + store.queueCounts('q', now()).visible, 0, 'the batch was deleted');
    });

    it('a disabled mapping does not poll; enabling it does', async () => {
      const b = makeBroker();
      b.ensureQueues([queue('q')]);
      b.setMappings([mapping('q', { enabled: false })]);
      b.start();
      b.sendMessage('q', 'x');
      await sleep(100);
      assert.equal(calls.length, 0);
      b.setMappings([mapping('q')]);
      await until(() => calls.length === 1, 2_000, 'the invocation');
    });

    it('after a crash (the store reopened, a new broker): received, undeleted messages are delivered again, at once with reclaimOnStart', async () => {
      // The first platform: its function does not answer until the end, as if the process died mid-batch.
      let release!: () => void;
      const gate = new Promise<void>((r) => { release = r; });
      const first = new QueueBroker({ store, pollIntervalMs: 20, invoke: async () => { await gate; return result('ok'); } });
      first.ensureQueues([queue('q', { visibilityTimeout: 30 }), queue('r', { visibilityTimeout: 0.3 })]);
      first.setMappings([mapping('q'), mapping('r')]);
      const sent = ['a', 'b', 'c'].map((m) => first.sendMessage('q', m).messageId);
      const sentR = first.sendMessage('r', 'slow').messageId;
      first.start();
      await until(() => store.queueCounts('q', Date.now()).inFlight === 3 && store.queueCounts('r', Date.now()).inFlight === 1, 2_000, 'the first receive');

      // The restart: a new connection to the data directory and a new broker (the old one is abandoned, never stopped).
      const reopened = openSqliteStore(join(dir, 'data'));
      const delivered: string[] = [];
      const second = new QueueBroker({
        store: reopened, pollIntervalMs: 20, reclaimOnStart: true,
        invoke: async (_fn, payload) => {
          for (const r of (JSON.parse(payload) as SqsEvent).Records) delivered.push(`${r.messageId}:${r.attributes.ApproximateReceiveCount}`);
          return result('ok');
        },
      });
      try {
        second.ensureQueues([queue('q', { visibilityTimeout: 30 }), queue('r', { visibilityTimeout: 0.3 })]);
        second.setMappings([mapping('q'), mapping('r')]);
        second.start();
        await until(() => delivered.length === 4, 3_000, 'every message again');
        assert.deepEqual(delivered.sort(), [...sent, sentR].map((id) => `${id}:2`).sort());
        await until(() => reopened.queueCounts('q', Date.now()).inFlight === 0, 2_000, 'the deletes');
        await second.stop();
        // The old process's batches end late: their receipts are stale, so they delete nothing.
        release();
        await first.stop();
        assert.equal(first.stats('q')[0].deleted, 0);
        assert.equal(second.stats('q')[0].deleted, 3);
      } finally {
        release();
        await first.stop(100);
        reopened.close();
      }
    });

    it('without reclaimOnStart a dead process\'s messages come back when their visibility timeout ends', async () => {
      const b1 = makeBroker();
      b1.ensureQueues([queue('q', { visibilityTimeout: 0.3 })]);
      b1.sendMessage('q', 'x');
      assert.equal(b1.receiveMessages('q').length, 1); // received by a consumer that then died
      const receivedAt = Date.now();
      await b1.stop();
      broker = undefined;
      const b2 = makeBroker();
      b2.ensureQueues([queue('q', { visibilityTimeout: 0.3 })]);
      b2.setMappings([mapping('q')]);
      b2.start();
      await until(() => calls.length === 1, 3_000, 'the redelivery');
      assert.ok(calls[0].at - receivedAt >= 280, 'not before the visibility timeout ended');
      assert.equal(calls[0].event.Records[0].attributes.ApproximateReceiveCount, '2');
    });
  });
});
