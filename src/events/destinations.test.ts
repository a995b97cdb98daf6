import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AsyncInvocationRecord } from './async-queue.js';
import { destinationDelivery, parseDestination } from './destinations.js';

const record = (condition: AsyncInvocationRecord['requestContext']['condition']): AsyncInvocationRecord => ({
  version: '1.0',
  timestamp: '2019-11-14T18:16:05.568Z',
  requestContext: {
    requestId: 'e4b46cbf-b738-xmpl-8880-a18cdf61200e',
    functionArn: 'arn:aws:lambda:us-east-1:123456789012:function:my-function:$LATEST',
    condition,
    approximateInvokeCount: condition === 'Success' ? 1 : 3,
  },
  requestPayload: { ORDER_IDS: ['9e07af03-ce31-4ff3-xmpl-36dce652cb4f'] },
  responseContext: condition === 'Success'
    ? { statusCode: 200, executedVersion: '$LATEST' }
    : { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
  responsePayload: condition === 'Success' ? null : { errorMessage: 'RequestId: e4b46cbf-b738-xmpl-8880-a18cdf61200e Process exited before completing request' },
});

describe('parseDestination', () => {
  it('reads function names and the ARNs of functions, queues, topics and event buses', () => {
    assert.deepEqual(parseDestination('svc-dev-audit'), { kind: 'function', name: 'svc-dev-audit' });
    assert.deepEqual(parseDestination('audit:live'), { kind: 'function', name: 'audit', qualifier: 'live' });
    assert.deepEqual(parseDestination('arn:aws:lambda:us-east-1:123456789012:function:audit'), { kind: 'function', name: 'audit' });
    assert.deepEqual(parseDestination('arn:aws:lambda:us-east-1:123456789012:function:audit:7'), { kind: 'function', name: 'audit', qualifier: '7' });
    assert.deepEqual(parseDestination('arn:aws:sqs:us-east-1:123456789012:failed'), { kind: 'queue', name: 'failed' });
    assert.deepEqual(parseDestination('arn:aws:sns:us-east-1:123456789012:alerts'), { kind: 'topic', name: 'alerts' });
    assert.deepEqual(parseDestination('arn:aws:events:us-east-1:123456789012:event-bus/default'), { kind: 'eventBus', name: 'default' });
  });

  it('refuses anything else, naming it', () => {
    for (const bad of ['', 'arn:aws:s3:::bucket', 'arn:aws:lambda:us-east-1:1:layer:x', 'has space', 'a:b:c']) {
      assert.throws(() => parseDestination(bad), new RegExp(`invalid destination ${JSON.stringify(JSON.stringify(bad)).slice(1, -1)}`));
    }
  });
});

describe('destinationDelivery', () => {
  it('sends the record as Lambda does for each kind', async () => {
    const sent: unknown[][] = [];
    const to = destinationDelivery({
      invokeAsync: (...a) => { sent.push(['invokeAsync', ...a]); return 'request-id'; },
      sendMessage: async (...a) => { sent.push(['sendMessage', ...a]); },
      publish: (...a) => { sent.push(['publish', ...a]); },
      putEvent: (...a) => { sent.push(['putEvent', ...a]); },
    });
    const deliver = (destination: string, r: AsyncInvocationRecord) => to(parseDestination(destination), r);
    const ok = record('Success');
    const failed = record('RetriesExhausted');
    await deliver('audit:live', ok);
    await deliver('arn:aws:sqs:us-east-1:123456789012:failed', failed);
    await deliver('arn:aws:sns:us-east-1:123456789012:alerts', failed);
    await deliver('arn:aws:events:us-east-1:123456789012:event-bus/default', ok);
    await deliver('arn:aws:events:us-east-1:123456789012:event-bus/default', failed);
    assert.deepEqual(sent, [
      ['invokeAsync', 'audit', JSON.stringify(ok), 'live'],
      ['sendMessage', 'failed', JSON.stringify(failed)],
      ['publish', 'alerts', JSON.stringify(failed)],
      ['putEvent', 'default', { source: 'lambda', detailType: 'Lambda Function Invocation Result - Success', detail: ok }],
      ['putEvent', 'default', { source: 'lambda', detailType: 'Lambda Function Invocation Result - Failure', detail: failed }],
    ]);
  });

  it('fails for a kind it has no target for, or a target that throws', async () => {
    const deliver = destinationDelivery({ invokeAsync: () => { throw new Error('store is full'); } });
    await assert.rejects(deliver({ kind: 'queue', name: 'q' }, record('Success')), /cannot send to queue q: this Nimbus has no queues/);
    await assert.rejects(deliver({ kind: 'topic', name: 't' }, record('Success')), /cannot publish to topic t/);
    await assert.rejects(deliver({ kind: 'eventBus', name: 'b' }, record('Success')), /cannot put an event on bus b/);
    await assert.rejects(deliver({ kind: 'function', name: 'fn' }, record('Success')), /store is full/);
  });
});
