// A request comes in (chat, REST, a card): checked, stored with its audit, then sent to approvers
// or, approved by policy, opened. The "my IP" link records the source of a request waiting for it.
import { requestableTargets, routeOf } from '../core/authz.js';
import type { AccessCommand } from '../core/command.js';
import { formatDuration } from '../core/duration.js';
import { JitError, isJitError } from '../core/errors.js';
import { checkAccess, effectivePolicy, exampleVerb, findTarget, type EffectivePolicy } from '../core/policy.js';
import { approversFor, can, refMatches, unresolvedGroupsBehind, unresolvedNote } from '../core/rbac.js';
import { connectionsFor, rejectedReply, type Reply } from '../core/reply.js';
import { parseSource } from '../core/source.js';
import type { AccessRequest, AuditEvent, PrincipalId, RequestOrigin } from '../core/types.js';
import { checkAccessCommand } from '../core/validate.js';
import { checkJustification, matchAutoApproval, resolveStart } from '../core/workflow.js';
import type { UseCaseContext } from './context.js';
import { activate } from './grants.js';
import { checkAbuseLimits } from './limits.js';
import { ACTIVATION_GUARD_MS } from './settings.js';
import { auditEvent, emitAudit, notify, transition } from './transition.js';

// ---------------------------------------------------------------- requestAccess

export async function requestAccess(ctx: UseCaseContext, actor: PrincipalId, given: AccessCommand, origin: RequestOrigin): Promise<Reply> {
  // The same checks as the chat parser, for every way in (REST bodies included).
  const cmd = checkAccessCommand(given, `${exampleVerb(given.ports)} vm1 1h`);
  const book = ctx.book;
  const target = findTarget(book, cmd.target);
  if (!target) throw unknownTarget(ctx, actor, cmd.target, cmd);
  if (!can(book, actor, 'request', target.id)) {
    throw new JitError('forbidden', `you (${actor}) have no JIT Requester role covering ${target.name}; ask a JIT Admin to assign one${unresolvedNote(book, unresolvedGroupsBehind(book, 'request', target.id))}`);
  }
  const policy = effectivePolicy(book, target);
  const source = cmd.source === undefined ? undefined : parseSource(cmd.source);
  const checked = checkAccess(policy, { ports: cmd.ports, durationMs: cmd.durationMs, ...(source !== undefined ? { source } : {}) }, ctx.settings.minDurationMs);

  await checkAbuseLimits(ctx, actor, target);

  const fromPart = cmd.source !== undefined ? ` from ${cmd.source}` : '';
  checkJustification(policy.justification, cmd.justification, `${exampleVerb(cmd.ports)} ${target.name} ${formatDuration(cmd.durationMs)}${fromPart}`);

  const now = ctx.now();
  const startAt =
    cmd.startAt === undefined
      ? undefined
      : resolveStart(cmd.startAt, now, origin.timeZone ?? policy.timeZone, `${exampleVerb(cmd.ports)} ${target.name} ${formatDuration(cmd.durationMs)}${fromPart} at 14:00`);
  const needLink = checked.source === undefined;
  const autoRule = !needLink && policy.approval.required ? await autoApprovalRule(ctx, policy, actor, cmd.ports, cmd.durationMs, now) : undefined;
  if (needLink && !ctx.settings.publicUrl) {
    throw new JitError(
      'source_required',
      `say where you will connect from: ${target.name} has no single fixed source range and no PUBLIC_URL is configured for the "my IP" link`,
      `${exampleVerb(cmd.ports)} ${target.name} ${formatDuration(cmd.durationMs)} from 203.0.113.7`,
    );
  }
  const status: AccessRequest['status'] = needLink ? 'awaiting_source' : policy.approval.required && !autoRule ? 'pending' : 'approved';
  const request: AccessRequest = {
    id: ctx.deps.ids.requestId(),
    requester: actor,
    target: target.name,
    targetId: target.id,
    ports: cmd.ports,
    source: checked.source ?? null,
    durationMs: cmd.durationMs,
    ...(cmd.justification ? { justification: cmd.justification } : {}),
    ...(startAt !== undefined ? { startAt } : {}),
    status,
    decisions: [],
    createdAt: now,
    updatedAt: now,
    approvalExpiresAt: now + (needLink ? ctx.settings.sourceLinkTtlMs : policy.approval.timeoutMs),
    rules: [],
    origin,
    version: 1,
  };
  const events: AuditEvent[] = [
    auditEvent(request, 'request.created', actor, now, {
      ports: request.ports.map((p) => `${p.port}/${p.protocol}`).join(','),
      source: request.source,
      duration: formatDuration(request.durationMs),
      justification: request.justification ?? null,
      via: origin.via,
      ...(startAt !== undefined ? { startAt: new Date(startAt).toISOString() } : {}),
    }),
  ];
  if (status === 'awaiting_source') events.push(auditEvent(request, 'request.awaiting_source', actor, now));
  if (status === 'approved') events.push(auditEvent(request, 'request.approved', 'policy', now, { rule: autoRule ?? 'approval not required' }));

  // Approved at creation: the activation guard goes first, so a crash before the grant opens is healed.
  if (status === 'approved') await guardActivation(ctx, request);
  if (!(await ctx.deps.store.create(request, events))) throw new JitError('conflict', 'request id collision; please retry');
  await emitAudit(ctx, events);

  if (status === 'awaiting_source') {
    const token = ctx.deps.ids.token();
    await ctx.deps.store.putSourceToken(token, request.id, ctx.settings.sourceLinkTtlMs);
    await ctx.deps.scheduler.scheduleApprovalTimeout(request.id, request.approvalExpiresAt);
    const link = `${ctx.settings.publicUrl!.replace(/\/+$/, '')}/myip/${token}`;
    return { kind: 'awaiting_source', request, link, linkExpiresAt: now + ctx.settings.sourceLinkTtlMs };
  }
  return afterSourceKnown(ctx, request, policy);
}

