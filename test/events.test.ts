/**
 * End-to-end: event sources on a real `nimbus server`, driven with the CLI
 * and the Invoke API as a user would: asynchronous invocation (202, retries
 * with the same request id, onSuccess / onFailure destinations, the
 * dead-letter queue and redrive) and schedules (`nimbus schedule run`, the
 * Scheduled Event's shape, `schedule list`).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runNimbus, sleep, startDev, startServer, type DevProcess } from './cli-helpers.js';

const work = mkdtempSync(join(tmpdir(), 'nimbus-events-test-'));
const dataDir = join(work, 'data');
const project = join(work, 'jobs');
mkdirSync(project);
writeFileSync(join(project, 'serverless.yml'), `
service: jobs
provider: { name: aws, runtime: nodejs20.x, memorySize: 128 }
functions:
  work:
    handler: handler.work
    maximumRetryAttempts: 2
    destinations:
      onSuccess: audit
  flaky:
    handler: handler.flaky
    maximumRetryAttempts: 1
  audit:
    handler: handler.audit
  tick:
    handler: handler.tick
    events:
      - schedule:
          rate: rate(1 day)
          input: { job: nightly }
      - schedule: cron(0 3 ? * MON-FRI *)
`);
writeFileSync(join(project, 'handler.mjs'), `
export const work = async (event, context) => { console.log('WORK', context.awsRequestId, JSON.stringify(event)); return { done: event.n }; };
export const flaky = async (event, context) => { console.log('FLAKY', context.awsRequestId); throw new Error('always fails'); };
export const audit = async (event) => { console.log('AUDIT', JSON.stringify(event)); };
export const tick = async (event) => { console.log('TICK', JSON.stringify(event)); };
`);

let server: DevProcess;
after(() => rmSync(work, { recursive: true, force: true }));
const remote = () => ['--endpoint', `http://127.0.0.1:${server.controlPort}`, '--data-dir', dataDir];
const token = () => readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();

async function invokeEvent(name: string, payload: unknown): Promise<Response> {
  return fetch(`http://127.0.0.1:${server.controlPort}/2015-03-31/functions/${name}/invocations`, {
    method: 'POST', body: JSON.stringify(payload),
    headers: { authorization: `Bearer ${token()}`, 'x-amz-invocation-type': 'Event' },
  });
}

/** Waits (bounded) until `nimbus logs -f KEY` shows `pattern`; returns the logs. */
async function logsUntil(key: string, pattern: RegExp, timeoutMs = 20_000): Promise<string> {
  const until = Date.now() + timeoutMs;
  let out = '';
  while (Date.now() < until) {
    const r = await runNimbus(['logs', '-f', key, '--startTime', '1h', ...remote()], { cwd: project });
    out = r.stdout;
    if (pattern.test(out)) return out;
    await sleep(300);
  }
  throw new Error(`timed out waiting for ${pattern} in the logs of ${key}:\n${out}`);
}

