// Early close on Azure: the gate measures its own writes per NSG (the ARM emulator makes every
// rule operation last 400 ms) and the revocation is scheduled that close time plus the margin
// before the expiry; a close does not wait behind the opens queued on its NSG; the metered gate
// hands close() the rules as written. Real Redis and BullMQ, HTTPS to the emulator.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { AzureGate } from '../../src/adapters/azure/gate.js';
import type { AppliedRule, Target } from '../../src/core/types.js';
import { ArmEmulator } from '../fakes/arm.js';
import { requestOf, startHarness, waitFor, type Harness } from './harness.js';
import { tn } from '../fixtures/ids.js';

const LATENCY = 400;
const MARGIN = 1000; // JIT_CLOSE_LEAD_MARGIN's default

let arm: ArmEmulator;
let h: Harness;
let dev1: Target;
const gate = () => h.app.gate as AzureGate;
const ours = (id: string) => arm.rules(nsgs[0]!).concat(arm.rules(nsgs[1]!)).filter((r) => r.name.startsWith(`jit-${id}-`));
let nsgs: string[] = [];

beforeAll(async () => {
  arm = await new ArmEmulator({ latencyMs: LATENCY }).start();
  arm.testBookVms();
  const base = '/subscriptions/sub1/resourceGroups/dev/providers/Microsoft.Network/networkSecurityGroups';
  nsgs = [`${base}/dev1-nsg`, `${base}/dev-subnet-nsg`];
  h = await startHarness({
    JIT_NETWORK: 'azure', AZURE_ARM_ENDPOINT: arm.url, AZURE_ARM_CA_FILE: arm.certFile, AZURE_ACCESS_TOKEN: 'emulator-token',
    AZURE_POLL_INTERVAL_MS: '5', AZURE_WRITE_DEADLINE: '20s', AZURE_REQUEST_TIMEOUT: '5s',
    // No sweep during the tests: its writes would be samples too.
    JIT_RECONCILE_INTERVAL: '1d',
  });
  dev1 = h.app.service.policyBook().targets.dev1!;
});
afterAll(async () => {
  await h?.close();
  await arm?.close();
});

/** dev1 needs no approval: active when the request returns. */
async function grant(duration: string, from: string) {
  const req = requestOf((await h.cmd('alice@contoso.com', `ssh dev1 ${duration} from ${from}`)).reply);
  expect(req.status, JSON.stringify(req)).toBe('active');
  return req;
}

describe('early close on Azure', () => {
  it('the gate measures its writes per NSG; the revocation is due that close time plus the margin before the expiry', async () => {
    const req = await grant('1h', '198.51.100.1');
    // One rule per NSG: its DELETE plus one operation that may be in flight there, each ≥ 400 ms.
    const lead = gate().closeLeadMs(req.rules, req.expiresAt!);
    expect(lead).toBeGreaterThanOrEqual(2 * LATENCY);
    expect(await h.app.scheduler.expiryDueAt(req.id)).toBe(req.expiresAt! - lead - MARGIN);
    // Two ports: two DELETEs in a row on each NSG.
    const both = req.rules.flatMap((r) => [r, { ...r, name: `${r.name}-b` }]);
    expect(gate().closeLeadMs(both, req.expiresAt!)).toBeGreaterThan(lead);
    await h.cmd('alice@contoso.com', `revoke ${req.id}`);
  });

  it('grants expiring together on one NSG: each one\'s lead counts the closes of the others, queued ahead of it', async () => {
    // A gate of its own, whose only samples are these three opens, one after the other.
    const fresh = new AzureGate({ credential: { getToken: async () => ({ token: 't', expiresOnTimestamp: Date.now() + 3600_000 }) }, endpoint: arm.url, caCert: readFileSync(arm.certFile, 'utf8'), pollIntervalMs: 5, targets: () => [dev1] });
    const at = Date.now() + 3600_000;
    const opened: AppliedRule[][] = [];
    for (const [i, id] of ['rtogether0', 'rtogether1', 'rtogether2'].entries()) {
      opened.push(await fresh.open({ requestId: id, target: dev1, ports: [{ port: 22, protocol: 'tcp' }], sourcePrefix: `198.51.100.${50 + i}/32`, expiresAt: at }));
    }
    const alone = fresh.closeLeadMs(opened[0]!, at + 3600_000);
    const together = fresh.closeLeadMs(opened[0]!, at);
    // Alone: its DELETE and one operation in flight. Together: the two others' DELETEs too.
    expect(alone).toBeGreaterThanOrEqual(2 * LATENCY);
    expect(together).toBeGreaterThanOrEqual(4 * LATENCY);
    expect(together).toBeGreaterThan(alone);
    await fresh.remove(opened.flat());
  });

  it('a close queued behind a burst of opens on its NSGs goes next, not after the burst', async () => {
    const first = await grant('1h', '198.51.100.2');
    const puts = arm.stats.puts;
    const done = new Set<string>();
    const burst = Array.from({ length: 5 }, (_, i) => `rburst000${i}`).map((id, i) =>
      gate().open({ requestId: id, target: dev1, ports: [{ port: 22, protocol: 'tcp' }], sourcePrefix: `198.51.100.${20 + i}/32`, expiresAt: Date.now() + 3600_000 }).then((rules) => (done.add(id), rules)),
    );
    // The burst's first operation is in flight (400 ms); the close arrives now.
    while (arm.stats.puts === puts) await new Promise((r) => setTimeout(r, 2));
    const removed = await gate().close(first.id, dev1, first.rules);
    expect(removed).toHaveLength(2);
    // In the order queued it would wait for all five opens on each NSG; it waited for the one in flight.
    expect(done.size).toBeLessThanOrEqual(1);
    const opened = await Promise.all(burst);
    expect(opened.flat()).toHaveLength(10);
    await gate().remove(opened.flat());
  });

  it('the metered gate hands close() the rules as written: they close though the target can no longer be discovered', async () => {
    const rules: AppliedRule[] = await gate().open({ requestId: 'rwritten01', target: dev1, ports: [{ port: 22, protocol: 'tcp' }], sourcePrefix: '198.51.100.40/32', expiresAt: Date.now() + 3600_000 });
    expect(ours('rwritten01')).toHaveLength(2);
    const gone: Target = { name: tn('gone9'), id: '/subscriptions/sub1/resourceGroups/dev/providers/Microsoft.Compute/virtualMachines/gone9', os: 'linux' };
    expect(await h.app.gate.close('rwritten01', gone, rules)).toHaveLength(2);
    expect(ours('rwritten01')).toEqual([]);
  });

  it('at expiry the rules are closed by the early job and each rule.removed says how early it started and when ARM confirmed it', async () => {
    const req = await grant('6s', '198.51.100.3');
    const due = (await h.app.scheduler.expiryDueAt(req.id))!;
    expect(due).toBeLessThan(req.expiresAt!);
    await waitFor('closed', async () => ours(req.id).length === 0 && (await h.audit(req.id)).filter((e) => e.action === 'rule.removed').length === 2, 20_000);
    for (const e of (await h.audit(req.id)).filter((x) => x.action === 'rule.removed')) {
      // Never earlier than the job was due; confirmed when ARM reported the DELETEs Succeeded.
      expect(Number(e.details.leadMs)).toBeLessThanOrEqual(req.expiresAt! - due);
      expect(e.details.expiresAt).toBe(new Date(req.expiresAt!).toISOString());
      expect(e.details.lateMs).toBe(Date.parse(String(e.details.confirmedAt)) - req.expiresAt!);
    }
  });
});
