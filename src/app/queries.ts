// Reads: status, list, the inventory (vms), the audit report and export, policy, help. Each is
// counted against the caller's read rate and shows only what the caller may see.
import { auditRow, type AuditRow } from '../core/audit-export.js';
import { decidersOf, requestableTargets } from '../core/authz.js';
import { JitError } from '../core/errors.js';
import { describePolicy, effectivePolicy, findTarget, portLabel } from '../core/policy.js';
import { can, hasAnyRole, isApprover } from '../core/rbac.js';
import { connectionsFor, type Reply } from '../core/reply.js';
import type { AccessRequest, PrincipalId, RequestOrigin } from '../core/types.js';
import type { UseCaseContext } from './context.js';
import { helpExamples, type ExampleContext } from './examples.js';
import { checkReadRate } from './limits.js';
import type { ListFilter } from './ports.js';

/**
 * A request as `me` may see it (a card refresh): counted as a read; a request that does not
 * exist and one the caller may not see get the same not_found.
 */
export async function visibleRequest(ctx: UseCaseContext, me: PrincipalId, id: string): Promise<AccessRequest> {
  if (!hasAnyRole(ctx.book, me)) throw ctx.notFound(id);
  await checkReadRate(ctx, me, 'read');
  return ctx.mustSee(me, id);
}

/** Who may decide on this request now (policy approvers, plus escalation approvers once escalated). */
export function approversFor(ctx: UseCaseContext, req: AccessRequest): PrincipalId[] {
  return decidersOf(ctx.book, req, effectivePolicy(ctx.book, ctx.targetOf(req)));
}

export function exampleContext(ctx: UseCaseContext, origin?: RequestOrigin): ExampleContext {
  return {
    book: ctx.book,
    minDurationMs: ctx.settings.minDurationMs,
    ...(ctx.settings.publicUrl ? { publicUrl: ctx.settings.publicUrl } : {}),
    now: ctx.now(),
    ...(origin?.timeZone ? { timeZone: origin.timeZone } : {}),
    get: (id) => ctx.deps.store.get(id),
    canSee: (actor, req) => ctx.canSee(actor, req),
  };
}

/** `policy vm1`: the effective policy, each value with the policy (or default) it comes from. */
export function showPolicy(ctx: UseCaseContext, actor: PrincipalId, name: string): Reply {
  const book = ctx.book;
  const target = findTarget(book, name);
  const visible = target && (can(book, actor, 'read', target.id) || can(book, actor, 'request', target.id) || isApprover(book, actor, effectivePolicy(book, target)));
  if (!target || !visible) throw new JitError('unknown_target', `there is no VM "${name}" that you can see`, 'vms');
  return { kind: 'policy', target: target.name, targetId: target.id, os: target.os, lines: describePolicy(effectivePolicy(book, target)) };
}

/**
 * The activity the caller may read (their own requests; targets they read or approve), for one
 * target or all, since a time: rows in the columns of Azure's activity-log export.
 */
export async function auditRows(ctx: UseCaseContext, me: PrincipalId, opts: { target?: string; since: number; limit?: number }): Promise<{ rows: AuditRow[]; truncated: boolean }> {
  const book = ctx.book;
  // No role: nothing to see, answered at once (no Redis, not even the rate limiter).
  if (!hasAnyRole(book, me)) return { rows: [], truncated: false };
  const only = opts.target === undefined ? undefined : findTarget(book, opts.target);
  if (opts.target !== undefined && !only) throw new JitError('unknown_target', `there is no VM "${opts.target}" in the policy`, 'vms');
  await checkReadRate(ctx, me, 'audit');
  const limit = opts.limit ?? 10_000;
  // The targets the caller reads, and their own requests elsewhere: the log walks only those indexes.
  const readable = Object.values(book.targets).filter((t) => can(book, me, 'read', t.id)).map((t) => t.name);
  const { events, truncated } = await ctx.deps.audit.listScoped({
    targets: readable,
    requesters: [me],
    ...(only ? { target: only.name } : {}),
    since: opts.since,
    limit,
  });
  const ids = [...new Set(events.map((e) => e.requestId))];
  const stored = await ctx.deps.store.getMany(ids);
  const byId = new Map(ids.map((id, i) => [id, stored[i] ?? null]));
  const readableSet = new Set<string>(readable);
  const rows: AuditRow[] = [];
  for (const e of events) {
    const req = byId.get(e.requestId) ?? null;
    // Events without a stored request (policy changes, reconciled orphans) are for readers of the target.
    const visible = req ? ctx.canSee(me, req) : readableSet.has(e.target);
    if (visible) rows.push(auditRow(e, req));
  }
  return { rows, truncated };
}

export async function auditReport(ctx: UseCaseContext, actor: PrincipalId, target: string | undefined, sinceMs: number): Promise<Reply> {
  const since = ctx.now() - sinceMs;
  const { rows, truncated } = await auditRows(ctx, actor, { ...(target !== undefined ? { target } : {}), since });
  return { kind: 'audit', ...(target !== undefined ? { target } : {}), since, rows, truncated };
}

