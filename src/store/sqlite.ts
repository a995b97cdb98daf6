/**
 * The embedded Store: one SQLite database (better-sqlite3) plus two folders
 * of code, all under the data directory:
 *
 *   <dataDir>/nimbus.db               functions, versions, aliases, services, invocations, logs, settings,
 *                                     the asynchronous invocation queue and its dead letters,
 *                                     queue messages and topic fan-outs not yet done
 *   <dataDir>/artifacts/<sha256>.zip  code artifacts as uploaded, content-addressed
 *   <dataDir>/code/<sha256>/          each artifact extracted once, read-only
 *
 * Files appear under their final name only by rename, so a crash never leaves
 * a half-written zip or a half-extracted folder behind a real name.
 */
import { createHash, randomUUID } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { LAMBDA_ALIAS_NAME, type FunctionSpec } from '../core/index.js';
import type {
  AliasRecord, AsyncCounts, AsyncEventInput, AsyncEventRow, AsyncRetry, DeadLetterInput, DeadLetterRow, FunctionConfig,
  InvocationRow, LogRow, RollupRow, ServiceRecord, Store, VersionRecord,
} from './types.js';
import type {
  QueueCounts, QueueMessageInput, QueueMessageRow, QueueReceive, QueueReceiveResult, TopicDeliveryRow, TopicMessageInput,
} from './types.js';
import { extractZip, readZipEntries, removeTree } from './zip.js';

/** Pending invocation records are written in one transaction at least this often (ms)… */
const FLUSH_INTERVAL_MS = 250;
/** …or as soon as this many are waiting. */
const FLUSH_BATCH_ROWS = 500;
/** If writing keeps failing (disk full), keep at most this many records in memory; older ones are dropped. */
const MAX_PENDING_ROWS = 100_000;
/** Leftover temp files and folders older than this are from a crashed process and are removed at open. */
const STALE_TEMP_MS = 60 * 60 * 1000;
const LATEST = '$LATEST';
const SHA256_HEX = /^[0-9a-f]{64}$/;
const ALIAS_NAME = LAMBDA_ALIAS_NAME;

