/**
 * Topics with Amazon SNS's semantics for Lambda subscribers: a publish fans
 * out to every subscribed function whose filter policy matches, each as an
 * asynchronous invocation with the SNS event.
 *
 *   publish ──► Store (topic_messages + one topic_deliveries row per matching subscription, committed)
 *           ──► for each: enqueueAsync(function, SNS event, request id) ──► delivery row removed
 *   start() ──► fans out what a previous process recorded and did not finish
 *
 * Behaviour copied from AWS:
 * - https://docs.aws.amazon.com/lambda/latest/dg/with-sns.html: "Amazon SNS
 *   invokes your function asynchronously with an event that contains a
 *   message and metadata" — the event below, one record per invocation.
 *   Retries, maximumEventAge, destinations and the dead-letter queue are
 *   then the asynchronous invocation queue's (async-queue.ts).
 * - https://docs.aws.amazon.com/sns/latest/dg/sns-subscription-filter-policies.html,
 *   https://docs.aws.amazon.com/sns/latest/dg/string-value-matching.html,
 *   https://docs.aws.amazon.com/sns/latest/dg/numeric-value-matching.html,
 *   https://docs.aws.amazon.com/sns/latest/dg/attribute-key-matching.html,
 *   https://docs.aws.amazon.com/sns/latest/dg/and-or-logic.html:
 *   filter policies (see compileFilterPolicy).
 * - https://docs.aws.amazon.com/sns/latest/api/API_Publish.html: a message
 *   (with its attributes) is at most 256 KiB (262,144 bytes); a subject is
 *   1–99 printable characters.
 *
 * Durability: the publish and the subscriptions it matched are committed
 * before publish() returns; each fan-out is marked done once the
 * asynchronous queue has taken it. A crash in between fans out again after
 * the restart, with the same MessageId and the same request id (the
 * asynchronous queue keeps one event per request id while it is queued):
 * at least once.
 */
import { randomUUID } from 'node:crypto';
import type { TopicEventSpec, TopicSpec } from '../core/index.js';
import type { Store, TopicDeliveryRow } from '../store/index.js';
import {
  ACCOUNT_ID, EventSourceError, normaliseAttributes, stableUuid, type MessageAttributeValue, type StoredAttribute,
} from './queues.js';

/** SNS's limits. https://docs.aws.amazon.com/general/latest/gr/sns.html */
export const SNS_LIMITS = Object.freeze({
  /** Message and attributes together: 256 KiB. */
  messageBytes: 262_144,
  /** Subject: fewer than 100 characters. */
  subjectLength: 99,
});

/** Where a filter policy looks: the message attributes (SNS's default) or the message body (JSON). */
export type FilterPolicyScope = 'MessageAttributes' | 'MessageBody';

/** One function subscribed to a topic: a TopicEventSpec with the function's Lambda name. */
export interface TopicSubscription extends Omit<TopicEventSpec, 'functionKey'> {
  readonly functionName: string;
  /** The version or alias to invoke; undefined: `$LATEST`. */
  readonly qualifier?: string;
  /** Default `MessageAttributes`. */
  readonly filterPolicyScope?: FilterPolicyScope;
}

/** What `publish` takes besides the message (SNS Publish's parameters). */
export interface PublishOptions {
  readonly subject?: string;
  readonly messageAttributes?: Readonly<Record<string, MessageAttributeValue>>;
}

/** One record of the SNS event Lambda receives. https://docs.aws.amazon.com/lambda/latest/dg/with-sns.html */
export interface SnsRecord {
  readonly EventVersion: '1.0';
  readonly EventSubscriptionArn: string;
  readonly EventSource: 'aws:sns';
  readonly Sns: {
    readonly SignatureVersion: string;
    readonly Timestamp: string;
    readonly Signature: string;
    readonly SigningCertUrl: string;
    readonly MessageId: string;
    readonly Message: string;
    readonly MessageAttributes: Record<string, { readonly Type: string; readonly Value: string }>;
    readonly Type: 'Notification';
    readonly UnsubscribeUrl: string;
    readonly TopicArn: string;
    /** Null when the publish had none. */
    readonly Subject: string | null;
  };
}

