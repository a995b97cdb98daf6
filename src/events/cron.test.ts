import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseSchedule, ScheduleExpressionError } from './schedule.js';

/** The next `n` fire times after `afterIso`, as ISO strings. */
function fires(expression: string, afterIso: string, n = 3): string[] {
  const s = parseSchedule(expression);
  const out: string[] = [];
  let t = Date.parse(afterIso);
  for (let i = 0; i < n; i++) {
    const next = s.next(t);
    if (next === null) break;
    out.push(new Date(next).toISOString());
    t = next;
  }
  return out;
}

/** Monday 15 January 2024, 12:34:56.789 UTC (2024 is a leap year). */
const T = '2024-01-15T12:34:56.789Z';

describe('cron: the examples of the EventBridge documentation', () => {
  // https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cron-expressions.html, "Examples"
  it('cron(0 10 * * ? *): 10:00 am UTC every day', () => {
    assert.deepEqual(fires('cron(0 10 * * ? *)', T), ['2024-01-16T10:00:00.000Z', '2024-01-17T10:00:00.000Z', '2024-01-18T10:00:00.000Z']);
  });

  it('cron(15 12 * * ? *): 12:15 pm UTC every day', () => {
    assert.deepEqual(fires('cron(15 12 * * ? *)', T, 2), ['2024-01-16T12:15:00.000Z', '2024-01-17T12:15:00.000Z']);
    assert.deepEqual(fires('cron(15 12 * * ? *)', '2024-01-15T12:00:00Z', 1), ['2024-01-15T12:15:00.000Z']);
  });

  it('cron(0 18 ? * MON-FRI *): 6:00 pm UTC Monday to Friday', () => {
    assert.deepEqual(fires('cron(0 18 ? * MON-FRI *)', T, 6), [
      '2024-01-15T18:00:00.000Z', '2024-01-16T18:00:00.000Z', '2024-01-17T18:00:00.000Z',
      '2024-01-18T18:00:00.000Z', '2024-01-19T18:00:00.000Z', '2024-01-22T18:00:00.000Z',
    ]);
  });

  it('cron(0 8 1 * ? *): 8:00 am UTC on the first day of every month', () => {
    assert.deepEqual(fires('cron(0 8 1 * ? *)', T), ['2024-02-01T08:00:00.000Z', '2024-03-01T08:00:00.000Z', '2024-04-01T08:00:00.000Z']);
  });

  it('cron(0/15 * * * ? *): every 15 minutes', () => {
    assert.deepEqual(fires('cron(0/15 * * * ? *)', T, 4), ['2024-01-15T12:45:00.000Z', '2024-01-15T13:00:00.000Z', '2024-01-15T13:15:00.000Z', '2024-01-15T13:30:00.000Z']);
  });

  it('cron(0/10 * ? * MON-FRI *): every 10 minutes Monday to Friday', () => {
    assert.deepEqual(fires('cron(0/10 * ? * MON-FRI *)', T, 2), ['2024-01-15T12:40:00.000Z', '2024-01-15T12:50:00.000Z']);
    assert.deepEqual(fires('cron(0/10 * ? * MON-FRI *)', '2024-01-19T23:45:00Z', 3), ['2024-01-19T23:50:00.000Z', '2024-01-22T00:00:00.000Z', '2024-01-22T00:10:00.000Z']);
  });

  it('cron(0/5 8-17 ? * MON-FRI *): every 5 minutes, 8:00 am to 5:55 pm UTC, Monday to Friday', () => {
    assert.deepEqual(fires('cron(0/5 8-17 ? * MON-FRI *)', T, 2), ['2024-01-15T12:35:00.000Z', '2024-01-15T12:40:00.000Z']);
    assert.deepEqual(fires('cron(0/5 8-17 ? * MON-FRI *)', '2024-01-15T17:50:00Z', 2), ['2024-01-15T17:55:00.000Z', '2024-01-16T08:00:00.000Z']);
    assert.deepEqual(fires('cron(0/5 8-17 ? * MON-FRI *)', '2024-01-19T17:55:00Z', 1), ['2024-01-22T08:00:00.000Z']);
  });

  it('cron(0 9 ? * 2#1 *): 9:00 am UTC on the first Monday of each month', () => {
    // 1 Feb 2024 is a Thursday, 1 March a Friday, 1 April a Monday.
    assert.deepEqual(fires('cron(0 9 ? * 2#1 *)', T), ['2024-02-05T09:00:00.000Z', '2024-03-04T09:00:00.000Z', '2024-04-01T09:00:00.000Z']);
  });

  it('cron(0 0/4 * * ? *): every 4 hours', () => {
    assert.deepEqual(fires('cron(0 0/4 * * ? *)', T), ['2024-01-15T16:00:00.000Z', '2024-01-15T20:00:00.000Z', '2024-01-16T00:00:00.000Z']);
  });

  it('cron(0 20 * * ? *) and cron(0 8 * * 3#1)-style numbers: 3 is Tuesday, 1 is Sunday', () => {
    assert.deepEqual(fires('cron(0 20 * * ? *)', T, 1), ['2024-01-15T20:00:00.000Z']);
    assert.deepEqual(fires('cron(0 0 ? * 1 *)', T, 2), ['2024-01-21T00:00:00.000Z', '2024-01-28T00:00:00.000Z']);
    assert.deepEqual(fires('cron(0 8 ? * 3#1 *)', T, 2), ['2024-02-06T08:00:00.000Z', '2024-03-05T08:00:00.000Z']);
  });
});

