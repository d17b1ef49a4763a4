// One way to open Redis connections, shared by the store, the audit log and BullMQ.
import { Redis, type RedisOptions } from 'ioredis';

/**
 * `url` is a `redis://` / `rediss://` URL, or `unix:///path/to/redis.sock` for the
 * embedded server. BullMQ needs `maxRetriesPerRequest: null` on its connections
 * (blocking commands must not fail after N retries), so every connection gets it.
 */
export function createRedis(url: string, extra: RedisOptions = {}): Redis {
  const base: RedisOptions = { maxRetriesPerRequest: null, enableReadyCheck: true, lazyConnect: false, ...extra };
  if (url.startsWith('unix://')) {
    return new Redis({ ...base, path: url.slice('unix://'.length) });
  }
  return new Redis(url, base);
}

/** BullMQ and this product need `noeviction`: an evicted delayed job is a port left open. */
export async function checkEvictionPolicy(redis: Redis): Promise<string | null> {
  try {
    const res = (await redis.config('GET', 'maxmemory-policy')) as string[];
    const policy = res[1] ?? 'unknown';
    return policy === 'noeviction'
      ? null
      : `Redis maxmemory-policy is "${policy}", not "noeviction": under memory pressure Redis may evict a scheduled revocation and leave a port open. Set maxmemory-policy noeviction.`;
  } catch {
    return null; // CONFIG may be disabled on managed Redis; nothing to say then.
  }
}

/** BullMQ's delayed jobs wake on Redis's `hz` timer: at the default 10 a revocation can be ~100 ms late. */
export async function checkTimerResolution(redis: Redis): Promise<string | null> {
  try {
    const res = (await redis.config('GET', 'hz')) as string[];
    const hz = Number(res[1]);
    return Number.isFinite(hz) && hz < 50
      ? `Redis hz is ${hz}: delayed revocations fire up to ${Math.round(1000 / hz)} ms late; "hz 100" makes it ~10 ms (see docs/benchmarks.md)`
      : null;
  } catch {
    return null;
  }
}
