// The embedded NetworkGate: NSG-like rules in a file, unique priorities, all-or-nothing, durable.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SimulatedGate, nsgIdFor, parseRuleDescription, ruleDescription } from '../../src/adapters/simulated/gate.js';
import type { Target } from '../../src/core/types.js';
import { tn } from '../fixtures/ids.js';

const vm1: Target = { name: tn('vm1'), id: '/subscriptions/s1/resourceGroups/rg-prod/providers/Microsoft.Compute/virtualMachines/vm1', os: 'windows' };
const vm2: Target = { name: tn('vm2'), id: '/subscriptions/s1/resourceGroups/rg-prod/providers/Microsoft.Compute/virtualMachines/vm2', os: 'linux' };
const T = Date.parse('2026-11-24T12:00:00Z');

let dir: string;
let file: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'jit-gate-'));
  file = join(dir, 'net.json');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('SimulatedGate', () => {
  it('writes an inbound allow rule per port with the request id and expiry in its description', async () => {
    const gate = await SimulatedGate.open({ file });
    const rules = await gate.open({ requestId: 'raaaaaaaa1', target: vm1, ports: [{ port: 5985, protocol: 'tcp' }, { port: 5986, protocol: 'tcp' }], sourcePrefix: '203.0.113.7/32', expiresAt: T });
    expect(rules.map((r) => [r.name, r.priority, r.destinationPort, r.sourcePrefix, r.direction, r.access])).toEqual([
      ['jit-raaaaaaaa1-5985', 100, 5985, '203.0.113.7/32', 'Inbound', 'Allow'],
      ['jit-raaaaaaaa1-5986', 101, 5986, '203.0.113.7/32', 'Inbound', 'Allow'],
    ]);
    expect(rules[0]!.scope).toBe('/subscriptions/s1/resourceGroups/rg-prod/providers/Microsoft.Network/networkSecurityGroups/vm1-nsg');
    expect(parseRuleDescription(rules[0]!.description)).toEqual({ requestId: 'raaaaaaaa1', expiresAt: T });
  });

  it('priorities are unique per NSG, freed ones are reused, other NSGs have their own', async () => {
    const gate = await SimulatedGate.open({ file });
    const g = (id: string, target = vm1) => gate.open({ requestId: id, target, ports: [{ port: 3389, protocol: 'tcp' }], sourcePrefix: '203.0.113.7/32', expiresAt: T });
    const [a, b, c] = await Promise.all([g('raaaaaaaa1'), g('raaaaaaaa2'), g('raaaaaaaa3')]);
    expect(new Set([a[0]!.priority, b[0]!.priority, c[0]!.priority]).size).toBe(3);
    await gate.close('raaaaaaaa2', vm1);
    expect((await g('raaaaaaaa4'))[0]!.priority).toBe(b[0]!.priority);
    expect((await g('raaaaaaaa5', vm2))[0]!.priority).toBe(100);
  });

  it('open is idempotent: a retried open returns the same rule and writes no second one', async () => {
    const gate = await SimulatedGate.open({ file });
    const spec = { requestId: 'raaaaaaaa1', target: vm1, ports: [{ port: 3389, protocol: 'tcp' as const }], sourcePrefix: '203.0.113.7/32', expiresAt: T };
    const first = await gate.open(spec);
    const again = await gate.open(spec);
    expect(again).toEqual(first);
    expect(await gate.list()).toHaveLength(1);
  });

  it('a full NSG refuses the whole grant and leaves nothing half-written', async () => {
    const gate = await SimulatedGate.open({ file, priorityRange: [100, 102] });
    await gate.open({ requestId: 'raaaaaaaa1', target: vm1, ports: [{ port: 3389, protocol: 'tcp' }, { port: 22, protocol: 'tcp' }], sourcePrefix: '203.0.113.7/32', expiresAt: T });
    await expect(
      gate.open({ requestId: 'raaaaaaaa2', target: vm1, ports: [{ port: 5985, protocol: 'tcp' }, { port: 5986, protocol: 'tcp' }], sourcePrefix: '203.0.113.7/32', expiresAt: T }),
    ).rejects.toThrow(/no free priority in 100-102/);
    expect((await gate.list()).map((r) => r.requestId)).toEqual(['raaaaaaaa1', 'raaaaaaaa1']);
  });

  it('rules survive a restart (the file is the state) and close removes them for good', async () => {
    const gate = await SimulatedGate.open({ file });
    await gate.open({ requestId: 'raaaaaaaa1', target: vm1, ports: [{ port: 3389, protocol: 'tcp' }], sourcePrefix: '*', expiresAt: T });
    const reopened = await SimulatedGate.open({ file });
    expect((await reopened.list()).map((r) => r.name)).toEqual(['jit-raaaaaaaa1-3389']);
    expect(await reopened.close('raaaaaaaa1', vm1)).toHaveLength(1);
    expect(await reopened.close('raaaaaaaa1', vm1)).toHaveLength(0); // idempotent
    expect(await (await SimulatedGate.open({ file })).list()).toEqual([]);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ version: 1, nsgs: {} });
  });

  it('remove deletes exactly the given rules; updateExpiry rewrites the description', async () => {
    const gate = await SimulatedGate.open({ file });
    const a = await gate.open({ requestId: 'raaaaaaaa1', target: vm1, ports: [{ port: 3389, protocol: 'tcp' }], sourcePrefix: '203.0.113.7/32', expiresAt: T });
    await gate.open({ requestId: 'raaaaaaaa2', target: vm1, ports: [{ port: 3389, protocol: 'tcp' }], sourcePrefix: '203.0.113.7/32', expiresAt: T });
    await gate.updateExpiry('raaaaaaaa2', vm1, T + 3600_000);
    expect(await gate.remove(a)).toHaveLength(1);
    const left = await gate.list();
    expect(left.map((r) => r.requestId)).toEqual(['raaaaaaaa2']);
    expect(left[0]!.expiresAt).toBe(T + 3600_000);
    expect(left[0]!.description).toBe(ruleDescription('raaaaaaaa2', T + 3600_000));
  });

  it('refuses a grant without a source and a file that is not its own', async () => {
    const gate = await SimulatedGate.open({ file });
    await expect(gate.open({ requestId: 'raaaaaaaa1', target: vm1, ports: [{ port: 3389, protocol: 'tcp' }], sourcePrefix: '', expiresAt: T })).rejects.toThrow(/no source prefix/);
    expect(await gate.list()).toEqual([]);
    writeFileSync(file, '{"hello": 1}');
    await expect(SimulatedGate.open({ file })).rejects.toThrow(/not a simulated network file/);
  });

  it('descriptions it did not write are not its own', () => {
    expect(parseRuleDescription('Allow RDP from office')).toBeNull();
    expect(parseRuleDescription(undefined)).toBeNull();
    expect(nsgIdFor(vm2)).toMatch(/networkSecurityGroups\/vm2-nsg$/);
  });
});

describe('simulated gate: a change that changes nothing', () => {
  it('does not block the changes after it (regression: the crash harness found every later write hanging)', async () => {
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { SimulatedGate } = await import('../../src/adapters/simulated/gate.js');
    const gate = await SimulatedGate.open({ file: join(mkdtempSync(join(tmpdir(), 'gate-noop-')), 'net.json') });
    const target = { name: tn('vm1'), id: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1', os: 'windows' as const };
    expect(await gate.close('rnothing00', target)).toEqual([]); // no rules: a no-op batch on an idle gate
    const opened = await Promise.race([
      gate.open({ requestId: 'rafter0001', target, ports: [{ port: 3389, protocol: 'tcp' }], sourcePrefix: '203.0.113.7/32', expiresAt: Date.now() + 60_000 }),
      new Promise<'hung'>((r) => setTimeout(() => r('hung'), 2000)),
    ]);
    expect(opened).not.toBe('hung');
    expect((await gate.list()).map((r) => r.name)).toEqual(['jit-rafter0001-3389']);
  });
});
