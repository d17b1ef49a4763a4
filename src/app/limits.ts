// Abuse limits: a request rate per principal, caps on requests in flight per principal and per
// target, and read rates (list, status, vms, a card refresh; audit reads apart).
import { formatDuration } from '../core/duration.js';
import { JitError } from '../core/errors.js';
import type { PrincipalId, Target } from '../core/types.js';
import type { UseCaseContext } from './context.js';
import type { ListFilter } from './ports.js';

/** Before a request is stored: the caps on requests in flight, then the request rate. */
export async function checkAbuseLimits(ctx: UseCaseContext, actor: PrincipalId, target: Target): Promise<void> {
  const { requestRate, maxActivePerPrincipal, maxActivePerTarget } = ctx.settings;
  const inFlight = async (filter: Pick<ListFilter, 'requester' | 'target'>, cap: number) => {
    let n = 0;
    for (const status of ['awaiting_source', 'pending', 'approved', 'active'] as const) {
      n += (await ctx.deps.store.list({ ...filter, status, limit: cap })).length;
      if (n >= cap) break;
    }
    return n;
  };
  if (maxActivePerPrincipal > 0 && (await inFlight({ requester: actor }, maxActivePerPrincipal)) >= maxActivePerPrincipal) {
    throw new JitError('limit_reached', `you already have ${maxActivePerPrincipal} requests waiting or open (the limit per person); close one first (list, then revoke <id>)`, 'list mine');
  }
  if (maxActivePerTarget > 0 && (await inFlight({ target: target.name }, maxActivePerTarget)) >= maxActivePerTarget) {
    throw new JitError('limit_reached', `${target.name} already has ${maxActivePerTarget} requests waiting or open (the limit per target); try again when some have closed`);
  }
  await checkRate(ctx, `req:${actor}`, requestRate, 'requests');
}

/** Read commands are limited per principal like requests: `read` (list, status, vms, refresh) and `audit`. */
export function checkReadRate(ctx: UseCaseContext, actor: PrincipalId, kind: 'read' | 'audit'): Promise<void> {
  return kind === 'audit' ? checkRate(ctx, `audit:${actor}`, ctx.settings.auditRate, 'audit reads') : checkRate(ctx, `read:${actor}`, ctx.settings.readRate, 'reads');
}

async function checkRate(ctx: UseCaseContext, key: string, rate: { count: number; windowMs: number }, what: string): Promise<void> {
  if (rate.count <= 0 || !ctx.deps.rateLimiter) return;
  const { allowed, retryAfterMs } = await ctx.deps.rateLimiter.hit(key, rate.count, rate.windowMs);
  if (!allowed) {
    throw new JitError('rate_limited', `too many ${what}: at most ${rate.count} per ${formatDuration(rate.windowMs)}; try again in ${formatDuration(Math.max(1000, Math.ceil(retryAfterMs / 1000) * 1000))}`);
  }
}
