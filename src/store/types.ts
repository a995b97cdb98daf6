/**
 * What `nimbus server` keeps: deployed services, functions and their
 * immutable numbered versions, aliases, code artifacts (content-hashed),
 * invocation records and logs. The embedded default is SQLite
 * (better-sqlite3, sqlite.ts); a PostgreSQL implementation of the same
 * interface can join when several nodes share state.
 *
 * Versions follow Lambda: `$LATEST` is the mutable head; publishing makes an
 * immutable version numbered 1, 2, 3, … per function; an alias points at a
 * version, optionally with weighted routing to a second one.
 * https://docs.aws.amazon.com/lambda/latest/dg/configuration-versions.html
 * https://docs.aws.amazon.com/lambda/latest/dg/configuration-aliases.html
 */
import type { FunctionSpec, InvocationRecord, RouteSpec } from '../core/index.js';

/** The configuration of a function version: a FunctionSpec without where its code lives. */
export type FunctionConfig = Omit<FunctionSpec, 'codeDir'>;

/** One published (or $LATEST) version of a function. */
export interface VersionRecord {
  readonly functionName: string;
  /** `$LATEST` or `1`, `2`, … */
  readonly version: string;
  readonly config: FunctionConfig;
  /** SHA-256 (hex) of the code artifact (a zip). */
  readonly codeSha256: string;
  readonly codeSize: number;
  readonly description: string;
  /** ISO time. */
  readonly lastModified: string;
}

/** An alias: a name for a version, with optional weighted routing to a second one (AliasRoutingConfiguration). */
export interface AliasRecord {
  readonly functionName: string;
  readonly name: string;
  readonly functionVersion: string;
  /** Version → weight (0–1) of invocations sent to it instead of `functionVersion`. */
  readonly additionalVersionWeights: Readonly<Record<string, number>>;
  readonly description: string;
  readonly revisionId: string;
}

/** A deployed service: its routes and settings, as deployed together. */
export interface ServiceRecord {
  readonly name: string;
  readonly stage: string;
  /** Increases with every deploy of the service. */
  readonly deployment: number;
  readonly routes: readonly RouteSpec[];
  /** Function names of the service, by their key in serverless.yml. */
  readonly functions: Readonly<Record<string, string>>;
  /** The version of each function (by key) the deployment's routes invoke. */
  readonly versions: Readonly<Record<string, string>>;
  /** `provider.httpApi.cors` etc.: the ServiceSpec fields the gateway needs, as JSON. */
  readonly gateway: Readonly<Record<string, unknown>>;
  readonly deployedAt: string;
}

/** One invocation, for metrics and cost (the shared record of src/core). */
export type InvocationRow = InvocationRecord;

/**
 * One function version's invocations in one minute, as `Store.rollups`
 * computes them (CloudWatch's 1-minute period, Sum/Maximum statistics). A
 * row exists only for a minute with at least one record, throttled or not.
 */
export interface RollupRow {
  readonly functionName: string;
  readonly version: string;
  /** Start of the minute, epoch ms (a multiple of 60,000). Records fall in the minute they started in. */
  readonly minuteMs: number;
  /** Records that ran (successful or function error); throttled and rejected excluded, as Lambda's Invocations. */
  readonly invocations: number;
  /** Outcomes error, timeout, oom, crashed or init_error. */
  readonly errors: number;
  /** Outcome throttled. */
  readonly throttles: number;
  /** Invocations with an init duration. */
  readonly coldStarts: number;
  /** Sum and maximum of the durations of the invocations that ran, ms (0 when none ran). */
  readonly durationSumMs: number;
  readonly durationMaxMs: number;
  /** Sum of billed durations, ms. */
  readonly billedMsSum: number;
  /** Σ billed ms × memory MB / 1024 / 1000. */
  readonly gbSeconds: number;
}

/** One invocation's log text. */
export interface LogRow {
  readonly functionName: string;
  readonly requestId: string;
  /** Epoch ms. */
  readonly timeMs: number;
  readonly text: string;
}