/**
 * Schema migrations, in order: entry i takes the database from version i to
 * i + 1. Never edit a shipped entry; append a new one.
 */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE artifacts (
    sha256     TEXT PRIMARY KEY,
    size       INTEGER NOT NULL,
    created_at TEXT NOT NULL
  );
  -- last_version: the highest version number ever published, so a number is never reused.
  CREATE TABLE functions (
    name         TEXT PRIMARY KEY,
    last_version INTEGER NOT NULL DEFAULT 0,
    created_at   TEXT NOT NULL
  );
  -- num: 0 for $LATEST, else the version number (for ordering).
  CREATE TABLE versions (
    function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    version       TEXT NOT NULL,
    num           INTEGER NOT NULL,
    config        TEXT NOT NULL,
    code_sha256   TEXT NOT NULL,
    code_size     INTEGER NOT NULL,
    description   TEXT NOT NULL,
    last_modified TEXT NOT NULL,
    PRIMARY KEY (function_name, version)
  );
  CREATE TABLE aliases (
    function_name    TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    function_version TEXT NOT NULL,
    weights          TEXT NOT NULL,
    description      TEXT NOT NULL,
    revision_id      TEXT NOT NULL,
    PRIMARY KEY (function_name, name)
  );
  CREATE TABLE services (
    name        TEXT NOT NULL,
    stage       TEXT NOT NULL,
    deployment  INTEGER NOT NULL,
    routes      TEXT NOT NULL,
    functions   TEXT NOT NULL,
    gateway     TEXT NOT NULL,
    deployed_at TEXT NOT NULL,
    PRIMARY KEY (name, stage)
  );
  CREATE TABLE invocations (
    request_id         TEXT NOT NULL,
    function_name      TEXT NOT NULL,
    version            TEXT NOT NULL,
    start_ms           INTEGER NOT NULL,
    duration_ms        REAL NOT NULL,
    billed_duration_ms INTEGER NOT NULL,
    memory_size        INTEGER NOT NULL,
    max_memory_used_mb REAL,
    init_duration_ms   REAL,
    outcome            TEXT NOT NULL
  );
  CREATE INDEX invocations_function_start ON invocations (function_name, start_ms);
  CREATE INDEX invocations_start ON invocations (start_ms);
  CREATE TABLE logs (
    function_name TEXT NOT NULL,
    request_id    TEXT NOT NULL,
    time_ms       INTEGER NOT NULL,
    text          TEXT NOT NULL
  );
  CREATE INDEX logs_function_time ON logs (function_name, time_ms);
  CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );
  `,
  // 1 → 2: each deploy's function versions, and the history of deployments (rollback).
  `
  ALTER TABLE services ADD COLUMN versions TEXT NOT NULL DEFAULT '{}';
  CREATE TABLE deployments (
    name       TEXT NOT NULL,
    stage      TEXT NOT NULL,
    deployment INTEGER NOT NULL,
    record     TEXT NOT NULL,
    PRIMARY KEY (name, stage, deployment)
  );
  `,
  // 2 → 3: the asynchronous invocation queue and its dead-letter queue (src/events/async-queue.ts).
  // visible_at is when an event is due; a claim sets it to the lease's expiry, so a lease is only a timestamp.
  `
  CREATE TABLE async_events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id    TEXT NOT NULL UNIQUE,
    function_name TEXT NOT NULL,
    qualifier     TEXT,
    payload       TEXT NOT NULL,
    received_ms   INTEGER NOT NULL,
    visible_at    INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    throttles     INTEGER NOT NULL DEFAULT 0,
    lease         TEXT,
    last_response TEXT
  );
  CREATE INDEX async_events_due ON async_events (visible_at, id);
  CREATE INDEX async_events_function ON async_events (function_name);
  CREATE TABLE async_dead_letters (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id    TEXT NOT NULL,
    function_name TEXT NOT NULL,
    qualifier     TEXT,
    payload       TEXT NOT NULL,
    received_ms   INTEGER NOT NULL,
    failed_ms     INTEGER NOT NULL,
    condition     TEXT NOT NULL,
    attempts      INTEGER NOT NULL,
    record        TEXT NOT NULL
  );
  CREATE INDEX async_dead_letters_function ON async_dead_letters (function_name, id);
  `,
  // 3 → 4: queues (src/events/queues.ts) and topic fan-outs not yet done (src/events/topics.ts).
  // As in async_events, visible_at is a timestamp: a receive sets it to when its visibility timeout ends.
  // receipt is the token of the latest receive (NULL until received, and after a move to a dead-letter queue).
  `
  CREATE TABLE queue_messages (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    queue              TEXT NOT NULL,
    message_id         TEXT NOT NULL UNIQUE,
    body               TEXT NOT NULL,
    attributes         TEXT,
    md5_of_body        TEXT NOT NULL,
    md5_of_attributes  TEXT,
    group_id           TEXT,
    sender_id          TEXT NOT NULL,
    sent_ms            INTEGER NOT NULL,
    visible_at         INTEGER NOT NULL,
    receive_count      INTEGER NOT NULL DEFAULT 0,
    first_receive_ms   INTEGER,
    receipt            TEXT,
    expires_at         INTEGER NOT NULL,
    dead_letter_source TEXT
  );
  CREATE INDEX queue_messages_due ON queue_messages (queue, visible_at);
  CREATE INDEX queue_messages_expiry ON queue_messages (queue, expires_at);
  CREATE INDEX queue_messages_group ON queue_messages (queue, group_id) WHERE group_id IS NOT NULL;
  CREATE INDEX queue_messages_dead_letter_source ON queue_messages (dead_letter_source) WHERE dead_letter_source IS NOT NULL;
  CREATE TABLE topic_messages (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id   TEXT NOT NULL UNIQUE,
    topic        TEXT NOT NULL,
    message      TEXT NOT NULL,
    subject      TEXT,
    attributes   TEXT,
    published_ms INTEGER NOT NULL
  );
  CREATE TABLE topic_deliveries (
    message_row      INTEGER NOT NULL REFERENCES topic_messages(id) ON DELETE CASCADE,
    subscription_arn TEXT NOT NULL,
    function_name    TEXT NOT NULL,
    PRIMARY KEY (message_row, subscription_arn)
  );
  `,
];

/** The schema version a migrated database has. */
export const SCHEMA_VERSION = MIGRATIONS.length;

interface VersionDbRow {
  function_name: string;
  version: string;
  config: string;
  code_sha256: string;
  code_size: number;
  description: string;
  last_modified: string;
}

interface AliasDbRow {
  function_name: string;
  name: string;
  function_version: string;
  weights: string;
  description: string;
  revision_id: string;
}

interface ServiceDbRow {
  name: string;
  stage: string;
  deployment: number;
  routes: string;
  functions: string;
  versions: string;
  gateway: string;
  deployed_at: string;
}

interface InvocationDbRow {
  request_id: string;
  function_name: string;
  version: string;
  start_ms: number;
  duration_ms: number;
  billed_duration_ms: number;
  memory_size: number;
  max_memory_used_mb: number | null;
  init_duration_ms: number | null;
  outcome: InvocationRow['outcome'];
}

interface LogDbRow {
  function_name: string;
  request_id: string;
  time_ms: number;
  text: string;
}

interface AsyncEventDbRow {
  id: number;
  request_id: string;
  function_name: string;
  qualifier: string | null;
  payload: string;
  received_ms: number;
  visible_at: number;
  attempts: number;
  throttles: number;
  lease: string | null;
  last_response: string | null;
}

interface DeadLetterDbRow {
  id: number;
  request_id: string;
  function_name: string;
  qualifier: string | null;
  payload: string;
  received_ms: number;
  failed_ms: number;
  condition: string;
  attempts: number;
  record: string;
}

interface QueueMessageDbRow {
  id: number;
  queue: string;
  message_id: string;
  body: string;
  attributes: string | null;
  md5_of_body: string;
  md5_of_attributes: string | null;
  group_id: string | null;
  sender_id: string;
  sent_ms: number;
  visible_at: number;
  receive_count: number;
  first_receive_ms: number | null;
  receipt: string | null;
  expires_at: number;
  dead_letter_source: string | null;
}

interface TopicDeliveryDbRow {
  message_row: number;
  message_id: string;
  topic: string;
  message: string;
  subject: string | null;
  attributes: string | null;
  published_ms: number;
  function_name: string;
  subscription_arn: string;
}

/**
 * Opens (creating when missing) the SQLite store in `dataDir`.
 *
 * - Creates `dataDir` (mode 0700) and its `artifacts/` and `code/` folders.
 * - Opens `<dataDir>/nimbus.db` in WAL mode with foreign keys on and a 5 s
 *   busy timeout, and migrates its schema to the current version.
 * - Removes temp files left by a crashed process (older than an hour).
 *
 * Every method is synchronous and returns deep-frozen objects. Invocation
 * records are buffered and written in batches (every 250 ms or 500 rows);
 * reads flush first, and `close()` flushes, so call it on shutdown or the
 * last ≤ 250 ms of records are lost.
 *
 * Errors: throws when the folder cannot be created, the database cannot be
 * opened, or it was written by a newer Nimbus (its schema version is higher
 * than this code knows).
 */
export function openSqliteStore(dataDir: string): Store {
  return new SqliteStore(resolve(dataDir));
}

class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly artifactsDir: string;
  private readonly codeDir: string;
  private pending: { row: InvocationRow; log?: string }[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  private closed = false;

  private readonly stmt: ReturnType<typeof prepareStatements>;
  private readonly writeBatch: (batch: readonly { row: InvocationRow; log?: string }[]) => void;

  constructor(private readonly dataDir: string) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    this.artifactsDir = join(dataDir, 'artifacts');
    this.codeDir = join(dataDir, 'code');
    mkdirSync(this.artifactsDir, { recursive: true, mode: 0o700 });
    mkdirSync(this.codeDir, { recursive: true, mode: 0o700 });
    removeStaleTemps(this.artifactsDir);
    removeStaleTemps(this.codeDir);

    this.db = new Database(join(dataDir, 'nimbus.db'));
    try {
      this.db.pragma('journal_mode = WAL');
      // NORMAL is durable across application crashes in WAL mode; only a power loss may drop the last commits.
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('foreign_keys = ON');
      this.db.pragma('busy_timeout = 5000');
      migrate(this.db);
    } catch (e) {
      this.db.close();
      throw e;
    }

    this.stmt = prepareStatements(this.db);

    this.writeBatch = this.db.transaction((batch: readonly { row: InvocationRow; log?: string }[]) => {
      for (const { row, log } of batch) {
        this.stmt.insertInvocation.run(row.requestId, row.functionName, row.version, row.startMs, row.durationMs,
          row.billedDurationMs, row.memorySize, row.maxMemoryUsedMB ?? null, row.initDurationMs ?? null, row.outcome);
        if (log !== undefined) this.stmt.insertLog.run(row.functionName, row.requestId, row.startMs, log);
      }
    });
  }

  // ── artifacts ─────────────────────────────────────────────────────────

  putArtifact(zip: Buffer): { sha256: string; size: number } {
    this.assertOpen();
    // Refuse a damaged zip or an unsafe entry name now, at deploy, not at the first invocation.
    readZipEntries(zip);
    const sha256 = createHash('sha256').update(zip).digest('hex');
    const file = this.zipPath(sha256);
    if (!existsSync(file)) {
      const temp = join(this.artifactsDir, `.tmp-${sha256}-${process.pid}-${randomUUID()}.zip`);
      try {
        const fd = openSync(temp, 'wx', 0o444);
        try {
          writeSync(fd, zip);
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
        renameSync(temp, file);
      } catch (e) {
        rmSync(temp, { force: true });
        throw new Error(`cannot store artifact ${sha256}: ${(e as Error).message}`, { cause: e });
      }
    }
    this.stmt.insertArtifact.run(sha256, zip.length, new Date().toISOString());
    return Object.freeze({ sha256, size: zip.length });
  }

  collectArtifacts(beforeMs: number): string[] {
    this.assertOpen();
    const doomed = this.stmt.unusedArtifacts.all(new Date(beforeMs).toISOString()) as string[];
    for (const sha256 of doomed) {
      this.stmt.deleteArtifact.run(sha256);
      removeTree(join(this.codeDir, sha256));
      rmSync(this.zipPath(sha256), { force: true });
    }
    return doomed;
  }

  pruneRecords(beforeMs: number): number {
    this.assertOpen();
    this.flush();
    return this.db.transaction(() => {
      this.stmt.pruneLogs.run(beforeMs);
      return this.stmt.pruneInvocations.run(beforeMs).changes;
    })();
  }

  artifactDir(sha256: string): string {
    this.assertOpen();
    checkSha(sha256);
    const dir = join(this.codeDir, sha256);
    if (existsSync(dir)) return dir;
    const file = this.zipPath(sha256);
    if (!existsSync(file)) throw new Error(`artifact ${sha256} not found: no ${file}`);
    const temp = join(this.codeDir, `.tmp-${sha256}-${process.pid}-${randomUUID()}`);
    try {
      extractZip(readFileSync(file), temp);
      renameSync(temp, dir);
    } catch (e) {
      removeTree(temp);
      // Another process may have extracted the same artifact first: its folder is as good as ours.
      if (existsSync(dir)) return dir;
      throw new Error(`cannot extract artifact ${sha256}: ${(e as Error).message}`, { cause: e });
    }
    return dir;
  }

  hasArtifact(sha256: string): boolean {
    this.assertOpen();
    if (!SHA256_HEX.test(sha256)) return false;
    return this.stmt.hasArtifact.get(sha256) !== undefined && existsSync(this.zipPath(sha256));
  }

  artifactSize(sha256: string): number | undefined {
    if (!this.hasArtifact(sha256)) return undefined;
    return statSync(this.zipPath(sha256)).size;
  }

  private zipPath(sha256: string): string {
    return join(this.artifactsDir, `${sha256}.zip`);
  }

  // ── functions and versions ────────────────────────────────────────────

  putLatest(config: FunctionConfig, codeSha256: string, codeSize: number, description = ''): VersionRecord {
    this.assertOpen();
    // A FunctionSpec may be passed where a FunctionConfig is expected: where the code lives is not configuration.
    const { codeDir: _codeDir, ...rest } = config as FunctionConfig & Partial<Pick<FunctionSpec, 'codeDir'>>;
    const name = rest.name;
    if (typeof name !== 'string' || name === '') throw new Error('putLatest: config.name (the function name) is required');
    const now = new Date().toISOString();
    return this.db.transaction(() => {
      this.stmt.insertFunction.run(name, now);
      this.stmt.upsertVersion.run({
        function_name: name, version: LATEST, num: 0, config: canonicalJson(rest), code_sha256: codeSha256,
        code_size: codeSize, description, last_modified: now,
      });
      return this.version(name, LATEST)!;
    })();
  }

  publishVersion(functionName: string, description?: string): VersionRecord {
    this.assertOpen();
    return this.db.transaction(() => {
      const latest = this.stmt.getVersion.get(functionName, LATEST) as VersionDbRow | undefined;
      if (latest === undefined) throw new Error(`cannot publish a version of ${functionName}: function not found`);
      // Lambda publishes nothing when code and configuration are as in the last version.
      // https://docs.aws.amazon.com/lambda/latest/api/API_PublishVersion.html
      const previous = this.stmt.highestVersion.get(functionName) as VersionDbRow | undefined;
      if (previous !== undefined && previous.code_sha256 === latest.code_sha256 && previous.config === latest.config) {
        return toVersion(previous);
      }
      const num = (this.stmt.lastVersion.get(functionName) as number) + 1;
      this.stmt.setLastVersion.run(num, functionName);
      this.stmt.upsertVersion.run({
        function_name: functionName, version: String(num), num, config: latest.config, code_sha256: latest.code_sha256,
        code_size: latest.code_size, description: description ?? latest.description, last_modified: new Date().toISOString(),
      });
      return this.version(functionName, String(num))!;
    })();
  }

  getVersion(functionName: string, version: string): VersionRecord | undefined {
    this.assertOpen();
    return this.version(functionName, version);
  }

  private version(functionName: string, version: string): VersionRecord | undefined {
    const row = this.stmt.getVersion.get(functionName, version) as VersionDbRow | undefined;
    return row === undefined ? undefined : toVersion(row);
  }

  listVersions(functionName: string): VersionRecord[] {
    this.assertOpen();
    return (this.stmt.listVersions.all(functionName) as VersionDbRow[]).map(toVersion);
  }

  listFunctions(): VersionRecord[] {
    this.assertOpen();
    return (this.stmt.listFunctions.all() as VersionDbRow[]).map(toVersion);
  }

  deleteFunction(functionName: string, version?: string): boolean {
    this.assertOpen();
    if (version === undefined) return this.stmt.deleteFunction.run(functionName).changes > 0;
    if (version === LATEST) {
      throw new Error(`cannot delete ${functionName}:$LATEST on its own: delete the function instead`);
    }
    return this.db.transaction(() => {
      if (this.stmt.getVersion.get(functionName, version) === undefined) return false;
      // Lambda refuses to delete a version an alias routes to.
      for (const alias of this.stmt.listAliases.all(functionName) as AliasDbRow[]) {
        const weights = JSON.parse(alias.weights) as Record<string, number>;
        if (alias.function_version === version || version in weights) {
          throw new Error(`cannot delete version ${version} of ${functionName}: alias ${alias.name} points to it; update or delete the alias first`);
        }
      }
      return this.stmt.deleteVersion.run(functionName, version).changes > 0;
    })();
  }

  // ── aliases ───────────────────────────────────────────────────────────

  putAlias(alias: Omit<AliasRecord, 'revisionId'>): AliasRecord {
    this.assertOpen();
    const { functionName, name, functionVersion } = alias;
    const weights = alias.additionalVersionWeights ?? {};
    const where = `alias ${functionName}:${name}`;
    if (!ALIAS_NAME.test(name) || name === LATEST) {
      throw new Error(`${where}: invalid alias name (1–128 letters, digits, - or _, not only digits)`);
    }
    return this.db.transaction(() => {
      if (this.stmt.getVersion.get(functionName, functionVersion) === undefined) {
        throw new Error(`${where}: version ${functionVersion} of ${functionName} not found`);
      }
      const extra = Object.entries(weights);
      // AliasRoutingConfiguration: one additional published version, weight 0–1.
      // https://docs.aws.amazon.com/lambda/latest/api/API_AliasRoutingConfiguration.html
      if (extra.length > 1) throw new Error(`${where}: at most one additional version can be weighted (got ${extra.length})`);
      for (const [v, w] of extra) {
        if (v === LATEST || functionVersion === LATEST) throw new Error(`${where}: weighted routing needs published versions, not $LATEST`);
        if (v === functionVersion) throw new Error(`${where}: the additional version ${v} is the alias's own version`);
        if (typeof w !== 'number' || !(w >= 0 && w <= 1)) throw new Error(`${where}: weight of version ${v} must be between 0 and 1 (got ${String(w)})`);
        if (this.stmt.getVersion.get(functionName, v) === undefined) throw new Error(`${where}: version ${v} of ${functionName} not found`);
      }
      this.stmt.upsertAlias.run({
        function_name: functionName, name, function_version: functionVersion, weights: canonicalJson(weights),
        description: alias.description ?? '', revision_id: randomUUID(),
      });
      return this.alias(functionName, name)!;
    })();
  }

  getAlias(functionName: string, name: string): AliasRecord | undefined {
    this.assertOpen();
    return this.alias(functionName, name);
  }

  private alias(functionName: string, name: string): AliasRecord | undefined {
    const row = this.stmt.getAlias.get(functionName, name) as AliasDbRow | undefined;
    return row === undefined ? undefined : toAlias(row);
  }

  listAliases(functionName: string): AliasRecord[] {
    this.assertOpen();
    return (this.stmt.listAliases.all(functionName) as AliasDbRow[]).map(toAlias);
  }

  deleteAlias(functionName: string, name: string): boolean {
    this.assertOpen();
    return this.stmt.deleteAlias.run(functionName, name).changes > 0;
  }

  // ── services ──────────────────────────────────────────────────────────

  putService(service: Omit<ServiceRecord, 'deployment' | 'deployedAt'>): ServiceRecord {
    this.assertOpen();
    return this.db.transaction(() => {
      const row = this.stmt.upsertService.get({
        name: service.name, stage: service.stage, routes: JSON.stringify(service.routes),
        functions: canonicalJson(service.functions), versions: canonicalJson(service.versions ?? {}),
        gateway: JSON.stringify(service.gateway), deployed_at: new Date().toISOString(),
      }) as ServiceDbRow;
      const record = toService(row);
      this.stmt.insertDeployment.run(record.name, record.stage, record.deployment, JSON.stringify(record));
      return record;
    })();
  }

  listDeployments(name: string, stage: string): ServiceRecord[] {
    this.assertOpen();
    return (this.stmt.listDeployments.all(name, stage) as string[]).map((r) => deepFreeze(JSON.parse(r) as ServiceRecord));
  }

  getService(name: string, stage: string): ServiceRecord | undefined {
    this.assertOpen();
    const row = this.stmt.getService.get(name, stage) as ServiceDbRow | undefined;
    return row === undefined ? undefined : toService(row);
  }

  listServices(): ServiceRecord[] {
    this.assertOpen();
    return (this.stmt.listServices.all() as ServiceDbRow[]).map(toService);
  }

  deleteService(name: string, stage: string): boolean {
    this.assertOpen();
    return this.db.transaction(() => {
      this.stmt.deleteDeployments.run(name, stage);
      return this.stmt.deleteService.run(name, stage).changes > 0;
    })();
  }

  // ── invocations and logs ──────────────────────────────────────────────

  recordInvocation(row: InvocationRow, log?: string): void {
    this.assertOpen();
    this.pending.push(log === undefined ? { row } : { row, log });
    if (this.pending.length >= FLUSH_BATCH_ROWS) {
      this.flushInBackground();
    } else if (this.flushTimer === undefined) {
      this.flushTimer = setTimeout(() => this.flushInBackground(), FLUSH_INTERVAL_MS);
      // Pending records must not keep the process alive: close() flushes them.
      this.flushTimer.unref();
    }
  }

  invocations(functionName: string | undefined, sinceMs: number, untilMs = Number.MAX_SAFE_INTEGER): InvocationRow[] {
    this.assertOpen();
    this.flush();
    const rows = (functionName === undefined
      ? this.stmt.invocationsAll.all(sinceMs, untilMs)
      : this.stmt.invocationsOf.all(functionName, sinceMs, untilMs)) as InvocationDbRow[];
    return rows.map(toInvocation);
  }

  rollups(functionName: string | undefined, sinceMs: number, untilMs = Number.MAX_SAFE_INTEGER): RollupRow[] {
    this.assertOpen();
    this.flush();
    const rows = (functionName === undefined
      ? this.stmt.rollupsAll.all(sinceMs, untilMs)
      : this.stmt.rollupsOf.all(functionName, sinceMs, untilMs)) as RollupRow[];
    return rows.map((r) => Object.freeze(r));
  }

  logs(functionName: string, sinceMs: number, limit = 10_000): LogRow[] {
    this.assertOpen();
    this.flush();
    return (this.stmt.logs.all(functionName, sinceMs, limit) as LogDbRow[]).map((r) => Object.freeze({
      functionName: r.function_name, requestId: r.request_id, timeMs: r.time_ms, text: r.text,
    }));
  }

  /** Writes every pending record in one transaction. Throws if the write fails; the records stay pending. */
  private flush(): void {
    if (this.flushTimer !== undefined) {
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
    }
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    try {
      this.writeBatch(batch);
    } catch (e) {
      this.pending = batch.concat(this.pending);
      if (this.pending.length > MAX_PENDING_ROWS) this.pending.splice(0, this.pending.length - MAX_PENDING_ROWS);
      throw e;
    }
  }

  /** A flush nobody waits for: a failure becomes a process warning and a retry later, never an uncaught exception. */
  private flushInBackground(): void {
    if (this.closed) return;
    try {
      this.flush();
    } catch (e) {
      process.emitWarning(`nimbus store: cannot write ${this.pending.length} invocation records, will retry: ${(e as Error).message}`);
      if (this.flushTimer === undefined) {
        this.flushTimer = setTimeout(() => this.flushInBackground(), FLUSH_INTERVAL_MS);
        this.flushTimer.unref();
      }
    }
  }

  // ── asynchronous invocation queue ─────────────────────────────────────

  enqueueEvent(event: AsyncEventInput): AsyncEventRow {
    this.assertOpen();
    const row = this.stmt.insertEvent.get({
      request_id: event.requestId, function_name: event.functionName, qualifier: event.qualifier ?? null,
      payload: event.payload, received_ms: event.receivedMs, visible_at: event.visibleAtMs ?? event.receivedMs,
    }) as AsyncEventDbRow | undefined;
    // ON CONFLICT DO NOTHING returns no row: the request id is queued already.
    return toAsyncEvent(row ?? this.stmt.getEventByRequest.get(event.requestId) as AsyncEventDbRow);
  }

  claimEvents(lease: string, nowMs: number, leaseMs: number, limit: number): AsyncEventRow[] {
    this.assertOpen();
    if (limit <= 0) return [];
    const rows = this.stmt.claimEvents.all({ lease, now: nowMs, until: nowMs + leaseMs, limit }) as AsyncEventDbRow[];
    // The oldest due are claimed; RETURNING gives no order, and all now share one lease expiry: queue order.
    return rows.sort((a, b) => a.id - b.id).map(toAsyncEvent);
  }

  completeEvent(id: number, lease: string): boolean {
    this.assertOpen();
    return this.stmt.completeEvent.run(id, lease).changes > 0;
  }

  retryEvent(id: number, lease: string, retry: AsyncRetry): boolean {
    this.assertOpen();
    return this.stmt.retryEvent.run({
      id, lease, visible_at: retry.visibleAtMs, attempts: retry.attempts, throttles: retry.throttles,
      last_response: retry.lastResponse ?? null,
    }).changes > 0;
  }

  deadLetterEvent(id: number, lease: string, dead: DeadLetterInput): DeadLetterRow | undefined {
    this.assertOpen();
    return this.db.transaction(() => {
      const row = this.stmt.insertDeadLetter.get({
        id, lease, failed_ms: dead.failedMs, condition: dead.condition, attempts: dead.attempts, record: dead.record,
      }) as DeadLetterDbRow | undefined;
      if (row === undefined) return undefined;
      this.stmt.completeEvent.run(id, lease);
      return toDeadLetter(row);
    })();
  }

  listDeadLetters(functionName?: string, limit = 10_000): DeadLetterRow[] {
    this.assertOpen();
    const rows = (functionName === undefined
      ? this.stmt.deadLettersAll.all(limit)
      : this.stmt.deadLettersOf.all(functionName, limit)) as DeadLetterDbRow[];
    return rows.map(toDeadLetter);
  }

  redriveDeadLetter(id: number, nowMs: number): AsyncEventRow | undefined {
    this.assertOpen();
    return this.db.transaction(() => {
      const dead = this.stmt.getDeadLetter.get(id) as DeadLetterDbRow | undefined;
      if (dead === undefined) return undefined;
      this.stmt.insertEvent.get({
        request_id: dead.request_id, function_name: dead.function_name, qualifier: dead.qualifier,
        payload: dead.payload, received_ms: nowMs, visible_at: nowMs,
      });
      this.stmt.deleteDeadLetter.run(id);
      return toAsyncEvent(this.stmt.getEventByRequest.get(dead.request_id) as AsyncEventDbRow);
    })();
  }

  deleteDeadLetter(id: number): boolean {
    this.assertOpen();
    return this.stmt.deleteDeadLetter.run(id).changes > 0;
  }

  nextEventDueMs(): number | undefined {
    this.assertOpen();
    return (this.stmt.nextEventDue.get() as number | null) ?? undefined;
  }

  releaseLeases(nowMs: number): number {
    this.assertOpen();
    return this.stmt.releaseLeases.run({ now: nowMs }).changes;
  }

  asyncCounts(nowMs: number, functionName?: string): AsyncCounts {
    this.assertOpen();
    const r = (functionName === undefined
      ? this.stmt.asyncCountsAll.get({ now: nowMs })
      : this.stmt.asyncCountsOf.get({ now: nowMs, fn: functionName })) as {
        pending: number | null; leased: number | null; dead: number; oldest: number | null;
      };
    const counts: { -readonly [K in keyof AsyncCounts]: AsyncCounts[K] } = {
      pending: r.pending ?? 0, leased: r.leased ?? 0, deadLetters: r.dead,
    };
    if (r.oldest !== null) counts.oldestReceivedMs = r.oldest;
    return Object.freeze(counts);
  }

  // ── queues (SQS) and topics (SNS) ─────────────────────────────────────

  sendQueueMessage(m: QueueMessageInput): QueueMessageRow {
    this.assertOpen();
    const row = this.stmt.insertQueueMessage.get({
      queue: m.queue, message_id: m.messageId, body: m.body, attributes: m.attributes ?? null, md5_of_body: m.md5OfBody,
      md5_of_attributes: m.md5OfMessageAttributes ?? null, group_id: m.groupId ?? null, sender_id: m.senderId,
      sent_ms: m.sentMs, visible_at: m.visibleAtMs, expires_at: m.expiresAtMs,
    }) as QueueMessageDbRow | undefined;
    // ON CONFLICT DO NOTHING returns no row: the message id is stored already.
    return toQueueMessage(row ?? this.stmt.getQueueMessage.get(m.messageId) as QueueMessageDbRow);
  }

  receiveQueueMessages(queue: string, r: QueueReceive): QueueReceiveResult {
    this.assertOpen();
    return this.db.transaction((): QueueReceiveResult => {
      const expired = this.stmt.expireQueueMessages.run({ queue, now: r.nowMs }).changes;
      const deadLettered = r.redrive === undefined ? 0 : this.stmt.deadLetterQueueMessages.run({
        queue, now: r.nowMs, dlq: r.redrive.deadLetterQueue, max: r.redrive.maxReceiveCount, retention: r.redrive.deadLetterRetentionMs,
      }).changes;
      const rows = r.limit <= 0 ? [] : this.stmt.receiveQueueMessages.all({
        queue, now: r.nowMs, until: r.nowMs + r.visibilityMs, lease: r.lease, limit: r.limit,
        max_bytes: r.maxBytes ?? Number.MAX_SAFE_INTEGER,
      }) as QueueMessageDbRow[];
      // RETURNING gives no order: queue order (FIFO order within a group).
      return { received: rows.sort((a, b) => a.id - b.id).map(toQueueMessage), deadLettered, expired };
    }).immediate();
  }

  deleteQueueMessages(queue: string, entries: ReadonlyArray<{ readonly id: number; readonly lease: string }>): number {
    this.assertOpen();
    if (entries.length === 0) return 0;
    return this.db.transaction(() => {
      let n = 0;
      for (const e of entries) n += this.stmt.deleteQueueMessage.run(e.id, queue, e.lease).changes;
      return n;
    })();
  }

  changeQueueMessageVisibility(queue: string, id: number, lease: string, visibleAtMs: number): boolean {
    this.assertOpen();
    return this.stmt.changeQueueMessageVisibility.run(visibleAtMs, id, queue, lease).changes > 0;
  }

  nextQueueMessageDueMs(queue: string): number | undefined {
    this.assertOpen();
    return (this.stmt.nextQueueMessageDue.get(queue) as number | null) ?? undefined;
  }

  releaseQueueLeases(nowMs: number): number {
    this.assertOpen();
    return this.stmt.releaseQueueLeases.run({ now: nowMs }).changes;
  }

  purgeQueue(queue: string): number {
    this.assertOpen();
    return this.stmt.purgeQueue.run(queue).changes;
  }

  queueCounts(queue: string, nowMs: number): QueueCounts {
    this.assertOpen();
    const r = this.stmt.queueCounts.get({ queue, now: nowMs }) as {
      visible: number | null; in_flight: number | null; delayed: number | null; oldest: number | null; dead: number;
    };
    const counts: { -readonly [K in keyof QueueCounts]: QueueCounts[K] } = {
      visible: r.visible ?? 0, inFlight: r.in_flight ?? 0, delayed: r.delayed ?? 0, deadLettered: r.dead,
    };
    if (r.oldest !== null) counts.oldestSentMs = r.oldest;
    return Object.freeze(counts);
  }

  publishTopicMessage(m: TopicMessageInput, deliveries: ReadonlyArray<{ readonly functionName: string; readonly subscriptionArn: string }>): TopicDeliveryRow[] {
    this.assertOpen();
    return this.db.transaction(() => {
      const id = this.stmt.insertTopicMessage.get({
        message_id: m.messageId, topic: m.topic, message: m.message, subject: m.subject ?? null,
        attributes: m.attributes ?? null, published_ms: m.publishedMs,
      }) as number | undefined;
      // Already recorded (a second call with the same message id): its fan-outs were recorded with it.
      if (id !== undefined) {
        for (const d of deliveries) this.stmt.insertTopicDelivery.run(id, d.subscriptionArn, d.functionName);
      }
      return (this.stmt.topicDeliveriesOf.all(m.messageId) as TopicDeliveryDbRow[]).map(toTopicDelivery);
    })();
  }

  pendingTopicDeliveries(limit = 10_000): TopicDeliveryRow[] {
    this.assertOpen();
    return (this.stmt.pendingTopicDeliveries.all(limit) as TopicDeliveryDbRow[]).map(toTopicDelivery);
  }

  completeTopicDelivery(messageRow: number, subscriptionArn: string): boolean {
    this.assertOpen();
    return this.db.transaction(() => {
      if (this.stmt.deleteTopicDelivery.run(messageRow, subscriptionArn).changes === 0) return false;
      this.stmt.deleteFannedOutTopicMessage.run(messageRow, messageRow);
      return true;
    })();
  }

  pendingTopicDeliveryCount(topic?: string): number {
    this.assertOpen();
    return (topic === undefined
      ? this.stmt.topicDeliveryCountAll.get()
      : this.stmt.topicDeliveryCountOf.get(topic)) as number;
  }

  // ── settings ──────────────────────────────────────────────────────────

  getSetting(key: string): string | undefined {
    this.assertOpen();
    return this.stmt.getSetting.get(key) as string | undefined;
  }

  setSetting(key: string, value: string): void {
    this.assertOpen();
    this.stmt.setSetting.run(key, value);
  }

  close(): void {
    if (this.closed) return;
    try {
      this.flush();
    } finally {
      this.closed = true;
      this.db.close();
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new Error(`the store at ${this.dataDir} is closed`);
  }
}

