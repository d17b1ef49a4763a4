// What people do to a request once it exists: approvers decide (on the request or on an
// extension), the requester or an admin revokes or cancels, the requester or an approver extends.
import { approversOf, assertMayDecide, assertScope, extendRight, mayRevoke, routeOf, type DecisionScope } from '../core/authz.js';
import { formatDuration } from '../core/duration.js';
import { JitError } from '../core/errors.js';
import { checkAccess, effectivePolicy, type EffectivePolicy } from '../core/policy.js';
import type { Reply } from '../core/reply.js';
import { applyTransition, describeStatus } from '../core/state.js';
import type { AccessRequest, PrincipalId } from '../core/types.js';
import { checkText } from '../core/validate.js';
import type { UseCaseContext } from './context.js';
import { activateOrSchedule, autoApprovalRule, guardActivation } from './requests.js';
import { closeLead, closeRules, moveRuleExpiry, scheduleReminder } from './revocation.js';
import { notify, transition } from './transition.js';

// ---------------------------------------------------------------- decide

/**
 * An approver's decision. `scope` says what the clicked card was about: a button on a request's
 * card must not approve an extension asked for later on the same request, and the reverse.
 */
export async function decide(ctx: UseCaseContext, actor: PrincipalId, id: string, decision: 'approve' | 'deny', given?: string, scope?: DecisionScope): Promise<Reply> {
  // A deny reason from any channel (chat, REST, a card's text box, a Slack dialog): one set of rules.
  const reason = given === undefined ? undefined : checkText('reason', given, `deny ${id} reason "not in a change window"`) || undefined;
  const req = await ctx.mustSee(actor, id);
  const policy = effectivePolicy(ctx.book, ctx.targetOf(req));
  assertScope(req, scope);
  if (req.status === 'active' && req.pendingExtension) return decideExtension(ctx, actor, req, policy, decision, reason);
  assertMayDecide(ctx.book, actor, req, policy);
  const { quorum, selfApproval, denyQuorum } = policy.approval;
  // A vote that completes the quorum: guard the activation before committing it (see guardActivation).
  if (decision === 'approve' && req.status === 'pending' && req.decisions.filter((d) => d.decision === 'approve').length + 1 >= quorum) await guardActivation(ctx, req);
  const next = await transition(ctx, id, () =>
    decision === 'approve'
      ? { type: 'approve', by: actor, quorum, selfApproval }
      : { type: 'deny', by: actor, selfApproval, denyQuorum, ...(reason ? { reason } : {}) },
  );
  const approvals = next.decisions.filter((d) => d.decision === 'approve').length;
  if (next.status === 'pending') {
    await notify(ctx, { kind: 'approval_progress', request: next, actor });
    return { kind: 'decided', request: next, decision, approvals, quorum };
  }
  await ctx.deps.scheduler.cancelApprovalTimeout(id);
  if (next.status === 'denied') {
    await notify(ctx, { kind: 'denied', request: next, actor });
    return { kind: 'decided', request: next, decision, approvals, quorum };
  }
  await notify(ctx, { kind: 'approved', request: next, actor });
  const activated = await activateOrSchedule(ctx, next);
  return { kind: 'decided', request: activated, decision, approvals, quorum };
}

/**
 * Would `decide` accept this actor's decision now? Throws the same error it would, changes
 * nothing (chat adapters ask before opening a "reason" dialog).
 */
