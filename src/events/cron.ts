/**
 * AWS cron expressions: `cron(Minutes Hours Day-of-month Month Day-of-week Year)`,
 * six fields, UTC, as EventBridge documents them:
 * https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cron-expressions.html
 * (and https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html).
 *
 * | field        | values            | wildcards         |
 * |--------------|-------------------|-------------------|
 * | Minutes      | 0-59              | , - * /           |
 * | Hours        | 0-23              | , - * /           |
 * | Day-of-month | 1-31              | , - * ? / L W     |
 * | Month        | 1-12 or JAN-DEC   | , - * /           |
 * | Day-of-week  | 1-7 or SUN-SAT    | , - * ? / L #     |
 * | Year         | 1970-2199         | , - * /           |
 *
 * Exactly one of day-of-month and day-of-week is `?` (AWS: "You can't specify
 * the Day-of-month and Day-of-week fields in the same cron expression").
 * Day-of-week counts from 1 = SUN to 7 = SAT. The special forms follow the
 * Quartz scheduler whose syntax AWS adopted, and stand alone in their field
 * (AWS: "3#1,6#3 is invalid"):
 *
 * - day-of-month `L`: the last day of the month; `LW`: its last weekday
 *   (Monday–Friday); `15W`: the weekday nearest the 15th, never leaving the
 *   month (`1W` on a Saturday is Monday the 3rd; `31W` on a Sunday is Friday
 *   the 29th); a month without that day (`31W` in April) does not fire.
 * - day-of-week `L`: the last day of the week, Saturday; `6L` / `FRIL`: the
 *   last Friday of the month; `2#1` / `MON#1`: the first Monday (`#1`–`#5`;
 *   a month without a fifth Monday does not fire for `2#5`).
 *
 * Nimbus choices where AWS is silent, from Quartz: names are read in any case;
 * `a/n` starts at `a` and runs to the field's end, `*\/n` starts at the field's
 * first value; a range may wrap (`FRI-MON`, `22-2` hours, `NOV-FEB`) except in
 * the year; `/` is also taken in day-of-week (AWS's earlier CloudWatch Events
 * page lists it there).
 */

/** An invalid schedule expression: which part is wrong, what was given, what is allowed. */
export class ScheduleExpressionError extends Error {
  /** The whole expression, e.g. `cron(0 12 * * * *)`. */
  readonly expression: string;
  /** The part that is wrong: `minutes`, `hours`, `day-of-month`, `month`, `day-of-week`, `year`, `rate value`, `rate unit`, or `expression`. */
  readonly field: string;
  /** What was given in that part. */
  readonly value: string;
  /** Why it is wrong, without the expression, e.g. `60 is out of range`. */
  readonly reason: string;
  /** What the part allows. */
  readonly allowed: string;
  /** The field, what it was given and why it is wrong, e.g. `minutes '60': 60 is out of range 0-59`: the message without the expression and what is allowed. */
  readonly detail: string;

  constructor(expression: string, field: string, value: string, reason: string, allowed: string) {
    const where = field === 'expression' ? '' : `${field} `;
    const given = field === 'expression' || value === '' ? '' : `'${value}': `;
    const detail = `${where}${given}${reason}`;
    super(`${expression}: ${detail}; allowed: ${allowed}`);
    this.name = 'ScheduleExpressionError';
    this.detail = detail;
    this.expression = expression;
    this.field = field;
    this.value = value;
    this.reason = reason;
    this.allowed = allowed;
  }
}

/** The earliest and latest year AWS accepts in a cron expression. */
export const CRON_MIN_YEAR = 1970;
export const CRON_MAX_YEAR = 2199;

type FieldName = 'minutes' | 'hours' | 'day-of-month' | 'month' | 'day-of-week' | 'year';

interface FieldInfo {
  readonly name: FieldName;
  readonly min: number;
  readonly max: number;
  readonly names?: readonly string[];
  readonly allowed: string;
}

const MONTH_NAMES = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAY_NAMES = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

