/**
 * The scheduler addon's schedules, exactly as the seed defines them: five fields (no seconds),
 * minutes 0-59, hours 0-23, day of month 1-31, months 0-11, day of week 0-6 (0 = Sunday), each
 * `*`, a number, a range `a-b`, a step `*\/n` or `a-b/n`, or a comma list of those.
 */

export interface Schedule {
  minutes: Set<number>;
  hours: Set<number>;
  daysOfMonth: Set<number>;
  months: Set<number>;
  daysOfWeek: Set<number>;
  /** standard cron: when both day fields are restricted, either one matching is enough */
  dayOr: boolean;
}

export class ScheduleError extends Error {}

const FIELDS = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 0, max: 11 },
  { name: 'day of week', min: 0, max: 6 },
] as const;

function parseField(text: string, f: (typeof FIELDS)[number]): Set<number> {
  const values = new Set<number>();
  const number = (s: string): number => {
    if (!/^\d{1,2}$/.test(s)) throw new ScheduleError(`${f.name} field "${text}": "${s}" is not a number`);
    const n = Number(s);
    if (n < f.min || n > f.max) throw new ScheduleError(`${f.name} ${n} is out of range ${f.min}-${f.max}`);
    return n;
  };
  for (const part of text.split(',')) {
    const m = /^(\*|[^-/]+(?:-[^-/]+)?)(?:\/(.+))?$/.exec(part);
    if (!m) throw new ScheduleError(`${f.name} field "${text}" is not *, a number, a range a-b, a step */n or a list`);
    const [lo, hi] = m[1] === '*' ? [f.min, f.max] : m[1]!.includes('-') ? m[1]!.split('-').map(number) as [number, number] : [number(m[1]!), number(m[1]!)];
    if (lo > hi) throw new ScheduleError(`${f.name} range ${lo}-${hi} runs backwards`);
    let step = 1;
    if (m[2] !== undefined) {
      if (!/^\d{1,2}$/.test(m[2]) || Number(m[2]) < 1) throw new ScheduleError(`${f.name} step "/${m[2]}" must be a number from 1`);
      step = Number(m[2]);
    }
    // `5/10` is cron shorthand for 5-max/10.
    const end = m[2] !== undefined && m[1] !== '*' && !m[1]!.includes('-') ? f.max : hi;
    for (let v = lo; v <= end; v += step) values.add(v);
  }
  return values;
}

export function parseSchedule(text: string): Schedule {
  const fields = text.trim().split(/\s+/);
  if (fields.length === 6) throw new ScheduleError(`schedule "${text}" has 6 fields: seconds are not supported (minute hour day-of-month month day-of-week)`);
  if (fields.length !== 5) throw new ScheduleError(`schedule "${text}" must have 5 fields: minute hour day-of-month month day-of-week`);
  const [minutes, hours, daysOfMonth, months, daysOfWeek] = fields.map((t, i) => parseField(t, FIELDS[i]!)) as [Set<number>, Set<number>, Set<number>, Set<number>, Set<number>];
  return { minutes, hours, daysOfMonth, months, daysOfWeek, dayOr: fields[2] !== '*' && fields[4] !== '*' };
}

/** Whether the schedule fires in the minute that contains `at` (local time). */
export function isDue(s: Schedule, at: Date): boolean {
  if (!s.minutes.has(at.getMinutes()) || !s.hours.has(at.getHours()) || !s.months.has(at.getMonth())) return false;
  const dom = s.daysOfMonth.has(at.getDate());
  const dow = s.daysOfWeek.has(at.getDay());
  return s.dayOr ? dom || dow : dom && dow;
}

/** The first minute after `after` at which the schedule fires (searching up to five years ahead). */
export function nextRun(s: Schedule, after: Date): Date | null {
  const t = new Date(after);
  t.setSeconds(0, 0);
  for (let i = 0; i < 5 * 366 * 24 * 60; i++) {
    t.setMinutes(t.getMinutes() + 1);
    if (isDue(s, t)) return new Date(t);
  }
  return null;
}
