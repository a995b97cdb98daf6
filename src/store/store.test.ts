import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { zipSync } from 'fflate';
import {
  openSqliteStore, type AsyncEventInput, type FunctionConfig, type InvocationRow, type QueueMessageInput, type QueueReceive, type Store,
} from './index.js';
import { removeTree } from './zip.js';
import { SCHEMA_VERSION } from './sqlite.js';

const UNIX = 3;
const text = (s: string) => new TextEncoder().encode(s);

function config(name: string, overrides: Partial<FunctionConfig> = {}): FunctionConfig {
  return {
    key: name, name, handler: 'index.handler', runtime: 'nodejs20.x', language: 'node',
    memorySize: 1024, timeout: 6, environment: { STAGE: 'dev' }, service: 'svc', stage: 'dev', region: 'us-east-1',
    ...overrides,
  };
}

function invocation(functionName: string, startMs: number, extra: Partial<InvocationRow> = {}): InvocationRow {
  return {
    requestId: `req-${functionName}-${startMs}`, functionName, version: '$LATEST', startMs,
    durationMs: 12.5, billedDurationMs: 13, memorySize: 1024, outcome: 'ok', ...extra,
  };
}

const SHA_A = 'a'.repeat(64);
const SHA_B = 'b'.repeat(64);

