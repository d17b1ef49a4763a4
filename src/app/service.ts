// The use cases: requestAccess, decide, activate, expire, revoke, extend, timeoutApproval,
// list/status, recordSource, reconcile. Written against the ports; no SDK, no I/O library.
import { auditRow, type AuditRow } from '../core/audit-export.js';
import { describePolicy } from '../core/policy.js';
import type { AccessCommand, Command } from '../core/command.js';
import { JitError, isJitError } from '../core/errors.js';
import { formatDuration } from '../core/duration.js';
import { parseCommand } from '../core/parse.js';
import { helpExamples, workingExample, type ExampleContext } from './examples.js';
import {
  checkAccess,
  effectivePolicy,
  exampleVerb,
  findTarget,
  own,
  portLabel,
  withNetworkPolicies,
  type EffectivePolicy,
  type NetworkPolicies,
  type PolicyBook,
} from '../core/policy.js';
import { approversAmong, approversFor, can, hasAnyRole, isApprover, normalizePrincipal, refMatches, rolesAt, unresolvedGroupsBehind, unresolvedNote } from '../core/rbac.js';
import { withDirectoryGroups } from '../core/directory.js';
import type { DirectoryGroups } from './directory-groups.js';
import { checkJustification, extendOptions, matchAutoApproval, resolveStart, routeApproval, type ApprovalRoute } from '../core/workflow.js';
import { connectionsFor, rejectedReply, type Reply } from '../core/reply.js';
import { parseSource } from '../core/source.js';
import { checkAccessCommand, checkText } from '../core/validate.js';
import { applyTransition, describeStatus, type Transition } from '../core/state.js';
import type { AccessRequest, AppliedRule, AuditEvent, PortSpec, PrincipalId, RequestOrigin, Target } from '../core/types.js';
import type { AuditLog, Clock, IdSource, JobHandlers, JobOutcome, NetworkGate, Notification, Notifier, OnCallDirectory, RateLimiter, RequestStore, Scheduler, WorkflowJob } from './ports.js';
import type { ListFilter } from './ports.js';

/** Thrown inside a transition when a grant was extended after the caller decided to expire it. */
class ExtendedMeanwhile extends Error {
  /** `retryAt`: when the revocation is due now (the new expiry, less its close lead). */
  constructor(readonly retryAt: number) {
    super('extended meanwhile');
  }
}

/** What a clicked card was about: the request itself, or an extension of the grant. */
export type DecisionScope = 'request' | 'extension';

export interface ServiceSettings {
  /** Shortest grant a request may ask for (policies may allow seconds for demos; default 5 min). */
  minDurationMs: number;
  /** Base URL people can open, for the "my IP" link; without it `from` is required. */
  publicUrl?: string;
  /** How long the "my IP" link stays valid. */
  sourceLinkTtlMs: number;
  /**
   * If a revocation job fires more than this (plus the grant's close lead) before the stored
   * expiry, the grant was extended: reschedule.
   */
  expirySlackMs: number;
  /**
   * Early close: a revocation starts before the expiry by the gate's estimate of how long the close
   * takes (`NetworkGate.closeLeadMs`) plus this margin (the job starting late, the commit), so the
   * rules are gone by the expiry. Only where the gate estimates more than 0.
   */
  closeLeadMarginMs: number;
  /** …and never more than this early (nor more than half the grant): the cap the requester can count on. 0: at the expiry. */
  closeLeadMaxMs: number;
  /** Requests per principal per window (0: no limit). */
  requestRate: { count: number; windowMs: number };
  /** Reads (list, status, vms, a card refresh) per principal per window (0: no limit). */
  readRate: { count: number; windowMs: number };
  /** Audit reads (`audit`, the JSON and CSV exports) per principal per window (0: no limit). */
  auditRate: { count: number; windowMs: number };
  /** Requests in flight (waiting, approved or active) per principal and per target; 0: no cap. */
  maxActivePerPrincipal: number;
  maxActivePerTarget: number;
}

export const DEFAULT_SETTINGS: ServiceSettings = {
  minDurationMs: 5 * 60_000,
  sourceLinkTtlMs: 5 * 60_000,
  expirySlackMs: 250,
  closeLeadMarginMs: 1000,
  closeLeadMaxMs: 30_000,
  requestRate: { count: 0, windowMs: 60_000 },
  readRate: { count: 0, windowMs: 60_000 },
  auditRate: { count: 0, windowMs: 60_000 },
  maxActivePerPrincipal: 0,
  maxActivePerTarget: 0,
};

export interface ServiceDeps {
  store: RequestStore;
  audit: AuditLog;
  scheduler: Scheduler;
  gate: NetworkGate;
  notifier: Notifier;
  clock: Clock;
  ids: IdSource;
  book: PolicyBook;
  /** Answers "is this person on call" for auto-approval rules that need it (PagerDuty). */
  onCall?: OnCallDirectory;
  /** Members of directory-backed groups (Entra ID, Slack user groups), cached with a TTL. */
  directory?: DirectoryGroups;
  /** Per-principal request rate (abuse limit); without it only the caps on grants in flight apply. */
  rateLimiter?: RateLimiter;
  settings?: Partial<ServiceSettings>;
  log?: (msg: string, err?: unknown) => void;
}

const CAS_ATTEMPTS = 20;
/** How long after an approval the activation guard job fires (see guardActivation). */
const ACTIVATION_GUARD_MS = 15_000;

export class JitService implements JobHandlers {
  /** The policy file's book merged with the network side's own targets (Defender for Cloud's JIT policies). */
  private netBook: PolicyBook;
  /** `netBook` with the directory groups' members merged in, until the first membership goes stale. */
  private merged: { base: PolicyBook; version: number; until: number; book: PolicyBook } | undefined;
  /** The policy file's book as loaded. */
  private fileBook: PolicyBook;
  /** The network side's targets and ports as last read (kept when a later read fails). */
  private network: NetworkPolicies | undefined;
  private networkProblem: string | undefined;
  private networkNotes = '';
  readonly settings: ServiceSettings;
  private readonly log: (msg: string, err?: unknown) => void;

  constructor(private readonly deps: ServiceDeps) {
    this.netBook = deps.book;
    this.fileBook = deps.book;
    this.settings = { ...DEFAULT_SETTINGS, ...deps.settings };
    this.log = deps.log ?? (() => {});
  }

  /** A request as stored, for adapters that render it (no permission check: never show it to a user as is). */
  get(id: string): Promise<AccessRequest | null> {
    return this.deps.store.get(id);
  }

  /**
   * A request as `actor` may see it (a card refresh): counted as a read; a request that does not
   * exist and one the caller may not see get the same not_found.
   */
  async visibleRequest(actor: PrincipalId, id: string): Promise<AccessRequest> {
    const me = normalizePrincipal(actor);
    if (!hasAnyRole(this.book, me)) throw this.notFound(id);
    await this.checkReadRate(me, 'read');
    return this.mustSee(me, id);
  }

  /** Who may decide on this request now (policy approvers, plus escalation approvers once escalated). */
  async approversFor(req: AccessRequest): Promise<PrincipalId[]> {
    const policy = effectivePolicy(this.book, this.targetOf(req));
    return this.approversOf(req, policy).filter((p) => p !== req.requester || policy.approval.selfApproval);
  }

  /** The newest requests, for the local console (no permission check: local mode only). */
  recent(limit = 200): Promise<AccessRequest[]> {
    return this.deps.store.list({ limit });
  }

  policyBook(): PolicyBook {
    return this.book;
  }

  setPolicyBook(book: PolicyBook): void {
    this.fileBook = book;
    this.netBook = withNetworkPolicies(book, this.network).book;
  }

  /**
   * The book every decision reads: the file's and the network's, with directory groups' members as
   * last read (a membership older than the TTL counts as unknown: its members hold nothing).
   */
  private get book(): PolicyBook {
    const dir = this.deps.directory;
    if (!dir || !this.netBook.directory) return this.netBook;
    const now = this.deps.clock.now();
    const m = this.merged;
    if (m && m.base === this.netBook && m.version === dir.version && now < m.until) return m.book;
    const book = withDirectoryGroups(this.netBook, (s) => dir.membership(s, now));
    this.merged = { base: this.netBook, version: dir.version, until: dir.validUntil(now), book };
    return book;
  }

