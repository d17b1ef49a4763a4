// JIT_NSG_WRITES=auto (the default): every change queued for an NSG goes as ONE whole-NSG PUT with
// If-Match, where ARM allows it; where it refuses (the role lacks networkSecurityGroups/write,
// someone's rule references an application security group, an Azure Policy deny matches someone's
// rule) that NSG falls back to child-rule operations and the same changes are applied that way.
// Against the ARM emulator (HTTPS on 127.0.0.1), which checks the role, linked access, Azure
// Policy, If-Match and one operation at a time per NSG as ARM does. Counts of writes, no timings.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AzureGate } from '../../src/adapters/azure/gate.js';
import type { AppliedRule, Target } from '../../src/core/types.js';
import { ArmEmulator, actionOf, type ArmRule } from '../fakes/arm.js';
import { tn } from '../fixtures/ids.js';

const role = (file: string) => (JSON.parse(readFileSync(new URL(`../../manifest/azure/${file}`, import.meta.url), 'utf8')) as { Actions: string[] }).Actions;
const LEAST = role('jit-bot-role.json');
const NSG_WRITE = role('jit-bot-role-nsg-write.json');
const credential = { getToken: async () => ({ token: 't', expiresOnTimestamp: Date.now() + 3600_000 }) };
const ASG = '/subscriptions/sub1/resourceGroups/shared/providers/Microsoft.Network/applicationSecurityGroups/web-servers';

/** ARM's per-NSG write time here: long enough for changes to queue behind a write in flight. */
const LATENCY = 300;

let writer: ArmEmulator;
let least: ArmEmulator;

beforeAll(async () => {
  writer = await new ArmEmulator({ latencyMs: LATENCY, roleActions: NSG_WRITE }).start();
  least = await new ArmEmulator({ latencyMs: LATENCY }).start();
});
afterAll(async () => {
  await writer?.close();
  await least?.close();
});

function armIds(arm: ArmEmulator, rg: string, ip: string) {
  const ids = arm.standardVm('sub1', rg, `${rg}-vm`, ip);
  const target: Target = { name: tn(`${rg}-vm`), id: ids.vm, os: 'linux' };
  return { ...ids, target };
}

function vmOn(arm: ArmEmulator, rg: string, ip: string) {
  const { target, ...ids } = armIds(arm, rg, ip);
  const gate = new AzureGate({ credential, endpoint: arm.url, caCert: readFileSync(arm.certFile, 'utf8'), pollIntervalMs: 5, requestTimeoutMs: 2000, writeDeadlineMs: 20_000, targets: () => [target] });
  const mine = (id: string) => [...arm.rules(ids.nicNsg), ...arm.rules(ids.subnetNsg)].filter((r) => r.name.startsWith(`jit-${id}-`));
  return { ...ids, target, gate, mine };
}

const open = (gate: AzureGate, target: Target, id: string, n: number) =>
  gate.open({ requestId: id, target, ports: [{ port: 22, protocol: 'tcp' }], sourcePrefix: `198.51.100.${n}/32`, expiresAt: Date.now() + 3600_000 });

