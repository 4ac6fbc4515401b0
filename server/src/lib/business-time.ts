import { DateTime } from 'luxon';
import type { BusinessHours } from '@casebridge/shared';

/** An agency's working calendar: weekly opening hours in its time zone, and the days it is closed. */
export interface BusinessCalendar {
  /** Null: open around the clock (holidays still count as closed). */
  hours: BusinessHours | null;
  /** Local dates (YYYY-MM-DD) the agency is closed. */
  holidays: string[];
  /** Used when `hours` is null. */
  timezone?: string;
}

const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
const MINUTE = 60_000;
/** Ten years of closed days is a calendar mistake, not a target: stop rather than loop forever. */
const MAX_DAYS = 3660;

function zoneOf(cal: BusinessCalendar): string {
  return cal.hours?.timezone ?? cal.timezone ?? 'UTC';
}

/** The open intervals of one local day, as instants, in order. */
function openIntervals(cal: BusinessCalendar, day: DateTime): [number, number][] {
  if (cal.holidays.includes(day.toISODate()!)) return [];
  if (!cal.hours) return [[day.startOf('day').toMillis(), day.plus({ days: 1 }).startOf('day').toMillis()]];
  const spans = cal.hours.days[DAYS[day.weekday - 1]!] ?? [];
  return spans
    .map(([from, to]): [number, number] => {
      const at = (hhmm: string) => {
        const [h, m] = hhmm.split(':').map(Number) as [number, number];
        // 24:00 is the end of the day; luxon handles DST gaps by moving forward.
        return h === 24 ? day.plus({ days: 1 }).startOf('day') : day.set({ hour: h, minute: m, second: 0, millisecond: 0 });
      };
      return [at(from).toMillis(), at(to).toMillis()];
    })
    .filter(([a, b]) => b > a)
    .sort((x, y) => x[0] - y[0]);
}

/** The instant `minutes` business minutes after `start` (an SLA due time). */
export function addBusinessMinutes(start: Date, minutes: number, cal: BusinessCalendar): Date {
  let left = minutes * MINUTE;
  let day = DateTime.fromJSDate(start, { zone: zoneOf(cal) }).startOf('day');
  const from = start.getTime();
  for (let i = 0; i < MAX_DAYS; i++) {
    for (const [a, b] of openIntervals(cal, day)) {
      const s = Math.max(a, from);
      if (s >= b) continue;
      if (left <= b - s) return new Date(s + left);
      left -= b - s;
    }
    day = day.plus({ days: 1 });
  }
  throw new Error('The business calendar has no open hours');
}

/** Business minutes between two instants (0 when `to` is not after `from`). */
export function businessMinutesBetween(from: Date, to: Date, cal: BusinessCalendar): number {
  if (to <= from) return 0;
  let total = 0;
  let day = DateTime.fromJSDate(from, { zone: zoneOf(cal) }).startOf('day');
  const end = to.getTime();
  for (let i = 0; i < MAX_DAYS && day.toMillis() < end; i++) {
    for (const [a, b] of openIntervals(cal, day)) {
      const s = Math.max(a, from.getTime());
      const e = Math.min(b, end);
      if (e > s) total += e - s;
    }
    day = day.plus({ days: 1 });
  }
  return total / MINUTE;
}

/** Is the agency open at this instant (within its hours, and not on a holiday)? */
export function isBusinessTime(at: Date, cal: BusinessCalendar): boolean {
  const day = DateTime.fromJSDate(at, { zone: zoneOf(cal) }).startOf('day');
  const t = at.getTime();
  return openIntervals(cal, day).some(([a, b]) => t >= a && t < b);
}
