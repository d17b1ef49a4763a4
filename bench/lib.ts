// Shared by the benchmarks: percentiles, one summary line per figure, and cleaning up the Redis
// keys a run wrote under its throw-away prefix.
import { Redis } from 'ioredis';

export function pct(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
}

export interface Summary {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

/** Prints `name: n=… p50=… p99=… max=…` (values in ms; shown in seconds with `unit: 's'`) and returns the figures. */
export function summary(name: string, values: number[], unit: 'ms' | 's' = 'ms'): Summary {
  const out = { n: values.length, p50: pct(values, 50), p99: pct(values, 99), max: Math.max(...values) };
  const f = (v: number) => (unit === 's' ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(1)} ms`);
  console.log(`${name}: n=${out.n} p50=${f(out.p50)} p99=${f(out.p99)} max=${f(out.max)}`);
  return out;
}

/** Deletes every key of a run (`<prefix>:*` and the BullMQ queues `<prefix>-bull:*`). */
export async function dropKeys(redisUrl: string, prefix: string): Promise<void> {
  const r = new Redis(redisUrl);
  try {
    for (const pattern of [`${prefix}:*`, `${prefix}-bull:*`]) {
      let cursor = '0';
      do {
        const [next, keys] = await r.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        if (keys.length) await r.del(...keys);
      } while (cursor !== '0');
    }
  } finally {
    r.disconnect();
  }
}