describe('sqlite store', () => {
  let dir: string;
  let store: Store;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'nimbus-store-'));
    store = openSqliteStore(join(dir, 'data'));
  });
  afterEach(() => {
    try {
      store.close();
    } finally {
      removeTree(dir);
    }
  });

  it('creates the data dir 0700 with a migrated database', () => {
    assert.equal(statSync(join(dir, 'data')).mode & 0o777, 0o700);
    const db = new Database(join(dir, 'data', 'nimbus.db'), { readonly: true });
    try {
      assert.equal(db.prepare('SELECT version FROM schema_version').pluck().get(), SCHEMA_VERSION);
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    } finally {
      db.close();
    }
  });

  describe('artifacts', () => {
    it('collects artifacts no version uses, once older than the grace time, and prunes old records', () => {
      const used = Buffer.from(zipSync({ 'a.js': new TextEncoder().encode('exports.handler = async () => 1;\n') }));
      const unused = Buffer.from(zipSync({ 'b.js': new TextEncoder().encode('exports.handler = async () => 2;\n') }));
      const u = store.putArtifact(used);
      const v = store.putArtifact(unused);
      store.putLatest(config('keep'), u.sha256, u.size);
      const dir = store.artifactDir(v.sha256);
      assert.deepEqual(store.collectArtifacts(Date.now() - 60_000), [], 'a fresh upload waits for its deploy');
      assert.deepEqual(store.collectArtifacts(Date.now() + 1000), [v.sha256]);
      assert.equal(store.hasArtifact(v.sha256), false);
      assert.equal(existsSync(dir), false);
      assert.equal(store.hasArtifact(u.sha256), true);
      store.recordInvocation(invocation('keep', 1), 'old log');
      store.recordInvocation(invocation('keep', Date.now()), 'new log');
      assert.equal(store.pruneRecords(Date.now() - 60_000), 1);
      assert.deepEqual(store.logs('keep', 0).map((l) => l.text), ['new log']);
    });

    it('refuses a zip whose headers lie about its sizes (a zip bomb) instead of inflating it', () => {
      const bomb = Buffer.from(zipSync({ 'h.js': new Uint8Array(4 * 1024 * 1024) }, { level: 9 }));
      // Say 100 bytes in the local header (offset 22) and in the central directory (offset 24).
      bomb.writeUInt32LE(100, 22);
      const central = bomb.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
      bomb.writeUInt32LE(100, central + 24);
      const started = Date.now();
      assert.throws(() => store.artifactDir(store.putArtifact(bomb).sha256), /"h\.js" does not inflate to its declared 100 bytes/);
      assert.ok(Date.now() - started < 2000);
      // A changed byte: the CRC-32 check catches it.
      const good = Buffer.from(zipSync({ 'a.txt': [new TextEncoder().encode('hello world'), { level: 0 }] }));
      good[good.indexOf(Buffer.from('hello')) + 1] = 0x45;
      assert.throws(() => store.artifactDir(store.putArtifact(good).sha256), /does not match its declared size or CRC-32/);
    });

    const zip = Buffer.from(zipSync({
      'index.js': [text('exports.handler = async () => 1;\n'), { os: UNIX, attrs: (0o100644 << 16) >>> 0 }],
      'bin/': [new Uint8Array(0), { os: UNIX, attrs: (0o040755 << 16) >>> 0 }],
      'bin/run': [text('#!/bin/sh\necho hi\n'), { os: UNIX, attrs: (0o100755 << 16) >>> 0 }],
      'lib/deep/data.txt': text('deep'),
    }));

    it('stores a zip under its SHA-256, idempotently', () => {
      const first = store.putArtifact(zip);
      const second = store.putArtifact(zip);
      assert.deepEqual(first, { sha256: createHash('sha256').update(zip).digest('hex'), size: zip.length });
      assert.deepEqual(second, first);
      assert.ok(store.hasArtifact(first.sha256));
      assert.ok(!store.hasArtifact(SHA_A));
      assert.ok(!store.hasArtifact('../../etc/passwd'));
      assert.deepEqual(readdirSync(join(dir, 'data', 'artifacts')), [`${first.sha256}.zip`]);
      assert.deepEqual(readFileSync(join(dir, 'data', 'artifacts', `${first.sha256}.zip`)), zip);
    });

    it('extracts once, read-only, keeping the executable bit', () => {
      const { sha256 } = store.putArtifact(zip);
      const code = store.artifactDir(sha256);
      assert.equal(code, join(dir, 'data', 'code', sha256));
      assert.equal(readFileSync(join(code, 'index.js'), 'utf8'), 'exports.handler = async () => 1;\n');
      assert.equal(readFileSync(join(code, 'lib/deep/data.txt'), 'utf8'), 'deep');
      const mode = (p: string) => statSync(join(code, p)).mode & 0o777;
      assert.equal(mode('index.js'), 0o444);
      assert.equal(mode('bin/run'), 0o555);
      assert.equal(mode('lib/deep/data.txt'), 0o444);
      assert.equal(mode('.'), 0o555);
      assert.equal(mode('bin'), 0o555);
      assert.equal(mode('lib/deep'), 0o555);
      assert.equal(store.artifactDir(sha256), code);
      assert.deepEqual(readdirSync(join(dir, 'data', 'code')), [sha256]);
    });

    it('refuses zip-slip entries and damaged zips', () => {
      const slip = Buffer.from(zipSync({ '../evil.js': text('x') }));
      const absolute = Buffer.from(zipSync({ '/etc/evil.js': text('x') }));
      const nested = Buffer.from(zipSync({ 'a/../../evil.js': text('x') }));
      assert.throws(() => store.putArtifact(slip), /"\.\." path segments are not allowed \(zip-slip\)/);
      assert.throws(() => store.putArtifact(absolute), /absolute paths are not allowed/);
      assert.throws(() => store.putArtifact(nested), /zip-slip/);
      assert.throws(() => store.putArtifact(Buffer.from('not a zip')), /not a valid zip file/);
      assert.deepEqual(readdirSync(join(dir, 'data', 'artifacts')), []);

      // A bad zip placed in the artifacts folder by other means is refused at extraction too.
      const sha = createHash('sha256').update(slip).digest('hex');
      writeFileSync(join(dir, 'data', 'artifacts', `${sha}.zip`), slip);
      assert.throws(() => store.artifactDir(sha), /cannot extract artifact .*zip-slip/);
      assert.deepEqual(readdirSync(join(dir, 'data', 'code')), []);
      assert.ok(!existsSync(join(dir, 'data', 'evil.js')));
      assert.ok(!existsSync(join(dir, 'data', 'code', 'evil.js')));
    });

    it('throws for an unknown or malformed hash', () => {
      assert.throws(() => store.artifactDir(SHA_A), /artifact a{64} not found/);
      assert.throws(() => store.artifactDir('../x'), /invalid artifact hash/);
    });
  });

  describe('functions and versions', () => {
    it('numbers versions 1, 2, 3 and publishes nothing new when nothing changed', () => {
      const latest = store.putLatest(config('fn'), SHA_A, 100, 'first');
      assert.equal(latest.version, '$LATEST');
      assert.equal(latest.description, 'first');
      assert.ok(Object.isFrozen(latest) && Object.isFrozen(latest.config) && Object.isFrozen(latest.config.environment));

      const v1 = store.publishVersion('fn');
      assert.equal(v1.version, '1');
      assert.equal(v1.description, 'first');
      assert.equal(store.publishVersion('fn', 'again').version, '1');

      // Key order does not make a configuration different.
      const reordered = Object.fromEntries(Object.entries(config('fn')).reverse()) as unknown as FunctionConfig;
      store.putLatest(reordered, SHA_A, 100);
      assert.equal(store.publishVersion('fn').version, '1');

      store.putLatest(config('fn', { memorySize: 2048 }), SHA_A, 100);
      const v2 = store.publishVersion('fn', 'more memory');
      assert.equal(v2.version, '2');
      assert.equal(v2.description, 'more memory');
      assert.equal(v2.config.memorySize, 2048);

      store.putLatest(config('fn', { memorySize: 2048 }), SHA_B, 200);
      const v3 = store.publishVersion('fn');
      assert.equal(v3.version, '3');
      assert.equal(v3.codeSha256, SHA_B);
      assert.equal(store.getVersion('fn', '1')?.config.memorySize, 1024);
      assert.equal(store.getVersion('fn', '4'), undefined);
    });

    it('never reuses a version number after a delete', () => {
      store.putLatest(config('fn'), SHA_A, 1);
      store.publishVersion('fn');
      store.putLatest(config('fn'), SHA_B, 1);
      store.publishVersion('fn');
      assert.equal(store.deleteFunction('fn', '2'), true);
      assert.equal(store.deleteFunction('fn', '2'), false);
      store.putLatest(config('fn', { timeout: 30 }), SHA_B, 1);
      assert.equal(store.publishVersion('fn').version, '3');
      assert.deepEqual(store.listVersions('fn').map((v) => v.version), ['$LATEST', '1', '3']);
      assert.throws(() => store.deleteFunction('fn', '$LATEST'), /delete the function instead/);
    });

    it('lists versions $LATEST first then numerically, and functions by name', () => {
      store.putLatest(config('zeta'), SHA_A, 1);
      store.putLatest(config('alpha'), SHA_A, 1);
      for (let i = 0; i < 11; i++) {
        store.putLatest(config('alpha', { timeout: i + 1 }), SHA_A, 1);
        store.publishVersion('alpha');
      }
      assert.deepEqual(store.listVersions('alpha').map((v) => v.version),
        ['$LATEST', '1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11']);
      assert.deepEqual(store.listFunctions().map((v) => [v.functionName, v.version]), [['alpha', '$LATEST'], ['zeta', '$LATEST']]);
    });

    it('does not store where the code lives, and refuses to publish an unknown function', () => {
      const spec = { ...config('fn'), codeDir: '/somewhere' };
      assert.ok(!('codeDir' in store.putLatest(spec, SHA_A, 1).config));
      assert.throws(() => store.publishVersion('nope'), /nope: function not found/);
    });

    it('deletes a whole function with its versions and aliases', () => {
      store.putLatest(config('fn'), SHA_A, 1);
      store.publishVersion('fn');
      store.putAlias({ functionName: 'fn', name: 'live', functionVersion: '1', additionalVersionWeights: {}, description: '' });
      assert.equal(store.deleteFunction('fn'), true);
      assert.equal(store.deleteFunction('fn'), false);
      assert.deepEqual(store.listVersions('fn'), []);
      assert.deepEqual(store.listAliases('fn'), []);
      assert.deepEqual(store.listFunctions(), []);
      // A new function of the same name starts again at 1, as on Lambda.
      store.putLatest(config('fn'), SHA_A, 1);
      assert.equal(store.publishVersion('fn').version, '1');
    });
  });

  describe('aliases', () => {
    beforeEach(() => {
      for (const timeout of [1, 2, 3]) {
        store.putLatest(config('fn', { timeout }), SHA_A, 1);
        store.publishVersion('fn');
      }
      assert.deepEqual(store.listVersions('fn').map((v) => v.version), ['$LATEST', '1', '2', '3']);
    });

    it('stores weights and changes the revision on every put', () => {
      const a = store.putAlias({ functionName: 'fn', name: 'live', functionVersion: '1', additionalVersionWeights: { 2: 0.1 }, description: 'prod' });
      assert.deepEqual({ ...a.additionalVersionWeights }, { 2: 0.1 });
      assert.match(a.revisionId, /^[0-9a-f-]{36}$/);
      assert.ok(Object.isFrozen(a.additionalVersionWeights));
      const b = store.putAlias({ functionName: 'fn', name: 'live', functionVersion: '3', additionalVersionWeights: {}, description: 'prod' });
      assert.notEqual(b.revisionId, a.revisionId);
      assert.deepEqual(store.getAlias('fn', 'live'), b);
      store.putAlias({ functionName: 'fn', name: 'canary', functionVersion: '$LATEST', additionalVersionWeights: {}, description: '' });
      assert.deepEqual(store.listAliases('fn').map((x) => x.name), ['canary', 'live']);
      assert.equal(store.deleteAlias('fn', 'canary'), true);
      assert.equal(store.deleteAlias('fn', 'canary'), false);
      assert.equal(store.getAlias('fn', 'canary'), undefined);
    });

    it('refuses to delete a version an alias points to, naming the alias', () => {
      store.putAlias({ functionName: 'fn', name: 'live', functionVersion: '1', additionalVersionWeights: { 2: 0.25 }, description: '' });
      assert.throws(() => store.deleteFunction('fn', '1'), /alias live points to it/);
      assert.throws(() => store.deleteFunction('fn', '2'), /alias live points to it/);
      assert.equal(store.deleteFunction('fn', '3'), true);
      store.deleteAlias('fn', 'live');
      assert.equal(store.deleteFunction('fn', '1'), true);
    });

    it('refuses aliases to missing versions, bad weights and bad names', () => {
      const base = { functionName: 'fn', description: '', additionalVersionWeights: {} };
      assert.throws(() => store.putAlias({ ...base, name: 'live', functionVersion: '9' }), /version 9 of fn not found/);
      assert.throws(() => store.putAlias({ ...base, name: 'live', functionVersion: '1', additionalVersionWeights: { 2: 1.5 } }), /between 0 and 1/);
      assert.throws(() => store.putAlias({ ...base, name: 'live', functionVersion: '1', additionalVersionWeights: { 9: 0.5 } }), /version 9 of fn not found/);
      assert.throws(() => store.putAlias({ ...base, name: 'live', functionVersion: '$LATEST', additionalVersionWeights: { 2: 0.5 } }), /not \$LATEST/);
      assert.throws(() => store.putAlias({ ...base, name: '42', functionVersion: '1' }), /invalid alias name/);
      assert.throws(() => store.putAlias({ ...base, functionName: 'nope', name: 'live', functionVersion: '1' }), /version 1 of nope not found/);
    });
  });

  describe('services', () => {
    it('counts deployments per name and stage', () => {
      const service = { name: 'api', stage: 'dev', routes: [], functions: { hello: 'api-dev-hello' }, versions: { hello: '1' }, gateway: { binaryMediaTypes: [] } };
      const first = store.putService(service);
      assert.equal(first.deployment, 1);
      assert.ok(!Number.isNaN(Date.parse(first.deployedAt)));
      assert.equal(store.putService(service).deployment, 2);
      assert.equal(store.putService({ ...service, stage: 'prod' }).deployment, 1);
      const third = store.putService({ ...service, functions: { hello: 'api-dev-hello', bye: 'api-dev-bye' }, versions: { hello: '2', bye: '1' } });
      assert.equal(third.deployment, 3);
      assert.deepEqual(store.getService('api', 'dev'), third);
      assert.deepEqual(third.versions, { bye: '1', hello: '2' });
      // The history keeps every deployment, for rollback.
      const history = store.listDeployments('api', 'dev');
      assert.deepEqual(history.map((d) => [d.deployment, d.versions]), [[1, { hello: '1' }], [2, { hello: '1' }], [3, { bye: '1', hello: '2' }]]);
      assert.ok(Object.isFrozen(third.functions));
      assert.deepEqual(store.listServices().map((s) => `${s.name}/${s.stage}`), ['api/dev', 'api/prod']);
      assert.equal(store.deleteService('api', 'prod'), true);
      assert.equal(store.deleteService('api', 'prod'), false);
      assert.equal(store.getService('api', 'prod'), undefined);
      assert.deepEqual(store.listDeployments('api', 'prod'), []);
      // A removed service's history goes with it: deploying it again starts at 1.
      assert.equal(store.putService({ ...service, stage: 'prod' }).deployment, 1);
    });
  });

  describe('invocations and logs', () => {
    it('batches writes, yet reads see every record at once', async () => {
      store.recordInvocation(invocation('a', 1000, { initDurationMs: 150.2, maxMemoryUsedMB: 64 }), 'START RequestId: 1\n');
      store.recordInvocation(invocation('b', 2000, { outcome: 'timeout' }));
      const db = new Database(join(dir, 'data', 'nimbus.db'), { readonly: true });
      try {
        const count = () => db.prepare('SELECT count(*) FROM invocations').pluck().get();
        assert.equal(count(), 0, 'records wait in memory for the next batch');
        await new Promise((r) => setTimeout(r, 400));
        assert.equal(count(), 2, 'the timer flushed the batch');
        for (let i = 0; i < 499; i++) store.recordInvocation(invocation('c', 3000 + i));
        assert.equal(count(), 2);
        store.recordInvocation(invocation('c', 9999));
        assert.equal(count(), 502, 'a full batch is written at once');
      } finally {
        db.close();
      }
      store.recordInvocation(invocation('a', 1500));
      const a = store.invocations('a', 0);
      assert.deepEqual(a, [invocation('a', 1000, { initDurationMs: 150.2, maxMemoryUsedMB: 64 }), invocation('a', 1500)]);
      assert.ok(!('initDurationMs' in a[1]!));
      assert.equal(store.invocations(undefined, 0).length, 503);
      assert.deepEqual(store.invocations(undefined, 1500, 3000).map((r) => r.startMs), [1500, 2000]);
      assert.equal(store.invocations('b', 0)[0]?.outcome, 'timeout');
    });

    it('keeps log text by function, in time order, with a limit', () => {
      for (let i = 0; i < 5; i++) store.recordInvocation(invocation('fn', 100 * i), `log ${i}`);
      store.recordInvocation(invocation('other', 250), 'other log');
      const logs = store.logs('fn', 100);
      assert.deepEqual(logs.map((l) => l.text), ['log 1', 'log 2', 'log 3', 'log 4']);
      assert.deepEqual(logs[0], { functionName: 'fn', requestId: 'req-fn-100', timeMs: 100, text: 'log 1' });
      assert.deepEqual(store.logs('fn', 0, 2).map((l) => l.text), ['log 0', 'log 1']);
      assert.deepEqual(store.logs('other', 0).map((l) => l.text), ['other log']);
    });
  });

  it('keeps settings', () => {
    assert.equal(store.getSetting('admin.tokenHash'), undefined);
    store.setSetting('admin.tokenHash', 'abc');
    store.setSetting('admin.tokenHash', 'def');
    assert.equal(store.getSetting('admin.tokenHash'), 'def');
  });

  it('keeps everything across close and reopen', () => {
    const zip = Buffer.from(zipSync({ 'index.js': text('x') }));
    const { sha256 } = store.putArtifact(zip);
    store.artifactDir(sha256);
    store.putLatest(config('fn'), sha256, zip.length);
    store.publishVersion('fn');
    store.putLatest(config('fn', { timeout: 10 }), sha256, zip.length);
    store.publishVersion('fn');
    store.deleteFunction('fn', '2');
    const alias = store.putAlias({ functionName: 'fn', name: 'live', functionVersion: '1', additionalVersionWeights: {}, description: 'd' });
    const service = store.putService({ name: 'api', stage: 'dev', routes: [], functions: { fn: 'fn' }, versions: { fn: '1' }, gateway: {} });
    store.recordInvocation(invocation('fn', 42), 'the log');
    store.setSetting('k', 'v');
    store.close();
    assert.throws(() => store.listFunctions(), /is closed/);

    store = openSqliteStore(join(dir, 'data'));
    assert.ok(store.hasArtifact(sha256));
    assert.equal(store.artifactDir(sha256), join(dir, 'data', 'code', sha256));
    assert.deepEqual(store.listVersions('fn').map((v) => v.version), ['$LATEST', '1']);
    assert.equal(store.getVersion('fn', '$LATEST')?.config.timeout, 10);
    assert.deepEqual(store.getAlias('fn', 'live'), alias);
    assert.deepEqual(store.getService('api', 'dev'), service);
    assert.deepEqual(store.invocations('fn', 0), [invocation('fn', 42)]);
    assert.deepEqual(store.logs('fn', 0).map((l) => l.text), ['the log']);
    assert.equal(store.getSetting('k'), 'v');
    // The number of the deleted version 2 stays used.
    assert.equal(store.publishVersion('fn').version, '3');
    assert.equal(store.putService({ name: 'api', stage: 'dev', routes: [], functions: {}, versions: {}, gateway: {} }).deployment, 2);
  });
});