/** The SNS event: one record. */
export interface SnsEvent {
  readonly Records: [SnsRecord];
}

/**
 * Takes one fan-out into the durable asynchronous invocation queue (the
 * AsyncQueue's enqueue: its retries, destinations and dead-letter queue
 * apply). Returns when the event is committed, or a promise of that; throws
 * or rejects when it was not taken (the fan-out is tried again later).
 */
export type EnqueueAsync = (functionName: string, payload: string, requestId: string, qualifier?: string) => unknown;

export interface TopicBrokerOptions {
  readonly store: Store;
  readonly enqueueAsync: EnqueueAsync;
  /** The region in ARNs. Default `us-east-1`. */
  readonly region?: string;
  /** Epoch ms. Default Date.now. */
  readonly now?: () => number;
  /** Wait before fanning out again what the asynchronous queue refused (ms). Default 1000. */
  readonly retryIntervalMs?: number;
  /**
   * Base of the SigningCertUrl and UnsubscribeUrl in events. Default
   * `https://sns.<region>.amazonaws.com` (AWS's form; Nimbus does not sign
   * messages and serves neither URL).
   */
  readonly endpoint?: string;
  /** Failures of the broker itself (a store write, a refused fan-out). Default: process warnings. */
  readonly onError?: (message: string, error: unknown) => void;
}

/** Counters since the broker was made, and the fan-outs waiting in the store, of one topic. */
export interface TopicStats {
  readonly topic: string;
  readonly arn: string;
  readonly subscriptions: number;
  readonly published: number;
  /** Fan-outs taken by the asynchronous queue. */
  readonly delivered: number;
  /** Subscriptions a publish did not match (its filter policy said no). */
  readonly filteredOut: number;
  /** Fan-outs recorded and not yet taken. */
  readonly pending: number;
}

/** A subscription as `subscriptions()` lists it. */
export interface SubscriptionStatus {
  readonly topic: string;
  readonly topicArn: string;
  readonly subscriptionArn: string;
  readonly functionName: string;
  readonly qualifier?: string;
  readonly filterPolicy?: Readonly<Record<string, unknown>>;
  readonly filterPolicyScope: FilterPolicyScope;
}

/** What a filter policy is matched against. */
export interface FilterInput {
  readonly attributes: readonly StoredAttribute[];
  readonly message: string;
}

/** The ARN of a topic. */
export function topicArn(region: string, topic: string): string {
  return `arn:aws:sns:${region}:${ACCOUNT_ID}:${topic}`;
}

/** A subscription's ARN: the topic's and a UUID stable for the topic and function (so a restart gives the same). */
export function subscriptionArn(region: string, topic: string, functionName: string, qualifier?: string): string {
  return `${topicArn(region, topic)}:${stableUuid(`sns-subscription\n${topic}\n${functionName}\n${qualifier ?? ''}`)}`;
}

// ── filter policies ──────────────────────────────────────────────────────

/** The values of one key: undefined when the key is absent; strings, numbers (and, in a body, booleans and null). */
type Values = readonly unknown[] | undefined;
type Condition = (values: Values) => boolean;
/** A compiled policy object, applied to a lookup of its keys. */
type PolicyNode = (lookup: (key: string) => Values | Record<string, unknown>) => boolean;

const OPERATORS = 'exact values (strings, numbers), prefix, suffix, equals-ignore-case, anything-but, exists, numeric, cidr';

class PolicyError extends Error {}