/**
 * One event of the asynchronous invocation queue (an Invoke with
 * InvocationType `Event`), as the store keeps it until it is delivered or
 * dead-lettered. A lease is only a timestamp: a claimed event's
 * `visibleAtMs` is when its lease expires, after which it is due again (so
 * the events of a process killed mid-delivery are delivered again: at least
 * once). https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html
 */
export interface AsyncEventRow {
  /** Queue position (increasing with every enqueue). */
  readonly id: number;
  /** The request id every attempt uses, so a function can de-duplicate. Unique in the queue. */
  readonly requestId: string;
  readonly functionName: string;
  /** Version or alias, when the Invoke named one. */
  readonly qualifier?: string;
  /** The event: JSON text. */
  readonly payload: string;
  /** Epoch ms when the event was accepted (its age counts from here). */
  readonly receivedMs: number;
  /** Epoch ms when it is next due; while leased, when the lease expires. */
  readonly visibleAtMs: number;
  /** Invocations that ran and ended in a function error (they count against maximumRetryAttempts). */
  readonly attempts: number;
  /** Throttles and platform failures so far (they do not count as attempts). */
  readonly throttles: number;
  /** The token of the claim that last leased it; undefined when never claimed or since released. */
  readonly lease?: string;
  /** JSON of the last attempt's response (the AsyncQueue's own format), when there was one. */
  readonly lastResponse?: string;
}

/** What `Store.enqueueEvent` takes. */
export interface AsyncEventInput {
  readonly requestId: string;
  readonly functionName: string;
  readonly qualifier?: string;
  readonly payload: string;
  /** Epoch ms. */
  readonly receivedMs: number;
  /** When it is first due (epoch ms); default `receivedMs`. */
  readonly visibleAtMs?: number;
}

/** What `Store.retryEvent` sets: when the event is due again and its counters. */
export interface AsyncRetry {
  /** Epoch ms of the next attempt. */
  readonly visibleAtMs: number;
  readonly attempts: number;
  readonly throttles: number;
  readonly lastResponse?: string;
}

/** An event that failed every attempt (or grew too old) and had no on-failure destination to go to. */
export interface DeadLetterRow {
  /** Dead-letter id (what redrive takes). */
  readonly id: number;
  readonly requestId: string;
  readonly functionName: string;
  readonly qualifier?: string;
  readonly payload: string;
  readonly receivedMs: number;
  /** Epoch ms when it was dead-lettered. */
  readonly failedMs: number;
  /** Lambda's condition: `RetriesExhausted` or `EventAgeExceeded`. */
  readonly condition: string;
  /** Invocations that ran. */
  readonly attempts: number;
  /** The invocation record (JSON text), as an on-failure destination would have received it. */
  readonly record: string;
}

/** What `Store.deadLetterEvent` records besides the event itself. */
export interface DeadLetterInput {
  readonly failedMs: number;
  readonly condition: string;
  /** Invocations that ran, the last one included. */
  readonly attempts: number;
  readonly record: string;
}

/** Sizes of the asynchronous queue, for metrics. */
export interface AsyncCounts {
  /** Events waiting (due or not yet), not leased. */
  readonly pending: number;
  /** Events leased by a claim whose lease has not expired. */
  readonly leased: number;
  readonly deadLetters: number;
  /** `receivedMs` of the oldest event in the queue (leased or not); undefined when empty. */
  readonly oldestReceivedMs?: number;
}

/**
 * One message of a Nimbus-managed queue (src/events/queues.ts), with SQS's
 * semantics. As with the asynchronous queue, a lease is only a timestamp: a
 * received message's `visibleAtMs` is when its visibility timeout ends, after
 * which it can be received again (so the messages of a process killed
 * mid-batch are delivered again: at least once).
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html
 */
