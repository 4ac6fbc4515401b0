import type { BusinessHours } from '@casebridge/shared';

const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;

/** True when `at` falls inside the opening hours, read in the agency's own time zone. */
export function isOpen(hours: BusinessHours | null | undefined, at: Date): boolean {
  if (!hours) return true;
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: hours.timezone,
    weekday: 'short',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(at);
  const get = (t: string) => parts.find((p) => p.type === t)?.value ?? '';
  const day = DAYS.find((d) => d === get('weekday').slice(0, 3).toLowerCase());
  if (!day) return false;
  const now = `${get('hour')}:${get('minute')}`;
  return (hours.days[day] ?? []).some(([from, to]) => now >= from && now < to);
}