export async function checkDecide(ctx: UseCaseContext, actor: PrincipalId, request: string | AccessRequest, decision: 'approve' | 'deny', scope?: DecisionScope): Promise<void> {
  const req = typeof request === 'string' ? await ctx.mustSee(actor, request) : request;
  if (!ctx.canSee(actor, req)) throw ctx.notFound(req.id);
  const policy = effectivePolicy(ctx.book, ctx.targetOf(req));
  assertScope(req, scope);
  assertMayDecide(ctx.book, actor, req, policy);
  const { quorum, selfApproval, denyQuorum } = policy.approval;
  const now = ctx.now();
  if (req.status === 'active' && req.pendingExtension) {
    applyTransition(req, decision === 'approve'
      ? { type: 'approve_extension', by: actor, quorum, selfApproval, expiresAt: Math.max(req.expiresAt ?? now, now) + req.pendingExtension.addMs }
      : { type: 'deny_extension', by: actor, selfApproval }, now);
  } else {
    applyTransition(req, decision === 'approve' ? { type: 'approve', by: actor, quorum, selfApproval } : { type: 'deny', by: actor, selfApproval, denyQuorum }, now);
  }
}

/** An approver's decision on an extension the requester asked for. */
export async function decideExtension(ctx: UseCaseContext, actor: PrincipalId, req: AccessRequest, policy: EffectivePolicy, decision: 'approve' | 'deny', reason?: string): Promise<Reply> {
  assertMayDecide(ctx.book, actor, req, policy);
  const { quorum, selfApproval } = policy.approval;
  const target = ctx.targetOf(req);
  const next = await transition(ctx, req.id, (cur) => {
    const add = cur.pendingExtension?.addMs ?? 0;
    const now = ctx.now();
    return decision === 'approve'
      ? { type: 'approve_extension', by: actor, quorum, selfApproval, expiresAt: Math.max(cur.expiresAt ?? now, now) + add }
      : { type: 'deny_extension', by: actor, selfApproval, ...(reason ? { reason } : {}) };
  });
  const approvals = next.pendingExtension?.decisions.length ?? (decision === 'approve' ? quorum : 0);
  if (decision === 'deny') {
    await notify(ctx, { kind: 'extension_denied', request: next, actor });
    return { kind: 'decided', request: next, decision, approvals: 0, quorum };
  }
  if (next.pendingExtension) {
    await notify(ctx, { kind: 'approval_progress', request: next, actor });
    return { kind: 'decided', request: next, decision, approvals, quorum };
  }
  await ctx.deps.scheduler.rescheduleExpiry(req.id, next.expiresAt! - closeLead(ctx, next));
  await scheduleReminder(ctx, next, policy);
  await moveRuleExpiry(ctx, req, target, next.expiresAt!, actor);
  await notify(ctx, { kind: 'extended', request: next, actor });
  return { kind: 'extended', request: next };
}

// ---------------------------------------------------------------- revoke / cancel

export async function revoke(ctx: UseCaseContext, actor: PrincipalId, id: string, given?: string): Promise<Reply> {
  const reason = given === undefined ? undefined : checkText('reason', given, `revoke ${id}`) || undefined;
  const req = await ctx.mustSee(actor, id);
  const target = ctx.targetOf(req);
  if (!mayRevoke(ctx.book, actor, req, target)) {
    throw new JitError('forbidden', `only the requester or a JIT Admin can revoke ${id}`);
  }
  if (req.status === 'pending' || req.status === 'awaiting_source' || (req.status === 'approved' && req.startAt)) {
    const next = await transition(ctx, id, () => ({ type: 'cancel', by: actor }));
    await ctx.deps.scheduler.cancelWorkflow('start', id);
    await ctx.deps.scheduler.cancelApprovalTimeout(id);
    await notify(ctx, { kind: 'cancelled', request: next, actor });
    return { kind: 'closed', request: next };
  }
  const next = await transition(ctx, id, () => ({ type: 'revoke', by: actor, ...(reason ? { reason } : {}) }));
  await closeRules(ctx, next, target, actor);
  await ctx.deps.scheduler.cancelExpiry(id);
  await notify(ctx, { kind: 'revoked', request: next, actor });
  return { kind: 'closed', request: next };
}

// ---------------------------------------------------------------- extend

