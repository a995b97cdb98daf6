/**
 * Queues with Amazon SQS's semantics, and the event source mappings that
 * feed them to functions as Lambda's SQS poller does.
 *
 *   sendMessage ──► Store (queue_messages, committed) ──► receive: hidden for the visibility timeout
 *                                                           │
 *   poller (one per mapping): gather ≤ batchSize within maximumBatchingWindow ──► invoke (synchronous)
 *        success ──► delete the batch (ReportBatchItemFailures: all but the failed ones)
 *        function error ──► nothing: the batch is visible again when its visibility timeout ends
 *        throttled ──► the same batch again after a growing wait, while its visibility timeout runs
 *   a message received maxReceiveCount times moves to the dead-letter queue on its next receive
 *
 * Behaviour copied from AWS:
 * - SQS (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html,
 *   https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html,
 *   https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-message-metadata.html,
 *   https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html):
 *   a message (body and attributes together) is at most 256 KiB (262,144
 *   bytes) and has at most 10 attributes; a received message is hidden for the
 *   visibility timeout and is visible again unless it is deleted, each receive
 *   counting in ApproximateReceiveCount and giving a new receipt handle (only
 *   the latest deletes); after `maxReceiveCount` receives the next receive
 *   moves it to the dead-letter queue (same MessageId; its retention there
 *   counts from when it was first sent); a message is deleted unread when the
 *   retention period ends; a delay hides a new message for 0–900 s; a FIFO
 *   queue delivers each message group in order, one batch of a group at a time.
 * - Lambda (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html,
 *   https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html):
 *   the SQS event; the batch is deleted when the function succeeds; on a
 *   function error every message of it is visible again after the visibility
 *   timeout; throttles back off and retry the batch until its visibility
 *   timeout ends; with `ReportBatchItemFailures` the function returns
 *   `{ batchItemFailures: [{ itemIdentifier: messageId }] }` and only those
 *   stay — a null or empty list, or an object without it, is a complete
 *   success; an itemIdentifier that is null, empty, not a string, or names no
 *   message of the batch fails the whole batch.
 *
 * Durability: a send is committed before it returns; a receive's visibility
 * is a stored timestamp, so after `kill -9` every received, undeleted
 * message is visible again when its timeout ends (at once with
 * `reclaimOnStart`): delivery is at least once, with the same messageId.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { InvocationResult, QueueEventSpec, QueueSpec } from '../core/index.js';
import type { QueueCounts, QueueMessageRow, Store } from '../store/index.js';
import { asyncDisposition } from './async-queue.js';

import { ACCOUNT_ID } from '../core/index.js';
export { ACCOUNT_ID };

/**
 * SQS's and Lambda's limits, inclusive ranges in seconds unless named otherwise.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html
 * https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html
 */
export const SQS_LIMITS = Object.freeze({
  /** Body and message attributes (names, types and values) together: 256 KiB. */
  messageBytes: 262_144,
  messageAttributes: 10,
  visibilityTimeout: Object.freeze([0, 43_200] as const),
  delaySeconds: Object.freeze([0, 900] as const),
  messageRetentionPeriod: Object.freeze([60, 1_209_600] as const),
  maxReceiveCount: Object.freeze([1, 1_000] as const),
  /** Event source mapping BatchSize: standard queues 1–10,000, FIFO queues 1–10. */
  batchSize: Object.freeze([1, 10_000] as const),
  fifoBatchSize: 10,
  maximumBatchingWindow: Object.freeze([0, 300] as const),
  /** ReceiveMessage's MaxNumberOfMessages. */
  receiveMessages: Object.freeze([1, 10] as const),
});

/**
 * The bodies and attributes of one batch are kept under 5 MiB, so that the
 * SQS event (with its per-record fields and JSON escaping) stays under
 * Lambda's 6 MB limit on a synchronous invocation's payload.
 */
const BATCH_PAYLOAD_BYTES = 5 * 1024 * 1024;

/**
 * An error of a queue or topic operation that the caller made (an unknown
 * queue, a message over the limit, a bad attribute). `code` is AWS's error
 * code for the case (SQS: `QueueDoesNotExist`, `InvalidParameterValue`,
 * `MissingParameter`, `ReceiptHandleIsInvalid`; SNS: `NotFound`,
 * `InvalidParameter`), `status` the HTTP status AWS answers with.
 */
export class EventSourceError extends Error {
  readonly fault = 'user' as const;

  constructor(readonly code: string, message: string, readonly status = 400) {
    super(message);
    this.name = 'EventSourceError';
  }
}

/**
 * One message attribute as SQS's SendMessage and SNS's Publish take it:
 * `DataType` is `String`, `Number` or `Binary` (SNS also `String.Array`),
 * optionally with a custom label (`Number.float`); `StringValue` for
 * String and Number, `BinaryValue` (bytes, or their base64) for Binary.
 */
export interface MessageAttributeValue {
  readonly DataType: string;
  readonly StringValue?: string;
  readonly BinaryValue?: Uint8Array | string;
}

/** An attribute as Nimbus keeps it (binary values in base64), in the order given. */
export interface StoredAttribute {
  readonly name: string;
  readonly dataType: string;
  readonly stringValue?: string;
  readonly binaryValue?: string;
}

/** One record of Lambda's SQS event. https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html */
export interface SqsRecord {
  readonly messageId: string;
  readonly receiptHandle: string;
  readonly body: string;
  readonly attributes: {
    readonly ApproximateReceiveCount: string;
    readonly SentTimestamp: string;
    readonly SequenceNumber?: string;
    readonly MessageGroupId?: string;
    readonly SenderId: string;
    readonly ApproximateFirstReceiveTimestamp: string;
    readonly DeadLetterQueueSourceArn?: string;
  };
  readonly messageAttributes: Record<string, {
    readonly stringValue?: string;
    readonly binaryValue?: string;
    readonly stringListValues: string[];
    readonly binaryListValues: string[];
    readonly dataType: string;
  }>;
  readonly md5OfBody: string;
  /** Null when the message has no attributes. */
  readonly md5OfMessageAttributes: string | null;
  readonly eventSource: 'aws:sqs';
  readonly eventSourceARN: string;
  readonly awsRegion: string;
}

/** Lambda's SQS event. */
export interface SqsEvent {
  readonly Records: SqsRecord[];
}