/**
 * Compiles an SNS subscription filter policy into a predicate over a
 * published message. What it accepts, as SNS documents it:
 *
 * - Keys are AND-ed; the list of a key is OR-ed; `"$or": [policy, policy, …]`
 *   OR-s sub-policies. A key names a message attribute (scope
 *   `MessageAttributes`) or a property of the JSON body, nested objects
 *   naming nested properties (scope `MessageBody`).
 * - `"x"` matches a String attribute equal to it (any element of a
 *   String.Array); `5` a Number attribute equal to it; `{"prefix": "x"}`,
 *   `{"suffix": "x"}`, `{"equals-ignore-case": "x"}` strings;
 *   `{"numeric": [">", 0, "<=", 150]}` (operators `=`, `<`, `<=`, `>`, `>=`;
 *   a range is a lower then an upper bound) numbers; `{"cidr": "10.0.0.0/24"}`
 *   IPv4 addresses in strings; `{"exists": true|false}` the key's presence;
 *   `{"anything-but": v}` (a value, a list, or `{"prefix"|"suffix": "x"}`) a
 *   present key none of whose values is v.
 * - Binary attributes are ignored (as if absent); a key that is absent
 *   matches only `{"exists": false}`. Number attributes match only numeric
 *   conditions, String ones only string conditions.
 *
 * Errors: throws naming the path in the policy, the value and what is
 * allowed (an unknown operator, a numeric range out of order, …).
 */
export function compileFilterPolicy(policy: unknown, scope: FilterPolicyScope = 'MessageAttributes'): (input: FilterInput) => boolean {
  let node: PolicyNode;
  try {
    node = compileObject(policy, 'filterPolicy', scope);
  } catch (e) {
    if (e instanceof PolicyError) throw new Error(e.message);
    throw e;
  }
  if (scope === 'MessageAttributes') {
    return (input) => {
      const byName = new Map(input.attributes.map((a) => [a.name, a]));
      return node((key) => attributeValues(byName.get(key)));
    };
  }
  return (input) => {
    let body: unknown;
    try {
      body = JSON.parse(input.message);
    } catch {
      return false; // A body that is not a JSON object matches no MessageBody policy.
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) return false;
    return node(bodyLookup(body as Record<string, unknown>));
  };
}

/** An attribute's values for filtering: none when absent or Binary. */
function attributeValues(a: StoredAttribute | undefined): Values {
  if (a === undefined || a.dataType.startsWith('Binary')) return undefined;
  const v = a.stringValue ?? '';
  if (a.dataType.startsWith('Number')) return [Number(v)];
  if (a.dataType.startsWith('String.Array')) {
    try {
      const list = JSON.parse(v) as unknown[];
      return list.filter((x) => typeof x === 'string' || typeof x === 'number');
    } catch {
      return [];
    }
  }
  return [v];
}