/** Every statement the store runs, prepared once at open. */
function prepareStatements(db: Database.Database) {
  return {
    insertArtifact: db.prepare('INSERT OR IGNORE INTO artifacts (sha256, size, created_at) VALUES (?, ?, ?)'),
    hasArtifact: db.prepare('SELECT 1 FROM artifacts WHERE sha256 = ?').pluck(),
    unusedArtifacts: db.prepare('SELECT sha256 FROM artifacts WHERE created_at < ? AND sha256 NOT IN (SELECT code_sha256 FROM versions)').pluck(),
    deleteArtifact: db.prepare('DELETE FROM artifacts WHERE sha256 = ?'),
    pruneLogs: db.prepare('DELETE FROM logs WHERE time_ms < ?'),
    pruneInvocations: db.prepare('DELETE FROM invocations WHERE start_ms < ?'),
    insertFunction: db.prepare('INSERT OR IGNORE INTO functions (name, last_version, created_at) VALUES (?, 0, ?)'),
    lastVersion: db.prepare('SELECT last_version FROM functions WHERE name = ?').pluck(),
    setLastVersion: db.prepare('UPDATE functions SET last_version = ? WHERE name = ?'),
    deleteFunction: db.prepare('DELETE FROM functions WHERE name = ?'),
    upsertVersion: db.prepare(`INSERT INTO versions (function_name, version, num, config, code_sha256, code_size, description, last_modified)
      VALUES (@function_name, @version, @num, @config, @code_sha256, @code_size, @description, @last_modified)
      ON CONFLICT (function_name, version) DO UPDATE SET config = excluded.config, code_sha256 = excluded.code_sha256,
      code_size = excluded.code_size, description = excluded.description, last_modified = excluded.last_modified`),
    getVersion: db.prepare('SELECT * FROM versions WHERE function_name = ? AND version = ?'),
    highestVersion: db.prepare('SELECT * FROM versions WHERE function_name = ? AND num > 0 ORDER BY num DESC LIMIT 1'),
    listVersions: db.prepare('SELECT * FROM versions WHERE function_name = ? ORDER BY num'),
    listFunctions: db.prepare('SELECT * FROM versions WHERE num = 0 ORDER BY function_name'),
    deleteVersion: db.prepare('DELETE FROM versions WHERE function_name = ? AND version = ?'),
    upsertAlias: db.prepare(`INSERT INTO aliases (function_name, name, function_version, weights, description, revision_id)
      VALUES (@function_name, @name, @function_version, @weights, @description, @revision_id)
      ON CONFLICT (function_name, name) DO UPDATE SET function_version = excluded.function_version,
      weights = excluded.weights, description = excluded.description, revision_id = excluded.revision_id`),
    getAlias: db.prepare('SELECT * FROM aliases WHERE function_name = ? AND name = ?'),
    listAliases: db.prepare('SELECT * FROM aliases WHERE function_name = ? ORDER BY name'),
    deleteAlias: db.prepare('DELETE FROM aliases WHERE function_name = ? AND name = ?'),
    // A removed service's deployment numbers go on from its history's highest, so a number is never reused.
    upsertService: db.prepare(`INSERT INTO services (name, stage, deployment, routes, functions, versions, gateway, deployed_at)
      VALUES (@name, @stage, 1 + (SELECT COALESCE(MAX(deployment), 0) FROM deployments WHERE name = @name AND stage = @stage),
        @routes, @functions, @versions, @gateway, @deployed_at)
      ON CONFLICT (name, stage) DO UPDATE SET deployment = deployment + 1, routes = excluded.routes,
      functions = excluded.functions, versions = excluded.versions, gateway = excluded.gateway, deployed_at = excluded.deployed_at
      RETURNING *`),
    insertDeployment: db.prepare('INSERT INTO deployments (name, stage, deployment, record) VALUES (?, ?, ?, ?)'),
    listDeployments: db.prepare('SELECT record FROM deployments WHERE name = ? AND stage = ? ORDER BY deployment').pluck(),
    deleteDeployments: db.prepare('DELETE FROM deployments WHERE name = ? AND stage = ?'),
    getService: db.prepare('SELECT * FROM services WHERE name = ? AND stage = ?'),
    listServices: db.prepare('SELECT * FROM services ORDER BY name, stage'),
    deleteService: db.prepare('DELETE FROM services WHERE name = ? AND stage = ?'),
    insertInvocation: db.prepare(`INSERT INTO invocations (request_id, function_name, version, start_ms, duration_ms,
      billed_duration_ms, memory_size, max_memory_used_mb, init_duration_ms, outcome)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    insertLog: db.prepare('INSERT INTO logs (function_name, request_id, time_ms, text) VALUES (?, ?, ?, ?)'),
    invocationsOf: db.prepare('SELECT * FROM invocations WHERE function_name = ? AND start_ms >= ? AND start_ms < ? ORDER BY start_ms'),
    invocationsAll: db.prepare('SELECT * FROM invocations WHERE start_ms >= ? AND start_ms < ? ORDER BY start_ms'),
    rollupsOf: db.prepare(rollupsSql('function_name = ? AND ')),
    rollupsAll: db.prepare(rollupsSql('')),
    logs: db.prepare('SELECT * FROM logs WHERE function_name = ? AND time_ms >= ? ORDER BY time_ms, rowid LIMIT ?'),
    getSetting: db.prepare('SELECT value FROM settings WHERE key = ?').pluck(),
    setSetting: db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
    insertEvent: db.prepare(`INSERT INTO async_events (request_id, function_name, qualifier, payload, received_ms, visible_at)
      VALUES (@request_id, @function_name, @qualifier, @payload, @received_ms, @visible_at)
      ON CONFLICT (request_id) DO NOTHING RETURNING *`),
    getEventByRequest: db.prepare('SELECT * FROM async_events WHERE request_id = ?'),
    claimEvents: db.prepare(`UPDATE async_events SET lease = @lease, visible_at = @until
      WHERE id IN (SELECT id FROM async_events WHERE visible_at <= @now ORDER BY visible_at, id LIMIT @limit)
      RETURNING *`),
    completeEvent: db.prepare('DELETE FROM async_events WHERE id = ? AND lease = ?'),
    retryEvent: db.prepare(`UPDATE async_events SET lease = NULL, visible_at = @visible_at, attempts = @attempts,
      throttles = @throttles, last_response = COALESCE(@last_response, last_response) WHERE id = @id AND lease = @lease`),
    insertDeadLetter: db.prepare(`INSERT INTO async_dead_letters (request_id, function_name, qualifier, payload, received_ms,
        failed_ms, condition, attempts, record)
      SELECT request_id, function_name, qualifier, payload, received_ms, @failed_ms, @condition, @attempts, @record
      FROM async_events WHERE id = @id AND lease = @lease
      RETURNING *`),
    getDeadLetter: db.prepare('SELECT * FROM async_dead_letters WHERE id = ?'),
    deleteDeadLetter: db.prepare('DELETE FROM async_dead_letters WHERE id = ?'),
    deadLettersAll: db.prepare('SELECT * FROM async_dead_letters ORDER BY id LIMIT ?'),
    deadLettersOf: db.prepare('SELECT * FROM async_dead_letters WHERE function_name = ? ORDER BY id LIMIT ?'),
    nextEventDue: db.prepare('SELECT MIN(visible_at) FROM async_events').pluck(),
    releaseLeases: db.prepare('UPDATE async_events SET visible_at = @now WHERE lease IS NOT NULL AND visible_at > @now'),
    asyncCountsAll: db.prepare(asyncCountsSql('')),
    asyncCountsOf: db.prepare(asyncCountsSql('function_name = @fn')),
    insertQueueMessage: db.prepare(`INSERT INTO queue_messages (queue, message_id, body, attributes, md5_of_body, md5_of_attributes,
        group_id, sender_id, sent_ms, visible_at, expires_at)
      VALUES (@queue, @message_id, @body, @attributes, @md5_of_body, @md5_of_attributes, @group_id, @sender_id, @sent_ms,
        @visible_at, @expires_at)
      ON CONFLICT (message_id) DO NOTHING RETURNING *`),
    getQueueMessage: db.prepare('SELECT * FROM queue_messages WHERE message_id = ?'),
    expireQueueMessages: db.prepare('DELETE FROM queue_messages WHERE queue = @queue AND expires_at <= @now'),
    // SQS moves a message on the receive after its maxReceiveCount-th: its count and first receive start again there.
    deadLetterQueueMessages: db.prepare(`UPDATE queue_messages SET queue = @dlq, receive_count = 0, first_receive_ms = NULL,
        receipt = NULL, visible_at = @now, expires_at = sent_ms + @retention, dead_letter_source = @queue
      WHERE queue = @queue AND visible_at <= @now AND receive_count >= @max`),
    // A FIFO message group with a message in flight is blocked until that message is deleted or visible again.
    receiveQueueMessages: db.prepare(`UPDATE queue_messages SET receipt = @lease, visible_at = @until,
        receive_count = receive_count + 1, first_receive_ms = COALESCE(first_receive_ms, @now)
      WHERE id IN (SELECT id FROM (
          SELECT id, size, SUM(size) OVER (ORDER BY id ROWS UNBOUNDED PRECEDING) AS running FROM (
            SELECT m.id, length(CAST(m.body AS BLOB)) + COALESCE(length(CAST(m.attributes AS BLOB)), 0) AS size
            FROM queue_messages m
            WHERE m.queue = @queue AND m.visible_at <= @now AND m.expires_at > @now
              AND (m.group_id IS NULL OR NOT EXISTS (SELECT 1 FROM queue_messages o
                WHERE o.queue = @queue AND o.group_id = m.group_id AND o.receipt IS NOT NULL AND o.visible_at > @now))
            ORDER BY m.id LIMIT @limit))
        WHERE running <= @max_bytes OR running = size)
      RETURNING *`),
    deleteQueueMessage: db.prepare('DELETE FROM queue_messages WHERE id = ? AND queue = ? AND receipt = ?'),
    changeQueueMessageVisibility: db.prepare('UPDATE queue_messages SET visible_at = ? WHERE id = ? AND queue = ? AND receipt = ?'),
    nextQueueMessageDue: db.prepare('SELECT MIN(visible_at) FROM queue_messages WHERE queue = ?').pluck(),
    releaseQueueLeases: db.prepare('UPDATE queue_messages SET visible_at = @now WHERE receipt IS NOT NULL AND visible_at > @now'),
    purgeQueue: db.prepare('DELETE FROM queue_messages WHERE queue = ?'),
    queueCounts: db.prepare(`SELECT
        (SELECT SUM(visible_at <= @now) FROM queue_messages WHERE queue = @queue AND expires_at > @now) AS visible,
        (SELECT SUM(receipt IS NOT NULL AND visible_at > @now) FROM queue_messages WHERE queue = @queue AND expires_at > @now) AS in_flight,
        (SELECT SUM(receipt IS NULL AND visible_at > @now) FROM queue_messages WHERE queue = @queue AND expires_at > @now) AS delayed,
        (SELECT MIN(sent_ms) FROM queue_messages WHERE queue = @queue AND expires_at > @now) AS oldest,
        (SELECT COUNT(*) FROM queue_messages WHERE dead_letter_source = @queue AND expires_at > @now) AS dead`),
    insertTopicMessage: db.prepare(`INSERT INTO topic_messages (message_id, topic, message, subject, attributes, published_ms)
      VALUES (@message_id, @topic, @message, @subject, @attributes, @published_ms)
      ON CONFLICT (message_id) DO NOTHING RETURNING id`).pluck(),
    insertTopicDelivery: db.prepare('INSERT OR IGNORE INTO topic_deliveries (message_row, subscription_arn, function_name) VALUES (?, ?, ?)'),
    pendingTopicDeliveries: db.prepare(`SELECT d.message_row, d.subscription_arn, d.function_name, m.message_id, m.topic, m.message,
        m.subject, m.attributes, m.published_ms
      FROM topic_deliveries d JOIN topic_messages m ON m.id = d.message_row
      ORDER BY d.message_row, d.subscription_arn LIMIT ?`),
    topicDeliveriesOf: db.prepare(`SELECT d.message_row, d.subscription_arn, d.function_name, m.message_id, m.topic, m.message,
        m.subject, m.attributes, m.published_ms
      FROM topic_deliveries d JOIN topic_messages m ON m.id = d.message_row
      WHERE m.message_id = ? ORDER BY d.subscription_arn`),
    deleteTopicDelivery: db.prepare('DELETE FROM topic_deliveries WHERE message_row = ? AND subscription_arn = ?'),
    deleteFannedOutTopicMessage: db.prepare(`DELETE FROM topic_messages
      WHERE id = ? AND NOT EXISTS (SELECT 1 FROM topic_deliveries WHERE message_row = ?)`),
    topicDeliveryCountAll: db.prepare('SELECT COUNT(*) FROM topic_deliveries').pluck(),
    topicDeliveryCountOf: db.prepare(`SELECT COUNT(*) FROM topic_deliveries d JOIN topic_messages m ON m.id = d.message_row
      WHERE m.topic = ?`).pluck(),
  };
}

/**
 * Per-minute roll-ups by function and version (Store.rollups), columns named
 * as RollupRow's fields. `ran` and `errors` follow telemetry/metrics.ts
 * (Lambda's Invocations and Errors): throttled and rejected requests did not
 * run; error, timeout, oom, crashed and init_error are errors. The range on
 * start_ms uses the invocations_function_start / invocations_start indexes.
 */
function rollupsSql(functionFilter: string): string {
  const ran = "outcome NOT IN ('throttled', 'rejected')";
  return `SELECT function_name AS functionName, version,
      CAST(start_ms / 60000 AS INTEGER) * 60000 AS minuteMs,
      SUM(${ran}) AS invocations,
      SUM(outcome IN ('error', 'timeout', 'oom', 'crashed', 'init_error')) AS errors,
      SUM(outcome = 'throttled') AS throttles,
      SUM(${ran} AND init_duration_ms IS NOT NULL) AS coldStarts,
      COALESCE(SUM(CASE WHEN ${ran} THEN duration_ms END), 0) AS durationSumMs,
      COALESCE(MAX(CASE WHEN ${ran} THEN duration_ms END), 0) AS durationMaxMs,
      COALESCE(SUM(CASE WHEN ${ran} THEN billed_duration_ms END), 0) AS billedMsSum,
      COALESCE(SUM(CASE WHEN ${ran} THEN billed_duration_ms * memory_size END), 0) / 1024000.0 AS gbSeconds
    FROM invocations WHERE ${functionFilter}start_ms >= ? AND start_ms < ?
    GROUP BY function_name, version, minuteMs
    ORDER BY minuteMs, function_name, version`;
}

/**
 * Sizes of the asynchronous queue (Store.asyncCounts); parameters @now and,
 * when filtered, @fn. An event is leased while its claim's lease has not
 * expired (a lease is only visible_at in the future).
 */
function asyncCountsSql(functionFilter: string): string {
  const events = functionFilter ? `WHERE ${functionFilter}` : '';
  return `SELECT
      (SELECT SUM(NOT (lease IS NOT NULL AND visible_at > @now)) FROM async_events ${events}) AS pending,
      (SELECT SUM(lease IS NOT NULL AND visible_at > @now) FROM async_events ${events}) AS leased,
      (SELECT COUNT(*) FROM async_dead_letters ${events}) AS dead,
      (SELECT MIN(received_ms) FROM async_events ${events}) AS oldest`;
}

/** Brings the schema up to the newest version, one migration per transaction. */
function migrate(db: Database.Database): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
  const step = db.transaction((): boolean => {
    let current = db.prepare('SELECT version FROM schema_version').pluck().get() as number | undefined;
    if (current === undefined) {
      db.prepare('INSERT INTO schema_version (version) VALUES (0)').run();
      current = 0;
    }
    if (current > MIGRATIONS.length) {
      throw new Error(`the database's schema version ${current} is newer than this Nimbus knows (${MIGRATIONS.length}): upgrade Nimbus`);
    }
    if (current === MIGRATIONS.length) return false;
    db.exec(MIGRATIONS[current]);
    db.prepare('UPDATE schema_version SET version = ?').run(current + 1);
    return true;
  });
  // IMMEDIATE: two processes opening the same new database do not both migrate it.
  while (step.immediate()) { /* next migration */ }
}

