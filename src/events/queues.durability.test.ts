import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, it } from 'node:test';
import type { QueueSpec } from '../core/index.js';
import { openSqliteStore } from '../store/index.js';
import { removeTree } from '../store/index.js';
import { AsyncQueue } from './async-queue.js';
import { QueueBroker, type SqsEvent } from './queues.js';
import { TopicBroker, type SnsEvent } from './topics.js';

const CHILD = fileURLToPath(new URL('./queues.child.js', import.meta.url));
const MESSAGES = 1000;
const PUBLISHES = 300;
/** The child's mapping: at most 4 batches of 10 in flight when it is killed. */
const IN_FLIGHT = 40;
/** As in queues.child.ts. */
const QUEUE: QueueSpec = { name: 'durable', fifo: false, visibilityTimeout: 30, messageRetentionPeriod: 345_600, delaySeconds: 0 };
const TOPIC = 'notes';
const FUNCTIONS = ['notify-a', 'notify-b'];

const dir = mkdtempSync(join(tmpdir(), 'nimbus-queues-durable-'));
after(() => removeTree(dir));

/** Complete lines only (a line cut by the kill would not end in \n). */
function lines(file: string): string[] {
  if (!existsSync(file)) return [];
  const text = readFileSync(file, 'utf8');
  return text.slice(0, text.lastIndexOf('\n') + 1).split('\n').filter(Boolean);
}

async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

it('every sent message and every published fan-out is delivered after the platform is killed with SIGKILL mid-delivery', { timeout: 60_000 }, async (t) => {
  const dataDir = join(dir, 'data');
  const out = join(dir, 'out');
  mkdirSync(out);
  const file = (name: string) => join(out, name);

  const child = spawn(process.execPath, [CHILD, dataDir, out, String(MESSAGES), String(PUBLISHES)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += String(d); });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  try {
    await until(() => (lines(file('delivered')).length >= 200 && lines(file('published')).length >= 30) || child.exitCode !== null,
      20_000, 'the child to deliver 200 messages and publish 30');
  } finally {
    child.kill('SIGKILL');
  }
  assert.equal(await exited, 'SIGKILL', `the child was killed (stderr: ${stderr})`);

  const sent = lines(file('sent'));
  const beforeKill = new Set(lines(file('delivered')));
  const published = lines(file('published'));
  assert.equal(sent.length, MESSAGES, 'the child sent every message before delivering');
  assert.equal(new Set(sent).size, MESSAGES, 'MessageIds are unique');
  assert.ok(beforeKill.size >= 200 && beforeKill.size < MESSAGES, `killed mid-delivery (${beforeKill.size} of ${MESSAGES} delivered)`);

  // The restart: a new platform on the same data directory, owning it (reclaimOnStart).
  const store = openSqliteStore(dataDir);
  const asyncQueue = new AsyncQueue({
    store, concurrency: 16, pollIntervalMs: 20, reclaimOnStart: true, config: () => undefined, deliver: async () => {},
    invoke: async (fn, _q, payload, requestId) => {
      appendFileSync(file('notified'), `${(JSON.parse(payload) as SnsEvent).Records[0].Sns.MessageId} ${fn}\n`);
      return { requestId, outcome: 'ok', payload: 'null', durationMs: 0, billedDurationMs: 0, logs: '' };
    },
  });
  const queues = new QueueBroker({
    store, pollIntervalMs: 20, reclaimOnStart: true,
    invoke: async (_fn, payload) => {
      appendFileSync(file('delivered'), `${(JSON.parse(payload) as SqsEvent).Records.map((r) => r.messageId).join('\n')}\n`);
      return { requestId: '', outcome: 'ok', payload: 'null', durationMs: 0, billedDurationMs: 0, logs: '' };
    },
  });
  const topics = new TopicBroker({ store, enqueueAsync: (fn, payload, id, q) => asyncQueue.enqueue(fn, payload, q, id) });
  try {
    queues.ensureQueues([QUEUE]);
    queues.setMappings([{ functionName: 'worker', queue: QUEUE.name, batchSize: 10, maximumBatchingWindow: 0, reportBatchItemFailures: false, enabled: true }]);
    topics.ensureTopics([{ name: TOPIC }]);
    topics.start();
    queues.start();
    asyncQueue.start();
    await until(() => {
      const q = store.queueCounts(QUEUE.name, Date.now());
      const a = store.asyncCounts(Date.now());
      return q.visible + q.inFlight === 0 && a.pending + a.leased === 0 && store.pendingTopicDeliveryCount() === 0
        && asyncQueue.stats().inFlight === 0;
    }, 30_000, 'the queues to drain');
  } finally {
    await queues.stop();
    await topics.stop();
    await asyncQueue.stop();
    store.close();
  }

  const all = lines(file('delivered'));
  const delivered = new Set(all);
  assert.deepEqual(sent.filter((id) => !delivered.has(id)), [], 'no sent message is lost');
  assert.equal(delivered.size, MESSAGES, 'nothing but sent messages was delivered');
  const duplicates = all.length - delivered.size;
  assert.ok(duplicates <= IN_FLIGHT, `${duplicates} messages were delivered twice; at most ${IN_FLIGHT} were in flight`);

  const notified = new Set(lines(file('notified')));
  const missing = published.flatMap((id) => FUNCTIONS.map((fn) => `${id} ${fn}`)).filter((n) => !notified.has(n));
  assert.deepEqual(missing, [], 'every published message reached both subscribed functions');
  t.diagnostic(`${beforeKill.size} messages delivered before SIGKILL, ${MESSAGES - beforeKill.size} after, ${duplicates} twice; `
    + `${published.length} of ${PUBLISHES} publishes accepted before SIGKILL, all fanned out`);
});
