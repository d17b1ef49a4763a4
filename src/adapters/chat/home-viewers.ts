// Who keeps a home view on a platform (opened Slack's App Home, was posted a Teams home card), as
// one Redis sorted set per platform: member the principal, score when they last opened it. The
// notifier asks for the whole set before it works out whom a change concerns, so a change that
// concerns no viewer costs nothing but a read of this in-memory copy (refreshed at most every
// `maxAgeMs`, one read at a time, from whichever replica marked the opening).
import type { Redis } from 'ioredis';
import { parsePrincipal } from '../../core/ids.js';
import type { PrincipalId } from '../../core/types.js';

export interface HomeViewerOptions {
  /** How long after the last opening a home is kept current. */
  ttlMs: number;
  /** How stale the in-memory copy may be (an opening on another replica shows after at most this). */
  maxAgeMs?: number;
  now?: () => number;
}

const EMPTY: ReadonlySet<PrincipalId> = new Set();

export class HomeViewers {
  private copy: { set: Set<PrincipalId>; at: number } | undefined;
  private loading: Promise<ReadonlySet<PrincipalId>> | undefined;
  private readonly maxAgeMs: number;
  private readonly now: () => number;

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly opts: HomeViewerOptions,
  ) {
    this.maxAgeMs = opts.maxAgeMs ?? 5000;
    this.now = opts.now ?? Date.now;
  }

  /** `principal` opened (or was posted) their home now. */
  async mark(principal: PrincipalId): Promise<void> {
    const now = this.now();
    await this.redis.multi().zadd(this.key, now, principal).pexpire(this.key, this.opts.ttlMs).exec();
    this.copy?.set.add(principal);
  }

  /** `principal` has no home to keep current any more (its card is gone). */
  async forget(principal: PrincipalId): Promise<void> {
    await this.redis.zrem(this.key, principal);
    this.copy?.set.delete(principal);
  }

  /** The principals whose home is kept current (at most `maxAgeMs` stale; empty if Redis fails). */
  async viewers(): Promise<ReadonlySet<PrincipalId>> {
    const now = this.now();
    if (this.copy && now - this.copy.at < this.maxAgeMs) return this.copy.set;
    this.loading ??= this.load(now).finally(() => (this.loading = undefined));
    return this.loading;
  }

  private async load(now: number): Promise<ReadonlySet<PrincipalId>> {
    try {
      // Openings older than the TTL drop out of the set here (the set itself expires with its last one).
      const res = await this.redis.multi().zremrangebyscore(this.key, '-inf', `(${now - this.opts.ttlMs}`).zrange(this.key, 0, -1).exec();
      const failed = res?.find(([err]) => err)?.[0];
      if (failed) throw failed;
      const members = res?.[1]?.[1];
      // Members were written as principals; each is parsed back (anything else is dropped).
      const viewers = Array.isArray(members) ? members.flatMap((m) => parsePrincipal(String(m)) ?? []) : [];
      this.copy = { set: new Set(viewers), at: now };
      return this.copy.set;
    } catch {
      return this.copy?.set ?? EMPTY;
    }
  }
}