describe('sqlite store: per-minute roll-ups', () => {
  let dir: string;
  let store: Store;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'nimbus-rollups-'));
    store = openSqliteStore(join(dir, 'data'));
  });
  afterEach(() => {
    try {
      store.close();
    } finally {
      removeTree(dir);
    }
  });

  // Minute 0 = [0, 60,000), minute 1 = [60,000, 120,000).
  function seed(): void {
    // fn $LATEST, minute 0: 12.5 ms / billed 13 at 1024 MB, one cold (init 80), one error, one throttle.
    store.recordInvocation(invocation('fn', 0, { initDurationMs: 80 }));
    store.recordInvocation(invocation('fn', 1000, { outcome: 'error', durationMs: 40, billedDurationMs: 40 }));
    store.recordInvocation(invocation('fn', 2000, { outcome: 'throttled', durationMs: 0, billedDurationMs: 0 }));
    // fn $LATEST, minute 1, at a fractional start (as the platform records): 128 MB, 100 ms, crashed.
    store.recordInvocation(invocation('fn', 60_000.5, { memorySize: 128, durationMs: 99.2, billedDurationMs: 100, outcome: 'crashed' }));
    // fn version 1, minute 1: only throttled and rejected requests.
    store.recordInvocation(invocation('fn', 61_000, { version: '1', outcome: 'throttled', durationMs: 0, billedDurationMs: 0 }));
    store.recordInvocation(invocation('fn', 62_000, { version: '1', outcome: 'rejected', durationMs: 0, billedDurationMs: 0 }));
    // other, minute 0 and at 120,000 (minute 2).
    store.recordInvocation(invocation('other', 59_999, { memorySize: 2048, durationMs: 1, billedDurationMs: 1 }));
    store.recordInvocation(invocation('other', 120_000));
  }

  it('groups by minute, function and version, counting as Lambda does', () => {
    seed();
    // Pending records (not yet flushed) are included.
    const rows = store.rollups(undefined, 0, 120_000);
    assert.deepEqual(rows, [
      // 2 ran (throttle excluded); 12.5 + 40 = 52.5 ms, max 40; billed 13 + 40 = 53 ms × 1 GB = 0.053 GB-s.
      { functionName: 'fn', version: '$LATEST', minuteMs: 0, invocations: 2, errors: 1, throttles: 1, coldStarts: 1, durationSumMs: 52.5, durationMaxMs: 40, billedMsSum: 53, gbSeconds: 0.053 },
      // 1 ms × 2 GB = 0.002 GB-s.
      { functionName: 'other', version: '$LATEST', minuteMs: 0, invocations: 1, errors: 0, throttles: 0, coldStarts: 0, durationSumMs: 1, durationMaxMs: 1, billedMsSum: 1, gbSeconds: 0.002 },
      // 60,000.5 falls in minute 1; 100 ms × 0.125 GB = 0.0125 GB-s; crashed is an error.
      { functionName: 'fn', version: '$LATEST', minuteMs: 60_000, invocations: 1, errors: 1, throttles: 0, coldStarts: 0, durationSumMs: 99.2, durationMaxMs: 99.2, billedMsSum: 100, gbSeconds: 0.0125 },
      // Nothing ran: zeros, not nulls; the rejected request counts nowhere.
      { functionName: 'fn', version: '1', minuteMs: 60_000, invocations: 0, errors: 0, throttles: 1, coldStarts: 0, durationSumMs: 0, durationMaxMs: 0, billedMsSum: 0, gbSeconds: 0 },
    ]);
    assert.ok(Object.isFrozen(rows[0]));
  });

  it('filters by function and by [since, until) on start time', () => {
    seed();
    assert.deepEqual(store.rollups('other', 0).map((r) => [r.minuteMs, r.invocations]), [[0, 1], [120_000, 1]]);
    assert.deepEqual(store.rollups('fn', 60_000).map((r) => [r.minuteMs, r.version]), [[60_000, '$LATEST'], [60_000, '1']]);
    // since 1000 leaves out the cold start at 0 but keeps the minute.
    assert.deepEqual(store.rollups('fn', 1000, 60_000).map((r) => [r.invocations, r.coldStarts, r.throttles]), [[1, 0, 1]]);
    assert.deepEqual(store.rollups('nope', 0), []);
    assert.deepEqual(store.rollups(undefined, 200_000), []);
  });
});