/** A request whose source is known is either waiting for approvers or approved by policy. */
export async function afterSourceKnown(ctx: UseCaseContext, request: AccessRequest, policy: EffectivePolicy): Promise<Reply> {
  if (request.status === 'pending') {
    await ctx.deps.scheduler.scheduleApprovalTimeout(request.id, request.approvalExpiresAt);
    const esc = policy.approval.escalation;
    if (esc && request.createdAt + esc.afterMs < request.approvalExpiresAt) {
      await ctx.deps.scheduler.scheduleWorkflow('escalate', request.id, ctx.now() + esc.afterMs);
    }
    const approvers = approversFor(ctx.book, policy).filter((p) => p !== request.requester || policy.approval.selfApproval);
    await notify(ctx, { kind: 'approval_needed', request, actor: request.requester, approvers, route: routeOf(ctx.book, request, policy) });
    return { kind: 'pending_approval', request, approvers };
  }
  const activated = await activateOrSchedule(ctx, request);
  return outcome(ctx, activated);
}

export function unknownTarget(ctx: UseCaseContext, actor: PrincipalId, name: string, cmd: AccessCommand): JitError {
  const mine = requestableTargets(ctx.book, actor);
  const first = mine[0];
  return new JitError(
    'unknown_target',
    `there is no target named "${name}"${mine.length ? `; you can request: ${mine.slice(0, 8).map((t) => t.name).join(', ')}` : '; you cannot request any target yet (ask a JIT Admin)'}`,
    first ? `${exampleVerb(cmd.ports)} ${first.name} ${formatDuration(cmd.durationMs)}` : undefined,
  );
}

// ---------------------------------------------------------------- "my IP"

