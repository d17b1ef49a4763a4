// Timers kept in one Redis sorted set instead of one BullMQ job each, for per-grant timers that
// can be a little late and need no job history: the expiry reminder. A BullMQ delayed job costs a
// job hash plus an entry in the queue's delayed set (~400 bytes at 10,000 grants); a member of
// this set ~110 bytes (docs/benchmarks.md, "Footprint"). Revocations stay BullMQ jobs.
//
//   <key>          sorted set: timer id → when it is due (epoch ms)
//   <key>:running  sorted set: timer id → when its claim lapses (a process died while running it)
//
// Every replica's worker polls (at most every `pollMs`, sooner when the next timer is due sooner)
// and claims due timers atomically (moved from <key> to <key>:running in one script), so each runs
// once; a claim whose process died lapses after `leaseMs` and the timer is due again. A handler
// that throws is tried again `retryMs` later; one that answers { retryAt } runs again then. Scheduling
// while a timer runs keeps the new time; cancelling drops both.
import type { Redis } from 'ioredis';
import type { JobOutcome } from '../../app/ports.js';
import { defineScript, type ScriptCall } from '../redis/scripts.js';

export interface TimerOptions {
  /** The longest wait between two polls (ms). */
  pollMs?: number;
  /** How long a claim lasts before the timer is due again (its process died). */
  leaseMs?: number;
  /** When a handler that threw is tried again. */
  retryMs?: number;
}
const DEFAULTS: Required<TimerOptions> = { pollMs: 500, leaseMs: 5 * 60_000, retryMs: 30_000 };
const BATCH = 100;

// KEYS: 1 due, 2 running; ARGV: 1 now, 2 lease ms, 3 batch. Returns { claimed ids, next due or nil }.
const LUA_CLAIM = `
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(lapsed) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZADD', KEYS[1], 'NX', ARGV[1], id)
end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], tonumber(ARGV[1]) + tonumber(ARGV[2]), id)
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return { ids, nxt[2] or false }
`;
// KEYS: 1 due, 2 running; ARGV: 1 id, 2 run again at (or ''). A claim that lapsed meanwhile is not ours to finish.
const LUA_FINISH = `
if redis.call('ZREM', KEYS[2], ARGV[1]) == 1 and ARGV[2] ~= '' then redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[1]) end
return 0
`;

export class RedisTimers {
  private readonly running: string;
  private readonly claim: ScriptCall;
  private readonly finish: ScriptCall;
  private stopped = false;
  private loopDone: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private readonly opts: Required<TimerOptions>;

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    opts: TimerOptions = {},
  ) {
    this.opts = { ...DEFAULTS, ...opts };
    this.running = `${key}:running`;
    this.claim = defineScript(redis, 'jitTimersClaim', LUA_CLAIM);
    this.finish = defineScript(redis, 'jitTimersFinish', LUA_FINISH);
  }

  /** Schedules (or moves) the timer `id` to `at`. */
  async schedule(id: string, at: number): Promise<void> {
    await this.redis.zadd(this.key, at, id);
  }

  async cancel(id: string): Promise<void> {
    await this.redis.multi().zrem(this.key, id).zrem(this.running, id).exec();
  }

  /** When the timer is due, or null if none is waiting (also while it runs). */
  async dueAt(id: string): Promise<number | null> {
    const score = await this.redis.zscore(this.key, id);
    return score === null ? null : Number(score);
  }

  /** Runs due timers with `handle` until stop(). */
  start(handle: (id: string) => Promise<JobOutcome>, log: (msg: string, err?: unknown) => void): void {
    if (this.loopDone) return;
    const sleep = (ms: number) =>
      new Promise<void>((resolve) => {
        const t = setTimeout(() => ((this.wake = null), resolve()), ms);
        this.wake = () => (clearTimeout(t), (this.wake = null), resolve());
      });
    const run = async (id: string) => {
      let again = '';
      try {
        const outcome = await handle(id);
        if (outcome && outcome.retryAt > Date.now()) again = String(outcome.retryAt);
      } catch (err) {
        log(`timer ${id} failed (tried again in ${this.opts.retryMs / 1000} s): ${err instanceof Error ? err.message : String(err)}`, err);
        again = String(Date.now() + this.opts.retryMs);
      }
      await this.finish(2, this.key, this.running, id, again);
    };
    this.loopDone = (async () => {
      while (!this.stopped) {
        let wait = this.opts.pollMs;
        try {
          const [ids, next] = (await this.claim(2, this.key, this.running, Date.now(), this.opts.leaseMs, BATCH)) as [string[], string | null];
          await Promise.all(ids.map(run));
          if (ids.length === BATCH) continue;
          if (next !== null) wait = Math.max(0, Math.min(this.opts.pollMs, Number(next) - Date.now()));
        } catch (err) {
          if (this.stopped) break;
          log(`timers ${this.key}: ${err instanceof Error ? err.message : String(err)}`, err);
        }
        if (!this.stopped) await sleep(wait);
      }
    })();
  }

  /** Stops polling and waits for the timers running now (at most `timeoutMs`: Redis may be gone). */
  async stop(timeoutMs = 5000): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await Promise.race([this.loopDone, new Promise((r) => setTimeout(r, timeoutMs).unref())]);
  }
}
