// GET /metrics (Prometheus text format) moves as a flow runs; /readyz turns 503 when a dependency
// is missing or the worker stops.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestOf, startHarness, waitFor, type Harness } from './harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

async function scrape(): Promise<{ text: string; value: (name: string, labels?: Record<string, string>) => number }> {
  const res = await fetch(`${h.app.url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  const value = (name: string, labels: Record<string, string> = {}) => {
    for (const line of text.split('\n')) {
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
      if (!m || m[1] !== name) continue;
      const got = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
      if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
    }
    return 0;
  };
  return { text, value };
}

describe('metrics', () => {
  it('move as a request is made, approved, opened and expires', async () => {
    const before = await scrape();
    const id = requestOf((await h.cmd('alice@contoso.com', 'rdp vm1 2s from 203.0.113.60')).reply).id;
    const pending = await scrape();
    expect(pending.value('jit_requests_total', { outcome: 'created' })).toBe(before.value('jit_requests_total', { outcome: 'created' }) + 1);
    expect(pending.value('jit_pending_requests')).toBeGreaterThanOrEqual(1);

    await h.cmd('bob@contoso.com', `approve ${id}`);
    const open = await scrape();
    expect(open.value('jit_requests_total', { outcome: 'approved' })).toBe(before.value('jit_requests_total', { outcome: 'approved' }) + 1);
    expect(open.value('jit_requests_total', { outcome: 'activated' })).toBe(before.value('jit_requests_total', { outcome: 'activated' }) + 1);
    expect(open.value('jit_active_grants')).toBeGreaterThanOrEqual(1);
    expect(open.value('jit_time_to_decision_seconds_count', { decision: 'approved' })).toBe(before.value('jit_time_to_decision_seconds_count', { decision: 'approved' }) + 1);
    expect(open.value('jit_time_to_open_seconds_count')).toBe(before.value('jit_time_to_open_seconds_count') + 1);
    expect(open.value('jit_network_write_seconds_count', { op: 'open' })).toBe(before.value('jit_network_write_seconds_count', { op: 'open' }) + 1);
    // The revocation waits as a delayed BullMQ job.
    expect(open.value('jit_queue_jobs', { queue: 'revoke', state: 'delayed' })).toBeGreaterThanOrEqual(1);

    await waitFor('expired', async () => ((await h.get(id))!.status === 'expired' ? true : null), 10_000);
    const after = await scrape();
    expect(after.value('jit_requests_total', { outcome: 'expired' })).toBe(before.value('jit_requests_total', { outcome: 'expired' }) + 1);
    expect(after.value('jit_revocation_lag_seconds_count')).toBe(before.value('jit_revocation_lag_seconds_count') + 1);
    expect(after.value('jit_network_write_seconds_count', { op: 'close' })).toBeGreaterThan(before.value('jit_network_write_seconds_count', { op: 'close' }));
    // Process metrics come along; labels carry no ids, names or addresses.
    expect(after.text).toContain('jit_process_resident_memory_bytes');
    expect(after.text).toContain('jit_nodejs_eventloop_lag_p99_seconds');
    expect(after.text).not.toContain(id);
    expect(after.text).not.toContain('alice');
    expect(after.text).not.toContain('203.0.113.60');
  });

  it('a denial counts as denied, with its time to decision', async () => {
    const before = await scrape();
    const id = requestOf((await h.cmd('alice@contoso.com', 'rdp vm1 1h from 203.0.113.61')).reply).id;
    await h.cmd('bob@contoso.com', `deny ${id} reason "not today"`);
    const after = await scrape();
    expect(after.value('jit_requests_total', { outcome: 'denied' })).toBe(before.value('jit_requests_total', { outcome: 'denied' }) + 1);
    expect(after.value('jit_time_to_decision_seconds_count', { decision: 'denied' })).toBe(before.value('jit_time_to_decision_seconds_count', { decision: 'denied' }) + 1);
  });

  it('/readyz says 503 when the worker stops, and ready again when it is back', async () => {
    await h.app.stopWorker();
    const down = await fetch(`${h.app.url}/readyz`);
    expect(down.status).toBe(503);
    expect(await down.json()).toMatchObject({ status: 'not ready', worker: 'stopped' });
    // Liveness is unaffected: nothing to restart.
    expect((await fetch(`${h.app.url}/healthz`)).status).toBe(200);
    h.app.startWorker();
    expect((await fetch(`${h.app.url}/readyz`)).status).toBe(200);
  });
});