describe('cron: fire times', () => {
  it('are strictly after the time given, in whole minutes', () => {
    assert.deepEqual(fires('cron(0 10 * * ? *)', '2024-01-16T10:00:00.000Z', 1), ['2024-01-17T10:00:00.000Z']);
    assert.deepEqual(fires('cron(0 10 * * ? *)', '2024-01-16T10:00:00.001Z', 1), ['2024-01-17T10:00:00.000Z']);
    assert.deepEqual(fires('cron(0 10 * * ? *)', '2024-01-16T09:59:59.999Z', 1), ['2024-01-16T10:00:00.000Z']);
    assert.deepEqual(fires('cron(* * * * ? *)', T, 2), ['2024-01-15T12:35:00.000Z', '2024-01-15T12:36:00.000Z']);
  });

  it('lists, ranges and steps in one field', () => {
    assert.deepEqual(fires('cron(5,20-22,50/5 12 * * ? *)', '2024-01-15T12:00:00Z', 7), [
      '2024-01-15T12:05:00.000Z', '2024-01-15T12:20:00.000Z', '2024-01-15T12:21:00.000Z', '2024-01-15T12:22:00.000Z',
      '2024-01-15T12:50:00.000Z', '2024-01-15T12:55:00.000Z', '2024-01-16T12:05:00.000Z',
    ]);
    assert.deepEqual(fires('cron(10-40/15 * * * ? *)', '2024-01-15T12:00:00Z', 4), ['2024-01-15T12:10:00.000Z', '2024-01-15T12:25:00.000Z', '2024-01-15T12:40:00.000Z', '2024-01-15T13:10:00.000Z']);
    assert.deepEqual(fires('cron(0 0 */10 * ? *)', T, 4), ['2024-01-21T00:00:00.000Z', '2024-01-31T00:00:00.000Z', '2024-02-01T00:00:00.000Z', '2024-02-11T00:00:00.000Z']);
  });

  it('month and weekday names, in any case', () => {
    assert.deepEqual(fires('cron(0 0 1 JAN,JUL ? *)', T, 2), ['2024-07-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z']);
    assert.deepEqual(fires('cron(0 18 ? * mon-fri *)', T, 1), ['2024-01-15T18:00:00.000Z']);
    assert.deepEqual(fires('cron(0 0 * JUL ? *)', T, 2), ['2024-07-01T00:00:00.000Z', '2024-07-02T00:00:00.000Z'], "JUL's L is not the L wildcard");
    assert.deepEqual(fires('cron(0 0 ? * SAT,SUN *)', T, 3), ['2024-01-20T00:00:00.000Z', '2024-01-21T00:00:00.000Z', '2024-01-27T00:00:00.000Z']);
  });

  it('ranges that wrap: FRI-MON, 22-2 hours, NOV-FEB', () => {
    assert.deepEqual(fires('cron(0 0 ? * FRI-MON *)', T, 5), [
      '2024-01-19T00:00:00.000Z', '2024-01-20T00:00:00.000Z', '2024-01-21T00:00:00.000Z', '2024-01-22T00:00:00.000Z', '2024-01-26T00:00:00.000Z',
    ]);
    assert.deepEqual(fires('cron(0 22-2 * * ? *)', T, 6), [
      '2024-01-15T22:00:00.000Z', '2024-01-15T23:00:00.000Z', '2024-01-16T00:00:00.000Z', '2024-01-16T01:00:00.000Z', '2024-01-16T02:00:00.000Z', '2024-01-16T22:00:00.000Z',
    ]);
    assert.deepEqual(fires('cron(0 0 1 NOV-FEB ? *)', T, 3), ['2024-02-01T00:00:00.000Z', '2024-11-01T00:00:00.000Z', '2024-12-01T00:00:00.000Z']);
  });

  it('the year field, and null when the years are over', () => {
    assert.deepEqual(fires('cron(0 0 1 1 ? 2030-2031)', T, 3), ['2030-01-01T00:00:00.000Z', '2031-01-01T00:00:00.000Z']);
    assert.deepEqual(fires('cron(0 0 1 1 ? 2199)', '2199-01-01T00:00:00Z'), []);
    assert.deepEqual(fires('cron(59 23 31 12 ? *)', '2199-12-31T23:58:00Z', 2), ['2199-12-31T23:59:00.000Z']);
    assert.deepEqual(fires('cron(0 0 1 1 ? 2020/5)', T, 2), ['2025-01-01T00:00:00.000Z', '2030-01-01T00:00:00.000Z']);
    assert.deepEqual(fires('cron(0 0 1 1 ? *)', '1960-06-01T00:00:00Z', 1), ['1970-01-01T00:00:00.000Z']);
  });

  it('a day that never comes never fires; 29 February fires in leap years', () => {
    assert.deepEqual(fires('cron(0 0 30 2 ? *)', T), []);
    assert.deepEqual(fires('cron(0 0 29 2 ? *)', '2024-03-01T00:00:00Z', 2), ['2028-02-29T00:00:00.000Z', '2032-02-29T00:00:00.000Z']);
    assert.deepEqual(fires('cron(0 0 31 * ? *)', '2024-03-31T00:00:00Z', 2), ['2024-05-31T00:00:00.000Z', '2024-07-31T00:00:00.000Z']);
  });
});

