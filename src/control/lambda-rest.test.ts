// Lambda's management API over a real SQLite store (no fakes of our own core).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import { zipSync } from 'fflate';
import { openSqliteStore, type Store } from '../store/index.js';
import { LambdaManagementApi, lambdaOperation, type LambdaApiResponse, type LambdaChange } from './lambda-rest.js';

const root = mkdtempSync(join(tmpdir(), 'nimbus-lambda-rest-'));
after(() => rmSync(root, { recursive: true, force: true }));

function zip(files: Record<string, string>): Buffer {
  const entries: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(files)) entries[k] = new TextEncoder().encode(v);
  return Buffer.from(zipSync(entries, { mtime: new Date('2024-01-01T00:00:00Z') }));
}

const CODE = zip({ 'index.mjs': 'export const handler = async (e) => ({ ok: true, e });\n' });
const CODE2 = zip({ 'index.mjs': 'export const handler = async () => ({ v: 2 });\n' });
const b64 = (b: Buffer) => b.toString('base64');
const sha64 = (b: Buffer) => createHash('sha256').update(b).digest('base64');
const ARN = 'arn:aws:lambda:eu-west-1:000000000000:function';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const LAMBDA_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$/;

describe('Lambda management API', () => {
  let store: Store;
  let api: LambdaManagementApi;
  let changes: [string, LambdaChange][];

  beforeEach(() => {
    store = openSqliteStore(mkdtempSync(join(root, 'data-')));
    changes = [];
    api = new LambdaManagementApi({
      store, region: 'eu-west-1', changed: (name, change) => { changes.push([name, change]); },
      codeLocation: (v) => `http://127.0.0.1:3001/_/artifacts/${v.codeSha256}`,
    });
  });
  afterEach(() => store.close());

  async function call(method: string, path: string, body?: unknown, query = ''): Promise<LambdaApiResponse> {
    const r = await api.handle(method, path, new URLSearchParams(query), Buffer.from(body === undefined ? '' : JSON.stringify(body)));
    assert.ok(r, `${method} ${path} is an operation`);
    return r;
  }

  async function create(name: string, extra: Record<string, unknown> = {}): Promise<LambdaApiResponse> {
    return call('POST', '/2015-03-31/functions', { FunctionName: name, Runtime: 'nodejs20.x', Handler: 'index.handler', Code: { ZipFile: b64(CODE) }, ...extra });
  }

  function error(r: LambdaApiResponse): [number, string, string] {
    assert.ok(r.error, `expected an error, got ${r.status} ${JSON.stringify(r.body)}`);
    return [r.status, r.error.type, r.error.message];
  }

  it('CreateFunction answers 201 with the FunctionConfiguration, defaults applied', async () => {
    const r = await create('hello', { Role: 'arn:aws:iam::123456789012:role/x', Environment: { Variables: { GREETING: 'hi' } }, Description: 'greets' });
    assert.equal(r.status, 201);
    const c = r.body as Record<string, unknown>;
    assert.match(String(c.LastModified), LAMBDA_TIME);
    assert.match(String(c.RevisionId), UUID);
    assert.deepEqual({ ...c, LastModified: 'T', RevisionId: 'R' }, {
      FunctionName: 'hello', FunctionArn: `${ARN}:hello`, Runtime: 'nodejs20.x', Role: 'arn:aws:iam::123456789012:role/x',
      Handler: 'index.handler', CodeSize: CODE.length, Description: 'greets', Timeout: 3, MemorySize: 128, LastModified: 'T',
      CodeSha256: sha64(CODE), Version: '$LATEST', Environment: { Variables: { GREETING: 'hi' } }, TracingConfig: { Mode: 'PassThrough' },
      RevisionId: 'R', State: 'Active', LastUpdateStatus: 'Successful', PackageType: 'Zip', Architectures: ['x86_64'],
      EphemeralStorage: { Size: 512 }, LoggingConfig: { LogFormat: 'Text', LogGroup: '/aws/lambda/hello' },
    });
    assert.deepEqual(changes, [['hello', { kind: 'created' }]]);
    // The store has a FunctionSpec-shaped config (without codeDir) with the runtime's language.
    const latest = store.getVersion('hello', '$LATEST')!;
    assert.deepEqual({ ...latest.config }, {
      key: 'hello', name: 'hello', handler: 'index.handler', runtime: 'nodejs20.x', language: 'node', memorySize: 128, timeout: 3,
      environment: { GREETING: 'hi' }, service: '', stage: '', region: 'eu-west-1', role: 'arn:aws:iam::123456789012:role/x',
    });
    assert.equal(latest.codeSha256, createHash('sha256').update(CODE).digest('hex'));
  });

  it('CreateFunction with Publish answers version 1; a second create is a conflict', async () => {
    const r = await create('pub', { Publish: true, Runtime: 'python3.12', Handler: 'app.handler' });
    assert.equal(r.status, 201);
    const c = r.body as Record<string, unknown>;
    assert.equal(c.Version, '1');
    assert.equal(c.FunctionArn, `${ARN}:pub:1`);
    assert.equal(c.Role, 'arn:aws:iam::000000000000:role/nimbus-function');
    assert.equal(store.getVersion('pub', '1')!.config.language, 'python');
    assert.deepEqual(changes, [['pub', { kind: 'created', version: '1' }]]);
    assert.deepEqual(error(await create('pub')), [409, 'ResourceConflictException', 'Function already exist: pub']);
  });

  it('CreateFunction refuses bad input with Lambda\'s error types', async () => {
    assert.deepEqual(error(await create('x', { MemorySize: 64, Timeout: 0 })), [400, 'ValidationException',
      "2 validation errors detected: Value '0' at 'timeout' failed to satisfy constraint: Member must have value greater than or equal to 1; "
      + "Value '64' at 'memorySize' failed to satisfy constraint: Member must have value greater than or equal to 128"]);
    assert.deepEqual(error(await create('x', { Timeout: 901 })).slice(0, 2), [400, 'ValidationException']);
    assert.deepEqual(error(await create('bad name')), [400, 'ValidationException',
      "1 validation error detected: Value 'bad name' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: "
      + '(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?']);
    const [status, type, message] = error(await create('x', { Runtime: 'java21' }));
    assert.equal(status, 400);
    assert.equal(type, 'InvalidParameterValueException');
    assert.match(message, /java21 is not supported by Nimbus: use a Node\.js runtime \(nodejsNN\.x.*python3\.NN/);
    assert.deepEqual(error(await create('x', { Code: { ZipFile: b64(Buffer.from('not a zip at all')) } })), [400, 'InvalidParameterValueException',
      'Could not unzip uploaded file. Please check your file, then try to upload again.']);
    assert.deepEqual(error(await create('x', { Code: { S3Bucket: 'b', S3Key: 'k' } })).slice(0, 2), [400, 'InvalidParameterValueException']);
    assert.deepEqual(error(await create('x', { Runtime: undefined })), [400, 'InvalidParameterValueException',
      'Runtime and Handler are mandatory parameters for functions created with deployment packages.']);
    assert.deepEqual(error(await create('x', { Environment: { Variables: { AWS_REGION: 'x' } } })), [400, 'InvalidParameterValueException',
      'Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: AWS_REGION']);
    assert.deepEqual(error(await create('x', { PackageType: 'Image' })).slice(0, 2), [400, 'InvalidParameterValueException']);
    const bad = await api.handle('POST', '/2015-03-31/functions', new URLSearchParams(), Buffer.from('{nope'));
    assert.equal(bad?.error?.type, 'InvalidRequestContentException');
    assert.deepEqual(changes, []);
    assert.deepEqual(store.listFunctions(), []);
  });

  it('GetFunction and GetFunctionConfiguration: $LATEST, a version, an alias; 404 for what is missing', async () => {
    await create('fn', { Publish: true });
    await call('POST', '/2015-03-31/functions/fn/aliases', { Name: 'live', FunctionVersion: '1' });
    const latest = await call('GET', '/2015-03-31/functions/fn');
    const body = latest.body as { Configuration: Record<string, unknown>; Code: Record<string, unknown> };
    assert.equal(body.Configuration.FunctionArn, `${ARN}:fn`);
    assert.deepEqual(body.Code, { RepositoryType: 'S3', Location: `http://127.0.0.1:3001/_/artifacts/${createHash('sha256').update(CODE).digest('hex')}` });

    const byAlias = (await call('GET', '/2015-03-31/functions/fn', undefined, 'Qualifier=live')).body as { Configuration: Record<string, unknown> };
    assert.equal(byAlias.Configuration.FunctionArn, `${ARN}:fn:live`);
    assert.equal(byAlias.Configuration.Version, '1');
    const byArn = await call('GET', `/2015-03-31/functions/${encodeURIComponent(`${ARN}:fn:1`)}/configuration`);
    assert.equal((byArn.body as Record<string, unknown>).FunctionArn, `${ARN}:fn:1`);

    assert.deepEqual(error(await call('GET', '/2015-03-31/functions/nope')), [404, 'ResourceNotFoundException', `Function not found: ${ARN}:nope`]);
    assert.deepEqual(error(await call('GET', '/2015-03-31/functions/fn', undefined, 'Qualifier=7')), [404, 'ResourceNotFoundException', `Function not found: ${ARN}:fn:7`]);
    assert.deepEqual(error(await call('GET', '/2015-03-31/functions/fn:1', undefined, 'Qualifier=2')), [400, 'InvalidParameterValueException',
      'The derived qualifier from the function name does not match the specified qualifier.']);
  });

  it('ListFunctions pages with Marker/MaxItems and lists every version with FunctionVersion=ALL', async () => {
    for (const n of ['c', 'a', 'b']) await create(n);
    await call('POST', '/2015-03-31/functions/a/versions', {});
    const first = (await call('GET', '/2015-03-31/functions/', undefined, 'MaxItems=2')).body as { Functions: Record<string, unknown>[]; NextMarker?: string };
    assert.deepEqual(first.Functions.map((f) => f.FunctionName), ['a', 'b']);
    assert.equal(first.Functions[0].State, undefined, 'ListFunctions leaves out the state fields');
    assert.ok(first.NextMarker);
    const second = (await call('GET', '/2015-03-31/functions', undefined, `MaxItems=2&Marker=${first.NextMarker}`)).body as { Functions: Record<string, unknown>[]; NextMarker?: string };
    assert.deepEqual(second.Functions.map((f) => f.FunctionName), ['c']);
    assert.equal(second.NextMarker, undefined);

    const all = (await call('GET', '/2015-03-31/functions', undefined, 'FunctionVersion=ALL')).body as { Functions: Record<string, unknown>[] };
    assert.deepEqual(all.Functions.map((f) => f.FunctionArn), [`${ARN}:a:$LATEST`, `${ARN}:a:1`, `${ARN}:b:$LATEST`, `${ARN}:c:$LATEST`]);
    assert.deepEqual(error(await call('GET', '/2015-03-31/functions', undefined, 'MaxItems=0')).slice(0, 2), [400, 'ValidationException']);
    assert.deepEqual(error(await call('GET', '/2015-03-31/functions', undefined, 'Marker=***')).slice(0, 2), [400, 'InvalidParameterValueException']);
  });

  it('UpdateFunctionCode, UpdateFunctionConfiguration, PublishVersion and ListVersionsByFunction', async () => {
    await create('fn', { Environment: { Variables: { ONE: '1', TWO: '2' } } });
    const code = await call('PUT', '/2015-03-31/functions/fn/code', { ZipFile: b64(CODE2) });
    assert.equal(code.status, 200);
    assert.equal((code.body as Record<string, unknown>).CodeSha256, sha64(CODE2));
    assert.equal((code.body as Record<string, unknown>).CodeSize, CODE2.length);

    const conf = await call('PUT', '/2015-03-31/functions/fn/configuration', { MemorySize: 256, Timeout: 30, Environment: { Variables: { THREE: '3' } }, Description: 'd2' });
    const c = conf.body as Record<string, unknown>;
    assert.deepEqual([c.MemorySize, c.Timeout, c.Environment, c.Description, c.Handler, c.CodeSha256], [256, 30, { Variables: { THREE: '3' } }, 'd2', 'index.handler', sha64(CODE2)]);

    const stale = await call('PUT', '/2015-03-31/functions/fn/configuration', { Timeout: 5, RevisionId: '00000000-0000-0000-0000-000000000000' });
    assert.deepEqual(error(stale), [412, 'PreconditionFailedException', 'The Revision Id provided does not match the latest Revision Id. Call the GetFunction API to retrieve the latest Revision Id']);
    const fresh = await call('PUT', '/2015-03-31/functions/fn/configuration', { Timeout: 5, RevisionId: c.RevisionId });
    assert.equal(fresh.status, 200);

    assert.deepEqual(error(await call('POST', '/2015-03-31/functions/fn/versions', { CodeSha256: sha64(CODE) })), [400, 'InvalidParameterValueException',
      `CodeSHA256 (${sha64(CODE)}) is different from current CodeSHA256 in $LATEST (${sha64(CODE2)}). Please try again with the CodeSHA256 in $LATEST.`]);
    const v1 = await call('POST', '/2015-03-31/functions/fn/versions', { CodeSha256: sha64(CODE2), Description: 'first' });
    assert.equal(v1.status, 201);
    assert.deepEqual([(v1.body as Record<string, unknown>).Version, (v1.body as Record<string, unknown>).FunctionArn, (v1.body as Record<string, unknown>).Description], ['1', `${ARN}:fn:1`, 'first']);
    // Nothing changed since version 1: Lambda answers with version 1 again.
    const again = await call('POST', '/2015-03-31/functions/fn/versions', {});
    assert.equal((again.body as Record<string, unknown>).Version, '1');

    const v2 = await call('PUT', '/2015-03-31/functions/fn/code', { ZipFile: b64(CODE), Publish: true });
    assert.equal((v2.body as Record<string, unknown>).Version, '2');

    const versions = (await call('GET', '/2015-03-31/functions/fn/versions')).body as { Versions: Record<string, unknown>[] };
    assert.deepEqual(versions.Versions.map((v) => [v.Version, v.FunctionArn]), [['$LATEST', `${ARN}:fn:$LATEST`], ['1', `${ARN}:fn:1`], ['2', `${ARN}:fn:2`]]);
    const paged = (await call('GET', '/2015-03-31/functions/fn/versions', undefined, 'MaxItems=1')).body as { Versions: unknown[]; NextMarker?: string };
    assert.equal(paged.Versions.length, 1);
    const rest = (await call('GET', '/2015-03-31/functions/fn/versions', undefined, `Marker=${paged.NextMarker}`)).body as { Versions: Record<string, unknown>[] };
    assert.deepEqual(rest.Versions.map((v) => v.Version), ['1', '2']);

    assert.deepEqual(changes.map(([n, ch]) => [n, ch.kind, ch.version]), [
      ['fn', 'created', undefined], ['fn', 'code', undefined], ['fn', 'configuration', undefined], ['fn', 'configuration', undefined],
      ['fn', 'published', '1'], ['fn', 'code', '2'],
    ]);
  });

  it('aliases: create, get, update with weighted routing, list, delete; conflicts and bad weights refused', async () => {
    await create('fn', { Publish: true });
    await call('PUT', '/2015-03-31/functions/fn/code', { ZipFile: b64(CODE2), Publish: true });
    const created = await call('POST', '/2015-03-31/functions/fn/aliases', { Name: 'live', FunctionVersion: '1', Description: 'prod traffic' });
    assert.equal(created.status, 201);
    const a = created.body as Record<string, unknown>;
    assert.match(String(a.RevisionId), UUID);
    assert.deepEqual({ ...a, RevisionId: 'R' }, { AliasArn: `${ARN}:fn:live`, Name: 'live', FunctionVersion: '1', Description: 'prod traffic', RevisionId: 'R' });
    assert.deepEqual(error(await call('POST', '/2015-03-31/functions/fn/aliases', { Name: 'live', FunctionVersion: '1' })),
      [409, 'ResourceConflictException', `Alias already exists: ${ARN}:fn:live`]);
    assert.deepEqual(error(await call('POST', '/2015-03-31/functions/fn/aliases', { Name: 'x', FunctionVersion: '9' })),
      [404, 'ResourceNotFoundException', `Function not found: ${ARN}:fn:9`]);
    assert.deepEqual(error(await call('POST', '/2015-03-31/functions/fn/aliases', { Name: '123', FunctionVersion: '1' })).slice(0, 2), [400, 'ValidationException']);

    const updated = await call('PUT', '/2015-03-31/functions/fn/aliases/live', { RoutingConfig: { AdditionalVersionWeights: { 2: 0.25 } }, RevisionId: a.RevisionId });
    assert.equal(updated.status, 200);
    assert.deepEqual((updated.body as Record<string, unknown>).RoutingConfig, { AdditionalVersionWeights: { 2: 0.25 } });
    assert.equal((updated.body as Record<string, unknown>).Description, 'prod traffic');
    assert.deepEqual(error(await call('PUT', '/2015-03-31/functions/fn/aliases/live', { FunctionVersion: '2', RevisionId: a.RevisionId })).slice(0, 2),
      [412, 'PreconditionFailedException']);
    assert.deepEqual(error(await call('PUT', '/2015-03-31/functions/fn/aliases/live', { RoutingConfig: { AdditionalVersionWeights: { 2: 1.5 } } })).slice(0, 2),
      [400, 'ValidationException']);
    assert.deepEqual(error(await call('PUT', '/2015-03-31/functions/fn/aliases/live', { FunctionVersion: '$LATEST' })),
      [400, 'InvalidParameterValueException', '$LATEST is not supported for an alias pointing to more than 1 version']);
    const got = await call('GET', '/2015-03-31/functions/fn/aliases/live');
    assert.deepEqual(got.body, updated.body);

    await call('POST', '/2015-03-31/functions/fn/aliases', { Name: 'beta', FunctionVersion: '2' });
    const list = (await call('GET', '/2015-03-31/functions/fn/aliases')).body as { Aliases: Record<string, unknown>[] };
    assert.deepEqual(list.Aliases.map((x) => x.Name), ['beta', 'live']);
    const onlyV1 = (await call('GET', '/2015-03-31/functions/fn/aliases', undefined, 'FunctionVersion=1')).body as { Aliases: Record<string, unknown>[] };
    assert.deepEqual(onlyV1.Aliases.map((x) => x.Name), ['live']);

    // A version an alias routes to cannot be deleted; $LATEST alone never.
    assert.deepEqual(error(await call('DELETE', '/2015-03-31/functions/fn', undefined, 'Qualifier=2')),
      [409, 'ResourceConflictException', 'Unable to delete version because the following aliases reference it: [beta, live]']);
    assert.deepEqual(error(await call('DELETE', '/2015-03-31/functions/fn', undefined, 'Qualifier=$LATEST')),
      [400, 'InvalidParameterValueException', '$LATEST version cannot be deleted without deleting the function.']);

    assert.equal((await call('DELETE', '/2015-03-31/functions/fn/aliases/beta')).status, 204);
    assert.deepEqual(error(await call('GET', '/2015-03-31/functions/fn/aliases/beta')), [404, 'ResourceNotFoundException', `Alias not found: ${ARN}:fn:beta`]);
    assert.deepEqual(error(await call('DELETE', '/2015-03-31/functions/fn/aliases/beta')).slice(0, 2), [404, 'ResourceNotFoundException']);
  });

  it('DeleteFunction: one version, then the whole function', async () => {
    await create('fn', { Publish: true });
    const del = await call('DELETE', '/2015-03-31/functions/fn', undefined, 'Qualifier=1');
    assert.deepEqual(del, { status: 204, body: undefined });
    assert.equal(store.getVersion('fn', '1'), undefined);
    assert.deepEqual(error(await call('DELETE', '/2015-03-31/functions/fn', undefined, 'Qualifier=1')), [404, 'ResourceNotFoundException', `Function not found: ${ARN}:fn:1`]);
    assert.equal((await call('DELETE', '/2015-03-31/functions/fn')).status, 204);
    assert.deepEqual(error(await call('GET', '/2015-03-31/functions/fn')).slice(0, 2), [404, 'ResourceNotFoundException']);
    assert.deepEqual(error(await call('DELETE', '/2015-03-31/functions/fn')).slice(0, 2), [404, 'ResourceNotFoundException']);
    assert.deepEqual(changes.slice(1).map(([, c]) => c), [{ kind: 'deleted', version: '1' }, { kind: 'deleted' }]);
  });

  it('a failing `changed` answers 500 ServiceException; the change stays saved', async () => {
    const failing = new LambdaManagementApi({ store, region: 'eu-west-1', changed: () => Promise.reject(new Error('restart failed')) });
    const r = await failing.handle('POST', '/2015-03-31/functions', new URLSearchParams(), Buffer.from(JSON.stringify({
      FunctionName: 'f', Runtime: 'nodejs20.x', Handler: 'index.handler', Code: { ZipFile: b64(CODE) },
    })));
    assert.deepEqual(r, { status: 500, error: { type: 'ServiceException', message: 'The change to f was saved, but Nimbus failed to apply it: restart failed' } });
    assert.ok(store.getVersion('f', '$LATEST'));
  });

  it('routes exactly the management operations', () => {
    assert.equal(lambdaOperation('GET', '/2015-03-31/functions')?.op, 'ListFunctions');
    assert.equal(lambdaOperation('GET', '/2015-03-31/functions/')?.op, 'ListFunctions');
    assert.equal(lambdaOperation('POST', '/2015-03-31/functions')?.op, 'CreateFunction');
    assert.equal(lambdaOperation('PUT', '/2015-03-31/functions/f/code')?.op, 'UpdateFunctionCode');
    assert.equal(lambdaOperation('DELETE', '/2015-03-31/functions/f/aliases/a')?.op, 'DeleteAlias');
    assert.equal(lambdaOperation('POST', '/2015-03-31/functions/f/invocations'), undefined);
    assert.equal(lambdaOperation('GET', '/2015-03-31/functions/f/policy'), undefined);
    assert.equal(lambdaOperation('PATCH', '/2015-03-31/functions/f'), undefined);
    assert.equal(lambdaOperation('GET', '/2015-03-31/functionsX'), undefined);
    assert.equal(lambdaOperation('GET', '/2015-03-31/functions//code'), undefined);
  });
});
