/**
 * End-to-end: `nimbus server` with the CLI as a user drives it. Deploys the
 * two shipped examples, calls their routes, deploys a change, rolls back,
 * restarts the server and calls them again; then the error paths: no token,
 * a wrong token, an unreachable server, a package without its handler, a
 * route another service serves (each leaves the previous deployment serving).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, repoRoot, runNimbus, startServer, type DevProcess } from './cli-helpers.js';

const work = mkdtempSync(join(tmpdir(), 'nimbus-server-test-'));
const dataDir = join(work, 'data');
const tsApi = join(work, 'typescript-api');
const seedApi = join(repoRoot, 'examples', 'seed-api', 'serverless.yml');
cpSync(join(repoRoot, 'examples', 'typescript-api'), tsApi, { recursive: true, filter: (src) => !src.includes('.nimbus') });

let server: DevProcess;
let ports: { port: number; controlPort: number };
const remote = () => ['--endpoint', `http://127.0.0.1:${server.controlPort}`, '--data-dir', dataDir];

async function get(path: string, init?: RequestInit): Promise<{ status: number; body: string; headers: Headers }> {
  const res = await fetch(`http://127.0.0.1:${server.port}${path}`, { ...init, signal: AbortSignal.timeout(15_000) });
  return { status: res.status, body: await res.text(), headers: res.headers };
}

async function cli(args: string[], cwd?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runNimbus(args, { cwd, timeoutMs: 90_000 });
}

describe('nimbus server', { timeout: 300_000 }, () => {
  before(async () => {
    ports = { port: await freePort(), controlPort: await freePort() };
    server = await startServer(dataDir, ['--keep-alive', '30'], {}, ports);
  });
  after(async () => {
    await server?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('makes the admin token and an access key on the first start, 0600, printed once', () => {
    const token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
    assert.match(token, /^nimbus_[A-Za-z0-9_-]{43}$/);
    assert.equal(statSync(join(dataDir, 'admin-token')).mode & 0o777, 0o600);
    assert.equal(statSync(join(dataDir, 'access-keys.json')).mode & 0o777, 0o600);
    assert.ok(server.output().includes(token), 'the token is printed at the first start');
    assert.match(server.output(), /access key \(SigV4\): NKIA[A-Z2-7]{16} \/ /);
  });

  it('refuses the control API without the admin token, and serves only routes on the gateway port', async () => {
    const res = await fetch(`http://127.0.0.1:${server.controlPort}/_/services`);
    assert.equal(res.status, 401, await res.text());
    assert.equal(res.headers.get('x-amzn-errortype'), 'MissingAuthenticationTokenException');
    const wrong = await fetch(`http://127.0.0.1:${server.controlPort}/_/services`, { headers: { authorization: 'Bearer nimbus_wrong' } });
    assert.equal(wrong.status, 403);
    assert.equal(wrong.headers.get('x-amzn-errortype'), 'AccessDeniedException');
    const health = await fetch(`http://127.0.0.1:${server.controlPort}/_/health`);
    assert.equal(health.status, 200);
    assert.equal((await get('/_/services')).status, 404);
  });

  it('deploys both examples with the CLI and serves their routes', async () => {
    const ts = await cli(['deploy', '--json', ...remote()], tsApi);
    assert.equal(ts.code, 0, ts.stderr);
    const result = JSON.parse(ts.stdout) as { deployment: number; functions: Record<string, { name: string; version: string }>; endpoints: string[] };
    assert.equal(result.deployment, 1);
    assert.deepEqual(result.functions.hello, { name: 'typescript-api-dev-hello', version: '1' });
    assert.ok(result.endpoints.includes(`GET http://127.0.0.1:${ports.port}/hello`));

    const seed = await cli(['deploy', '--config', seedApi, ...remote()]);
    assert.equal(seed.code, 0, seed.stderr);
    assert.match(seed.stdout, /seed-api \(stage dev\), deployment 1/);
    // Progress as plain lines when not on a terminal.
    assert.match(seed.stderr, /Packaging\.\.\.\n  Packaged \d+ file\(s\), [\d.]+ KB/);
    assert.match(seed.stderr, /Activating\.\.\.\n  Deployment 1 serving/);
    assert.match(seed.stdout, /POST http:\/\/127\.0\.0\.1:\d+\/dev\/process/);

    const hello = await get('/hello');
    assert.equal(hello.status, 200);
    assert.equal(hello.body, '{"message":"hello"}');
    const user = await get('/users', { method: 'POST', body: JSON.stringify({ name: 'Ada', email: 'ada@example.com' }), headers: { 'content-type': 'application/json' } });
    assert.equal(user.status, 201, user.body);
    const stats = await get('/dev/process', { method: 'POST', body: JSON.stringify({ numbers: [1, 2, 3, 4] }), headers: { 'content-type': 'application/json' } });
    assert.equal(stats.status, 200, stats.body);
    assert.equal((JSON.parse(stats.body) as { mean: number }).mean, 2.5);

    // The same code again: nothing new is published.
    const again = await cli(['deploy', '--json', ...remote()], tsApi);
    assert.equal(again.code, 0, again.stderr);
    assert.equal((JSON.parse(again.stdout) as { deployment: number; changed: boolean }).changed, false);
  });

  it('deploys a change as a new version, then rolls back to the previous one', async () => {
    const file = join(tsApi, 'src', 'handlers', 'hello.ts');
    writeFileSync(file, readFileSync(file, 'utf8').replace('{"message":"hello"}', '{"message":"hello, v2"}'));
    const deploy = await cli(['deploy', '--json', ...remote()], tsApi);
    assert.equal(deploy.code, 0, deploy.stderr);
    const r = JSON.parse(deploy.stdout) as { deployment: number; functions: Record<string, { version: string }> };
    assert.equal(r.deployment, 2);
    assert.equal(r.functions.hello.version, '2');
    assert.equal((await get('/hello')).body, '{"message":"hello, v2"}');

    const rollback = await cli(['rollback', '--json', ...remote()], tsApi);
    assert.equal(rollback.code, 0, rollback.stderr);
    const rb = JSON.parse(rollback.stdout) as { deployment: number; functions: Record<string, { version: string }> };
    assert.equal(rb.deployment, 3);
    assert.equal(rb.functions.hello.version, '1');
    assert.equal((await get('/hello')).body, '{"message":"hello"}');

    const info = await cli(['info', '--json', ...remote()], tsApi);
    assert.equal(info.code, 0, info.stderr);
    const i = JSON.parse(info.stdout) as { deployment: number; deployments: Array<{ deployment: number }>; functions: Array<{ key: string; versions: string[] }> };
    assert.deepEqual(i.deployments.map((d) => d.deployment), [1, 2, 3]);
    assert.deepEqual(i.functions.find((f) => f.key === 'hello')!.versions, ['$LATEST', '1', '2']);
  });

  it('deploys one function with deploy function -f, leaving the others and the routes as they are', async () => {
    const file = join(tsApi, 'src', 'handlers', 'hello.ts');
    writeFileSync(file, readFileSync(file, 'utf8').replace('{"message":"hello, v2"}', '{"message":"hello, v3"}'));
    const one = await cli(['deploy', 'function', '-f', 'hello', '--json', ...remote()], tsApi);
    assert.equal(one.code, 0, one.stderr);
    const r = JSON.parse(one.stdout) as { deployment: number; functions: Record<string, { version: string }> };
    assert.equal(r.deployment, 4);
    assert.equal(r.functions.hello.version, '3');
    assert.equal(r.functions.getUser.version, '1');
    assert.equal((await get('/hello')).body, '{"message":"hello, v3"}');
    const back = await cli(['rollback', '--version', '3', '--json', ...remote()], tsApi);
    assert.equal(back.code, 0, back.stderr);
    assert.equal((await get('/hello')).body, '{"message":"hello"}');
    const unknown = await cli(['deploy', 'function', '-f', 'nope', ...remote()], tsApi);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /Function not found: nope \(functions in this service: hello, getUser/);
  });

  it('invokes, shows logs and metrics of a deployed function', async () => {
    const inv = await cli(['invoke', '-f', 'hello', ...remote()], tsApi);
    assert.equal(inv.code, 0, inv.stderr);
    assert.equal(JSON.parse(inv.stdout).body, '{"message":"hello"}');
    assert.match(inv.stderr, /REPORT RequestId: /);
    const v2 = await cli(['invoke', '-f', 'typescript-api-dev-hello', '--qualifier', '2', ...remote()]);
    assert.equal(v2.code, 0, v2.stderr);
    assert.equal(JSON.parse(v2.stdout).body, '{"message":"hello, v2"}');

    const logs = await cli(['logs', '-f', 'hello', '--startTime', '1h', ...remote()], tsApi);
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /START RequestId: [0-9a-f-]{36} Version: /);
    assert.match(logs.stdout, /REPORT RequestId: .*\tBilled Duration: \d+ ms\tMemory Size: 256 MB/);

    const metrics = await cli(['metrics', '-f', 'hello', '--json', ...remote()], tsApi);
    assert.equal(metrics.code, 0, metrics.stderr);
    const m = JSON.parse(metrics.stdout) as { invocations: number; errors: number; gbSeconds: number; costUsd: number };
    assert.ok(m.invocations >= 5, `invocations: ${m.invocations}`);
    assert.equal(m.errors, 0);
    assert.ok(m.gbSeconds > 0 && m.costUsd > 0);

    // Prometheus, with the admin token as a scraper's bearer credentials.
    const token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
    const prom = await fetch(`http://127.0.0.1:${server.controlPort}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(prom.status, 200);
    assert.match(prom.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await prom.text();
    const ok = /^nimbus_invocations_total\{function="typescript-api-dev-hello",version="1",outcome="ok"\} (\d+)$/m.exec(text);
    assert.ok(ok && Number(ok[1]) >= 2, text.slice(0, 2000));
    assert.match(text, /^nimbus_billed_gb_seconds_total\{function="typescript-api-dev-hello",version="1"\} [0-9.e-]+$/m);
    assert.equal((await fetch(`http://127.0.0.1:${server.controlPort}/metrics`)).status, 401);
  });

  it('routes to an alias: deploys move it, provisioned instances wait warm, weights split traffic (canary)', async () => {
    const canary = join(work, 'canary');
    mkdirSync(canary);
    writeFileSync(join(canary, 'serverless.yml'), [
      'service: canary', 'provider: { name: aws, runtime: nodejs20.x, memorySize: 128 }',
      'functions:', '  pick:', '    handler: handler.pick', '    alias: live', '    provisionedConcurrency: 1',
      '    events: [{ httpApi: GET /pick }]', '',
    ].join('\n'));
    const code = (n: number) => `export const pick = async (e, ctx) => ({ statusCode: 200, body: 'v${n} ' + ctx.functionVersion + ' ' + ctx.invokedFunctionArn });\n`;
    writeFileSync(join(canary, 'handler.mjs'), code(1));
    assert.equal((await cli(['deploy', ...remote()], canary)).code, 0);
    writeFileSync(join(canary, 'handler.mjs'), code(2));
    const second = await cli(['deploy', ...remote()], canary);
    assert.equal(second.code, 0, second.stderr);
    await new Promise((r) => setTimeout(r, 1500));
    const one = await get('/pick');
    assert.equal(one.body, 'v2 2 arn:aws:lambda:us-east-1:000000000000:function:canary-dev-pick:live');
    const logs = await cli(['logs', '-f', 'pick', ...remote()], canary);
    assert.match(logs.stdout, /START RequestId: \S+ Version: 2/);
    assert.doesNotMatch(logs.stdout, /Init Duration/, 'the provisioned instance was started before the request');

    // Canary: the alias serves version 1 and sends half the requests to version 2.
    const token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
    const upd = await fetch(`http://127.0.0.1:${server.controlPort}/2015-03-31/functions/canary-dev-pick/aliases/live`, {
      method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ FunctionVersion: '1', RoutingConfig: { AdditionalVersionWeights: { 2: 0.5 } } }),
    });
    assert.equal(upd.status, 200, await upd.text());
    const seen = new Map<string, number>();
    for (let i = 0; i < 60; i++) {
      const b = (await get('/pick')).body.split(' ')[0];
      seen.set(b, (seen.get(b) ?? 0) + 1);
    }
    assert.ok((seen.get('v1') ?? 0) >= 10 && (seen.get('v2') ?? 0) >= 10, JSON.stringify([...seen]));
    const info = JSON.parse((await cli(['info', '--json', ...remote()], canary)).stdout) as { functions: Array<{ aliases: unknown[] }> };
    assert.deepEqual(info.functions[0].aliases, [{ name: 'live', functionVersion: '1', additionalVersionWeights: { 2: 0.5 } }]);
    assert.equal((await cli(['remove', ...remote()], canary)).code, 0);
  });

  it('rolls back to a deployment that had a function a later deploy dropped', async () => {
    const two = join(work, 'two');
    mkdirSync(two);
    const yml = (fns: string[]) => ['service: two', 'provider: { name: aws, runtime: nodejs20.x, memorySize: 128 }', 'functions:',
      ...fns.flatMap((f) => [`  ${f}:`, `    handler: handler.${f}`, `    events: [{ httpApi: GET /two-${f} }]`]), ''].join('\n');
    writeFileSync(join(two, 'handler.mjs'), 'export const a = async () => "a";\nexport const b = async () => "b";\n');
    writeFileSync(join(two, 'serverless.yml'), yml(['a', 'b']));
    assert.equal((await cli(['deploy', ...remote()], two)).code, 0);
    assert.equal((await get('/two-b')).body, 'b');
    writeFileSync(join(two, 'serverless.yml'), yml(['a']));
    assert.equal((await cli(['deploy', ...remote()], two)).code, 0);
    assert.equal((await get('/two-b')).status, 404);
    const back = await cli(['rollback', ...remote()], two);
    assert.equal(back.code, 0, back.stderr);
    assert.equal((await get('/two-b')).body, 'b');
    assert.equal((await cli(['remove', ...remote()], two)).code, 0);
    const token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
    const gone = await fetch(`http://127.0.0.1:${server.controlPort}/2015-03-31/functions/two-dev-b`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(gone.status, 404, 'remove deletes every function the service ever had');
  });

  it('on SIGTERM lets a request in flight finish, then serves every deployment again after a restart', async () => {
    const slow = join(work, 'slow');
    mkdirSync(slow);
    writeFileSync(join(slow, 'serverless.yml'), 'service: slow\nprovider: { name: aws, runtime: nodejs20.x, memorySize: 128 }\nfunctions:\n  wait:\n    handler: handler.wait\n    events: [{ httpApi: GET /slow }]\n');
    writeFileSync(join(slow, 'handler.mjs'), 'export const wait = async () => { await new Promise((r) => setTimeout(r, 1500)); return { statusCode: 200, body: "done" }; };\n');
    assert.equal((await cli(['deploy', ...remote()], slow)).code, 0);
    const inFlight = get('/slow');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await server.stop(), 0);
    const finished = await inFlight;
    assert.equal(finished.status, 200);
    assert.equal(finished.body, 'done');

    // Prices are the platform's to set: cost = requests × 0.001 + GB-seconds × 0.5.
    server = await startServer(dataDir, ['--price-per-request', '0.001', '--price-per-gb-second', '0.5'], {}, ports);
    assert.ok(!server.output().includes('admin token:'), 'credentials are printed only at the first start');
    assert.match(server.output(), /Serving .*seed-api \(dev, deployment 1\)/);
    assert.equal((await get('/hello')).body, '{"message":"hello"}');
    const stats = await get('/dev/process', { method: 'POST', body: '{"numbers":[10]}', headers: { 'content-type': 'application/json' } });
    assert.equal(stats.status, 200, stats.body);
    const metrics = await cli(['metrics', '-f', 'hello', '--json', ...remote()], tsApi);
    const m = JSON.parse(metrics.stdout) as { invocations: number; gbSeconds: number; costUsd: number };
    assert.ok(Math.abs(m.costUsd - (m.invocations * 0.001 + m.gbSeconds * 0.5)) < 1e-12, metrics.stdout);
  });

  it('refuses bad deploys with a clear error and keeps the previous deployment serving', async () => {
    // The handler's file left out of the package by package.patterns.
    const broken = join(work, 'broken');
    cpSync(join(repoRoot, 'examples', 'seed-api'), broken, { recursive: true, filter: (src) => !src.includes('.nimbus') });
    writeFileSync(join(broken, 'serverless.yml'), readFileSync(join(broken, 'serverless.yml'), 'utf8') + '\npackage:\n  patterns: ["!handler.py"]\n');
    const missing = await cli(['deploy', ...remote()], broken);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /handler handler\.lambda_handler: none of handler\.py, handler\/__init__\.py is in the package \(check package\.patterns\)/);
    assert.match(missing.stderr, /How to fix:/);
    const stats = await get('/dev/process', { method: 'POST', body: '{"numbers":[2]}', headers: { 'content-type': 'application/json' } });
    assert.equal(stats.status, 200, 'the previous deployment of seed-api still serves');

    // A route another service serves.
    const clash = join(work, 'clash');
    cpSync(tsApi, clash, { recursive: true });
    writeFileSync(join(clash, 'serverless.yml'), readFileSync(join(clash, 'serverless.yml'), 'utf8').replace('service: typescript-api', 'service: other-api'));
    const conflict = await cli(['deploy', ...remote()], clash);
    assert.equal(conflict.code, 1);
    assert.match(conflict.stderr, /route GET \/hello is already served by service typescript-api \(stage dev\)/);

    const noServer = await cli(['deploy', '--endpoint', 'http://127.0.0.1:1', '--token', 'x'], tsApi);
    assert.equal(noServer.code, 1);
    assert.match(noServer.stderr, /Cannot reach the Nimbus server at http:\/\/127\.0\.0\.1:1/);

    const badToken = await cli(['info', '--endpoint', `http://127.0.0.1:${server.controlPort}`, '--token', 'nimbus_nope'], tsApi);
    assert.equal(badToken.code, 1);
    assert.match(badToken.stderr, /the server refused the token/);

    const badRollback = await cli(['rollback', '--version', '99', ...remote()], tsApi);
    assert.equal(badRollback.code, 1);
    assert.match(badRollback.stderr, /there is no deployment 99 \(deployments: 1, 2, 3, 4, 5\)/);
  });

  it('checks every manifest as the serverless.yml loader does, and refuses to take over another service', async () => {
    const token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
    const api = (method: string, path: string, body?: unknown) => fetch(`http://127.0.0.1:${server.controlPort}${path}`, {
      method, headers: { authorization: `Bearer ${token}` }, ...(body !== undefined ? { body: Buffer.isBuffer(body) ? body : JSON.stringify(body) } : {}),
    });
    const notZip = await api('PUT', '/_/artifacts', Buffer.from('not a zip'));
    assert.equal(notZip.status, 400);
    assert.equal(notZip.headers.get('x-nimbus-error'), 'NIMBUS_ERR_DEPLOY_INVALID');
    // A package of the seed-api example, through the CLI, gives a code package to point manifests at.
    const info = JSON.parse((await cli(['info', '--json', '--service', 'seed-api', ...remote()])).stdout) as { functions: Array<{ name: string }> };
    const latest = await api('GET', `/2015-03-31/functions/${info.functions[0].name}`);
    const sha = Buffer.from(((await latest.json()) as { Configuration: { CodeSha256: string } }).Configuration.CodeSha256, 'base64').toString('hex');
    const fn = { key: 'f', name: 'probe-dev-f', handler: 'handler.lambda_handler', runtime: 'python3.12', language: 'python', memorySize: 128, timeout: 3, environment: {} };
    const manifest = (over: Record<string, unknown>) => ({
      service: 'probe', stage: 'dev', region: 'us-east-1', codeSha256: sha, functions: [fn],
      routes: [{ api: 'HTTP', method: 'POST', path: '/probe', functionKey: 'f', payloadFormatVersion: '2.0' }], binaryMediaTypes: [], ...over,
    });
    const refused = async (over: Record<string, unknown>, status: number, pattern: RegExp) => {
      const r = await api('POST', '/_/deploy', manifest(over));
      const text = await r.text();
      assert.equal(r.status, status, text);
      assert.match(text, pattern);
    };
    await refused({ httpApiCors: 'yes' }, 400, /httpApiCors must be/);
    await refused({ functions: [{ ...fn, key: '__proto__' }], routes: [] }, 400, /a function key is letters/);
    await refused({ functions: [{ ...fn, environment: { AWS_LAMBDA_FUNCTION_NAME: 'x' } }] }, 400, /set by the Lambda runtime/);
    await refused({ functions: [{ ...fn, environment: 'abc' }] }, 400, /environment must be a mapping/);
    await refused({ functions: [{ ...fn, runtime: 'ruby3.2' }] }, 400, /runtime ruby3\.2 is not one Nimbus runs/);
    await refused({ functions: [{ ...fn, reservedConcurrency: -1 }] }, 400, /reservedConcurrency must be/);
    await refused({ functions: [{ ...fn, handler: '../x/h.handler' }] }, 400, /must be a path inside the package/);
    await refused({ functions: [{ ...fn, name: 'seed-api-dev-process' }] }, 409, /function name seed-api-dev-process.*seed-api \(stage dev\)/);
    await refused({ routes: [{ api: 'REST', method: 'POST', path: '/{name}', functionKey: 'f', payloadFormatVersion: '1.0' }], service: 'probe2', functions: [{ ...fn, name: 'probe2-dev-f' }] }, 200, /"deployment":1/);
    await refused({ routes: [{ api: 'REST', method: 'POST', path: '/{other}', functionKey: 'f', payloadFormatVersion: '1.0' }] }, 409, /POST \/dev\/\{other\} is already served by service probe2/);
    // The most specific route wins across services: seed-api's /process over probe2's /{name}.
    const process = await get('/dev/process', { method: 'POST', body: '{"numbers":[4]}', headers: { 'content-type': 'application/json' } });
    assert.equal((JSON.parse(process.body) as { mean: number }).mean, 4);
    await refused({ routes: [{ api: 'REST', method: 'ANY', path: '/{proxy+}', functionKey: 'f', payloadFormatVersion: '1.0' }] }, 409, /already served by service seed-api/);
    // The server is still up and serving.
    const stats = await get('/dev/process', { method: 'POST', body: '{"numbers":[1]}', headers: { 'content-type': 'application/json' } });
    assert.equal(stats.status, 200);
  });

  it('removes a service: its routes stop, its functions are gone', async () => {
    const r = await cli(['remove', ...remote()], tsApi);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await get('/hello')).status, 404);
    const info = await cli(['info', ...remote()], tsApi);
    assert.equal(info.code, 1);
    assert.match(info.stderr, /Service typescript-api \(stage dev\) is not deployed/);
  });
});