export async function extend(ctx: UseCaseContext, actor: PrincipalId, id: string, addMs: number): Promise<Reply> {
  const req = await ctx.mustSee(actor, id);
  const target = ctx.targetOf(req);
  const policy = effectivePolicy(ctx.book, target);
  const right = extendRight(ctx.book, actor, req, target, policy);
  if (!right) throw new JitError('forbidden', `only the requester, an approver or a JIT Admin can extend ${id}`);
  const { own, admin } = right;
  // A late click on a reminder's Extend button gets a plain answer and opens nothing.
  if (req.status !== 'active') throw new JitError('invalid_transition', `request ${id} ${describeStatus(req)}; only an active grant can be extended`);
  const now = ctx.now();
  const start = req.activatedAt ?? now;
  const newExpiry = Math.max(req.expiresAt ?? now, now) + addMs;
  const { rules } = checkAccess(policy, { ports: req.ports, durationMs: req.durationMs }, 0);
  const maxMs = Math.min(...rules.map((r) => r.maxDurationMs));
  if (newExpiry - start > maxMs) {
    const room = Math.max(0, start + maxMs - Math.max(req.expiresAt ?? now, now));
    throw new JitError(
      'duration_too_long',
      `${req.target} allows at most ${formatDuration(maxMs)} for a whole grant on ${req.ports.map((p) => p.port).join(',')}; ${
        room >= 1000 ? `this one can grow by ${formatDuration(room)} more` : 'this one cannot grow any more'
      }`,
      room >= 1000 ? `extend ${id} ${formatDuration(room)}` : undefined,
    );
  }
  let rule: string | undefined;
  if (own && !admin && policy.approval.required) {
    // The same rules as a request: auto-approval where a rule covers the whole grant, else approvers.
    rule = await autoApprovalRule(ctx, policy, actor, req.ports, newExpiry - start, now);
    if (!rule) {
      const next = await transition(ctx, id, () => ({ type: 'request_extension', by: actor, addMs }));
      const approvers = approversOf(ctx.book, next, policy).filter((p) => p !== next.requester || policy.approval.selfApproval);
      await notify(ctx, { kind: 'extension_needed', request: next, actor, approvers, route: routeOf(ctx.book, next, policy) });
      return { kind: 'extension_pending', request: next, approvers };
    }
  }
  const { quorum, selfApproval } = policy.approval;
  let next: AccessRequest;
  if (!own && !admin && policy.approval.required && quorum > 1) {
    // An approver extending someone else's grant is one vote, not the quorum: the extension
    // waits for the other approvers as the requester's own would (this vote counts).
    next = await transition(ctx, id, (cur) => ({ type: 'propose_extension', by: actor, addMs, quorum, selfApproval, expiresAt: Math.max(cur.expiresAt ?? now, now) + addMs }));
    if (next.pendingExtension) {
      const waiting = next;
      const approvers = approversOf(ctx.book, waiting, policy).filter((p) => p !== actor && (p !== waiting.requester || selfApproval));
      await notify(ctx, { kind: 'extension_needed', request: waiting, actor, approvers, route: routeOf(ctx.book, waiting, policy) });
      return { kind: 'extension_pending', request: waiting, approvers };
    }
  } else {
    next = await transition(ctx, id, () => ({ type: 'extend', by: actor, expiresAt: newExpiry, ...(rule ? { rule } : {}) }));
  }
  const expiresAt = next.expiresAt ?? newExpiry;
  // Commit first, then move the job (to the new expiry less its close lead): a crash in between
  // leaves the old job, which sees the later expiry and reschedules itself; the reverse order
  // could close a port late.
  await ctx.deps.scheduler.rescheduleExpiry(id, expiresAt - closeLead(ctx, next));
  await scheduleReminder(ctx, next, policy);
  await moveRuleExpiry(ctx, next, target, expiresAt, actor);
  await notify(ctx, { kind: 'extended', request: next, actor });
  return { kind: 'extended', request: next };
}
