// The real AWS SDK for JavaScript v3 (@aws-sdk/client-lambda) against a real
// `nimbus server` (NimbusServer, in this process) on loopback: every
// management action, Invoke of real function instances (versions, aliases
// with weighted routing), and SigV4 / admin-token authentication.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  CreateAliasCommand, CreateFunctionCommand, DeleteAliasCommand, DeleteFunctionCommand, GetAliasCommand, GetFunctionCommand,
  GetFunctionConfigurationCommand, InvalidParameterValueException, InvokeCommand, LambdaClient, ListAliasesCommand,
  ListFunctionsCommand, ListVersionsByFunctionCommand, paginateListFunctions, PublishVersionCommand, ResourceConflictException,
  ResourceNotFoundException, UpdateAliasCommand, UpdateFunctionCodeCommand, UpdateFunctionConfigurationCommand,
  type FunctionConfiguration,
} from '@aws-sdk/client-lambda';
import { zipSync } from 'fflate';
import { createHash } from 'node:crypto';
import { NimbusServer } from '../src/server/index.js';

const REGION = 'eu-west-1';
const ARN = `arn:aws:lambda:${REGION}:000000000000:function`;

function zip(files: Record<string, string>): Uint8Array {
  const entries: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(files)) entries[k] = new TextEncoder().encode(v);
  return zipSync(entries, { mtime: new Date('2024-01-01T00:00:00Z') });
}
const sha64 = (b: Uint8Array) => createHash('sha256').update(b).digest('base64');

const V1 = zip({
  'index.mjs': `export const handler = async (event, context) => {
  if (event.fail) throw new RangeError('asked to fail');
  console.log('hello from', context.functionName);
  return { code: 1, greeting: process.env.GREETING ?? null, event, version: context.functionVersion };
};\n`,
});
const V2 = zip({ 'index.mjs': 'export const handler = async (event, context) => ({ code: 2, greeting: process.env.GREETING ?? null, version: context.functionVersion });\n' });

/** Drops the SDK's response metadata, so results compare as plain data. */
function data<T extends object>(out: T): Omit<T, '$metadata'> {
  const { $metadata: _m, ...rest } = out as T & { $metadata?: unknown };
  return rest;
}

const decode = (p: Uint8Array | undefined) => JSON.parse(new TextDecoder().decode(p)) as Record<string, unknown>;

