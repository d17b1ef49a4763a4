// The scheduler's jobs (JobHandlers): open an approved grant, revoke it at its expiry, time out an
// approval, escalate, remind, start a grant at its time. Each re-reads the request and re-decides:
// a job may fire late, twice, or after someone else moved the request on.
import { routeOf } from '../core/authz.js';
import { formatDuration } from '../core/duration.js';
import { JitError, isJitError } from '../core/errors.js';
import { checkAccess, effectivePolicy, own } from '../core/policy.js';
import { approversAmong } from '../core/rbac.js';
import type { AccessRequest } from '../core/types.js';
import { extendOptions } from '../core/workflow.js';
import type { UseCaseContext } from './context.js';
import type { JobOutcome, WorkflowJob } from './ports.js';
import { closeQuietly, closeRules, earlyCloseCheck, scheduleReminder, scheduleRevocation } from './revocation.js';
import { ACTIVATION_GUARD_MS } from './settings.js';
import { ExtendedMeanwhile, appendAudit, notify, transition } from './transition.js';

// ---------------------------------------------------------------- activate

/**
 * approved → active. The revocation is scheduled before the rule is written, so a crash at any
 * point still ends in a closed port: the job finds the request not active and closes its rules.
 */
export async function activate(ctx: UseCaseContext, id: string): Promise<AccessRequest> {
  const req = await ctx.mustGet(id);
  if (req.status !== 'approved') return req;
  const target = ctx.targetOf(req);
  const expiresAt = ctx.now() + req.durationMs;
  await ctx.deps.scheduler.scheduleExpiry(id, expiresAt);
  let rules;
  try {
    rules = await ctx.deps.gate.open({ requestId: id, target, ports: req.ports, sourcePrefix: req.source ?? '', expiresAt, requester: req.requester, ...(req.justification ? { justification: req.justification } : {}) });
  } catch (err) {
    ctx.log(`network write failed for ${id}`, err);
    const reason = `network write failed: ${err instanceof Error ? err.message : String(err)}`;
    await closeQuietly(ctx, req, target);
    const failed = await transition(ctx, id, () => ({ type: 'fail', reason }));
    await ctx.deps.scheduler.cancelExpiry(id);
    await notify(ctx, { kind: 'failed', request: failed, actor: 'system' });
    return failed;
  }
  try {
    const active = await transition(ctx, id, () => ({ type: 'activate', rules, expiresAt }));
    // Now that the rules and the gate's latest writes are known, the revocation moves ahead of
    // the expiry by the close lead. A crash before this leaves it at the expiry (closed late by
    // the write time, as without early close).
    await scheduleRevocation(ctx, active);
    await scheduleReminder(ctx, active, effectivePolicy(ctx.book, target));
    await notify(ctx, { kind: 'activated', request: active, actor: 'system' });
    return active;
  } catch (err) {
    // Another activation (the guard job, another replica) won: the rules are the same ones (named
    // by request and port), so leave them to that grant.
    const now = await ctx.deps.store.get(id);
    if (now?.status === 'active') return now;
    // Someone else moved the request on (revoked, cancelled, failed): leave nothing open.
    await closeQuietly(ctx, req, target);
    throw err;
  }
}

// ---------------------------------------------------------------- expire (revocation job)