/** Records the address the one-time link was opened from, and continues the request. */
export async function recordSource(ctx: UseCaseContext, token: string, address: string): Promise<Reply> {
  try {
    const expired = () => new JitError('link_expired', 'this link has expired or was already used; make the request again');
    const id = await ctx.deps.store.peekSourceToken(token);
    if (!id) throw expired();
    const req = await ctx.mustGet(id);
    const target = ctx.targetOf(req);
    const policy = effectivePolicy(ctx.book, target);
    // The address is checked before the link is used up: one it cannot take leaves the link usable.
    const source = parseSource(address);
    if (!/\/(32|128)$/.test(source)) throw new JitError('bad_source', `the link records one address, not ${source === '*' ? 'Any' : source}`);
    checkAccess(policy, { ports: req.ports, durationMs: req.durationMs, source }, 0);
    if ((await ctx.deps.store.takeSourceToken(token)) !== id) throw expired();
    const now = ctx.now();
    const autoRule = policy.approval.required ? await autoApprovalRule(ctx, policy, req.requester, req.ports, req.durationMs, now) : undefined;
    const autoApprove = !policy.approval.required || autoRule !== undefined;
    if (autoApprove) await guardActivation(ctx, req);
    const next = await transition(ctx, id, () => ({
      type: 'record_source',
      source,
      approvalExpiresAt: now + policy.approval.timeoutMs,
      autoApprove,
      ...(autoRule ? { rule: autoRule } : {}),
    }));
    await ctx.deps.scheduler.cancelApprovalTimeout(id);
    return afterSourceKnown(ctx, next, policy);
  } catch (e) {
    if (isJitError(e)) return rejectedReply(e);
    throw e;
  }
}

/** For the link's confirmation page: what the link is for, without consuming it. */
export async function describeSourceToken(ctx: UseCaseContext, token: string): Promise<AccessRequest | null> {
  const id = await ctx.deps.store.peekSourceToken(token);
  return id ? ctx.deps.store.get(id) : null;
}

/** The name of the first auto-approval rule that holds, asking the on-call directory if a rule needs it. */
export async function autoApprovalRule(ctx: UseCaseContext, policy: EffectivePolicy, requester: PrincipalId, ports: AccessRequest['ports'], durationMs: number, now: number): Promise<string | undefined> {
  const candidates = matchAutoApproval(policy.autoApprove, { requester, ports, durationMs, at: now }, (ref, p) => refMatches(ctx.book, ref, p));
  for (const rule of candidates) {
    if (rule.onCallSchedules.length === 0) return rule.name;
    if (!ctx.deps.onCall) continue;
    try {
      if (await ctx.deps.onCall.isOnCall(requester, rule.onCallSchedules, now)) return rule.name;
    } catch (err) {
      // Never auto-approve on a failure: a human decides.
      ctx.log(`on-call check failed for ${requester}; falling back to human approval`, err);
    }
  }
  return undefined;
}

/**
 * Crash safety for `approved`: before a request can become approved, a 'start' job is scheduled a
 * little later (or at its start time). If the process dies between the approval and the grant
 * opening, that job opens it (late, but as approved) on any replica; if the grant opened, the job
 * finds it active and does nothing. Scheduling it again just moves it.
 */
export async function guardActivation(ctx: UseCaseContext, req: AccessRequest): Promise<void> {
  const at = Math.max(req.startAt ?? 0, ctx.now() + ACTIVATION_GUARD_MS);
  await ctx.deps.scheduler.scheduleWorkflow('start', req.id, at);
}

/** Opens now, or (for `at …`) schedules the opening; approval can happen ahead of the start. */
export async function activateOrSchedule(ctx: UseCaseContext, req: AccessRequest): Promise<AccessRequest> {
  if (req.startAt !== undefined && req.startAt > ctx.now() + ctx.settings.expiryToleranceMs) {
    await ctx.deps.scheduler.scheduleWorkflow('start', req.id, req.startAt);
    return req;
  }
  return activate(ctx, req.id);
}

export function outcome(ctx: UseCaseContext, req: AccessRequest): Reply {
  if (req.status === 'active') return { kind: 'active', request: req, connections: connectionsFor(ctx.targetOf(req), req.ports, req.rules) };
  if (req.status === 'failed') return { kind: 'failed', request: req };
  return { kind: 'status', request: req, connections: [] };
}