const FIELDS: readonly FieldInfo[] = [
  { name: 'minutes', min: 0, max: 59, allowed: '0-59 and , - * /' },
  { name: 'hours', min: 0, max: 23, allowed: '0-23 and , - * /' },
  { name: 'day-of-month', min: 1, max: 31, allowed: '1-31 and , - * / ? L LW or nW (e.g. 15W)' },
  { name: 'month', min: 1, max: 12, names: MONTH_NAMES, allowed: '1-12 or JAN-DEC and , - * /' },
  { name: 'day-of-week', min: 1, max: 7, names: DAY_NAMES, allowed: '1-7 (1 = SUN) or SUN-SAT and , - * / ? L nL (e.g. 6L) or n#k (e.g. 2#1)' },
  { name: 'year', min: CRON_MIN_YEAR, max: CRON_MAX_YEAR, allowed: '1970-2199 and , - * /' },
];

/** Day-of-month: `?`, a set of days, `L`, `LW` or `nW`. */
type DayOfMonth =
  | { readonly kind: 'any' }
  | { readonly kind: 'set'; readonly days: readonly boolean[] }
  | { readonly kind: 'last' }
  | { readonly kind: 'lastWeekday' }
  | { readonly kind: 'nearestWeekday'; readonly day: number };

/** Day-of-week (1 = SUN … 7 = SAT): `?`, a set of weekdays, `nL` or `n#k`. */
type DayOfWeek =
  | { readonly kind: 'any' }
  | { readonly kind: 'set'; readonly days: readonly boolean[] }
  | { readonly kind: 'lastOfMonth'; readonly day: number }
  | { readonly kind: 'nth'; readonly day: number; readonly nth: number };

/** A parsed cron expression; use {@link nextCronTime}. */
export interface CronExpression {
  /** The text it was parsed from, e.g. `cron(0 10 * * ? *)`. */
  readonly text: string;
  /** `minutes[m]` is true when minute m matches; likewise hours, months (index 1-12) and years (index year − 1970). */
  readonly minutes: readonly boolean[];
  readonly hours: readonly boolean[];
  readonly months: readonly boolean[];
  readonly years: readonly boolean[];
  readonly dayOfMonth: DayOfMonth;
  readonly dayOfWeek: DayOfWeek;
}

/**
 * Parses the six fields of `cron(...)` (the text inside the parentheses).
 * `text` is the whole expression, for error messages.
 *
 * @throws ScheduleExpressionError naming the field, the value and what it allows.
 */
export function parseCronFields(fieldsText: string, text: string): CronExpression {
  const parts = fieldsText.trim().split(/\s+/).filter((p) => p !== '');
  if (parts.length !== 6) {
    throw new ScheduleExpressionError(text, 'expression', fieldsText, `a cron expression has six fields, this one has ${parts.length}`,
      'cron(Minutes Hours Day-of-month Month Day-of-week Year), e.g. cron(0 10 * * ? *)');
  }
  const [mi, h, dom, mo, dow, y] = parts.map((p) => p.toUpperCase());
  const domAny = dom === '?';
  const dowAny = dow === '?';
  if (!domAny && !dowAny) {
    throw new ScheduleExpressionError(text, 'expression', '', 'day-of-month and day-of-week cannot both be given; use ? in one of them',
      'e.g. cron(0 12 * * ? *) (every day) or cron(0 12 ? * MON *) (Mondays)');
  }
  if (domAny && dowAny) {
    throw new ScheduleExpressionError(text, 'expression', '', 'day-of-month and day-of-week cannot both be ?; give one of them (* for every day)',
      'e.g. cron(0 12 * * ? *) (every day) or cron(0 12 ? * MON *) (Mondays)');
  }
  for (let i = 0; i < 6; i++) {
    if (parts[i] === '?' && i !== 2 && i !== 4) {
      throw new ScheduleExpressionError(text, FIELDS[i].name, parts[i], '? is only for day-of-month and day-of-week', FIELDS[i].allowed);
    }
  }
  return {
    text,
    minutes: parseList(mi, FIELDS[0], text),
    hours: parseList(h, FIELDS[1], text),
    dayOfMonth: domAny ? { kind: 'any' } : parseDayOfMonth(dom, text),
    months: parseList(mo, FIELDS[3], text),
    dayOfWeek: dowAny ? { kind: 'any' } : parseDayOfWeek(dow, text),
    years: parseList(y, FIELDS[5], text, true).slice(CRON_MIN_YEAR),
  };
}

