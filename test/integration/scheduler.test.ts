// The BullMQ Scheduler against the real Redis: jobId = request id, reschedule, cancel, retries,
// "not yet" answers, and a worker that drains on close.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { BullScheduler, BullWorker } from '../../src/adapters/queue/bullmq.js';
import { RedisTimers } from '../../src/adapters/queue/timers.js';
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

function startWorker(handlers: JobHandlers, extra: Partial<ConstructorParameters<typeof BullWorker>[0]> = {}): BullWorker {
  const w = new BullWorker({ connection: redis, prefix, handlers, log: () => {}, ...extra });
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
  await redis.del(`${prefix}:jit-reminders`, `${prefix}:jit-reminders:running`);
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

  it('a job carries only its due time: its hash stays a compact listpack, without retry options', async () => {
    const at = Date.now() + 60_000;
    await scheduler.scheduleExpiry('rsched00010', at);
    await scheduler.scheduleWorkflow('escalate', 'rsched00010', at);
    for (const [key, jobId] of [[`${prefix}:jit-revoke:rsched00010`, 'rsched00010'], [`${prefix}:jit-workflow:escalate-rsched00010`, 'escalate-rsched00010']] as const) {
      const hash = await redis.hgetall(key);
      expect(JSON.parse(hash.data!)).toEqual({ dueAt: at });
      // No BullMQ attempts / backoff / removeOn…: the worker retries and removes (0 is BullMQ's default).
      expect(JSON.parse(hash.opts!)).toEqual({ attempts: 0, delay: expect.any(Number), jobId });
      expect(await redis.object('ENCODING', key)).toBe('listpack');
    }
    expect(await scheduler.expiryDueAt('rsched00010')).toBe(at);
    expect(await scheduler.workflowDueAt('escalate', 'rsched00010')).toBe(at);
  });

  it('after its last attempt a failing job is kept as failed and not run again', async () => {
    const rec = recorder(async () => {
      throw new Error('network is down');
    });
    const logged: string[] = [];
    startWorker(rec.handlers, { retry: { attempts: 3, firstDelayMs: 50 }, log: (msg) => logged.push(msg) });
    await scheduler.scheduleExpiry('rsched00011', Date.now());
    await waitFor('3 attempts', async () => rec.expired.length === 3, 5000);
    await waitFor('failed', async () => (await scheduler.expiryState('rsched00011')) === 'failed', 3000);
    await sleep(400);
    expect(rec.expired).toHaveLength(3);
    // The waits grew (50 ms, then 100 ms) and every failure was logged once, the last as giving up.
    expect(rec.expired[2]!.at - rec.expired[1]!.at).toBeGreaterThanOrEqual(95);
    expect(logged.filter((m) => m.includes('rsched00011'))).toEqual([
      expect.stringContaining('attempt 1 of 3, retried in 0.05 s'),
      expect.stringContaining('attempt 2 of 3, retried in 0.1 s'),
      expect.stringContaining('attempt 3 of 3, giving up'),
    ]);
  });

  it('reminders are timers in one sorted set (no BullMQ job): they fire once, and a cancelled one never does', async () => {
    const rec = recorder();
    startWorker(rec.handlers);
    const at = Date.now() + 300;
    await scheduler.scheduleWorkflow('remind', 'rsched00012', at);
    await scheduler.scheduleWorkflow('remind', 'rsched00013', Date.now() + 300);
    await scheduler.cancelWorkflow('remind', 'rsched00013');
    expect(await scheduler.workflowDueAt('remind', 'rsched00012')).toBe(at);
    expect(await scheduler.workflowDueAt('remind', 'rsched00013')).toBeNull();
    expect(await redis.exists(`${prefix}:jit-workflow:remind-rsched00012`)).toBe(0);
    await waitFor('remind fired', async () => rec.workflow.length === 1, 3000);
    await sleep(800);
    expect(rec.workflow.map((w) => w.id)).toEqual(['remind-rsched00012']);
    expect(rec.workflow[0]!.at).toBeGreaterThanOrEqual(at - 5);
    expect(await scheduler.workflowDueAt('remind', 'rsched00012')).toBeNull();
  });

  it('a reminder an older version stored as a BullMQ job (with its request in the data) still runs, and is cancelled the same way', async () => {
    const rec = recorder();
    startWorker(rec.handlers);
    await scheduler.workflow.add('remind', { requestId: 'rsched00014', kind: 'remind', dueAt: Date.now() + 100 }, { jobId: 'remind-rsched00014', delay: 100 });
    await scheduler.workflow.add('remind', { requestId: 'rsched00015', kind: 'remind', dueAt: Date.now() + 300 }, { jobId: 'remind-rsched00015', delay: 300 });
    await scheduler.cancelWorkflow('remind', 'rsched00015');
    await waitFor('old reminder ran', async () => rec.workflow.length === 1, 3000);
    await sleep(500);
    expect(rec.workflow.map((w) => w.id)).toEqual(['remind-rsched00014']);
  });

  it('a timer whose claim lapsed (its process died) runs again, and one whose handler threw is tried again', async () => {
    const key = `${prefix}:timers-test`;
    const timers = new RedisTimers(redis, key, { pollMs: 50, leaseMs: 200, retryMs: 100 });
    // Claimed by a process that died: in the running set, its lease already over.
    await redis.zadd(`${key}:running`, Date.now() - 1, 'remind-rdead000001');
    await timers.schedule('remind-rthrows00001', Date.now());
    const runs: string[] = [];
    timers.start(async (id) => {
      runs.push(id);
      if (id === 'remind-rthrows00001' && runs.filter((r) => r === id).length === 1) throw new Error('chat is down');
    }, () => {});
    try {
      await waitFor('both ran', async () => runs.includes('remind-rdead000001') && runs.filter((r) => r === 'remind-rthrows00001').length === 2, 3000);
      await sleep(300);
      expect(runs.filter((r) => r === 'remind-rdead000001')).toHaveLength(1);
      expect(runs.filter((r) => r === 'remind-rthrows00001')).toHaveLength(2);
      expect(await redis.zcard(key)).toBe(0);
      expect(await redis.zcard(`${key}:running`)).toBe(0);
    } finally {
      await timers.stop();
      await redis.del(key, `${key}:running`);
    }
  });
});