describe('cron: L, W and #', () => {
  it('L in day-of-month: the last day, across month ends and leap years', () => {
    assert.deepEqual(fires('cron(0 0 L * ? *)', '2024-01-31T00:00:00Z', 4), [
      '2024-02-29T00:00:00.000Z', '2024-03-31T00:00:00.000Z', '2024-04-30T00:00:00.000Z', '2024-05-31T00:00:00.000Z',
    ]);
    assert.deepEqual(fires('cron(0 0 L * ? *)', '2023-01-31T00:00:00Z', 1), ['2023-02-28T00:00:00.000Z']);
    assert.deepEqual(fires('cron(0 0 L 2 ? *)', '2099-03-01T00:00:00Z', 2), ['2100-02-28T00:00:00.000Z', '2101-02-28T00:00:00.000Z'], '2100 is not a leap year');
    assert.deepEqual(fires('cron(30 23 L 12 ? *)', T, 1), ['2024-12-31T23:30:00.000Z']);
  });

  it('LW: the last weekday of the month', () => {
    // 31 Mar 2024 is a Sunday, 31 Aug a Saturday, 29 Feb a Thursday, 30 Nov a Saturday.
    assert.deepEqual(fires('cron(0 12 LW * ? *)', '2024-02-01T00:00:00Z', 2), ['2024-02-29T12:00:00.000Z', '2024-03-29T12:00:00.000Z']);
    assert.deepEqual(fires('cron(0 12 LW * ? *)', '2024-08-01T00:00:00Z', 1), ['2024-08-30T12:00:00.000Z']);
    assert.deepEqual(fires('cron(0 12 LW * ? *)', '2024-11-01T00:00:00Z', 1), ['2024-11-29T12:00:00.000Z']);
  });

  it('nW: the weekday nearest the day, never leaving the month', () => {
    // 15 Jan 2024 is a Monday, 15 Jun a Saturday, 15 Sep a Sunday.
    assert.deepEqual(fires('cron(0 12 15W * ? *)', '2024-01-01T00:00:00Z', 1), ['2024-01-15T12:00:00.000Z']);
    assert.deepEqual(fires('cron(0 12 15W * ? *)', '2024-06-01T00:00:00Z', 1), ['2024-06-14T12:00:00.000Z']);
    assert.deepEqual(fires('cron(0 12 15W * ? *)', '2024-09-01T00:00:00Z', 1), ['2024-09-16T12:00:00.000Z']);
    // 1 Jun 2024 is a Saturday: Friday would be in May, so Monday the 3rd. 1 Sep is a Sunday: Monday the 2nd.
    assert.deepEqual(fires('cron(0 12 1W * ? *)', '2024-05-15T00:00:00Z', 1), ['2024-06-03T12:00:00.000Z']);
    assert.deepEqual(fires('cron(0 12 1W * ? *)', '2024-08-15T00:00:00Z', 1), ['2024-09-02T12:00:00.000Z']);
    // 31 Mar 2024 is a Sunday: Monday would be in April, so Friday the 29th. April has no 31st: no fire.
    assert.deepEqual(fires('cron(0 12 31W * ? *)', '2024-03-01T00:00:00Z', 2), ['2024-03-29T12:00:00.000Z', '2024-05-31T12:00:00.000Z']);
  });

  it('nL in day-of-week: the last <weekday> of the month', () => {
    assert.deepEqual(fires('cron(0 10 ? * 6L *)', T, 3), ['2024-01-26T10:00:00.000Z', '2024-02-23T10:00:00.000Z', '2024-03-29T10:00:00.000Z']);
    assert.deepEqual(fires('cron(0 10 ? * FRIL *)', T, 1), ['2024-01-26T10:00:00.000Z']);
    assert.deepEqual(fires('cron(0 10 ? * 1L *)', '2024-06-01T00:00:00Z', 1), ['2024-06-30T10:00:00.000Z'], '30 Jun 2024 is itself a Sunday');
  });

  it('L alone in day-of-week: the last day of the week, Saturday', () => {
    assert.deepEqual(fires('cron(0 0 ? * L *)', T, 2), ['2024-01-20T00:00:00.000Z', '2024-01-27T00:00:00.000Z']);
  });

  it('n#5 fires only in months with a fifth such weekday', () => {
    // Mondays of 2024: 29 Jan and 29 Apr are fifth Mondays; February and March have four.
    assert.deepEqual(fires('cron(0 9 ? * MON#5 *)', '2024-01-01T00:00:00Z', 2), ['2024-01-29T09:00:00.000Z', '2024-04-29T09:00:00.000Z']);
  });
});

