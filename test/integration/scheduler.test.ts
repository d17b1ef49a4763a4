// The BullMQ Scheduler against the real Redis: jobId = request id, reschedule, cancel, retries,
// "not yet" answers, and a worker that drains on close.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { BullScheduler, BullWorker } from '../../src/adapters/queue/bullmq.js';
import { createRedis } from '../../src/adapters/redis/connection.js';
import type { JobHandlers, JobOutcome } from '../../src/app/ports.js';
import { REDIS_URL, deleteKeys, sleep, waitFor } from './harness.js';

const prefix = `test-sched-${Math.random().toString(36).slice(2, 8)}`;
let redis: Redis;
let scheduler: BullScheduler;
const workers: BullWorker[] = [];

function recorder(answer: (id: string, n: number) => Promise<JobOutcome> = async () => undefined) {
  const expired: { id: string; at: number }[] = [];
  const timedOut: { id: string; at: number }[] = [];
  const counts = new Map<string, number>();
  const workflow: { id: string; at: number }[] = [];
  const handlers: JobHandlers = {
    async expire(id) {
      const n = (counts.get(id) ?? 0) + 1;
      counts.set(id, n);
      expired.push({ id, at: Date.now() });
      return answer(id, n);
    },
    async timeoutApproval(id) {
      timedOut.push({ id, at: Date.now() });
    },
    async workflow(kind, id) {
      workflow.push({ id: `${kind}-${id}`, at: Date.now() });
    },
  };
  return { handlers, expired, timedOut, workflow };
}

function startWorker(handlers: JobHandlers): BullWorker {
  const w = new BullWorker({ connection: redis, prefix, handlers, log: () => {} });
  workers.push(w);
  return w;
}

beforeAll(() => {
  redis = createRedis(REDIS_URL);
  scheduler = new BullScheduler({ connection: redis, prefix });
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.close()));
  await scheduler.revoke.obliterate({ force: true });
  await scheduler.approval.obliterate({ force: true });
  await scheduler.workflow.obliterate({ force: true });
});
afterAll(async () => {
  await scheduler.close();
  await redis.quit();
  await deleteKeys(prefix);
});

describe('BullScheduler', () => {
  it('fires a revocation at its time, once, even when scheduled twice', async () => {
    const rec = recorder();
    startWorker(rec.handlers);
    const at = Date.now() + 600;
    await scheduler.scheduleExpiry('rsched00001', at);
    await scheduler.scheduleExpiry('rsched00001', at + 5000); // a retry or a second replica: no-op
    expect(await scheduler.expiryDueAt('rsched00001')).toBe(at);
    await waitFor('rec.expired.length === 1', async () => rec.expired.length === 1, 3000);
    await sleep(300);
    expect(rec.expired).toHaveLength(1);
    expect(rec.expired[0]!.at).toBeGreaterThanOrEqual(at - 5);
    expect(await scheduler.expiryDueAt('rsched00001')).toBeNull();
  });

  it('reschedule moves the job later: nothing fires at the old time', async () => {
    const rec = recorder();
    startWorker(rec.handlers);
    const first = Date.now() + 400;
    await scheduler.scheduleExpiry('rsched00002', first);
    const later = Date.now() + 1400;
    await scheduler.rescheduleExpiry('rsched00002', later);
    expect(await scheduler.expiryDueAt('rsched00002')).toBe(later);
    await sleep(900);
    expect(rec.expired).toHaveLength(0);
    await waitFor('rec.expired.length === 1', async () => rec.expired.length === 1, 3000);
    expect(rec.expired[0]!.at).toBeGreaterThanOrEqual(later - 5);
  });

  it('cancel removes the job: it never fires', async () => {
    const rec = recorder();
    startWorker(rec.handlers);
    await scheduler.scheduleExpiry('rsched00003', Date.now() + 300);
    await scheduler.cancelExpiry('rsched00003');
    expect(await scheduler.expiryDueAt('rsched00003')).toBeNull();
    await sleep(700);
    expect(rec.expired).toHaveLength(0);
  });

  it('a handler that answers "not yet" runs again at the time it names, under the same job id', async () => {
    const retryAt = Date.now() + 900;
    const rec = recorder(async (_id, n) => (n === 1 ? { retryAt } : undefined));
    startWorker(rec.handlers);
    await scheduler.scheduleExpiry('rsched00004', Date.now() + 100);
    await waitFor('rec.expired.length === 1', async () => rec.expired.length === 1, 2000);
    expect(await scheduler.expiryDueAt('rsched00004')).toBe(retryAt);
    await waitFor('rec.expired.length === 2', async () => rec.expired.length === 2, 3000);
    expect(rec.expired[1]!.at).toBeGreaterThanOrEqual(retryAt - 5);
  });

  it('a failing handler is retried with backoff until it succeeds', async () => {
    const rec = recorder(async (_id, n) => {
      if (n < 3) throw new Error('network is down');
    });
    startWorker(rec.handlers);
    await scheduler.scheduleExpiry('rsched00005', Date.now() + 50);
    await waitFor('rec.expired.length === 3', async () => rec.expired.length === 3, 8000);
    await sleep(200);
    expect(await scheduler.expiryState('rsched00005')).toBeNull(); // completed and removed
  });

  it('a job due while no worker runs fires when one starts', async () => {
    const rec = recorder();
    await scheduler.scheduleExpiry('rsched00006', Date.now() + 100);
    await sleep(400);
    expect(rec.expired).toHaveLength(0);
    startWorker(rec.handlers);
    await waitFor('rec.expired.length === 1', async () => rec.expired.length === 1, 3000);
  });

  it('approval timeouts are a separate queue with the same id', async () => {
    const rec = recorder();
    startWorker(rec.handlers);
    await scheduler.scheduleExpiry('rsched00007', Date.now() + 2000);
    await scheduler.scheduleApprovalTimeout('rsched00007', Date.now() + 200);
    await waitFor('rec.timedOut.length === 1', async () => rec.timedOut.length === 1, 2000);
    expect(rec.expired).toHaveLength(0);
    await scheduler.cancelApprovalTimeout('rsched00007');
    expect(await scheduler.expiryDueAt('rsched00007')).not.toBeNull();
  });

  it('close() waits for a running job to finish (graceful drain) and is idempotent', async () => {
    let finished = false;
    const rec = recorder(async () => {
      await sleep(500);
      finished = true;
    });
    const w = startWorker(rec.handlers);
    await scheduler.scheduleExpiry('rsched00008', Date.now());
    await waitFor('rec.expired.length === 1', async () => rec.expired.length === 1, 2000);
    expect(w.running()).toBe(true);
    await Promise.all([w.close(), w.close()]);
    expect(finished).toBe(true);
    expect(w.running()).toBe(false);
  });

  it('workflow jobs are keyed by kind and request: rescheduling moves the one job', async () => {
    const rec = recorder();
    startWorker(rec.handlers);
    await scheduler.scheduleWorkflow('remind', 'rsched00009', Date.now() + 200);
    const later = Date.now() + 700;
    await scheduler.scheduleWorkflow('remind', 'rsched00009', later);
    await scheduler.scheduleWorkflow('escalate', 'rsched00009', Date.now() + 100);
    await scheduler.cancelWorkflow('escalate', 'rsched00009');
    expect(await scheduler.workflowDueAt('remind', 'rsched00009')).toBe(later);
    await waitFor('remind fired', async () => rec.workflow.length === 1, 3000);
    await sleep(200);
    expect(rec.workflow.map((w) => w.id)).toEqual(['remind-rsched00009']);
    expect(rec.workflow[0]!.at).toBeGreaterThanOrEqual(later - 5);
  });
});
