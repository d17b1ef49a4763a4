// The second line: whatever the store says, rules on the network that should not be open are
// closed (it works with the store empty); grants about to expire get their revocation re-planned.
import { isJitError } from '../core/errors.js';
import type { AccessRequest } from '../core/types.js';
import type { UseCaseContext } from './context.js';
import { moveRuleExpiry, replanRevocation } from './revocation.js';
import { appendAudit, ExtendedMeanwhile, transition } from './transition.js';

// ---------------------------------------------------------------- reconcile (second line)

/**
 * Closes rules on the network whose expiry has passed or whose request is not active, whatever
 * Redis says (it works with Redis empty). Returns how many rules were removed. Active grants
 * expiring within `replanWithinMs` get their revocation moved earlier if their close lead grew
 * since it was planned (grants on the same NSG expiring just before them, added since).
 */
export async function reconcile(ctx: UseCaseContext, replanWithinMs = 2 * ctx.settings.closeLeadMaxMs): Promise<number> {
  const now = ctx.now();
  const rules = await ctx.deps.gate.list();
  const byRequest = new Map<string, typeof rules>();
  for (const r of rules) byRequest.set(r.requestId, [...(byRequest.get(r.requestId) ?? []), r]);
  // Decide per request, then remove every stale rule in one call: the gate writes each NSG once
  // per sweep, however many grants it closes (a sweep after a crash may have many).
  const stale: Array<{ requestId: string; req: AccessRequest | null; owned: typeof rules }> = [];
  for (const [requestId, owned] of byRequest) {
    const req = await ctx.deps.store.get(requestId);
    // The stored grant's expiry is authoritative (an extension may not have reached the rule's
    // description yet); the rule's own expiry counts only when Redis has no record.
    const expiresAt = req?.status === 'active' && req.expiresAt !== undefined ? req.expiresAt : Math.min(...owned.map((r) => r.expiresAt));
    const expired = expiresAt <= now;
    const isStale = !req || (req.status !== 'active' && req.status !== 'approved') || (req.status === 'approved' && expired);
    // Expired early (its revocation started its close lead before the expiry, and the gate may
    // hold the write until just before it): the revocation is closing it; after the expiry, it is ours.
    if (req?.status === 'expired' && !expired) continue;
    if (!expired && !isStale) {
      if (req?.status === 'active' && owned.some((r) => r.expiresAt !== expiresAt)) {
        const target = ctx.targetOf(req);
        await moveRuleExpiry(ctx, req, target, expiresAt, 'reconciler');
      }
      if (req?.status === 'active' && expiresAt - now <= replanWithinMs) await replanRevocation(ctx, req, now);
      continue;
    }
    stale.push({ requestId, req, owned });
  }
  if (stale.length === 0) return 0;
  const gone = await ctx.deps.gate.remove(stale.flatMap((x) => x.owned));
  const goneKeys = new Map(gone.map((r) => [`${r.scope.toLowerCase()}|${r.name}`, r]));
  let removed = 0;
  for (const { requestId, req, owned } of stale) {
    for (const rule of owned.filter((r) => goneKeys.has(`${r.scope.toLowerCase()}|${r.name}`))) {
      removed++;
      const ref = goneKeys.get(`${rule.scope.toLowerCase()}|${rule.name}`)?.ref;
      await appendAudit(ctx, {
        time: now, actor: 'reconciler', action: 'rule.reconciled', requestId, target: req?.target ?? rule.scope.split('/').pop() ?? 'unknown',
        details: { rule: rule.name, scope: rule.scope, expiresAt: new Date(rule.expiresAt).toISOString(), status: req?.status ?? 'unknown', ...(ref ? { ref } : {}) },
      });
    }
    if (req?.status === 'active') {
      await transition(ctx, requestId, (cur) => {
        if ((cur.expiresAt ?? 0) > ctx.now()) throw new ExtendedMeanwhile(cur.expiresAt!);
        return { type: 'expire' };
      }).catch((e: unknown) => {
        if (!isJitError(e) && !(e instanceof ExtendedMeanwhile)) throw e;
      });
    }
  }
  return removed;
}
