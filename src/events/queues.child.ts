/**
 * A process for the durability test (queues.durability.test.ts), run from
 * dist: `node queues.child.js <dataDir> <outDir> <messages> <publishes>`.
 *
 * Sends `messages` queue messages (appending each MessageId to
 * `<outDir>/sent` once sendMessage returned, i.e. once it is durable), then
 * delivers them through an event source mapping whose function appends each
 * MessageId of its batch to `<outDir>/delivered` and takes 10 ms. While it
 * delivers, it publishes `publishes` topic messages about 1 ms apart to a
 * topic with two subscribed functions (appending each MessageId to
 * `<outDir>/published` once publish returned); their fan-outs go through an
 * AsyncQueue whose function appends `<MessageId> <function>` to
 * `<outDir>/notified`. The test kills it with SIGKILL mid-way. Not part of Nimbus.
 */
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { openSqliteStore } from '../store/index.js';
import { AsyncQueue } from './async-queue.js';
import { QueueBroker, type SqsEvent } from './queues.js';
import { TopicBroker, type SnsEvent } from './topics.js';
import type { QueueSpec } from '../core/index.js';

/** The same queue, topic and subscriptions as the test's restarted platform (queues.durability.test.ts). */
const DURABILITY_QUEUE: QueueSpec = { name: 'durable', fifo: false, visibilityTimeout: 30, messageRetentionPeriod: 345_600, delaySeconds: 0 };
const DURABILITY_TOPIC = 'notes';
const DURABILITY_SUBSCRIPTIONS = [{ functionName: 'notify-a', topic: DURABILITY_TOPIC }, { functionName: 'notify-b', topic: DURABILITY_TOPIC }];

const [dataDir, outDir, messages, publishes] = process.argv.slice(2);
const store = openSqliteStore(dataDir);
const asyncQueue = new AsyncQueue({
  store, concurrency: 8, leaseMs: 300, pollIntervalMs: 20, config: () => undefined, deliver: async () => {},
  invoke: async (fn, _q, payload, requestId) => {
    appendFileSync(join(outDir, 'notified'), `${(JSON.parse(payload) as SnsEvent).Records[0].Sns.MessageId} ${fn}\n`);
    return { requestId, outcome: 'ok', payload: 'null', durationMs: 1, billedDurationMs: 1, logs: '' };
  },
});
const queues = new QueueBroker({
  store, pollIntervalMs: 20,
  invoke: async (_fn, payload) => {
    const ids = (JSON.parse(payload) as SqsEvent).Records.map((r) => r.messageId);
    appendFileSync(join(outDir, 'delivered'), `${ids.join('\n')}\n`);
    await new Promise((r) => setTimeout(r, 10));
    return { requestId: '', outcome: 'ok', payload: 'null', durationMs: 10, billedDurationMs: 10, logs: '' };
  },
});
const topics = new TopicBroker({ store, enqueueAsync: (fn, payload, id, q) => asyncQueue.enqueue(fn, payload, q, id) });
queues.ensureQueues([DURABILITY_QUEUE]);
queues.setMappings([{ functionName: 'worker', queue: DURABILITY_QUEUE.name, batchSize: 10, maximumBatchingWindow: 0, reportBatchItemFailures: false, enabled: true, maximumConcurrency: 4 }]);
topics.ensureTopics([{ name: DURABILITY_TOPIC }]);
topics.setSubscriptions(DURABILITY_SUBSCRIPTIONS);

for (let i = 0; i < Number(messages); i++) {
  appendFileSync(join(outDir, 'sent'), `${queues.sendMessage(DURABILITY_QUEUE.name, JSON.stringify({ i })).messageId}\n`);
}
queues.start();
asyncQueue.start();
topics.start();
let published = 0;
const publishOne = () => {
  if (published++ >= Number(publishes)) return;
  appendFileSync(join(outDir, 'published'), `${topics.publish(DURABILITY_TOPIC, `note ${published}`).messageId}\n`);
  setTimeout(publishOne, 1);
};
setTimeout(publishOne, 1);
