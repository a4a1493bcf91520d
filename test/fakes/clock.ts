import type { Clock } from '../../lambda/ports';
import { MS_PER_DAY } from '../../lambda/domain/time';

/** Time that moves only when told to; `sleep` advances it at once. */
export class FakeClock implements Clock {
  private current: number;
  slept = 0;

  constructor(start: Date | string = '2026-01-01T02:00:00Z') {
    this.current = new Date(start).getTime();
  }

  now(): Date {
    return new Date(this.current);
  }

  async sleep(ms: number): Promise<void> {
    this.slept += ms;
    this.current += ms;
  }

  advance(ms: number): void {
    this.current += ms;
  }

  advanceDays(days: number): void {
    this.current += days * MS_PER_DAY;
  }

  set(date: Date | string): void {
    this.current = new Date(date).getTime();
  }
}
