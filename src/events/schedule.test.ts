import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  compileTargetInput, defaultRuleName, isoSeconds, ruleArn, scheduledEvent, scheduledEventId, ScheduleInputError,
  type ScheduledEvent, type ScheduleTargetInput,
} from './schedule.js';

/** AWS's example Scheduled Event (EventBridge / CloudWatch Events docs), key order included. */
const AWS_EXAMPLE = `{
  "version": "0",
  "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
  "detail-type": "Scheduled Event",
  "source": "aws.events",
  "account": "123456789012",
  "time": "2015-10-08T16:53:06Z",
  "region": "us-east-1",
  "resources": [
    "arn:aws:events:us-east-1:123456789012:rule/my-scheduled-rule"
  ],
  "detail": {}
}`;

const example = (): ScheduledEvent => scheduledEvent({
  time: Date.parse('2015-10-08T16:53:06.789Z'),
  region: 'us-east-1',
  account: '123456789012',
  ruleArn: ruleArn('us-east-1', '123456789012', 'my-scheduled-rule'),
  id: '53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa',
});
const RULE = { name: 'my-scheduled-rule', arn: 'arn:aws:events:us-east-1:123456789012:rule/my-scheduled-rule' };
const build = (target: ScheduleTargetInput): unknown => JSON.parse(compileTargetInput(target)(example(), RULE));

describe('the Scheduled Event', () => {
  it('is AWS\'s example, field for field and in the same order', () => {
    assert.equal(JSON.stringify(example(), null, 2), AWS_EXAMPLE);
  });

  it('writes time as ISO 8601 UTC in whole seconds', () => {
    assert.equal(isoSeconds(Date.parse('2019-10-08T16:53:06.999Z')), '2019-10-08T16:53:06Z');
    assert.equal(isoSeconds(new Date('2024-02-29T00:00:00Z')), '2024-02-29T00:00:00Z');
  });

  it('gets the same UUID for the same rule and time, and another for another time', () => {
    const arn = RULE.arn;
    const a = scheduledEventId(arn, Date.UTC(2024, 0, 1));
    assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(scheduledEventId(arn, Date.UTC(2024, 0, 1)), a);
    assert.notEqual(scheduledEventId(arn, Date.UTC(2024, 0, 1, 0, 1)), a);
    assert.notEqual(scheduledEventId(`${arn}x`, Date.UTC(2024, 0, 1)), a);
  });

  it('names rules as the Serverless Framework\'s stack would, without the random suffix', () => {
    assert.equal(defaultRuleName({ service: 'shop', stage: 'dev', functionKey: 'report', index: 1 }), 'shop-dev-ReportEventsRuleSchedule1');
    assert.equal(defaultRuleName({ service: 'shop', stage: 'dev', functionKey: 'nightly-report_v2', index: 3 }), 'shop-dev-NightlyDashreportUnderscorev2EventsRuleSchedule3');
    assert.equal(defaultRuleName({ service: 's'.repeat(60), stage: 'prod', functionKey: 'f', index: 1 }).length, 64);
  });
});

