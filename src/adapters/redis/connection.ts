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

/** Where a Redis URL points, without its credentials: `host:port`, or the socket path. */
export function redisAddress(url: string): string {
  if (url.startsWith('unix://')) return url.slice('unix://'.length);
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || 6379}`;
  } catch {
    return '(unparsable URL)';
  }
}

/**
 * Opens the long-lived connection and waits (at most `timeoutMs`) for its first PONG. On failure
 * the connection is closed and the error says which address did not answer and why (the last
 * connection error ioredis saw: ECONNREFUSED, ENOTFOUND, ETIMEDOUT, WRONGPASS…). After start the
 * connection reconnects on its own; `onError` sees those errors (without a listener ioredis
 * prints "Unhandled error event" for each attempt).
 */
export async function openRedis(url: string, opts: { label: string; timeoutMs?: number; onError: (err: Error) => void }): Promise<Redis> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const redis = createRedis(url);
  let lastError: Error | null = null;
  let firstErrorAt = 0;
  let failFast: (err: Error) => void = () => {};
  // A Redis that is still starting refuses for a moment: give up once errors last 2 s.
  const early = (err: Error) => {
    lastError = err;
    firstErrorAt ||= Date.now();
    if (Date.now() - firstErrorAt >= 2000) failFast(err);
  };
  redis.on('error', early);
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      redis.ping(),
      new Promise((_, reject) => {
        failFast = reject;
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
      }),
    ]);
  } catch (err) {
    redis.disconnect();
    const cause = (lastError as Error | null)?.message ?? (err instanceof Error ? err.message : String(err));
    throw new Error(`${opts.label}: cannot reach Redis at ${redisAddress(url)} (${cause})`);
  } finally {
    clearTimeout(timer);
    redis.off('error', early);
  }
  redis.on('error', opts.onError);
  return redis;
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
