/**
 * Event sources of a serverless.yml other than HTTP: `schedule`, `sqs` and
 * `sns` events, the queues and topics they name (declared under
 * `resources.Resources` as `AWS::SQS::Queue` / `AWS::SNS::Topic`, or made by
 * Nimbus from the name alone), and each function's asynchronous invocation
 * settings (`maximumRetryAttempts`, `maximumEventAge`, `destinations`).
 *
 * Syntax as the Serverless Framework documents it:
 * https://www.serverless.com/framework/docs/providers/aws/events/schedule
 * https://www.serverless.com/framework/docs/providers/aws/events/sqs
 * https://www.serverless.com/framework/docs/providers/aws/events/sns
 * https://www.serverless.com/framework/docs/providers/aws/guide/functions#destinations
 */
import { ACCOUNT_ID } from '../core/index.js';
import type {
  DestinationRef, EventInvokeConfig, QueueEventSpec, QueueSpec, ScheduleSpec, TopicEventSpec, TopicSpec,
} from '../core/index.js';
import type { ConfigContext } from './context.js';
import type { Segment } from './source.js';
import { isPlainObject, type Resolver } from './variables.js';

const UNKNOWN = 'unknown key (ignored)';
const NOT_USED = 'not used by Nimbus yet (ignored)';

/** Checks a `rate(...)` / `cron(...)` expression; throws an Error saying what is wrong. Set by the events part. */
export type ScheduleValidator = (expression: string) => void;

/** What the events of all functions add up to, before queue and topic names are resolved. */
export interface EventDrafts {
  readonly schedules: ScheduleSpec[];
  readonly queueEvents: Array<QueueEventSpec & { readonly at: Segment[] }>;
  readonly topicEvents: TopicEventSpec[];
}

/** An empty collection of event drafts, filled function by function. */
export function emptyDrafts(): EventDrafts {
  return { schedules: [], queueEvents: [], topicEvents: [] };
}

/** SQS's limits: https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html */
const MAX_BATCH_SIZE = 10_000;
const MAX_BATCHING_WINDOW_S = 300;

/**
 * `- schedule: rate(10 minutes)` or `- schedule: { rate: <expr or list>, enabled, input, inputPath, name, description }`.
 */
export function readScheduleEvent(ctx: ConfigContext, r: Resolver, functionKey: string, path: Segment[], drafts: EventDrafts, validate?: ScheduleValidator): void {
  const ev = r.value(path);
  const allowed = 'rate(5 minutes), cron(0 12 * * ? *), or { rate: ..., enabled, input, inputPath, name }';
  let expressions: Array<{ text: unknown; at: Segment[] }>;
  let enabled = true;
  let input: unknown;
  let inputPath: string | undefined;
  let name: string | undefined;
  let description: string | undefined;
  if (typeof ev === 'string') {
    expressions = [{ text: ev, at: path }];
  } else if (isPlainObject(ev)) {
    for (const k of Object.keys(ev)) {
      if (!['rate', 'enabled', 'input', 'inputPath', 'name', 'description', 'inputTransformer', 'method', 'timezone'].includes(k)) ctx.warn([...path, k], UNKNOWN);
      else if (k === 'inputTransformer' || k === 'method' || k === 'timezone') ctx.warn([...path, k], NOT_USED);
    }
    const rate = ev.rate;
    if (rate === undefined) throw ctx.invalid([...path, 'rate'], rate, 'a schedule needs rate', allowed);
    expressions = Array.isArray(rate) ? rate.map((text, i) => ({ text, at: [...path, 'rate', i] })) : [{ text: rate, at: [...path, 'rate'] }];
    if (ev.name !== undefined && expressions.length > 1) {
      throw ctx.invalid([...path, 'name'], ev.name, 'a name is for one rule, and rate lists several expressions', 'no name, or one expression (as the Serverless Framework)');
    }
    if (ev.enabled !== undefined) {
      if (typeof ev.enabled !== 'boolean') throw ctx.invalid([...path, 'enabled'], ev.enabled, 'not a boolean', 'true or false');
      enabled = ev.enabled;
    }
    if (ev.input !== undefined && ev.inputPath !== undefined) {
      throw ctx.invalid([...path, 'inputPath'], ev.inputPath, 'input and inputPath cannot both be given', 'one of them');
    }
    if (ev.input !== undefined) input = typeof ev.input === 'string' ? parseJsonInput(ctx, [...path, 'input'], ev.input) : ev.input;
    if (ev.inputPath !== undefined) {
      if (typeof ev.inputPath !== 'string' || !ev.inputPath.startsWith('$')) throw ctx.invalid([...path, 'inputPath'], ev.inputPath, 'not a JSONPath', 'a JSONPath such as $.detail');
      inputPath = ev.inputPath;
    }
    if (ev.name !== undefined) {
      if (typeof ev.name !== 'string' || !/^[\w.-]{1,64}$/.test(ev.name)) throw ctx.invalid([...path, 'name'], ev.name, 'not a valid rule name', '1 to 64 letters, digits, ., - and _');
      name = ev.name;
    }
    if (typeof ev.description === 'string') description = ev.description;
  } else {
    throw ctx.invalid(path, ev, 'not a schedule expression', allowed);
  }
  if (expressions.length === 0) throw ctx.invalid([...path, 'rate'], [], 'the list of expressions is empty', allowed);
  expressions.forEach(({ text, at }, i) => {
    if (typeof text !== 'string' || !/^(rate|cron)\(.*\)$/.test(text.trim())) throw ctx.invalid(at, text, 'not a schedule expression', allowed);
    try {
      validate?.(text.trim());
    } catch (e) {
      // The events part's ScheduleExpressionError says which field is wrong (detail) and what it allows.
      const err = e as Error & { detail?: string; allowed?: string };
      throw ctx.invalid(at, text, err.detail ?? err.message, err.allowed ?? allowed);
    }
    const n = drafts.schedules.filter((s) => s.functionKey === functionKey).length + 1;
    const id = name ?? `${functionKey}-schedule-${n}`;
    drafts.schedules.push({
      id, functionKey, expression: text.trim(), enabled,
      ...(input !== undefined ? { input } : {}), ...(inputPath ? { inputPath } : {}), ...(description ? { description } : {}),
    });
  });
}

