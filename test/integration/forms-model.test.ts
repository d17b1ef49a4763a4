// The platform-neutral form and home model (src/app/forms.ts, home.ts) over the real service and
// Redis: what a person is offered never exceeds their rights or the policy, a submission runs the
// typed command's use case (nothing is created until every field is valid, errors by field), and
// the home shows pending, active, to-decide and last week's requests.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessChoices, durationChoices, portsOfChoice } from '../../src/app/forms.js';
import { effectivePolicy } from '../../src/core/policy.js';
import type { AccessRequest } from '../../src/core/types.js';
import { PROD, TEST_POLICY_YAML, testBook, vmId } from '../fixtures/book.js';
import { startHarness, type Harness } from './harness.js';
import { ALICE, BOB, DAVE, p } from '../fixtures/ids.js';
import type { PrincipalId } from '../../src/core/ids.js';

const MANY = 1000;

/** The test policy, plus a target that needs a ticket id, and 1,000 targets for frank alone. */
function policyYaml(): string {
  const many = Array.from({ length: MANY }, (_, i) => `  bulk${String(i).padStart(4, '0')}: { id: ${vmId(`${PROD}-bulk`, `bulk${String(i).padStart(4, '0')}`)}, os: linux }\n`).join('');
  return (
    TEST_POLICY_YAML.replace('  mallory@contoso.com: {}\n', '  mallory@contoso.com: {}\n  frank@contoso.com: {}\n')
      .replace('roles:\n', `roles:\n  - { principal: frank@contoso.com, role: JIT Requester, scope: ${PROD}-bulk }\n`)
      .replace('targets:\n', `targets:\n  tick1: { id: ${vmId(PROD, 'tick1')}, os: linux }\n${many}`) +
    `  tick1:
    scope: ${vmId(PROD, 'tick1')}
    justification: { required: true, pattern: "^(INC|CHG)-[0-9]+", hint: "a ticket id like INC-4711" }
`
  );
}

