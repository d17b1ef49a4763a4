// In-memory fakes of the ports (src/app/ports.ts), for use-case tests that run in milliseconds:
// a store with the real compare-and-set semantics (version check, audit in the same step), an
// audit log, a scheduler driven by a ManualClock, a network gate whose every write a test can
// pause, fail or let through, and a notifier that records. What only Redis or BullMQ can show
// (Lua atomicity across replicas, delayed jobs surviving a restart) stays in test/integration.
import type {
  AuditLog,
  AuditQuery,
  AuditScope,
  GrantSpec,
  JobHandlers,
  JobOutcome,
  ListFilter,
  NetworkGate,
  Notification,
  Notifier,
  RequestStore,
  Scheduler,
  WorkflowJob,
} from '../../src/app/ports.js';
import type { AccessRequest, AppliedRule, AuditEvent, PrincipalId, Target } from '../../src/core/types.js';
import type { ManualClock } from './clock.js';
import { Holds } from './gates.js';
import { p } from '../fixtures/ids.js';

const copy = <T>(v: T): T => structuredClone(v);

export class MemoryAuditLog implements AuditLog {
  readonly events: AuditEvent[] = [];
  private seq = 0;
  /** Who asked for a request (the store tells it: Redis keeps a per-requester index for this). */
  requesterOf: (requestId: string) => PrincipalId | undefined = () => undefined;

  async append(event: AuditEvent): Promise<AuditEvent> {
    const stored = { ...copy(event), id: `${event.time}-${this.seq++}` };
    this.events.push(stored);
    return copy(stored);
  }

  async list(query: AuditQuery = {}): Promise<AuditEvent[]> {
    return this.events
      .filter((e) => (query.requestId === undefined || e.requestId === query.requestId) && (query.since === undefined || e.time >= query.since))
      .slice(0, query.limit ?? 1000)
      .map(copy);
  }

  async listScoped(scope: AuditScope): Promise<{ events: AuditEvent[]; truncated: boolean }> {
    const targets = new Set(scope.target === undefined ? scope.targets : scope.targets.filter((t) => t === scope.target));
    const own = (e: AuditEvent) => {
      const requester = this.requesterOf(e.requestId);
      return requester !== undefined && scope.requesters.includes(requester);
    };
    const hit = this.events.filter((e) => e.time >= scope.since && (targets.has(e.target) || own(e)) && (scope.target === undefined || e.target === scope.target));
    const newest = hit.slice(-scope.limit);
    return { events: newest.map(copy), truncated: hit.length > scope.limit };
  }

  /** The actions recorded for one request, in order. */
  actions(requestId: string): string[] {
    return this.events.filter((e) => e.requestId === requestId).map((e) => e.action);
  }
}

export type StorePoint = 'cas' | 'get';

/**
 * Requests in a Map, with RedisRequestStore's contract: `compareAndSet` replaces only when the
 * stored version matches, stores version + 1 and appends the events in the same step. `holds`
 * pauses a compare-and-set (before its version check) or a read, so a test can commit something
 * else in between.
 */
export class MemoryStore implements RequestStore {
  readonly holds = new Holds<StorePoint>();
  private readonly requests = new Map<string, AccessRequest>();
  private readonly order: string[] = [];
  private readonly tokens = new Map<string, { id: string; until: number }>();

  constructor(
    private readonly audit: MemoryAuditLog,
    private readonly clock: ManualClock,
  ) {
    audit.requesterOf = (id) => this.requests.get(id)?.requester;
  }

  async create(request: AccessRequest, events: AuditEvent[]): Promise<boolean> {
    if (this.requests.has(request.id)) return false;
    this.requests.set(request.id, copy({ ...request, version: 1 }));
    this.order.push(request.id);
    for (const e of events) await this.audit.append(e);
    return true;
  }

  async get(id: string): Promise<AccessRequest | null> {
    await this.holds.pass('get', id);
    const r = this.requests.get(id);
    return r ? copy(r) : null;
  }

  async compareAndSet(next: AccessRequest, expectedVersion: number, events: AuditEvent[]): Promise<boolean> {
    await this.holds.pass('cas', next);
    const cur = this.requests.get(next.id);
    if (!cur || cur.version !== expectedVersion) return false;
    this.requests.set(next.id, copy({ ...next, version: expectedVersion + 1 }));
    for (const e of events) await this.audit.append(e);
    return true;
  }

  async list(filter: ListFilter): Promise<AccessRequest[]> {
    const out: AccessRequest[] = [];
    for (const id of [...this.order].reverse()) {
      const r = this.requests.get(id);
      if (!r) continue;
      if (filter.requester !== undefined && r.requester !== filter.requester) continue;
      if (filter.target !== undefined && r.target !== filter.target) continue;
      if (filter.status !== undefined && r.status !== filter.status) continue;
      out.push(copy(r));
      if (out.length >= (filter.limit ?? 50)) break;
    }
    return out;
  }

