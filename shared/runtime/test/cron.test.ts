import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isDue, nextRun, parseSchedule, ScheduleError, type Schedule } from '../src/cron.ts';

const sorted = (s: Set<number>): number[] => [...s].sort((a, b) => a - b);

describe('scheduler schedules (the seed\'s ranges)', () => {
  it('reads *, numbers, ranges, lists and steps', () => {
    const s = parseSchedule('*/15 1-3,5 1 0-11/6 *');
    assert.deepEqual(sorted(s.minutes), [0, 15, 30, 45]);
    assert.deepEqual(sorted(s.hours), [1, 2, 3, 5]);
    assert.deepEqual(sorted(s.daysOfMonth), [1]);
    assert.deepEqual(sorted(s.months), [0, 6]);
    assert.equal(s.daysOfWeek.size, 7);
    assert.deepEqual(sorted(parseSchedule('10/20 * * * *').minutes), [10, 30, 50]);
    assert.deepEqual(sorted(parseSchedule('* * * * 0-6').daysOfWeek), [0, 1, 2, 3, 4, 5, 6]);
  });

  it('months are 0-11: 0 is January, 11 December', () => {
    const s = parseSchedule('0 12 1 0 *');
    assert.equal(isDue(s, new Date(2027, 0, 1, 12, 0)), true);
    assert.equal(isDue(s, new Date(2027, 1, 1, 12, 0)), false);
    assert.deepEqual(nextRun(parseSchedule('30 6 24 11 *'), new Date(2026, 0, 1)), new Date(2026, 11, 24, 6, 30));
  });

  it('day of month and day of week: either one when both are restricted (cron)', () => {
    const s = parseSchedule('0 0 13 * 5');
    assert.equal(isDue(s, new Date(2026, 1, 13, 0, 0)), true); // Friday the 13th
    assert.equal(isDue(s, new Date(2026, 1, 6, 0, 0)), true); // a Friday
    assert.equal(isDue(s, new Date(2026, 2, 13, 0, 0)), true); // the 13th, a Friday too
    assert.equal(isDue(s, new Date(2026, 2, 14, 0, 0)), false);
    assert.equal(isDue(parseSchedule('0 0 * * 1'), new Date(2026, 11, 7, 0, 0)), true); // Monday 7 Dec 2026
    assert.equal(isDue(parseSchedule('0 0 * * 1'), new Date(2026, 11, 8, 0, 0)), false);
  });

  it('*/1 fires every minute; nextRun is the following matching minute', () => {
    const s = parseSchedule('*/1 * * * *');
    assert.deepEqual(nextRun(s, new Date(2026, 5, 1, 10, 0, 59)), new Date(2026, 5, 1, 10, 1));
    assert.deepEqual(nextRun(parseSchedule('0 0 1 0 *'), new Date(2026, 5, 1)), new Date(2027, 0, 1, 0, 0));
  });

  it('refuses what the seed does not allow, naming the field', () => {
    const cases: [string, RegExp][] = [
      ['0 0 1 12 *', /^month 12 is out of range 0-11$/],
      ['60 * * * *', /^minute 60 is out of range 0-59$/],
      ['* 24 * * *', /^hour 24 is out of range 0-23$/],
      ['* * 0 * *', /^day of month 0 is out of range 1-31$/],
      ['* * * * 7', /^day of week 7 is out of range 0-6$/],
      ['0 */5 * * * *', /seconds are not supported/],
      ['* * * *', /must have 5 fields/],
      ['* * * JAN *', /month field "JAN": "JAN" is not a number/],
      ['*/0 * * * *', /minute step "\/0" must be a number from 1/],
      ['5-1 * * * *', /minute range 5-1 runs backwards/],
      ['1,,2 * * * *', /minute field "1,,2"/],
      ['@hourly', /must have 5 fields/],
    ];
    for (const [text, message] of cases) assert.throws(() => parseSchedule(text), { message }, text);
  });
});

describe('scheduler schedules, fuzzed', () => {
  it('either parses into in-range values or refuses with a ScheduleError, for any input', () => {
    const alphabet = ['0', '1', '5', '9', '12', '59', '60', '*', '/', '-', ',', ' ', '  ', '\t', 'x', '7', '31', '32', '23', '24', '\u00e9', '%', '@'];
    let seed = 42;
    const next = (n: number): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0), (seed >>> 16) % n);
    const fields = ['*', '*/5', '*/1', '1-3', '0', '1', '5', '6', '11', '12', '23', '31', '59', '60', '1,2', '0-6', '*/0', '3-1', '1-31/7', 'x', ''];
    const junk = (n: number): string => Array.from({ length: n }, () => alphabet[next(alphabet.length)]).join('');
    const ranges: [keyof Schedule, number, number][] = [['minutes', 0, 59], ['hours', 0, 23], ['daysOfMonth', 1, 31], ['months', 0, 11], ['daysOfWeek', 0, 6]];
    let parsed = 0;
    for (let i = 0; i < 20000; i++) {
      // Half free-form junk, half five fields of it (which is where valid schedules come from).
      const field = (): string => (next(4) === 0 ? junk(1 + next(3)).trim() || '*' : fields[next(fields.length)]!);
      const text = i % 2 ? junk(1 + next(20)) : Array.from({ length: 4 + next(3) }, field).join(' ');
      let s: Schedule;
      try {
        s = parseSchedule(text);
      } catch (err) {
        assert.ok(err instanceof ScheduleError, `${JSON.stringify(text)}: ${(err as Error).message}`);
        continue;
      }
      parsed++;
      for (const [field, min, max] of ranges) {
        const values = s[field] as Set<number>;
        assert.ok(values.size > 0, text);
        for (const v of values) assert.ok(Number.isInteger(v) && v >= min && v <= max, `${JSON.stringify(text)} ${field} ${v}`);
      }
    }
    assert.ok(parsed > 0, 'some inputs are valid schedules');
  });
});
