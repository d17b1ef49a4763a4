// Durations as people type them in chat (`90m`, `2h`, `1h30m`, `45s`, `1d`) and as ISO-8601
// (`PT2H`, `P1DT2H`). Pure.
import { JitError } from './errors.js';

const UNIT_MS: Record<string, number> = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000 };
const UNIT_WORDS: Record<string, string> = {
  d: 'd', day: 'd', days: 'd',
  h: 'h', hr: 'h', hrs: 'h', hour: 'h', hours: 'h',
  m: 'm', min: 'm', mins: 'm', minute: 'm', minutes: 'm',
  s: 's', sec: 's', secs: 's', second: 's', seconds: 's',
};
/** Longest duration anything accepts (a week); policies cap it far lower. */
export const MAX_DURATION_MS = 7 * 86_400_000;

const HINT = 'write 90m, 2h, 1h30m, 45s or ISO-8601 PT2H';

/** True when the word looks like a duration attempt (starts with a digit, or ISO `P…`). */
export function looksLikeDuration(word: string): boolean {
  return /^\d/.test(word) || /^p(\d|t\d)/i.test(word);
}

/** Parses a duration into milliseconds. Throws JitError('bad_duration') with a hint. */
export function parseDuration(input: string): number {
  const text = input.trim();
  if (text === '') throw new JitError('bad_duration', `a duration is missing; ${HINT}`);
  let ms: number;
  if (/^p/i.test(text)) ms = parseIso(text);
  else ms = parseFriendly(text);
  if (ms <= 0) throw new JitError('bad_duration', `"${text}" is zero; a grant needs a positive duration (${HINT})`);
  if (ms > MAX_DURATION_MS) throw new JitError('bad_duration', `"${text}" is longer than 7 days, the most any grant can last`);
  return ms;
}

function parseFriendly(text: string): number {
  const lower = text.toLowerCase();
  if (/^\d+$/.test(lower)) {
    throw new JitError('bad_duration', `"${text}" has no unit (minutes? hours?); ${HINT}`);
  }
  const re = /\s*(\d+(?:\.\d+)?)\s*([a-z]+)/gy;
  let total = 0;
  let pos = 0;
  const seen = new Set<string>();
  let last = Infinity;
  let m: RegExpExecArray | null;
  while (pos < lower.length) {
    re.lastIndex = pos;
    m = re.exec(lower);
    if (m === null) break;
    const value = Number(m[1]);
    const unit = UNIT_WORDS[m[2]!];
    if (!unit) {
      const hint = /^(y|yr|yrs|year|years|w|wk|week|weeks|mo|month|months)$/.test(m[2]!) ? ' (weeks, months and years are too long for a JIT grant)' : '';
      throw new JitError('bad_duration', `"${text}" has an unknown unit "${m[2]}"${hint}; ${HINT}`);
    }
    const unitMs = UNIT_MS[unit]!;
    if (seen.has(unit) || unitMs > last) {
      throw new JitError('bad_duration', `"${text}" repeats a unit or puts a smaller one first; write the largest first, as in 1h30m`);
    }
    if (!Number.isInteger(value) && unit !== 'h' && unit !== 'd') {
      throw new JitError('bad_duration', `"${text}" uses a fraction of a ${unit === 'm' ? 'minute' : 'second'}; ${HINT}`);
    }
    seen.add(unit);
    last = unitMs;
    total += Math.round(value * unitMs);
    pos = re.lastIndex;
  }
  if (pos !== lower.length || seen.size === 0) throw new JitError('bad_duration', `"${text}" is not a duration; ${HINT}`);
  return total;
}

function parseIso(text: string): number {
  const m = /^P(?:(\d+)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/i.exec(text);
  if (!m || (!m[1] && !m[2] && !m[3] && !m[4]) || /T$/i.test(text)) {
    if (/^P\d+[YW]/i.test(text) || /^P(\d+D)?\d+M/i.test(text)) {
      throw new JitError('bad_duration', `"${text}" uses years, months or weeks, which are too long for a JIT grant; ${HINT}`);
    }
    throw new JitError('bad_duration', `"${text}" is not an ISO-8601 duration; ${HINT}`);
  }
  const [, d, h, min, s] = m;
  return (
    Number(d ?? 0) * UNIT_MS.d! +
    Math.round(Number(h ?? 0) * UNIT_MS.h!) +
    Math.round(Number(min ?? 0) * UNIT_MS.m!) +
    Math.round(Number(s ?? 0) * UNIT_MS.s!)
  );
}

/** `3h`, `1h30m`, `45s`, `1d2h`: the shortest chat form, the same form the parser reads. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms <= 0) return '0s';
  let rest = Math.round(ms / 1000);
  const parts: string[] = [];
  for (const [unit, size] of [['d', 86_400], ['h', 3600], ['m', 60], ['s', 1]] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) parts.push(`${n}${unit}`);
    rest -= n * size;
  }
  return parts.join('') || '0s';
}

/** ISO-8601 form (`PT3H`, `PT1H30M`, `P1DT2H`) for machine-readable outputs. */
export function formatIsoDuration(ms: number): string {
  let rest = Math.max(0, Math.round(ms / 1000));
  const d = Math.floor(rest / 86_400);
  rest -= d * 86_400;
  const h = Math.floor(rest / 3600);
  rest -= h * 3600;
  const m = Math.floor(rest / 60);
  const s = rest - m * 60;
  const time = `${h ? `${h}H` : ''}${m ? `${m}M` : ''}${s ? `${s}S` : ''}`;
  if (!d && !time) return 'PT0S';
  return `P${d ? `${d}D` : ''}${time ? `T${time}` : ''}`;
}