export interface QueueMessageRow {
  /** Queue position (increasing with every send; FIFO order). */
  readonly id: number;
  readonly queue: string;
  /** SQS's MessageId (a UUID), kept when the message moves to a dead-letter queue. Unique. */
  readonly messageId: string;
  readonly body: string;
  /** The message attributes as JSON text (the broker's own format), when the message has any. */
  readonly attributes?: string;
  readonly md5OfBody: string;
  readonly md5OfMessageAttributes?: string;
  /** FIFO queues: the MessageGroupId. */
  readonly groupId?: string;
  readonly senderId: string;
  /** Epoch ms the message was sent (SentTimestamp; retention counts from here, in a dead-letter queue too). */
  readonly sentMs: number;
  /** Epoch ms it can next be received: after a delay, or when a receive's visibility timeout ends. */
  readonly visibleAtMs: number;
  /** ApproximateReceiveCount: receives so far (set back to 0 when it moves to a dead-letter queue). */
  readonly receiveCount: number;
  /** ApproximateFirstReceiveTimestamp, once received. */
  readonly firstReceiveMs?: number;
  /** The token of the receive that last took it (part of its receipt handle); undefined when never received. */
  readonly receipt?: string;
  /** Epoch ms when the retention period ends and the message is deleted unread. */
  readonly expiresAtMs: number;
  /** Set in a dead-letter queue: the queue the message came from. */
  readonly deadLetterSource?: string;
}

/** What `Store.sendQueueMessage` takes. */
export interface QueueMessageInput {
  readonly queue: string;
  readonly messageId: string;
  readonly body: string;
  readonly attributes?: string;
  readonly md5OfBody: string;
  readonly md5OfMessageAttributes?: string;
  readonly groupId?: string;
  readonly senderId: string;
  readonly sentMs: number;
  /** `sentMs` + the delay. */
  readonly visibleAtMs: number;
  /** `sentMs` + the retention period. */
  readonly expiresAtMs: number;
}

/** The receive settings of one queue (`Store.receiveQueueMessages`). */
export interface QueueReceive {
  /** The claim token the received messages carry (their receipt handles include it). */
  readonly lease: string;
  readonly nowMs: number;
  /** The visibility timeout, ms. */
  readonly visibilityMs: number;
  /** Most messages to receive. */
  readonly limit: number;
  /** Most bytes of bodies and attributes (JSON text) to receive, in queue order; the first message is taken whatever its size. Default: no limit. */
  readonly maxBytes?: number;
  /**
   * The RedrivePolicy: a message already received `maxReceiveCount` times
   * moves to `deadLetterQueue` instead of being received again; its retention
   * there is `deadLetterRetentionMs` from when it was first sent.
   */
  readonly redrive?: { readonly deadLetterQueue: string; readonly maxReceiveCount: number; readonly deadLetterRetentionMs: number };
}

/** What one receive did. */
export interface QueueReceiveResult {
  /** The messages received, in queue order. */
  readonly received: QueueMessageRow[];
  /** Messages moved to the dead-letter queue by this receive. */
  readonly deadLettered: number;
  /** Messages deleted because their retention period had ended. */
  readonly expired: number;
}

/** Sizes of one queue (SQS's ApproximateNumberOfMessages… metrics). */
export interface QueueCounts {
  /** Can be received now (ApproximateNumberOfMessagesVisible). */
  readonly visible: number;
  /** Received and not deleted, visibility timeout running (ApproximateNumberOfMessagesNotVisible). */
  readonly inFlight: number;
  /** Sent with a delay that has not ended (ApproximateNumberOfMessagesDelayed). */
  readonly delayed: number;
  /** Messages that came from this queue and are now in its dead-letter queue. */
  readonly deadLettered: number;
  /** `sentMs` of the oldest message (ApproximateAgeOfOldestMessage); undefined when empty. */
  readonly oldestSentMs?: number;
}

/** One publish to a topic (src/events/topics.ts), kept until it is fanned out to every subscription it matched. */
export interface TopicMessageInput {
  /** SNS's MessageId (a UUID): the same in every subscription's event, and after a restart. Unique. */
  readonly messageId: string;
  readonly topic: string;
  readonly message: string;
  readonly subject?: string;
  /** The message attributes as JSON text (the broker's own format), when it has any. */
  readonly attributes?: string;
  /** Epoch ms. */
  readonly publishedMs: number;
}

/** One fan-out not yet done: a published message and one subscription it matched. */
export interface TopicDeliveryRow extends TopicMessageInput {
  /** The message's row (what `completeTopicDelivery` takes). */
  readonly messageRow: number;
  readonly functionName: string;
  readonly subscriptionArn: string;
}