function bodyLookup(obj: Record<string, unknown> | undefined): (key: string) => Values | Record<string, unknown> {
  return (key) => {
    if (obj === undefined || !Object.prototype.hasOwnProperty.call(obj, key)) return undefined;
    const v = obj[key];
    if (Array.isArray(v)) return v;
    if (v !== null && typeof v === 'object') return v as Record<string, unknown>;
    return [v];
  };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function compileObject(policy: unknown, path: string, scope: FilterPolicyScope): PolicyNode {
  if (!isPlainObject(policy) || Object.keys(policy).length === 0) {
    throw new PolicyError(`${path}: ${JSON.stringify(policy)} is not allowed: an object of keys to lists of conditions`);
  }
  const parts: PolicyNode[] = [];
  for (const [key, value] of Object.entries(policy)) {
    const at = `${path}.${key}`;
    if (key === '$or') {
      if (!Array.isArray(value) || value.length < 2) throw new PolicyError(`${at}: expected a list of at least two policies`);
      const alternatives = value.map((p, i) => compileObject(p, `${at}[${i}]`, scope));
      parts.push((lookup) => alternatives.some((alt) => alt(lookup)));
      continue;
    }
    if (Array.isArray(value)) {
      if (value.length === 0) throw new PolicyError(`${at}: an empty list matches nothing; give at least one condition`);
      const conditions = value.map((c, i) => compileCondition(c, `${at}[${i}]`));
      parts.push((lookup) => {
        const found = lookup(key);
        // A nested object where values were expected matches no value condition, but it exists.
        const values: Values = found === undefined ? undefined : Array.isArray(found) ? found : [];
        return conditions.some((c) => c(values));
      });
      continue;
    }
    if (isPlainObject(value) && scope === 'MessageBody') {
      const nested = compileObject(value, at, scope);
      parts.push((lookup) => {
        const found = lookup(key);
        return nested(bodyLookup(isPlainObject(found) ? found : undefined));
      });
      continue;
    }
    throw new PolicyError(`${at}: ${JSON.stringify(value)} is not allowed: a list of conditions (${OPERATORS})`
      + (isPlainObject(value) ? '; nested keys need filterPolicyScope MessageBody' : ''));
  }
  return (lookup) => parts.every((p) => p(lookup));
}

const some = (pred: (v: unknown) => boolean): Condition => (values) => values !== undefined && values.some(pred);

function compileCondition(c: unknown, at: string): Condition {
  if (typeof c === 'string' || (typeof c === 'number' && Number.isFinite(c)) || typeof c === 'boolean' || c === null) {
    return some((v) => v === c);
  }
  if (!isPlainObject(c) || Object.keys(c).length !== 1) {
    throw new PolicyError(`${at}: ${JSON.stringify(c)} is not allowed: a value or one operator (${OPERATORS})`);
  }
  const [op, arg] = Object.entries(c)[0];
  const needString = () => {
    if (typeof arg !== 'string') throw new PolicyError(`${at}.${op}: ${JSON.stringify(arg)} is not allowed: a string`);
    return arg;
  };
  switch (op) {
    case 'prefix': { const s = needString(); return some((v) => typeof v === 'string' && v.startsWith(s)); }
    case 'suffix': { const s = needString(); return some((v) => typeof v === 'string' && v.endsWith(s)); }
    case 'equals-ignore-case': { const s = needString().toLowerCase(); return some((v) => typeof v === 'string' && v.toLowerCase() === s); }
    case 'exists':
      if (typeof arg !== 'boolean') throw new PolicyError(`${at}.exists: ${JSON.stringify(arg)} is not allowed: true or false`);
      return arg ? (values) => values !== undefined : (values) => values === undefined;
    case 'numeric': return numericCondition(arg, `${at}.numeric`);
    case 'cidr': return cidrCondition(arg, `${at}.cidr`);
    case 'anything-but': {
      const denied = anythingBut(arg, `${at}.anything-but`);
      return (values) => values !== undefined && !values.some(denied);
    }
    default:
      throw new PolicyError(`${at}: unknown operator ${JSON.stringify(op)}; allowed: ${OPERATORS}`);
  }
}

/** What `anything-but` refuses: a value, a list of values, or a prefix / suffix. */
function anythingBut(arg: unknown, at: string): (v: unknown) => boolean {
  const isValue = (x: unknown) => typeof x === 'string' || (typeof x === 'number' && Number.isFinite(x));
  if (isValue(arg)) return (v) => v === arg;
  if (Array.isArray(arg) && arg.length > 0 && arg.every(isValue)) {
    const set = new Set<unknown>(arg);
    return (v) => set.has(v);
  }
  if (isPlainObject(arg) && Object.keys(arg).length === 1) {
    const [op, s] = Object.entries(arg)[0];
    if (typeof s === 'string' && op === 'prefix') return (v) => typeof v === 'string' && v.startsWith(s);
    if (typeof s === 'string' && op === 'suffix') return (v) => typeof v === 'string' && v.endsWith(s);
  }
  throw new PolicyError(`${at}: ${JSON.stringify(arg)} is not allowed: a string or number, a non-empty list of them, or {"prefix": "…"} / {"suffix": "…"}`);
}

const COMPARE: Record<string, (a: number, b: number) => boolean> = {
  '=': (a, b) => a === b, '<': (a, b) => a < b, '<=': (a, b) => a <= b, '>': (a, b) => a > b, '>=': (a, b) => a >= b,
};

function numericCondition(arg: unknown, at: string): Condition {
  const allowed = 'a list [operator, number] or [lower operator, number, upper operator, number], operators =, <, <=, >, >=';
  if (!Array.isArray(arg) || (arg.length !== 2 && arg.length !== 4)) throw new PolicyError(`${at}: ${JSON.stringify(arg)} is not allowed: ${allowed}`);
  const tests: Array<(n: number) => boolean> = [];
  for (let i = 0; i < arg.length; i += 2) {
    const op = arg[i];
    const bound = arg[i + 1];
    if (typeof op !== 'string' || !(op in COMPARE) || typeof bound !== 'number' || !Number.isFinite(bound)) {
      throw new PolicyError(`${at}: ${JSON.stringify(arg)} is not allowed: ${allowed}`);
    }
    tests.push((n) => COMPARE[op](n, bound));
  }
  if (arg.length === 4) {
    const [lo, a, hi, b] = arg as [string, number, string, number];
    if (!(lo === '>' || lo === '>=') || !(hi === '<' || hi === '<=') || !(a < b)) {
      throw new PolicyError(`${at}: ${JSON.stringify(arg)} is not a range: a lower bound (> or >=) then a greater upper bound (< or <=)`);
    }
  }
  return some((v) => typeof v === 'number' && tests.every((t) => t(v)));
}

function ipv4(text: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0] << 24) >>> 0) + (parts[1] << 16) + (parts[2] << 8) + parts[3];
}

