// A grant's network side and timing: when its revocation starts (the close lead, early close),
// closing and moving its rules with their audit, and its expiry reminder.
import { closeLeadFor, revocationDueAt } from '../core/grant-timing.js';
import type { EffectivePolicy } from '../core/policy.js';
import type { AccessRequest, AppliedRule, AuditEvent, Target } from '../core/types.js';
import type { UseCaseContext } from './context.js';
import { appendAudit } from './transition.js';

/** How long before its expiry this grant's revocation starts (core/grant-timing.ts), from the gate's estimate. */
export function closeLead(ctx: UseCaseContext, req: AccessRequest): number {
  if (req.expiresAt === undefined) return 0;
  return closeLeadFor(req, ctx.deps.gate.closeLeadMs?.(req.rules, req.expiresAt) ?? 0, ctx.settings);
}

/** null when an active grant's revocation may start at `now`; else when it is due (core/grant-timing.ts). */
export function earlyCloseCheck(ctx: UseCaseContext, req: AccessRequest, now: number): number | null {
  return revocationDueAt(req, closeLead(ctx, req), now, ctx.settings);
}

/**
 * An active grant's revocation moved earlier when its close lead grew since it was planned (the
 * gate has seen other grants on its NSG that expire just before it and will be closing then too).
 * Never later: a job early for a lead that shrank is sent back when it fires (expire()).
 */
export async function replanRevocation(ctx: UseCaseContext, req: AccessRequest, now: number): Promise<void> {
  const lead = closeLead(ctx, req);
  if (lead <= 0 || req.expiresAt === undefined) return;
  const want = Math.max(now, req.expiresAt - lead);
  const due = await ctx.deps.scheduler.expiryDueAt(req.id).catch(() => null);
  if (due === null || due <= want + ctx.settings.expiryToleranceMs) return;
  await ctx.deps.scheduler.rescheduleExpiry(req.id, want).catch((err: unknown) => ctx.log(`could not move the revocation of ${req.id} earlier`, err));
}

/** Moves an active grant's revocation to its expiry less its close lead (when there is a lead). */
export async function scheduleRevocation(ctx: UseCaseContext, req: AccessRequest): Promise<void> {
  const lead = closeLead(ctx, req);
  if (lead <= 0 || req.expiresAt === undefined) return;
  await ctx.deps.scheduler.rescheduleExpiry(req.id, req.expiresAt - lead).catch((err: unknown) => ctx.log(`could not move the revocation of ${req.id} ahead of its expiry; it closes at the expiry`, err));
}

export async function scheduleReminder(ctx: UseCaseContext, req: AccessRequest, policy: EffectivePolicy): Promise<void> {
  const before = policy.reminder.beforeMs;
  if (before <= 0 || req.expiresAt === undefined || req.activatedAt === undefined) return;
  // Only worth it when the grant lasts longer than the reminder lead time.
  if (req.expiresAt - req.activatedAt <= before) return;
  await ctx.deps.scheduler.scheduleWorkflow('remind', req.id, req.expiresAt - before).catch((err: unknown) => ctx.log(`could not schedule the reminder for ${req.id}`, err));
}

/**
 * Closes the request's rules and audits each one removed. For a revocation at expiry (`expiry`),
 * each rule.removed also says how early the close started (`leadMs`: the expiry minus the start,
 * negative when it started late), when the network confirmed it (`confirmedAt`) and how that
 * compares with the expiry (`lateMs`: negative when the rules were gone before it).
 */
export async function closeRules(ctx: UseCaseContext, req: AccessRequest, target: Target, actor: string, expiry?: { expiresAt: number; startedAt: number }): Promise<void> {
  // An expiry's close says which expiry it must meet (the gate may hold its write until just before it).
  const removed = await ctx.deps.gate.close(req.id, target, req.rules, expiry ? { by: expiry.expiresAt, marginMs: ctx.settings.closeLeadMarginMs } : undefined);
  const confirmedAt = ctx.now();
  const timing: AuditEvent['details'] = expiry
    ? { expiresAt: new Date(expiry.expiresAt).toISOString(), leadMs: expiry.expiresAt - expiry.startedAt, confirmedAt: new Date(confirmedAt).toISOString(), lateMs: confirmedAt - expiry.expiresAt }
    : {};
  for (const rule of removed) {
    await appendAudit(ctx, {
      time: confirmedAt, actor, action: 'rule.removed', requestId: req.id, target: req.target,
      details: { rule: rule.name, scope: rule.scope, priority: rule.priority, ...(rule.ref ? { ref: rule.ref } : {}), ...timing },
    });
  }
}

/**
 * Moves the expiry the network side holds for a grant. A failure is logged, not thrown: the
 * grant's stored expiry is authoritative and the reconciler repairs the network's on its next
 * sweep. Rules written anew (Defender for Cloud asked again) are audited with their reference.
 */
export async function moveRuleExpiry(ctx: UseCaseContext, req: AccessRequest, target: Target, expiresAt: number, actor: string): Promise<void> {
  let written: void | AppliedRule[];
  try {
    written = await ctx.deps.gate.updateExpiry(req.id, target, expiresAt);
  } catch (err) {
    ctx.log(`could not move the network's expiry of ${req.id}; the reconciler retries`, err);
    return;
  }
  for (const rule of written ?? []) {
    await appendAudit(ctx, {
      time: ctx.now(), actor, action: 'rule.applied', requestId: req.id, target: req.target,
      details: { rule: rule.name, scope: rule.scope, priority: rule.priority, source: rule.sourcePrefix, port: rule.destinationPort, expiresAt: new Date(rule.expiresAt).toISOString(), ...(rule.ref ? { ref: rule.ref } : {}) },
    });
  }
}

export async function closeQuietly(ctx: UseCaseContext, req: AccessRequest, target: Target): Promise<void> {
  try {
    await closeRules(ctx, req, target, 'system');
  } catch (err) {
    ctx.log(`cleanup of ${req.id} failed; the revocation job and reconciler will retry`, err);
  }
}