describe('sqlite store: asynchronous invocation queue', () => {
  let dir: string;
  let store: Store;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'nimbus-store-async-'));
    store = openSqliteStore(join(dir, 'data'));
  });
  afterEach(() => {
    try {
      store.close();
    } finally {
      removeTree(dir);
    }
  });

  const event = (n: number, extra: Partial<AsyncEventInput> = {}): AsyncEventInput => ({
    requestId: `req-${n}`, functionName: 'fn', payload: `{"n":${n}}`, receivedMs: 1000 + n, ...extra,
  });

  it('enqueues idempotently on the request id and claims due events oldest first', () => {
    const first = store.enqueueEvent(event(1, { qualifier: 'live' }));
    assert.deepEqual(first, {
      id: first.id, requestId: 'req-1', functionName: 'fn', qualifier: 'live', payload: '{"n":1}',
      receivedMs: 1001, visibleAtMs: 1001, attempts: 0, throttles: 0,
    });
    assert.deepEqual(store.enqueueEvent(event(1, { payload: '{"other":true}' })), first);
    store.enqueueEvent(event(2));
    store.enqueueEvent(event(3, { visibleAtMs: 5000 }));
    assert.equal(store.nextEventDueMs(), 1001);

    const claimed = store.claimEvents('lease-a', 2000, 500, 10);
    assert.deepEqual(claimed.map((e) => [e.requestId, e.lease, e.visibleAtMs]), [['req-1', 'lease-a', 2500], ['req-2', 'lease-a', 2500]]);
    // Leased events are not due again until their lease expires; the not-yet-due one is not due either.
    assert.deepEqual(store.claimEvents('lease-b', 2499, 500, 10), []);
    assert.deepEqual(store.asyncCounts(2499), { pending: 1, leased: 2, deadLetters: 0, oldestReceivedMs: 1001 });
    assert.equal(store.nextEventDueMs(), 2500);
    assert.deepEqual(store.claimEvents('lease-b', 2000, 500, 0), []);
  });

  it('takes an expired lease over: the first claim can no longer complete, retry or dead-letter it', () => {
    const { id } = store.enqueueEvent(event(1));
    store.claimEvents('a', 2000, 100, 1);
    const [again] = store.claimEvents('b', 2100, 100, 1);
    assert.equal(again.lease, 'b');
    assert.equal(store.completeEvent(id, 'a'), false);
    assert.equal(store.retryEvent(id, 'a', { visibleAtMs: 0, attempts: 9, throttles: 9 }), false);
    assert.equal(store.deadLetterEvent(id, 'a', { failedMs: 1, condition: 'RetriesExhausted', attempts: 1, record: '{}' }), undefined);
    assert.deepEqual(store.listDeadLetters(), []);
    assert.equal(store.completeEvent(id, 'b'), true);
    assert.deepEqual(store.asyncCounts(0), { pending: 0, leased: 0, deadLetters: 0 });
    assert.equal(store.nextEventDueMs(), undefined);
  });

  it('retries with new counters and keeps the last response', () => {
    const { id } = store.enqueueEvent(event(1));
    store.claimEvents('a', 2000, 100, 1);
    assert.ok(store.retryEvent(id, 'a', { visibleAtMs: 3000, attempts: 1, throttles: 0, lastResponse: '{"statusCode":200}' }));
    assert.deepEqual(store.claimEvents('b', 2999, 100, 1), []);
    const [again] = store.claimEvents('b', 3000, 100, 1);
    assert.equal(again.attempts, 1);
    assert.equal(again.lastResponse, '{"statusCode":200}');
    // A retry without a response keeps the one before.
    assert.ok(store.retryEvent(id, 'b', { visibleAtMs: 3100, attempts: 1, throttles: 1 }));
    const [third] = store.claimEvents('c', 3100, 100, 1);
    assert.deepEqual([third.throttles, third.lastResponse], [1, '{"statusCode":200}']);
  });

  it('dead-letters, lists by function, redrives with the same request id, and deletes', () => {
    const a = store.enqueueEvent(event(1));
    const b = store.enqueueEvent(event(2, { functionName: 'other' }));
    store.claimEvents('l', 2000, 100, 10);
    store.retryEvent(a.id, 'l', { visibleAtMs: 2000, attempts: 2, throttles: 0 });
    store.claimEvents('m', 2000, 100, 10);
    const dead = store.deadLetterEvent(a.id, 'm', { failedMs: 2050, condition: 'RetriesExhausted', attempts: 3, record: '{"version":"1.0"}' });
    assert.deepEqual(dead, {
      id: dead!.id, requestId: 'req-1', functionName: 'fn', payload: '{"n":1}', receivedMs: 1001, failedMs: 2050,
      condition: 'RetriesExhausted', attempts: 3, record: '{"version":"1.0"}',
    });
    store.deadLetterEvent(b.id, 'l', { failedMs: 2060, condition: 'EventAgeExceeded', attempts: 0, record: '{}' });
    assert.deepEqual(store.listDeadLetters().map((d) => d.requestId), ['req-1', 'req-2']);
    assert.deepEqual(store.listDeadLetters('other').map((d) => d.condition), ['EventAgeExceeded']);
    assert.deepEqual(store.asyncCounts(2100), { pending: 0, leased: 0, deadLetters: 2 });
    assert.deepEqual(store.asyncCounts(2100, 'fn'), { pending: 0, leased: 0, deadLetters: 1 });

    const back = store.redriveDeadLetter(dead!.id, 9000);
    assert.deepEqual(back && [back.requestId, back.receivedMs, back.visibleAtMs, back.attempts, back.lease], ['req-1', 9000, 9000, 0, undefined]);
    assert.equal(store.redriveDeadLetter(dead!.id, 9000), undefined);
    assert.deepEqual(store.listDeadLetters().map((d) => d.requestId), ['req-2']);
    assert.deepEqual(store.claimEvents('n', 9000, 100, 10).map((e) => e.requestId), ['req-1']);

    const other = store.listDeadLetters('other')[0];
    assert.equal(store.deleteDeadLetter(other.id), true);
    assert.equal(store.deleteDeadLetter(other.id), false);
    assert.deepEqual(store.asyncCounts(9000), { pending: 0, leased: 1, deadLetters: 0, oldestReceivedMs: 9000 });
  });

  it('keeps queued and leased events across a close, and releases leases at the next start', () => {
    store.enqueueEvent(event(1));
    store.enqueueEvent(event(2));
    store.claimEvents('dead-process', 2000, 60_000, 1);
    store.close();
    store = openSqliteStore(join(dir, 'data'));
    assert.deepEqual(store.asyncCounts(2000), { pending: 1, leased: 1, deadLetters: 0, oldestReceivedMs: 1001 });
    assert.equal(store.releaseLeases(2001), 1);
    assert.deepEqual(store.claimEvents('new', 2001, 100, 10).map((e) => e.requestId), ['req-1', 'req-2']);
  });
});