/** `input:` as a string must be JSON (EventBridge refuses other text). */
function parseJsonInput(ctx: ConfigContext, path: Segment[], text: string): unknown {
  try { return JSON.parse(text); } catch (e) {
    throw ctx.invalid(path, text, `not JSON: ${(e as Error).message}`, 'a mapping, or a string of JSON');
  }
}

/**
 * `- sqs: <queue ARN or !GetAtt Queue.Arn>` or `- sqs: { arn, batchSize, maximumBatchingWindow, functionResponseType, enabled }`.
 * The queue is named by the ARN's last part, or is the resource the `!GetAtt` names.
 */
export function readSqsEvent(ctx: ConfigContext, r: Resolver, functionKey: string, path: Segment[], drafts: EventDrafts): void {
  const ev = ctx.lines.tag(path) ? refAt(ctx, r, path) : isPlainObject(r.node(path).value) ? mappingAt(ctx, r, path, ['arn']) : r.value(path);
  const allowed = 'arn:aws:sqs:REGION:ACCOUNT:QUEUE, !GetAtt MyQueue.Arn, or { arn, batchSize, maximumBatchingWindow, functionResponseType }';
  let arn: unknown;
  let arnAt = path;
  let batchSize = 10;
  let window = 0;
  let report = false;
  let enabled = true;
  if (isPlainObject(ev) && !isGetAtt(ev)) {
    for (const k of Object.keys(ev)) {
      if (!['arn', 'batchSize', 'maximumBatchingWindow', 'functionResponseType', 'enabled', 'filterPatterns', 'maximumConcurrency'].includes(k)) ctx.warn([...path, k], UNKNOWN);
      else if (k === 'filterPatterns' || k === 'maximumConcurrency') ctx.warn([...path, k], NOT_USED);
    }
    arn = ev.arn;
    arnAt = [...path, 'arn'];
    if (ev.batchSize !== undefined) {
      const n = Number(ev.batchSize);
      if (!Number.isInteger(n) || n < 1 || n > MAX_BATCH_SIZE) throw ctx.invalid([...path, 'batchSize'], ev.batchSize, 'not a batch size', `an integer from 1 to ${MAX_BATCH_SIZE}`);
      batchSize = n;
    }
    if (ev.maximumBatchingWindow !== undefined) {
      const n = Number(ev.maximumBatchingWindow);
      if (!Number.isInteger(n) || n < 0 || n > MAX_BATCHING_WINDOW_S) throw ctx.invalid([...path, 'maximumBatchingWindow'], ev.maximumBatchingWindow, 'not a batching window', `whole seconds from 0 to ${MAX_BATCHING_WINDOW_S}`);
      window = n;
    }
    if (ev.functionResponseType !== undefined) {
      if (ev.functionResponseType !== 'ReportBatchItemFailures') throw ctx.invalid([...path, 'functionResponseType'], ev.functionResponseType, 'not a function response type', 'ReportBatchItemFailures');
      report = true;
    }
    if (ev.enabled !== undefined) {
      if (typeof ev.enabled !== 'boolean') throw ctx.invalid([...path, 'enabled'], ev.enabled, 'not a boolean', 'true or false');
      enabled = ev.enabled;
    }
  } else {
    arn = ev;
  }
  if (typeof arn !== 'string' && !isGetAtt(arn)) throw ctx.invalid(arnAt, arn, 'not a queue ARN', allowed);
  drafts.queueEvents.push({
    functionKey, queue: refName(arn as string | GetAtt), batchSize, maximumBatchingWindow: window, reportBatchItemFailures: report, enabled, at: arnAt,
  });
}

