import { describe, expect, it } from 'vitest';
import { formatDuration, formatIsoDuration, parseDuration } from '../../src/core/duration.js';

const S = 1000;
const M = 60 * S;
const H = 60 * M;

describe('parseDuration', () => {
  it.each([
    ['90m', 90 * M], ['2h', 2 * H], ['1h30m', 90 * M], ['45s', 45 * S], ['1d', 24 * H], ['1h 30m', 90 * M],
    ['2 hours', 2 * H], ['30min', 30 * M], ['1.5h', 90 * M], ['PT2H', 2 * H], ['pt90m', 90 * M], ['P1DT2H', 26 * H],
    ['PT1H30M', 90 * M], ['PT45S', 45 * S], ['PT0.5H', 30 * M], ['P1D', 24 * H],
  ])('%s = %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each([
    ['', /missing/], ['0m', /is zero/], ['PT0S', /is zero/], ['90', /has no unit/], ['2x', /unknown unit "x"/],
    ['2w', /too long for a JIT grant/], ['1y', /too long/], ['P1M', /years, months or weeks/], ['P1Y', /years, months/],
    ['P1W', /years, months/], ['PT', /not an ISO-8601/], ['P', /not an ISO-8601/], ['h', /not a duration/],
    ['2h2h', /repeats a unit/], ['30m1h', /largest first/], ['1.5m', /fraction of a minute/], ['9999h', /longer than 7 days/],
    ['-1h', /not a duration/], ['1h-', /not a duration/],
  ])('%j is refused (%s)', (text, message) => {
    expect(() => parseDuration(text)).toThrow(message);
  });
});

describe('formatDuration / formatIsoDuration', () => {
  it.each([
    [3 * H, '3h', 'PT3H'], [90 * M, '1h30m', 'PT1H30M'], [45 * S, '45s', 'PT45S'], [26 * H, '1d2h', 'P1DT2H'], [0, '0s', 'PT0S'],
  ])('%d ms → %s / %s', (ms, chat, iso) => {
    expect(formatDuration(ms)).toBe(chat);
    expect(formatIsoDuration(ms)).toBe(iso);
  });

  it('round-trips through the parser', () => {
    for (const ms of [S, 59 * S, M, 61 * M, 3 * H, 25 * H + 5 * S]) {
      expect(parseDuration(formatDuration(ms))).toBe(ms);
      expect(parseDuration(formatIsoDuration(ms))).toBe(ms);
    }
  });
});