function cidrCondition(arg: unknown, at: string): Condition {
  const m = typeof arg === 'string' ? /^([\d.]+)\/(\d{1,2})$/.exec(arg) : null;
  const base = m ? ipv4(m[1]) : undefined;
  const bits = m ? Number(m[2]) : NaN;
  if (base === undefined || !(bits >= 0 && bits <= 32)) {
    throw new PolicyError(`${at}: ${JSON.stringify(arg)} is not allowed: an IPv4 block such as 10.0.0.0/24`);
  }
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return some((v) => {
    const ip = typeof v === 'string' ? ipv4(v) : undefined;
    return ip !== undefined && ((ip & mask) >>> 0) === ((base & mask) >>> 0);
  });
}

// ── the broker ───────────────────────────────────────────────────────────

interface Subscription {
  readonly spec: TopicSubscription;
  readonly arn: string;
  readonly matches: ((input: FilterInput) => boolean) | undefined;
}

interface TopicState {
  readonly spec: TopicSpec;
  readonly counters: { published: number; delivered: number; filteredOut: number };
}

/**
 * The topics of a platform and the functions subscribed to them.
 *
 * @example
 * const topics = new TopicBroker({ store, enqueueAsync: (fn, payload, id, q) => sources.enqueue(fn, payload, q, id) });
 * topics.ensureTopics(service.topics);
 * topics.setSubscriptions(service.topicEvents.map((e) => ({ ...e, functionName: nameOf(e.functionKey) })));
 * topics.start();                                   // fans out what a previous run left
 * const { messageId } = topics.publish('orders', '{"id":1}', { messageAttributes: { kind: { DataType: 'String', StringValue: 'new' } } });
 */
export class TopicBroker {
  readonly region: string;
  private readonly store: Store;
  private readonly now: () => number;
  private readonly retryIntervalMs: number;
  private readonly endpoint: string;
  private readonly onError: (message: string, error: unknown) => void;
  private readonly topics = new Map<string, TopicState>();
  private subscriptionList: Subscription[] = [];
  /** Fan-outs being handed over now (`<row>\n<subscription ARN>`), so a retry does not hand them twice. */
  private readonly handing = new Set<string>();
  private readonly pendingPromises = new Set<Promise<void>>();
  private retryTimer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(private readonly options: TopicBrokerOptions) {
    this.store = options.store;
    this.region = options.region ?? 'us-east-1';
    this.now = options.now ?? Date.now;
    this.retryIntervalMs = options.retryIntervalMs ?? 1_000;
    this.endpoint = (options.endpoint ?? `https://sns.${this.region}.amazonaws.com`).replace(/\/+$/, '');
    this.onError = options.onError ?? ((message, error) => process.emitWarning(`nimbus topics: ${message}: ${(error as Error)?.message ?? String(error)}`));
  }

