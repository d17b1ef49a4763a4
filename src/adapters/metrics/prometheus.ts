// Prometheus metrics (prom-client) at GET /metrics: requests by outcome, time to decision and to
// open, active grants, revocation lag past expiry, network write latency and errors by code (and
// ARM's retried answers), BullMQ queue depths, chat API errors and rate-limit waits, and the
// process's own metrics. Counts and durations only: no ids, names or addresses in labels.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CloseTiming, GrantSpec, NetworkGate, Notification, Notifier, OpsMetrics } from '../../app/ports.js';
import type { AccessRequest, AppliedRule, AuditEvent, Target } from '../../core/types.js';

const OUTCOMES: Partial<Record<AuditEvent['action'], string>> = {
  'request.created': 'created',
  'request.approved': 'approved',
  'request.denied': 'denied',
  'request.timed_out': 'timed_out',
  'request.cancelled': 'cancelled',
  'grant.activated': 'activated',
  'grant.failed': 'failed',
  'grant.extended': 'extended',
  'grant.expired': 'expired',
  'grant.revoked': 'revoked',
};

export interface MetricsSources {
  /** Requests in a status (active grants). */
  countByStatus(status: AccessRequest['status']): Promise<number>;
  /** BullMQ job counts per queue and state. */
  queueCounts(): Promise<Record<string, Record<string, number>>>;
  /** The network gate's own call statistics (the Azure gate's ARM answers and retries), if it keeps any. */
  gateStats?(): GateStats | undefined;
}

/** Counts since the gate started (monotonic): answers by call and answer class, writes retried. */
export interface GateStats {
  answers: Array<{ call: string; answer: string; count: number }>;
  retries: number;
}

/**
 * prom-client's default gauges whose names end in `_total` (promtool lint: "non-counter metrics
 * should not have _total suffix"). Each is the sum over `type` of the gauge of the same name
 * without `_total` (nodejs_active_handles{type} …), which stays.
 */
