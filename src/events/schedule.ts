/**
 * Schedule expressions (`rate(...)`, `cron(...)`) and what a scheduled
 * invocation carries: the EventBridge "Scheduled Event", or the target input
 * the Serverless Framework's `input`, `inputPath` and `inputTransformer` make
 * of it.
 *
 * Sources:
 * - expressions: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html
 *   (rate: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rate-expressions.html,
 *   cron: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cron-expressions.html)
 * - the event: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html and
 *   https://docs.aws.amazon.com/lambda/latest/dg/with-eventbridge-scheduler.html (EventBridge invokes
 *   the function asynchronously)
 * - target input: https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_Target.html,
 *   https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html
 * - serverless.yml: https://www.serverless.com/framework/docs/providers/aws/events/schedule
 */
import { createHash } from 'node:crypto';
import { nextCronTime, parseCronFields, ScheduleExpressionError, type CronExpression } from './cron.js';

export { ScheduleExpressionError } from './cron.js';

/** A parsed schedule expression. */
export interface Schedule {
  /** The expression as given, e.g. `rate(5 minutes)` or `cron(0 10 * * ? *)`. */
  readonly expression: string;
  readonly kind: 'rate' | 'cron';
  /**
   * The next fire time strictly after `afterMs` (epoch ms), always a whole
   * UTC minute, or null when the schedule never fires again (a cron whose
   * years are over).
   */
  next(afterMs: number): number | null;
}

/** A `rate(...)` schedule: every `periodMs`, counted from `anchorMs`. */
export interface RateSchedule extends Schedule {
  readonly kind: 'rate';
  readonly value: number;
  readonly unit: 'minute' | 'hour' | 'day';
  readonly periodMs: number;
  readonly anchorMs: number;
}

/** A `cron(...)` schedule. */
export interface CronSchedule extends Schedule {
  readonly kind: 'cron';
  readonly cron: CronExpression;
}

export interface ParseScheduleOptions {
  /**
   * Where a rate counts from (epoch ms, floored to the minute); default 0,
   * so `rate(5 minutes)` fires at :00, :05, … UTC and `rate(1 day)` at
   * midnight UTC. AWS counts from the rule's creation ("A rate expression
   * starts when you create the scheduled event rule"): pass the time the
   * rule was created for that. Ignored by cron.
   */
  readonly anchorMs?: number;
}

const MINUTE_MS = 60_000;
const UNIT_MS = { minute: MINUTE_MS, hour: 60 * MINUTE_MS, day: 24 * 60 * MINUTE_MS } as const;
const RATE_ALLOWED = 'rate(value unit): a positive whole number, then minute, hour or day for 1 and minutes, hours or days above 1, e.g. rate(1 minute), rate(5 minutes), rate(2 hours)';
const EXPRESSION_ALLOWED = 'rate(value unit), e.g. rate(5 minutes), or cron(Minutes Hours Day-of-month Month Day-of-week Year), e.g. cron(0 10 * * ? *)';

/**
 * Parses an EventBridge schedule expression.
 *
 * - `rate(value unit)`: value a positive whole number; unit `minute`, `hour`
 *   or `day` when value is 1 and `minutes`, `hours` or `days` otherwise (AWS
 *   refuses `rate(1 minutes)` and `rate(5 minute)`).
 * - `cron(Minutes Hours Day-of-month Month Day-of-week Year)`: see `cron.ts`.
 *
 * @example parseSchedule('cron(0 10 * * ? *)').next(Date.UTC(2024, 0, 1, 12)) // 2024-01-02T10:00:00Z
 * @throws ScheduleExpressionError saying which part is wrong, what was given and what is allowed.
 */