/** What `sendMessage` takes besides the body (SendMessage's parameters). */
export interface SendMessageOptions {
  readonly messageAttributes?: Readonly<Record<string, MessageAttributeValue>>;
  /** 0–900 s; default the queue's `delaySeconds`. Not allowed on a FIFO queue (its delay is the queue's). */
  readonly delaySeconds?: number;
  /** Required on a FIFO queue, not allowed on a standard one. */
  readonly messageGroupId?: string;
  /**
   * FIFO queues: a second send with the same id within 5 minutes is accepted
   * but not queued again (SQS's deduplication interval). Nimbus remembers the
   * ids in memory: a restart forgets them.
   */
  readonly messageDeduplicationId?: string;
  /** The SenderId attribute (an IAM user or role id on AWS). Default the account id. */
  readonly senderId?: string;
}

/** SendMessage's answer. */
export interface SendMessageResult {
  readonly messageId: string;
  readonly md5OfBody: string;
  readonly md5OfMessageAttributes?: string;
  /** FIFO queues: the message's SequenceNumber. */
  readonly sequenceNumber?: string;
}

/** One message as ReceiveMessage answers it (for the CLI and the control API). */
export interface ReceivedMessage {
  readonly MessageId: string;
  readonly ReceiptHandle: string;
  readonly MD5OfBody: string;
  readonly Body: string;
  readonly Attributes: Readonly<Record<string, string>>;
  readonly MD5OfMessageAttributes?: string;
  readonly MessageAttributes?: Readonly<Record<string, MessageAttributeValue>>;
}

/**
 * One event source mapping: a QueueEventSpec with the function it invokes
 * (its Lambda name, not its serverless.yml key).
 */
export interface QueueMapping extends Omit<QueueEventSpec, 'functionKey'> {
  readonly functionName: string;
  /** The version or alias to invoke; undefined: `$LATEST`. */
  readonly qualifier?: string;
  /** Most batches of this mapping invoked at once (Lambda's ScalingConfig MaximumConcurrency). Default the broker's. */
  readonly maximumConcurrency?: number;
}

/** Invokes a function synchronously (RequestResponse) with the SQS event; must resolve (a rejection is a platform failure). */
export type QueueInvoke = (functionName: string, payload: string, qualifier?: string) => Promise<InvocationResult>;

export interface QueueBrokerOptions {
  readonly store: Store;
  readonly invoke: QueueInvoke;
  /** The region in ARNs and in `awsRegion`. Default `us-east-1`. */
  readonly region?: string;
  /** Epoch ms. Default Date.now. Timers run in real time; every idle wait is capped by `pollIntervalMs`. */
  readonly now?: () => number;
  /** Longest sleep of an idle poller (ms), for messages other processes send and delays that end. Default 1000. */
  readonly pollIntervalMs?: number;
  /** Backoff of a throttled batch (and its poller): from `initialMs`, doubling, at most `maxMs`. Default 1 s … 60 s. */
  readonly throttleBackoff?: { readonly initialMs: number; readonly maxMs: number };
  /** Batches of one mapping invoked at once, unless the mapping says. Default 5 (Lambda starts with five pollers). */
  readonly maximumConcurrency?: number;
  /**
   * At start(), make every received message visible at once. Only for the
   * one process that owns the data directory: the receives it finds are a
   * dead process's.
   */
  readonly reclaimOnStart?: boolean;
  /** Failures of the broker itself (a store write failed). Default: process warnings. */
  readonly onError?: (message: string, error: unknown) => void;
}

/** Counters since the broker was made, and the store's sizes, of one queue. */
export interface QueueStats extends QueueCounts {
  readonly queue: string;
  readonly arn: string;
  readonly fifo: boolean;
  readonly deadLetterQueue?: string;
  readonly sent: number;
  /** Receives of a message (by pollers and ReceiveMessage). */
  readonly received: number;
  readonly deleted: number;
  /** Messages this broker moved to the dead-letter queue. */
  readonly movedToDeadLetterQueue: number;
  /** Messages deleted unread at the end of the retention period. */
  readonly expired: number;
}

/** One event source mapping and what its poller did since the broker was made. */
export interface QueueMappingStatus {
  /** A stable id of the mapping (Lambda's UUID), from the queue and function. */
  readonly uuid: string;
  readonly queue: string;
  readonly eventSourceArn: string;
  readonly functionName: string;
  readonly qualifier?: string;
  readonly enabled: boolean;
  readonly batchSize: number;
  readonly maximumBatchingWindow: number;
  readonly reportBatchItemFailures: boolean;
  /** Batches being invoked now. */
  readonly inFlight: number;
  readonly invocations: number;
  /** Batches that failed whole (function error, or an invalid partial-batch response). */
  readonly failedBatches: number;
  /** Batches of which the function reported some messages failed. */
  readonly partialBatches: number;
  readonly throttles: number;
}

