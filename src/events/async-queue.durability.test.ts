import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, it } from 'node:test';
import { openSqliteStore } from '../store/index.js';
import { removeTree } from '../store/index.js';
import { AsyncQueue } from './async-queue.js';

const CHILD = fileURLToPath(new URL('./async-queue.child.js', import.meta.url));
const EVENTS = 1000;
/** The child's concurrency: at most this many events can be mid-attempt when it is killed. */
const CHILD_CONCURRENCY = 8;

const dir = mkdtempSync(join(tmpdir(), 'nimbus-durable-'));
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

it('every accepted event is delivered at least once after the queue\'s process is killed with SIGKILL mid-delivery', { timeout: 60_000 }, async (t) => {
  const dataDir = join(dir, 'data');
  const accepted = join(dir, 'accepted');
  const delivered = join(dir, 'delivered');

  const child = spawn(process.execPath, [CHILD, dataDir, accepted, delivered, String(EVENTS)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += String(d); });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  try {
    await until(() => lines(delivered).length >= 200 || child.exitCode !== null, 20_000, 'the child to deliver 200 events');
  } finally {
    child.kill('SIGKILL');
  }
  assert.equal(await exited, 'SIGKILL', `the child was killed (stderr: ${stderr})`);

  const acceptedIds = lines(accepted);
  const beforeKill = new Set(lines(delivered));
  assert.equal(acceptedIds.length, EVENTS, 'the child accepted every event before delivering');
  assert.equal(new Set(acceptedIds).size, EVENTS, 'request ids are unique');
  assert.ok(beforeKill.size >= 200 && beforeKill.size < EVENTS, `killed mid-delivery (${beforeKill.size} of ${EVENTS} delivered)`);

  // A new queue on the same data directory, as after a restart.
  const store = openSqliteStore(dataDir);
  const queue = new AsyncQueue({
    store, concurrency: 16, pollIntervalMs: 20, config: () => undefined, deliver: async () => {},
    invoke: async (_name, _qualifier, _payload, requestId) => {
      appendFileSync(delivered, `${requestId}\n`);
      return { requestId, outcome: 'ok', payload: 'null', durationMs: 0, billedDurationMs: 0, logs: '' };
    },
  });
  try {
    queue.start();
    await until(() => {
      const c = store.asyncCounts(Date.now());
      return c.pending === 0 && c.leased === 0 && queue.stats().inFlight === 0;
    }, 30_000, 'the queue to drain');
    await queue.stop();
    assert.equal(store.listDeadLetters().length, 0);
  } finally {
    await queue.stop();
    store.close();
  }

  const all = lines(delivered);
  const deliveredIds = new Set(all);
  const lost = acceptedIds.filter((id) => !deliveredIds.has(id));
  assert.deepEqual(lost, [], 'no accepted event is lost');
  assert.equal(deliveredIds.size, EVENTS, 'nothing but accepted events was delivered');
  // At least once, not much more: only the attempts in flight at the kill run twice.
  const duplicates = all.length - deliveredIds.size;
  t.diagnostic(`${beforeKill.size} delivered before SIGKILL, ${EVENTS - beforeKill.size} after the restart, ${duplicates} twice`);
  assert.ok(duplicates <= CHILD_CONCURRENCY, `${duplicates} events were delivered twice; at most ${CHILD_CONCURRENCY} were in flight`);
});
