import { dayStartAfter, daysBetween, isoDay, maxDate, MS_PER_DAY } from '../../../lambda/domain/time';

const at = (iso: string) => new Date(iso);

describe('daysBetween counts whole UTC calendar days', () => {
  test.each([
    { from: '2026-06-01T00:00:00Z', to: '2026-06-01T23:59:59.999Z', days: 0 },
    { from: '2026-05-31T23:59:00Z', to: '2026-06-01T00:00:00Z', days: 1 },
    { from: '2026-05-31T00:00:00Z', to: '2026-06-01T23:59:59Z', days: 1 },
    { from: '2026-03-12T23:59:59Z', to: '2026-05-31T00:00:00Z', days: 80 },
    { from: '2026-03-13T00:00:00Z', to: '2026-05-31T23:59:59Z', days: 79 },
    { from: '2024-02-28T12:00:00Z', to: '2024-03-01T12:00:00Z', days: 2 },
    { from: '2025-12-31T23:00:00Z', to: '2026-01-01T01:00:00Z', days: 1 },
    // Offsets are instants: 2026-06-01T01:00+02:00 is still 2026-05-31 in UTC.
    { from: '2026-06-01T01:00:00+02:00', to: '2026-06-01T00:30:00Z', days: 1 },
    { from: '2026-06-02T00:00:00Z', to: '2026-06-01T00:00:00Z', days: -1 },
  ])('$from -> $to is $days', ({ from, to, days }) => {
    expect(daysBetween(at(from), at(to))).toBe(days);
  });
});

describe('dayStartAfter', () => {
  test.each([
    { date: '2026-03-12T23:59:59Z', days: 80, start: '2026-05-31T00:00:00.000Z' },
    { date: '2026-03-12T00:00:00Z', days: 80, start: '2026-05-31T00:00:00.000Z' },
    { date: '2026-05-25T10:00:00Z', days: 7, start: '2026-06-01T00:00:00.000Z' },
    { date: '2026-05-25T10:00:00Z', days: 0, start: '2026-05-25T00:00:00.000Z' },
    { date: '2024-02-28T10:00:00Z', days: 1, start: '2024-02-29T00:00:00.000Z' },
  ])('$days days after $date starts at $start', ({ date, days, start }) => {
    expect(dayStartAfter(at(date), days).toISOString()).toBe(start);
  });

  test('a date is `days` old exactly from the start returned', () => {
    const created = at('2026-03-12T17:45:00Z');
    const start = dayStartAfter(created, 80);

    expect(daysBetween(created, start)).toBe(80);
    expect(daysBetween(created, new Date(start.getTime() - 1))).toBe(79);
  });
});

describe('isoDay and maxDate', () => {
  test.each([
    { date: '2026-06-01T00:00:00Z', day: '2026-06-01' },
    { date: '2026-06-01T23:59:59.999Z', day: '2026-06-01' },
    { date: '2026-06-01T01:00:00+02:00', day: '2026-05-31' },
  ])('isoDay($date) is $day', ({ date, day }) => {
    expect(isoDay(at(date))).toBe(day);
  });

  test('maxDate returns the later date, and the first on a tie', () => {
    const early = at('2026-06-01T00:00:00Z');
    const late = at('2026-06-01T00:00:01Z');
    const tie = at('2026-06-01T00:00:00Z');

    expect(maxDate(early, late)).toBe(late);
    expect(maxDate(late, early)).toBe(late);
    expect(maxDate(early, tie)).toBe(early);
  });

  test('a day is 86 400 000 ms', () => {
    expect(MS_PER_DAY).toBe(86_400_000);
  });
});