const DEFAULT_GAUGES_NAMED_TOTAL = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export class PrometheusMetrics implements Notifier, OpsMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'outcome'>;
  private readonly decision: Histogram<'decision'>;
  private readonly toOpen: Histogram;
  private readonly lag: Histogram;
  private readonly writeSeconds: Histogram<'op'>;
  private readonly writeErrors: Counter<'op' | 'code'>;
  private readonly chatErrors: Counter<'platform' | 'code'>;
  private readonly chatWait: Counter<'platform'>;
  private readonly sweeps: Counter<'result'>;
  private readonly reconciled: Counter;

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    // The standard process_* / nodejs_* names (no prefix), so stock dashboards and alerts work.
    collectDefaultMetrics({ register: this.registry });
    for (const name of DEFAULT_GAUGES_NAMED_TOTAL) this.registry.removeSingleMetric(name);
    this.requests = new Counter({ name: 'jit_requests_total', help: 'Access requests by outcome (each state change counted once).', labelNames: ['outcome'], registers });
    this.decision = new Histogram({ name: 'jit_time_to_decision_seconds', help: 'From request to the approval or denial that decided it.', labelNames: ['decision'], buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 14400], registers });
    this.toOpen = new Histogram({ name: 'jit_time_to_open_seconds', help: 'From approval to the rule being open on the network.', buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60], registers });
    this.lag = new Histogram({ name: 'jit_revocation_lag_seconds', help: 'How late past its expiry a grant was closed by its revocation job.', buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 15, 60], registers });
    this.writeSeconds = new Histogram({ name: 'jit_network_write_seconds', help: 'Network writes (open, close, remove, update) as the service sees them, retries included.', labelNames: ['op'], buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60], registers });
    this.writeErrors = new Counter({ name: 'jit_network_write_errors_total', help: 'Network writes that failed, by error code.', labelNames: ['op', 'code'], registers });
    this.chatErrors = new Counter({ name: 'jit_chat_api_errors_total', help: 'Chat platform API calls that failed, by platform and error code.', labelNames: ['platform', 'code'], registers });
    this.chatWait = new Counter({ name: 'jit_chat_rate_limit_wait_seconds_total', help: 'Seconds spent waiting out chat platform rate limits (429 Retry-After).', labelNames: ['platform'], registers });
    this.sweeps = new Counter({ name: 'jit_reconcile_sweeps_total', help: 'Reconciler sweeps this replica ran (one replica holds the lease at a time), by result.', labelNames: ['result'], registers });
    this.reconciled = new Counter({ name: 'jit_reconciled_rules_total', help: 'Rules the reconciler closed because they outlived their grant.', registers });
    new Gauge({
      name: 'jit_active_grants',
      help: 'Grants open now.',
      registers,
      async collect() {
        this.set(await sources.countByStatus('active'));
      },
    });
    new Gauge({
      name: 'jit_pending_requests',
      help: 'Requests waiting for a decision.',
      registers,
      async collect() {
        this.set(await sources.countByStatus('pending'));
      },
    });
    new Gauge({
      name: 'jit_queue_jobs',
      help: 'BullMQ jobs by queue and state (delayed = scheduled revocations, timeouts, reminders).',
      labelNames: ['queue', 'state'],
      registers,
      async collect() {
        this.reset();
        for (const [queue, counts] of Object.entries(await sources.queueCounts())) for (const [state, n] of Object.entries(counts)) this.set({ queue, state }, n);
      },
    });
    // Counters read from the gate's own monotonic tallies at scrape time.
    new Counter({
      name: 'jit_network_arm_answers_total',
      help: 'Azure Resource Manager calls of the Azure gate by call (read, write) and answer: ok, 404, 409, 412, 429, 4xx, 5xx, timeout, network, failed.',
      labelNames: ['call', 'answer'],
      registers,
      collect() {
        this.reset();
        for (const a of sources.gateStats?.()?.answers ?? []) this.inc({ call: a.call, answer: a.answer }, a.count);
      },
    });
    new Counter({
      name: 'jit_network_arm_write_retries_total',
      help: 'Read-modify-write rounds of the Azure gate retried after a refused or failed write (409, 412, 429, 5xx, timeout).',
      registers,
      collect() {
        this.reset();
        const stats = sources.gateStats?.();
        if (stats) this.inc(stats.retries);
      },
    });
  }

  // ---------------------------------------------------------------- Notifier (fed every event)

  async audit(event: AuditEvent): Promise<void> {
    const outcome = OUTCOMES[event.action];
    if (outcome) this.requests.inc({ outcome });
    if (event.action === 'grant.expired' && typeof event.details.lateMs === 'number') this.lag.observe(Math.max(0, event.details.lateMs) / 1000);
  }

  async notify(n: Notification): Promise<void> {
    const r = n.request;
    if (n.kind === 'approved' || n.kind === 'denied') {
      const last = r.decisions.at(-1);
      this.decision.observe({ decision: n.kind }, Math.max(0, ((last?.at ?? Date.now()) - r.createdAt) / 1000));
    }
    if (n.kind === 'activated' && r.activatedAt !== undefined) {
      const approvedAt = Math.max(r.createdAt, r.startAt ?? 0, ...r.decisions.filter((d) => d.decision === 'approve').map((d) => d.at));
      this.toOpen.observe(Math.max(0, (r.activatedAt - approvedAt) / 1000));
    }
  }

  // ---------------------------------------------------------------- OpsMetrics (chat adapters)

  chatApiError(platform: string, code: string): void {
    this.chatErrors.inc({ platform, code: code.slice(0, 64) });
  }

  chatRateLimited(platform: string, seconds: number): void {
    this.chatWait.inc({ platform }, Math.max(0, seconds));
  }

  /** A reconciler sweep ran on this replica. */
  sweep(ok: boolean, removed: number): void {
    this.sweeps.inc({ result: ok ? 'ok' : 'failed' });
    if (removed > 0) this.reconciled.inc(removed);
  }

  // ---------------------------------------------------------------- network writes

  /** The gate, with every write timed and its failures counted by code. */
  meter<G extends NetworkGate>(gate: G): G {
    const timed = <A extends unknown[], R>(op: string, fn: (...a: A) => Promise<R>) => async (...a: A): Promise<R> => {
      const end = this.writeSeconds.startTimer({ op });
      try {
        return await fn(...a);
      } catch (err) {
        const e = err as { code?: unknown; statusCode?: unknown };
        this.writeErrors.inc({ op, code: String(e.code ?? e.statusCode ?? 'error').slice(0, 64) });
        throw err;
      } finally {
        end();
      }
    };
    const overrides: Partial<Record<PropertyKey, unknown>> = {
      open: timed('open', (g: GrantSpec) => gate.open(g)),
      // Every argument passed on: close() works from the rules as written (`written`).
      close: timed('close', (id: string, t: Target, written?: AppliedRule[], when?: CloseTiming) => gate.close(id, t, written, when)),
      remove: timed('remove', (rules: AppliedRule[]) => gate.remove(rules)),
      updateExpiry: timed('update', (id: string, t: Target, at: number) => gate.updateExpiry(id, t, at)),
    };
    // A proxy, so every other member is the gate's own (bound to it; its state stays in one place).
    return new Proxy(gate, {
      get(target, prop) {
        if (prop in overrides) return overrides[prop];
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  }

  /** GET /metrics */
  route() {
    return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> => {
      if (url.pathname !== '/metrics' || req.method !== 'GET') return false;
      const body = await this.registry.metrics();
      res.writeHead(200, { 'content-type': this.registry.contentType, 'cache-control': 'no-store' });
      res.end(body);
      return true;
    };
  }
}
