import { describe, expect, it } from '@jest/globals';
import { addBusinessMinutes, businessMinutesBetween, isBusinessTime, type BusinessCalendar } from '../../server/src/lib/business-time.js';

// SLA targets count business time: the agency's hours in its own time zone, skipping weekends and holidays.
const weekdays: [string, string][] = [['09:00', '17:00']];
const chicago: BusinessCalendar = {
  hours: { timezone: 'America/Chicago', days: { mon: weekdays, tue: weekdays, wed: weekdays, thu: weekdays, fri: weekdays } },
  holidays: ['2026-12-25', '2027-01-01'],
};
const at = (iso: string) => new Date(iso);

describe('business time', () => {
  it('counts only opening hours, in the agency time zone', () => {
    // Wednesday 16:00 Chicago (22:00Z) + 60 business minutes = 17:00 the same day.
    expect(addBusinessMinutes(at('2026-12-23T22:00:00Z'), 60, chicago).toISOString()).toBe('2026-12-23T23:00:00.000Z');
    // + 61 spills into the next opening: Thursday 09:01 Chicago.
    expect(addBusinessMinutes(at('2026-12-23T22:00:00Z'), 61, chicago).toISOString()).toBe('2026-12-24T15:01:00.000Z');
    // Started at night: the clock starts at the next opening.
    expect(addBusinessMinutes(at('2026-12-24T03:00:00Z'), 30, chicago).toISOString()).toBe('2026-12-24T15:30:00.000Z');
  });

  it('skips weekends and holidays', () => {
    // Thursday Dec 24 16:30 + 60: Friday is Christmas, so Monday Dec 28 09:30.
    expect(addBusinessMinutes(at('2026-12-24T22:30:00Z'), 60, chicago).toISOString()).toBe('2026-12-28T15:30:00.000Z');
    // Five 8-hour days from Wednesday 16:00, across Christmas and a weekend: Thursday Dec 31 16:00.
    expect(addBusinessMinutes(at('2026-12-23T22:00:00Z'), 2400, chicago).toISOString()).toBe('2026-12-31T22:00:00.000Z');
    expect(businessMinutesBetween(at('2026-12-23T22:00:00Z'), at('2026-12-31T22:00:00Z'), chicago)).toBe(2400);
  });

  it('keeps local opening hours across a daylight-saving change', () => {
    // Friday March 6 2026 16:00 CST (22:00Z) + 120: Monday March 9 10:00 CDT, which is 15:00Z, not 16:00Z.
    expect(addBusinessMinutes(at('2026-03-06T22:00:00Z'), 120, chicago).toISOString()).toBe('2026-03-09T15:00:00.000Z');
  });

  it('runs around the clock without hours, still skipping holidays', () => {
    const always: BusinessCalendar = { hours: null, holidays: ['2026-12-25'] };
    expect(addBusinessMinutes(at('2026-12-24T23:00:00Z'), 120, always).toISOString()).toBe('2026-12-26T01:00:00.000Z');
    expect(businessMinutesBetween(at('2026-12-24T00:00:00Z'), at('2026-12-26T00:00:00Z'), always)).toBe(24 * 60);
  });

  it('says whether the agency is open now: hours in its zone, never on a holiday', () => {
    expect(isBusinessTime(at('2026-12-23T15:00:00Z'), chicago)).toBe(true); // Wed 09:00 Chicago
    expect(isBusinessTime(at('2026-12-23T14:59:00Z'), chicago)).toBe(false); // 08:59
    expect(isBusinessTime(at('2026-12-23T23:00:00Z'), chicago)).toBe(false); // 17:00 closes
    expect(isBusinessTime(at('2026-12-25T18:00:00Z'), chicago)).toBe(false); // Christmas, a Friday
    expect(isBusinessTime(at('2026-12-26T18:00:00Z'), chicago)).toBe(false); // Saturday
    expect(isBusinessTime(at('2026-12-25T18:00:00Z'), { hours: null, holidays: [] })).toBe(true);
  });

  it('refuses a calendar that is never open instead of looping forever', () => {
    expect(() => addBusinessMinutes(at('2026-12-24T00:00:00Z'), 10, { hours: { timezone: 'UTC', days: {} }, holidays: [] })).toThrow(
      /no open hours/,
    );
  });
});