  /**
   * Adds topics (or changes their display names).
   *
   * Errors: throws naming a topic whose name is not 1–256 letters, digits, - and _.
   */
  ensureTopics(specs: readonly TopicSpec[]): void {
    for (const s of specs) {
      if (!/^[\w-]{1,256}$/.test(s.name)) throw new Error(`topic ${JSON.stringify(s.name)}: not a valid name (1 to 256 letters, digits, - and _)`);
    }
    for (const s of specs) {
      this.topics.set(s.name, { spec: Object.freeze({ ...s }), counters: this.topics.get(s.name)?.counters ?? { published: 0, delivered: 0, filteredOut: 0 } });
    }
  }

  /** Forgets topics and their subscriptions (fan-outs already recorded are still delivered). */
  removeTopics(names: readonly string[]): void {
    const gone = new Set(names);
    for (const n of gone) this.topics.delete(n);
    this.subscriptionList = this.subscriptionList.filter((s) => !gone.has(s.spec.topic));
  }

  /** The topics' settings. */
  topicSpecs(): TopicSpec[] {
    return [...this.topics.values()].map((t) => t.spec);
  }

  /** The topics' names, sorted. */
  topicNames(): string[] {
    return [...this.topics.keys()].sort();
  }

  /** The ARN of a topic of this broker. */
  arn(topic: string): string {
    return topicArn(this.region, topic);
  }

  /**
   * Replaces the subscriptions. Each filter policy is compiled now.
   *
   * Errors: throws naming the subscription when its topic is unknown (listing
   * the topics) or its filter policy is invalid (the path, value and what is
   * allowed); nothing is changed then.
   */
  setSubscriptions(subscriptions: readonly TopicSubscription[]): void {
    const next: Subscription[] = [];
    const seen = new Set<string>();
    for (const s of subscriptions) {
      const where = `the sns subscription of ${s.functionName} to topic ${s.topic}`;
      if (!this.topics.has(s.topic)) throw new EventSourceError('NotFound', `${where}: ${this.unknownTopic(s.topic)}`, 404);
      const arn = subscriptionArn(this.region, s.topic, s.functionName, s.qualifier);
      if (seen.has(arn)) continue; // Subscribing twice is one subscription, as SNS.
      seen.add(arn);
      let matches: Subscription['matches'];
      try {
        matches = s.filterPolicy === undefined ? undefined : compileFilterPolicy(s.filterPolicy, s.filterPolicyScope ?? 'MessageAttributes');
      } catch (e) {
        throw new Error(`${where}: ${(e as Error).message}`, { cause: e });
      }
      next.push({ spec: Object.freeze({ ...s }), arn, matches });
    }
    this.subscriptionList = next;
  }

  /** The subscriptions. */
  subscriptions(): SubscriptionStatus[] {
    return this.subscriptionList.map((s) => Object.freeze({
      topic: s.spec.topic, topicArn: this.arn(s.spec.topic), subscriptionArn: s.arn, functionName: s.spec.functionName,
      ...(s.spec.qualifier !== undefined ? { qualifier: s.spec.qualifier } : {}),
      ...(s.spec.filterPolicy !== undefined ? { filterPolicy: s.spec.filterPolicy } : {}),
      filterPolicyScope: s.spec.filterPolicyScope ?? 'MessageAttributes',
    }));
  }