  /** Reads the directory groups' membership again (bootstrap: at start and every third of the TTL). */
  async refreshDirectoryGroups(): Promise<void> {
    if (this.netBook.directory) await this.deps.directory?.refresh(this.netBook);
  }

  /** For /readyz: directory groups whose membership is unknown or whose last refresh failed. */
  directoryProblem(): string | undefined {
    if (!this.netBook.directory) return undefined;
    if (!this.deps.directory) return 'directory groups are configured but no directory is wired';
    return this.deps.directory.problem(this.netBook, this.deps.clock.now());
  }

  /**
   * Reads the network side's own targets and ports (Defender for Cloud's JIT policies) and merges
   * them over the policy file's. A failed read keeps the last good one (a target does not vanish
   * because Azure was slow) and is reported by `networkPoliciesProblem`. No-op for gates without
   * policies of their own.
   */
  async refreshNetworkPolicies(): Promise<void> {
    if (!this.deps.gate.policies) return;
    try {
      const net = await this.deps.gate.policies();
      const { book, notes } = withNetworkPolicies(this.fileBook, net);
      this.network = net;
      this.netBook = book;
      this.networkProblem = undefined;
      const said = notes.join('; ');
      if (said && said !== this.networkNotes) this.log(`${net.source} policies: ${said}`);
      this.networkNotes = said;
    } catch (err) {
      this.networkProblem = `could not read the network's policies: ${err instanceof Error ? err.message : String(err)}`;
      this.log(this.networkProblem, err);
    }
  }

  /** Why the last read of the network side's policies failed; undefined when it did not. */
  networkPoliciesProblem(): string | undefined {
    return this.networkProblem;
  }

  // ---------------------------------------------------------------- entry point for every chat

  /** Parses and runs one command typed by `actor`; never throws a JitError (it becomes a rejected reply). */
  async execute(actor: PrincipalId, text: string, origin: RequestOrigin): Promise<Reply> {
    const who = normalizePrincipal(actor);
    try {
      return await this.run(who, parseCommand(text), origin);
    } catch (e) {
      if (!isJitError(e)) throw e;
      // The "try …" is what they paste next: make it one that works for them (src/app/examples.ts).
      const example = e.example === undefined ? undefined : await workingExample(this.exampleContext(origin), who, e.example).catch(() => 'help');
      return rejectedReply(example === e.example ? e : new JitError(e.code, e.message, example));
    }
  }

  private exampleContext(origin?: RequestOrigin): ExampleContext {
    return {
      book: this.book,
      minDurationMs: this.settings.minDurationMs,
      ...(this.settings.publicUrl ? { publicUrl: this.settings.publicUrl } : {}),
      now: this.deps.clock.now(),
      ...(origin?.timeZone ? { timeZone: origin.timeZone } : {}),
      get: (id) => this.deps.store.get(id),
      canSee: (actor, req) => this.canSee(actor, req),
    };
  }

  async run(actor: PrincipalId, cmd: Command, origin: RequestOrigin): Promise<Reply> {
    switch (cmd.kind) {
      case 'access':
        return this.requestAccess(actor, cmd, origin);
      case 'approve':
        return this.decide(actor, cmd.requestId, 'approve');
      case 'deny':
        return this.decide(actor, cmd.requestId, 'deny', cmd.reason);
      case 'revoke':
        return this.revoke(actor, cmd.requestId);
      case 'extend':
        return this.extend(actor, cmd.requestId, cmd.durationMs);
      case 'status':
        return this.status(actor, cmd.requestId);
      case 'list':
        return this.list(actor, cmd.scope);
      case 'policy_enable':
        return this.enforce(actor, cmd.target, cmd.ports);
      case 'policy_disable':
        return this.unenforce(actor, cmd.target);
      case 'policy_show':
        return this.showPolicy(actor, cmd.target);
      case 'vms':
        return this.vms(actor);
      case 'audit':
        return this.auditReport(actor, cmd.target, cmd.sinceMs);
      case 'help':
        return this.help(actor, origin);
    }
  }

  /** `policy vm1`: the effective policy, each value with the policy (or default) it comes from. */
  showPolicy(actor: PrincipalId, name: string): Reply {
    const target = findTarget(this.book, name);
    const visible = target && (can(this.book, actor, 'read', target.id) || can(this.book, actor, 'request', target.id) || isApprover(this.book, actor, effectivePolicy(this.book, target)));
    if (!target || !visible) throw new JitError('unknown_target', `there is no VM "${name}" that you can see`, 'vms');
    return { kind: 'policy', target: target.name, targetId: target.id, os: target.os, lines: describePolicy(effectivePolicy(this.book, target)) };
  }

  /**
   * The activity the caller may read (their own requests; targets they read or approve), for one
   * target or all, since a time: rows in the columns of Azure's activity-log export.
   */
  async auditRows(actor: PrincipalId, opts: { target?: string; since: number; limit?: number }): Promise<{ rows: AuditRow[]; truncated: boolean }> {
    const me = normalizePrincipal(actor);
    // No role: nothing to see, answered at once (no Redis, not even the rate limiter).
    if (!hasAnyRole(this.book, me)) return { rows: [], truncated: false };
    if (opts.target !== undefined && !findTarget(this.book, opts.target)) throw new JitError('unknown_target', `there is no VM "${opts.target}" in the policy`, 'vms');
    await this.checkReadRate(me, 'audit');
    const limit = opts.limit ?? 10_000;
    // The targets the caller reads, and their own requests elsewhere: the log walks only those indexes.
    const readable = Object.values(this.book.targets).filter((t) => can(this.book, me, 'read', t.id)).map((t) => t.name);
    const { events, truncated } = await this.deps.audit.listScoped({
      targets: readable,
      requesters: [me],
      ...(opts.target !== undefined ? { target: opts.target.toLowerCase() } : {}),
      since: opts.since,
      limit,
    });
    const ids = [...new Set(events.map((e) => e.requestId))];
    const stored = await this.deps.store.getMany(ids);
    const byId = new Map(ids.map((id, i) => [id, stored[i] ?? null]));
    const readableSet = new Set(readable);
    const rows: AuditRow[] = [];
    for (const e of events) {
      const req = byId.get(e.requestId) ?? null;
      // Events without a stored request (policy changes, reconciled orphans) are for readers of the target.
      const visible = req ? this.canSee(me, req) : readableSet.has(e.target);
      if (visible) rows.push(auditRow(e, req));
    }
    return { rows, truncated };
  }

  async auditReport(actor: PrincipalId, target: string | undefined, sinceMs: number): Promise<Reply> {
    const since = this.deps.clock.now() - sinceMs;
    const { rows, truncated } = await this.auditRows(actor, { ...(target !== undefined ? { target } : {}), since });
    return { kind: 'audit', ...(target !== undefined ? { target } : {}), since, rows, truncated };
  }