const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(2, '0')}`);

describe('whole-NSG writes where the role allows them', () => {
  it('a burst of 20 grants on one VM opens in a few whole-NSG PUTs per NSG, not 20 rule operations each, without a 409', async () => {
    const v = vmOn(writer, 'burst', '10.0.0.4');
    await v.gate.discover(v.target);
    const before = { ...writer.stats };
    const grants = ids('rburst', 20);
    const opened = await Promise.all(grants.map((id, i) => open(v.gate, v.target, id, i + 1)));
    for (const [i, id] of grants.entries()) {
      expect(opened[i]).toHaveLength(2);
      expect(v.mine(id)).toHaveLength(2);
    }
    const puts = writer.stats.puts - before.puts;
    const wholes = writer.stats.nsgPuts - before.nsgPuts;
    // Every write was a whole-NSG PUT, and the idle queue gathered the burst: one PUT per NSG (the
    // NIC's and the subnet's), not the first open alone and then the 19 queued behind it.
    expect(puts).toBe(wholes);
    expect(wholes).toBe(2);
    expect(writer.stats.conflicts409 - before.conflicts409).toBe(0);
    // Priorities stay unique per NSG.
    const prios = writer.rules(v.nicNsg).map((r) => r.properties.priority);
    expect(new Set(prios).size).toBe(prios.length);
    // Closing them all: again a few writes.
    const closing = { ...writer.stats };
    const removed = await Promise.all(grants.map((id, i) => v.gate.close(id, v.target, opened[i]!)));
    expect(removed.flat()).toHaveLength(40);
    expect(writer.rules(v.nicNsg).filter((r) => r.name.startsWith('jit-'))).toEqual([]);
    expect(writer.stats.deletes - closing.deletes).toBe(0);
    expect(writer.stats.nsgPuts - closing.nsgPuts).toBeLessThanOrEqual(6);
  });

  it('approvals arriving one after another (a burst spread over ~200 ms) open in one write per NSG: the idle queue gathers them first', async () => {
    const ids2 = armIds(writer, 'spread', '10.0.0.9');
    // The gathering window widened for a loaded test machine (40 / 250 ms in production): 20
    // arrivals 10 ms apart, each well inside the quiet time of the one before.
    const gate = new AzureGate({ credential, endpoint: writer.url, caCert: readFileSync(writer.certFile, 'utf8'), pollIntervalMs: 5, requestTimeoutMs: 2000, writeDeadlineMs: 20_000, targets: () => [ids2.target], gather: { quietMs: 1500, maxMs: 8000 } });
    await gate.discover(ids2.target);
    const before = { ...writer.stats };
    const grants = ids('rspread', 20);
    const pending: Array<Promise<unknown>> = [];
    for (const [i, id] of grants.entries()) {
      pending.push(open(gate, ids2.target, id, i + 1));
      await new Promise((r) => setTimeout(r, 10));
    }
    await Promise.all(pending);
    // Without the gathering: the first arrival's write alone, then the other 19 in a second one.
    expect(writer.stats.nsgPuts - before.nsgPuts).toBe(2);
    expect(writer.stats.conflicts409 - before.conflicts409).toBe(0);
  });

  it('a close and an open queued behind a write in flight go in one PUT: the closed rule is gone, the opened one there', async () => {
    const v = vmOn(writer, 'mixed', '10.0.0.5');
    const a = await open(v.gate, v.target, 'rmixeda00', 1);
    const before = { ...writer.stats };
    // A write in flight on both NSGs (an open of C), then a close of A and an open of B queue behind it.
    const c = open(v.gate, v.target, 'rmixedc00', 3);
    while (writer.stats.nsgPuts - before.nsgPuts < 2) await new Promise((r) => setTimeout(r, 2));
    const [closed, b] = await Promise.all([v.gate.close('rmixeda00', v.target, a), open(v.gate, v.target, 'rmixedb00', 2)]);
    await c;
    expect(closed.map((r) => r.name).sort()).toEqual(a.map((r) => r.name).sort());
    expect(v.mine('rmixeda00')).toEqual([]);
    expect(v.mine('rmixedb00')).toHaveLength(2);
    expect(v.mine('rmixedc00')).toHaveLength(2);
    expect(b).toHaveLength(2);
    // C's PUT and one PUT for the close and the open, per NSG.
    expect(writer.stats.nsgPuts - before.nsgPuts).toBe(4);
  });

  it('someone wrote the NSG between the read and the PUT (412): re-read, re-planned, written; someone\'s rule kept', async () => {
    const v = vmOn(writer, 'etag', '10.0.0.6');
    await v.gate.discover(v.target);
    const foreign: ArmRule = { name: 'allow-https', properties: { priority: 100, direction: 'Inbound', access: 'Allow', protocol: 'Tcp', sourceAddressPrefix: '*', sourcePortRange: '*', destinationAddressPrefix: '*', destinationPortRange: '443' } };
    writer.addForeignRule(v.nicNsg, foreign);
    writer.failNext({ status: 412, code: 'PreconditionFailed' }, { status: 409, code: 'AnotherOperationInProgress' });
    const rules = await open(v.gate, v.target, 'retag0000', 7);
    expect(rules).toHaveLength(2);
    // Planned around the foreign rule's priority, which stays as it was.
    expect(rules.find((r) => r.scope === v.nicNsg)!.priority).toBe(101);
    expect(writer.rules(v.nicNsg).find((r) => r.name === 'allow-https')!.properties).toMatchObject(foreign.properties);
    expect(v.gate.stats.retries).toBe(2);
  });

  it('a close whose PUT answer was lost (applied, never answered) is retried and still reports the rules it removed', async () => {
    const v = vmOn(writer, 'lost', '10.0.0.7');
    const rules = await open(v.gate, v.target, 'rlost0000', 8);
    writer.failNext({ hang: 'after' });
    const removed = await v.gate.close('rlost0000', v.target, rules);
    expect(removed.map((r) => r.name).sort()).toEqual(rules.map((r) => r.name).sort());
    expect(v.mine('rlost0000')).toEqual([]);
  });
});

describe('where ARM refuses a whole-NSG write, that NSG falls back to child rules and nothing fails', () => {
  it('the least-privilege role (no networkSecurityGroups/write): 403 AuthorizationFailed once per NSG, grants open and close by child operations', async () => {
    const v = vmOn(least, 'noauth', '10.0.0.8');
    await v.gate.discover(v.target);
    const before = { ...least.stats };
    const grants = ids('rnoauth', 5);
    const opened = await Promise.all(grants.map((id, i) => open(v.gate, v.target, id, i + 1)));
    for (const id of grants) expect(v.mine(id)).toHaveLength(2);
    expect(opened.flat()).toHaveLength(10);
    expect(least.stats.forbidden403 - before.forbidden403).toBe(2);
    expect(v.gate.nsgFallbacks).toEqual({ AuthorizationFailed: 2 });
    expect(least.stats.nsgPuts).toBe(0);
    expect(v.gate.nsgBatched(v.nicNsg)).toBe(false);
    // Remembered: the next changes go straight to child rules.
    const removed = await Promise.all(grants.map((id, i) => v.gate.close(id, v.target, opened[i]!)));
    expect(removed.flat()).toHaveLength(10);
    expect(least.stats.forbidden403 - before.forbidden403).toBe(2);
    expect(least.stats.deletes - before.deletes).toBe(10);
  });

  it('an NSG with someone\'s application-security-group rule (no ASG join action): LinkedAuthorizationFailed, that NSG by child rules, the other NSG whole; the ASG rule untouched', async () => {
    const v = vmOn(writer, 'asg', '10.0.0.9');
    const asgRule: ArmRule = { name: 'allow-web-asg', properties: { priority: 300, direction: 'Inbound', access: 'Allow', protocol: 'Tcp', sourceAddressPrefix: '*', sourcePortRange: '*', destinationApplicationSecurityGroups: [{ id: ASG }], destinationPortRange: '443' } };
    writer.addForeignRule(v.nicNsg, asgRule);
    const before = { ...writer.stats };
    const rules = await open(v.gate, v.target, 'rasg00000', 9);
    expect(rules).toHaveLength(2);
    expect(v.mine('rasg00000')).toHaveLength(2);
    expect(v.gate.nsgFallbacks).toEqual({ LinkedAuthorizationFailed: 1 });
    expect(v.gate.nsgBatched(v.nicNsg)).toBe(false);
    expect(v.gate.nsgBatched(v.subnetNsg)).toBe(true);
    // The subnet NSG took a whole PUT, the NIC NSG a child rule PUT.
    expect(writer.stats.nsgPuts - before.nsgPuts).toBe(1);
    expect(writer.stats.puts - before.puts).toBe(2);
    expect(writer.rules(v.nicNsg).find((r) => r.name === 'allow-web-asg')!.properties.destinationApplicationSecurityGroups).toEqual([{ id: ASG }]);
    expect(await v.gate.close('rasg00000', v.target, rules)).toHaveLength(2);
    expect(v.mine('rasg00000')).toEqual([]);
  });

  it('an Azure Policy deny that someone\'s rule breaks (SSH from anywhere): RequestDisallowedByPolicy on the whole write, the grant opens by child rules', async () => {
    const v = vmOn(writer, 'policy', '10.0.0.10');
    writer.addForeignRule(v.subnetNsg, { name: 'legacy-ssh-any', properties: { priority: 500, direction: 'Inbound', access: 'Allow', protocol: 'Tcp', sourceAddressPrefix: '*', sourcePortRange: '*', destinationAddressPrefix: '*', destinationPortRange: '22' } });
    writer.denyByPolicy('deny-ssh-from-internet', (r) => r.properties.access === 'Allow' && r.properties.destinationPortRange === '22' && ['*', 'Internet', '0.0.0.0/0'].includes(r.properties.sourceAddressPrefix ?? ''));
    const denied = writer.stats.policyDenied403;
    const rules: AppliedRule[] = await open(v.gate, v.target, 'rpolicy00', 10);
    expect(rules).toHaveLength(2);
    expect(v.mine('rpolicy00')).toHaveLength(2);
    expect(writer.stats.policyDenied403 - denied).toBe(1);
    expect(v.gate.nsgFallbacks).toEqual({ RequestDisallowedByPolicy: 1 });
    expect(v.gate.nsgBatched(v.subnetNsg)).toBe(false);
    expect(await v.gate.close('rpolicy00', v.target, rules)).toHaveLength(2);
  });

  it('JIT_NSG_WRITES=rules never asks for a whole-NSG write', async () => {
    const ids2 = least.standardVm('sub1', 'rulesonly', 'rulesonly-vm', '10.0.0.11');
    const target: Target = { name: tn('rulesonly-vm'), id: ids2.vm, os: 'linux' };
    const gate = new AzureGate({ credential, endpoint: least.url, caCert: readFileSync(least.certFile, 'utf8'), pollIntervalMs: 5, targets: () => [target], nsgWrites: 'rules' });
    const calls = least.calls.length;
    const rules = await open(gate, target, 'rrules000', 11);
    await gate.close('rrules000', target, rules);
    const made = least.calls.slice(calls).map((c) => actionOf(c.method, c.path));
    expect(made).not.toContain('microsoft.network/networksecuritygroups/write');
    expect(made.filter((a) => a === 'microsoft.network/networksecuritygroups/securityrules/write')).toHaveLength(2);
    expect(gate.nsgFallbacks).toEqual({});
  });
});

describe('the whole-NSG role', () => {
  it('is the least-privilege role plus exactly networkSecurityGroups/write (no ASG join, no wildcard)', () => {
    const extra = NSG_WRITE.filter((a) => !LEAST.includes(a));
    expect(extra).toEqual(['Microsoft.Network/networkSecurityGroups/write']);
    expect(LEAST.filter((a) => !NSG_WRITE.includes(a))).toEqual([]);
    expect(NSG_WRITE.some((a) => a.includes('*') || /applicationSecurityGroups/i.test(a))).toBe(false);
  });
});

describe('early close with whole-NSG writes', () => {
  it('the close estimate is one write and one in flight, however many grants expire together; an expiry close is held until about one write before the expiry', async () => {
    const v = vmOn(writer, 'hold', '10.0.0.12');
    const at = Date.now() + 3600_000;
    const opened = await Promise.all(ids('rhold', 3).map((id, i) => v.gate.open({ requestId: id, target: v.target, ports: [{ port: 22, protocol: 'tcp' }], sourcePrefix: `198.51.100.${60 + i}/32`, expiresAt: at })));
    const op = Math.max(v.gate.latency.opP90(v.nicNsg.toLowerCase())!, v.gate.latency.opP90(v.subnetNsg.toLowerCase())!);
    expect(op).toBeGreaterThanOrEqual(LATENCY);
    const alone = v.gate.closeLeadMs(opened[0]!, at + 3600_000);
    const together = v.gate.closeLeadMs(opened[0]!, at);
    expect(alone).toBe(2 * op);
    expect(together).toBe(alone);
    // A close for an expiry 10 s away: its write is not sent before one write (+ slack) ahead of it,
    // and a revocation queued meanwhile (no expiry to meet) is not held behind it.
    const by = Date.now() + 10_000;
    const writes = writer.writes.length;
    let heldDone = false;
    const held = v.gate.close('rhold00', v.target, opened[0]!, { by }).then((r) => ((heldDone = true), r));
    expect(await v.gate.close('rhold01', v.target, opened[1]!)).toHaveLength(2);
    expect(heldDone).toBe(false);
    expect(v.mine('rhold01')).toEqual([]);
    expect(v.mine('rhold00')).toHaveLength(2);
    expect(await held).toHaveLength(2);
    expect(v.mine('rhold00')).toEqual([]);
    const sent = writer.writes.slice(writes).map((w) => w.at);
    // The revocation's write per NSG, then the held close's.
    expect(sent).toHaveLength(4);
    for (const t of sent.slice(2)) expect(t).toBeGreaterThanOrEqual(by - op - 500);
    await v.gate.close('rhold02', v.target, opened[2]!);
  });
});

describe('the gate reads grant times on the app\'s clock', () => {
  it('a grant that has expired by the app\'s clock is not written, though the system clock says it has not', async () => {
    const ids3 = writer.standardVm('sub1', 'clock', 'clock-vm', '10.0.0.13');
    const target: Target = { name: tn('clock-vm'), id: ids3.vm, os: 'linux' };
    const gate = new AzureGate({ credential, endpoint: writer.url, caCert: readFileSync(writer.certFile, 'utf8'), pollIntervalMs: 5, targets: () => [target], clock: { now: () => Date.now() + 3600_000 } });
    await expect(gate.open({ requestId: 'rclock0000', target, ports: [{ port: 22, protocol: 'tcp' }], sourcePrefix: '198.51.100.90/32', expiresAt: Date.now() + 60_000 })).rejects.toThrow(/expired/);
    expect([...writer.rules(ids3.nicNsg), ...writer.rules(ids3.subnetNsg)].filter((r) => r.name.startsWith('jit-rclock0000-'))).toEqual([]);
  });
});