export async function expire(ctx: UseCaseContext, id: string): Promise<JobOutcome> {
  const req = await ctx.deps.store.get(id);
  if (!req) return;
  const now = ctx.now();
  const target = ctx.targetOf(req);
  if (req.status === 'active') {
    // Early close: the job is due `lead` before the expiry (see closeLead), and is accepted
    // within that lead; earlier than that, the grant was extended (or the estimate fell) while
    // the job waited: ask the scheduler to run it again when it is due.
    const early = earlyCloseCheck(ctx, req, now);
    if (early !== null) return { retryAt: early };
    let expired: AccessRequest;
    try {
      // Re-checked on every compare-and-set attempt: an extension that commits while this job
      // runs wins, and the job comes back at the new expiry (less its lead) instead of closing the grant.
      expired = await transition(ctx, id, (cur) => {
        const retryAt = cur.status === 'active' ? earlyCloseCheck(ctx, cur, ctx.now()) : null;
        if (retryAt !== null) throw new ExtendedMeanwhile(retryAt);
        return { type: 'expire' };
      });
    } catch (e) {
      if (e instanceof ExtendedMeanwhile) return { retryAt: e.retryAt };
      if (isJitError(e)) return expire(ctx, id); // lost a race (revoke): look again
      throw e;
    }
    await closeRules(ctx, expired, target, 'system', { expiresAt: expired.expiresAt ?? now, startedAt: ctx.now() });
    await notify(ctx, { kind: 'expired', request: expired, actor: 'system' });
    return;
  }
  if (req.status === 'approved') {
    // An activation may still be in flight (a slow network write, or the guard job re-opening
    // after a crash): it commits `active` and this job then closes it at its expiry. Look again
    // each second until the activation guard has had its chance.
    const approvedAt = Math.max(req.startAt ?? 0, ...req.decisions.filter((d) => d.decision === 'approve').map((d) => d.at), req.createdAt);
    if (now < approvedAt + 2 * ACTIVATION_GUARD_MS) return { retryAt: now + 1000 };
    // It never completed (a crash between the rule write and the commit, and no guard): fail the
    // request first — a late activation then loses the compare-and-set and closes its own rules —
    // and close whatever was written.
    try {
      await transition(ctx, id, (cur) => {
        if (cur.status !== 'approved') throw new JitError('conflict', `request ${id} moved on`);
        return { type: 'fail', reason: 'activation did not complete; rules closed by the revocation job' };
      });
    } catch (e) {
      if (isJitError(e)) return expire(ctx, id); // activated meanwhile: handle it as active
      throw e;
    }
    await closeRules(ctx, req, target, 'system');
    return;
  }
  // Final states: make sure nothing is left open (idempotent; a retried job lands here).
  await closeRules(ctx, req, target, 'system');
}

// ---------------------------------------------------------------- approval timeout (job)

export async function timeoutApproval(ctx: UseCaseContext, id: string): Promise<JobOutcome> {
  const req = await ctx.deps.store.get(id);
  if (!req || (req.status !== 'pending' && req.status !== 'awaiting_source')) return;
  if (req.approvalExpiresAt > ctx.now() + ctx.settings.expiryToleranceMs) {
    return { retryAt: req.approvalExpiresAt };
  }
  try {
    const next = await transition(ctx, id, () => ({ type: 'timeout' }));
    await notify(ctx, { kind: 'timed_out', request: next, actor: 'system' });
  } catch (e) {
    if (!isJitError(e)) throw e; // decided meanwhile: nothing to do
  }
}

// ---------------------------------------------------------------- workflow jobs

/** Escalation and expiry-reminder jobs. */
export async function workflow(ctx: UseCaseContext, kind: WorkflowJob, id: string): Promise<JobOutcome> {
  const req = await ctx.deps.store.get(id);
  if (!req) return;
  const target = own(ctx.book.targets, req.target);
  if (!target) return;
  const policy = effectivePolicy(ctx.book, target);
  const now = ctx.now();
  if (kind === 'start') {
    if (req.status !== 'approved') return;
    if ((req.startAt ?? 0) > now + ctx.settings.expiryToleranceMs) return { retryAt: req.startAt! };
    await activate(ctx, id);
    return;
  }
  if (kind === 'escalate') {
    const esc = policy.approval.escalation;
    if (req.status !== 'pending' || req.escalatedAt || !esc) return;
    const due = req.createdAt + esc.afterMs;
    if (due > now + ctx.settings.expiryToleranceMs) return { retryAt: due };
    const added = approversAmong(ctx.book, esc.approvers, req.targetId).filter((p) => p !== req.requester || policy.approval.selfApproval);
    let next: AccessRequest;
    try {
      next = await transition(ctx, id, () => ({ type: 'escalate', approvers: added }));
    } catch (e) {
      if (isJitError(e)) return; // decided meanwhile
      throw e;
    }
    await notify(ctx, { kind: 'escalated', request: next, actor: 'system', approvers: added, route: routeOf(ctx.book, next, policy) });
    return;
  }
  // remind
  if (req.status !== 'active' || req.expiresAt === undefined) return;
  const due = req.expiresAt - policy.reminder.beforeMs;
  if (due > now + ctx.settings.expiryToleranceMs) return { retryAt: due }; // extended since
  const { rules } = checkAccess(policy, { ports: req.ports, durationMs: req.durationMs }, 0);
  const maxMs = Math.min(...rules.map((r) => r.maxDurationMs));
  const options = extendOptions(policy.reminder, req.activatedAt ?? now, req.expiresAt, maxMs);
  await appendAudit(ctx, {
    time: now, actor: 'system', action: 'grant.reminded', requestId: id, target: req.target,
    details: { expiresAt: new Date(req.expiresAt).toISOString(), options: options.map(formatDuration).join(',') },
  });
  await notify(ctx, { kind: 'expiring', request: req, actor: 'system', extendOptionsMs: options });
}
