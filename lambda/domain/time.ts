/** Pure date arithmetic. The policy counts ages in whole UTC calendar days. */

export const MS_PER_DAY = 86_400_000;

function utcDayNumber(date: Date): number {
  return Math.floor(date.getTime() / MS_PER_DAY);
}

/**
 * Whole UTC calendar days from `from` to `to`: a key created on day D at any hour is "80 days old"
 * from 00:00 UTC of day D+80. This makes a daily run act on the named day whatever its hour, so that
 * with rotateAfterDays + graceDays <= maxKeyAgeDays no key stays active for more than maxKeyAgeDays.
 */
export function daysBetween(from: Date, to: Date): number {
  return utcDayNumber(to) - utcDayNumber(from);
}

/** The start (00:00 UTC) of the calendar day `days` after the day of `date`. */
export function dayStartAfter(date: Date, days: number): Date {
  return new Date((utcDayNumber(date) + days) * MS_PER_DAY);
}

/** `YYYY-MM-DD` of a date in UTC. */
export function isoDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}

export function maxDate(a: Date, b: Date): Date {
  return a.getTime() >= b.getTime() ? a : b;
}
