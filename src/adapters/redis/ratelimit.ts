// Fixed-window counters in Redis (INCR + PEXPIRE in one script), so every replica counts together.
import type { Redis } from 'ioredis';
import type { RateLimiter } from '../../app/ports.js';

const SCRIPT = `local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`;

export class RedisRateLimiter implements RateLimiter {
  constructor(private readonly redis: Redis, private readonly prefix: string, private readonly now: () => number = Date.now) {}

  async hit(key: string, limit: number, windowMs: number): Promise<{ allowed: boolean; retryAfterMs: number }> {
    const t = this.now();
    const window = Math.floor(t / windowMs);
    const n = Number(await this.redis.eval(SCRIPT, 1, `${this.prefix}:rate:${key}:${window}`, String(windowMs + 1000)));
    return { allowed: n <= limit, retryAfterMs: (window + 1) * windowMs - t };
  }
}