/** Makes a UUID-formatted id from text (stable: the same text gives the same id). */
export function stableUuid(text: string): string {
  const h = createHash('sha256').update(text).digest('hex');
  // Version 5-style layout (name-based), from SHA-256 instead of SHA-1.
  const variant = ((parseInt(h[16], 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** MD5 (hex) of a message body, as SQS's MD5OfBody: of its UTF-8 bytes. */
export function md5OfBody(body: string): string {
  return createHash('md5').update(body, 'utf8').digest('hex');
}

/**
 * SQS's MD5OfMessageAttributes: over the attributes sorted by name, each as
 * name, data type (each a 4-byte big-endian length and UTF-8 bytes), a
 * transport type byte (1 String/Number, 2 Binary) and the value (length and
 * bytes). Undefined when there are none.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-message-metadata.html#sqs-attributes-md5-message-digest-calculation
 */
export function md5OfMessageAttributes(attributes: readonly StoredAttribute[]): string | undefined {
  if (attributes.length === 0) return undefined;
  const hash = createHash('md5');
  const put = (bytes: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    hash.update(length);
    hash.update(bytes);
  };
  for (const a of [...attributes].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0))) {
    put(Buffer.from(a.name, 'utf8'));
    put(Buffer.from(a.dataType, 'utf8'));
    if (a.binaryValue !== undefined) {
      hash.update(Buffer.from([2]));
      put(Buffer.from(a.binaryValue, 'base64'));
    } else {
      hash.update(Buffer.from([1]));
      put(Buffer.from(a.stringValue ?? '', 'utf8'));
    }
  }
  return hash.digest('hex');
}

const ATTRIBUTE_NAME = /^[A-Za-z0-9_.-]{1,256}$/;
const DATA_TYPE = /^(String|Number|Binary)(\.[^\s]{1,200})?$/;
const SNS_DATA_TYPE = /^(String\.Array|String|Number|Binary)(\.[^\s]{1,200})?$/;
const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

/**
 * Checks and normalises message attributes (SQS's rules, which SNS shares):
 * names of letters, digits, `_`, `-` and `.` (1–256, not starting with
 * `AWS.` or `Amazon.`, no leading, trailing or double period); a known data
 * type; a value of the type (a Number's a decimal number, a String.Array's a
 * JSON array). Returns them and their size in bytes (names, types and values).
 *
 * Errors: EventSourceError `InvalidParameterValue` naming the attribute and what is wrong.
 */
export function normaliseAttributes(
  attributes: Readonly<Record<string, MessageAttributeValue>> | undefined, service: 'SQS' | 'SNS',
): { attributes: StoredAttribute[]; bytes: number } {
  const out: StoredAttribute[] = [];
  let bytes = 0;
  if (attributes === undefined) return { attributes: out, bytes };
  const code = service === 'SQS' ? 'InvalidParameterValue' : 'InvalidParameter';
  const bad = (name: string, why: string) => new EventSourceError(code, `message attribute ${JSON.stringify(name)}: ${why}`);
  const names = Object.keys(attributes);
  if (service === 'SQS' && names.length > SQS_LIMITS.messageAttributes) {
    throw new EventSourceError(code, `a message has at most ${SQS_LIMITS.messageAttributes} attributes (got ${names.length})`);
  }
  for (const name of names) {
    const a = attributes[name];
    if (!ATTRIBUTE_NAME.test(name) || /^(aws|amazon)\./i.test(name) || name.startsWith('.') || name.endsWith('.') || name.includes('..')) {
      throw bad(name, 'invalid name: 1–256 letters, digits, _, - and ., not starting with AWS. or Amazon., no leading, trailing or double period');
    }
    if (a === null || typeof a !== 'object' || typeof a.DataType !== 'string') throw bad(name, 'needs a DataType');
    const types = service === 'SQS' ? 'String, Number or Binary' : 'String, String.Array, Number or Binary';
    if (!(service === 'SQS' ? DATA_TYPE : SNS_DATA_TYPE).test(a.DataType)) {
      throw bad(name, `DataType ${JSON.stringify(a.DataType)} is not ${types} (optionally with a .label)`);
    }
    let stored: StoredAttribute;
    if (a.DataType.startsWith('Binary')) {
      const v = a.BinaryValue;
      const b64 = typeof v === 'string' ? v : v instanceof Uint8Array ? Buffer.from(v).toString('base64') : undefined;
      if (b64 === undefined || b64 === '') throw bad(name, 'a Binary attribute needs a non-empty BinaryValue');
      stored = { name, dataType: a.DataType, binaryValue: b64 };
      bytes += Buffer.from(b64, 'base64').length;
    } else {
      const v = a.StringValue;
      if (typeof v !== 'string' || v === '') throw bad(name, `a ${a.DataType} attribute needs a non-empty StringValue`);
      if (a.DataType.startsWith('Number') && !NUMBER.test(v.trim())) throw bad(name, `${JSON.stringify(v)} is not a number`);
      if (a.DataType.startsWith('String.Array')) {
        let parsed: unknown;
        try { parsed = JSON.parse(v); } catch { parsed = undefined; }
        if (!Array.isArray(parsed)) throw bad(name, `a String.Array value must be a JSON array (got ${JSON.stringify(v)})`);
      }
      stored = { name, dataType: a.DataType, stringValue: v };
      bytes += Buffer.byteLength(v, 'utf8');
    }
    bytes += Buffer.byteLength(name, 'utf8') + Buffer.byteLength(a.DataType, 'utf8');
    out.push(stored);
  }
  return { attributes: out, bytes };
}

/** The ARN of a queue. */
export function queueArn(region: string, queue: string): string {
  return `arn:aws:sqs:${region}:${ACCOUNT_ID}:${queue}`;
}

/** The SQS event's `messageAttributes` of stored attributes. */
function eventAttributes(attributes: readonly StoredAttribute[]): SqsRecord['messageAttributes'] {
  const out: Record<string, SqsRecord['messageAttributes'][string]> = {};
  for (const a of attributes) {
    out[a.name] = {
      ...(a.stringValue !== undefined ? { stringValue: a.stringValue } : {}),
      ...(a.binaryValue !== undefined ? { binaryValue: a.binaryValue } : {}),
      stringListValues: [], binaryListValues: [], dataType: a.dataType,
    };
  }
  return out;
}

function readAttributes(text: string | undefined): StoredAttribute[] {
  return text === undefined ? [] : JSON.parse(text) as StoredAttribute[];
}

/** The receipt handle of a received message: its row and the token of the receive, opaque to the caller. */
function receiptHandle(row: QueueMessageRow): string {
  return Buffer.from(`${row.id}:${row.receipt ?? ''}`, 'utf8').toString('base64');
}

function parseReceiptHandle(handle: string): { id: number; lease: string } {
  const m = typeof handle === 'string' ? /^(\d+):(.+)$/s.exec(Buffer.from(handle, 'base64').toString('utf8')) : null;
  if (!m) throw new EventSourceError('ReceiptHandleIsInvalid', `the receipt handle ${JSON.stringify(handle)} is not valid`);
  return { id: Number(m[1]), lease: m[2] };
}

/** FIFO SequenceNumber of a row: its queue position, 20 digits as SQS's. */
function sequenceNumber(row: { id: number }): string {
  return String(row.id).padStart(20, '0');
}

/**
 * The SQS event record of a received message, field for field as Lambda's
 * (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html, "Example
 * standard queue message event" and the FIFO one): attribute values are
 * strings; FIFO messages add SequenceNumber and MessageGroupId; a message in
 * a dead-letter queue adds DeadLetterQueueSourceArn.
 */
export function sqsRecord(row: QueueMessageRow, region: string): SqsRecord {
  const attributes: Record<string, string> = {
    ApproximateReceiveCount: String(row.receiveCount),
    SentTimestamp: String(row.sentMs),
  };
  if (row.groupId !== undefined) {
    attributes.SequenceNumber = sequenceNumber(row);
    attributes.MessageGroupId = row.groupId;
  }
  attributes.SenderId = row.senderId;
  attributes.ApproximateFirstReceiveTimestamp = String(row.firstReceiveMs ?? row.sentMs);
  if (row.deadLetterSource !== undefined) attributes.DeadLetterQueueSourceArn = queueArn(region, row.deadLetterSource);
  return {
    messageId: row.messageId,
    receiptHandle: receiptHandle(row),
    body: row.body,
    attributes: attributes as SqsRecord['attributes'],
    messageAttributes: eventAttributes(readAttributes(row.attributes)),
    md5OfBody: row.md5OfBody,
    md5OfMessageAttributes: row.md5OfMessageAttributes ?? null,
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn(region, row.queue),
    awsRegion: region,
  };
}

/**
 * Which messages of a batch failed, from the function's response under
 * `ReportBatchItemFailures` (Lambda's success and failure conditions,
 * https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html):
 * - complete success (an empty set): an empty or null response, an object
 *   without `batchItemFailures`, a null or empty `batchItemFailures`;
 * - `'all'` (complete failure): a response that is not JSON or not an object,
 *   `batchItemFailures` not a list, an entry whose `itemIdentifier` is
 *   missing, null, empty, not a string, or not a messageId of the batch;
 * - else the messageIds named.
 */
export function batchItemFailures(payload: string, messageIds: ReadonlySet<string>): ReadonlySet<string> | 'all' {
  if (payload.trim() === '') return new Set();
  let response: unknown;
  try {
    response = JSON.parse(payload);
  } catch {
    return 'all';
  }
  if (response === null) return new Set();
  if (typeof response !== 'object' || Array.isArray(response)) return 'all';
  const list = (response as { batchItemFailures?: unknown }).batchItemFailures;
  if (list === undefined || list === null) return new Set();
  if (!Array.isArray(list)) return 'all';
  const failed = new Set<string>();
  for (const item of list) {
    const id = item !== null && typeof item === 'object' ? (item as { itemIdentifier?: unknown }).itemIdentifier : undefined;
    if (typeof id !== 'string' || id === '' || !messageIds.has(id)) return 'all';
    failed.add(id);
  }
  return failed;
}

interface QueueState {
  readonly spec: QueueSpec;
  readonly counters: { sent: number; received: number; deleted: number; movedToDeadLetterQueue: number; expired: number };
  /** FIFO deduplication ids seen in the last 5 minutes, with the answer given (in send order, oldest first). */
  readonly deduplication: Map<string, { readonly until: number; readonly result: SendMessageResult }>;
}

/** SQS's FIFO deduplication interval. */
const DEDUPLICATION_MS = 5 * 60_000;

const between = (v: unknown, [lo, hi]: readonly [number, number]) => typeof v === 'number' && Number.isFinite(v) && v >= lo && v <= hi;

/**
 * The durable queues of a platform and their event source mappings.
 *
 * @example
 * const broker = new QueueBroker({ store, invoke: (fn, payload, q) => host.invoke(fn, q, payload) });
 * broker.ensureQueues(service.queues);
 * broker.setMappings(service.queueEvents.map((e) => ({ ...e, functionName: nameOf(e.functionKey) })));
 * broker.start();
 * broker.sendMessage('orders', '{"id":1}');   // durable when it returns
 * await broker.stop();                         // lets batches in flight finish
 */
export class QueueBroker {
  readonly region: string;
  private readonly store: Store;
  private readonly now: () => number;
  private readonly pollIntervalMs: number;
  private readonly backoff: { readonly initialMs: number; readonly maxMs: number };
  private readonly concurrency: number;
  private readonly onError: (message: string, error: unknown) => void;
  private readonly queues = new Map<string, QueueState>();
  private readonly pollers = new Map<string, Poller>();
  /** Pollers of removed mappings still finishing their batches (stop() waits for them). */
  private readonly retiring = new Set<Promise<void>>();
  /** Receives are `<owner>:<n>`, so every receive has its own token. */
  private readonly owner = randomUUID();
  private receives = 0;
  private running = false;

  constructor(private readonly options: QueueBrokerOptions) {
    this.store = options.store;
    this.region = options.region ?? 'us-east-1';
    this.now = options.now ?? Date.now;
    this.pollIntervalMs = options.pollIntervalMs ?? 1_000;
    this.backoff = options.throttleBackoff ?? { initialMs: 1_000, maxMs: 60_000 };
    this.concurrency = Math.max(1, Math.floor(options.maximumConcurrency ?? 5));
    this.onError = options.onError ?? ((message, error) => process.emitWarning(`nimbus queues: ${message}: ${(error as Error)?.message ?? String(error)}`));
  }

  /**
   * Adds queues or changes their settings (messages already sent keep their
   * delay and retention). A queue's dead-letter queue must be among the
   * queues, after this call. Settings may be fractions of a second.
   *
   * Errors: throws naming the queue, the setting, its value and what is
   * allowed (SQS_LIMITS); nothing is changed then.
   */
  ensureQueues(specs: readonly QueueSpec[]): void {
    const next = new Map([...this.queues].map(([k, v]) => [k, v.spec]));
    for (const s of specs) next.set(s.name, s);
    for (const s of specs) {
      const bad = (key: string, value: unknown, allowed: string) =>
        new Error(`queue ${s.name}: ${key} ${JSON.stringify(value)} is not allowed: ${allowed}`);
      if (!/^[\w-]{1,80}(\.fifo)?$/.test(s.name)) throw bad('name', s.name, '1 to 80 letters, digits, - and _ (.fifo at the end for FIFO)');
      if (s.fifo !== s.name.endsWith('.fifo')) throw bad('fifo', s.fifo, 'a FIFO queue\'s name ends in .fifo, and only a FIFO queue\'s');
      if (!between(s.visibilityTimeout, SQS_LIMITS.visibilityTimeout)) throw bad('visibilityTimeout', s.visibilityTimeout, '0 to 43200 seconds');
      if (!between(s.delaySeconds, SQS_LIMITS.delaySeconds)) throw bad('delaySeconds', s.delaySeconds, '0 to 900 seconds');
      if (!between(s.messageRetentionPeriod, SQS_LIMITS.messageRetentionPeriod)) {
        throw bad('messageRetentionPeriod', s.messageRetentionPeriod, '60 to 1209600 seconds (14 days)');
      }
      if (s.deadLetterQueue !== undefined) {
        const dlq = next.get(s.deadLetterQueue);
        if (!dlq) throw bad('RedrivePolicy.deadLetterTargetArn', s.deadLetterQueue, `a queue Nimbus has (${[...next.keys()].join(', ')})`);
        if (dlq.fifo !== s.fifo) throw bad('RedrivePolicy.deadLetterTargetArn', s.deadLetterQueue, `a ${s.fifo ? 'FIFO' : 'standard'} queue, as the queue itself`);
        if (s.deadLetterQueue === s.name) throw bad('RedrivePolicy.deadLetterTargetArn', s.deadLetterQueue, 'another queue than itself');
        if (!between(s.maxReceiveCount, SQS_LIMITS.maxReceiveCount) || !Number.isInteger(s.maxReceiveCount)) {
          throw bad('RedrivePolicy.maxReceiveCount', s.maxReceiveCount, 'a whole number from 1 to 1000');
        }
      }
    }
    for (const s of specs) {
      const existing = this.queues.get(s.name);
      this.queues.set(s.name, {
        spec: Object.freeze({ ...s }),
        counters: existing?.counters ?? { sent: 0, received: 0, deleted: 0, movedToDeadLetterQueue: 0, expired: 0 },
        deduplication: existing?.deduplication ?? new Map(),
      });
    }
  }

  /**
   * Forgets queues (their messages stay in the store until purged) and stops
   * the pollers of mappings on them.
   *
   * Errors: throws when another queue that stays names one as its dead-letter queue.
   */
  removeQueues(names: readonly string[]): void {
    const gone = new Set(names);
    for (const [name, q] of this.queues) {
      if (!gone.has(name) && q.spec.deadLetterQueue !== undefined && gone.has(q.spec.deadLetterQueue)) {
        throw new Error(`cannot remove queue ${q.spec.deadLetterQueue}: it is the dead-letter queue of ${name}`);
      }
    }
    for (const name of gone) this.queues.delete(name);
    for (const [key, poller] of this.pollers) {
      if (gone.has(poller.mapping.queue)) this.retire(key, poller);
    }
  }

  /** The queues' settings. */
  queueSpecs(): QueueSpec[] {
    return [...this.queues.values()].map((q) => q.spec);
  }

  /** The queues' names, sorted. */
  queueNames(): string[] {
    return [...this.queues.keys()].sort();
  }

  /** The ARN of a queue of this broker. */
  arn(queue: string): string {
    return queueArn(this.region, queue);
  }

  /**
   * Sends a message (SQS SendMessage): it is committed to the store when
   * this returns, and can be received after its delay.
   *
   * Errors (EventSourceError): `QueueDoesNotExist` naming the queues that
   * exist; `InvalidParameterValue` when the body is empty or the body and
   * attributes are over 262,144 bytes (256 KiB), an attribute is invalid, the
   * delay is not 0–900 s or is set on a FIFO queue; `MissingParameter` when a
   * FIFO queue gets no messageGroupId. A store failure is thrown as it is
   * (the message was not accepted).
   */
  sendMessage(queue: string, body: string, options: SendMessageOptions = {}): SendMessageResult {
    const state = this.queue(queue);
    const spec = state.spec;
    if (typeof body !== 'string' || body.length === 0) {
      throw new EventSourceError('InvalidParameterValue', `a message to queue ${queue} needs a non-empty body`);
    }
    const { attributes, bytes: attributeBytes } = normaliseAttributes(options.messageAttributes, 'SQS');
    const bytes = Buffer.byteLength(body, 'utf8') + attributeBytes;
    if (bytes > SQS_LIMITS.messageBytes) {
      throw new EventSourceError('InvalidParameterValue',
        `the message to queue ${queue} is ${bytes.toLocaleString('en-US')} bytes (body and attributes): over SQS's limit of 262,144 bytes (256 KiB)`);
    }
    if (options.delaySeconds !== undefined) {
      if (spec.fifo) throw new EventSourceError('InvalidParameterValue', `queue ${queue} is a FIFO queue: a message cannot have its own delaySeconds (the queue's applies)`);
      if (!between(options.delaySeconds, SQS_LIMITS.delaySeconds)) {
        throw new EventSourceError('InvalidParameterValue', `delaySeconds ${JSON.stringify(options.delaySeconds)} is not allowed: 0 to 900 seconds`);
      }
    }
    if (spec.fifo && (typeof options.messageGroupId !== 'string' || !/^[\x21-\x7e]{1,128}$/.test(options.messageGroupId))) {
      throw new EventSourceError('MissingParameter', `queue ${queue} is a FIFO queue: a message needs a messageGroupId (1–128 printable ASCII characters)`);
    }
    if (!spec.fifo && options.messageGroupId !== undefined) {
      throw new EventSourceError('InvalidParameterValue', `queue ${queue} is a standard queue: messageGroupId is only for FIFO queues`);
    }
    if (!spec.fifo && options.messageDeduplicationId !== undefined) {
      throw new EventSourceError('InvalidParameterValue', `queue ${queue} is a standard queue: messageDeduplicationId is only for FIFO queues`);
    }
    const now = this.now();
    const dedupId = options.messageDeduplicationId;
    if (dedupId !== undefined) {
      for (const [id, seen] of state.deduplication) {
        if (seen.until > now) break;
        state.deduplication.delete(id);
      }
      const seen = state.deduplication.get(dedupId);
      if (seen) return seen.result;
    }
    const delay = options.delaySeconds ?? spec.delaySeconds;
    const md5Body = md5OfBody(body);
    const md5Attributes = md5OfMessageAttributes(attributes);
    const row = this.store.sendQueueMessage({
      queue, messageId: randomUUID(), body, md5OfBody: md5Body,
      ...(attributes.length ? { attributes: JSON.stringify(attributes), md5OfMessageAttributes: md5Attributes } : {}),
      ...(spec.fifo ? { groupId: options.messageGroupId } : {}),
      senderId: options.senderId ?? ACCOUNT_ID,
      sentMs: now, visibleAtMs: now + Math.round(delay * 1000), expiresAtMs: now + Math.round(spec.messageRetentionPeriod * 1000),
    });
    state.counters.sent++;
    this.wake(queue);
    const result: SendMessageResult = Object.freeze({
      messageId: row.messageId, md5OfBody: md5Body,
      ...(md5Attributes !== undefined ? { md5OfMessageAttributes: md5Attributes } : {}),
      ...(spec.fifo ? { sequenceNumber: sequenceNumber(row) } : {}),
    });
    if (dedupId !== undefined) state.deduplication.set(dedupId, { until: now + DEDUPLICATION_MS, result });
    return result;
  }

  /**
   * Receives up to `maxNumberOfMessages` (1–10, default 1) messages (SQS
   * ReceiveMessage, no long polling), hiding them for `visibilityTimeout`
   * seconds (default the queue's). Moves messages past maxReceiveCount to the
   * dead-letter queue first, as SQS does.
   *
   * Errors: EventSourceError `QueueDoesNotExist`, `InvalidParameterValue`.
   */
  receiveMessages(queue: string, options: { maxNumberOfMessages?: number; visibilityTimeout?: number } = {}): ReceivedMessage[] {
    const max = options.maxNumberOfMessages ?? 1;
    if (!between(max, SQS_LIMITS.receiveMessages) || !Number.isInteger(max)) {
      throw new EventSourceError('InvalidParameterValue', `maxNumberOfMessages ${JSON.stringify(max)} is not allowed: 1 to 10`);
    }
    if (options.visibilityTimeout !== undefined && !between(options.visibilityTimeout, SQS_LIMITS.visibilityTimeout)) {
      throw new EventSourceError('InvalidParameterValue', `visibilityTimeout ${JSON.stringify(options.visibilityTimeout)} is not allowed: 0 to 43200 seconds`);
    }
    return this.receive(queue, max, undefined, options.visibilityTimeout).map((row) => {
      const record = sqsRecord(row, this.region);
      const attributes = readAttributes(row.attributes);
      const message: { -readonly [K in keyof ReceivedMessage]: ReceivedMessage[K] } = {
        MessageId: row.messageId, ReceiptHandle: record.receiptHandle, MD5OfBody: row.md5OfBody, Body: row.body,
        Attributes: record.attributes as unknown as Record<string, string>,
      };
      if (attributes.length) {
        message.MD5OfMessageAttributes = row.md5OfMessageAttributes;
        message.MessageAttributes = Object.fromEntries(attributes.map((a) => [a.name, {
          DataType: a.dataType, ...(a.stringValue !== undefined ? { StringValue: a.stringValue } : { BinaryValue: a.binaryValue }),
        }]));
      }
      return message;
    });
  }

  /**
   * Deletes a received message by its receipt handle (SQS DeleteMessage).
   * False when the handle is not the message's latest (it was received again)
   * or the message is gone: as SQS, that deletes nothing.
   *
   * Errors: EventSourceError `QueueDoesNotExist`, `ReceiptHandleIsInvalid`.
   */
  deleteMessage(queue: string, handle: string): boolean {
    const state = this.queue(queue);
    const deleted = this.store.deleteQueueMessages(queue, [parseReceiptHandle(handle)]);
    state.counters.deleted += deleted;
    return deleted > 0;
  }

  /**
   * Makes a received message visible again `visibilityTimeout` seconds from
   * now (SQS ChangeMessageVisibility; 0: at once). False when the handle is
   * not the message's latest.
   */
  changeMessageVisibility(queue: string, handle: string, visibilityTimeout: number): boolean {
    this.queue(queue);
    if (!between(visibilityTimeout, SQS_LIMITS.visibilityTimeout)) {
      throw new EventSourceError('InvalidParameterValue', `visibilityTimeout ${JSON.stringify(visibilityTimeout)} is not allowed: 0 to 43200 seconds`);
    }
    const { id, lease } = parseReceiptHandle(handle);
    const changed = this.store.changeQueueMessageVisibility(queue, id, lease, this.now() + Math.round(visibilityTimeout * 1000));
    if (changed) this.wake(queue);
    return changed;
  }

  /** Deletes every message of a queue (SQS PurgeQueue); returns how many. */
  purgeQueue(queue: string): number {
    this.queue(queue);
    return this.store.purgeQueue(queue);
  }

  /**
   * Replaces the event source mappings. A mapping that stays keeps its
   * poller (new settings apply to its next batch); a removed or disabled one
   * stops after its batches in flight. Pollers run once start() was called.
   *
   * Errors: throws naming the mapping when its queue is unknown (listing the
   * queues) or a setting is out of Lambda's range; nothing is changed then.
   */
  setMappings(mappings: readonly QueueMapping[]): void {
    const next = new Map<string, QueueMapping>();
    for (const m of mappings) {
      const where = `the sqs event of ${m.functionName} on queue ${m.queue}`;
      const state = this.queues.get(m.queue);
      if (!state) throw new EventSourceError('QueueDoesNotExist', `${where}: ${this.unknownQueue(m.queue)}`, 404);
      const maxBatch = state.spec.fifo ? SQS_LIMITS.fifoBatchSize : SQS_LIMITS.batchSize[1];
      if (!Number.isInteger(m.batchSize) || m.batchSize < 1 || m.batchSize > maxBatch) {
        throw new Error(`${where}: batchSize ${JSON.stringify(m.batchSize)} is not allowed: 1 to ${maxBatch}${state.spec.fifo ? ' on a FIFO queue' : ''}`);
      }
      if (!between(m.maximumBatchingWindow, SQS_LIMITS.maximumBatchingWindow)) {
        throw new Error(`${where}: maximumBatchingWindow ${JSON.stringify(m.maximumBatchingWindow)} is not allowed: 0 to 300 seconds`);
      }
      const key = mappingKey(m);
      if (next.has(key)) throw new Error(`${where}: the function has two sqs events on the same queue`);
      next.set(key, Object.freeze({ ...m }));
    }
    for (const [key, poller] of this.pollers) {
      const m = next.get(key);
      if (!m || !m.enabled) this.retire(key, poller);
    }
    for (const [key, m] of next) {
      const poller = this.pollers.get(key);
      if (poller) poller.mapping = m;
      else this.pollers.set(key, new Poller(this.pollerHost(), m));
    }
    // Disabled mappings are listed (mappings()) but have no poller running.
    for (const [key, m] of next) {
      const poller = this.pollers.get(key)!;
      if (!m.enabled) continue;
      if (this.running) poller.start();
    }
  }

  /** The event source mappings with their pollers' counters. */
  mappings(): QueueMappingStatus[] {
    return [...this.pollers.values()].map((p) => p.status(this.region));
  }

  /** Starts the pollers of enabled mappings (after taking back a dead process's receives, with reclaimOnStart). Idempotent. */
  start(): void {
    if (this.running) return;
    this.running = true;
    if (this.options.reclaimOnStart) {
      try {
        this.store.releaseQueueLeases(this.now());
      } catch (e) {
        this.onError('cannot take back the receives of a previous process', e);
      }
    }
    for (const p of this.pollers.values()) if (p.mapping.enabled) p.start();
  }

  /**
   * Stops polling and waits for the batches in flight to finish (deleted or
   * left as their result says), at most `deadlineMs` when given. A batch
   * still running after it stays hidden until its visibility timeout ends.
   */
  async stop(deadlineMs?: number): Promise<void> {
    this.running = false;
    const settled = Promise.allSettled([...[...this.pollers.values()].map((p) => p.stop()), ...this.retiring]).then(() => undefined);
    if (deadlineMs === undefined) { await settled; return; }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([settled, new Promise<void>((r) => { timer = setTimeout(r, deadlineMs); })]);
    clearTimeout(timer);
  }

  /** Sizes and counters of one queue, or of every queue (by name). */
  stats(queue?: string): QueueStats[] {
    const names = queue === undefined ? [...this.queues.keys()].sort() : [this.queue(queue).spec.name];
    const now = this.now();
    return names.map((name) => {
      const q = this.queues.get(name)!;
      return Object.freeze({
        queue: name, arn: this.arn(name), fifo: q.spec.fifo,
        ...(q.spec.deadLetterQueue !== undefined ? { deadLetterQueue: q.spec.deadLetterQueue } : {}),
        ...q.counters, ...this.store.queueCounts(name, now),
      });
    });
  }

  // ── internals ───────────────────────────────────────────────────────────

  private queue(name: string): QueueState {
    const state = this.queues.get(name);
    if (!state) throw new EventSourceError('QueueDoesNotExist', this.unknownQueue(name), 404);
    return state;
  }

  private unknownQueue(name: string): string {
    const names = [...this.queues.keys()].sort();
    return `queue ${JSON.stringify(name)} does not exist; ${names.length ? `the queues are: ${names.join(', ')}` : 'there are no queues'}`;
  }

  /** One receive for a poller or ReceiveMessage, with the queue's redrive policy. */
  private receive(queue: string, limit: number, maxBytes: number | undefined, visibilityTimeout?: number): QueueMessageRow[] {
    const state = this.queue(queue);
    const spec = state.spec;
    const dlq = spec.deadLetterQueue !== undefined ? this.queues.get(spec.deadLetterQueue) : undefined;
    const result = this.store.receiveQueueMessages(queue, {
      lease: `${this.owner}:${++this.receives}`,
      nowMs: this.now(),
      visibilityMs: Math.round((visibilityTimeout ?? spec.visibilityTimeout) * 1000),
      limit,
      ...(maxBytes !== undefined ? { maxBytes } : {}),
      ...(dlq && spec.maxReceiveCount !== undefined ? {
        redrive: { deadLetterQueue: dlq.spec.name, maxReceiveCount: spec.maxReceiveCount, deadLetterRetentionMs: Math.round(dlq.spec.messageRetentionPeriod * 1000) },
      } : {}),
    });
    state.counters.received += result.received.length;
    state.counters.expired += result.expired;
    if (result.deadLettered > 0) {
      state.counters.movedToDeadLetterQueue += result.deadLettered;
      this.wake(dlq!.spec.name);
    }
    return result.received;
  }

  private wake(queue: string): void {
    for (const p of this.pollers.values()) if (p.mapping.queue === queue) p.wake();
  }

  private retire(key: string, poller: Poller): void {
    this.pollers.delete(key);
    const done: Promise<void> = poller.stop().finally(() => this.retiring.delete(done));
    this.retiring.add(done);
  }

  /** What a poller may use of its broker. */
  private pollerHost(): PollerHost {
    return {
      now: this.now,
      pollIntervalMs: this.pollIntervalMs,
      backoff: this.backoff,
      concurrency: this.concurrency,
      invoke: this.options.invoke,
      onError: this.onError,
      region: this.region,
      spec: (queue) => this.queues.get(queue)?.spec,
      receive: (queue, limit, maxBytes) => this.receive(queue, limit, maxBytes),
      remove: (queue, rows) => {
        const deleted = this.store.deleteQueueMessages(queue, rows.map((r) => ({ id: r.id, lease: r.receipt! })));
        const state = this.queues.get(queue);
        if (state) state.counters.deleted += deleted;
      },
      nextDue: (queue) => this.store.nextQueueMessageDueMs(queue),
    };
  }
}

function mappingKey(m: Pick<QueueMapping, 'queue' | 'functionName' | 'qualifier'>): string {
  return `${m.queue}\n${m.functionName}\n${m.qualifier ?? ''}`;
}

interface PollerHost {
  readonly now: () => number;
  readonly pollIntervalMs: number;
  readonly backoff: { readonly initialMs: number; readonly maxMs: number };
  readonly concurrency: number;
  readonly invoke: QueueInvoke;
  readonly onError: (message: string, error: unknown) => void;
  readonly region: string;
  spec(queue: string): QueueSpec | undefined;
  receive(queue: string, limit: number, maxBytes: number): QueueMessageRow[];
  remove(queue: string, rows: readonly QueueMessageRow[]): void;
  nextDue(queue: string): number | undefined;
}

/**
 * The poller of one event source mapping: gathers a batch, hands it to an
 * invocation (up to `maximumConcurrency` batches at once) and gathers the
 * next. Sleeps while the queue is empty, until a send wakes it, the next
 * delay or visibility timeout ends, or the poll interval passes.
 */
class Poller {
  private running = false;
  private loopDone: Promise<void> = Promise.resolve();
  private readonly inFlight = new Set<Promise<void>>();
  /** A wake-up that came while the poller was not sleeping: its next sleep returns at once. */
  private woken = false;
  private wakeSleeper: (() => void) | undefined;
  /** Throttles in a row; while > 0 the poller waits before gathering. */
  private throttled = 0;
  private backoffUntil = 0;
  /** Resolves when stop() is called: ends a throttled batch's wait. */
  private stopped: Promise<void> = Promise.resolve();
  private signalStop: () => void = () => {};
  private readonly counters = { invocations: 0, failedBatches: 0, partialBatches: 0, throttles: 0 };

  constructor(private readonly host: PollerHost, public mapping: QueueMapping) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.stopped = new Promise((resolve) => { this.signalStop = resolve; });
    this.loopDone = this.loop();
  }

  wake(): void {
    const w = this.wakeSleeper;
    if (w) w(); else this.woken = true;
  }

  /** Stops gathering; resolves when the batches in flight have finished. */
  async stop(): Promise<void> {
    this.running = false;
    this.signalStop();
    this.wake();
    await this.loopDone;
    await Promise.allSettled([...this.inFlight]);
  }

  status(region: string): QueueMappingStatus {
    const m = this.mapping;
    return Object.freeze({
      uuid: stableUuid(`esm\n${mappingKey(m)}`), queue: m.queue, eventSourceArn: queueArn(region, m.queue),
      functionName: m.functionName, ...(m.qualifier !== undefined ? { qualifier: m.qualifier } : {}),
      enabled: m.enabled, batchSize: m.batchSize, maximumBatchingWindow: m.maximumBatchingWindow,
      reportBatchItemFailures: m.reportBatchItemFailures, inFlight: this.inFlight.size, ...this.counters,
    });
  }

  /** Sleeps `ms`, or less when woken (by a send, a finished batch, or stop()). */
  private sleep(ms: number): Promise<void> {
    if (this.woken || !this.running) { this.woken = false; return Promise.resolve(); }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        if (this.wakeSleeper === done) this.wakeSleeper = undefined;
        resolve();
      };
      const timer = setTimeout(done, Math.max(1, ms));
      this.wakeSleeper = done;
    });
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const limit = Math.max(1, Math.floor(this.mapping.maximumConcurrency ?? this.host.concurrency));
      if (this.inFlight.size >= limit) {
        await Promise.race(this.inFlight);
        continue;
      }
      const wait = this.backoffUntil - this.host.now();
      if (wait > 0) {
        await this.sleep(wait);
        continue;
      }
      let batch: QueueMessageRow[];
      try {
        batch = await this.gather();
      } catch (e) {
        this.host.onError(`cannot receive from queue ${this.mapping.queue}, will try again`, e);
        await this.sleep(this.host.pollIntervalMs);
        continue;
      }
      if (batch.length === 0) {
        await this.sleep(this.idleMs());
        continue;
      }
      // A batch gathered while stop() was called is received already: it is invoked (stop() waits for it).
      const p: Promise<void> = this.process(batch, this.mapping).finally(() => {
        this.inFlight.delete(p);
        this.wake();
      });
      this.inFlight.add(p);
    }
  }

  /** How long an idle poller sleeps: until the next message is due, at most the poll interval. */
  private idleMs(): number {
    const now = this.host.now();
    let next: number | undefined;
    try {
      next = this.host.nextDue(this.mapping.queue);
    } catch {
      next = undefined;
    }
    // Due already but not received: a FIFO group is blocked by a message in flight; its batch's end wakes us.
    return next === undefined || next <= now ? this.host.pollIntervalMs : Math.min(this.host.pollIntervalMs, next - now);
  }

  /**
   * Receives up to batchSize messages; with a batching window, keeps
   * receiving until the batch is full or the window (counted from the first
   * message) has passed. Lambda: https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html
   */
  private async gather(): Promise<QueueMessageRow[]> {
    const m = this.mapping;
    const batch = this.host.receive(m.queue, m.batchSize, BATCH_PAYLOAD_BYTES);
    if (batch.length === 0 || m.maximumBatchingWindow <= 0) return batch;
    let bytes = batch.reduce((n, r) => n + messageBytes(r), 0);
    const deadline = this.host.now() + m.maximumBatchingWindow * 1000;
    while (this.running && batch.length < m.batchSize && bytes < BATCH_PAYLOAD_BYTES) {
      const left = deadline - this.host.now();
      if (left <= 0) break;
      await this.sleep(Math.min(left, this.host.pollIntervalMs));
      const more = this.host.receive(m.queue, m.batchSize - batch.length, BATCH_PAYLOAD_BYTES - bytes);
      for (const r of more) {
        // A visibility timeout shorter than the window: a message of the batch was received again. Its latest receive counts.
        const i = batch.findIndex((b) => b.id === r.id);
        if (i >= 0) { batch[i] = r; continue; }
        batch.push(r);
        bytes += messageBytes(r);
      }
    }
    return batch;
  }

  /** Invokes the function with one batch and settles the batch by the result. Never rejects. */
  private async process(batch: QueueMessageRow[], m: QueueMapping): Promise<void> {
    try {
      const event: SqsEvent = { Records: batch.map((r) => sqsRecord(r, this.host.region)) };
      const payload = JSON.stringify(event);
      // The batch may be retried (throttles) only while every message of it is still hidden.
      const hiddenUntil = Math.min(...batch.map((r) => r.visibleAtMs));
      for (;;) {
        let result: InvocationResult;
        try {
          result = await this.host.invoke(m.functionName, payload, m.qualifier);
        } catch (e) {
          result = {
            requestId: '', outcome: 'crashed', durationMs: 0, billedDurationMs: 0, logs: '',
            payload: JSON.stringify({ errorType: 'Nimbus.InvokeFailed', errorMessage: (e as Error)?.message ?? String(e) }),
          };
        }
        const disposition = asyncDisposition(result);
        if (disposition === 'retry-later') {
          // Throttled, or Nimbus could not run the function: the function did not see the batch.
          this.counters.throttles++;
          this.throttled++;
          const wait = Math.min(this.host.backoff.initialMs * 2 ** Math.min(this.throttled - 1, 30), this.host.backoff.maxMs);
          this.backoffUntil = this.host.now() + wait;
          if (!this.running || this.host.now() + wait >= hiddenUntil) return; // visible again when the timeout ends
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([this.stopped, new Promise((r) => { timer = setTimeout(r, wait); })]);
          clearTimeout(timer);
          if (!this.running) return;
          continue;
        }
        this.throttled = 0;
        this.counters.invocations++;
        if (disposition !== 'success') {
          // A function error (or the function is gone): every message is visible again after its timeout.
          this.counters.failedBatches++;
          return;
        }
        if (!m.reportBatchItemFailures) {
          this.host.remove(m.queue, batch);
          return;
        }
        const failed = batchItemFailures(result.payload, new Set(batch.map((r) => r.messageId)));
        if (failed === 'all') {
          this.counters.failedBatches++;
          return;
        }
        if (failed.size > 0) this.counters.partialBatches++;
        this.host.remove(m.queue, batch.filter((r) => !failed.has(r.messageId)));
        return;
      }
    } catch (e) {
      // A store write failed: the messages are visible again when their timeout ends (at least once).
      this.host.onError(`a batch of queue ${m.queue} for ${m.functionName} stays queued`, e);
    }
  }
}

/** Bytes of a message's body and attributes (what a batch's size is counted in). */
function messageBytes(r: QueueMessageRow): number {
  return Buffer.byteLength(r.body, 'utf8') + (r.attributes ? Buffer.byteLength(r.attributes, 'utf8') : 0);
}