/** Targets as Defender for Cloud's JIT blade groups them: Configured, Not configured, Unsupported. */
export async function vms(ctx: UseCaseContext, actor: PrincipalId): Promise<Reply> {
  const book = ctx.book;
  if (!hasAnyRole(book, actor)) return { kind: 'inventory', configured: [], notConfigured: [], unsupported: [] };
  await checkReadRate(ctx, actor, 'read');
  const visible = (id: string) => can(book, actor, 'read', id) || can(book, actor, 'request', id);
  const configuredIds = new Map(Object.values(book.targets).map((t) => [t.id.toLowerCase(), t]));
  const seen = ctx.deps.gate.inventory ? await ctx.deps.gate.inventory() : Object.values(book.targets).map((t) => ({ id: t.id, name: t.name }));
  const now = ctx.now();
  const configured = [];
  const notConfigured: Array<{ name: string; id: string }> = [];
  const unsupported: Array<{ name: string; id: string; reason: string }> = [];
  const known = new Set(seen.map((v) => v.id.toLowerCase()));
  // Policy targets the network side did not list are shown too (as configured; opening them will say why if it cannot).
  const all = [...seen, ...Object.values(book.targets).filter((t) => !known.has(t.id.toLowerCase())).map((t) => ({ id: t.id, name: t.name }))];
  for (const v of all) {
    if (!visible(v.id)) continue;
    const reason = 'reason' in v && typeof v.reason === 'string' ? v.reason : undefined;
    if (reason) {
      unsupported.push({ name: v.name, id: v.id, reason });
      continue;
    }
    const t = configuredIds.get(v.id.toLowerCase());
    if (!t) {
      notConfigured.push({ name: v.name, id: v.id });
      continue;
    }
    const recent = (await ctx.deps.store.list({ target: t.name, limit: 500 })).filter((r) => r.createdAt >= now - 7 * 86_400_000);
    const approved = recent.filter((r) => r.decisions.some((d) => d.decision === 'approve') || r.activatedAt !== undefined);
    const last = [...recent].filter((r) => r.activatedAt !== undefined).sort((a, b) => b.activatedAt! - a.activatedAt!)[0];
    configured.push({
      name: t.name,
      id: t.id,
      ports: effectivePolicy(book, t).ports.map(portLabel).join(','),
      approved7d: approved.length,
      ...(last ? { lastAccessAt: last.activatedAt!, lastUser: last.requester } : {}),
      address: t.firewall ? `${t.firewall.publicIp} (firewall)` : t.address ?? t.name,
    });
  }
  return { kind: 'inventory', configured, notConfigured, unsupported };
}

export async function status(ctx: UseCaseContext, actor: PrincipalId, id: string): Promise<Reply> {
  if (!hasAnyRole(ctx.book, actor)) throw ctx.notFound(id);
  await checkReadRate(ctx, actor, 'read');
  const req = await ctx.mustSee(actor, id);
  const target = ctx.targetOf(req);
  return { kind: 'status', request: req, connections: connectionsFor(target, req.ports, req.rules) };
}

/** Requests the caller may see, filtered (the REST API's list). Newest first. */
export async function listVisible(ctx: UseCaseContext, actor: PrincipalId, filter: ListFilter): Promise<AccessRequest[]> {
  if (!hasAnyRole(ctx.book, actor)) return [];
  await checkReadRate(ctx, actor, 'read');
  const limit = Math.min(Math.max(filter.limit ?? 50, 1), 200);
  const all = await ctx.deps.store.list({ ...filter, limit: limit * 4 });
  return all.filter((r) => ctx.canSee(actor, r)).slice(0, limit);
}

export async function list(ctx: UseCaseContext, actor: PrincipalId, scope: 'mine' | 'all' | 'pending' | 'active'): Promise<Reply> {
  const book = ctx.book;
  if (!hasAnyRole(book, actor)) return { kind: 'list', scope, requests: [] };
  await checkReadRate(ctx, actor, 'read');
  if (scope === 'mine') {
    const requests = await ctx.deps.store.list({ requester: actor, limit: 20 });
    // Readers, approvers and admins see others' requests with `list all` / `list pending`.
    const seesOthers = Object.values(book.targets).some((t) => can(book, actor, 'read', t.id));
    return { kind: 'list', scope, requests, ...(requests.length === 0 && seesOthers ? { hint: 'Try list all for the requests you may see, list pending for those waiting for a decision.' } : {}) };
  }
  const status = scope === 'all' ? undefined : scope;
  const all = await ctx.deps.store.list({ ...(status ? { status } : {}), limit: 200 });
  const visible = all.filter((r) => ctx.canSee(actor, r)).slice(0, 50);
  return { kind: 'list', scope, requests: visible };
}

/** Examples from the person's own targets, each one pasteable as is (test/integration/examples.test.ts). */
export async function help(ctx: UseCaseContext, actor: PrincipalId, origin?: RequestOrigin): Promise<Reply> {
  const [latest] = await listVisible(ctx, actor, { limit: 1 });
  const examples = await helpExamples(exampleContext(ctx, origin), actor, latest);
  const none = requestableTargets(ctx.book, actor).length === 0;
  return { kind: 'help', examples, ...(none ? { note: '(you cannot request any target yet: a JIT Admin can give you the JIT Requester role)' } : {}) };
}