function parseDayOfMonth(v: string, text: string): DayOfMonth {
  const f = FIELDS[2];
  if (v === 'L') return { kind: 'last' };
  if (v === 'LW') return { kind: 'lastWeekday' };
  const w = /^(\d+)W$/.exec(v);
  if (w) {
    const day = Number(w[1]);
    if (day < 1 || day > 31) throw new ScheduleExpressionError(text, f.name, v, `${w[1]} is out of range 1-31`, f.allowed);
    return { kind: 'nearestWeekday', day };
  }
  if (v.includes('L') || v.includes('W')) {
    throw new ScheduleExpressionError(text, f.name, v, 'L, LW and nW stand alone in the field (no lists, ranges or steps with them)', f.allowed);
  }
  return { kind: 'set', days: parseList(v, f, text) };
}

function parseDayOfWeek(v: string, text: string): DayOfWeek {
  const f = FIELDS[4];
  if (v === 'L') return { kind: 'set', days: single(7, f.max) };
  const hash = /^([A-Z]+|\d+)#(\d+)$/.exec(v);
  if (hash) {
    const nth = Number(hash[2]);
    if (nth < 1 || nth > 5) throw new ScheduleExpressionError(text, f.name, v, `#${hash[2]}: a month has a 1st to a 5th of each weekday`, f.allowed);
    return { kind: 'nth', day: parseValue(hash[1], f, text, v), nth };
  }
  if (v.includes('#')) {
    throw new ScheduleExpressionError(text, f.name, v, 'n#k stands alone in the field (AWS: "3#1,6#3" is invalid)', f.allowed);
  }
  const last = /^([A-Z]+|\d+)L$/.exec(v);
  if (last) return { kind: 'lastOfMonth', day: parseValue(last[1], f, text, v) };
  if (v.includes('L')) { // no day name has an L in it
    throw new ScheduleExpressionError(text, f.name, v, 'L and nL stand alone in the field (no lists, ranges or steps with them)', f.allowed);
  }
  return { kind: 'set', days: parseList(v, f, text) };
}

function single(value: number, max: number): boolean[] {
  const out = new Array<boolean>(max + 1).fill(false);
  out[value] = true;
  return out;
}

/** A list of `*`, `*\/n`, `a`, `a/n`, `a-b`, `a-b/n` items, as a boolean table indexed by value. */
function parseList(v: string, f: FieldInfo, text: string, noWrap = false): boolean[] {
  const out = new Array<boolean>(f.max + 1).fill(false);
  if (v === '') throw new ScheduleExpressionError(text, f.name, v, 'is empty', f.allowed);
  for (const item of v.split(',')) {
    if (item === '') throw new ScheduleExpressionError(text, f.name, v, 'has an empty item in its list', f.allowed);
    const slash = item.split('/');
    if (slash.length > 2) throw new ScheduleExpressionError(text, f.name, item, 'has more than one /', f.allowed);
    const [base, stepText] = slash;
    let step = 1;
    if (stepText !== undefined) {
      if (!/^\d+$/.test(stepText)) throw new ScheduleExpressionError(text, f.name, item, `the step after / must be a whole number`, f.allowed);
      step = Number(stepText);
      const most = f.max - f.min;
      if (step < 1 || step > most) {
        throw new ScheduleExpressionError(text, f.name, item, `the step ${stepText} is out of range 1-${most}`, f.allowed);
      }
    }
    let from: number;
    let to: number;
    if (base === '*') {
      from = f.min;
      to = f.max;
    } else if (base.includes('-')) {
      const ends = base.split('-');
      if (ends.length !== 2) throw new ScheduleExpressionError(text, f.name, item, 'a range is two values joined by -', f.allowed);
      from = parseValue(ends[0], f, text, item);
      to = parseValue(ends[1], f, text, item);
      if (to < from && noWrap) throw new ScheduleExpressionError(text, f.name, item, 'a range of years runs forwards', f.allowed);
    } else {
      from = parseValue(base, f, text, item);
      to = stepText === undefined ? from : f.max;
    }
    // A range that wraps (FRI-MON, 22-2) runs to the field's end and on from its start.
    const span = to >= from ? to - from : to + (f.max - f.min + 1) - from;
    for (let k = 0; k <= span; k += step) {
      let value = from + k;
      if (value > f.max) value -= f.max - f.min + 1;
      out[value] = true;
    }
  }
  return out;
}