  /**
   * Publishes a message (SNS Publish). It is matched against every
   * subscription of the topic now; the publish and the subscriptions it
   * matched are committed to the store before this returns, and each is
   * then handed to the asynchronous queue (at once when enqueueAsync is
   * synchronous; a refused one is tried again every `retryIntervalMs`).
   *
   * Errors (EventSourceError): `NotFound` naming the topics that exist;
   * `InvalidParameter` when the message is empty, it and its attributes are
   * over 262,144 bytes (256 KiB), the subject is not 1–99 printable
   * characters, or an attribute is invalid. A store failure is thrown as it
   * is (the message was not accepted).
   */
  publish(topic: string, message: string, options: PublishOptions = {}): { messageId: string } {
    const state = this.topics.get(topic);
    if (!state) throw new EventSourceError('NotFound', this.unknownTopic(topic), 404);
    if (typeof message !== 'string' || message.length === 0) {
      throw new EventSourceError('InvalidParameter', `a message to topic ${topic} must not be empty`);
    }
    const { attributes, bytes: attributeBytes } = normaliseAttributes(options.messageAttributes, 'SNS');
    const bytes = Buffer.byteLength(message, 'utf8') + attributeBytes;
    if (bytes > SNS_LIMITS.messageBytes) {
      throw new EventSourceError('InvalidParameter',
        `the message to topic ${topic} is ${bytes.toLocaleString('en-US')} bytes (message and attributes): over SNS's limit of 262,144 bytes (256 KiB)`);
    }
    const subject = options.subject;
    if (subject !== undefined && (typeof subject !== 'string' || subject.length === 0 || subject.length > SNS_LIMITS.subjectLength
      || /[\x00-\x1f\x7f]/.test(subject))) {
      throw new EventSourceError('InvalidParameter', `the subject ${JSON.stringify(subject)} is not allowed: 1 to 99 characters, no line breaks or control characters`);
    }
    const messageId = randomUUID();
    const input: FilterInput = { attributes, message };
    const matched = this.subscriptionList.filter((s) => s.spec.topic === topic && (s.matches === undefined || s.matches(input)));
    const subscribed = this.subscriptionList.filter((s) => s.spec.topic === topic).length;
    const record = {
      messageId, topic, message, publishedMs: this.now(),
      ...(subject !== undefined ? { subject } : {}),
      ...(attributes.length ? { attributes: JSON.stringify(attributes) } : {}),
    };
    const deliveries = matched.length === 0 ? [] // Nothing to deliver: accepted and dropped, as SNS.
      : this.store.publishTopicMessage(record, matched.map((s) => ({ functionName: qualifiedName(s.spec), subscriptionArn: s.arn })));
    state.counters.published++;
    state.counters.filteredOut += subscribed - matched.length;
    let refused = false;
    for (const d of deliveries) if (!this.hand(d, `${d.messageRow}\n${d.subscriptionArn}`)) refused = true;
    if (refused) this.armRetry();
    return { messageId };
  }

  /** Fans out what the store holds (a previous process's unfinished publishes included), and keeps retrying refused ones. Idempotent. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.drain();
  }

  /** Stops retrying and waits for fan-outs being handed over (an asynchronous enqueueAsync) to settle. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.retryTimer) { clearTimeout(this.retryTimer); this.retryTimer = undefined; }
    await Promise.allSettled([...this.pendingPromises]);
  }

  /** Counters and pending fan-outs of one topic, or of every topic (by name). */
  stats(topic?: string): TopicStats[] {
    if (topic !== undefined && !this.topics.has(topic)) throw new EventSourceError('NotFound', this.unknownTopic(topic), 404);
    const names = topic === undefined ? [...this.topics.keys()].sort() : [topic];
    return names.map((name) => {
      const t = this.topics.get(name)!;
      return Object.freeze({
        topic: name, arn: this.arn(name),
        subscriptions: this.subscriptionList.filter((s) => s.spec.topic === name).length,
        ...t.counters, pending: this.store.pendingTopicDeliveryCount(name),
      });
    });
  }