/** `- sns: topicName`, `- sns: arn:aws:sns:…:name`, or `- sns: { topicName, arn, displayName, filterPolicy }`. */
export function readSnsEvent(ctx: ConfigContext, r: Resolver, functionKey: string, path: Segment[], drafts: EventDrafts): { topic: string; displayName?: string } {
  const ev = ctx.lines.tag(path) ? refAt(ctx, r, path) : isPlainObject(r.node(path).value) ? mappingAt(ctx, r, path, ['arn']) : r.value(path);
  const allowed = 'a topic name, arn:aws:sns:REGION:ACCOUNT:TOPIC, or { topicName, arn, displayName, filterPolicy }';
  let topic: string;
  let displayName: string | undefined;
  let filterPolicy: Record<string, unknown> | undefined;
  if ((typeof ev === 'string' && ev !== '') || isGetAtt(ev)) {
    topic = refName(ev as string | GetAtt);
  } else if (isPlainObject(ev)) {
    for (const k of Object.keys(ev)) {
      if (!['topicName', 'arn', 'displayName', 'filterPolicy', 'filterPolicyScope', 'redrivePolicy', 'kmsMasterKeyId'].includes(k)) ctx.warn([...path, k], UNKNOWN);
      else if (k === 'filterPolicyScope' || k === 'redrivePolicy' || k === 'kmsMasterKeyId') ctx.warn([...path, k], NOT_USED);
    }
    const source = ev.arn ?? ev.topicName;
    if (typeof source !== 'string' && !isGetAtt(source)) throw ctx.invalid(path, ev, 'an sns event needs topicName or arn', allowed);
    topic = typeof ev.topicName === 'string' ? ev.topicName : refName(source as string | GetAtt);
    if (typeof ev.displayName === 'string') displayName = ev.displayName;
    if (ev.filterPolicy !== undefined) {
      if (!isPlainObject(ev.filterPolicy)) throw ctx.invalid([...path, 'filterPolicy'], ev.filterPolicy, 'not a filter policy', 'a mapping of attribute names to lists of allowed values');
      filterPolicy = ev.filterPolicy;
    }
  } else {
    throw ctx.invalid(path, ev, 'not an sns event', allowed);
  }
  if (!/^[\w-]{1,256}$/.test(topic)) throw ctx.invalid(path, ev, `topic name ${topic} is not valid`, '1 to 256 letters, digits, - and _');
  drafts.topicEvents.push({ functionKey, topic, ...(filterPolicy ? { filterPolicy } : {}) });
  return { topic, ...(displayName ? { displayName } : {}) };
}

/**
 * The value at `path` where a reference to a resource may stand: `!GetAtt Id.Arn` and `!Ref Id`
 * become their long forms; anything else is resolved as usual.
 */
function refAt(ctx: ConfigContext, r: Resolver, path: Segment[]): unknown {
  const tag = ctx.lines.tag(path);
  if (tag === '!GetAtt' || tag === '!Ref') {
    const raw = r.node(path.slice(0, -1)).value as Record<string | number, unknown>;
    const text = String(raw[path[path.length - 1] as string | number]);
    return tag === '!Ref' ? { Ref: text } : { 'Fn::GetAtt': text.split('.') as [string, string] };
  }
  return r.value(path);
}

/** A mapping's values, each resolved except the `refs` keys (which may hold `!GetAtt` / `!Ref`). */
function mappingAt(ctx: ConfigContext, r: Resolver, path: Segment[], refs: readonly string[]): Record<string, unknown> {
  const raw = r.node(path).value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(raw)) out[k] = refs.includes(k) ? refAt(ctx, r, [...path, k]) : r.value([...path, k]);
  return out;
}

