// The use cases behind one facade: adapters, bootstrap and tests call JitService; the work is done
// in the modules beside it (requests, decisions, grants, reconciler, queries, admin, limits), each
// written against the ports through a UseCaseContext (docs/architecture.md). No SDK, no I/O library.
import type { AccessCommand, Command } from '../core/command.js';
import { JitError, isJitError } from '../core/errors.js';
import { parseCommand } from '../core/parse.js';
import type { EffectivePolicy, PolicyBook } from '../core/policy.js';
import * as authz from '../core/authz.js';
import type { DecisionScope } from '../core/authz.js';
import type { ApprovalRoute } from '../core/workflow.js';
import { rejectedReply, type Reply } from '../core/reply.js';
import type { AuditRow } from '../core/audit-export.js';
import type { AccessRequest, AuditEvent, PortSpec, PrincipalId, RequestOrigin } from '../core/types.js';
import type { JobHandlers, JobOutcome, ListFilter, WorkflowJob } from './ports.js';
import { UseCaseContext } from './context.js';
import type { ServiceDeps, ServiceSettings } from './settings.js';
import { workingExample } from './examples.js';
import * as admin from './admin.js';
import * as decisions from './decisions.js';
import * as grants from './grants.js';
import * as queries from './queries.js';
import { reconcile } from './reconciler.js';
import * as requests from './requests.js';
import * as revocation from './revocation.js';

export type { DecisionScope } from '../core/authz.js';
export { DEFAULT_SETTINGS, type ServiceDeps, type ServiceSettings } from './settings.js';

export class JitService implements JobHandlers {
  private readonly ctx: UseCaseContext;

  constructor(deps: ServiceDeps) {
    this.ctx = new UseCaseContext(deps);
  }

  get settings(): ServiceSettings {
    return this.ctx.settings;
  }

  private get deps(): ServiceDeps {
    return this.ctx.deps;
  }

  /** The book every decision reads (policy file, network side, directory groups: see books.ts). */
  private get book(): PolicyBook {
    return this.ctx.book;
  }

  /** A request as stored, for adapters that render it (no permission check: never show it to a user as is). */
  get(id: string): Promise<AccessRequest | null> {
    return this.deps.store.get(id);
  }

  /**
   * A request as `actor` may see it (a card refresh): counted as a read; a request that does not
   * exist and one the caller may not see get the same not_found.
   */
  visibleRequest(actor: PrincipalId, id: string): Promise<AccessRequest> {
    return queries.visibleRequest(this.ctx, actor, id);
  }

  /** Who may decide on this request now (policy approvers, plus escalation approvers once escalated). */
  async approversFor(req: AccessRequest): Promise<PrincipalId[]> {
    return queries.approversFor(this.ctx, req);
  }

  /** The newest requests, for the local console (no permission check: local mode only). */
  recent(limit = 200): Promise<AccessRequest[]> {
    return this.deps.store.list({ limit });
  }

  policyBook(): PolicyBook {
    return this.book;
  }

  setPolicyBook(book: PolicyBook): void {
    this.ctx.books.setFileBook(book);
  }

  /** Reads the directory groups' membership again (bootstrap: at start and every third of the TTL). */
  refreshDirectoryGroups(): Promise<void> {
    return this.ctx.books.refreshDirectoryGroups();
  }

  /** For /readyz: directory groups whose membership is unknown or whose last refresh failed. */
  directoryProblem(): string | undefined {
    return this.ctx.books.directoryProblem();
  }

  /** Reads the network side's own targets (Defender for Cloud's JIT policies); see PolicyBooks. */
  refreshNetworkPolicies(): Promise<void> {
    return this.ctx.books.refreshNetworkPolicies();
  }

  /** Why the last read of the network side's policies failed; undefined when it did not. */
  networkPoliciesProblem(): string | undefined {
    return this.ctx.books.networkPoliciesProblem();
  }

  // ---------------------------------------------------------------- entry point for every chat

  /** Parses and runs one command typed by `actor`; never throws a JitError (it becomes a rejected reply). */
  async execute(actor: PrincipalId, text: string, origin: RequestOrigin): Promise<Reply> {
    try {
      return await this.run(actor, parseCommand(text), origin);
    } catch (e) {
      if (!isJitError(e)) throw e;
      // The "try …" is what they paste next: make it one that works for them (src/app/examples.ts).
      const example = e.example === undefined ? undefined : await workingExample(queries.exampleContext(this.ctx, origin), actor, e.example).catch(() => 'help');
      return rejectedReply(example === e.example ? e : new JitError(e.code, e.message, example));
    }
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
    return queries.showPolicy(this.ctx, actor, name);
  }

  /** The activity the caller may read, for one target or all, since a time (the JSON and CSV exports). */
  auditRows(actor: PrincipalId, opts: { target?: string; since: number; limit?: number }): Promise<{ rows: AuditRow[]; truncated: boolean }> {
    return queries.auditRows(this.ctx, actor, opts);
  }