  /**
   * The SNS event of one fan-out, field for field as Lambda's (with-sns.html,
   * "Example Amazon SNS message event"). Nimbus does not sign messages:
   * Signature is `EXAMPLE`, as in AWS's sample events.
   */
  snsEvent(d: Pick<TopicDeliveryRow, 'messageId' | 'topic' | 'message' | 'subject' | 'attributes' | 'publishedMs' | 'subscriptionArn'>): SnsEvent {
    const attributes: SnsRecord['Sns']['MessageAttributes'] = {};
    for (const a of d.attributes === undefined ? [] : JSON.parse(d.attributes) as StoredAttribute[]) {
      attributes[a.name] = { Type: a.dataType, Value: a.binaryValue ?? a.stringValue ?? '' };
    }
    return {
      Records: [{
        EventVersion: '1.0',
        EventSubscriptionArn: d.subscriptionArn,
        EventSource: 'aws:sns',
        Sns: {
          SignatureVersion: '1',
          Timestamp: new Date(d.publishedMs).toISOString(),
          Signature: 'EXAMPLE',
          SigningCertUrl: `${this.endpoint}/SimpleNotificationService-nimbus.pem`,
          MessageId: d.messageId,
          Message: d.message,
          MessageAttributes: attributes,
          Type: 'Notification',
          UnsubscribeUrl: `${this.endpoint}/?Action=Unsubscribe&SubscriptionArn=${d.subscriptionArn}`,
          TopicArn: topicArn(this.region, d.topic),
          Subject: d.subject ?? null,
        },
      }],
    };
  }

  // ── internals ───────────────────────────────────────────────────────────

  private unknownTopic(name: string): string {
    const names = [...this.topics.keys()].sort();
    return `topic ${JSON.stringify(name)} does not exist; ${names.length ? `the topics are: ${names.join(', ')}` : 'there are no topics'}`;
  }

  /** Hands every pending fan-out in the store to the asynchronous queue; arms a retry when one is refused. */
  private drain(): void {
    let rows: TopicDeliveryRow[];
    try {
      rows = this.store.pendingTopicDeliveries();
    } catch (e) {
      this.onError('cannot read the fan-outs to do, will try again', e);
      this.armRetry();
      return;
    }
    let refused = false;
    for (const d of rows) {
      const key = `${d.messageRow}\n${d.subscriptionArn}`;
      if (this.handing.has(key)) continue;
      if (!this.hand(d, key)) refused = true;
    }
    if (refused) this.armRetry();
  }

  private armRetry(): void {
    if (!this.running || this.retryTimer) return;
    this.retryTimer = setTimeout(() => { this.retryTimer = undefined; this.drain(); }, this.retryIntervalMs);
    this.retryTimer.unref();
  }

  /** One fan-out; false when it was refused at once. The request id is the same every time, so a repeat is one queued event. */
  private hand(d: TopicDeliveryRow, key: string): boolean {
    const [functionName, qualifier] = splitQualified(d.functionName);
    const requestId = stableUuid(`sns-delivery\n${d.messageId}\n${d.subscriptionArn}`);
    const done = () => {
      if (this.store.completeTopicDelivery(d.messageRow, d.subscriptionArn)) {
        const t = this.topics.get(d.topic);
        if (t) t.counters.delivered++;
      }
    };
    let result: unknown;
    try {
      result = this.options.enqueueAsync(functionName, JSON.stringify(this.snsEvent(d)), requestId, qualifier);
    } catch (e) {
      this.onError(`cannot hand message ${d.messageId} of topic ${d.topic} to ${d.functionName}, will try again`, e);
      return false;
    }
    if (!isPromiseLike(result)) {
      try { done(); } catch (e) { this.onError(`cannot mark message ${d.messageId} fanned out to ${d.functionName}`, e); }
      return true;
    }
    this.handing.add(key);
    const p: Promise<void> = Promise.resolve(result).then(done).catch((e: unknown) => {
      this.onError(`cannot hand message ${d.messageId} of topic ${d.topic} to ${d.functionName}, will try again`, e);
      this.armRetry();
    }).finally(() => {
      this.handing.delete(key);
      this.pendingPromises.delete(p);
    });
    this.pendingPromises.add(p);
    return true;
  }
}

function isPromiseLike(v: unknown): v is PromiseLike<unknown> {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as { then?: unknown }).then === 'function';
}

/** `name` or `name:qualifier` (a function name never has a colon). */
function qualifiedName(s: { functionName: string; qualifier?: string }): string {
  return s.qualifier === undefined ? s.functionName : `${s.functionName}:${s.qualifier}`;
}

function splitQualified(name: string): [string, string | undefined] {
  const i = name.indexOf(':');
  return i < 0 ? [name, undefined] : [name.slice(0, i), name.slice(i + 1)];
}