describe('target input: input, inputPath, inputTransformer', () => {
  it('without any, the function gets the Scheduled Event', () => {
    assert.deepEqual(build({}), JSON.parse(AWS_EXAMPLE));
  });

  it('input: a mapping is sent as JSON (the Serverless docs\' example)', () => {
    const input = { key1: 'value1', key2: 'value2', stageParams: { stage: 'dev' } };
    assert.deepEqual(build({ input }), input);
    assert.deepEqual(build({ input: [1, 'two'] }), [1, 'two']);
  });

  it('input: a string is JSON text, sent as it is', () => {
    const f = compileTargetInput({ input: '{"provider": "see_tickets"}' });
    assert.equal(f(example(), RULE), '{"provider": "see_tickets"}');
    assert.throws(() => compileTargetInput({ input: 'hello' }), (e: unknown) =>
      e instanceof ScheduleInputError && e.key === 'input' && /must be JSON text/.test(e.message) && /got hello/.test(e.message));
  });

  it('input: { body: <JSON text> } has its body parsed, as the Serverless Framework does', () => {
    assert.deepEqual(build({ input: { body: '{"a": 1}' } }), { body: { a: 1 } });
    assert.throws(() => compileTargetInput({ input: { body: '{a' } }), /input\.body: body must be JSON text/);
  });

  it('input: at most 8192 characters', () => {
    assert.doesNotThrow(() => compileTargetInput({ input: { k: 'x'.repeat(8000) } }));
    assert.throws(() => compileTargetInput({ input: { k: 'x'.repeat(8192) } }), /over EventBridge's 8192/);
  });

  it('inputPath: the part of the event it selects', () => {
    assert.deepEqual(build({ inputPath: '$.detail' }), {});
    assert.deepEqual(build({ inputPath: '$' }), JSON.parse(AWS_EXAMPLE));
    assert.equal(build({ inputPath: '$.time' }), '2015-10-08T16:53:06Z');
    assert.equal(build({ inputPath: '$.resources[0]' }), RULE.arn);
    assert.equal(build({ inputPath: "$['detail-type']" }), 'Scheduled Event');
    assert.equal(build({ inputPath: '$.detail-type' }), 'Scheduled Event');
    assert.equal(build({ inputPath: '$.stageVariables' }), null, 'a path that selects nothing sends null');
    assert.equal(build({ inputPath: '$.resources[3]' }), null);
  });

  it('inputPath: refuses what is not a simple JSONPath', () => {
    assert.throws(() => compileTargetInput({ inputPath: 'detail' }), (e: unknown) => e instanceof ScheduleInputError && e.key === 'inputPath' && /is not a JSONPath/.test(e.message));
    assert.throws(() => compileTargetInput({ inputPath: '$.resources[*]' }), /wildcards and filters are not supported/);
    assert.throws(() => compileTargetInput({ inputPath: '$.*' }), /wildcards are not supported/);
    assert.throws(() => compileTargetInput({ inputPath: '$..time' }), /cannot read the path from character 2/);
  });

  it('inputTransformer: the Serverless docs\' example', () => {
    const t = { inputPathsMap: { eventTime: '$.time' }, inputTemplate: '{"time": <eventTime>, "key1": "value1"}' };
    assert.deepEqual(build({ inputTransformer: t }), { time: '2015-10-08T16:53:06Z', key1: 'value1' });
  });

  it('inputTransformer: JSON outside quotes, raw text inside them (EventBridge\'s examples)', () => {
    const inputPathsMap = { time: '$.time', kind: '$.detail-type', detail: '$.detail', res: '$.resources' };
    assert.deepEqual(build({ inputTransformer: { inputPathsMap, inputTemplate: '{"kind": <kind>, "text": "a \\"<kind>\\" at <time>", "list": [9, <res>, true], "d": <detail>}' } }),
      { kind: 'Scheduled Event', text: 'a "Scheduled Event" at 2015-10-08T16:53:06Z', list: [9, [RULE.arn], true], d: {} });
    assert.equal(build({ inputTransformer: { inputPathsMap, inputTemplate: '"<kind> at <time>"' } }), 'Scheduled Event at 2015-10-08T16:53:06Z');
  });

  it('inputTransformer: the predefined variables', () => {
    const out = build({ inputTransformer: { inputTemplate: '{"arn": <aws.events.rule-arn>, "name": "<aws.events.rule-name> triggered", "at": <aws.events.event.ingestion-time>, "e": <aws.events.event>, "json": <aws.events.event.json>}' } }) as Record<string, unknown>;
    assert.equal(out.arn, RULE.arn);
    assert.equal(out.name, 'my-scheduled-rule triggered');
    assert.equal(out.at, '2015-10-08T16:53:06Z');
    const { detail: _d, ...withoutDetail } = JSON.parse(AWS_EXAMPLE) as Record<string, unknown>;
    assert.deepEqual(out.e, withoutDetail);
    assert.deepEqual(out.json, JSON.parse(AWS_EXAMPLE));
  });

  it('inputTransformer: a path that selects nothing gives null (or nothing inside quotes); an unknown <word> stays', () => {
    const inputPathsMap = { gone: '$.detail.nothing' };
    assert.deepEqual(build({ inputTransformer: { inputPathsMap, inputTemplate: '{"a": <gone>, "b": "x<gone>y", "c": "<b>bold</b>"}' } }), { a: null, b: 'xy', c: '<b>bold</b>' });
  });

  it('inputTransformer: refuses a template that does not make JSON, reserved names and bad paths', () => {
    assert.throws(() => compileTargetInput({ inputTransformer: { inputPathsMap: { i: '$.id' }, inputTemplate: '<i> is in state running' } }),
      (e: unknown) => e instanceof ScheduleInputError && e.key === 'inputTransformer.inputTemplate' && /does not make JSON once filled/.test(e.message));
    assert.throws(() => compileTargetInput({ inputTransformer: { inputPathsMap: { 'aws.events.rule-arn': '$.id' }, inputTemplate: '{}' } }), /aws\. are reserved/);
    assert.throws(() => compileTargetInput({ inputTransformer: { inputPathsMap: { t: 'time' }, inputTemplate: '{}' } }), /inputTransformer\.inputPathsMap\.t: is not a JSONPath/);
    assert.throws(() => compileTargetInput({ inputTransformer: { inputTemplate: '' } }), /inputTemplate: is missing, empty/);
  });

  it('only one of input, inputPath and inputTransformer', () => {
    assert.throws(() => compileTargetInput({ input: { a: 1 }, inputPath: '$.detail' }), (e: unknown) =>
      e instanceof ScheduleInputError && e.key === 'inputPath' && /input and inputPath cannot be used together/.test(e.message));
    assert.throws(() => compileTargetInput({ inputPath: '$', inputTransformer: { inputTemplate: '{}' } }), /inputPath and inputTransformer cannot be used together/);
  });
});