  async getMany(ids: string[]): Promise<Array<AccessRequest | null>> {
    return ids.map((id) => {
      const r = this.requests.get(id);
      return r ? copy(r) : null;
    });
  }

  async putSourceToken(token: string, requestId: string, ttlMs: number): Promise<void> {
    this.tokens.set(token, { id: requestId, until: this.clock.now() + ttlMs });
  }

  async takeSourceToken(token: string): Promise<string | null> {
    const id = await this.peekSourceToken(token);
    this.tokens.delete(token);
    return id;
  }

  async peekSourceToken(token: string): Promise<string | null> {
    const t = this.tokens.get(token);
    return t && t.until > this.clock.now() ? t.id : null;
  }

  /** Redis lost its data (FLUSHALL): every request and token gone. */
  clear(): void {
    this.requests.clear();
    this.order.length = 0;
    this.tokens.clear();
  }
}

export type JobKind = 'expire' | 'timeout' | WorkflowJob;
export interface ScheduledJob {
  kind: JobKind;
  requestId: string;
  at: number;
}

/**
 * The Scheduler port on a ManualClock: jobs wait in a map (one per kind and request, as BullMQ's
 * job ids make them) and run only in `runDue`, when the clock has reached them. A handler's
 * `retryAt` puts the job back; a handler that throws is tried again a second later.
 */
export class ManualScheduler implements Scheduler {
  private readonly jobs = new Map<string, ScheduledJob>();
  /** Every job run, in order, with what it answered. */
  readonly ran: Array<ScheduledJob & { outcome: JobOutcome | 'threw' }> = [];

  constructor(private readonly clock: ManualClock) {}

  private key = (kind: JobKind, id: string) => `${kind}:${id}`;

  private put(kind: JobKind, requestId: string, at: number, keep: boolean): void {
    const k = this.key(kind, requestId);
    if (keep && this.jobs.has(k)) return;
    this.jobs.set(k, { kind, requestId, at });
  }

  async scheduleExpiry(id: string, at: number): Promise<void> {
    this.put('expire', id, at, true);
  }
  async rescheduleExpiry(id: string, at: number): Promise<void> {
    this.put('expire', id, at, false);
  }
  async cancelExpiry(id: string): Promise<void> {
    this.jobs.delete(this.key('expire', id));
  }
  async scheduleApprovalTimeout(id: string, at: number): Promise<void> {
    this.put('timeout', id, at, true);
  }
  async cancelApprovalTimeout(id: string): Promise<void> {
    this.jobs.delete(this.key('timeout', id));
  }
  async expiryDueAt(id: string): Promise<number | null> {
    return this.jobs.get(this.key('expire', id))?.at ?? null;
  }
  async scheduleWorkflow(kind: WorkflowJob, id: string, at: number): Promise<void> {
    this.put(kind, id, at, false);
  }
  async cancelWorkflow(kind: WorkflowJob, id: string): Promise<void> {
    this.jobs.delete(this.key(kind, id));
  }

  /** The job of this kind for the request, if one is waiting. */
  job(kind: JobKind, id: string): ScheduledJob | undefined {
    return this.jobs.get(this.key(kind, id));
  }

  /** A job lost (a crash before it was written, a flushed Redis). */
  drop(kind: JobKind, id: string): void {
    this.jobs.delete(this.key(kind, id));
  }

  /** Runs one job now, as the worker would when it fires (whether or not it is due). */
  async fire(handlers: JobHandlers, job: ScheduledJob): Promise<JobOutcome> {
    const k = this.key(job.kind, job.requestId);
    if (this.jobs.get(k) === job) this.jobs.delete(k);
    let outcome: JobOutcome;
    try {
      outcome =
        job.kind === 'expire' ? await handlers.expire(job.requestId) : job.kind === 'timeout' ? await handlers.timeoutApproval(job.requestId) : await handlers.workflow(job.kind, job.requestId);
    } catch (err) {
      this.ran.push({ ...job, outcome: 'threw' });
      if (!this.jobs.has(k)) this.jobs.set(k, { ...job, at: this.clock.now() + 1000 });
      return;
    }
    this.ran.push({ ...job, outcome });
    // "Not yet": the same job again at the time named, unless it was rescheduled while running.
    if (outcome && !this.jobs.has(k)) this.jobs.set(k, { ...job, at: outcome.retryAt });
    return outcome;
  }

  /** Runs every job due by the clock, earliest first, until none is due. */
  async runDue(handlers: JobHandlers): Promise<number> {
    let n = 0;
    for (;;) {
      const due = [...this.jobs.values()].filter((j) => j.at <= this.clock.now()).sort((a, b) => a.at - b.at)[0];
      if (!due) return n;
      await this.fire(handlers, due);
      if (++n > 1000) throw new Error('runDue: a job keeps coming back due (a retry loop)');
    }
  }