/** Like mappingAt, but the `raw` keys are left as they are (for a nested mapping read after). */
function mappingAtRaw(ctx: ConfigContext, r: Resolver, path: Segment[], raw: readonly string[]): Record<string, unknown> {
  const node = r.node(path).value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(node)) out[k] = raw.includes(k) ? node[k] : refAt(ctx, r, [...path, k]);
  return out;
}

/** `{ "Fn::GetAtt": [Id, Arn] }` (the long form of `!GetAtt Id.Arn`). */
type GetAtt = { 'Fn::GetAtt': [string, string] } | { Ref: string };

function isGetAtt(v: unknown): v is GetAtt {
  if (!isPlainObject(v)) return false;
  const g = v['Fn::GetAtt'];
  return (Array.isArray(g) && typeof g[0] === 'string') || typeof v.Ref === 'string';
}

/**
 * The name in a reference: the last part of an ARN, the logical id of a
 * `!GetAtt Id.Arn` (YAML's short form reaches us as the text `Id.Arn`) or
 * of `{ Fn::GetAtt: [Id, Arn] }` / `{ Ref: Id }`. Logical ids are mapped to
 * queue and topic names by `resolveResources`.
 */
function refName(v: string | GetAtt): string {
  if (typeof v !== 'string') return 'Ref' in v ? v.Ref : v['Fn::GetAtt'][0];
  if (v.startsWith('arn:')) return v.split(':').pop() ?? v;
  return v.endsWith('.Arn') ? v.slice(0, -4) : v;
}

/** The queues and topics of `resources.Resources`, by logical id. */
export function readResources(ctx: ConfigContext, r: Resolver): { queues: Map<string, QueueSpec>; topics: Map<string, TopicSpec> } {
  const queues = new Map<string, QueueSpec>();
  const topics = new Map<string, TopicSpec>();
  // Only queues and topics are resolved: a table's or a bucket's variables may name what Nimbus cannot read (${cf:…}).
  const resources = r.node(['resources', 'Resources']).value;
  if (resources === undefined || resources === null) return { queues, topics };
  if (!isPlainObject(resources)) throw ctx.invalid(['resources', 'Resources'], resources, 'not a mapping', 'a mapping of logical ids to { Type, Properties }');
  for (const id of Object.keys(resources)) {
    const path: Segment[] = ['resources', 'Resources', id];
    const type = r.node([...path, 'Type']).value;
    if (type !== 'AWS::SQS::Queue' && type !== 'AWS::SNS::Topic') continue;
    const propsNode = ctx.lines.tag([...path, 'Properties']) ? undefined : r.node([...path, 'Properties']).value;
    // RedrivePolicy stays raw here: its deadLetterTargetArn may be a !GetAtt.
    const props: Record<string, unknown> = isPlainObject(propsNode) ? mappingAtRaw(ctx, r, [...path, 'Properties'], ['RedrivePolicy']) : {};
    if (isPlainObject(props.RedrivePolicy)) {
      props.RedrivePolicy = mappingAt(ctx, r, [...path, 'Properties', 'RedrivePolicy'], ['deadLetterTargetArn']);
    }
    const res = { Type: type, Properties: props };
    if (res.Type === 'AWS::SQS::Queue') {
      const name = typeof props.QueueName === 'string' ? props.QueueName : id;
      const redrive = isPlainObject(props.RedrivePolicy) ? props.RedrivePolicy : undefined;
      const seconds = (key: string, def: number, max: number): number => {
        const v = props[key];
        if (v === undefined) return def;
        const n = Number(v);
        if (!Number.isInteger(n) || n < 0 || n > max) throw ctx.invalid([...path, 'Properties', key], v, 'out of range', `whole seconds from 0 to ${max}`);
        return n;
      };
      let maxReceiveCount: number | undefined;
      let deadLetterQueue: string | undefined;
      if (redrive) {
        const n = Number(redrive.maxReceiveCount);
        if (!Number.isInteger(n) || n < 1 || n > 1000) throw ctx.invalid([...path, 'Properties', 'RedrivePolicy', 'maxReceiveCount'], redrive.maxReceiveCount, 'not a receive count', 'an integer from 1 to 1000');
        const target = redrive.deadLetterTargetArn;
        if (typeof target !== 'string' && !isGetAtt(target)) throw ctx.invalid([...path, 'Properties', 'RedrivePolicy', 'deadLetterTargetArn'], target, 'not a queue ARN', 'arn:aws:sqs:...:NAME or !GetAtt DeadLetterQueue.Arn');
        maxReceiveCount = n;
        deadLetterQueue = refName(target as string | GetAtt);
      }
      queues.set(id, {
        name, fifo: name.endsWith('.fifo'),
        visibilityTimeout: seconds('VisibilityTimeout', 30, 43_200),
        messageRetentionPeriod: seconds('MessageRetentionPeriod', 345_600, 1_209_600),
        delaySeconds: seconds('DelaySeconds', 0, 900),
        ...(deadLetterQueue ? { deadLetterQueue, maxReceiveCount } : {}),
      });
    } else if (res.Type === 'AWS::SNS::Topic') {
      topics.set(id, { name: typeof props.TopicName === 'string' ? props.TopicName : id, ...(typeof props.DisplayName === 'string' ? { displayName: props.DisplayName } : {}) });
    }
  }
  return { queues, topics };
}