describe('sqlite store: queue messages and topic fan-outs', () => {
  let dir: string;
  let store: Store;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'nimbus-store-queues-'));
    store = openSqliteStore(join(dir, 'data'));
  });
  afterEach(() => {
    try {
      store.close();
    } finally {
      removeTree(dir);
    }
  });

  const message = (n: number, extra: Partial<QueueMessageInput> = {}): QueueMessageInput => ({
    queue: 'q', messageId: `m-${n}`, body: `body ${n}`, md5OfBody: 'md5', senderId: 'me',
    sentMs: 1000 + n, visibleAtMs: 1000 + n, expiresAtMs: 100_000, ...extra,
  });
  const receive = (lease: string, nowMs: number, limit = 10, extra: Partial<QueueReceive> = {}) =>
    store.receiveQueueMessages('q', { lease, nowMs, visibilityMs: 500, limit, ...extra });

  it('sends idempotently on the message id and receives visible messages in queue order, hiding them', () => {
    const first = store.sendQueueMessage(message(1, { attributes: '[]', md5OfMessageAttributes: 'a' }));
    assert.deepEqual(first, {
      id: first.id, queue: 'q', messageId: 'm-1', body: 'body 1', attributes: '[]', md5OfBody: 'md5', md5OfMessageAttributes: 'a',
      senderId: 'me', sentMs: 1001, visibleAtMs: 1001, receiveCount: 0, expiresAtMs: 100_000,
    });
    assert.deepEqual(store.sendQueueMessage(message(1, { body: 'other' })), first);
    store.sendQueueMessage(message(2));
    store.sendQueueMessage(message(3, { visibleAtMs: 5000 })); // delayed
    assert.deepEqual(store.queueCounts('q', 2000), { visible: 2, inFlight: 0, delayed: 1, deadLettered: 0, oldestSentMs: 1001 });

    const r = receive('lease-1', 2000);
    assert.deepEqual(r.received.map((m) => [m.messageId, m.receiveCount, m.firstReceiveMs, m.visibleAtMs, m.receipt]),
      [['m-1', 1, 2000, 2500, 'lease-1'], ['m-2', 1, 2000, 2500, 'lease-1']]);
    assert.deepEqual(receive('lease-2', 2400).received, [], 'hidden during the visibility timeout');
    assert.deepEqual(store.queueCounts('q', 2400), { visible: 0, inFlight: 2, delayed: 1, deadLettered: 0, oldestSentMs: 1001 });
    assert.equal(store.nextQueueMessageDueMs('q'), 2500);

    // Visible again after the timeout: a new receive counts, keeps the first receive time, gets a new lease.
    const again = receive('lease-3', 2500, 1).received;
    assert.deepEqual(again.map((m) => [m.messageId, m.receiveCount, m.firstReceiveMs, m.receipt]), [['m-1', 2, 2000, 'lease-3']]);
    // Only the latest receive deletes.
    const second = r.received[1];
    assert.equal(store.deleteQueueMessages('q', [{ id: first.id, lease: 'lease-1' }]), 0);
    assert.equal(store.changeQueueMessageVisibility('q', first.id, 'lease-1', 0), false);
    assert.equal(store.deleteQueueMessages('q', [{ id: first.id, lease: 'lease-3' }, { id: second.id, lease: 'lease-1' }]), 2);
    assert.deepEqual(store.queueCounts('q', 2600), { visible: 0, inFlight: 0, delayed: 1, deadLettered: 0, oldestSentMs: 1003 });
  });

  it('moves a message past maxReceiveCount to the dead-letter queue on its next receive, keeping its id and sent time', () => {
    const sent = store.sendQueueMessage(message(1));
    const redrive = { deadLetterQueue: 'dlq', maxReceiveCount: 2, deadLetterRetentionMs: 10_000 };
    assert.equal(receive('a', 2000, 10, { redrive }).received.length, 1);
    assert.equal(receive('b', 3000, 10, { redrive }).received[0].receiveCount, 2);
    const third = receive('c', 4000, 10, { redrive });
    assert.deepEqual([third.received.length, third.deadLettered], [0, 1]);
    assert.deepEqual(store.queueCounts('q', 4000), { visible: 0, inFlight: 0, delayed: 0, deadLettered: 1 });
    const dead = store.receiveQueueMessages('dlq', { lease: 'd', nowMs: 4000, visibilityMs: 100, limit: 10 }).received;
    assert.deepEqual(dead.map((m) => [m.messageId, m.receiveCount, m.deadLetterSource, m.sentMs, m.expiresAtMs]),
      [['m-1', 1, 'q', sent.sentMs, sent.sentMs + 10_000]]);
  });

  it('deletes messages whose retention ended, and limits a receive by bytes (the first message whatever its size)', () => {
    store.sendQueueMessage(message(1, { expiresAtMs: 1500 }));
    store.sendQueueMessage(message(2, { body: 'x'.repeat(100) }));
    store.sendQueueMessage(message(3, { body: 'y'.repeat(100) }));
    store.sendQueueMessage(message(4, { body: 'z' }));
    const r = receive('a', 2000, 10, { maxBytes: 150 });
    assert.equal(r.expired, 1);
    assert.deepEqual(r.received.map((m) => m.messageId), ['m-2']);
    assert.deepEqual(receive('b', 2000, 10, { maxBytes: 10 }).received.map((m) => m.messageId), ['m-3']);
  });

  it('does not receive a FIFO group while one of its messages is in flight', () => {
    store.sendQueueMessage(message(1, { groupId: 'g1' }));
    store.sendQueueMessage(message(2, { groupId: 'g1' }));
    store.sendQueueMessage(message(3, { groupId: 'g2' }));
    const [m1] = receive('a', 2000, 1).received;
    assert.equal(m1.messageId, 'm-1');
    assert.deepEqual(receive('b', 2000, 10).received.map((m) => m.messageId), ['m-3'], 'g1 is blocked behind m-1');
    assert.deepEqual(receive('c', 2100, 10).received, []);
    // Visible again (ChangeMessageVisibility 0): the group is free, and its first message comes first.
    assert.equal(store.changeQueueMessageVisibility('q', m1.id, 'a', 2100), true);
    assert.deepEqual(receive('d', 2100, 1).received.map((m) => [m.messageId, m.receiveCount]), [['m-1', 2]]);
    assert.equal(store.deleteQueueMessages('q', [{ id: m1.id, lease: 'd' }]), 1);
    assert.deepEqual(receive('e', 2100, 10).received.map((m) => m.messageId), ['m-2']);
  });

  it('keeps received messages across a close and releases them at the next start; purges', () => {
    store.sendQueueMessage(message(1));
    store.sendQueueMessage(message(2));
    receive('dead-process', 2000, 1);
    store.close();
    store = openSqliteStore(join(dir, 'data'));
    assert.deepEqual(store.queueCounts('q', 2000), { visible: 1, inFlight: 1, delayed: 0, deadLettered: 0, oldestSentMs: 1001 });
    assert.equal(store.releaseQueueLeases(2001), 1);
    assert.deepEqual(receive('new', 2001).received.map((m) => [m.messageId, m.receiveCount]), [['m-1', 2], ['m-2', 1]]);
    assert.equal(store.purgeQueue('q'), 2);
    assert.equal(store.nextQueueMessageDueMs('q'), undefined);
  });

  it('records a publish with its fan-outs, lists them across a close, and removes the publish with its last one', () => {
    const publish = { messageId: 'sns-1', topic: 't', message: 'hello', subject: 'Hi', publishedMs: 5000 };
    const rows = store.publishTopicMessage(publish, [
      { functionName: 'fn-a', subscriptionArn: 'arn:t:a' }, { functionName: 'fn-b:live', subscriptionArn: 'arn:t:b' },
    ]);
    assert.deepEqual(rows.map((r) => [r.messageId, r.functionName, r.subscriptionArn, r.subject, r.attributes]),
      [['sns-1', 'fn-a', 'arn:t:a', 'Hi', undefined], ['sns-1', 'fn-b:live', 'arn:t:b', 'Hi', undefined]]);
    // Idempotent on the message id: the same fan-outs, nothing added.
    assert.equal(store.publishTopicMessage(publish, [{ functionName: 'fn-c', subscriptionArn: 'arn:t:c' }]).length, 2);
    assert.equal(store.completeTopicDelivery(rows[0].messageRow, 'arn:t:a'), true);
    assert.equal(store.completeTopicDelivery(rows[0].messageRow, 'arn:t:a'), false);
    store.close();
    store = openSqliteStore(join(dir, 'data'));
    assert.deepEqual(store.pendingTopicDeliveries().map((r) => [r.functionName, r.message, r.publishedMs]), [['fn-b:live', 'hello', 5000]]);
    assert.equal(store.pendingTopicDeliveryCount('t'), 1);
    assert.equal(store.pendingTopicDeliveryCount('other'), 0);
    assert.equal(store.completeTopicDelivery(rows[1].messageRow, 'arn:t:b'), true);
    assert.equal(store.pendingTopicDeliveryCount(), 0);
    // The publish went with its last fan-out: the same message id can be recorded again.
    assert.equal(store.publishTopicMessage(publish, [{ functionName: 'fn-c', subscriptionArn: 'arn:t:c' }]).length, 1);
  });
});