  /** Moves the clock to each job's time in turn and runs it, up to `until`. */
  async runUntil(handlers: JobHandlers, until: number): Promise<void> {
    for (;;) {
      await this.runDue(handlers);
      const next = [...this.jobs.values()].map((j) => j.at).filter((at) => at <= until).sort((a, b) => a - b)[0];
      if (next === undefined) break;
      this.clock.set(Math.max(next, this.clock.now()));
    }
    this.clock.set(Math.max(until, this.clock.now()));
  }
}

export type GatePoint = 'open:before' | 'open:after' | 'close:before' | 'list' | 'remove:before' | 'update';

/**
 * A NetworkGate in memory, with the real gates' contract: `open` is idempotent by rule name and
 * all or nothing, `close` deletes every rule of the request, `remove` exactly the rules given.
 * `holds` pauses any operation at a point (e.g. `open:after`: the rule is written but `open` has
 * not returned: a crash there leaves a rule the store does not know of); `failNext` makes one throw.
 */
export class MemoryGate implements NetworkGate {
  readonly holds = new Holds<GatePoint>();
  private readonly rules = new Map<string, AppliedRule>();
  private failures: Array<{ op: 'open' | 'close' | 'update' | 'remove'; err: Error }> = [];
  private priority = 100;
  /** The close lead the gate estimates (ms), as Azure's does from its recent writes. */
  closeLeadEstimateMs = 0;

  private fail(op: 'open' | 'close' | 'update' | 'remove'): void {
    const i = this.failures.findIndex((f) => f.op === op);
    if (i >= 0) throw this.failures.splice(i, 1)[0]!.err;
  }

  failNext(op: 'open' | 'close' | 'update' | 'remove', message = `${op} failed (test)`): void {
    this.failures.push({ op, err: new Error(message) });
  }

  scopeOf(target: Target): string {
    return `${target.id}-nsg`;
  }

  async open(grant: GrantSpec): Promise<AppliedRule[]> {
    await this.holds.pass('open:before', grant.requestId);
    this.fail('open');
    const scope = this.scopeOf(grant.target);
    const written: AppliedRule[] = [];
    for (const p of grant.ports) {
      const name = `jit-${grant.requestId}-${p.port}`;
      const existing = this.rules.get(`${scope}|${name}`);
      const rule: AppliedRule = existing ?? {
        name, scope, priority: this.priority++, direction: 'Inbound', access: 'Allow', protocol: p.protocol, sourcePrefix: grant.sourcePrefix,
        destinationPort: p.port, description: `jit-bot request=${grant.requestId}`, requestId: grant.requestId, expiresAt: grant.expiresAt,
      };
      written.push(rule);
    }
    for (const r of written) this.rules.set(`${r.scope}|${r.name}`, r);
    await this.holds.pass('open:after', grant.requestId);
    return written.map(copy);
  }

  async close(requestId: string, _target: Target, _written?: AppliedRule[]): Promise<AppliedRule[]> {
    await this.holds.pass('close:before', requestId);
    this.fail('close');
    const gone = [...this.rules.entries()].filter(([, r]) => r.requestId === requestId);
    for (const [k] of gone) this.rules.delete(k);
    return gone.map(([, r]) => copy(r));
  }

  async list(): Promise<AppliedRule[]> {
    const snapshot = [...this.rules.values()].map(copy);
    await this.holds.pass('list');
    return snapshot;
  }

  async remove(rules: AppliedRule[]): Promise<AppliedRule[]> {
    await this.holds.pass('remove:before');
    this.fail('remove');
    const gone: AppliedRule[] = [];
    for (const r of rules) {
      const k = `${r.scope}|${r.name}`;
      const hit = this.rules.get(k);
      if (!hit) continue;
      this.rules.delete(k);
      gone.push(copy(hit));
    }
    return gone;
  }

  async updateExpiry(requestId: string, _target: Target, expiresAt: number): Promise<void> {
    await this.holds.pass('update', requestId);
    this.fail('update');
    for (const r of this.rules.values()) if (r.requestId === requestId) r.expiresAt = expiresAt;
  }

  closeLeadMs(): number {
    return this.closeLeadEstimateMs;
  }

  /** The rules open for a request now. */
  rulesOf(requestId: string): AppliedRule[] {
    return [...this.rules.values()].filter((r) => r.requestId === requestId).map(copy);
  }
}

export class RecordingNotifier implements Notifier {
  readonly sent: Notification[] = [];
  async notify(n: Notification): Promise<void> {
    this.sent.push(copy(n));
  }
  async audit(): Promise<void> {}
  kinds(requestId: string): string[] {
    return this.sent.filter((n) => n.request.id === requestId).map((n) => n.kind);
  }
}
