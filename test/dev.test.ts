// `nimbus dev` and `nimbus invoke` driven as a user would: the real binary,
// real files, real HTTP.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runNimbus, sleep, startDev, type DevProcess } from './cli-helpers.js';

let dir: string;

function project(files: Record<string, string>): string {
  const d = mkdtempSync(join(dir, 'p-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(d, name, '..'), { recursive: true });
    writeFileSync(join(d, name), text);
  }
  return d;
}

before(() => { dir = mkdtempSync(join(tmpdir(), 'nimbus-dev-')); });
after(() => rmSync(dir, { recursive: true, force: true }));

const SERVICE = `service: shop
provider:
  name: aws
  runtime: nodejs20.x
  stage: \${opt:stage, 'dev'}
  environment:
    GREETING: \${env:NIMBUS_TEST_GREETING, 'hi'}
functions:
  hello:
    handler: src/hello.handler
    events:
      - httpApi: GET /hello/{name}
      - http: POST hello
  broken:
    name: shop-broken
    handler: src/hello.boom
`;
const HELLO = `exports.handler = async (event, context) => {
  console.log('hello from', context.functionName);
  return { greeting: process.env.GREETING + ' ' + ((event.pathParameters || {}).name || 'rest'), v: 1 };
};
exports.boom = async () => { throw new RangeError('out of range'); };
`;

describe('nimbus dev', () => {
  let dev: DevProcess;
  let d: string;
  before(async () => {
    d = project({ 'serverless.yml': SERVICE, 'src/hello.js': HELLO });
    dev = await startDev(join(d, 'serverless.yml'), ['--stage', 'test'], { NIMBUS_TEST_GREETING: 'hey' });
  });
  after(async () => { await dev.stop(); });

  it('prints the routes with their URLs', () => {
    assert.match(dev.output(), new RegExp(`GET +http://127\\.0\\.0\\.1:${dev.port}/hello/\\{name\\}  → hello \\(HTTP API, payload 2\\.0\\)`));
    assert.match(dev.output(), new RegExp(`POST +http://127\\.0\\.0\\.1:${dev.port}/test/hello  → hello \\(REST, payload 1\\.0\\)`));
  });

  it('serves routes with variables resolved, and prints START / END / REPORT with the function\'s logs', async () => {
    const res = await fetch(`http://127.0.0.1:${dev.port}/hello/ana`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/json');
    assert.deepEqual(await res.json(), { greeting: 'hey ana', v: 1 });
    await dev.waitFor(/\[hello\] REPORT RequestId: [0-9a-f-]{36}\tDuration: [0-9.]+ ms\tBilled Duration: \d+ ms\tMemory Size: 1024 MB/);
    assert.match(dev.output(), /\[hello\] START RequestId: [0-9a-f-]{36} Version: \$LATEST\n\[hello\] \S+\t[0-9a-f-]{36}\tINFO\thello from shop-test-hello\n\[hello\] END RequestId/);
  });

  it('answers 404 for an unknown route, marked as the platform\'s', async () => {
    const res = await fetch(`http://127.0.0.1:${dev.port}/nope`);
    assert.equal(res.status, 404);
    assert.equal(res.headers.get('x-nimbus-error'), 'NIMBUS_ERR_GATEWAY_NOT_FOUND');
    assert.equal(await res.text(), '{"message":"Not Found"}');
  });

  it('serves the Invoke API: result, function error, Tail logs, unknown function, bad JSON, Event, DryRun', async () => {
    const base = `http://127.0.0.1:${dev.controlPort}/2015-03-31/functions`;
    const ok = await fetch(`${base}/shop-test-hello/invocations`, { method: 'POST', body: '{"pathParameters":{"name":"x"}}', headers: { 'X-Amz-Log-Type': 'Tail' } });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('x-amz-function-error'), null);
    assert.equal(ok.headers.get('x-amz-executed-version'), '$LATEST');
    assert.deepEqual(await ok.json(), { greeting: 'hey x', v: 1 });
    const tail = Buffer.from(ok.headers.get('x-amz-log-result') ?? '', 'base64').toString();
    assert.match(tail, /^START RequestId: .*\n.*INFO\thello from shop-test-hello\nEND RequestId: .*\nREPORT RequestId: /);

    const byArn = await fetch(`${base}/arn:aws:lambda:us-east-1:000000000000:function:hello/invocations`, { method: 'POST', body: '{}' });
    assert.equal(byArn.status, 200);

    const err = await fetch(`${base}/shop-broken/invocations`, { method: 'POST', body: '{}' });
    assert.equal(err.status, 200);
    assert.equal(err.headers.get('x-amz-function-error'), 'Unhandled');
    const doc = await err.json() as { errorType: string; errorMessage: string; trace: string[] };
    assert.equal(doc.errorType, 'RangeError');
    assert.equal(doc.errorMessage, 'out of range');
    assert.ok(Array.isArray(doc.trace) && doc.trace[0] === 'RangeError: out of range');

    const missing = await fetch(`${base}/nothere/invocations`, { method: 'POST', body: '{}' });
    assert.equal(missing.status, 404);
    assert.equal(missing.headers.get('x-amzn-errortype'), 'ResourceNotFoundException');
    assert.deepEqual(await missing.json(), { Type: 'User', Message: 'Function not found: arn:aws:lambda:us-east-1:000000000000:function:nothere' });

    const bad = await fetch(`${base}/hello/invocations`, { method: 'POST', body: '{nope' });
    assert.equal(bad.status, 400);
    assert.equal(bad.headers.get('x-amzn-errortype'), 'InvalidRequestContentException');

    const ev = await fetch(`${base}/hello/invocations`, { method: 'POST', body: '{}', headers: { 'X-Amz-Invocation-Type': 'Event' } });
    assert.equal(ev.status, 202);
    assert.equal(await ev.text(), '');
    const dry = await fetch(`${base}/hello/invocations`, { method: 'POST', body: '{}', headers: { 'X-Amz-Invocation-Type': 'DryRun' } });
    assert.equal(dry.status, 204);
  });

  it('reports metrics and cost of the invocations it ran', async () => {
    const res = await fetch(`http://127.0.0.1:${dev.controlPort}/_/metrics?function=shop-broken`);
    assert.equal(res.status, 200);
    const m = await res.json() as Record<string, number>;
    assert.equal(m.invocations, 1);
    assert.equal(m.errors, 1);
    assert.equal(m.coldStarts, 1);
    assert.ok(m.gbSeconds > 0);
    assert.ok(Math.abs(m.costUsd - (1 * 0.0000002 + m.gbSeconds * 0.0000166667)) < 1e-15);
    const unknown = await fetch(`http://127.0.0.1:${dev.controlPort}/_/metrics?function=nope`);
    assert.equal(unknown.status, 404);
  });

  it('reloads on file change: the next invocation gets the new code', async () => {
    writeFileSync(join(d, 'src/hello.js'), HELLO.replace('v: 1', 'v: 2'));
    await dev.waitFor('reloaded after a change to src/hello.js');
    const res = await fetch(`http://127.0.0.1:${dev.port}/hello/bo`);
    assert.deepEqual(await res.json(), { greeting: 'hey bo', v: 2 });
  });

  it('keeps serving the previous version when a change breaks the config', async () => {
    const text = readFileSync(join(d, 'serverless.yml'), 'utf8');
    writeFileSync(join(d, 'serverless.yml'), text.replace('runtime: nodejs20.x', 'runtime: java17'));
    await dev.waitFor('reload failed, still serving the previous version');
    assert.match(dev.output(), /serverless\.yml:4: provider\.runtime: runtime "java17" is not supported/);
    const res = await fetch(`http://127.0.0.1:${dev.port}/hello/still`);
    assert.deepEqual(await res.json(), { greeting: 'hey still', v: 2 });
    writeFileSync(join(d, 'serverless.yml'), text);
    await sleep(400);
  });
});

describe('nimbus dev with a bad project', () => {
  it('fails with the file, line and key path of a broken serverless.yml', async () => {
    const d = project({ 'serverless.yml': 'service: x\nprovider:\n  name: aws\n  runtime: nodejs20.x\nfunctions:\n  f:\n    handler: a.handler\n    timeout: forever\n', 'a.js': 'exports.handler = async () => 1;' });
    const r = await runNimbus(['dev', '--config', join(d, 'serverless.yml'), '--port', '0', '--control-port', '0']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /serverless\.yml:8: functions\.f\.timeout: /);
    assert.match(r.stderr, /How to fix:/);
  });

  it('fails on malformed YAML with line and column', async () => {
    const d = project({ 'serverless.yml': 'service: x\nprovider:\n  runtime: [nodejs20.x\n' });
    const r = await runNimbus(['dev', '--config', join(d, 'serverless.yml')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /serverless\.yml:\d+:\d+: invalid YAML/);
  });

  it('fails when a handler file is missing, naming what it tried', async () => {
    const d = project({ 'serverless.yml': 'service: x\nprovider:\n  name: aws\n  runtime: nodejs20.x\nfunctions:\n  f:\n    handler: src/missing.handler\n' });
    const r = await runNimbus(['dev', '--config', join(d, 'serverless.yml')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Function f: handler src\/missing\.handler/);
    assert.match(r.stderr, /src\/missing\.js/);
  });

  it('fails on a TypeScript syntax error with file, line and column', async () => {
    const d = project({ 'serverless.yml': 'service: x\nprovider:\n  name: aws\n  runtime: nodejs20.x\nfunctions:\n  f:\n    handler: h.handler\n', 'h.ts': 'export const handler = async () => {\n  return 1 +;\n};\n' });
    const r = await runNimbus(['dev', '--config', join(d, 'serverless.yml')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Function f: cannot bundle .*h\.ts: .*h\.ts:2:\d+: /);
  });

  it('says when the port is taken', async () => {
    const d = project({ 'serverless.yml': SERVICE, 'src/hello.js': HELLO });
    const first = await startDev(join(d, 'serverless.yml'));
    try {
      const r = await runNimbus(['dev', '--config', join(d, 'serverless.yml'), '--port', String(first.port), '--control-port', '0']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`port ${first.port} is already in use`));
    } finally {
      await first.stop();
    }
  });

  it('warns once per key it does not use yet', async () => {
    const d = project({ 'serverless.yml': `${SERVICE}plugins:\n  - serverless-offline\n`, 'src/hello.js': HELLO });
    const dev = await startDev(join(d, 'serverless.yml'));
    try {
      assert.equal(dev.output().match(/Warning: .*plugins/g)?.length, 1);
    } finally {
      assert.equal(await dev.stop(), 0);
    }
  });
});

describe('nimbus invoke', () => {
  it('prints the result on stdout and the logs on stderr', async () => {
    const d = project({ 'serverless.yml': SERVICE, 'src/hello.js': HELLO, 'event.json': '{"pathParameters":{"name":"file"}}' });
    const r = await runNimbus(['invoke', '-f', 'hello', '--path', join(d, 'event.json'), '--config', join(d, 'serverless.yml')]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { greeting: 'hi file', v: 1 });
    assert.match(r.stderr, /^START RequestId: /);
    assert.match(r.stderr, /REPORT RequestId: .*Init Duration: /);
  });

  it('exits 1 with the error document when the function fails', async () => {
    const d = project({ 'serverless.yml': SERVICE, 'src/hello.js': HELLO });
    const r = await runNimbus(['invoke', '-f', 'shop-broken', '--data', '{}', '--config', join(d, 'serverless.yml')]);
    assert.equal(r.code, 1);
    assert.equal(JSON.parse(r.stdout).errorType, 'RangeError');
  });

  it('names the functions there are when one is unknown', async () => {
    const d = project({ 'serverless.yml': SERVICE, 'src/hello.js': HELLO });
    const r = await runNimbus(['invoke', '-f', 'nope', '--config', join(d, 'serverless.yml')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Function not found: nope \(functions in this service: hello, broken\)/);
  });

  it('refuses an event file that is not JSON', async () => {
    const d = project({ 'serverless.yml': SERVICE, 'src/hello.js': HELLO, 'bad.json': '{oops' });
    const r = await runNimbus(['invoke', '-f', 'hello', '--path', join(d, 'bad.json'), '--config', join(d, 'serverless.yml')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /is not valid JSON/);
  });

  it('shows help for every command', async () => {
    for (const cmd of [['--help'], ['dev', '--help'], ['invoke', '--help']]) {
      const r = await runNimbus(cmd);
      assert.equal(r.code, 0);
      assert.match(r.stdout, /Usage: nimbus/);
    }
    const bad = await runNimbus(['frobnicate']);
    assert.notEqual(bad.code, 0);
  });
});
