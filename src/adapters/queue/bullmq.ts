// The Scheduler port on BullMQ: one delayed revocation job per grant and one approval-timeout
// job per pending request, each with jobId = request id, so a retry or a second replica cannot
// schedule it twice. The worker runs them with retries and drains on shutdown.
import { DelayedError, Queue, Worker, type Job, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { JobHandlers, JobOutcome, Scheduler, WorkflowJob } from '../../app/ports.js';

export const REVOKE_QUEUE = 'jit-revoke';
export const APPROVAL_QUEUE = 'jit-approval-timeout';
export const WORKFLOW_QUEUE = 'jit-workflow';

interface JobData {
  requestId: string;
  /** For the workflow queue: which job (the job id is `<kind>-<requestId>`). */
  kind?: WorkflowJob;
  /** When the job is meant to run (epoch ms); kept in the data because `changeDelay` keeps `timestamp`. */
  dueAt: number;
}

/**
 * A revocation must not give up quietly: 12 attempts with exponential backoff from 1 s span about
 * an hour; after that the job is kept as failed (for inspection) and the reconciler's sweep is the
 * second line.
 */
const JOB_OPTIONS: JobsOptions = {
  attempts: 12,
  backoff: { type: 'exponential', delay: 1000 },
  // Completed jobs are removed so the id is free; the audit log is the record.
  removeOnComplete: true,
  removeOnFail: { age: 7 * 86_400 },
};

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

  constructor(opts: BullOptions) {
    this.workflow = new Queue<JobData>(WORKFLOW_QUEUE, { connection: opts.connection, prefix: opts.prefix, defaultJobOptions: JOB_OPTIONS });
    this.revoke = new Queue<JobData>(REVOKE_QUEUE, { connection: opts.connection, prefix: opts.prefix, defaultJobOptions: JOB_OPTIONS });
    this.approval = new Queue<JobData>(APPROVAL_QUEUE, { connection: opts.connection, prefix: opts.prefix, defaultJobOptions: JOB_OPTIONS });
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
    return this.put(this.workflow, kind, `${kind}-${requestId}`, at, true, { requestId, kind, dueAt: at });
  }

  async cancelWorkflow(kind: WorkflowJob, requestId: string): Promise<void> {
    await this.workflow.remove(`${kind}-${requestId}`);
  }

  async workflowDueAt(kind: WorkflowJob, requestId: string): Promise<number | null> {
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
  private async put(queue: Queue<JobData>, name: string, id: string, at: number, move: boolean, data: JobData = { requestId: id, dueAt: at }): Promise<void> {
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
}

/** Runs both queues. `close()` stops taking jobs and waits for the running ones (graceful drain). */
export class BullWorker {
  private readonly workers: Worker<JobData>[];
  private closing: Promise<void> | null = null;

  constructor(opts: WorkerOptions) {
    const concurrency = opts.concurrency ?? 50;
    const make = (queue: string, handle: (id: string, data: JobData) => Promise<JobOutcome>) => {
      const worker = new Worker<JobData>(
        queue,
        async (job: Job<JobData>, token?: string) => {
          const outcome = await handle(job.data.requestId, job.data);
          if (outcome && outcome.retryAt > Date.now()) {
            await job.updateData({ ...job.data, dueAt: outcome.retryAt });
            await job.moveToDelayed(outcome.retryAt, token);
            throw new DelayedError();
          }
        },
        {
          connection: opts.connection,
          prefix: opts.prefix,
          concurrency,
          // A job whose process died (SIGKILL, OOM, node lost) is retried within ~15 s rather than
          // BullMQ's default ~60 s: the lock is renewed every 5 s while a job runs, so a slow
          // network write keeps it; a dead process stops renewing and the check every 5 s finds it.
          lockDuration: 10_000,
          stalledInterval: 5_000,
          maxStalledCount: 5,
        },
      );
      worker.on('failed', (job, err) => {
        if (err instanceof DelayedError || err.name === 'DelayedError') return;
        opts.log(`${queue} job ${job?.id ?? '?'} failed (attempt ${job?.attemptsMade ?? '?'}): ${err.message}`, err);
      });
      worker.on('error', (err) => opts.log(`${queue} worker error: ${err.message}`, err));
      return worker;
    };
    this.workers = [
      make(REVOKE_QUEUE, (id) => opts.handlers.expire(id)),
      make(APPROVAL_QUEUE, (id) => opts.handlers.timeoutApproval(id)),
      make(WORKFLOW_QUEUE, (id, data) => (data.kind ? opts.handlers.workflow(data.kind, id) : Promise.resolve())),
    ];
  }

  running(): boolean {
    return this.closing === null && this.workers.every((w) => w.isRunning());
  }

  close(): Promise<void> {
    // A worker closed while it is still connecting leaves its connections' rejections unhandled:
    // let it finish connecting first (bounded, in case Redis is gone).
    const ready = (w: Worker<JobData>) => Promise.race([w.waitUntilReady().catch(() => undefined), new Promise((r) => setTimeout(r, 2000).unref())]);
    this.closing ??= Promise.all(this.workers.map(async (w) => (await ready(w), w.close()))).then(() => undefined);
    return this.closing;
  }
}