/** The persistence interface. All methods are synchronous for SQLite; a networked store wraps them. */
export interface Store {
  /** Code artifacts: stores the zip under its SHA-256 (idempotent); returns the hash. */
  putArtifact(zip: Buffer): { sha256: string; size: number };
  /** The folder the artifact is extracted to (read-only code, one per hash), extracting it on first use. */
  artifactDir(sha256: string): string;
  hasArtifact(sha256: string): boolean;
  /**
   * Deletes the artifacts no version refers to that were stored before
   * `beforeMs` (epoch ms; a fresh upload waits for its deploy), zip and
   * extracted code; returns their hashes.
   */
  collectArtifacts(beforeMs: number): string[];
  /** Deletes invocation records and logs that started before `beforeMs` (epoch ms); returns how many records went. */
  pruneRecords(beforeMs: number): number;
  /** Bytes of a stored artifact's zip, or undefined when there is none. */
  artifactSize(sha256: string): number | undefined;

  /** Creates or replaces `$LATEST` of a function. */
  putLatest(config: FunctionConfig, codeSha256: string, codeSize: number, description?: string): VersionRecord;
  /** Publishes `$LATEST` as the next version number (returns the existing version when the code and config did not change, as Lambda does). */
  publishVersion(functionName: string, description?: string): VersionRecord;
  getVersion(functionName: string, version: string): VersionRecord | undefined;
  listVersions(functionName: string): VersionRecord[];
  /** `$LATEST` of every function. */
  listFunctions(): VersionRecord[];
  /** Deletes a function with its versions and aliases (or one version when given). */
  deleteFunction(functionName: string, version?: string): boolean;

  putAlias(alias: Omit<AliasRecord, 'revisionId'>): AliasRecord;
  getAlias(functionName: string, name: string): AliasRecord | undefined;
  listAliases(functionName: string): AliasRecord[];
  deleteAlias(functionName: string, name: string): boolean;

  /** Replaces a service's record (a deploy activates routes and code together). */
  putService(service: Omit<ServiceRecord, 'deployment' | 'deployedAt'>): ServiceRecord;
  getService(name: string, stage: string): ServiceRecord | undefined;
  listServices(): ServiceRecord[];
  /** Removes a service and its deployment history (its functions are deleted on their own). */
  deleteService(name: string, stage: string): boolean;
  /** Every deployment of a service, oldest first (what rollback chooses from); kept until the service is removed. */
  listDeployments(name: string, stage: string): ServiceRecord[];

  recordInvocation(row: InvocationRow, log?: string): void;
  invocations(functionName: string | undefined, sinceMs: number, untilMs?: number): InvocationRow[];
  /**
   * Per-minute roll-ups of the invocation records that started in
   * [sinceMs, untilMs) (epoch ms; untilMs default: no end), of one function
   * or all, grouped by function, version and minute, ordered by minute,
   * function, version. Computed in SQL; pending records are written first.
   */
  rollups(functionName: string | undefined, sinceMs: number, untilMs?: number): RollupRow[];
  logs(functionName: string, sinceMs: number, limit?: number): LogRow[];

  // ── asynchronous invocation queue ─────────────────────────────────────

