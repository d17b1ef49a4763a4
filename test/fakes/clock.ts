// A clock that moves only when the test says so (the Clock port): no sleeps, no timed assertions.
import type { Clock } from '../../src/app/ports.js';

export class ManualClock implements Clock {
  constructor(private t = Date.UTC(2026, 0, 5, 9, 0, 0)) {}

  now(): number {
    return this.t;
  }

  advance(ms: number): number {
    if (ms < 0) throw new RangeError('a manual clock does not go back');
    this.t += ms;
    return this.t;
  }

  set(at: number): void {
    if (at < this.t) throw new RangeError('a manual clock does not go back');
    this.t = at;
  }
}