describe('event sources on nimbus server', { timeout: 240_000 }, () => {
  before(async () => {
    server = await startServer(dataDir, ['--async-retry-delays', '100,200']);
    const d = await runNimbus(['deploy', ...remote()], { cwd: project, timeoutMs: 90_000 });
    assert.equal(d.code, 0, d.stderr);
  });
  after(async () => { await server?.stop(); });

  it('accepts an Event invocation with 202 and the request id every attempt carries, then sends the record onSuccess', async () => {
    const res = await invokeEvent('jobs-dev-work', { n: 7 });
    assert.equal(res.status, 202);
    assert.equal(await res.text(), '');
    const id = res.headers.get('x-amzn-requestid')!;
    assert.match(id, /^[0-9a-f-]{36}$/);
    const work = await logsUntil('work', new RegExp(`WORK ${id} \\{"n":7\\}`));
    assert.ok(work.includes(id));
    const audit = await logsUntil('audit', /AUDIT .*"condition":"Success"/);
    const record = JSON.parse(/AUDIT (.*)/.exec(audit)![1]) as Record<string, any>;
    assert.equal(record.version, '1.0');
    assert.match(record.timestamp, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    assert.deepEqual(record.requestContext, {
      requestId: id, functionArn: 'arn:aws:lambda:us-east-1:000000000000:function:jobs-dev-work:$LATEST',
      condition: 'Success', approximateInvokeCount: 1,
    });
    assert.deepEqual(record.requestPayload, { n: 7 });
    assert.equal(record.responseContext.statusCode, 200);
    assert.deepEqual(record.responsePayload, { done: 7 });
  });

  it('retries a failing function with the same request id, then dead-letters it; a redrive runs it again', async () => {
    const res = await invokeEvent('jobs-dev-flaky', { x: 1 });
    assert.equal(res.status, 202);
    const id = res.headers.get('x-amzn-requestid')!;
    const logs = await logsUntil('flaky', new RegExp(`(FLAKY ${id}[\\s\\S]*){2}`));
    assert.equal(logs.split(`FLAKY ${id}`).length - 1, 2, '1 try + maximumRetryAttempts 1');
    let dead: Array<{ id: number; requestId: string; condition: string; attempts: number }> = [];
    const until = Date.now() + 10_000;
    while (Date.now() < until) {
      const r = await runNimbus(['dead-letters', '--json', '-f', 'jobs-dev-flaky', ...remote()]);
      dead = JSON.parse(r.stdout);
      if (dead.length) break;
      await sleep(200);
    }
    assert.equal(dead.length, 1);
    assert.equal(dead[0].requestId, id);
    assert.equal(dead[0].condition, 'RetriesExhausted');
    assert.equal(dead[0].attempts, 2);
    const redrive = await runNimbus(['dead-letters', 'redrive', String(dead[0].id), ...remote()]);
    assert.equal(redrive.code, 0, redrive.stderr);
    await logsUntil('flaky', new RegExp(`(FLAKY ${id}[\\s\\S]*){3}`));
    const again = await runNimbus(['dead-letters', 'redrive', '999999', ...remote()]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /There is no dead letter 999999/);
  });

  it('fires a schedule on demand with the Scheduled Event (or its input), and lists the rules', async () => {
    const r = await runNimbus(['schedule', 'run', '-f', 'tick', ...remote()], { cwd: project });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Fired jobs-dev-tick-schedule-1, jobs-dev-tick-schedule-2/);
    const logs = await logsUntil('tick', /TICK \{"version"/);
    assert.match(logs, /TICK \{"job":"nightly"\}/);
    const event = JSON.parse(/TICK (\{"version".*)/.exec(logs)![1]) as Record<string, unknown>;
    assert.deepEqual(Object.keys(event), ['version', 'id', 'detail-type', 'source', 'account', 'time', 'region', 'resources', 'detail']);
    assert.equal(event['detail-type'], 'Scheduled Event');
    assert.equal(event.source, 'aws.events');
    assert.deepEqual(event.resources, ['arn:aws:events:us-east-1:000000000000:rule/jobs-dev-tick-schedule-2']);
    assert.deepEqual(event.detail, {});

    const list = JSON.parse((await runNimbus(['schedule', 'list', '--json', ...remote()])).stdout) as Array<{ name: string; expression: string; next: string }>;
    assert.deepEqual(list.map((x) => [x.name, x.expression]), [['jobs-dev-tick-schedule-1', 'rate(1 day)'], ['jobs-dev-tick-schedule-2', 'cron(0 3 ? * MON-FRI *)']]);
    assert.match(list[1].next, /T03:00:00\.000Z$/);

    const none = await runNimbus(['schedule', 'run', '-f', 'work', ...remote()], { cwd: project });
    assert.equal(none.code, 1);
    assert.match(none.stderr, /Function jobs-dev-work has no schedule rule/);
  });
});

describe('event sources in nimbus dev', { timeout: 120_000 }, () => {
  let dev: DevProcess;
  const devData = join(work, 'dev-data');
  before(async () => {
    mkdirSync(devData, { recursive: true });
    dev = await startDev(join(project, 'serverless.yml'), ['--no-watch', '--async-retry-delays', '50,50']);
  });
  after(async () => { await dev?.stop(); });

  it('stores an Event invocation before the 202 and delivers it; fires a schedule on demand without a token', async () => {
    const res = await fetch(`http://127.0.0.1:${dev.controlPort}/2015-03-31/functions/work/invocations`, {
      method: 'POST', body: '{"n":3}', headers: { 'x-amz-invocation-type': 'Event' },
    });
    assert.equal(res.status, 202);
    const id = res.headers.get('x-amzn-requestid')!;
    await dev.waitFor(new RegExp(`WORK ${id} \\{"n":3\\}`), 15_000);
    await dev.waitFor(/AUDIT .*"condition":"Success"/, 15_000);
    const r = await runNimbus(['schedule', 'run', '-f', 'tick', '--endpoint', `http://127.0.0.1:${dev.controlPort}`, '--data-dir', devData], { cwd: project });
    assert.equal(r.code, 0, r.stderr);
    await dev.waitFor(/TICK \{"job":"nightly"\}/, 15_000);
  });
});