  auditReport(actor: PrincipalId, target: string | undefined, sinceMs: number): Promise<Reply> {
    return queries.auditReport(this.ctx, actor, target, sinceMs);
  }

  /** Targets as Defender for Cloud's JIT blade groups them: Configured, Not configured, Unsupported. */
  vms(actor: PrincipalId): Promise<Reply> {
    return queries.vms(this.ctx, actor);
  }

  status(actor: PrincipalId, id: string): Promise<Reply> {
    return queries.status(this.ctx, actor, id);
  }

  /** Requests the caller may see, filtered (the REST API's list). Newest first. */
  listVisible(actor: PrincipalId, filter: ListFilter): Promise<AccessRequest[]> {
    return queries.listVisible(this.ctx, actor, filter);
  }

  list(actor: PrincipalId, scope: 'mine' | 'all' | 'pending' | 'active'): Promise<Reply> {
    return queries.list(this.ctx, actor, scope);
  }

  help(actor: PrincipalId, origin?: RequestOrigin): Promise<Reply> {
    return queries.help(this.ctx, actor, origin);
  }

  /** "Enable JIT" (JIT Admin): the bot's Deny rules for the policy's ports (or those given) on the target's path. */
  enforce(actor: PrincipalId | 'system', name: string, ports?: PortSpec[]): Promise<Reply> {
    return admin.enforce(this.ctx, actor, name, ports);
  }

  unenforce(actor: PrincipalId, name: string): Promise<Reply> {
    return admin.unenforce(this.ctx, actor, name);
  }

  /** A chat adapter's delivery problem worth an audit record (an approval card refused, and what was sent instead). */
  auditDelivery(req: AccessRequest, actor: string, details: AuditEvent['details']): Promise<void> {
    return admin.auditDelivery(this.ctx, req, actor, details);
  }

  /** Where the approval request goes, by the policy's routing (target, port, requester's role). */
  routeOf(req: AccessRequest, policy: EffectivePolicy): ApprovalRoute {
    return authz.routeOf(this.book, req, policy);
  }

  // ---------------------------------------------------------------- requests and decisions (requests.ts, decisions.ts)

  requestAccess(actor: PrincipalId, given: AccessCommand, origin: RequestOrigin): Promise<Reply> {
    return requests.requestAccess(this.ctx, actor, given, origin);
  }

  /** Records the address the one-time link was opened from, and continues the request. */
  recordSource(token: string, address: string): Promise<Reply> {
    return requests.recordSource(this.ctx, token, address);
  }

  /** For the link's confirmation page: what the link is for, without consuming it. */
  describeSourceToken(token: string): Promise<AccessRequest | null> {
    return requests.describeSourceToken(this.ctx, token);
  }

  /**
   * An approver's decision. `scope` says what the clicked card was about: a button on a request's
   * card must not approve an extension asked for later on the same request, and the reverse.
   */
  decide(actor: PrincipalId, id: string, decision: 'approve' | 'deny', given?: string, scope?: DecisionScope): Promise<Reply> {
    return decisions.decide(this.ctx, actor, id, decision, given, scope);
  }

  /** Would `decide` accept this decision now? Throws the same error it would, changes nothing. */
  checkDecide(actor: PrincipalId, request: string | AccessRequest, decision: 'approve' | 'deny', scope?: DecisionScope): Promise<void> {
    return decisions.checkDecide(this.ctx, actor, request, decision, scope);
  }

  revoke(actor: PrincipalId, id: string, given?: string): Promise<Reply> {
    return decisions.revoke(this.ctx, actor, id, given);
  }

  extend(actor: PrincipalId, id: string, addMs: number): Promise<Reply> {
    return decisions.extend(this.ctx, actor, id, addMs);
  }

  // ---------------------------------------------------------------- jobs (grants.ts) and the reconciler

  /** approved → active (the revocation scheduled before the rule is written). */
  activate(id: string): Promise<AccessRequest> {
    return grants.activate(this.ctx, id);
  }

  /** The revocation job. */
  expire(id: string): Promise<JobOutcome> {
    return grants.expire(this.ctx, id);
  }

  timeoutApproval(id: string): Promise<JobOutcome> {
    return grants.timeoutApproval(this.ctx, id);
  }

  /** Escalation, expiry-reminder and start jobs. */
  workflow(kind: WorkflowJob, id: string): Promise<JobOutcome> {
    return grants.workflow(this.ctx, kind, id);
  }

  /** How long before its expiry this grant's revocation starts (see revocation.ts). */
  closeLead(req: AccessRequest): number {
    return revocation.closeLead(this.ctx, req);
  }

  /** Closes rules the store does not account for; returns how many were removed (see reconciler.ts). */
  reconcile(replanWithinMs = 2 * this.settings.closeLeadMaxMs): Promise<number> {
    return reconcile(this.ctx, replanWithinMs);
  }
}