describe('the AWS SDK against the control API', { timeout: 120_000 }, () => {
  let dir: string;
  let server: NimbusServer;
  let endpoint: string;
  let lambda: LambdaClient;
  let ADMIN_TOKEN: string;
  let KEY: { accessKeyId: string; secretAccessKey: string };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nimbus-lambda-sdk-'));
    server = await NimbusServer.start({
      dataDir: join(dir, 'data'), port: 0, controlPort: 0, region: REGION, env: process.env, log: () => {},
      isolation: 'none', allowUnsandboxed: true, warmPoolSize: 0, keepAliveMs: 30_000, shutdownDeadlineMs: 2000,
    });
    ADMIN_TOKEN = server.credentials.adminToken;
    KEY = { ...server.credentials.accessKeys[0] };
    endpoint = `http://127.0.0.1:${server.controlPort}`;
    lambda = new LambdaClient({ endpoint, region: REGION, credentials: KEY, maxAttempts: 1 });
  });

  after(async () => {
    lambda?.destroy();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  let created: FunctionConfiguration;

  it('CreateFunction', async () => {
    const out = await lambda.send(new CreateFunctionCommand({
      FunctionName: 'hello', Runtime: 'nodejs20.x', Handler: 'index.handler', Role: 'arn:aws:iam::000000000000:role/test',
      Code: { ZipFile: V1 }, Description: 'says hello', Timeout: 10, MemorySize: 256, Environment: { Variables: { GREETING: 'hi' } },
    }));
    assert.equal(out.$metadata.httpStatusCode, 201);
    created = data(out);
    assert.match(created.LastModified ?? '', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$/);
    assert.deepEqual({ ...created, LastModified: 'T', RevisionId: 'R' }, {
      FunctionName: 'hello', FunctionArn: `${ARN}:hello`, Runtime: 'nodejs20.x', Role: 'arn:aws:iam::000000000000:role/test',
      Handler: 'index.handler', CodeSize: V1.length, Description: 'says hello', Timeout: 10, MemorySize: 256, LastModified: 'T',
      CodeSha256: sha64(V1), Version: '$LATEST', Environment: { Variables: { GREETING: 'hi' } }, TracingConfig: { Mode: 'PassThrough' },
      RevisionId: 'R', State: 'Active', LastUpdateStatus: 'Successful', PackageType: 'Zip', Architectures: ['x86_64'],
      EphemeralStorage: { Size: 512 }, LoggingConfig: { LogFormat: 'Text', LogGroup: '/aws/lambda/hello' },
    });
  });

  it('CreateFunction of an existing function or an unsupported runtime fails with Lambda\'s exceptions', async () => {
    await assert.rejects(lambda.send(new CreateFunctionCommand({ FunctionName: 'hello', Runtime: 'nodejs20.x', Handler: 'index.handler', Role: 'r', Code: { ZipFile: V1 } })),
      (e: unknown) => e instanceof ResourceConflictException && e.message === 'Function already exist: hello' && e.$metadata.httpStatusCode === 409);
    await assert.rejects(lambda.send(new CreateFunctionCommand({ FunctionName: 'j', Runtime: 'java21', Handler: 'a::b', Role: 'r', Code: { ZipFile: V1 } })),
      (e: unknown) => e instanceof InvalidParameterValueException && /java21 is not supported by Nimbus/.test(e.message));
    await assert.rejects(lambda.send(new CreateFunctionCommand({ FunctionName: 'z', Runtime: 'nodejs20.x', Handler: 'index.handler', Role: 'r', Code: { ZipFile: new TextEncoder().encode('plain text') } })),
      (e: unknown) => e instanceof InvalidParameterValueException && e.message === 'Could not unzip uploaded file. Please check your file, then try to upload again.');
  });

  it('GetFunction (by name and by full ARN) and GetFunctionConfiguration', async () => {
    const byName = data(await lambda.send(new GetFunctionCommand({ FunctionName: 'hello' })));
    assert.deepEqual(byName, { Configuration: created, Code: { RepositoryType: 'S3', Location: '' } });
    // A full ARN: the SDK percent-encodes the colons, and signs the path encoded twice.
    const byArn = data(await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: `${ARN}:hello` })));
    assert.deepEqual(byArn, created);
    await assert.rejects(lambda.send(new GetFunctionCommand({ FunctionName: 'nope' })),
      (e: unknown) => e instanceof ResourceNotFoundException && e.message === `Function not found: ${ARN}:nope` && e.$metadata.httpStatusCode === 404);
  });

  it('Invoke runs the function: result, Tail logs, executed version, function errors, Event', async () => {
    const out = await lambda.send(new InvokeCommand({ FunctionName: 'hello', Payload: new TextEncoder().encode('{"n":1}'), LogType: 'Tail' }));
    assert.equal(out.StatusCode, 200);
    assert.equal(out.ExecutedVersion, '$LATEST');
    assert.equal(out.FunctionError, undefined);
    assert.deepEqual(decode(out.Payload), { code: 1, greeting: 'hi', event: { n: 1 }, version: '$LATEST' });
    const log = Buffer.from(out.LogResult ?? '', 'base64').toString();
    assert.match(log, /^START RequestId: [0-9a-f-]{36} Version: \$LATEST\n[\s\S]*hello from hello[\s\S]*REPORT RequestId: /);

    const failed = await lambda.send(new InvokeCommand({ FunctionName: 'hello', Payload: new TextEncoder().encode('{"fail":true}') }));
    assert.equal(failed.StatusCode, 200);
    assert.equal(failed.FunctionError, 'Unhandled');
    const doc = decode(failed.Payload);
    assert.equal(doc.errorType, 'RangeError');
    assert.equal(doc.errorMessage, 'asked to fail');

    const ev = await lambda.send(new InvokeCommand({ FunctionName: 'hello', InvocationType: 'Event', Payload: new TextEncoder().encode('{}') }));
    assert.equal(ev.StatusCode, 202);
    const dry = await lambda.send(new InvokeCommand({ FunctionName: 'hello', InvocationType: 'DryRun' }));
    assert.equal(dry.StatusCode, 204);
    await assert.rejects(lambda.send(new InvokeCommand({ FunctionName: 'hello', Qualifier: '7' })), (e: unknown) => e instanceof ResourceNotFoundException);
  });

  it('ListFunctions pages through every function', async () => {
    for (const name of ['b-fn', 'a-fn']) {
      await lambda.send(new CreateFunctionCommand({ FunctionName: name, Runtime: 'python3.12', Handler: 'app.handler', Role: 'r', Code: { ZipFile: V1 } }));
    }
    const first = await lambda.send(new ListFunctionsCommand({ MaxItems: 2 }));
    assert.deepEqual(first.Functions?.map((f) => f.FunctionName), ['a-fn', 'b-fn']);
    assert.ok(first.NextMarker);
    const names: string[] = [];
    for await (const page of paginateListFunctions({ client: lambda, pageSize: 1 }, {})) names.push(...(page.Functions ?? []).map((f) => f.FunctionName!));
    assert.deepEqual(names, ['a-fn', 'b-fn', 'hello']);
    const hello = (await lambda.send(new ListFunctionsCommand({}))).Functions?.find((f) => f.FunctionName === 'hello');
    const { State: _s, LastUpdateStatus: _l, ...listed } = created;
    assert.deepEqual(hello, listed);
  });

  it('UpdateFunctionCode and UpdateFunctionConfiguration; the next Invoke runs the new code and configuration', async () => {
    const code = data(await lambda.send(new UpdateFunctionCodeCommand({ FunctionName: 'hello', ZipFile: V2 })));
    assert.equal(code.CodeSha256, sha64(V2));
    assert.equal(code.CodeSize, V2.length);
    assert.equal(code.Version, '$LATEST');
    let out = await lambda.send(new InvokeCommand({ FunctionName: 'hello' }));
    assert.deepEqual(decode(out.Payload), { code: 2, greeting: 'hi', version: '$LATEST' });

    const conf = data(await lambda.send(new UpdateFunctionConfigurationCommand({
      FunctionName: 'hello', Environment: { Variables: { GREETING: 'bonjour' } }, MemorySize: 512, Description: 'says bonjour',
    })));
    assert.deepEqual([conf.Environment, conf.MemorySize, conf.Description, conf.Timeout, conf.Handler], [{ Variables: { GREETING: 'bonjour' } }, 512, 'says bonjour', 10, 'index.handler']);
    out = await lambda.send(new InvokeCommand({ FunctionName: 'hello' }));
    assert.deepEqual(decode(out.Payload), { code: 2, greeting: 'bonjour', version: '$LATEST' });
  });

  it('PublishVersion and ListVersionsByFunction; Invoke of a version', async () => {
    const v1 = data(await lambda.send(new PublishVersionCommand({ FunctionName: 'hello', Description: 'first release' })));
    assert.equal(v1.Version, '1');
    assert.equal(v1.FunctionArn, `${ARN}:hello:1`);
    assert.equal(v1.Description, 'first release');
    assert.equal(v1.CodeSha256, sha64(V2));
    const v2 = data(await lambda.send(new UpdateFunctionCodeCommand({ FunctionName: 'hello', ZipFile: V1, Publish: true })));
    assert.equal(v2.Version, '2');
    const versions = data(await lambda.send(new ListVersionsByFunctionCommand({ FunctionName: 'hello' })));
    assert.deepEqual(versions.Versions?.map((v) => [v.Version, v.FunctionArn, v.CodeSha256]), [
      ['$LATEST', `${ARN}:hello:$LATEST`, sha64(V1)], ['1', `${ARN}:hello:1`, sha64(V2)], ['2', `${ARN}:hello:2`, sha64(V1)],
    ]);
    const out = await lambda.send(new InvokeCommand({ FunctionName: 'hello', Qualifier: '1' }));
    assert.equal(out.ExecutedVersion, '1');
    assert.deepEqual(decode(out.Payload), { code: 2, greeting: 'bonjour', version: '1' });
  });

  it('CreateAlias, GetAlias, UpdateAlias (weighted routing), ListAliases, DeleteAlias; Invoke through an alias', async () => {
    const alias = data(await lambda.send(new CreateAliasCommand({ FunctionName: 'hello', Name: 'live', FunctionVersion: '1', Description: 'production' })));
    assert.deepEqual({ ...alias, RevisionId: 'R' }, { AliasArn: `${ARN}:hello:live`, Name: 'live', FunctionVersion: '1', Description: 'production', RevisionId: 'R' });
    await assert.rejects(lambda.send(new CreateAliasCommand({ FunctionName: 'hello', Name: 'live', FunctionVersion: '2' })),
      (e: unknown) => e instanceof ResourceConflictException && e.message === `Alias already exists: ${ARN}:hello:live`);

    const out = await lambda.send(new InvokeCommand({ FunctionName: 'hello:live' }));
    assert.equal(out.ExecutedVersion, '1');
    assert.deepEqual(decode(out.Payload), { code: 2, greeting: 'bonjour', version: '1' });

    const updated = data(await lambda.send(new UpdateAliasCommand({
      FunctionName: 'hello', Name: 'live', FunctionVersion: '2', RoutingConfig: { AdditionalVersionWeights: { 1: 0.1 } }, RevisionId: alias.RevisionId,
    })));
    assert.deepEqual({ ...updated, RevisionId: 'R' }, {
      AliasArn: `${ARN}:hello:live`, Name: 'live', FunctionVersion: '2', Description: 'production',
      RoutingConfig: { AdditionalVersionWeights: { 1: 0.1 } }, RevisionId: 'R',
    });
    assert.notEqual(updated.RevisionId, alias.RevisionId);
    assert.deepEqual(data(await lambda.send(new GetAliasCommand({ FunctionName: 'hello', Name: 'live' }))), updated);

    await lambda.send(new CreateAliasCommand({ FunctionName: 'hello', Name: 'canary', FunctionVersion: '$LATEST' }));
    const aliases = data(await lambda.send(new ListAliasesCommand({ FunctionName: 'hello' })));
    assert.deepEqual(aliases.Aliases?.map((a) => [a.Name, a.FunctionVersion]), [['canary', '$LATEST'], ['live', '2']]);

    // Version 1 still gets 10 % of live's traffic: it cannot be deleted.
    await assert.rejects(lambda.send(new DeleteFunctionCommand({ FunctionName: 'hello', Qualifier: '1' })),
      (e: unknown) => e instanceof ResourceConflictException && e.message === 'Unable to delete version because the following aliases reference it: [live]');
    const deleted = await lambda.send(new DeleteAliasCommand({ FunctionName: 'hello', Name: 'live' }));
    assert.equal(deleted.$metadata.httpStatusCode, 204);
    await assert.rejects(lambda.send(new GetAliasCommand({ FunctionName: 'hello', Name: 'live' })),
      (e: unknown) => e instanceof ResourceNotFoundException && e.message === `Alias not found: ${ARN}:hello:live`);
  });

  it('DeleteFunction: a version, then the function', async () => {
    const v = await lambda.send(new DeleteFunctionCommand({ FunctionName: 'hello', Qualifier: '1' }));
    assert.equal(v.$metadata.httpStatusCode, 204);
    const versions = await lambda.send(new ListVersionsByFunctionCommand({ FunctionName: 'hello' }));
    assert.deepEqual(versions.Versions?.map((x) => x.Version), ['$LATEST', '2']);
    await lambda.send(new DeleteFunctionCommand({ FunctionName: 'hello' }));
    await assert.rejects(lambda.send(new GetFunctionCommand({ FunctionName: 'hello' })), (e: unknown) => e instanceof ResourceNotFoundException);
    await assert.rejects(lambda.send(new InvokeCommand({ FunctionName: 'hello' })), (e: unknown) => e instanceof ResourceNotFoundException);
  });

  it('refuses a wrong secret key with InvalidSignatureException and an unknown key with UnrecognizedClientException', async () => {
    const wrong = new LambdaClient({ endpoint, region: REGION, credentials: { ...KEY, secretAccessKey: 'not-the-secret' }, maxAttempts: 1 });
    await assert.rejects(wrong.send(new ListFunctionsCommand({})), (e: unknown) => {
      const err = e as Error & { $metadata: { httpStatusCode: number } };
      return err.name === 'InvalidSignatureException' && err.$metadata.httpStatusCode === 403
        && err.message === 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';
    });
    wrong.destroy();
    const unknown = new LambdaClient({ endpoint, region: REGION, credentials: { accessKeyId: 'NKIAUNKNOWN000000000', secretAccessKey: KEY.secretAccessKey }, maxAttempts: 1 });
    await assert.rejects(unknown.send(new InvokeCommand({ FunctionName: 'a-fn' })), (e: unknown) => {
      const err = e as Error & { $metadata: { httpStatusCode: number } };
      return err.name === 'UnrecognizedClientException' && err.$metadata.httpStatusCode === 403 && err.message === 'The security token included in the request is invalid.';
    });
    unknown.destroy();
  });

  it('refuses a /_/ route without the admin token, and serves it with the token', async () => {
    const none = await fetch(`${endpoint}/_/services`);
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('x-amzn-errortype'), 'MissingAuthenticationTokenException');
    assert.match(((await none.json()) as { Message: string }).Message, /admin-token/);
    const bad = await fetch(`${endpoint}/_/services`, { headers: { authorization: 'Bearer nope' } });
    assert.equal(bad.status, 403);
    const ok = await fetch(`${endpoint}/_/services`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), []);
    const health = await fetch(`${endpoint}/_/health`);
    assert.equal(health.status, 200);
  });
});