describe('rate expressions', () => {
  it('rate(5 minutes), rate(1 hour), rate(1 day): counted from the epoch by default', () => {
    assert.deepEqual(fires('rate(5 minutes)', T), ['2024-01-15T12:35:00.000Z', '2024-01-15T12:40:00.000Z', '2024-01-15T12:45:00.000Z']);
    assert.deepEqual(fires('rate(1 minute)', T, 2), ['2024-01-15T12:35:00.000Z', '2024-01-15T12:36:00.000Z']);
    assert.deepEqual(fires('rate(1 hour)', T, 2), ['2024-01-15T13:00:00.000Z', '2024-01-15T14:00:00.000Z']);
    assert.deepEqual(fires('rate(2 hours)', T, 2), ['2024-01-15T14:00:00.000Z', '2024-01-15T16:00:00.000Z']);
    assert.deepEqual(fires('rate(1 day)', T, 2), ['2024-01-16T00:00:00.000Z', '2024-01-17T00:00:00.000Z']);
    // 1 January 1970 was a Thursday, so 7 days from the epoch fall on Thursdays: 18 Jan 2024 is one.
    assert.deepEqual(fires('rate(7 days)', T, 2), ['2024-01-18T00:00:00.000Z', '2024-01-25T00:00:00.000Z']);
  });

  it('strictly after, and from an anchor floored to the minute', () => {
    const s = parseSchedule('rate(5 minutes)');
    assert.equal(s.next(Date.parse('2024-01-15T12:35:00Z')), Date.parse('2024-01-15T12:40:00Z'));
    const anchored = parseSchedule('rate(5 minutes)', { anchorMs: Date.parse('2024-01-15T12:02:30Z') });
    assert.equal(anchored.next(Date.parse(T)), Date.parse('2024-01-15T12:37:00Z'));
    assert.equal(anchored.next(Date.parse('2024-01-15T12:00:00Z')), Date.parse('2024-01-15T12:02:00Z'));
  });

  it('parses value and unit', () => {
    const s = parseSchedule('rate(12 hours)');
    assert.equal(s.kind, 'rate');
    assert.ok(s.kind === 'rate' && s.value === 12 && s.unit === 'hour' && s.periodMs === 12 * 3_600_000);
    assert.equal(parseSchedule('  cron(0 10 * * ? *) ').expression, 'cron(0 10 * * ? *)');
  });
});

