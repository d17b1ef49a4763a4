// The interfaces the use cases are written against. Adapters implement them;
// nothing here knows a database, a queue, a chat platform or a cloud.
import type {
  AccessRequest,
  AppliedRule,
  AuditEvent,
  PortSpec,
  PrincipalId,
  RequestStatus,
  Target,
  TargetName,
} from '../core/types.js';
import type { DirectoryMember } from '../core/directory.js';
import type { RequestId } from '../core/ids.js';
import type { NetworkPolicies } from '../core/policy.js';
import type { ApprovalRoute } from '../core/workflow.js';

export interface ListFilter {
  requester?: PrincipalId;
  target?: TargetName;
  status?: RequestStatus;
  /** Newest first; default 50. */
  limit?: number;
}

export interface RequestStore {
  /** Stores a new request (version 1) and appends its audit events, atomically. False if the id exists. */
  create(request: AccessRequest, events: AuditEvent[]): Promise<boolean>;
  get(id: string): Promise<AccessRequest | null>;
  /**
   * Atomic compare-and-set: replaces the request only if the stored version equals
   * `expectedVersion`; stores `next` with version `expectedVersion + 1`, moves it between
   * the status indexes and appends `events` to the audit log, all in one step.
   * Returns false (and changes nothing) when the version no longer matches.
   */
  compareAndSet(next: AccessRequest, expectedVersion: number, events: AuditEvent[]): Promise<boolean>;
  list(filter: ListFilter): Promise<AccessRequest[]>;
  /** Many requests in one round trip; null where missing. */
  getMany(ids: string[]): Promise<Array<AccessRequest | null>>;
  /** One-time tokens of the "my IP" link, bound to a request; expire after `ttlMs`. */
  putSourceToken(token: string, requestId: string, ttlMs: number): Promise<void>;
  /** Returns the request id and deletes the token (GETDEL); null if unknown or expired. */
  takeSourceToken(token: string): Promise<string | null>;
  /** Reads without consuming (for the confirmation page). */
  peekSourceToken(token: string): Promise<string | null>;
}

export interface AuditQuery {
  requestId?: string;
  /** Epoch ms, inclusive. */
  since?: number;
  /** Oldest first; default 1000. */
  limit?: number;
}

/** What one caller may read of the audit log (the service decides; the log only walks its indexes). */
export interface AuditScope {
  /** Targets whose events the caller may read (a per-target index is walked for each). */
  targets: string[];
  /** Principals whose own requests' events the caller may read, on any target. */
  requesters: PrincipalId[];
  /** Only this target's events. */
  target?: string;
  /** Epoch ms, inclusive, compared with each event's `time`. */
  since: number;
  /** At most this many events, the newest ones. */
  limit: number;
}

export interface AuditLog {
  /** Appends one event (append-only); returns it with its id. */
  append(event: AuditEvent): Promise<AuditEvent>;
  list(query?: AuditQuery): Promise<AuditEvent[]>;
  /**
   * The newest `limit` events in the scope, oldest first, and whether there were more. Its cost
   * follows the scope (the per-target and per-request indexes), not the size of the whole log.
   */
  listScoped(scope: AuditScope): Promise<{ events: AuditEvent[]; truncated: boolean }>;
}

export interface Scheduler {
  /** One delayed revocation per grant, keyed by request id: scheduling twice is a no-op. */
  scheduleExpiry(requestId: string, at: number): Promise<void>;
  /** Moves an existing revocation to `at` (or schedules it if missing). */
  rescheduleExpiry(requestId: string, at: number): Promise<void>;
  cancelExpiry(requestId: string): Promise<void>;
  scheduleApprovalTimeout(requestId: string, at: number): Promise<void>;
  cancelApprovalTimeout(requestId: string): Promise<void>;
  /** When the revocation is due, or null if none is scheduled (for status and tests). */
  expiryDueAt(requestId: string): Promise<number | null>;
  /** Workflow jobs (escalation, expiry reminder): one per kind and request; scheduling again moves it. */
  scheduleWorkflow(kind: WorkflowJob, requestId: string, at: number): Promise<void>;
  cancelWorkflow(kind: WorkflowJob, requestId: string): Promise<void>;
}

export type WorkflowJob = 'escalate' | 'remind' | 'start';

/** A handler's answer: done, or "not yet, run me again at `retryAt`" (a grant extended while its job fired). */
export type JobOutcome = void | { retryAt: number };

/** What the scheduler's worker calls back into. Throwing means "retry with backoff". */
export interface JobHandlers {
  expire(requestId: string): Promise<JobOutcome>;
  timeoutApproval(requestId: string): Promise<JobOutcome>;
  workflow(kind: WorkflowJob, requestId: string): Promise<JobOutcome>;
}

/** Who is on call (PagerDuty or another directory). Any failure means "unknown": a human decides. */
export interface OnCallDirectory {
  isOnCall(principal: PrincipalId, schedules: string[], at: number): Promise<boolean>;
}

/**
 * A close made for an expiry (the revocation job, started its close lead early): the gate may hold
 * its write so that it completes just before `by` rather than as soon as possible (Azure: aligned
 * with the NSG's other writes). Absent for revocations and sweeps: those close at once.
 */
export interface CloseTiming {
  by: number;
  /** How much before `by` to aim for (JIT_CLOSE_LEAD_MARGIN: the commit after the write, a slower write). */
  marginMs?: number;
}