/**
 * The queues and topics of a service: those declared under resources, plus
 * one with default settings per name an event uses that no resource declares
 * (Nimbus makes it). Event references to logical ids become queue and topic names.
 */
export function resolveResources(
  ctx: ConfigContext, drafts: EventDrafts, declared: { queues: Map<string, QueueSpec>; topics: Map<string, TopicSpec> },
  snsDetails: ReadonlyMap<string, string | undefined>,
): { queues: QueueSpec[]; topics: TopicSpec[]; queueEvents: QueueEventSpec[]; topicEvents: TopicEventSpec[] } {
  const queues = new Map<string, QueueSpec>();
  for (const q of declared.queues.values()) queues.set(q.name, q);
  const queueName = (ref: string) => declared.queues.get(ref)?.name ?? ref;
  for (const q of [...queues.values()]) {
    if (q.deadLetterQueue) queues.set(q.name, { ...q, deadLetterQueue: queueName(q.deadLetterQueue) });
  }
  const queueEvents = drafts.queueEvents.map(({ at, ...e }) => {
    const name = queueName(e.queue);
    if (!/^[\w-]{1,80}(\.fifo)?$/.test(name)) throw ctx.invalid(at, e.queue, `queue name ${name} is not valid`, '1 to 80 letters, digits, - and _ (.fifo at the end for FIFO)');
    if (!queues.has(name)) queues.set(name, { name, fifo: name.endsWith('.fifo'), visibilityTimeout: 30, messageRetentionPeriod: 345_600, delaySeconds: 0 });
    return { ...e, queue: name };
  });
  for (const q of queues.values()) {
    if (q.deadLetterQueue && !queues.has(q.deadLetterQueue)) {
      queues.set(q.deadLetterQueue, { name: q.deadLetterQueue, fifo: q.deadLetterQueue.endsWith('.fifo'), visibilityTimeout: 30, messageRetentionPeriod: 1_209_600, delaySeconds: 0 });
    }
  }
  const topics = new Map<string, TopicSpec>();
  for (const t of declared.topics.values()) topics.set(t.name, t);
  const topicName = (ref: string) => declared.topics.get(ref)?.name ?? ref;
  const topicEvents = drafts.topicEvents.map((e) => {
    const name = topicName(e.topic);
    if (!topics.has(name)) {
      const displayName = snsDetails.get(e.topic);
      topics.set(name, { name, ...(displayName ? { displayName } : {}) });
    }
    return { ...e, topic: name };
  });
  return { queues: [...queues.values()], topics: [...topics.values()], queueEvents, topicEvents };
}

/**
 * A function's asynchronous invocation settings: `maximumRetryAttempts`
 * (0–2), `maximumEventAge` (60–21600 s), `destinations: { onSuccess, onFailure }`
 * where each is a function key, a function/queue/topic ARN, or `{ type, arn }`.
 * https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-configuring.html
 */