describe('invalid expressions say which part is wrong, what was given and what is allowed', () => {
  const bad = (text: string, field: string, message: RegExp): void => {
    assert.throws(() => parseSchedule(text), (e: unknown) => {
      assert.ok(e instanceof ScheduleExpressionError, String(e));
      assert.equal(e.field, field, e.message);
      assert.match(e.message, message);
      assert.ok(e.message.startsWith(text.trim()), e.message);
      assert.match(e.message, /; allowed: /);
      return true;
    });
  };

  it('day-of-month and day-of-week: exactly one is ?', () => {
    bad('cron(0 12 * * * *)', 'expression', /^cron\(0 12 \* \* \* \*\): day-of-month and day-of-week cannot both be given; use \? in one of them/);
    bad('cron(0 12 1 * MON *)', 'expression', /cannot both be given/);
    bad('cron(0 12 ? * ? *)', 'expression', /cannot both be \?/);
    bad('cron(? 12 * * ? *)', 'minutes', /minutes '\?': \? is only for day-of-month and day-of-week/);
  });

  it('values out of range', () => {
    bad('cron(60 * * * ? *)', 'minutes', /minutes '60': 60 is out of range 0-59; allowed: 0-59 and , - \* \//);
    bad('cron(0 24 * * ? *)', 'hours', /hours '24': 24 is out of range 0-23/);
    bad('cron(0 0 0 * ? *)', 'day-of-month', /0 is out of range 1-31/);
    bad('cron(0 0 32 * ? *)', 'day-of-month', /32 is out of range 1-31/);
    bad('cron(0 0 1 13 ? *)', 'month', /13 is out of range 1-12/);
    bad('cron(0 0 ? * 0 *)', 'day-of-week', /0 is out of range 1-7.*1 = SUN/);
    bad('cron(0 0 ? * 8 *)', 'day-of-week', /8 is out of range 1-7/);
    bad('cron(0 0 * * ? 1969)', 'year', /1969 is out of range 1970-2199/);
    bad('cron(0 0 * * ? 2200)', 'year', /2200 is out of range 1970-2199/);
    bad('cron(0 0 1-40 * ? *)', 'day-of-month', /'1-40': 40 is out of range/);
  });

  it('names, steps and ranges', () => {
    bad('cron(0 0 ? * FOO *)', 'day-of-week', /'FOO': FOO is not a number or name/);
    bad('cron(0 0 1 JAN-FOO ? *)', 'month', /FOO is not a number or name/);
    bad('cron(0 0 1 * ? MON)', 'year', /MON is not a number/);
    bad('cron(*/0 * * * ? *)', 'minutes', /the step 0 is out of range 1-59/);
    bad('cron(0/x * * * ? *)', 'minutes', /step after \/ must be a whole number/);
    bad('cron(1/2/3 * * * ? *)', 'minutes', /more than one \//);
    bad('cron(1-2-3 * * * ? *)', 'minutes', /a range is two values/);
    bad('cron(1,,2 * * * ? *)', 'minutes', /empty item/);
    bad('cron(0 0 * * ? 2030-2020)', 'year', /a range of years runs forwards/);
  });

  it('L, W and # stand alone and stay in range', () => {
    bad('cron(0 0 L,15 * ? *)', 'day-of-month', /L, LW and nW stand alone/);
    bad('cron(0 0 1-15W * ? *)', 'day-of-month', /stand alone/);
    bad('cron(0 0 32W * ? *)', 'day-of-month', /32 is out of range 1-31/);
    bad('cron(0 0 ? * 3#1,6#3 *)', 'day-of-week', /n#k stands alone.*3#1,6#3/);
    bad('cron(0 0 ? * 2#6 *)', 'day-of-week', /#6: a month has a 1st to a 5th/);
    bad('cron(0 0 ? * 2#0 *)', 'day-of-week', /#0/);
    bad('cron(0 0 ? * 9#1 *)', 'day-of-week', /9 is out of range 1-7/);
    bad('cron(0 0 ? * 6L,2 *)', 'day-of-week', /L and nL stand alone/);
    bad('cron(0 0 ? * 2W *)', 'day-of-week', /not a number or name/);
    bad('cron(0 0 1 * L *)', 'expression', /cannot both be given/);
  });

  it('the number of fields', () => {
    bad('cron(0 10 * * ?)', 'expression', /six fields, this one has 5/);
    bad('cron(0 0 10 * * ? *)', 'expression', /six fields, this one has 7/);
    bad('cron()', 'expression', /six fields, this one has 0/);
  });

  it('rate: singular for 1, plural otherwise, a positive whole number, minutes hours or days', () => {
    bad('rate(1 minutes)', 'rate unit', /for 1 the unit is singular: rate\(1 minute\)/);
    bad('rate(1 hours)', 'rate unit', /rate\(1 hour\)/);
    bad('rate(5 minute)', 'rate unit', /above 1 the unit is plural: rate\(5 minutes\)/);
    bad('rate(2 day)', 'rate unit', /rate\(2 days\)/);
    bad('rate(0 minutes)', 'rate value', /'0': is not a positive whole number/);
    bad('rate(-5 minutes)', 'rate value', /positive whole number/);
    bad('rate(1.5 hours)', 'rate value', /positive whole number/);
    bad('rate(05 minutes)', 'rate value', /leading zeros/);
    bad('rate(5 seconds)', 'rate unit', /'seconds': is not a unit/);
    bad('rate(2 weeks)', 'rate unit', /is not a unit/);
    bad('rate(5  minutes)', 'expression', /separated by one space/);
    bad('rate(5)', 'expression', /a value and a unit/);
  });

  it('carry their parts apart, for the config\'s own message format', () => {
    try {
      parseSchedule('cron(60 * * * ? *)');
      assert.fail('no error');
    } catch (e) {
      assert.ok(e instanceof ScheduleExpressionError);
      assert.equal(e.expression, 'cron(60 * * * ? *)');
      assert.equal(e.field, 'minutes');
      assert.equal(e.value, '60');
      assert.equal(e.detail, "minutes '60': 60 is out of range 0-59");
      assert.equal(e.allowed, '0-59 and , - * /');
      assert.equal(e.message, "cron(60 * * * ? *): minutes '60': 60 is out of range 0-59; allowed: 0-59 and , - * /");
    }
  });

  it('neither rate nor cron', () => {
    bad('Rate(5 minutes)', 'expression', /lower case/);
    bad('every 5 minutes', 'expression', /is not a rate\(\.\.\.\) or cron\(\.\.\.\) expression/);
    bad('at(2024-01-01T00:00:00)', 'expression', /one-time schedule/);
    bad('', 'expression', /is not a rate/);
  });
});

describe('cron: day fields against a day-by-day oracle, 2023-2025', () => {
  // Plain definitions, written apart from cron.ts, judged for every day of three years (2024 is a leap year).
  const weekday = (y: number, m: number, d: number): number => new Date(Date.UTC(y, m - 1, d)).getUTCDay() + 1; // 1 = SUN
  const lastDay = (y: number, m: number): number => new Date(Date.UTC(y, m, 0)).getUTCDate();
  const isWeekday = (y: number, m: number, d: number): boolean => weekday(y, m, d) >= 2 && weekday(y, m, d) <= 6;
  const nearestWeekday = (y: number, m: number, n: number): number | undefined => {
    if (n > lastDay(y, m)) return undefined;
    let best: number | undefined;
    for (let e = 1; e <= lastDay(y, m); e++) if (isWeekday(y, m, e) && (best === undefined || Math.abs(e - n) < Math.abs(best - n))) best = e;
    return best;
  };
  const cases: Array<[string, (y: number, m: number, d: number) => boolean]> = [
    ['cron(0 12 L * ? *)', (y, m, d) => d === lastDay(y, m)],
    ['cron(0 12 LW * ? *)', (y, m, d) => {
      if (!isWeekday(y, m, d)) return false;
      for (let e = d + 1; e <= lastDay(y, m); e++) if (isWeekday(y, m, e)) return false;
      return true;
    }],
    ...[1, 15, 30, 31].map((n): [string, (y: number, m: number, d: number) => boolean] => [`cron(0 12 ${n}W * ? *)`, (y, m, d) => d === nearestWeekday(y, m, n)]),
    ['cron(0 12 */10 * ? *)', (_y, _m, d) => d % 10 === 1],
    ['cron(0 12 ? * 6L *)', (y, m, d) => weekday(y, m, d) === 6 && d + 7 > lastDay(y, m)],
    ['cron(0 12 ? * SUNL *)', (y, m, d) => weekday(y, m, d) === 1 && d + 7 > lastDay(y, m)],
    ['cron(0 12 ? * 2#1 *)', (y, m, d) => weekday(y, m, d) === 2 && d <= 7],
    ['cron(0 12 ? * 4#3 *)', (y, m, d) => weekday(y, m, d) === 4 && d > 14 && d <= 21],
    ['cron(0 12 ? * 7#5 *)', (y, m, d) => weekday(y, m, d) === 7 && d > 28],
    ['cron(0 12 ? * MON-FRI *)', (y, m, d) => isWeekday(y, m, d)],
    ['cron(0 12 ? * FRI-MON *)', (y, m, d) => [6, 7, 1, 2].includes(weekday(y, m, d))],
    ['cron(0 12 ? * L *)', (y, m, d) => weekday(y, m, d) === 7],
    ['cron(0 12 ? * 1/3 *)', (y, m, d) => [1, 4, 7].includes(weekday(y, m, d))],
  ];
  for (const [expression, matches] of cases) {
    it(expression, () => {
      const expected: string[] = [];
      for (let t = Date.UTC(2023, 0, 1); t < Date.UTC(2026, 0, 1); t += 86_400_000) {
        const day = new Date(t);
        if (matches(day.getUTCFullYear(), day.getUTCMonth() + 1, day.getUTCDate())) expected.push(new Date(t + 12 * 3_600_000).toISOString());
      }
      const got = fires(expression, '2022-12-31T23:59:00Z', expected.length + 1).filter((iso) => iso < '2026');
      assert.deepEqual(got, expected);
    });
  }
});