function parseValue(s: string, f: FieldInfo, text: string, item: string): number {
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n < f.min || n > f.max) throw new ScheduleExpressionError(text, f.name, item, `${s} is out of range ${f.min}-${f.max}`, f.allowed);
    return n;
  }
  const i = f.names?.indexOf(s) ?? -1;
  if (i >= 0) return i + 1;
  const what = s === '' ? 'a value is missing' : `${s} is not a ${f.names ? 'number or name' : 'number'}`;
  throw new ScheduleExpressionError(text, f.name, item, what, f.allowed);
}

const MINUTE_MS = 60_000;

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** 1 = SUN … 7 = SAT, as AWS counts, of a UTC date. */
function weekday(year: number, month: number, day: number): number {
  return new Date(Date.UTC(year, month - 1, day)).getUTCDay() + 1;
}

/** The days of one month the expression fires on, as a table indexed 1..31. */
function daysOf(c: CronExpression, year: number, month: number): boolean[] {
  const dim = daysInMonth(year, month);
  const out = new Array<boolean>(32).fill(false);
  const dom = c.dayOfMonth;
  const dow = c.dayOfWeek;
  if (dom.kind === 'set') {
    for (let d = 1; d <= dim; d++) out[d] = dom.days[d];
  } else if (dom.kind === 'last') {
    out[dim] = true;
  } else if (dom.kind === 'lastWeekday') {
    const wd = weekday(year, month, dim);
    out[wd === 7 ? dim - 1 : wd === 1 ? dim - 2 : dim] = true;
  } else if (dom.kind === 'nearestWeekday') {
    if (dom.day <= dim) {
      const wd = weekday(year, month, dom.day);
      let d = dom.day;
      if (wd === 7) d = dom.day === 1 ? 3 : dom.day - 1; // Saturday: Friday, or Monday the 3rd if the 1st
      else if (wd === 1) d = dom.day === dim ? dom.day - 2 : dom.day + 1; // Sunday: Monday, or Friday if the last day
      out[d] = true;
    }
  } else if (dow.kind === 'set') {
    const first = weekday(year, month, 1);
    for (let d = 1; d <= dim; d++) out[d] = dow.days[((first - 1 + d - 1) % 7) + 1];
  } else if (dow.kind === 'lastOfMonth') {
    const wd = weekday(year, month, dim);
    out[dim - ((wd - dow.day + 7) % 7)] = true;
  } else if (dow.kind === 'nth') {
    const first = weekday(year, month, 1);
    const d = 1 + ((dow.day - first + 7) % 7) + (dow.nth - 1) * 7;
    if (d <= dim) out[d] = true;
  }
  return out;
}

/**
 * The first time the expression fires strictly after `afterMs` (epoch ms, UTC),
 * in whole minutes, or null when it never fires again (its years are over, or
 * it names days that never come, like `cron(0 0 30 2 ? *)`).
 */
export function nextCronTime(c: CronExpression, afterMs: number): number | null {
  let start = Math.floor(afterMs / MINUTE_MS) * MINUTE_MS + MINUTE_MS;
  const earliest = Date.UTC(CRON_MIN_YEAR, 0, 1);
  if (!Number.isFinite(start) || start < earliest) start = earliest;
  const t = new Date(start);
  let year = t.getUTCFullYear();
  let month = t.getUTCMonth() + 1;
  let day = t.getUTCDate();
  let hour = t.getUTCHours();
  let minute = t.getUTCMinutes();
  for (; year <= CRON_MAX_YEAR; year++, month = 1, day = 1, hour = 0, minute = 0) {
    if (!c.years[year - CRON_MIN_YEAR]) continue;
    for (; month <= 12; month++, day = 1, hour = 0, minute = 0) {
      if (!c.months[month]) continue;
      const days = daysOf(c, year, month);
      for (; day <= 31; day++, hour = 0, minute = 0) {
        if (!days[day]) continue;
        for (; hour <= 23; hour++, minute = 0) {
          if (!c.hours[hour]) continue;
          for (; minute <= 59; minute++) {
            if (c.minutes[minute]) return Date.UTC(year, month - 1, day, hour, minute);
          }
        }
      }
    }
  }
  return null;
}