export interface GrantSpec {
  requestId: string;
  target: Target;
  ports: PortSpec[];
  sourcePrefix: string;
  expiresAt: number;
  /** Who asked and why (a provider that records them, such as Defender for Cloud, shows them). */
  requester?: PrincipalId;
  justification?: string;
}

export interface NetworkGate {
  /** Writes the allow rules of a grant. Idempotent by rule name. Throws on failure (nothing left open). */
  open(grant: GrantSpec): Promise<AppliedRule[]>;
  /**
   * Deletes every rule this bot wrote for the request. Idempotent. `written` (the request's stored
   * rules) says where they were written: closing must not depend on the VM still being there.
   */
  close(requestId: string, target: Target, written?: AppliedRule[], when?: CloseTiming): Promise<AppliedRule[]>;
  /** Rules this bot owns (for reconciliation and display). */
  list(): Promise<AppliedRule[]>;
  /** Deletes exactly these rules (the reconciler's sweep; works without the request record). */
  remove(rules: AppliedRule[]): Promise<AppliedRule[]>;
  /**
   * Moves a grant's expiry (the NSG rules' description carries it; Defender for Cloud is asked
   * again with the later end time). Rules written anew are returned, for the audit.
   */
  updateExpiry(requestId: string, target: Target, expiresAt: number): Promise<void | AppliedRule[]>;
  /**
   * Targets and port rules the network side defines itself (Defender for Cloud's JIT policies),
   * merged over the policy file's. Absent where only the policy file defines targets.
   */
  policies?(): Promise<NetworkPolicies>;
  /**
   * How long closing these rules (of a grant expiring at `expiresAt`) is expected to take, in ms:
   * from asking for the close to the network confirming it (Azure: the queue per NSG or firewall
   * policy, then ARM's operation until Succeeded), estimated from the gate's own recent writes to
   * the resources the rules live in. The revocation starts this much (plus a margin, within a
   * cap: the service decides) before the expiry, so the rules are gone by then. Absent or 0 where
   * a close takes no noticeable time.
   */
  closeLeadMs?(rules: AppliedRule[], expiresAt: number): number;
  /**
   * "Enable JIT" on a target: Deny-inbound rules for these ports on its path, unless an
   * equivalent deny exists. Returns the rules written. Absent where the network is closed anyway.
   */
  enforce?(target: Target, ports: PortSpec[]): Promise<AppliedRule[]>;
  /**
   * Every VM the network side can see (Azure: the subscriptions' VMs), each supported or not (with
   * the reason). Absent where only the policy file's targets exist.
   */
  inventory?(): Promise<Array<{ id: string; name: string; reason?: string }>>;
  /**
   * What still lets these ports in from anywhere despite "enable JIT": on every NSG of the path the
   * first matching rule is an Allow (e.g. the portal's "RDP from Any" at a lower number than the
   * bot's Deny). Each as `<nsg>/<rule>@<priority> (<port>)`; empty when the ports are closed.
   */
  exposures?(target: Target, ports: PortSpec[]): Promise<string[]>;
  /** Removes only the Deny rules `enforce` wrote. */
  unenforce?(target: Target): Promise<AppliedRule[]>;
}

/** Something happened to a request that people should see (chat adapters render it). */
export interface Notification {
  kind:
    | 'approval_needed'
    | 'approval_progress'
    | 'approved'
    | 'denied'
    | 'timed_out'
    | 'cancelled'
    | 'activated'
    | 'failed'
    | 'extended'
    | 'expired'
    | 'revoked'
    | 'escalated'
    | 'expiring'
    | 'extension_needed'
    | 'extension_denied';
  request: AccessRequest;
  actor: string;
  /** Principals who may decide (for approval_needed, and the added ones for escalated). */
  approvers?: PrincipalId[];
  /** For approval_needed / extension_needed / escalated: where to post (from the policy's routing). */
  route?: ApprovalRoute;
  /** For expiring: the extensions offered (ms), each within the policy's maximum. */
  extendOptionsMs?: number[];
}

export interface Notifier {
  notify(n: Notification): Promise<void>;
  /** Every audit event, for audit channels. */
  audit(event: AuditEvent): Promise<void>;
}

/** Counts events per key in fixed windows (shared by all replicas). */
export interface RateLimiter {
  hit(key: string, limit: number, windowMs: number): Promise<{ allowed: boolean; retryAfterMs: number }>;
}

export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export interface IdSource {
  requestId(): RequestId;
  token(): string;
}

/** Operational counters the adapters report (Prometheus). */
export interface OpsMetrics {
  /** A chat platform API call failed (after its own retries). */
  chatApiError(platform: string, code: string): void;
  /** A chat platform asked us to wait (HTTP 429 Retry-After). */
  chatRateLimited(platform: string, seconds: number): void;
}

/**
 * A directory that backs policy groups (Microsoft Graph for Entra ID groups, Slack's user groups).
 * `members` lists every person in the group (nested groups flattened), or throws when the
 * directory cannot be read: never a partial list.
 */
export interface GroupDirectory {
  /** The key that names it in the policy file's groups (`entra`, `slack`). */
  readonly kind: string;
  /** The chat platform whose user ids its member ids are (pins in `principals.<p>.<platform>`). */
  readonly pinPlatform: string;
  /** How messages name one of its groups (`Entra ID group <id>`). */
  label(groupId: string): string;
  members(groupId: string): Promise<DirectoryMember[]>;
}