  /** Targets as Defender for Cloud's JIT blade groups them: Configured, Not configured, Unsupported. */
  async vms(actor: PrincipalId): Promise<Reply> {
    if (!hasAnyRole(this.book, actor)) return { kind: 'inventory', configured: [], notConfigured: [], unsupported: [] };
    await this.checkReadRate(actor, 'read');
    const visible = (id: string) => can(this.book, actor, 'read', id) || can(this.book, actor, 'request', id);
    const configuredIds = new Map(Object.values(this.book.targets).map((t) => [t.id.toLowerCase(), t]));
    const seen = this.deps.gate.inventory ? await this.deps.gate.inventory() : Object.values(this.book.targets).map((t) => ({ id: t.id, name: t.name }));
    const now = this.deps.clock.now();
    const configured = [];
    const notConfigured: Array<{ name: string; id: string }> = [];
    const unsupported: Array<{ name: string; id: string; reason: string }> = [];
    const known = new Set(seen.map((v) => v.id.toLowerCase()));
    // Policy targets the network side did not list are shown too (as configured; opening them will say why if it cannot).
    const all = [...seen, ...Object.values(this.book.targets).filter((t) => !known.has(t.id.toLowerCase())).map((t) => ({ id: t.id, name: t.name }))];
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
      const recent = (await this.deps.store.list({ target: t.name, limit: 500 })).filter((r) => r.createdAt >= now - 7 * 86_400_000);
      const approved = recent.filter((r) => r.decisions.some((d) => d.decision === 'approve') || r.activatedAt !== undefined);
      const last = [...recent].filter((r) => r.activatedAt !== undefined).sort((a, b) => b.activatedAt! - a.activatedAt!)[0];
      configured.push({
        name: t.name,
        id: t.id,
        ports: effectivePolicy(this.book, t).ports.map(portLabel).join(','),
        approved7d: approved.length,
        ...(last ? { lastAccessAt: last.activatedAt!, lastUser: last.requester } : {}),
        address: t.firewall ? `${t.firewall.publicIp} (firewall)` : t.address ?? t.name,
      });
    }
    return { kind: 'inventory', configured, notConfigured, unsupported };
  }

  // ---------------------------------------------------------------- enable / disable JIT on a target

  /** Abuse limits: a request rate per principal and caps on grants in flight per principal and per target. */
  private async checkAbuseLimits(actor: PrincipalId, target: Target): Promise<void> {
    const { requestRate, maxActivePerPrincipal, maxActivePerTarget } = this.settings;
    const inFlight = async (filter: { requester?: string; target?: string }, cap: number) => {
      let n = 0;
      for (const status of ['awaiting_source', 'pending', 'approved', 'active'] as const) {
        n += (await this.deps.store.list({ ...filter, status, limit: cap })).length;
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
    await this.checkRate(`req:${actor}`, requestRate, 'requests');
  }

  /** Read commands are limited per principal like requests: `read` (list, status, vms, refresh) and `audit`. */
  private checkReadRate(actor: PrincipalId, kind: 'read' | 'audit'): Promise<void> {
    return kind === 'audit' ? this.checkRate(`audit:${actor}`, this.settings.auditRate, 'audit reads') : this.checkRate(`read:${actor}`, this.settings.readRate, 'reads');
  }

  private async checkRate(key: string, rate: { count: number; windowMs: number }, what: string): Promise<void> {
    if (rate.count <= 0 || !this.deps.rateLimiter) return;
    const { allowed, retryAfterMs } = await this.deps.rateLimiter.hit(key, rate.count, rate.windowMs);
    if (!allowed) {
      throw new JitError('rate_limited', `too many ${what}: at most ${rate.count} per ${formatDuration(rate.windowMs)}; try again in ${formatDuration(Math.max(1000, Math.ceil(retryAfterMs / 1000) * 1000))}`);
    }
  }

  /** "Enable JIT" (JIT Admin): the bot's Deny rules for the policy's ports (or those given) on the target's path. */
  async enforce(actor: PrincipalId, name: string, ports?: PortSpec[], system = false): Promise<Reply> {
    const target = this.managedTarget(actor, name, system);
    const policy = effectivePolicy(this.book, target);
    const want = ports ?? policy.ports.map((p) => ({ port: p.port, protocol: p.protocol }));
    if (!this.deps.gate.enforce) {
      return { kind: 'info', message: `${target.name}: this network (simulated) keeps every port closed unless a grant opens it; nothing to enforce` };
    }
    const rules = await this.deps.gate.enforce(target, want);
    // A lower-numbered Allow from anywhere (the portal's "RDP from Any") wins over any Deny: say so.
    const stillOpen = this.deps.gate.exposures ? await this.deps.gate.exposures(target, want) : [];
    await this.appendAudit({
      time: this.deps.clock.now(), actor: system ? 'system' : actor, action: 'policy.enforced', requestId: `policy-${target.name}`, target: target.name,
      details: { ports: want.map(portLabel).join(','), rules: rules.map((r) => `${r.scope.split('/').pop()}/${r.name}@${r.priority}`).join(',') || 'none needed (equivalent deny rules exist)', ...(stillOpen.length ? { stillOpen: stillOpen.join(',') } : {}) },
    });
    const warning = stillOpen.length ? `. NOT closed: ${stillOpen.join('; ')} allow${stillOpen.length === 1 ? 's' : ''} traffic from anywhere ahead of the Deny rules; remove or restrict ${stillOpen.length === 1 ? 'it' : 'them'}` : '';
    return {
      kind: 'info',
      message: (rules.length
        ? `${target.name}: ${want.map(portLabel).join(', ')} now denied by default (${rules.length} rule${rules.length === 1 ? '' : 's'} written); grants open them for their time`
        : `${target.name}: ${want.map(portLabel).join(', ')} were already denied by existing rules; nothing written`) + warning,
    };
  }

  async unenforce(actor: PrincipalId, name: string): Promise<Reply> {
    const target = this.managedTarget(actor, name, false);
    if (!this.deps.gate.unenforce) return { kind: 'info', message: `${target.name}: nothing to disable on this network (simulated)` };
    const removed = await this.deps.gate.unenforce(target);
    await this.appendAudit({
      time: this.deps.clock.now(), actor, action: 'policy.unenforced', requestId: `policy-${target.name}`, target: target.name,
      details: { rules: removed.map((r) => `${r.scope.split('/').pop()}/${r.name}`).join(',') || 'none' },
    });
    return { kind: 'info', message: `${target.name}: removed ${removed.length} deny rule${removed.length === 1 ? '' : 's'} jit-bot had written; rules written by others are untouched` };
  }

  private managedTarget(actor: PrincipalId, name: string, system: boolean): Target {
    const target = findTarget(this.book, name);
    if (!target) throw new JitError('unknown_target', `unknown VM "${name}"`, 'help');
    if (!system && !can(this.book, actor, 'manage', target.id)) throw new JitError('forbidden', `only a JIT Admin for ${target.name} can change its policy`);
    return target;
  }

  // ---------------------------------------------------------------- requestAccess

  async requestAccess(actor: PrincipalId, given: AccessCommand, origin: RequestOrigin): Promise<Reply> {
    // The same checks as the chat parser, for every way in (REST bodies included).
    const cmd = checkAccessCommand(given, `${exampleVerb(given.ports)} vm1 1h`);
    const book = this.book;
    const target = findTarget(book, cmd.target);
    if (!target) throw this.unknownTarget(actor, cmd.target, cmd);
    if (!can(book, actor, 'request', target.id)) {
      throw new JitError('forbidden', `you (${actor}) have no JIT Requester role covering ${target.name}; ask a JIT Admin to assign one${unresolvedNote(book, unresolvedGroupsBehind(book, 'request', target.id))}`);
    }
    const policy = effectivePolicy(book, target);
    const source = cmd.source === undefined ? undefined : parseSource(cmd.source);
    const checked = checkAccess(policy, { ports: cmd.ports, durationMs: cmd.durationMs, ...(source !== undefined ? { source } : {}) }, this.settings.minDurationMs);

    await this.checkAbuseLimits(actor, target);

    const fromPart = cmd.source !== undefined ? ` from ${cmd.source}` : '';
    checkJustification(policy.justification, cmd.justification, `${exampleVerb(cmd.ports)} ${target.name} ${formatDuration(cmd.durationMs)}${fromPart}`);

    const now = this.deps.clock.now();
    const startAt =
      cmd.startAt === undefined
        ? undefined
        : resolveStart(cmd.startAt, now, origin.timeZone ?? policy.timeZone, `${exampleVerb(cmd.ports)} ${target.name} ${formatDuration(cmd.durationMs)}${fromPart} at 14:00`);
    const needLink = checked.source === undefined;
    const autoRule = !needLink && policy.approval.required ? await this.autoApprovalRule(policy, actor, cmd.ports, cmd.durationMs, now) : undefined;
    if (needLink && !this.settings.publicUrl) {
      throw new JitError(
        'source_required',
        `say where you will connect from: ${target.name} has no single fixed source range and no PUBLIC_URL is configured for the "my IP" link`,
        `${exampleVerb(cmd.ports)} ${target.name} ${formatDuration(cmd.durationMs)} from 203.0.113.7`,
      );
    }
    const status: AccessRequest['status'] = needLink ? 'awaiting_source' : policy.approval.required && !autoRule ? 'pending' : 'approved';
    const request: AccessRequest = {
      id: this.deps.ids.requestId(),
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
      approvalExpiresAt: now + (needLink ? this.settings.sourceLinkTtlMs : policy.approval.timeoutMs),
      rules: [],
      origin,
      version: 1,
    };
    const events: AuditEvent[] = [
      this.event(request, 'request.created', actor, now, {
        ports: request.ports.map((p) => `${p.port}/${p.protocol}`).join(','),
        source: request.source,
        duration: formatDuration(request.durationMs),
        justification: request.justification ?? null,
        via: origin.channel,
        ...(startAt !== undefined ? { startAt: new Date(startAt).toISOString() } : {}),
      }),
    ];
    if (status === 'awaiting_source') events.push(this.event(request, 'request.awaiting_source', actor, now));
    if (status === 'approved') events.push(this.event(request, 'request.approved', 'policy', now, { rule: autoRule ?? 'approval not required' }));

    // Approved at creation: the activation guard goes first, so a crash before the grant opens is healed.
    if (status === 'approved') await this.guardActivation(request);
    if (!(await this.deps.store.create(request, events))) throw new JitError('conflict', 'request id collision; please retry');
    await this.emitAudit(events);

    if (status === 'awaiting_source') {
      const token = this.deps.ids.token();
      await this.deps.store.putSourceToken(token, request.id, this.settings.sourceLinkTtlMs);
      await this.deps.scheduler.scheduleApprovalTimeout(request.id, request.approvalExpiresAt);
      const link = `${this.settings.publicUrl!.replace(/\/+$/, '')}/myip/${token}`;
      return { kind: 'awaiting_source', request, link, linkExpiresAt: now + this.settings.sourceLinkTtlMs };
    }
    return this.afterSourceKnown(request, policy);
  }

  /** A request whose source is known is either waiting for approvers or approved by policy. */
  private async afterSourceKnown(request: AccessRequest, policy: EffectivePolicy): Promise<Reply> {
    if (request.status === 'pending') {
      await this.deps.scheduler.scheduleApprovalTimeout(request.id, request.approvalExpiresAt);
      const esc = policy.approval.escalation;
      if (esc && request.createdAt + esc.afterMs < request.approvalExpiresAt) {
        await this.deps.scheduler.scheduleWorkflow('escalate', request.id, this.deps.clock.now() + esc.afterMs);
      }
      const approvers = approversFor(this.book, policy).filter((p) => p !== request.requester || policy.approval.selfApproval);
      await this.notify({ kind: 'approval_needed', request, actor: request.requester, approvers, route: this.routeOf(request, policy) });
      return { kind: 'pending_approval', request, approvers };
    }
    const activated = await this.activateOrSchedule(request);
    return this.outcome(activated);
  }

  private unknownTarget(actor: PrincipalId, name: string, cmd: AccessCommand): JitError {
    const mine = this.requestableTargets(actor);
    const first = mine[0];
    return new JitError(
      'unknown_target',
      `there is no target named "${name}"${mine.length ? `; you can request: ${mine.slice(0, 8).map((t) => t.name).join(', ')}` : '; you cannot request any target yet (ask a JIT Admin)'}`,
      first ? `${exampleVerb(cmd.ports)} ${first.name} ${formatDuration(cmd.durationMs)}` : undefined,
    );
  }

  private requestableTargets(actor: PrincipalId): Target[] {
    return Object.values(this.book.targets).filter((t) => can(this.book, actor, 'request', t.id));
  }

  // ---------------------------------------------------------------- "my IP"

  /** Records the address the one-time link was opened from, and continues the request. */
  async recordSource(token: string, address: string): Promise<Reply> {
    try {
      const expired = () => new JitError('link_expired', 'this link has expired or was already used; make the request again');
      const id = await this.deps.store.peekSourceToken(token);
      if (!id) throw expired();
      const req = await this.mustGet(id);
      const target = this.targetOf(req);
      const policy = effectivePolicy(this.book, target);
      // The address is checked before the link is used up: one it cannot take leaves the link usable.
      const source = parseSource(address);
      if (!/\/(32|128)$/.test(source)) throw new JitError('bad_source', `the link records one address, not ${source === '*' ? 'Any' : source}`);
      checkAccess(policy, { ports: req.ports, durationMs: req.durationMs, source }, 0);
      if ((await this.deps.store.takeSourceToken(token)) !== id) throw expired();
      const now = this.deps.clock.now();
      const autoRule = policy.approval.required ? await this.autoApprovalRule(policy, req.requester, req.ports, req.durationMs, now) : undefined;
      const autoApprove = !policy.approval.required || autoRule !== undefined;
      if (autoApprove) await this.guardActivation(req);
      const next = await this.transition(id, () => ({
        type: 'record_source',
        source,
        approvalExpiresAt: now + policy.approval.timeoutMs,
        autoApprove,
        ...(autoRule ? { rule: autoRule } : {}),
      }));
      await this.deps.scheduler.cancelApprovalTimeout(id);
      return this.afterSourceKnown(next, policy);
    } catch (e) {
      if (isJitError(e)) return rejectedReply(e);
      throw e;
    }
  }

  /** For the link's confirmation page: what the link is for, without consuming it. */
  async describeSourceToken(token: string): Promise<AccessRequest | null> {
    const id = await this.deps.store.peekSourceToken(token);
    return id ? this.deps.store.get(id) : null;
  }

  // ---------------------------------------------------------------- decide

  /**
   * An approver's decision. `scope` says what the clicked card was about: a button on a request's
   * card must not approve an extension asked for later on the same request, and the reverse.
   */
  async decide(actor: PrincipalId, id: string, decision: 'approve' | 'deny', given?: string, scope?: DecisionScope): Promise<Reply> {
    // A deny reason from any channel (chat, REST, a card's text box, a Slack dialog): one set of rules.
    const reason = given === undefined ? undefined : checkText('reason', given, `deny ${id} reason "not in a change window"`) || undefined;
    const req = await this.mustSee(actor, id);
    const policy = effectivePolicy(this.book, this.targetOf(req));
    this.assertScope(req, scope);
    if (req.status === 'active' && req.pendingExtension) return this.decideExtension(actor, req, policy, decision, reason);
    this.assertMayDecide(actor, req, policy);
    const { quorum, selfApproval, denyQuorum } = policy.approval;
    // A vote that completes the quorum: guard the activation before committing it (see guardActivation).
    if (decision === 'approve' && req.status === 'pending' && req.decisions.filter((d) => d.decision === 'approve').length + 1 >= quorum) await this.guardActivation(req);
    const next = await this.transition(id, () =>
      decision === 'approve'
        ? { type: 'approve', by: actor, quorum, selfApproval }
        : { type: 'deny', by: actor, selfApproval, denyQuorum, ...(reason ? { reason } : {}) },
    );
    const approvals = next.decisions.filter((d) => d.decision === 'approve').length;
    if (next.status === 'pending') {
      await this.notify({ kind: 'approval_progress', request: next, actor });
      return { kind: 'decided', request: next, decision, approvals, quorum };
    }
    await this.deps.scheduler.cancelApprovalTimeout(id);
    if (next.status === 'denied') {
      await this.notify({ kind: 'denied', request: next, actor });
      return { kind: 'decided', request: next, decision, approvals, quorum };
    }
    await this.notify({ kind: 'approved', request: next, actor });
    const activated = await this.activateOrSchedule(next);
    return { kind: 'decided', request: activated, decision, approvals, quorum };
  }

  /**
   * Would `decide` accept this actor's decision now? Throws the same error it would, changes
   * nothing (chat adapters ask before opening a "reason" dialog).
   */
  async checkDecide(actor: PrincipalId, request: string | AccessRequest, decision: 'approve' | 'deny', scope?: DecisionScope): Promise<void> {
    const req = typeof request === 'string' ? await this.mustSee(actor, request) : request;
    if (!this.canSee(actor, req)) throw this.notFound(req.id);
    const policy = effectivePolicy(this.book, this.targetOf(req));
    this.assertScope(req, scope);
    this.assertMayDecide(actor, req, policy);
    const { quorum, selfApproval, denyQuorum } = policy.approval;
    const now = this.deps.clock.now();
    if (req.status === 'active' && req.pendingExtension) {
      applyTransition(req, decision === 'approve'
        ? { type: 'approve_extension', by: actor, quorum, selfApproval, expiresAt: Math.max(req.expiresAt ?? now, now) + req.pendingExtension.addMs }
        : { type: 'deny_extension', by: actor, selfApproval }, now);
    } else {
      applyTransition(req, decision === 'approve' ? { type: 'approve', by: actor, quorum, selfApproval } : { type: 'deny', by: actor, selfApproval, denyQuorum }, now);
    }
  }

  private assertScope(req: AccessRequest, scope: DecisionScope | undefined): void {
    if (scope === 'request' && req.status !== 'pending') {
      throw new JitError('already_decided', `request ${req.id} ${describeStatus(req)}; this card's decision is over`);
    }
    if (scope === 'extension' && !(req.status === 'active' && req.pendingExtension)) {
      throw new JitError('already_decided', `no extension of ${req.id} is waiting for a decision (${describeStatus(req)})`);
    }
  }

  /** An approver's decision on an extension the requester asked for. */
  private async decideExtension(actor: PrincipalId, req: AccessRequest, policy: EffectivePolicy, decision: 'approve' | 'deny', reason?: string): Promise<Reply> {
    this.assertMayDecide(actor, req, policy);
    const { quorum, selfApproval } = policy.approval;
    const target = this.targetOf(req);
    const next = await this.transition(req.id, (cur) => {
      const add = cur.pendingExtension?.addMs ?? 0;
      const now = this.deps.clock.now();
      return decision === 'approve'
        ? { type: 'approve_extension', by: actor, quorum, selfApproval, expiresAt: Math.max(cur.expiresAt ?? now, now) + add }
        : { type: 'deny_extension', by: actor, selfApproval, ...(reason ? { reason } : {}) };
    });
    const approvals = next.pendingExtension?.decisions.length ?? (decision === 'approve' ? quorum : 0);
    if (decision === 'deny') {
      await this.notify({ kind: 'extension_denied', request: next, actor });
      return { kind: 'decided', request: next, decision, approvals: 0, quorum };
    }
    if (next.pendingExtension) {
      await this.notify({ kind: 'approval_progress', request: next, actor });
      return { kind: 'decided', request: next, decision, approvals, quorum };
    }
    await this.deps.scheduler.rescheduleExpiry(req.id, next.expiresAt! - this.closeLead(next));
    await this.scheduleReminder(next, policy);
    await this.moveRuleExpiry(req, target, next.expiresAt!, actor);
    await this.notify({ kind: 'extended', request: next, actor });
    return { kind: 'extended', request: next };
  }

  /**
   * Crash safety for `approved`: before a request can become approved, a 'start' job is scheduled a
   * little later (or at its start time). If the process dies between the approval and the grant
   * opening, that job opens it (late, but as approved) on any replica; if the grant opened, the job
   * finds it active and does nothing. Scheduling it again just moves it.
   */
  private async guardActivation(req: AccessRequest): Promise<void> {
    const at = Math.max(req.startAt ?? 0, this.deps.clock.now() + ACTIVATION_GUARD_MS);
    await this.deps.scheduler.scheduleWorkflow('start', req.id, at);
  }

  /** Opens now, or (for `at …`) schedules the opening; approval can happen ahead of the start. */
  private async activateOrSchedule(req: AccessRequest): Promise<AccessRequest> {
    if (req.startAt !== undefined && req.startAt > this.deps.clock.now() + this.settings.expirySlackMs) {
      await this.deps.scheduler.scheduleWorkflow('start', req.id, req.startAt);
      return req;
    }
    return this.activate(req.id);
  }

  // ---------------------------------------------------------------- activate

  /**
   * approved → active. The revocation is scheduled before the rule is written, so a crash at any
   * point still ends in a closed port: the job finds the request not active and closes its rules.
   */
  async activate(id: string): Promise<AccessRequest> {
    const req = await this.mustGet(id);
    if (req.status !== 'approved') return req;
    const target = this.targetOf(req);
    const expiresAt = this.deps.clock.now() + req.durationMs;
    await this.deps.scheduler.scheduleExpiry(id, expiresAt);
    let rules;
    try {
      rules = await this.deps.gate.open({ requestId: id, target, ports: req.ports, sourcePrefix: req.source ?? '', expiresAt, requester: req.requester, ...(req.justification ? { justification: req.justification } : {}) });
    } catch (err) {
      this.log(`network write failed for ${id}`, err);
      const reason = `network write failed: ${err instanceof Error ? err.message : String(err)}`;
      await this.closeQuietly(req, target);
      const failed = await this.transition(id, () => ({ type: 'fail', reason }));
      await this.deps.scheduler.cancelExpiry(id);
      await this.notify({ kind: 'failed', request: failed, actor: 'system' });
      return failed;
    }
    try {
      const active = await this.transition(id, () => ({ type: 'activate', rules, expiresAt }));
      // Now that the rules and the gate's latest writes are known, the revocation moves ahead of
      // the expiry by the close lead. A crash before this leaves it at the expiry (closed late by
      // the write time, as without early close).
      await this.scheduleRevocation(active);
      await this.scheduleReminder(active, effectivePolicy(this.book, target));
      await this.notify({ kind: 'activated', request: active, actor: 'system' });
      return active;
    } catch (err) {
      // Another activation (the guard job, another replica) won: the rules are the same ones (named
      // by request and port), so leave them to that grant.
      const now = await this.deps.store.get(id);
      if (now?.status === 'active') return now;
      // Someone else moved the request on (revoked, cancelled, failed): leave nothing open.
      await this.closeQuietly(req, target);
      throw err;
    }
  }

  // ---------------------------------------------------------------- expire (revocation job)

  async expire(id: string): Promise<JobOutcome> {
    const req = await this.deps.store.get(id);
    if (!req) return;
    const now = this.deps.clock.now();
    const target = this.targetOf(req);
    if (req.status === 'active') {
      // Early close: the job is due `lead` before the expiry (see closeLead), and is accepted
      // within that lead; earlier than that, the grant was extended (or the estimate fell) while
      // the job waited: ask the scheduler to run it again when it is due.
      const early = this.earlyCloseCheck(req, now);
      if (early !== null) return { retryAt: early };
      let expired: AccessRequest;
      try {
        // Re-checked on every compare-and-set attempt: an extension that commits while this job
        // runs wins, and the job comes back at the new expiry (less its lead) instead of closing the grant.
        expired = await this.transition(id, (cur) => {
          const retryAt = cur.status === 'active' ? this.earlyCloseCheck(cur, this.deps.clock.now()) : null;
          if (retryAt !== null) throw new ExtendedMeanwhile(retryAt);
          return { type: 'expire' };
        });
      } catch (e) {
        if (e instanceof ExtendedMeanwhile) return { retryAt: e.retryAt };
        if (isJitError(e)) return this.expire(id); // lost a race (revoke): look again
        throw e;
      }
      await this.closeRules(expired, target, 'system', { expiresAt: expired.expiresAt ?? now, startedAt: this.deps.clock.now() });
      await this.notify({ kind: 'expired', request: expired, actor: 'system' });
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
        await this.transition(id, (cur) => {
          if (cur.status !== 'approved') throw new JitError('conflict', `request ${id} moved on`);
          return { type: 'fail', reason: 'activation did not complete; rules closed by the revocation job' };
        });
      } catch (e) {
        if (isJitError(e)) return this.expire(id); // activated meanwhile: handle it as active
        throw e;
      }
      await this.closeRules(req, target, 'system');
      return;
    }
    // Final states: make sure nothing is left open (idempotent; a retried job lands here).
    await this.closeRules(req, target, 'system');
  }

  // ---------------------------------------------------------------- approval timeout (job)

  async timeoutApproval(id: string): Promise<JobOutcome> {
    const req = await this.deps.store.get(id);
    if (!req || (req.status !== 'pending' && req.status !== 'awaiting_source')) return;
    if (req.approvalExpiresAt > this.deps.clock.now() + this.settings.expirySlackMs) {
      return { retryAt: req.approvalExpiresAt };
    }
    try {
      const next = await this.transition(id, () => ({ type: 'timeout' }));
      await this.notify({ kind: 'timed_out', request: next, actor: 'system' });
    } catch (e) {
      if (!isJitError(e)) throw e; // decided meanwhile: nothing to do
    }
  }

  // ---------------------------------------------------------------- revoke / cancel

  async revoke(actor: PrincipalId, id: string, given?: string): Promise<Reply> {
    const reason = given === undefined ? undefined : checkText('reason', given, `revoke ${id}`) || undefined;
    const req = await this.mustSee(actor, id);
    const target = this.targetOf(req);
    const own = req.requester === actor;
    if (!own && !can(this.book, actor, 'revoke_any', target.id)) {
      throw new JitError('forbidden', `only the requester or a JIT Admin can revoke ${id}`);
    }
    if (req.status === 'pending' || req.status === 'awaiting_source' || (req.status === 'approved' && req.startAt)) {
      const next = await this.transition(id, () => ({ type: 'cancel', by: actor }));
      await this.deps.scheduler.cancelWorkflow('start', id);
      await this.deps.scheduler.cancelApprovalTimeout(id);
      await this.notify({ kind: 'cancelled', request: next, actor });
      return { kind: 'closed', request: next };
    }
    const next = await this.transition(id, () => ({ type: 'revoke', by: actor, ...(reason ? { reason } : {}) }));
    await this.closeRules(next, target, actor);
    await this.deps.scheduler.cancelExpiry(id);
    await this.notify({ kind: 'revoked', request: next, actor });
    return { kind: 'closed', request: next };
  }

  // ---------------------------------------------------------------- extend

  async extend(actor: PrincipalId, id: string, addMs: number): Promise<Reply> {
    const req = await this.mustSee(actor, id);
    const target = this.targetOf(req);
    const policy = effectivePolicy(this.book, target);
    const own = req.requester === actor;
    const admin = can(this.book, actor, 'revoke_any', target.id);
    const approver = !own && this.mayDecide(actor, req, policy);
    if (!own && !admin && !approver) throw new JitError('forbidden', `only the requester, an approver or a JIT Admin can extend ${id}`);
    // A late click on a reminder's Extend button gets a plain answer and opens nothing.
    if (req.status !== 'active') throw new JitError('invalid_transition', `request ${id} ${describeStatus(req)}; only an active grant can be extended`);
    const now = this.deps.clock.now();
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
      rule = await this.autoApprovalRule(policy, actor, req.ports, newExpiry - start, now);
      if (!rule) {
        const next = await this.transition(id, () => ({ type: 'request_extension', by: actor, addMs }));
        const approvers = this.approversOf(next, policy).filter((p) => p !== next.requester || policy.approval.selfApproval);
        await this.notify({ kind: 'extension_needed', request: next, actor, approvers, route: this.routeOf(next, policy) });
        return { kind: 'extension_pending', request: next, approvers };
      }
    }
    const { quorum, selfApproval } = policy.approval;
    let next: AccessRequest;
    if (!own && !admin && policy.approval.required && quorum > 1) {
      // An approver extending someone else's grant is one vote, not the quorum: the extension
      // waits for the other approvers as the requester's own would (this vote counts).
      next = await this.transition(id, (cur) => ({ type: 'propose_extension', by: actor, addMs, quorum, selfApproval, expiresAt: Math.max(cur.expiresAt ?? now, now) + addMs }));
      if (next.pendingExtension) {
        const waiting = next;
        const approvers = this.approversOf(waiting, policy).filter((p) => p !== actor && (p !== waiting.requester || selfApproval));
        await this.notify({ kind: 'extension_needed', request: waiting, actor, approvers, route: this.routeOf(waiting, policy) });
        return { kind: 'extension_pending', request: waiting, approvers };
      }
    } else {
      next = await this.transition(id, () => ({ type: 'extend', by: actor, expiresAt: newExpiry, ...(rule ? { rule } : {}) }));
    }
    const expiresAt = next.expiresAt ?? newExpiry;
    // Commit first, then move the job (to the new expiry less its close lead): a crash in between
    // leaves the old job, which sees the later expiry and reschedules itself; the reverse order
    // could close a port late.
    await this.deps.scheduler.rescheduleExpiry(id, expiresAt - this.closeLead(next));
    await this.scheduleReminder(next, policy);
    await this.moveRuleExpiry(next, target, expiresAt, actor);
    await this.notify({ kind: 'extended', request: next, actor });
    return { kind: 'extended', request: next };
  }

  // ---------------------------------------------------------------- list / status / help

  async status(actor: PrincipalId, id: string): Promise<Reply> {
    if (!hasAnyRole(this.book, actor)) throw this.notFound(id);
    await this.checkReadRate(actor, 'read');
    const req = await this.mustSee(actor, id);
    const target = this.targetOf(req);
    return { kind: 'status', request: req, connections: connectionsFor(target, req.ports, req.rules) };
  }

  /** Requests the caller may see, filtered (the REST API's list). Newest first. */
  async listVisible(actor: PrincipalId, filter: ListFilter): Promise<AccessRequest[]> {
    if (!hasAnyRole(this.book, actor)) return [];
    await this.checkReadRate(actor, 'read');
    const limit = Math.min(Math.max(filter.limit ?? 50, 1), 200);
    const all = await this.deps.store.list({ ...filter, limit: limit * 4 });
    return all.filter((r) => this.canSee(actor, r)).slice(0, limit);
  }

  async list(actor: PrincipalId, scope: 'mine' | 'all' | 'pending' | 'active'): Promise<Reply> {
    if (!hasAnyRole(this.book, actor)) return { kind: 'list', scope, requests: [] };
    await this.checkReadRate(actor, 'read');
    if (scope === 'mine') {
      const requests = await this.deps.store.list({ requester: actor, limit: 20 });
      // Readers, approvers and admins see others' requests with `list all` / `list pending`.
      const seesOthers = Object.values(this.book.targets).some((t) => can(this.book, actor, 'read', t.id));
      return { kind: 'list', scope, requests, ...(requests.length === 0 && seesOthers ? { hint: 'Try list all for the requests you may see, list pending for those waiting for a decision.' } : {}) };
    }
    const status = scope === 'all' ? undefined : scope;
    const all = await this.deps.store.list({ ...(status ? { status } : {}), limit: 200 });
    const visible = all.filter((r) => this.canSee(actor, r)).slice(0, 50);
    return { kind: 'list', scope, requests: visible };
  }

  /** Examples from the person's own targets, each one pasteable as is (test/integration/examples.test.ts). */
  async help(actor: PrincipalId, origin?: RequestOrigin): Promise<Reply> {
    const [latest] = await this.listVisible(actor, { limit: 1 });
    const examples = await helpExamples(this.exampleContext(origin), actor, latest);
    const none = this.requestableTargets(actor).length === 0;
    return { kind: 'help', examples, ...(none ? { note: '(you cannot request any target yet: a JIT Admin can give you the JIT Requester role)' } : {}) };
  }

  // ---------------------------------------------------------------- workflow jobs

  /** Escalation and expiry-reminder jobs. */
  async workflow(kind: WorkflowJob, id: string): Promise<JobOutcome> {
    const req = await this.deps.store.get(id);
    if (!req) return;
    const target = own(this.book.targets, req.target);
    if (!target) return;
    const policy = effectivePolicy(this.book, target);
    const now = this.deps.clock.now();
    if (kind === 'start') {
      if (req.status !== 'approved') return;
      if ((req.startAt ?? 0) > now + this.settings.expirySlackMs) return { retryAt: req.startAt! };
      await this.activate(id);
      return;
    }
    if (kind === 'escalate') {
      const esc = policy.approval.escalation;
      if (req.status !== 'pending' || req.escalatedAt || !esc) return;
      const due = req.createdAt + esc.afterMs;
      if (due > now + this.settings.expirySlackMs) return { retryAt: due };
      const added = approversAmong(this.book, esc.approvers, req.targetId).filter((p) => p !== req.requester || policy.approval.selfApproval);
      let next: AccessRequest;
      try {
        next = await this.transition(id, () => ({ type: 'escalate', approvers: added }));
      } catch (e) {
        if (isJitError(e)) return; // decided meanwhile
        throw e;
      }
      await this.notify({ kind: 'escalated', request: next, actor: 'system', approvers: added, route: this.routeOf(next, policy) });
      return;
    }
    // remind
    if (req.status !== 'active' || req.expiresAt === undefined) return;
    const due = req.expiresAt - policy.reminder.beforeMs;
    if (due > now + this.settings.expirySlackMs) return { retryAt: due }; // extended since
    const { rules } = checkAccess(policy, { ports: req.ports, durationMs: req.durationMs }, 0);
    const maxMs = Math.min(...rules.map((r) => r.maxDurationMs));
    const options = extendOptions(policy.reminder, req.activatedAt ?? now, req.expiresAt, maxMs);
    await this.appendAudit({
      time: now, actor: 'system', action: 'grant.reminded', requestId: id, target: req.target,
      details: { expiresAt: new Date(req.expiresAt).toISOString(), options: options.map(formatDuration).join(',') },
    });
    await this.notify({ kind: 'expiring', request: req, actor: 'system', extendOptionsMs: options });
  }

  private async scheduleReminder(req: AccessRequest, policy: EffectivePolicy): Promise<void> {
    const before = policy.reminder.beforeMs;
    if (before <= 0 || req.expiresAt === undefined || req.activatedAt === undefined) return;
    // Only worth it when the grant lasts longer than the reminder lead time.
    if (req.expiresAt - req.activatedAt <= before) return;
    await this.deps.scheduler.scheduleWorkflow('remind', req.id, req.expiresAt - before).catch((err: unknown) => this.log(`could not schedule the reminder for ${req.id}`, err));
  }

  /** The name of the first auto-approval rule that holds, asking the on-call directory if a rule needs it. */
  private async autoApprovalRule(policy: EffectivePolicy, requester: PrincipalId, ports: AccessRequest['ports'], durationMs: number, now: number): Promise<string | undefined> {
    const candidates = matchAutoApproval(policy.autoApprove, { requester, ports, durationMs, at: now }, (ref, p) => refMatches(this.book, ref, p));
    for (const rule of candidates) {
      if (rule.onCallSchedules.length === 0) return rule.name;
      if (!this.deps.onCall) continue;
      try {
        if (await this.deps.onCall.isOnCall(requester, rule.onCallSchedules, now)) return rule.name;
      } catch (err) {
        // Never auto-approve on a failure: a human decides.
        this.log(`on-call check failed for ${requester}; falling back to human approval`, err);
      }
    }
    return undefined;
  }

  /** Where the approval request goes, by the policy's routing (target, port, requester's role). */
  routeOf(req: AccessRequest, policy: EffectivePolicy): ApprovalRoute {
    return routeApproval(policy.routing, { target: req.target, ports: req.ports, requesterRoles: rolesAt(this.book, req.requester, req.targetId) }, policy.channels);
  }

  /** Approvers of the policy, plus the escalation approvers once the request escalated. */
  private approversOf(req: AccessRequest, policy: EffectivePolicy): PrincipalId[] {
    const base = approversFor(this.book, policy);
    const esc = policy.approval.escalation;
    if (!req.escalatedAt || !esc) return base;
    return [...new Set([...base, ...approversAmong(this.book, esc.approvers, req.targetId)])];
  }

  private assertMayDecide(actor: PrincipalId, req: AccessRequest, policy: EffectivePolicy): void {
    if (!this.mayDecide(actor, req, policy)) {
      const book = this.book;
      const refs = [...policy.approval.approvers, ...(policy.approval.escalation?.approvers ?? [])];
      throw new JitError('not_approver', `you (${actor}) are not an approver for ${req.target}; approvers: ${this.approversOf(req, policy).join(', ') || 'none configured'}${unresolvedNote(book, unresolvedGroupsBehind(book, 'approve', req.targetId, refs))}`);
    }
  }

  private mayDecide(actor: PrincipalId, req: AccessRequest, policy: EffectivePolicy): boolean {
    if (isApprover(this.book, actor, policy)) return true;
    const esc = policy.approval.escalation;
    // Escalation approvers too need the approve permission covering the target.
    return Boolean(req.escalatedAt && esc && esc.approvers.some((ref) => refMatches(this.book, ref, actor)) && can(this.book, actor, 'approve', req.targetId));
  }

  // ---------------------------------------------------------------- reconcile (second line)

  /**
   * Closes rules on the network whose expiry has passed or whose request is not active, whatever
   * Redis says (it works with Redis empty). Returns how many rules were removed. Active grants
   * expiring within `replanWithinMs` get their revocation moved earlier if their close lead grew
   * since it was planned (grants on the same NSG expiring just before them, added since).
   */
  async reconcile(replanWithinMs = 2 * this.settings.closeLeadMaxMs): Promise<number> {
    const now = this.deps.clock.now();
    const rules = await this.deps.gate.list();
    const byRequest = new Map<string, typeof rules>();
    for (const r of rules) byRequest.set(r.requestId, [...(byRequest.get(r.requestId) ?? []), r]);
    // Decide per request, then remove every stale rule in one call: the gate writes each NSG once
    // per sweep, however many grants it closes (a sweep after a crash may have many).
    const stale: Array<{ requestId: string; req: AccessRequest | null; owned: typeof rules }> = [];
    for (const [requestId, owned] of byRequest) {
      const req = await this.deps.store.get(requestId);
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
          const target = this.targetOf(req);
          await this.moveRuleExpiry(req, target, expiresAt, 'reconciler');
        }
        if (req?.status === 'active' && expiresAt - now <= replanWithinMs) await this.replanRevocation(req, now);
        continue;
      }
      stale.push({ requestId, req, owned });
    }
    if (stale.length === 0) return 0;
    const gone = await this.deps.gate.remove(stale.flatMap((x) => x.owned));
    const goneKeys = new Map(gone.map((r) => [`${r.scope.toLowerCase()}|${r.name}`, r]));
    let removed = 0;
    for (const { requestId, req, owned } of stale) {
      for (const rule of owned.filter((r) => goneKeys.has(`${r.scope.toLowerCase()}|${r.name}`))) {
        removed++;
        const ref = goneKeys.get(`${rule.scope.toLowerCase()}|${rule.name}`)?.ref;
        await this.appendAudit({
          time: now, actor: 'reconciler', action: 'rule.reconciled', requestId, target: req?.target ?? rule.scope.split('/').pop() ?? 'unknown',
          details: { rule: rule.name, scope: rule.scope, expiresAt: new Date(rule.expiresAt).toISOString(), status: req?.status ?? 'unknown', ...(ref ? { ref } : {}) },
        });
      }
      if (req?.status === 'active') {
        await this.transition(requestId, (cur) => {
          if ((cur.expiresAt ?? 0) > this.deps.clock.now()) throw new ExtendedMeanwhile(cur.expiresAt!);
          return { type: 'expire' };
        }).catch((e: unknown) => {
          if (!isJitError(e) && !(e instanceof ExtendedMeanwhile)) throw e;
        });
      }
    }
    return removed;
  }

  // ---------------------------------------------------------------- helpers

  /** Read, apply the pure transition, compare-and-set; on a lost race, read again and re-decide. */
  private async transition(id: string, make: (current: AccessRequest) => Transition): Promise<AccessRequest> {
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const current = await this.mustGet(id);
      const { next, events } = applyTransition(current, make(current), this.deps.clock.now());
      if (await this.deps.store.compareAndSet(next, current.version, events)) {
        await this.emitAudit(events);
        return { ...next, version: current.version + 1 };
      }
    }
    throw new JitError('conflict', `request ${id} is changing too fast; try again`);
  }

  /**
   * How long before its expiry this grant's revocation starts: the gate's estimate of how long
   * closing its rules takes (0: no early close) plus the margin, at most `closeLeadMaxMs` and at
   * most half the grant (a grant is never closed as it opens).
   */
  closeLead(req: AccessRequest): number {
    if (req.expiresAt === undefined) return 0;
    const estimate = this.deps.gate.closeLeadMs?.(req.rules, req.expiresAt) ?? 0;
    if (!(estimate > 0)) return 0;
    // The grant's length: as asked, or longer once extended.
    const length = Math.max(req.durationMs, req.expiresAt - (req.activatedAt ?? req.expiresAt));
    return Math.max(0, Math.min(Math.round(estimate + this.settings.closeLeadMarginMs), this.settings.closeLeadMaxMs, Math.floor(length / 2)));
  }

  /**
   * null when an active grant's revocation may start at `now` (within its close lead of the expiry,
   * or past it); else when it is due. Never more than `closeLeadMaxMs` before the expiry, even
   * with the slack for a job firing a moment early.
   */
  private earlyCloseCheck(req: AccessRequest, now: number): number | null {
    const expiresAt = req.expiresAt ?? 0;
    const lead = this.closeLead(req);
    const window = lead > 0 ? Math.min(this.settings.closeLeadMaxMs, lead + this.settings.expirySlackMs) : this.settings.expirySlackMs;
    return expiresAt > now + window ? expiresAt - lead : null;
  }

  /**
   * An active grant's revocation moved earlier when its close lead grew since it was planned (the
   * gate has seen other grants on its NSG that expire just before it and will be closing then too).
   * Never later: a job early for a lead that shrank is sent back when it fires (expire()).
   */
  private async replanRevocation(req: AccessRequest, now: number): Promise<void> {
    const lead = this.closeLead(req);
    if (lead <= 0 || req.expiresAt === undefined) return;
    const want = Math.max(now, req.expiresAt - lead);
    const due = await this.deps.scheduler.expiryDueAt(req.id).catch(() => null);
    if (due === null || due <= want + this.settings.expirySlackMs) return;
    await this.deps.scheduler.rescheduleExpiry(req.id, want).catch((err: unknown) => this.log(`could not move the revocation of ${req.id} earlier`, err));
  }

  /** Moves an active grant's revocation to its expiry less its close lead (when there is a lead). */
  private async scheduleRevocation(req: AccessRequest): Promise<void> {
    const lead = this.closeLead(req);
    if (lead <= 0 || req.expiresAt === undefined) return;
    await this.deps.scheduler.rescheduleExpiry(req.id, req.expiresAt - lead).catch((err: unknown) => this.log(`could not move the revocation of ${req.id} ahead of its expiry; it closes at the expiry`, err));
  }

  /**
   * Closes the request's rules and audits each one removed. For a revocation at expiry (`expiry`),
   * each rule.removed also says how early the close started (`leadMs`: the expiry minus the start,
   * negative when it started late), when the network confirmed it (`confirmedAt`) and how that
   * compares with the expiry (`lateMs`: negative when the rules were gone before it).
   */
  private async closeRules(req: AccessRequest, target: Target, actor: string, expiry?: { expiresAt: number; startedAt: number }): Promise<void> {
    const removed = await this.deps.gate.close(req.id, target, req.rules, expiry ? { by: expiry.expiresAt, marginMs: this.settings.closeLeadMarginMs } : undefined);
    const confirmedAt = this.deps.clock.now();
    const timing: AuditEvent['details'] = expiry
      ? { expiresAt: new Date(expiry.expiresAt).toISOString(), leadMs: expiry.expiresAt - expiry.startedAt, confirmedAt: new Date(confirmedAt).toISOString(), lateMs: confirmedAt - expiry.expiresAt }
      : {};
    for (const rule of removed) {
      await this.appendAudit({
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
  private async moveRuleExpiry(req: AccessRequest, target: Target, expiresAt: number, actor: string): Promise<void> {
    let written: void | AppliedRule[];
    try {
      written = await this.deps.gate.updateExpiry(req.id, target, expiresAt);
    } catch (err) {
      this.log(`could not move the network's expiry of ${req.id}; the reconciler retries`, err);
      return;
    }
    for (const rule of written ?? []) {
      await this.appendAudit({
        time: this.deps.clock.now(), actor, action: 'rule.applied', requestId: req.id, target: req.target,
        details: { rule: rule.name, scope: rule.scope, priority: rule.priority, source: rule.sourcePrefix, port: rule.destinationPort, expiresAt: new Date(rule.expiresAt).toISOString(), ...(rule.ref ? { ref: rule.ref } : {}) },
      });
    }
  }

  private async closeQuietly(req: AccessRequest, target: Target): Promise<void> {
    try {
      await this.closeRules(req, target, 'system');
    } catch (err) {
      this.log(`cleanup of ${req.id} failed; the revocation job and reconciler will retry`, err);
    }
  }

  /** A chat adapter's delivery problem worth an audit record (an approval card refused, and what was sent instead). */
  async auditDelivery(req: AccessRequest, actor: string, details: AuditEvent['details']): Promise<void> {
    await this.appendAudit({ time: this.deps.clock.now(), actor, action: 'notify.card_fallback', requestId: req.id, target: req.target, details });
  }

  private async appendAudit(e: AuditEvent): Promise<void> {
    const stored = await this.deps.audit.append(e);
    await this.emitAudit([stored]);
  }

  private async emitAudit(events: AuditEvent[]): Promise<void> {
    for (const e of events) {
      try {
        await this.deps.notifier.audit(e);
      } catch (err) {
        this.log('audit notifier failed', err);
      }
    }
  }

  private async notify(n: Notification): Promise<void> {
    try {
      await this.deps.notifier.notify(n);
    } catch (err) {
      this.log(`notifier failed for ${n.kind} ${n.request.id}`, err);
    }
  }

  private outcome(req: AccessRequest): Reply {
    if (req.status === 'active') return { kind: 'active', request: req, connections: connectionsFor(this.targetOf(req), req.ports, req.rules) };
    if (req.status === 'failed') return { kind: 'failed', request: req };
    return { kind: 'status', request: req, connections: [] };
  }

  private async mustGet(id: string): Promise<AccessRequest> {
    const req = await this.deps.store.get(id);
    if (!req) throw new JitError('not_found', `there is no request ${id}`, 'list');
    return req;
  }

  private targetOf(req: AccessRequest): Target {
    return own(this.book.targets, req.target) ?? this.targetFromRecord(req);
  }

  /** A target removed from the policy file still has its grants closed. */
  private targetFromRecord(req: AccessRequest): Target {
    return { name: req.target, id: req.targetId, os: 'linux' };
  }

  /**
   * Who sees a request: its requester (while they hold any role) and whoever reads its target
   * (JIT Reader, JIT Approver, JIT Admin at a covering scope). An approver always reads: deciding
   * needs the approve permission, and every role with it also has read.
   */
  private canSee(actor: PrincipalId, req: AccessRequest): boolean {
    if (req.requester === actor && hasAnyRole(this.book, actor)) return true;
    return can(this.book, actor, 'read', req.targetId);
  }

  /** The same answer for "no such request" and "not yours to see": ids are not confirmed to outsiders. */
  private notFound(id: string): JitError {
    // Said whether or not the request exists (it confirms nothing): rights may hang on a directory group that cannot be read now.
    const book = this.book;
    const unresolved = Object.keys(book.unresolvedGroups ?? {}).filter((g) => book.roles.some((r) => r.principal === `group:${g}`)).sort();
    return new JitError('not_found', `there is no request ${id} that you can see${unresolvedNote(book, unresolved)}`, 'list');
  }

  /** The request, if it exists and `actor` may see it; else not_found (before any permission message). */
  private async mustSee(actor: PrincipalId, id: string): Promise<AccessRequest> {
    if (!hasAnyRole(this.book, actor)) throw this.notFound(id);
    const req = await this.deps.store.get(id);
    if (!req || !this.canSee(actor, req)) throw this.notFound(id);
    return req;
  }

  private event(req: AccessRequest, action: AuditEvent['action'], actor: string, now: number, details: AuditEvent['details'] = {}): AuditEvent {
    return { time: now, actor, action, requestId: req.id, target: req.target, details };
  }
}