function removeStaleTemps(dir: string): void {
  const cutoff = Date.now() - STALE_TEMP_MS;
  for (const name of readdirSync(dir)) {
    if (!name.startsWith('.tmp-')) continue;
    const path = join(dir, name);
    try {
      if (statSync(path).mtimeMs < cutoff) removeTree(path);
    } catch {
      // Gone already, or another process's: not ours to fail on.
    }
  }
}

function checkSha(sha256: string): void {
  if (!SHA256_HEX.test(sha256)) throw new Error(`invalid artifact hash ${JSON.stringify(sha256)}: expected 64 lower-case hex digits`);
}

/** JSON with object keys sorted, so equal configurations give equal text whatever their key order. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

function toVersion(r: VersionDbRow): VersionRecord {
  return deepFreeze({
    functionName: r.function_name,
    version: r.version,
    config: JSON.parse(r.config) as FunctionConfig,
    codeSha256: r.code_sha256,
    codeSize: r.code_size,
    description: r.description,
    lastModified: r.last_modified,
  });
}

function toAlias(r: AliasDbRow): AliasRecord {
  return deepFreeze({
    functionName: r.function_name,
    name: r.name,
    functionVersion: r.function_version,
    additionalVersionWeights: JSON.parse(r.weights) as Record<string, number>,
    description: r.description,
    revisionId: r.revision_id,
  });
}

function toService(r: ServiceDbRow): ServiceRecord {
  return deepFreeze({
    name: r.name,
    stage: r.stage,
    deployment: r.deployment,
    routes: JSON.parse(r.routes) as ServiceRecord['routes'],
    functions: JSON.parse(r.functions) as Record<string, string>,
    versions: JSON.parse(r.versions) as Record<string, string>,
    gateway: JSON.parse(r.gateway) as Record<string, unknown>,
    deployedAt: r.deployed_at,
  });
}

function toInvocation(r: InvocationDbRow): InvocationRow {
  const row: { -readonly [K in keyof InvocationRow]: InvocationRow[K] } = {
    requestId: r.request_id,
    functionName: r.function_name,
    version: r.version,
    startMs: r.start_ms,
    durationMs: r.duration_ms,
    billedDurationMs: r.billed_duration_ms,
    memorySize: r.memory_size,
    outcome: r.outcome,
  };
  if (r.max_memory_used_mb !== null) row.maxMemoryUsedMB = r.max_memory_used_mb;
  if (r.init_duration_ms !== null) row.initDurationMs = r.init_duration_ms;
  return Object.freeze(row);
}

function toAsyncEvent(r: AsyncEventDbRow): AsyncEventRow {
  const row: { -readonly [K in keyof AsyncEventRow]: AsyncEventRow[K] } = {
    id: r.id,
    requestId: r.request_id,
    functionName: r.function_name,
    payload: r.payload,
    receivedMs: r.received_ms,
    visibleAtMs: r.visible_at,
    attempts: r.attempts,
    throttles: r.throttles,
  };
  if (r.qualifier !== null) row.qualifier = r.qualifier;
  if (r.lease !== null) row.lease = r.lease;
  if (r.last_response !== null) row.lastResponse = r.last_response;
  return Object.freeze(row);
}

function toDeadLetter(r: DeadLetterDbRow): DeadLetterRow {
  const row: { -readonly [K in keyof DeadLetterRow]: DeadLetterRow[K] } = {
    id: r.id,
    requestId: r.request_id,
    functionName: r.function_name,
    payload: r.payload,
    receivedMs: r.received_ms,
    failedMs: r.failed_ms,
    condition: r.condition,
    attempts: r.attempts,
    record: r.record,
  };
  if (r.qualifier !== null) row.qualifier = r.qualifier;
  return Object.freeze(row);
}

function toQueueMessage(r: QueueMessageDbRow): QueueMessageRow {
  const row: { -readonly [K in keyof QueueMessageRow]: QueueMessageRow[K] } = {
    id: r.id,
    queue: r.queue,
    messageId: r.message_id,
    body: r.body,
    md5OfBody: r.md5_of_body,
    senderId: r.sender_id,
    sentMs: r.sent_ms,
    visibleAtMs: r.visible_at,
    receiveCount: r.receive_count,
    expiresAtMs: r.expires_at,
  };
  if (r.attributes !== null) row.attributes = r.attributes;
  if (r.md5_of_attributes !== null) row.md5OfMessageAttributes = r.md5_of_attributes;
  if (r.group_id !== null) row.groupId = r.group_id;
  if (r.first_receive_ms !== null) row.firstReceiveMs = r.first_receive_ms;
  if (r.receipt !== null) row.receipt = r.receipt;
  if (r.dead_letter_source !== null) row.deadLetterSource = r.dead_letter_source;
  return Object.freeze(row);
}

function toTopicDelivery(r: TopicDeliveryDbRow): TopicDeliveryRow {
  const row: { -readonly [K in keyof TopicDeliveryRow]: TopicDeliveryRow[K] } = {
    messageRow: r.message_row,
    messageId: r.message_id,
    topic: r.topic,
    message: r.message,
    publishedMs: r.published_ms,
    functionName: r.function_name,
    subscriptionArn: r.subscription_arn,
  };
  if (r.subject !== null) row.subject = r.subject;
  if (r.attributes !== null) row.attributes = r.attributes;
  return Object.freeze(row);
}