  /**
   * Adds an event to the asynchronous queue, committed before it returns
   * (so an Invoke may answer 202 after it). Idempotent on `requestId`: a
   * second call with the same id returns the queued event unchanged.
   */
  enqueueEvent(event: AsyncEventInput): AsyncEventRow;
  /**
   * Leases up to `limit` events due at `nowMs` (oldest due first) until
   * `nowMs + leaseMs`, under the claim token `lease`, in one statement.
   */
  claimEvents(lease: string, nowMs: number, leaseMs: number, limit: number): AsyncEventRow[];
  /** Removes a delivered event; false when `lease` no longer holds it (another claim took it over). */
  completeEvent(id: number, lease: string): boolean;
  /** Releases a leased event to be due again at `retry.visibleAtMs` with new counters; false when `lease` no longer holds it. */
  retryEvent(id: number, lease: string, retry: AsyncRetry): boolean;
  /** Moves a leased event to the dead-letter queue, in one transaction; undefined when `lease` no longer holds it. */
  deadLetterEvent(id: number, lease: string, dead: DeadLetterInput): DeadLetterRow | undefined;
  /** Dead letters, oldest first, of one function or all. */
  listDeadLetters(functionName?: string, limit?: number): DeadLetterRow[];
  /**
   * Puts a dead letter back on the queue with the same request id, as a new
   * event received at `nowMs` (its age and attempts start again); removes
   * the dead letter. Undefined when there is no such dead letter.
   */
  redriveDeadLetter(id: number, nowMs: number): AsyncEventRow | undefined;
  /** Removes a dead letter for good; false when there is none. */
  deleteDeadLetter(id: number): boolean;
  /** The earliest `visibleAtMs` in the queue (a lease expiry counts), or undefined when it is empty. */
  nextEventDueMs(): number | undefined;
  /**
   * Makes every leased event due at `nowMs`; returns how many. Only for the
   * one process that owns the data directory, at start: the leases it finds
   * are a dead process's.
   */
  releaseLeases(nowMs: number): number;
  /** Queue sizes at `nowMs`, of one function or all. */
  asyncCounts(nowMs: number, functionName?: string): AsyncCounts;

  // ── queues (SQS) and topics (SNS) ─────────────────────────────────────

  /**
   * Adds a message to a queue, committed before it returns (so a send may
   * answer after it). Idempotent on `messageId`: a second call with the same
   * id returns the stored message unchanged.
   */
  sendQueueMessage(message: QueueMessageInput): QueueMessageRow;
  /**
   * One receive, in one transaction: deletes the queue's messages whose
   * retention has ended, moves those received `maxReceiveCount` times to the
   * dead-letter queue (when `redrive` is given), then takes up to `limit`
   * visible messages in queue order, hiding each for `visibilityMs` under
   * `lease`, counting the receive and setting its first-receive time. A
   * message of a FIFO group that has a message in flight is not taken.
   */
  receiveQueueMessages(queue: string, receive: QueueReceive): QueueReceiveResult;
  /** Deletes received messages, each by id and the lease of its latest receive; returns how many were deleted (a stale lease deletes nothing, as SQS). */
  deleteQueueMessages(queue: string, entries: ReadonlyArray<{ readonly id: number; readonly lease: string }>): number;
  /** Sets when a received message becomes visible again (ChangeMessageVisibility); false when `lease` is not its latest receive's. */
  changeQueueMessageVisibility(queue: string, id: number, lease: string, visibleAtMs: number): boolean;
  /** The earliest `visibleAtMs` of the queue's messages (a delay or a visibility timeout ending), or undefined when it is empty. */
  nextQueueMessageDueMs(queue: string): number | undefined;
  /** Makes every received message of every queue visible at `nowMs`; returns how many. Only for the one process that owns the data directory, at start. */
  releaseQueueLeases(nowMs: number): number;
  /** Deletes every message of a queue (PurgeQueue); returns how many. */
  purgeQueue(queue: string): number;
  /** Sizes of one queue at `nowMs` (expired messages not counted). */
  queueCounts(queue: string, nowMs: number): QueueCounts;
  /**
   * Records a publish and the subscriptions it fans out to, in one
   * transaction, before any fan-out; returns its fan-outs to do. Idempotent
   * on `messageId` (a second call returns what is left of the first's).
   */
  publishTopicMessage(message: TopicMessageInput, deliveries: ReadonlyArray<{ readonly functionName: string; readonly subscriptionArn: string }>): TopicDeliveryRow[];
  /** Fan-outs not yet done, oldest publish first (what a restart delivers). */
  pendingTopicDeliveries(limit?: number): TopicDeliveryRow[];
  /** Marks one fan-out done; the publish is removed with its last one. False when it was done already. */
  completeTopicDelivery(messageRow: number, subscriptionArn: string): boolean;
  /** Fan-outs not yet done, of one topic or all. */
  pendingTopicDeliveryCount(topic?: string): number;

  /** Settings kept across restarts (e.g. the admin token's hash). */
  getSetting(key: string): string | undefined;
  setSetting(key: string, value: string): void;

  close(): void;
}