export function readEventInvokeConfig(
  ctx: ConfigContext, r: Resolver, base: Segment[], functionNames: ReadonlyMap<string, string>,
): EventInvokeConfig | undefined {
  const out: { -readonly [K in keyof EventInvokeConfig]: EventInvokeConfig[K] } = {};
  const retries = r.value([...base, 'maximumRetryAttempts']);
  if (retries !== undefined && retries !== null) {
    const n = Number(retries);
    if (!Number.isInteger(n) || n < 0 || n > 2) throw ctx.invalid([...base, 'maximumRetryAttempts'], retries, 'out of range', 'an integer from 0 to 2');
    out.maximumRetryAttempts = n;
  }
  const age = r.value([...base, 'maximumEventAge']);
  if (age !== undefined && age !== null) {
    const n = Number(age);
    if (!Number.isInteger(n) || n < 60 || n > 21_600) throw ctx.invalid([...base, 'maximumEventAge'], age, 'out of range', 'whole seconds from 60 to 21600 (6 hours)');
    out.maximumEventAge = n;
  }
  const destNode = r.node([...base, 'destinations']).value;
  if (destNode !== undefined && destNode !== null) {
    if (!isPlainObject(destNode)) throw ctx.invalid([...base, 'destinations'], destNode, 'not a mapping', '{ onSuccess: ..., onFailure: ... }');
    const dest = mappingAt(ctx, r, [...base, 'destinations'], ['onSuccess', 'onFailure']);
    for (const k of Object.keys(dest)) {
      if (k !== 'onSuccess' && k !== 'onFailure') { ctx.warn([...base, 'destinations', k], UNKNOWN); continue; }
      const v = dest[k];
      const value = isPlainObject(v) && !isGetAtt(v) && !ctx.lines.tag([...base, 'destinations', k]) ? mappingAt(ctx, r, [...base, 'destinations', k], ['arn', 'destination']) : v;
      out[k] = destination(ctx, [...base, 'destinations', k], value, functionNames);
    }
  }
  return Object.keys(out).length ? out : undefined;
}

function destination(ctx: ConfigContext, path: Segment[], v: unknown, functionNames: ReadonlyMap<string, string>): DestinationRef {
  const allowed = 'a function key of this service, or an ARN: arn:aws:lambda:…:function:NAME, arn:aws:sqs:…:QUEUE, arn:aws:sns:…:TOPIC';
  let arn = v;
  if (isPlainObject(v)) arn = v.arn ?? v.destination;
  if (isGetAtt(arn)) {
    // `!GetAtt Id.Arn` is a queue's ARN; `!Ref Id` is a topic's.
    return { kind: 'Ref' in arn ? 'topic' : 'queue', name: refName(arn) };
  }
  if (typeof arn !== 'string' || arn === '') throw ctx.invalid(path, v, 'not a destination', allowed);
  // `!GetAtt Queue.Arn` reaches us as `Queue.Arn`.
  if (!arn.startsWith('arn:') && arn.endsWith('.Arn')) return { kind: 'queue', name: arn.slice(0, -4) };
  if (functionNames.has(arn)) return { kind: 'function', name: functionNames.get(arn)! };
  const parts = arn.split(':');
  if (parts[0] === 'arn' && parts.length >= 6) {
    if (parts[2] === 'lambda' && parts[5] === 'function' && parts[6]) return { kind: 'function', name: parts[6] };
    if (parts[2] === 'sqs') return { kind: 'queue', name: parts[5] };
    if (parts[2] === 'sns') return { kind: 'topic', name: parts[5] };
  }
  throw ctx.invalid(path, v, 'not a function of this service nor a function, queue or topic ARN', allowed);
}

/**
 * What `!Ref` and `!GetAtt` give for the queues and topics Nimbus makes, as
 * CloudFormation documents them: a queue's `Ref` is its URL, `Arn` and
 * `QueueName` its attributes; a topic's `Ref` is its ARN, `TopicName` its name.
 * https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-sqs-queue.html#aws-resource-sqs-queue-return-values
 */
export function resourceReferences(
  ctx: ConfigContext, r: Resolver, declared: { queues: Map<string, QueueSpec>; topics: Map<string, TopicSpec> }, region: string,
): (path: readonly Segment[]) => string | undefined {
  const account = ACCOUNT_ID;
  return (path) => {
    const ref = refAt(ctx, r, [...path]);
    if (!isGetAtt(ref)) return undefined;
    const [id, attribute] = 'Ref' in ref ? [ref.Ref, 'Ref'] : ref['Fn::GetAtt'];
    const q = declared.queues.get(id);
    if (q) {
      if (attribute === 'Ref' || attribute === 'QueueUrl') return `https://sqs.${region}.amazonaws.com/${account}/${q.name}`;
      if (attribute === 'Arn') return `arn:aws:sqs:${region}:${account}:${q.name}`;
      if (attribute === 'QueueName') return q.name;
    }
    const t = declared.topics.get(id);
    if (t) {
      if (attribute === 'Ref' || attribute === 'TopicArn') return `arn:aws:sns:${region}:${account}:${t.name}`;
      if (attribute === 'TopicName') return t.name;
    }
    return undefined;
  };
}