describe('forms model', () => {
  let h: Harness;
  const dir = mkdtempSync(join(tmpdir(), 'jit-forms-'));
  beforeAll(async () => {
    const file = join(dir, 'policy.yaml');
    writeFileSync(file, policyYaml());
    h = await startHarness({ JIT_POLICY_FILE: file, PUBLIC_URL: 'https://jit.example' });
  }, 60_000);
  afterAll(async () => {
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const requests = async (who: PrincipalId): Promise<AccessRequest[]> => (await h.app.service.listVisible(who, { requester: who, limit: 200 }));

  it('a user who may request nothing gets a reason, not an empty form', () => {
    const none = h.app.views.requestForm(p('mallory@contoso.com'), 'slack');
    expect(none.ok).toBe(false);
    if (!none.ok) expect(none.reason).toMatch(/no JIT role.*JIT Requester/);
    const reader = h.app.views.requestForm(p('erin@contoso.com'), 'slack');
    expect(reader.ok).toBe(false);
    if (!reader.ok) expect(reader.reason).toMatch(/read or approve, not request/);
  });

  it('offers only the targets RBAC allows, sorted, with the policy’s access, durations and sources', () => {
    const f = h.app.views.requestForm(p('alice@contoso.com'), 'slack', { target: 'db1' });
    expect(f.ok).toBe(true);
    if (!f.ok) return;
    // alice requests in prod and dev, never frank's bulk targets.
    expect(f.targets.map((t) => t.name)).toEqual(['db1', 'dev1', 'quick1', 'quorum2', 'tick1', 'vm1']);
    expect(f.count).toBe(6);
    expect(f.typeahead).toBe(false);
    const s = f.selected!;
    expect(s.access.map((a) => a.id)).toEqual(['ssh']);
    // db1 allows 1 h at most, from 203.0.113.0/24 only: that range is the source, nothing to type.
    expect(Math.max(...s.durations.map((d) => d.ms))).toBe(3600_000);
    expect(s.durations.map((d) => d.label)).toEqual(['5m', '15m', '30m', '1h']);
    expect(s.sources[0]).toEqual({ kind: 'fixed', value: '203.0.113.0/24', label: expect.stringContaining('203.0.113.0/24') });
    expect(s.approvalRequired).toBe(true);
    expect(s.start.allowed).toBe(true);
  });

  it('choices never exceed the policy, for every target and access anyone may request', () => {
    const book = h.app.service.policyBook();
    for (const who of [ALICE, BOB, DAVE]) {
      const f = h.app.views.requestForm(who, 'slack');
      if (!f.ok) continue;
      for (const t of f.targets.slice(0, 20)) {
        const policy = effectivePolicy(book, book.targets[t.name]!);
        for (const a of accessChoices(policy)) {
          const sel = h.app.views.requestForm(who, 'slack', { target: t.name, access: a.id });
          if (!sel.ok) throw new Error('form vanished');
          const max = Math.min(...a.ports.map((p) => policy.ports.find((r) => r.port === p.port)!.maxDurationMs));
          expect(sel.selected!.selectedAccess).toBe(a.id);
          expect(sel.selected!.durations.every((d) => d.ms <= max && d.ms >= h.app.service.settings.minDurationMs)).toBe(true);
          expect(sel.selected!.durations.some((d) => d.ms === max)).toBe(true);
          for (const p of a.ports) expect(policy.ports.some((r) => r.port === p.port)).toBe(true);
        }
      }
    }
    // dev1: SSH up to 2h and port 8443 up to 30 min from two typed ranges ("my IP" as PUBLIC_URL is set).
    const dev = effectivePolicy(testBook(), testBook().targets.dev1!);
    expect(accessChoices(dev).map((a) => [a.id, a.maxDurationMs])).toEqual([['ssh', 7_200_000], ['port:8443/tcp', 1_800_000]]);
    const f = h.app.views.requestForm(p('alice@contoso.com'), 'slack', { target: 'dev1', access: 'port:8443/tcp' });
    if (!f.ok) throw new Error('no form');
    expect(f.selected!.sources.map((s) => s.kind)).toEqual(['myip', 'typed']);
    expect(f.selected!.sources[1]).toMatchObject({ allowed: '198.51.100.0/24, 2001:db8::/32' });
    expect(portsOfChoice('port:8443/tcp')).toEqual([{ port: 8443, protocol: 'tcp' }]);
    expect(portsOfChoice('port:99999/tcp')).toBeUndefined();
    expect(durationChoices(60_000, 30_000)).toEqual([]);
  });

  it('submission errors come back keyed by field, all at once, and nothing is created', async () => {
    const before = (await requests(p('alice@contoso.com'))).length;
    const r = await h.app.views.submitForm(p('alice@contoso.com'), 'slack', { target: 'vm1', access: 'winrm', duration: 'forever', source: 'not-an-address', start: 'x'.repeat(50) });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(Object.keys(r.errors).sort()).toEqual(['access', 'duration', 'source', 'start']);
    expect(r.errors.access).toMatch(/vm1 does not allow 5985\/tcp, 5986\/tcp; allowed: RDP \(3389\/tcp\), SSH \(22\/tcp\)/);
    expect(r.errors.start).toMatch(/not a start time/);
    // Errors only the use case finds come back keyed too: a source the policy refuses, a reason that does not match.
    const src = await h.app.views.submitForm(p('alice@contoso.com'), 'slack', { target: 'db1', access: 'ssh', duration: '3600000', source: '198.51.100.9' });
    expect(src).toEqual({ ok: false, errors: { source: expect.stringMatching(/not allowed on db1/) } });
    const why = await h.app.views.submitForm(p('alice@contoso.com'), 'slack', { target: 'tick1', access: 'ssh', duration: '1h', source: '203.0.113.7', justification: 'because' });
    expect(why).toEqual({ ok: false, errors: { justification: expect.stringMatching(/ticket id like INC-4711/) } });
    const none = await h.app.views.submitForm(p('alice@contoso.com'), 'slack', { target: 'tick1', access: 'ssh', duration: '1h', source: '203.0.113.7' });
    expect(none).toEqual({ ok: false, errors: { justification: expect.stringMatching(/needs a reason/) } });
    const long = await h.app.views.submitForm(p('alice@contoso.com'), 'slack', { target: 'db1', access: 'ssh', duration: '2h' });
    expect(long).toEqual({ ok: false, errors: { duration: expect.stringMatching(/at most 1h/) } });
    const theirs = await h.app.views.submitForm(p('alice@contoso.com'), 'slack', { target: 'bulk0001', access: 'ssh', duration: '1h' });
    expect(theirs).toEqual({ ok: false, errors: { target: expect.stringMatching(/no JIT Requester role covering bulk0001/) } });
    const past = await h.app.views.submitForm(p('alice@contoso.com'), 'slack', { target: 'db1', access: 'ssh', duration: '1h', start: String(Date.now() - 3600_000) });
    expect(past).toEqual({ ok: false, errors: { start: expect.stringMatching(/in the past/) } });
    const empty = await h.app.views.submitForm(p('alice@contoso.com'), 'slack', {});
    expect(Object.keys(empty.ok ? {} : empty.errors).sort()).toEqual(['access', 'duration', 'target']);
    expect((await requests(p('alice@contoso.com'))).length).toBe(before);
  });

  it('a valid submission runs the typed command: the same request and reply', async () => {
    const r = await h.app.views.submitForm(p('alice@contoso.com'), 'slack', { target: 'tick1', access: 'ssh', duration: '1800000', source: '203.0.113.7', justification: 'INC-4711 disk full' }, { timeZone: 'Europe/Berlin' });
    expect(r.ok).toBe(true);
    if (!r.ok || r.reply.kind !== 'pending_approval') throw new Error(`unexpected ${JSON.stringify(r)}`);
    expect(r.reply.request).toMatchObject({ target: 'tick1', ports: [{ port: 22, protocol: 'tcp' }], source: '203.0.113.7/32', durationMs: 1_800_000, justification: 'INC-4711 disk full', origin: { via: 'slack', timeZone: 'Europe/Berlin' } });
    expect(r.reply.approvers).toEqual(['bob@contoso.com', 'carol@contoso.com']);
    // "my IP": the one-time link, as `/jit ssh dev1 1h` gives.
    const link = await h.app.views.submitForm(p('alice@contoso.com'), 'slack', { target: 'dev1', access: 'ssh', duration: '1h', source: 'myip' });
    if (!link.ok) throw new Error(JSON.stringify(link.errors));
    expect(link.reply).toMatchObject({ kind: 'awaiting_source', link: expect.stringMatching(/^https:\/\/jit\.example\/myip\//) });
  });

  it('1,000 targets: all listed, sorted, typeahead on; the search finds by prefix first', () => {
    const f = h.app.views.requestForm(p('frank@contoso.com'), 'slack');
    if (!f.ok) throw new Error(f.reason);
    expect(f.count).toBe(MANY);
    expect(f.typeahead).toBe(true);
    expect(f.selected).toBeUndefined();
    const names = f.targets.map((t) => t.name);
    expect(names).toEqual([...names].sort());
    expect(h.app.views.searchTargets(p('frank@contoso.com'), '')).toHaveLength(100);
    expect(h.app.views.searchTargets(p('frank@contoso.com'), 'BULK099').map((t) => t.name)).toEqual(Array.from({ length: 10 }, (_, i) => `bulk099${i}`));
    expect(h.app.views.searchTargets(p('frank@contoso.com'), 'vm1')).toEqual([]);
    expect(h.app.views.searchTargets(p('alice@contoso.com'), 'bulk')).toEqual([]);
  });

  it('the home: pending (withdrawable), active grants with time left and extensions, to decide, last week', async () => {
    const made = await h.app.views.submitForm(p('bob@contoso.com'), 'slack', { target: 'vm1', access: 'rdp', duration: '2h', source: '203.0.113.8', justification: 'patching' });
    if (!made.ok) throw new Error(JSON.stringify(made.errors));
    const id = (made.reply as { request: AccessRequest }).request.id;
    let bob = await h.app.views.homeView(p('bob@contoso.com'), 'slack');
    expect(bob.pending.items.map((p) => [p.request.id, p.withdrawable])).toEqual([[id, true]]);
    // carol is an approver: bob's request waits for her (bob may not decide his own).
    const carol = await h.app.views.homeView(p('carol@contoso.com'), 'slack');
    expect(carol.approvals.items.map((c) => [c.request.id, c.scope, c.viewer])).toContainEqual([id, 'request', { principal: 'carol@contoso.com', canDecide: true }]);
    expect(bob.approvals.items.map((c) => c.request.id)).not.toContain(id);
    await h.app.service.decide(p('carol@contoso.com'), id, 'approve');
    bob = await h.app.views.homeView(p('bob@contoso.com'), 'slack');
    expect(bob.pending.items).toEqual([]);
    const [grant] = bob.active.items;
    expect(grant).toMatchObject({ request: { id, status: 'active' }, closable: true, extensionPending: false });
    expect(grant!.timeLeftMs).toBeGreaterThan(0);
    expect(grant!.timeLeftMs).toBeLessThanOrEqual(2 * 3600_000);
    expect(grant!.connections[0]!.command).toBe('mstsc /v:vm1.contoso.example:3389');
    // vm1 allows 3h in all: the default +30m and +1h fit.
    expect(grant!.extendOptionsMs).toEqual([1_800_000, 3_600_000]);
    expect((await h.app.views.homeView(p('carol@contoso.com'), 'slack')).approvals.items.map((c) => c.request.id)).not.toContain(id);
    await h.app.service.revoke(p('bob@contoso.com'), id);
    bob = await h.app.views.homeView(p('bob@contoso.com'), 'slack');
    expect(bob.active.items).toEqual([]);
    expect(bob.history.items.map((r) => [r.id, r.status])).toEqual([[id, 'revoked']]);
  });
});
