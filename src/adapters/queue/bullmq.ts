// The Scheduler port on BullMQ: one delayed revocation job per grant and one approval-timeout
// job per pending request, each with jobId = request id, so a retry or a second replica cannot
// schedule it twice; workflow jobs (escalation, delayed start) as `<kind>-<id>`. The worker runs
// them with retries and drains on shutdown. Expiry reminders are timers in one sorted set
// (timers.ts), run by the same worker.
import { DelayedError, Queue, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { JobHandlers, JobOutcome, Scheduler, WorkflowJob } from '../../app/ports.js';
import { RedisTimers, type TimerOptions } from './timers.js';

export const REVOKE_QUEUE = 'jit-revoke';
export const APPROVAL_QUEUE = 'jit-approval-timeout';
export const WORKFLOW_QUEUE = 'jit-workflow';

/**
 * What a job carries: only when it is due. The request (and the workflow kind) is the job id:
 * `<requestId>`, `<kind>-<requestId>`. Jobs written by older versions also carry `requestId` and
 * `kind`; they are read the same way.
 */
interface JobData {
  /** When the job is meant to run (epoch ms); kept in the data because `changeDelay` keeps `timestamp`. */
  dueAt: number;
  /** Failed attempts so far (see RETRY). */
  failed?: number;
  requestId?: string;
  kind?: WorkflowJob;
}

/**
 * A revocation must not give up quietly: 12 attempts with exponential backoff from 1 s (1, 2, 4 …
 * 1,024 s: about 34 minutes); after that the job is kept as failed for 7 days (for inspection) and
 * the reconciler's sweep is the second line. The worker does the retries itself (moveToDelayed)
 * instead of BullMQ's `attempts` / `backoff` job options, and completed / failed jobs are removed
 * by the worker's options: a job's options then hold only its id and delay, every field of its
 * hash stays under Redis's `hash-max-listpack-value` (64 bytes) and the hash is a compact listpack
 * (~170 B) instead of a hash table (~700 B). See docs/benchmarks.md, "Footprint".
 */
export const RETRY = { attempts: 12, firstDelayMs: 1000 } as const;
/** The backoff after the n-th failed attempt (n ≥ 1). */
export const retryDelayMs = (failed: number, first: number = RETRY.firstDelayMs): number => first * 2 ** (failed - 1);

/** Completed jobs are removed so the id is free (the audit log is the record); failed ones kept 7 days. */
const REMOVE_ON_COMPLETE = { count: 0 };
const REMOVE_ON_FAIL = { age: 7 * 86_400 };
/** BullMQ's per-queue event stream (for QueueEvents, which jit-bot does not use): keep it short. */
const EVENTS_MAX_LEN = 100;

/**
 * Workflow kinds kept as timers in one sorted set (timers.ts) rather than BullMQ jobs: one per
 * active grant, so their footprint counts (docs/benchmarks.md, "Footprint"). Jobs of these kinds
 * written by older versions still run (the workflow worker reads every kind).
 */
const TIMER_KINDS: ReadonlySet<WorkflowJob> = new Set(['remind']);
const timersKey = (prefix: string) => `${prefix}:jit-reminders`;

/** The request id (and workflow kind) of a job, from its id (or, for older jobs, its data). */
export function jobSubject(queue: string, jobId: string, data: JobData): { requestId: string; kind?: WorkflowJob } {
  if (queue !== WORKFLOW_QUEUE) return { requestId: data.requestId ?? jobId };
  const dash = jobId.indexOf('-');
  const kind = data.kind ?? (jobId.slice(0, dash) as WorkflowJob);
  return { requestId: data.requestId ?? jobId.slice(dash + 1), kind };
}

export interface BullOptions {
  /** An ioredis connection created with `maxRetriesPerRequest: null` (BullMQ's requirement). */
  connection: Redis;
  /** Key prefix of the queues (each test suite uses its own). */
  prefix: string;
}

export class BullScheduler implements Scheduler {
  readonly revoke: Queue<JobData>;
  readonly approval: Queue<JobData>;
  readonly workflow: Queue<JobData>;
  readonly timers: RedisTimers;

  constructor(opts: BullOptions) {
    this.timers = new RedisTimers(opts.connection, timersKey(opts.prefix));
    const queue = (name: string) => new Queue<JobData>(name, { connection: opts.connection, prefix: opts.prefix, streams: { events: { maxLen: EVENTS_MAX_LEN } } });
    this.workflow = queue(WORKFLOW_QUEUE);
    this.revoke = queue(REVOKE_QUEUE);
    this.approval = queue(APPROVAL_QUEUE);
  }

  scheduleExpiry(requestId: string, at: number): Promise<void> {
    return this.put(this.revoke, 'expire', requestId, at, false);
  }

  rescheduleExpiry(requestId: string, at: number): Promise<void> {
    return this.put(this.revoke, 'expire', requestId, at, true);
  }

  async cancelExpiry(requestId: string): Promise<void> {
    // 0 when the job is running right now: it re-reads the request and closes what it must.
    await this.revoke.remove(requestId);
  }

  scheduleApprovalTimeout(requestId: string, at: number): Promise<void> {
    return this.put(this.approval, 'timeout', requestId, at, true);
  }

  async cancelApprovalTimeout(requestId: string): Promise<void> {
    await this.approval.remove(requestId);
  }

  scheduleWorkflow(kind: WorkflowJob, requestId: string, at: number): Promise<void> {
    if (TIMER_KINDS.has(kind)) return this.timers.schedule(`${kind}-${requestId}`, at);
    return this.put(this.workflow, kind, `${kind}-${requestId}`, at, true);
  }

  async cancelWorkflow(kind: WorkflowJob, requestId: string): Promise<void> {
    // A timer kind may also have a BullMQ job written by an older version: cancel both.
    if (TIMER_KINDS.has(kind)) await this.timers.cancel(`${kind}-${requestId}`);
    await this.workflow.remove(`${kind}-${requestId}`);
  }

  async workflowDueAt(kind: WorkflowJob, requestId: string): Promise<number | null> {
    if (TIMER_KINDS.has(kind)) {
      const at = await this.timers.dueAt(`${kind}-${requestId}`);
      if (at !== null) return at;
    }
    return this.dueAt(this.workflow, `${kind}-${requestId}`);
  }

  async expiryDueAt(requestId: string): Promise<number | null> {
    return this.dueAt(this.revoke, requestId);
  }

  async approvalDueAt(requestId: string): Promise<number | null> {
    return this.dueAt(this.approval, requestId);
  }

  /** Job state, for status and tests: delayed, waiting, active, failed, or null if there is none. */
  async expiryState(requestId: string): Promise<string | null> {
    const job = await this.revoke.getJob(requestId);
    return job ? job.getState() : null;
  }

  /** Job counts per queue and state (for metrics). */
  async counts(): Promise<Record<string, Record<string, number>>> {
    const states = ['delayed', 'waiting', 'active', 'failed'] as const;
    const [revoke, approval, workflow] = await Promise.all([this.revoke, this.approval, this.workflow].map((q) => q.getJobCounts(...states)));
    return { revoke: revoke!, approval: approval!, workflow: workflow! };
  }

  async close(): Promise<void> {
    await Promise.all([this.revoke.close(), this.approval.close(), this.workflow.close()]);
  }

  private async dueAt(queue: Queue<JobData>, id: string): Promise<number | null> {
    const job = await queue.getJob(id);
    if (!job) return null;
    const state = await job.getState();
    return state === 'delayed' || state === 'waiting' || state === 'active' || state === 'prioritized' ? job.data.dueAt : null;
  }

  /**
   * Adds the job, or (with `move`) moves an existing one to `at`. A job that is already running
   * keeps running: its handler re-reads the request and answers `retryAt` if it is early.
   */
  private async put(queue: Queue<JobData>, name: string, id: string, at: number, move: boolean): Promise<void> {
    const data: JobData = { dueAt: at };
    for (let attempt = 0; attempt < 5; attempt++) {
      const existing = await queue.getJob(id);
      if (existing) {
        const state = await existing.getState();
        if (state === 'delayed' || state === 'waiting' || state === 'prioritized' || state === 'active') {
          if (!move || existing.data.dueAt === at) return;
          try {
            if (state === 'delayed') await existing.changeDelay(Math.max(1, at - Date.now()));
            await existing.updateData(data);
            return;
          } catch {
            continue; // it changed state under us (promoted, started): look again
          }
        }
        // completed / failed / unknown: free the id.
        await queue.remove(id);
      }
      const job = await queue.add(name, data, { jobId: id, delay: Math.max(0, at - Date.now()) });
      if (job.data.dueAt === at || !move) return;
    }
    throw new Error(`could not schedule ${name} for ${id}: the job kept changing state`);
  }
}

export interface WorkerOptions extends BullOptions {
  handlers: JobHandlers;
  /** Called with failures (they are retried) and connection errors. */
  log: (msg: string, err?: unknown) => void;
  concurrency?: number;
  /** Attempts and first backoff (default RETRY; tests shorten them). */
  retry?: { attempts: number; firstDelayMs: number };
  /** The reminder timers' polling (default timers.ts's; tests shorten it). */
  timers?: TimerOptions;
}

/** How long close() waits for a worker's running jobs (a network write retries for up to ~25 s). */
const CLOSE_WAIT_MS = 30_000;

/** Runs both queues. `close()` stops taking jobs and waits for the running ones (graceful drain). */
export class BullWorker {
  private readonly workers: Worker<JobData>[];
  private readonly log: WorkerOptions['log'];
  private readonly timers: RedisTimers;
  private closing: Promise<void> | null = null;

  constructor(opts: WorkerOptions) {
    this.log = opts.log;
    const concurrency = opts.concurrency ?? 50;
    const retry = opts.retry ?? RETRY;
    // Errors this worker has logged already (a last attempt): the 'failed' event does not log them twice.
    const logged = new WeakSet<Error>();
    const make = (queue: string, handle: (subject: { requestId: string; kind?: WorkflowJob }) => Promise<JobOutcome>) => {
      const worker = new Worker<JobData>(
        queue,
        async (job: Job<JobData>, token?: string) => {
          let outcome: JobOutcome;
          try {
            outcome = await handle(jobSubject(queue, job.id ?? '', job.data));
          } catch (err) {
            const failed = (job.data.failed ?? 0) + 1;
            const msg = err instanceof Error ? err.message : String(err);
            if (failed >= retry.attempts) {
              opts.log(`${queue} job ${job.id ?? '?'} failed (attempt ${failed} of ${retry.attempts}, giving up): ${msg}`, err);
              if (err instanceof Error) logged.add(err);
              throw err; // kept as failed (REMOVE_ON_FAIL); the reconciler is the second line
            }
            const delay = retryDelayMs(failed, retry.firstDelayMs);
            opts.log(`${queue} job ${job.id ?? '?'} failed (attempt ${failed} of ${retry.attempts}, retried in ${delay / 1000} s): ${msg}`, err);
            await job.updateData({ ...job.data, failed });
            await job.moveToDelayed(Date.now() + delay, token);
            throw new DelayedError();
          }
          if (outcome && outcome.retryAt > Date.now()) {
            await job.updateData({ dueAt: outcome.retryAt });
            await job.moveToDelayed(outcome.retryAt, token);
            throw new DelayedError();
          }
        },
        {
          connection: opts.connection,
          prefix: opts.prefix,
          concurrency,
          removeOnComplete: REMOVE_ON_COMPLETE,
          removeOnFail: REMOVE_ON_FAIL,
          // A job whose process died (SIGKILL, OOM, node lost) is retried within ~15 s rather than
          // BullMQ's default ~60 s: the lock is renewed every 5 s while a job runs, so a slow
          // network write keeps it; a dead process stops renewing and the check every 5 s finds it.
          lockDuration: 10_000,
          stalledInterval: 5_000,
          maxStalledCount: 5,
        },
      );
      worker.on('failed', (job, err) => {
        if (err instanceof DelayedError || err.name === 'DelayedError' || logged.has(err)) return;
        opts.log(`${queue} job ${job?.id ?? '?'} failed (attempt ${job?.attemptsMade ?? '?'}): ${err.message}`, err);
      });
      worker.on('error', (err) => opts.log(`${queue} worker error: ${err.message}`, err));
      return worker;
    };
    this.workers = [
      make(REVOKE_QUEUE, (s) => opts.handlers.expire(s.requestId)),
      make(APPROVAL_QUEUE, (s) => opts.handlers.timeoutApproval(s.requestId)),
      make(WORKFLOW_QUEUE, (s) => (s.kind ? opts.handlers.workflow(s.kind, s.requestId) : Promise.resolve())),
    ];
    this.timers = new RedisTimers(opts.connection, timersKey(opts.prefix), opts.timers);
    this.timers.start((id) => {
      const s = jobSubject(WORKFLOW_QUEUE, id, { dueAt: 0 });
      return s.kind ? opts.handlers.workflow(s.kind, s.requestId) : Promise.resolve();
    }, opts.log);
  }

  running(): boolean {
    return this.closing === null && this.workers.every((w) => w.isRunning());
  }

  close(): Promise<void> {
    // A worker closed while it is still connecting leaves its connections' rejections unhandled:
    // let it finish connecting first (bounded, in case Redis is gone).
    const ready = (w: Worker<JobData>) => Promise.race([w.waitUntilReady().catch(() => undefined), new Promise((r) => setTimeout(r, 2000).unref())]);
    // BullMQ's close waits for its blocking connection's 'end', which a connection caught between
    // a Redis outage and its reconnect never emits (taskforcesh/bullmq#4656): the drain would hang
    // for ever. Running jobs get CLOSE_WAIT_MS to finish; then the close is given up (logged).
    const closed = (w: Worker<JobData>) =>
      Promise.race([
        w.close().then(() => true),
        new Promise<false>((r) => setTimeout(() => r(false), CLOSE_WAIT_MS).unref()),
      ]).then((done) => {
        if (!done) this.log(`${w.name} worker: close did not finish within ${CLOSE_WAIT_MS / 1000} s (a Redis connection stuck reconnecting); given up`);
      });
    this.closing ??= Promise.all([...this.workers.map(async (w) => (await ready(w), closed(w))), this.timers.stop()]).then(() => undefined);
    return this.closing;
  }
}
