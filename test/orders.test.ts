/**
 * End-to-end: examples/orders-api on a real `nimbus server`, deployed and
 * driven with the CLI and HTTP as a user would. The API queues orders with
 * the AWS SDK's SQS client, the worker takes them from the queue in batches
 * (reporting the one it cannot process) and announces each on a topic with
 * the SNS client, a subscriber logs the announcements, and a schedule
 * reports. Then the CLI's queue and topic commands, with their errors.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { GetQueueUrlCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, runNimbus, sleep, startServer, type DevProcess } from './cli-helpers.js';

const example = join(repoRoot, 'examples', 'orders-api');
const work = mkdtempSync(join(tmpdir(), 'nimbus-orders-test-'));
const dataDir = join(work, 'data');
let server: DevProcess;
const remote = () => ['--endpoint', `http://127.0.0.1:${server.controlPort}`, '--data-dir', dataDir];

async function logsUntil(key: string, pattern: RegExp, timeoutMs = 30_000): Promise<string> {
  const until = Date.now() + timeoutMs;
  let out = '';
  while (Date.now() < until) {
    out = (await runNimbus(['logs', '-f', key, '--startTime', '1h', ...remote()], { cwd: example })).stdout;
    if (pattern.test(out)) return out;
    await sleep(300);
  }
  throw new Error(`timed out waiting for ${pattern} in the logs of ${key}:\n${out}`);
}

describe('examples/orders-api on nimbus server', { timeout: 300_000 }, () => {
  before(async () => {
    server = await startServer(dataDir, ['--quiet']);
    const d = await runNimbus(['deploy', ...remote()], { cwd: example, timeoutMs: 120_000 });
    assert.equal(d.code, 0, d.stderr);
  });
  after(async () => {
    await server?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('accepts orders over HTTP, processes them from the queue, announces them on the topic', async () => {
    const ids: string[] = [];
    for (const [item, quantity] of [['book', 2], ['pen', 10], ['lamp', 1], ['mug', 4], ['desk', 1]] as const) {
      const res = await fetch(`http://127.0.0.1:${server.port}/orders`, { method: 'POST', body: JSON.stringify({ item, quantity }), headers: { 'content-type': 'application/json' } });
      assert.equal(res.status, 202, await res.clone().text());
      ids.push(((await res.json()) as { orderId: string }).orderId);
    }
    const bad = await fetch(`http://127.0.0.1:${server.port}/orders`, { method: 'POST', body: '{"item":"unobtainium","quantity":1}' });
    assert.equal(bad.status, 202);
    const badId = ((await bad.json()) as { orderId: string }).orderId;
    const invalid = await fetch(`http://127.0.0.1:${server.port}/orders`, { method: 'POST', body: '{"item":"x"}' });
    assert.equal(invalid.status, 400);

    const logs = await logsUntil('notify', new RegExp(ids.map((id) => `(?=[\\s\\S]*ORDER ${id} processed)`).join('')));
    assert.match(logs, new RegExp(`ORDER ${ids[0]} processed: 2 x book`));
    assert.doesNotMatch(logs, new RegExp(badId));
    const worker = await logsUntil('processOrders', new RegExp(`cannot process order ${badId} \\(receive 1\\)`));
    assert.match(worker, /batch of \d+: \d+ processed/);
  });

  it('fires the nightly report on demand', async () => {
    const r = await runNimbus(['schedule', 'run', '-f', 'nightlyReport', ...remote()], { cwd: example });
    assert.equal(r.code, 0, r.stderr);
    await logsUntil('nightlyReport', /NIGHTLY REPORT for \d{4}-\d{2}-\d{2} \(Scheduled Event\)/);
  });

  it('sends to the queue and publishes to the topic from the CLI, with clear errors', async () => {
    const send = await runNimbus(['queue', 'send', '--queue', 'orders', '--body', '{"orderId":"cli-1","item":"stapler","quantity":3}', ...remote()]);
    assert.equal(send.code, 0, send.stderr);
    assert.match(send.stdout, /Sent message [0-9a-f-]{36} to orders/);
    await logsUntil('notify', /ORDER cli-1 processed: 3 x stapler/);

    const pub = await runNimbus(['topic', 'publish', '--topic', 'order-events', '--subject', 's', '--message', '{"orderId":"cli-2","item":"tape","quantity":1,"status":"shipped"}', ...remote()]);
    assert.equal(pub.code, 0, pub.stderr);
    await logsUntil('notify', /ORDER cli-2 shipped: 1 x tape/);

    const queues = JSON.parse((await runNimbus(['queue', 'list', '--json', ...remote()])).stdout) as Array<{ queue: string; deadLetterQueue?: string }>;
    assert.deepEqual(queues.map((q) => q.queue).sort(), ['orders', 'orders-dlq']);
    assert.equal(queues.find((q) => q.queue === 'orders')!.deadLetterQueue, 'orders-dlq');

    // A dead-letter queue is read with receive (the CLI) or ReceiveMessage (the SDK, with the server's access key).
    assert.equal((await runNimbus(['queue', 'send', '--queue', 'orders-dlq', '--body', 'dead one', ...remote()])).code, 0);
    const key = (JSON.parse(readFileSync(join(dataDir, 'access-keys.json'), 'utf8')) as Array<{ accessKeyId: string; secretAccessKey: string }>)[0];
    const sqs = new SQSClient({ endpoint: `http://127.0.0.1:${server.controlPort}`, region: 'us-east-1', credentials: key });
    const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: 'orders-dlq' }));
    const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 0 }));
    assert.deepEqual(got.Messages?.map((m) => m.Body), ['dead one']);
    sqs.destroy();
    const received = await runNimbus(['queue', 'receive', '--queue', 'orders-dlq', '--delete', ...remote()]);
    assert.equal(received.code, 0, received.stderr);
    assert.match(received.stdout, /dead one\nDeleted 1 message\(s\)/);
    assert.match((await runNimbus(['queue', 'receive', '--queue', 'orders-dlq', ...remote()])).stdout, /No message visible in orders-dlq/);

    const unknown = await runNimbus(['queue', 'send', '--queue', 'nope', '--body', 'x', ...remote()]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /nope/);
    assert.match(unknown.stderr, /orders/);
    const bigFile = join(work, 'big.txt');
    writeFileSync(bigFile, 'x'.repeat(262_145));
    const big = await runNimbus(['topic', 'publish', '--topic', 'order-events', '--file', bigFile, ...remote()]);
    assert.equal(big.code, 1);
    assert.match(big.stderr, /262,144 bytes/);
  });
});
