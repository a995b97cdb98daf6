import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { InvocationResult } from '../core/index.js';
import { openSqliteStore, type Store } from '../store/index.js';
import { removeTree } from '../store/index.js';
import { AsyncQueue } from './async-queue.js';
import type { MessageAttributeValue, StoredAttribute } from './queues.js';
import { compileFilterPolicy, subscriptionArn, TopicBroker, type SnsEvent, type TopicBrokerOptions } from './topics.js';

async function until(check: () => boolean, ms = 5_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const str = (name: string, value: string): StoredAttribute => ({ name, dataType: 'String', stringValue: value });
const num = (name: string, value: string): StoredAttribute => ({ name, dataType: 'Number', stringValue: value });
const arr = (name: string, value: unknown[]): StoredAttribute => ({ name, dataType: 'String.Array', stringValue: JSON.stringify(value) });

/** Does `policy` accept a message with these attributes (scope MessageAttributes)? */
function accepts(policy: unknown, ...attributes: StoredAttribute[]): boolean {
  return compileFilterPolicy(policy)({ attributes, message: 'm' });
}

describe('SNS filter policies', () => {
  it('exact strings, lists of alternatives, String.Array elements; an absent key matches nothing', () => {
    const p = { customer_interests: ['rugby', 'tennis'] };
    assert.equal(accepts(p, str('customer_interests', 'rugby')), true);
    assert.equal(accepts(p, str('customer_interests', 'tennis')), true);
    assert.equal(accepts(p, arr('customer_interests', ['rugby', 'tennis'])), true);
    assert.equal(accepts(p, str('customer_interests', 'baseball')), false);
    assert.equal(accepts(p, arr('customer_interests', ['baseball'])), false);
    assert.equal(accepts(p), false);
    assert.equal(accepts(p, str('other', 'rugby')), false);
  });

  it('AND across keys', () => {
    const p = { store: ['example_corp'], event: ['order_placed'] };
    assert.equal(accepts(p, str('store', 'example_corp'), str('event', 'order_placed')), true);
    assert.equal(accepts(p, str('store', 'example_corp'), str('event', 'order_cancelled')), false);
    assert.equal(accepts(p, str('store', 'example_corp')), false);
  });

  it('prefix, suffix and equals-ignore-case on strings', () => {
    assert.equal(accepts({ customer_interests: [{ prefix: 'bas' }] }, str('customer_interests', 'baseball')), true);
    assert.equal(accepts({ customer_interests: [{ prefix: 'bas' }] }, str('customer_interests', 'rugby')), false);
    assert.equal(accepts({ customer_interests: [{ suffix: 'ball' }] }, str('customer_interests', 'baseball')), true);
    assert.equal(accepts({ customer_interests: [{ suffix: 'ball' }] }, str('customer_interests', 'rugby')), false);
    assert.equal(accepts({ customer_interests: [{ 'equals-ignore-case': 'TeNnIs' }] }, str('customer_interests', 'tennis')), true);
  });

  it('anything-but: a value, a list, a prefix; the key must be present', () => {
    const list = { customer_interests: [{ 'anything-but': ['rugby', 'tennis'] }] };
    assert.equal(accepts(list, str('customer_interests', 'baseball')), true);
    assert.equal(accepts(list, str('customer_interests', 'rugby')), false);
    assert.equal(accepts(list, arr('customer_interests', ['rugby', 'baseball'])), false, 'an array with a refused element');
    assert.equal(accepts(list), false, 'absent');
    assert.equal(accepts({ price: [{ 'anything-but': [100, 500] }] }, num('price', '101')), true);
    assert.equal(accepts({ price: [{ 'anything-but': [100, 500] }] }, num('price', '100')), false);
    assert.equal(accepts({ price: [{ 'anything-but': 100 }] }, num('price', '100.1')), true);
    assert.equal(accepts({ event: [{ 'anything-but': { prefix: 'order-' } }] }, str('event', 'order-cancelled')), false);
    assert.equal(accepts({ event: [{ 'anything-but': { prefix: 'order-' } }] }, str('event', 'data-entry')), true);
  });

  it('numeric: =, ranges, exponents; Number attributes only', () => {
    assert.equal(accepts({ price_usd: [{ numeric: ['=', 301.5] }] }, num('price_usd', '3.015e2')), true);
    const range = { price_usd: [{ numeric: ['>', 0, '<=', 150] }] };
    assert.equal(accepts(range, num('price_usd', '150')), true);
    assert.equal(accepts(range, num('price_usd', '0')), false);
    assert.equal(accepts(range, num('price_usd', '150.01')), false);
    assert.equal(accepts(range, str('price_usd', '100')), false, 'a String attribute does not match a numeric condition');
    assert.equal(accepts({ price_usd: [100] }, num('price_usd', '100')), true);
    assert.equal(accepts({ price_usd: ['100'] }, num('price_usd', '100')), false, 'a Number attribute does not match a string');
    assert.equal(accepts({ sizes: [{ numeric: ['>=', 40] }] }, arr('sizes', [38, 42])), true);
  });

  it('exists true and false; Binary attributes are ignored', () => {
    assert.equal(accepts({ store: [{ exists: true }] }, str('store', 'x')), true);
    assert.equal(accepts({ store: [{ exists: true }] }), false);
    assert.equal(accepts({ store: [{ exists: false }] }), true);
    assert.equal(accepts({ store: [{ exists: false }] }, str('store', 'x')), false);
    const binary: StoredAttribute = { name: 'store', dataType: 'Binary', binaryValue: 'AQID' };
    assert.equal(accepts({ store: [{ exists: true }] }, binary), false);
    assert.equal(accepts({ store: [{ exists: false }] }, binary), true);
  });

  it('cidr on IPv4 addresses, and $or of sub-policies', () => {
    const cidr = { source_ip: [{ cidr: '10.0.0.0/24' }] };
    assert.equal(accepts(cidr, str('source_ip', '10.0.0.255')), true);
    assert.equal(accepts(cidr, str('source_ip', '10.0.1.0')), false);
    assert.equal(accepts(cidr, str('source_ip', 'not an ip')), false);
    const or = { source: ['aws.cloudwatch'], $or: [{ metricName: ['CPUUtilization'] }, { namespace: ['AWS/EC2'] }] };
    assert.equal(accepts(or, str('source', 'aws.cloudwatch'), str('namespace', 'AWS/EC2')), true);
    assert.equal(accepts(or, str('source', 'aws.cloudwatch'), str('metricName', 'CPUUtilization')), true);
    assert.equal(accepts(or, str('source', 'aws.cloudwatch'), str('metricName', 'Disk')), false);
    assert.equal(accepts(or, str('source', 'other'), str('namespace', 'AWS/EC2')), false);
  });

  it('scope MessageBody: properties of the JSON body, nested objects, a body that is not JSON matches nothing', () => {
    const p = compileFilterPolicy({ store: ['example_corp'], order: { total: [{ numeric: ['>', 100] }], tags: ['gift'] } }, 'MessageBody');
    const body = (v: unknown) => ({ attributes: [], message: JSON.stringify(v) });
    assert.equal(p(body({ store: 'example_corp', order: { total: 150, tags: ['gift', 'fast'] } })), true);
    assert.equal(p(body({ store: 'example_corp', order: { total: 50, tags: ['gift'] } })), false);
    assert.equal(p(body({ store: 'example_corp' })), false);
    assert.equal(p({ attributes: [], message: 'plain text' }), false);
  });

  it('refuses an invalid policy, naming the path, the value and what is allowed', () => {
    assert.throws(() => compileFilterPolicy({ price: [{ between: [1, 2] }] }), /filterPolicy\.price\[0\]: unknown operator "between"; allowed: exact values/);
    assert.throws(() => compileFilterPolicy({ price: [{ numeric: ['<', 5, '>', 1] }] }), /filterPolicy\.price\[0\]\.numeric: .* is not a range/);
    assert.throws(() => compileFilterPolicy({ price: [] }), /filterPolicy\.price: an empty list matches nothing/);
    assert.throws(() => compileFilterPolicy({ price: 5 }), /filterPolicy\.price: 5 is not allowed: a list of conditions/);
    assert.throws(() => compileFilterPolicy({ a: { b: ['x'] } }), /nested keys need filterPolicyScope MessageBody/);
    assert.throws(() => compileFilterPolicy({ ip: [{ cidr: '10.0.0.0/33' }] }), /an IPv4 block/);
    assert.throws(() => compileFilterPolicy({ $or: [{ a: ['x'] }] }), /\$or: expected a list of at least two policies/);
    assert.throws(() => compileFilterPolicy({}), /an object of keys to lists of conditions/);
  });
});

describe('TopicBroker', () => {
  let dir: string;
  let store: Store;
  let broker: TopicBroker | undefined;
  /** What enqueueAsync took: function, parsed event, request id, qualifier. */
  let enqueued: Array<{ functionName: string; event: SnsEvent; requestId: string; qualifier?: string }>;
  let errors: string[];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'nimbus-topics-'));
    store = openSqliteStore(join(dir, 'data'));
    enqueued = [];
    errors = [];
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

  function makeBroker(extra: Partial<TopicBrokerOptions> = {}, s: Store = store): TopicBroker {
    broker = new TopicBroker({
      store: s, retryIntervalMs: 20,
      onError: (m) => errors.push(m),
      enqueueAsync: (functionName, payload, requestId, qualifier) => {
        enqueued.push({ functionName, event: JSON.parse(payload) as SnsEvent, requestId, ...(qualifier !== undefined ? { qualifier } : {}) });
      },
      ...extra,
    });
    return broker;
  }

  it('the SNS event has the fields of AWS\'s example Amazon SNS message event, in its order', () => {
    const b = makeBroker({ region: 'us-east-2' });
    b.ensureTopics([{ name: 'sns-lambda' }]);
    b.setSubscriptions([{ functionName: 'fn', topic: 'sns-lambda', qualifier: 'live' }]);
    const before = Date.now();
    const attributes: Record<string, MessageAttributeValue> = {
      Test: { DataType: 'String', StringValue: 'TestString' },
      TestBinary: { DataType: 'Binary', BinaryValue: Buffer.from('TestBinary') },
    };
    const { messageId } = b.publish('sns-lambda', 'Hello from SNS!', { subject: 'TestInvoke', messageAttributes: attributes });
    assert.equal(enqueued.length, 1, 'fanned out before publish returned');
    const [{ functionName, event, requestId, qualifier }] = enqueued;
    assert.deepEqual([functionName, qualifier], ['fn', 'live']);
    assert.match(requestId, /^[0-9a-f-]{36}$/);
    // https://docs.aws.amazon.com/lambda/latest/dg/with-sns.html, "Example Amazon SNS message event"
    assert.deepEqual(Object.keys(event), ['Records']);
    assert.equal(event.Records.length, 1);
    const [r] = event.Records;
    assert.deepEqual(Object.keys(r), ['EventVersion', 'EventSubscriptionArn', 'EventSource', 'Sns']);
    assert.equal(r.EventVersion, '1.0');
    assert.equal(r.EventSource, 'aws:sns');
    assert.equal(r.EventSubscriptionArn, subscriptionArn('us-east-2', 'sns-lambda', 'fn', 'live'));
    assert.match(r.EventSubscriptionArn, /^arn:aws:sns:us-east-2:000000000000:sns-lambda:[0-9a-f-]{36}$/);
    assert.deepEqual(Object.keys(r.Sns), [
      'SignatureVersion', 'Timestamp', 'Signature', 'SigningCertUrl', 'MessageId', 'Message', 'MessageAttributes',
      'Type', 'UnsubscribeUrl', 'TopicArn', 'Subject',
    ]);
    assert.equal(r.Sns.SignatureVersion, '1');
    assert.match(r.Sns.Timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(Date.parse(r.Sns.Timestamp) >= before - 1 && Date.parse(r.Sns.Timestamp) <= Date.now());
    assert.equal(typeof r.Sns.Signature, 'string');
    assert.match(r.Sns.SigningCertUrl, /^https:\/\/sns\.us-east-2\.amazonaws\.com\/SimpleNotificationService-.*\.pem$/);
    assert.equal(r.Sns.MessageId, messageId);
    assert.equal(r.Sns.Message, 'Hello from SNS!');
    assert.deepEqual(r.Sns.MessageAttributes, {
      Test: { Type: 'String', Value: 'TestString' },
      TestBinary: { Type: 'Binary', Value: Buffer.from('TestBinary').toString('base64') },
    });
    assert.equal(r.Sns.Type, 'Notification');
    assert.equal(r.Sns.UnsubscribeUrl, `https://sns.us-east-2.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=${r.EventSubscriptionArn}`);
    assert.equal(r.Sns.TopicArn, 'arn:aws:sns:us-east-2:000000000000:sns-lambda');
    assert.equal(r.Sns.Subject, 'TestInvoke');
    assert.equal(store.pendingTopicDeliveryCount(), 0, 'marked done');
  });

  it('fans out to every subscribed function whose filter policy matches, each with its own record and request id', () => {
    const b = makeBroker();
    b.ensureTopics([{ name: 'orders' }, { name: 'other' }]);
    b.setSubscriptions([
      { functionName: 'all', topic: 'orders' },
      { functionName: 'big', topic: 'orders', filterPolicy: { total: [{ numeric: ['>=', 100] }] } },
      { functionName: 'eu', topic: 'orders', filterPolicy: { region: [{ prefix: 'eu-' }] } },
      { functionName: 'elsewhere', topic: 'other' },
    ]);
    const attrs = (total: string, region: string) => ({
      total: { DataType: 'Number', StringValue: total }, region: { DataType: 'String', StringValue: region },
    });
    const one = b.publish('orders', 'one', { messageAttributes: attrs('150', 'eu-west-1') });
    const two = b.publish('orders', 'two', { messageAttributes: attrs('10', 'us-east-1') });
    assert.deepEqual(enqueued.map((e) => [e.event.Records[0].Sns.Message, e.functionName]).sort(),
      [['one', 'all'], ['one', 'big'], ['one', 'eu'], ['two', 'all']]);
    assert.deepEqual(enqueued.map((e) => e.event.Records[0].Sns.MessageId), [one.messageId, one.messageId, one.messageId, two.messageId]);
    assert.equal(new Set(enqueued.map((e) => e.requestId)).size, 4);
    assert.equal(new Set(enqueued.slice(0, 3).map((e) => e.event.Records[0].EventSubscriptionArn)).size, 3);
    assert.equal(enqueued[3].event.Records[0].Sns.Subject, null, 'no subject: null, as in AWS\'s events');
    assert.deepEqual(b.stats('orders').map((s) => [s.subscriptions, s.published, s.delivered, s.filteredOut, s.pending]), [[3, 2, 4, 2, 0]]);
  });

  it('refuses an unknown topic (naming the topics), an oversize message, a bad subject, an invalid filter policy', () => {
    const b = makeBroker();
    b.ensureTopics([{ name: 'orders' }, { name: 'alerts' }]);
    assert.throws(() => b.publish('order', 'x'), (e: Error & { code: string; status: number }) => {
      assert.equal(e.code, 'NotFound');
      assert.equal(e.status, 404);
      assert.match(e.message, /topic "order" does not exist; the topics are: alerts, orders/);
      return true;
    });
    b.publish('orders', 'x'.repeat(262_144));
    assert.throws(() => b.publish('orders', 'x'.repeat(262_145)), (e: Error & { code: string }) =>
      e.code === 'InvalidParameter' && /262,145 bytes .* over SNS's limit of 262,144 bytes \(256 KiB\)/.test(e.message));
    assert.throws(() => b.publish('orders', 'x'.repeat(262_140), { messageAttributes: { a: { DataType: 'String', StringValue: 'v' } } }), /262,148 bytes/);
    assert.throws(() => b.publish('orders', ''), /must not be empty/);
    assert.throws(() => b.publish('orders', 'x', { subject: 's'.repeat(100) }), /1 to 99 characters/);
    assert.throws(() => b.publish('orders', 'x', { subject: 'a\nb' }), /no line breaks/);
    assert.throws(() => b.publish('orders', 'x', { messageAttributes: { a: { DataType: 'String.Array', StringValue: 'nope' } } }), /must be a JSON array/);
    assert.throws(() => b.setSubscriptions([{ functionName: 'fn', topic: 'nope' }]), /the sns subscription of fn to topic nope: topic "nope" does not exist/);
    assert.throws(() => b.setSubscriptions([{ functionName: 'fn', topic: 'orders', filterPolicy: { a: [{ near: 1 }] } }]),
      /the sns subscription of fn to topic orders: filterPolicy\.a\[0\]: unknown operator "near"/);
  });

  it('durability: a publish recorded but not fanned out (a crash) is fanned out after a restart, with the same MessageId and request id', async () => {
    // The first process: the asynchronous queue refuses (the process dies before it takes the events).
    const tried: string[] = [];
    const first = makeBroker({ enqueueAsync: (_fn, _p, requestId) => { tried.push(requestId); throw new Error('killed'); } });
    first.ensureTopics([{ name: 't' }]);
    first.setSubscriptions([{ functionName: 'a', topic: 't' }, { functionName: 'b', topic: 't', filterPolicy: { kind: ['x'] } }]);
    const { messageId } = first.publish('t', 'survives', { messageAttributes: { kind: { DataType: 'String', StringValue: 'x' } } });
    assert.equal(store.pendingTopicDeliveryCount('t'), 2);
    assert.equal(tried.length, 2);
    await first.stop();
    store.close();

    store = openSqliteStore(join(dir, 'data'));
    const second = makeBroker();
    second.ensureTopics([{ name: 't' }]);
    second.setSubscriptions([]); // what a publish matched is delivered, whatever the subscriptions are now
    second.start();
    assert.deepEqual(enqueued.map((e) => [e.functionName, e.event.Records[0].Sns.MessageId, e.event.Records[0].Sns.Message]).sort(),
      [['a', messageId, 'survives'], ['b', messageId, 'survives']]);
    assert.deepEqual(enqueued.map((e) => e.requestId).sort(), [...tried].sort(), 'the same request ids');
    assert.deepEqual(enqueued.map((e) => e.event.Records[0].Sns.MessageAttributes), [
      { kind: { Type: 'String', Value: 'x' } }, { kind: { Type: 'String', Value: 'x' } },
    ]);
    assert.equal(store.pendingTopicDeliveryCount(), 0);
  });

  it('retries a refused fan-out every retryIntervalMs, and waits for an asynchronous one at stop()', async () => {
    let refusals = 2;
    const taken: string[] = [];
    const b = makeBroker({
      enqueueAsync: async (functionName) => {
        await new Promise((r) => setTimeout(r, 10));
        if (refusals-- > 0) throw new Error('store busy');
        taken.push(functionName);
      },
    });
    b.ensureTopics([{ name: 't' }]);
    b.setSubscriptions([{ functionName: 'fn', topic: 't' }]);
    b.start();
    b.publish('t', 'x');
    await until(() => taken.length === 1, 2_000, 'the third try');
    await b.stop();
    assert.equal(store.pendingTopicDeliveryCount(), 0);
    assert.equal(errors.filter((e) => e.includes('will try again')).length, 2);
    assert.equal(b.stats('t')[0].delivered, 1);
  });

  it('through a real AsyncQueue: a crash after the queue took the fan-outs repeats them, and each function still runs once', async () => {
    const runs: Array<{ fn: string; requestId: string; event: SnsEvent }> = [];
    const queue = new AsyncQueue({
      store, config: () => undefined, deliver: async () => {}, pollIntervalMs: 20,
      invoke: async (fn, _q, payload, requestId): Promise<InvocationResult> => {
        runs.push({ fn, requestId, event: JSON.parse(payload) as SnsEvent });
        return { requestId, outcome: 'ok', payload: 'null', durationMs: 1, billedDurationMs: 1, logs: '' };
      },
    });
    // The first process dies after the queue committed each event, before the fan-out was marked done.
    const first = makeBroker({
      enqueueAsync: (fn, payload, requestId, qualifier) => { queue.enqueue(fn, payload, qualifier, requestId); throw new Error('killed'); },
    });
    first.ensureTopics([{ name: 't' }]);
    first.setSubscriptions([{ functionName: 'a', topic: 't' }, { functionName: 'b', topic: 't' }]);
    const { messageId } = first.publish('t', 'hello');
    await first.stop();
    assert.equal(store.pendingTopicDeliveryCount(), 2);

    const second = makeBroker({ enqueueAsync: (fn, payload, requestId, qualifier) => queue.enqueue(fn, payload, qualifier, requestId) });
    second.ensureTopics([{ name: 't' }]);
    second.start();
    assert.equal(store.pendingTopicDeliveryCount(), 0);
    assert.equal(store.asyncCounts(Date.now()).pending, 2, 'one queued event per request id');
    queue.start();
    try {
      await until(() => runs.length === 2, 3_000, 'two runs');
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(runs.map((r) => r.fn).sort(), ['a', 'b']);
      assert.deepEqual(runs.map((r) => r.event.Records[0].Sns.MessageId), [messageId, messageId]);
    } finally {
      await queue.stop();
    }
  });
});