export function parseSchedule(text: string, options: ParseScheduleOptions = {}): RateSchedule | CronSchedule {
  if (typeof text !== 'string') {
    throw new ScheduleExpressionError(String(text), 'expression', '', 'a schedule expression is a string', EXPRESSION_ALLOWED);
  }
  const expression = text.trim();
  const m = /^(rate|cron)\((.*)\)$/s.exec(expression);
  if (!m) {
    const reason = /^at\(/.test(expression)
      ? 'at(...) is EventBridge Scheduler\'s one-time schedule, not a schedule event\'s'
      : /^(rate|cron)\(/i.test(expression)
        ? 'starts with rate( or cron( in lower case and ends with )'
        : 'is not a rate(...) or cron(...) expression';
    throw new ScheduleExpressionError(expression, 'expression', expression, reason, EXPRESSION_ALLOWED);
  }
  if (m[1] === 'cron') {
    const cron = parseCronFields(m[2], expression);
    return { expression, kind: 'cron', cron, next: (afterMs: number) => nextCronTime(cron, afterMs) };
  }
  return parseRate(expression, m[2], options.anchorMs ?? 0);
}

function parseRate(expression: string, inner: string, anchor: number): RateSchedule {
  const words = inner.split(' ');
  if (words.length !== 2) {
    throw new ScheduleExpressionError(expression, 'expression', inner, 'a rate is a value and a unit separated by one space', RATE_ALLOWED);
  }
  const [valueText, unitText] = words;
  if (!/^[1-9]\d*$/.test(valueText) || !Number.isSafeInteger(Number(valueText))) {
    throw new ScheduleExpressionError(expression, 'rate value', valueText, 'is not a positive whole number (no sign, decimals or leading zeros)', RATE_ALLOWED);
  }
  const value = Number(valueText);
  const singular = unitText.replace(/s$/, '');
  if (singular !== 'minute' && singular !== 'hour' && singular !== 'day') {
    throw new ScheduleExpressionError(expression, 'rate unit', unitText, 'is not a unit of rate', RATE_ALLOWED);
  }
  if (value === 1 && unitText !== singular) {
    throw new ScheduleExpressionError(expression, 'rate unit', unitText, `for 1 the unit is singular: rate(1 ${singular})`, RATE_ALLOWED);
  }
  if (value > 1 && unitText === singular) {
    throw new ScheduleExpressionError(expression, 'rate unit', unitText, `above 1 the unit is plural: rate(${value} ${singular}s)`, RATE_ALLOWED);
  }
  const periodMs = value * UNIT_MS[singular];
  if (!Number.isSafeInteger(periodMs)) {
    throw new ScheduleExpressionError(expression, 'rate value', valueText, 'is too large', RATE_ALLOWED);
  }
  const anchorMs = Math.floor((Number.isFinite(anchor) ? anchor : 0) / MINUTE_MS) * MINUTE_MS;
  return {
    expression, kind: 'rate', value, unit: singular, periodMs, anchorMs,
    next(afterMs: number): number {
      const k = Math.floor((afterMs - anchorMs) / periodMs) + 1;
      return anchorMs + k * periodMs;
    },
  };
}

// ───────────────────────── the Scheduled Event ─────────────────────────

/**
 * The event EventBridge sends a function for a scheduled rule, field for
 * field (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html):
 *
 * ```json
 * { "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
 *   "source": "aws.events", "account": "123456789012", "time": "2015-10-08T16:53:06Z",
 *   "region": "us-east-1", "resources": ["arn:aws:events:us-east-1:123456789012:rule/my-scheduled-rule"],
 *   "detail": {} }
 * ```
 */
export interface ScheduledEvent {
  readonly version: '0';
  readonly id: string;
  readonly 'detail-type': 'Scheduled Event';
  readonly source: 'aws.events';
  readonly account: string;
  /** ISO 8601 UTC without milliseconds: `2019-10-08T16:53:06Z`. */
  readonly time: string;
  readonly region: string;
  /** The rule's ARN, alone. */
  readonly resources: readonly [string];
  readonly detail: Record<string, never>;
}

export interface ScheduledEventParams {
  /** The scheduled time: epoch ms or a Date. */
  readonly time: number | Date;
  readonly region: string;
  /** 12 digits; Nimbus uses `000000000000`. */
  readonly account: string;
  readonly ruleArn: string;
  /** A UUID; {@link scheduledEventId} gives one that is the same for the same rule and time. */
  readonly id: string;
}

/** The EventBridge Scheduled Event for one fire of a rule. */
export function scheduledEvent(p: ScheduledEventParams): ScheduledEvent {
  return {
    version: '0',
    id: p.id,
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: p.account,
    time: isoSeconds(p.time),
    region: p.region,
    resources: [p.ruleArn],
    detail: {},
  };
}

/** `2019-10-08T16:53:06Z`: ISO 8601, UTC, whole seconds, as EventBridge writes `time`. */
export function isoSeconds(time: number | Date): string {
  const ms = typeof time === 'number' ? time : time.getTime();
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * A UUID (version 5 layout, SHA-1 of the rule ARN and the time) that is the
 * same every time the same rule fires for the same scheduled time, so a
 * redelivered fire keeps its id and a function can de-duplicate (EventBridge
 * delivers at least once).
 */
export function scheduledEventId(ruleArn: string, timeMs: number): string {
  const h = createHash('sha1').update(`nimbus-schedule\0${ruleArn}\0${timeMs}`).digest();
  h[6] = (h[6] & 0x0f) | 0x50;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

/** `arn:aws:events:<region>:<account>:rule/<name>`. */
export function ruleArn(region: string, account: string, ruleName: string): string {
  return `arn:aws:events:${region}:${account}:rule/${ruleName}`;
}

/** EventBridge rule names: 1-64 of letters, digits, `.`, `-`, `_` (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutRule.html). */
export const RULE_NAME_RE = /^[.\-_A-Za-z0-9]{1,64}$/;

/**
 * The rule name Nimbus gives a schedule event without `name:`, after the
 * Serverless Framework's CloudFormation logical id
 * (`<Function>EventsRuleSchedule<n>`, `-` → `Dash`, `_` → `Underscore`)
 * behind the stack name `<service>-<stage>`, without CloudFormation's random
 * suffix, cut to 64 characters. `index` counts a function's schedules from 1,
 * one per expression (a `rate:` list gives one rule per item).
 *
 * @example defaultRuleName({ service: 'shop', stage: 'dev', functionKey: 'nightly-report', index: 1 })
 *   // 'shop-dev-NightlyDashreportEventsRuleSchedule1'
 */
export function defaultRuleName(p: { service: string; stage: string; functionKey: string; index: number }): string {
  const normalised = p.functionKey.replace(/-/g, 'Dash').replace(/_/g, 'Underscore');
  const logicalId = `${normalised.charAt(0).toUpperCase()}${normalised.slice(1)}EventsRuleSchedule${p.index}`;
  return `${p.service}-${p.stage}-${logicalId}`.slice(0, 64);
}

// ───────────────────────── target input ─────────────────────────

/** `inputTransformer` of a schedule event (EventBridge's InputTransformer). */
export interface InputTransformer {
  /** Variable name → JSONPath into the event, e.g. `{ eventTime: '$.time' }`. */
  readonly inputPathsMap?: Readonly<Record<string, string>>;
  /** The payload, with `<name>` placeholders, e.g. `{"time": <eventTime>}`. */
  readonly inputTemplate: string;
}

/** What a schedule event's function receives instead of the Scheduled Event; at most one of the three. */
export interface ScheduleTargetInput {
  /**
   * A constant: JSON text (a string), or a value that is sent as JSON. As
   * the Serverless Framework does, an object `{ body: '<JSON text>' }` has
   * its body parsed, so the function gets `{ body: <value> }`.
   */
  readonly input?: unknown;
  /** A JSONPath into the Scheduled Event, e.g. `$.detail`; the function receives what it selects. */
  readonly inputPath?: string;
  readonly inputTransformer?: InputTransformer;
}

/** Which rule a target input is built for (for `<aws.events.rule-name>` and `<aws.events.rule-arn>`). */
export interface RuleIdentity {
  readonly name: string;
  readonly arn: string;
}

/** Builds the JSON text a fire sends to the function. */
export type TargetInputBuilder = (event: ScheduledEvent, rule: RuleIdentity) => string;

/** An invalid `input`, `inputPath` or `inputTransformer`: the key path below the schedule event, the value, why and what is allowed. */
export class ScheduleInputError extends Error {
  /** Below the schedule event, e.g. `inputTransformer.inputPathsMap.eventTime`. */
  readonly key: string;
  readonly value: unknown;
  readonly reason: string;
  readonly allowed: string;

  constructor(key: string, value: unknown, reason: string, allowed: string) {
    super(`${key}: ${reason} (got ${typeof value === 'string' ? value : JSON.stringify(value)}; allowed: ${allowed})`);
    this.name = 'ScheduleInputError';
    this.key = key;
    this.value = value;
    this.reason = reason;
    this.allowed = allowed;
  }
}

/** EventBridge's limit on Input and InputTemplate: 8192 characters. */
export const MAX_TARGET_INPUT_CHARS = 8192;
const PATH_ALLOWED = 'a JSONPath from $ with .name, [\'name\'] and [index] steps, e.g. $.detail or $.resources[0]';
const RESERVED_VARIABLES = ['aws.events.rule-arn', 'aws.events.rule-name', 'aws.events.event', 'aws.events.event.json', 'aws.events.event.ingestion-time'];

/**
 * Checks a schedule event's `input` / `inputPath` / `inputTransformer` once,
 * at config time, and returns what builds each fire's payload (JSON text):
 *
 * - none: the Scheduled Event itself;
 * - `input`: the constant, as JSON (a string must already be JSON text, as
 *   EventBridge's `Input` is: "Valid JSON text passed to the target");
 * - `inputPath`: the part of the event the path selects (`null` when it
 *   selects nothing);
 * - `inputTransformer`: the template with each `<name>` replaced by what its
 *   path selects: as JSON outside quotes (`"a"`, `3`, `{…}`), as raw text
 *   inside a quoted string (EventBridge does not escape it); a path that
 *   selects nothing gives `null` outside quotes and nothing inside. Predefined:
 *   `<aws.events.rule-arn>`, `<aws.events.rule-name>`,
 *   `<aws.events.event>` (the event without `detail`),
 *   `<aws.events.event.json>` (the whole event) and
 *   `<aws.events.event.ingestion-time>` (the event's time). A `<word>` that
 *   names no variable is left as it is.
 *
 * @throws ScheduleInputError when more than one is given (EventBridge: they
 *   are mutually exclusive), a string `input` is not JSON, a path is not one
 *   Nimbus reads, or a template does not make JSON.
 */
export function compileTargetInput(target: ScheduleTargetInput): TargetInputBuilder {
  const given = (['input', 'inputPath', 'inputTransformer'] as const).filter((k) => target[k] !== undefined && target[k] !== null);
  if (given.length > 1) {
    throw new ScheduleInputError(given[1], target[given[1]], `${given.join(' and ')} cannot be used together`, 'one of input, inputPath and inputTransformer');
  }
  if (target.input !== undefined && target.input !== null) {
    const text = constantInput(target.input);
    return () => text;
  }
  if (target.inputPath !== undefined && target.inputPath !== null) {
    const steps = compilePath('inputPath', target.inputPath);
    return (event) => JSON.stringify(select(event, steps) ?? null);
  }
  if (target.inputTransformer !== undefined && target.inputTransformer !== null) {
    return compileTransformer(target.inputTransformer);
  }
  return (event) => JSON.stringify(event);
}

function constantInput(input: unknown): string {
  const allowed = 'JSON text (a string) or a mapping, at most 8192 characters as JSON';
  let text: string;
  if (typeof input === 'string') {
    try {
      JSON.parse(input);
    } catch {
      throw new ScheduleInputError('input', input, 'a string input must be JSON text (EventBridge passes it to the function as it is)', `${allowed}, e.g. '{"key": "value"}' or a mapping`);
    }
    text = input;
  } else if (isPlainObject(input) && Object.keys(input).length === 1 && typeof input.body === 'string') {
    let body: unknown;
    try {
      body = JSON.parse(input.body);
    } catch {
      throw new ScheduleInputError('input.body', input.body, 'body must be JSON text (the Serverless Framework parses it)', 'JSON text, e.g. \'{"key": "value"}\'');
    }
    text = JSON.stringify({ body });
  } else {
    text = JSON.stringify(input);
  }
  if (text.length > MAX_TARGET_INPUT_CHARS) {
    throw new ScheduleInputError('input', `${text.slice(0, 40)}…`, `is ${text.length} characters as JSON, over EventBridge's 8192`, allowed);
  }
  return text;
}

type PathStep = string | number;

/** `$`, `.name`, `['name']`, `["name"]`, `[n]`: the JSONPath EventBridge's examples use, without wildcards or filters. */
function compilePath(key: string, path: unknown): PathStep[] {
  if (typeof path !== 'string' || !path.startsWith('$')) throw new ScheduleInputError(key, path, 'is not a JSONPath', PATH_ALLOWED);
  if (path.length > 256) throw new ScheduleInputError(key, path, 'is over 256 characters', PATH_ALLOWED);
  const steps: PathStep[] = [];
  const re = /\.([^.[\]]+)|\[(\d+)\]|\['([^']*)'\]|\["([^"]*)"\]/y;
  let i = 1;
  while (i < path.length) {
    re.lastIndex = i;
    const m = re.exec(path);
    if (!m) {
      throw new ScheduleInputError(key, path, `cannot read the path from character ${i + 1} (${path.slice(i)}); wildcards and filters are not supported`, PATH_ALLOWED);
    }
    if (m[1] === '*' || m[3] === '*') throw new ScheduleInputError(key, path, 'wildcards are not supported', PATH_ALLOWED);
    steps.push(m[2] !== undefined ? Number(m[2]) : (m[1] ?? m[3] ?? m[4]));
    i = re.lastIndex;
  }
  return steps;
}

function select(value: unknown, steps: readonly PathStep[]): unknown {
  let v: unknown = value;
  for (const s of steps) {
    if (typeof s === 'number') {
      if (!Array.isArray(v) || s >= v.length) return undefined;
      v = v[s];
    } else {
      if (!isPlainObject(v) || !Object.prototype.hasOwnProperty.call(v, s)) return undefined;
      v = v[s];
    }
  }
  return v;
}

type Piece = { readonly text: string } | { readonly variable: string; readonly quoted: boolean };

function compileTransformer(t: InputTransformer): TargetInputBuilder {
  if (!isPlainObject(t)) {
    throw new ScheduleInputError('inputTransformer', t, 'is not a mapping', '{ inputPathsMap: { name: $.path }, inputTemplate: \'{"key": <name>}\' }');
  }
  const template = t.inputTemplate;
  if (typeof template !== 'string' || template.length === 0 || template.length > MAX_TARGET_INPUT_CHARS) {
    throw new ScheduleInputError('inputTransformer.inputTemplate', template, 'is missing, empty or over 8192 characters', 'a JSON template with <name> placeholders, e.g. \'{"time": <eventTime>}\'');
  }
  const paths = new Map<string, PathStep[]>();
  const map = t.inputPathsMap ?? {};
  if (!isPlainObject(map)) {
    throw new ScheduleInputError('inputTransformer.inputPathsMap', map, 'is not a mapping', 'names to JSONPaths, e.g. { eventTime: $.time }');
  }
  const names = Object.keys(map);
  if (names.length > 100) throw new ScheduleInputError('inputTransformer.inputPathsMap', `${names.length} variables`, 'has more than 100 variables', 'up to 100 variables');
  for (const name of names) {
    if (RESERVED_VARIABLES.includes(name) || name.startsWith('aws.')) {
      throw new ScheduleInputError(`inputTransformer.inputPathsMap.${name}`, name, 'names starting with aws. are reserved', 'another name; the predefined <aws.events.*> variables need no path');
    }
    paths.set(name, compilePath(`inputTransformer.inputPathsMap.${name}`, map[name]));
  }

  // Split the template into text and placeholders, noting which ones sit inside a JSON string.
  const pieces: Piece[] = [];
  let inString = false;
  let last = 0;
  for (let i = 0; i < template.length; i++) {
    const c = template[i];
    if (inString && c === '\\') { i++; continue; }
    if (c === '"') { inString = !inString; continue; }
    if (c !== '<') continue;
    const close = template.indexOf('>', i + 1);
    if (close < 0) break;
    const name = template.slice(i + 1, close);
    if (!paths.has(name) && !RESERVED_VARIABLES.includes(name)) continue;
    if (i > last) pieces.push({ text: template.slice(last, i) });
    pieces.push({ variable: name, quoted: inString });
    last = close + 1;
    i = close;
  }
  if (last < template.length) pieces.push({ text: template.slice(last) });

  const build: TargetInputBuilder = (event, rule) => {
    let out = '';
    for (const p of pieces) {
      if ('text' in p) { out += p.text; continue; }
      const v = variableValue(p.variable, paths, event, rule);
      if (v === undefined) out += p.quoted ? '' : 'null';
      else out += p.quoted && typeof v === 'string' ? v : JSON.stringify(v);
    }
    return out;
  };

  // The function takes JSON: check the template makes JSON with a sample event.
  const sample = scheduledEvent({ time: 0, region: 'us-east-1', account: '000000000000', ruleArn: 'arn:aws:events:us-east-1:000000000000:rule/r', id: '00000000-0000-0000-0000-000000000000' });
  try {
    JSON.parse(build(sample, { name: 'r', arn: sample.resources[0] }));
  } catch (e) {
    throw new ScheduleInputError('inputTransformer.inputTemplate', template, `does not make JSON once filled (${(e as Error).message}); strings need quotes around them`, 'a JSON template, e.g. \'{"time": <eventTime>, "note": "at <eventTime>"}\' or \'"text <name>"\'');
  }
  return build;
}

function variableValue(name: string, paths: ReadonlyMap<string, PathStep[]>, event: ScheduledEvent, rule: RuleIdentity): unknown {
  switch (name) {
    case 'aws.events.rule-arn': return rule.arn;
    case 'aws.events.rule-name': return rule.name;
    case 'aws.events.event.ingestion-time': return event.time;
    case 'aws.events.event.json': return event;
    case 'aws.events.event': {
      const { detail: _detail, ...rest } = event;
      return rest;
    }
    default: return select(event, paths.get(name) ?? []);
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
