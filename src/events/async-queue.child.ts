/**
 * A process for the durability test (async-queue.durability.test.ts), run
 * from dist: `node async-queue.child.js <dataDir> <acceptedFile> <deliveredFile> <count>`.
 *
 * Accepts `count` events (appending each request id to acceptedFile once
 * enqueue returned, i.e. once the event is durable: the moment an Invoke
 * answers 202), then delivers them with a function that appends each request
 * id it receives to deliveredFile and takes a few ms. The test kills it with
 * SIGKILL mid-delivery. Not part of Nimbus.
 */
import { appendFileSync } from 'node:fs';
import { openSqliteStore } from '../store/index.js';
import { AsyncQueue } from './async-queue.js';

const [dataDir, acceptedFile, deliveredFile, count] = process.argv.slice(2);
const store = openSqliteStore(dataDir);
const queue = new AsyncQueue({
  store,
  concurrency: 8,
  // Short, so the test's second queue finds the killed process's leases expired soon.
  leaseMs: 300,
  pollIntervalMs: 20,
  config: () => undefined,
  deliver: async () => {},
  invoke: async (_name, _qualifier, _payload, requestId) => {
    appendFileSync(deliveredFile, `${requestId}\n`);
    await new Promise((r) => setTimeout(r, 3));
    return { requestId, outcome: 'ok', payload: 'null', durationMs: 3, billedDurationMs: 3, logs: '' };
  },
});
for (let i = 0; i < Number(count); i++) {
  appendFileSync(acceptedFile, `${queue.enqueue('durable-fn', JSON.stringify({ i }))}\n`);
}
queue.start();
